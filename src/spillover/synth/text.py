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


def null_where(values: pa.Array, mask: np.ndarray) -> pa.Array:
    """``values`` with the rows in ``mask`` set to null."""
    if not mask.any():
        return values
    return pc.if_else(pa.array(mask), pa.scalar(None, values.type), values)


def hex_digits(high: np.ndarray, low: np.ndarray) -> pa.Array:
    """32 lowercase hex digits from two unsigned 64-bit numbers (an app-instance id)."""
    n = len(high)
    alphabet = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    shifts = np.arange(60, -4, -4, dtype=np.uint64)
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, :16] = alphabet[(np.asarray(high, dtype=np.uint64)[:, None] >> shifts) & np.uint64(15)]
    digits[:, 16:] = alphabet[(np.asarray(low, dtype=np.uint64)[:, None] >> shifts) & np.uint64(15)]
    offsets = np.arange(n + 1, dtype=np.int32) * 32
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(digits.tobytes())])


def iso_seconds(utc_us: np.ndarray) -> pa.Array:
    """UTC microseconds as ``2024-03-01T14:05:00Z``."""
    seconds = pa.array(np.asarray(utc_us, dtype=np.int64) // 1_000_000, pa.timestamp("s"))
    return pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%SZ")


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
