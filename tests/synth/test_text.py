"""The vectorised text helpers the writers are built from."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spillover.synth import text


@given(st.lists(st.integers(min_value=-(10**12), max_value=10**12), max_size=50))
def test_money_writes_cents_with_two_decimals(cents):
    rendered = text.money(np.array(cents, dtype=np.int64)).to_pylist()
    assert rendered == [f"{'-' if c < 0 else ''}{abs(c) // 100}.{abs(c) % 100:02d}" for c in cents]


@given(st.lists(st.integers(min_value=0, max_value=10**10 - 1), max_size=50))
def test_fixed_digits_zero_pad_and_quote(values):
    rendered = text.fixed_digits(np.array(values, dtype=np.int64), 10, prefix="T", quoted=True).to_pylist()
    assert rendered == [f'"T{v:010d}"' for v in values]


def test_fixed_digits_refuse_numbers_that_do_not_fit():
    with pytest.raises(ValueError, match="do not fit in 3 digits"):
        text.digit_matrix(np.array([1000]), 3)


def test_nulls_become_json_null_in_joins_and_empty_in_csv():
    values = text.fixed_digits(np.array([5, 6]), 2, null_mask=np.array([False, True]))
    assert text.join(['{"a":', values, "}"], 2).to_pylist() == ['{"a":05}', '{"a":null}']
    lines = text.csv_text([pa.array(["x", "y"]), values], 2)
    assert bytes(text.lines_to_bytes(lines)) == b"x,05\ny,\n"


def test_hex_ids_and_scatter():
    ids = text.hex_digits(np.array([255], dtype=np.uint64), np.array([2**64 - 1], dtype=np.uint64), quoted=True)
    assert json.loads(ids[0].as_py()) == "00000000000000ff" + "f" * 16
    spread = text.scatter(pa.array(["a", "b"]), np.array([3, 1]), 5)
    assert spread.to_pylist() == [None, "b", None, "a", None]


def test_constants_longer_than_the_cache_are_built_directly():
    assert text.constant("ab", text.CONSTANT_ROWS + 3).to_pylist()[-1] == "ab"
    assert text.constant("ab", 2).to_pylist() == ["ab", "ab"]


def test_fragments_gather_rows_from_fixed_and_added_pieces():
    table = text.Fragments(pa.array(["<", ">\n", ","]))
    words = table.add(pa.array(["a", "bb", "ccc"]))
    more = table.add(pa.array(["dddd"]))
    rows = np.array([[0, words + 2, 2, more, 1], [0, words, 1, 1, 1]])
    assert bytes(table.gather(rows.ravel())) == b"<ccc,dddd>\n<a>\n>\n>\n"
