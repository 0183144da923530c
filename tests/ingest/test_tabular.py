"""Generic tabular reading: exact line numbers, column mapping, whole-file problems, value parsing."""

from __future__ import annotations

import datetime as dt
import gzip
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spillover.config import ColumnsConfig, Config
from spillover.errors import SpilloverConfigError, SpilloverInputError
from spillover.ingest.shop import order_items_spec, products_spec
from spillover.ingest.tabular import CellProblem, Column, check_file, ingest_source

PRODUCTS_HEADER = "product_id,name,category,price,unit_cost,is_gateway,subscription_price\n"


def _write(tmp_path, text: str, name: str = "products.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _lines(checked):
    return {row["_source_line"]: row["product_id"] for row in checked.rows}


def _reasons(checked):
    return {(q.source_line, q.column_name, q.reason) for q in checked.quarantined}


def test_line_numbers_count_physical_lines_of_quoted_multiline_fields_and_blank_lines(tmp_path, config):
    path = _write(
        tmp_path,
        PRODUCTS_HEADER
        + 'P1,"Speaker\nwith two\nlines",devices,10,5,,\n'  # lines 2-4
        + "\n"  # line 5: blank, not a row
        + "P2,Cable,devices,abc,1,,\n"  # line 6
        + "P3,Plug,devices,3,1,,\n",  # line 7
    )
    checked = check_file(products_spec(), path, config=config)
    assert _lines(checked) == {2: "P1", 7: "P3"}
    assert _reasons(checked) == {(6, "price", "invalid_number")}
    assert checked.read == 3
    assert checked.rows[0]["name"] == "Speaker\nwith two\nlines"


def test_every_missing_required_column_is_named_at_once_before_anything_loads(tmp_path, duck, config):
    path = _write(tmp_path, "product_id,name,colour\nP1,Speaker,red\n")
    message = (
        r"products.csv, line 1 \(header\): missing required column\(s\) category, price, unit_cost; "
        r"nothing was loaded\. .*map them in \[columns\.products\] of spillover\.toml"
    )
    with pytest.raises(SpilloverInputError, match=message):
        ingest_source(duck, "products", path, config=config)
    assert duck.list_tables() == []


def test_mapped_columns_are_read_under_the_users_names(tmp_path, config):
    path = _write(tmp_path, "SKU,Title,Kategorie,Preis,Kosten\nP1,Speaker,devices,10.5,4\n")
    mapped = Config(
        project_dir=tmp_path,
        columns=ColumnsConfig(products={"product_id": "SKU", "name": "Title", "category": "Kategorie",
                                        "price": "Preis", "unit_cost": "Kosten"}),
    )
    checked = check_file(products_spec(), path, config=mapped)
    assert checked.rows[0]["product_id"] == "P1"
    assert checked.rows[0]["price"] == Decimal("10.5")
    half = Config(project_dir=tmp_path, columns=ColumnsConfig(products={"price": "Cost"}))
    with pytest.raises(SpilloverInputError, match=r"missing required column\(s\) product_id, name, category, "
                       r"price \(mapped to 'Cost'\), unit_cost"):
        check_file(products_spec(), path, config=half)


def test_mapping_an_unknown_column_is_a_config_error(tmp_path, config):
    path = _write(tmp_path, PRODUCTS_HEADER)
    bad = Config(project_dir=tmp_path, columns=ColumnsConfig(products={"colour": "Farbe"}))
    with pytest.raises(SpilloverConfigError, match=r"\[columns\.products\] of spillover\.toml maps colour, "
                       "which is not a products column"):
        check_file(products_spec(), path, config=bad)


def test_header_matches_case_insensitively_after_a_bom_and_lists_ignored_columns(tmp_path, config):
    path = tmp_path / "products.csv"
    path.write_bytes(b"\xef\xbb\xbfProduct_ID, Name ,CATEGORY,price,unit_cost,Supplier\nP1,Speaker,devices,1,1,Acme\n")
    checked = check_file(products_spec(), path, config=config)
    assert [row["product_id"] for row in checked.rows] == ["P1"]
    assert checked.ignored_columns == ["Supplier"]


def test_a_column_named_twice_is_refused(tmp_path, config):
    path = _write(tmp_path, "product_id,name,category,price,unit_cost,PRICE\nP1,a,b,1,1,2\n")
    with pytest.raises(SpilloverInputError, match=r"column\(s\) PRICE appear more than once"):
        check_file(products_spec(), path, config=config)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"missing\.csv: no such file; check the path"),
        ("", r"the file is empty \(no header line\)"),
        ("\n\n  \n", r"the file is empty \(no header line\)"),
    ],
)
def test_a_missing_or_empty_file_is_an_input_error(tmp_path, config, content, message):
    path = tmp_path / "missing.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SpilloverInputError, match=message):
        check_file(products_spec(), path, config=config)


