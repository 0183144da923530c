"""Vectorised text building on Arrow string arrays: the generator never formats a row in Python.

Lines are assembled by joining whole columns (constants become repeated arrays, which Arrow joins
several times faster than broadcast scalars); nulls in a column are written as JSON ``null``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Part = str | pa.Array


#: Constants are built once at this many rows and sliced (zero-copy) for shorter columns.
CONSTANT_ROWS = 65_536
_FRACTIONS = [f".{k:02d}" for k in range(100)]


def _repeat(encoded: bytes, n: int) -> pa.Array:
    offsets = np.arange(n + 1, dtype=np.int32) * len(encoded)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(encoded * n)])


@lru_cache(maxsize=512)
def _cached_constant(text: str) -> pa.Array:
    return _repeat(text.encode("utf-8"), CONSTANT_ROWS)


def constant(text: str, n: int) -> pa.Array:
    """``text`` repeated ``n`` times (built from buffers, cached for reuse: fixed texts only)."""
    if n <= CONSTANT_ROWS and len(text) <= 4096:
        return _cached_constant(text).slice(0, n)
    return _repeat(text.encode("utf-8"), n)


def repeated(text: str, n: int) -> pa.Array:
    """``text`` repeated ``n`` times, not cached (for texts that change, such as a date)."""
    return _repeat(text.encode("utf-8"), n)


def join(parts: Sequence[Part], n: int, null: str = "null") -> pa.Array:
    """Concatenate the parts row by row; a null cell in any column is written as ``null``."""
    merged: list[Part] = []
    for part in parts:  # adjacent constants are merged first: fewer columns to join
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] = merged[-1] + part
        else:
            merged.append(part)
    columns = [constant(p, n) if isinstance(p, str) else p for p in merged]
    if len(columns) == 1:
        return columns[0]
    return pc.binary_join_element_wise(*columns, "", null_handling="replace", null_replacement=null)


def join_present(parts: Sequence[Part], n: int) -> pa.Array:
    """Like :func:`join`, but a null cell makes the whole result null (an absent fragment)."""
    columns = [constant(p, n) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*columns, "", null_handling="emit_null")


def integers(values: np.ndarray, null_mask: np.ndarray | None = None) -> pa.Array:
    """Decimal text of integers; rows in ``null_mask`` are null."""
    array = pa.array(np.asarray(values, dtype=np.int64), mask=null_mask)
    return pc.cast(array, pa.string())


def _from_matrix(matrix: np.ndarray, null_mask: np.ndarray | None) -> pa.Array:
    """Rows of a (n, width) byte matrix as strings (zero-copy); rows in ``null_mask`` are null."""
    n, width = matrix.shape
    offsets = np.arange(n + 1, dtype=np.int32) * width
    validity = None
    if null_mask is not None and null_mask.any():
        validity = pa.py_buffer(np.packbits(~np.asarray(null_mask, dtype=bool), bitorder="little"))
    data = np.ascontiguousarray(matrix)
    return pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(data)])


def digit_matrix(values: np.ndarray, width: int) -> np.ndarray:
    """Integers in [0, 10**width) as (n, width) ASCII digits, zero-padded on the left.

    Adding 10**width makes every number exactly width + 1 digits long, so Arrow's (fast) cast to
    text lays them out as a matrix whose first column is the leading 1.
    """
    values = np.asarray(values, dtype=np.int64)
    n = len(values)
    if n == 0:
        return np.empty((0, width), dtype=np.uint8)
    if width > 18 or values.min() < 0 or values.max() >= 10**width:
        raise ValueError(f"values do not fit in {width} digits")
    digits = pc.cast(pa.array(values + 10**width), pa.string())
    data = np.frombuffer(digits.buffers()[2], dtype=np.uint8, count=n * (width + 1))
    return data.reshape(n, width + 1)[:, 1:]


def fixed_width(parts: Sequence[str | np.ndarray], n: int, null_mask: np.ndarray | None = None) -> pa.Array:
    """Strings of one width from constant texts and (n, w) byte matrices placed side by side."""
    blocks = [np.frombuffer(p.encode(), dtype=np.uint8) if isinstance(p, str) else p for p in parts]
    width = sum(b.shape[-1] for b in blocks)
    matrix = np.empty((n, width), dtype=np.uint8)
    column = 0
    for block in blocks:
        matrix[:, column: column + block.shape[-1]] = block
        column += block.shape[-1]
    return _from_matrix(matrix, null_mask)


def fixed_digits(values: np.ndarray, width: int, *, prefix: str = "", quoted: bool = False,
                 null_mask: np.ndarray | None = None) -> pa.Array:
    """Non-negative integers as exactly ``width`` zero-padded digits after ``prefix``, optionally
    in double quotes (``"M00000284"``), rendered without a per-value cast."""
    quote = '"' if quoted else ""
    digits = digit_matrix(values, width)
    return fixed_width([quote + prefix, digits, quote], len(digits), null_mask)


def quoted_integers(values: np.ndarray, null_mask: np.ndarray | None = None) -> pa.Array:
    """INT64 the way BigQuery's JSON export writes it: a quoted string, or null."""
    digits = integers(values, null_mask)
    n = len(digits)
    return join_present(['"', digits, '"'], n)