def test_a_folder_or_a_corrupt_parquet_file_is_an_input_error(tmp_path, config):
    with pytest.raises(SpilloverInputError, match="is a folder; give one CSV or Parquet file"):
        check_file(products_spec(), tmp_path, config=config)
    corrupt = tmp_path / "products.parquet"
    corrupt.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(SpilloverInputError, match="cannot be read as Parquet"):
        check_file(products_spec(), corrupt, config=config)


def test_a_header_only_file_loads_nothing_and_still_creates_the_table(tmp_path, con, config):
    result = ingest_source(con, "products", _write(tmp_path, PRODUCTS_HEADER), config=config)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (0, 0, 0)
    assert con.table("stg_shop__products").count().execute() == 0
    assert con.table("ops_loads").count().execute() == 1
    assert con.table("ops_quarantine").count().execute() == 0  # exists, so it can always be queried


def test_gzipped_csv_is_read_and_a_truncated_one_is_refused_whole(tmp_path, config):
    text = PRODUCTS_HEADER + "".join(f"P{i},Thing {i},misc,{i}.00,1,,\n" for i in range(1, 2000))
    path = tmp_path / "products.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    assert check_file(products_spec(), path, config=config).read == 1999
    truncated = tmp_path / "truncated.csv.gz"
    truncated.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(SpilloverInputError, match=r"truncated\.csv\.gz, after line \d+: the file cannot be "
                       r"read further .*nothing was loaded"):
        check_file(products_spec(), truncated, config=config)


def test_a_row_that_is_not_utf8_is_quarantined_alone(tmp_path, config):
    path = tmp_path / "products.csv"
    path.write_bytes(PRODUCTS_HEADER.encode() + b"P1,Caf\xe9,food,3,1,,\nP2,Tea,food,2,1,,\n")
    checked = check_file(products_spec(), path, config=config)
    assert _lines(checked) == {3: "P2"}
    assert _reasons(checked) == {(2, None, "invalid_encoding")}
    assert checked.quarantined[0].raw == "P1,Caf\ufffd,food,3,1,,"


def test_wrong_field_counts_and_an_unclosed_quote_are_malformed_rows(tmp_path, config):
    path = _write(
        tmp_path,
        PRODUCTS_HEADER
        + "P1,Speaker,devices,10,5\n"  # line 2: too few fields
        + "P2,Cable,devices,1,1,,\n"  # line 3
        + 'P3,"Unclosed,devices,1,1,,\n'  # line 4: the quote swallows the rest of the file
        + "P4,Plug,devices,1,1,,\n",
    )
    checked = check_file(products_spec(), path, config=config)
    assert _lines(checked) == {3: "P2"}
    assert _reasons(checked) == {(2, None, "malformed_row"), (4, None, "malformed_row")}
    by_line = {q.source_line: q for q in checked.quarantined}
    assert "the row has 5 fields but the header has 7" in by_line[2].message
    assert "(the record spans lines 4-5)" in by_line[4].message
    assert checked.read == 3


def test_parquet_rows_are_numbered_from_one_and_typed_values_are_accepted(tmp_path, config):
    table = pa.table(
        {
            "order_id": ["O1", "O1", "O2"],
            "line_number": pa.array([1, 2, 1], pa.int32()),
            "product_id": ["P1", "P2", "P1"],
            "quantity": pa.array([2, 0, 1], pa.int64()),
            "unit_price": pa.array([19.99, 5.0, 3.5], pa.float64()),
            "discount": pa.array([None, None, 1.0], pa.float64()),
        }
    )
    path = tmp_path / "order_items.parquet"
    pq.write_table(table, path)
    checked = check_file(order_items_spec(), path, config=config)
    assert [(r["_source_line"], r["unit_price"], r["discount"]) for r in checked.rows] == [
        (1, Decimal("19.9900"), Decimal("0")),
        (3, Decimal("3.5000"), Decimal("1.0000")),
    ]
    assert {(q.source_line, q.column_name, q.reason) for q in checked.quarantined} == {
        (2, "quantity", "non_positive_value")
    }


def test_exact_duplicates_are_counted_and_conflicting_ones_quarantined_together(tmp_path, config):
    path = _write(
        tmp_path,
        PRODUCTS_HEADER
        + "P1,Speaker,devices,10,5,,\n"
        + "P1,Speaker,devices,10.00,5,no,\n"  # the same once parsed (10 = 10.00, empty = false)
        + "P2,Cable,devices,1,1,,\n"
        + "P2,Cable,devices,2,1,,\n",
    )
    checked = check_file(products_spec(), path, config=config)
    assert _lines(checked) == {2: "P1"}
    assert checked.duplicates == 1
    assert _reasons(checked) == {(4, "price", "conflicting_duplicate"), (5, "price", "conflicting_duplicate")}
    assert "product_id 'P2' appears on 2 rows (lines 4, 5) that disagree on price" in checked.quarantined[0].message


def test_all_problems_of_a_row_are_in_its_message(tmp_path, config):
    path = _write(tmp_path, PRODUCTS_HEADER + "P1,,devices,-1,x,maybe,\n")
    (row,) = check_file(products_spec(), path, config=config).quarantined
    assert (row.column_name, row.reason) == ("name", "missing_required_value")
    assert row.message == (
        "name is required but empty; fill it in and re-load the file; price is '-1'; it must be 0 or more; "
        "unit_cost is 'x', not a decimal number; write amounts like 1234.50 (no currency sign, no thousands "
        "separator); is_gateway is 'maybe', not a boolean; use true/false, yes/no, y/n or 1/0"
    )


UTC = dt.timezone.utc


@pytest.mark.parametrize(
    ("kind", "written", "expected"),
    [
        ("boolean", "Yes", True),
        ("boolean", " n ", False),
        ("boolean", "1", True),
        ("boolean", "FALSE", False),
        ("boolean", "", None),
        ("integer", "3", 3),
        ("integer", "3.0", 3),
        ("decimal", "1234.5", Decimal("1234.5000")),
        ("decimal", "0.00005", Decimal("0.0000")),  # half-even to 1/100 of a cent
        ("decimal", ".5", Decimal("0.5000")),
        ("date", "2024-02-29", dt.date(2024, 2, 29)),
        ("timestamp", "2024-03-01T14:05:00Z", dt.datetime(2024, 3, 1, 14, 5, tzinfo=UTC)),
        ("timestamp", "2024-03-01T15:05:00+01:00", dt.datetime(2024, 3, 1, 14, 5, tzinfo=UTC)),
        ("timestamp", "2024-03-01 14:05:00", dt.datetime(2024, 3, 1, 14, 5, tzinfo=UTC)),
        ("timestamp", "2024-03-01T14:05:00.123456-0500", dt.datetime(2024, 3, 1, 19, 5, 0, 123456, tzinfo=UTC)),
    ],
)
def test_values_are_parsed_by_the_contract(kind, written, expected):
    assert Column("x", kind).parse(written) == expected


@pytest.mark.parametrize(
    ("kind", "written", "reason"),
    [
        ("boolean", "maybe", "invalid_boolean"),
        ("integer", "two", "invalid_integer"),
        ("integer", "2.5", "invalid_integer"),
        ("decimal", "1,234.50", "invalid_number"),
        ("decimal", "$5", "invalid_number"),
        ("decimal", "NaN", "invalid_number"),
        ("date", "03/01/2024", "invalid_date"),
        ("date", "2024-02-30", "invalid_date"),
        ("date", "20240301", "invalid_date"),
        ("timestamp", "yesterday", "invalid_timestamp"),
        ("timestamp", "2024-03-01T25:00:00Z", "invalid_timestamp"),
    ],
)
def test_unparseable_values_give_a_reason_code(kind, written, reason):
    with pytest.raises(CellProblem) as problem:
        Column("x", kind).parse(written)
    assert problem.value.reason == reason
    assert repr(written) in problem.value.message