def money(cents: np.ndarray, null_mask: np.ndarray | None = None) -> pa.Array:
    """Amounts in cents as ``12.34`` (two decimals; negative amounts get a leading minus)."""
    cents = np.asarray(cents, dtype=np.int64)
    n = len(cents)
    whole = integers(np.abs(cents) // 100)
    parts: list[Part] = [whole, pick(_FRACTIONS, np.abs(cents) % 100)]
    if (cents < 0).any():
        parts.insert(0, pick(("", "-"), (cents < 0).astype(np.int64)))
    text = join(parts, n)
    if null_mask is not None:
        text = pc.if_else(pa.array(null_mask), pa.scalar(None, pa.string()), text)
    return text


def pick(table: Sequence[str] | pa.Array, index: np.ndarray) -> pa.Array:
    """``table[index]`` for every row (a dictionary lookup, vectorised)."""
    values = table if isinstance(table, pa.Array) else _table(tuple(table))
    return values.take(pa.array(np.asarray(index, dtype=np.int64)))


@lru_cache(maxsize=256)
def _table(values: tuple[str, ...]) -> pa.Array:
    return pa.array(list(values), pa.string())


def scatter(values: pa.Array, rows: np.ndarray, n: int) -> pa.Array:
    """An ``n``-row column holding ``values`` at ``rows`` (in order) and null elsewhere."""
    index = np.zeros(n, dtype=np.int64)
    index[rows] = np.arange(len(rows))
    missing = np.ones(n, dtype=bool)
    missing[rows] = False
    return values.take(pa.array(index, mask=missing))


def fill_null(values: pa.Array, replacement: str) -> pa.Array:
    return pc.fill_null(values, pa.scalar(replacement, pa.string()))


def null_where(values: pa.Array, mask: np.ndarray) -> pa.Array:
    """``values`` with the rows in ``mask`` set to null."""
    if not mask.any():
        return values
    return pc.if_else(pa.array(mask), pa.scalar(None, values.type), values)


def hex_digits(high: np.ndarray, low: np.ndarray, *, quoted: bool = False) -> pa.Array:
    """32 lowercase hex digits from two unsigned 64-bit numbers (an app-instance id)."""
    n = len(high)
    q = 1 if quoted else 0
    alphabet = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    shifts = np.arange(60, -4, -4, dtype=np.uint64)
    matrix = np.empty((n, 32 + 2 * q), dtype=np.uint8)
    matrix[:, q:q + 16] = alphabet[(np.asarray(high, dtype=np.uint64)[:, None] >> shifts) & np.uint64(15)]
    matrix[:, q + 16:q + 32] = alphabet[(np.asarray(low, dtype=np.uint64)[:, None] >> shifts) & np.uint64(15)]
    if quoted:
        matrix[:, 0] = matrix[:, -1] = 34
    return _from_matrix(matrix, None)


def iso_seconds(utc_us: np.ndarray) -> pa.Array:
    """UTC microseconds as ``2024-03-01T14:05:00Z``."""
    seconds = pa.array(np.asarray(utc_us, dtype=np.int64) // 1_000_000, pa.timestamp("s"))
    return pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%SZ")


class Fragments:
    """One table of text fragments from which rows are gathered: constants, per-row values and texts
    shared by many rows sit side by side, and a row is a run of indices into the table. Gathering
    copies every output byte once (one Arrow ``take``), however many pieces a row has."""

    def __init__(self, constants: pa.Array):
        self._arrays = [constants]
        self._size = len(constants)

    def add(self, values: pa.Array) -> int:
        """Append ``values`` (no nulls) to the table; return the index of its first element."""
        base = self._size
        self._arrays.append(values)
        self._size += len(values)
        return base

    def gather(self, indices: np.ndarray) -> memoryview:
        """The bytes of the fragments at ``indices``, one after another."""
        gathered = pa.chunked_array(self._arrays).take(pa.array(indices, pa.int64()))
        return lines_to_bytes(gathered.combine_chunks() if gathered.num_chunks != 1 else gathered.chunk(0))


def lines_to_bytes(lines: pa.Array) -> memoryview:
    """The concatenated bytes of a string array (each element already ends with a newline)."""
    if len(lines) == 0:
        return memoryview(b"")
    width = np.int64 if lines.type == pa.large_string() else np.int32
    buffers = lines.buffers()
    offsets = np.frombuffer(buffers[1], dtype=width, count=len(lines) + 1,
                            offset=lines.offset * np.dtype(width).itemsize)
    return memoryview(buffers[2])[int(offsets[0]):int(offsets[-1])]


def csv_text(columns: Sequence[Part], n: int) -> pa.Array:
    """CSV lines (fields joined by commas, newline at the end); null fields are empty.

    Callers pass only fields that need no quoting (no commas, quotes or newlines), which every
    generated value satisfies by construction.
    """
    parts: list[Part] = []
    for k, column in enumerate(columns):
        if k:
            parts.append(",")
        parts.append(column)
    parts.append("\n")
    return join(parts, n, null="")
