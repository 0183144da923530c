"""Seeded random draws computed in the engine, for sampling rows before the expensive work.

A row's draw is a hash of a seed and the row's key, so the same warehouse, key and seed always keep
the same rows, on any number of threads or machines (the hash, and so the rows kept, may differ
between engines).
"""

from __future__ import annotations

import ibis

#: Resolution of a draw (a prime, so the draws are spread evenly over [0, 1)).
_DRAWS = 1_000_003


def uniform_draw(seed: int, *parts: ibis.Value) -> ibis.Value:
    """A number in [0, 1), uniform over rows, fixed by ``seed`` and the values of ``parts``."""
    text = ibis.literal(f"{seed}")
    for part in parts:
        text = text.concat(":", part.cast("string"))
    key = text.hash()
    return ((key % _DRAWS) + _DRAWS) % _DRAWS / float(_DRAWS)


def keep_rate(wanted: int, available: ibis.Value) -> ibis.Value:
    """The probability that keeps about ``wanted`` of ``available`` rows (1 when there are fewer)."""
    return ibis.least(ibis.literal(1.0), ibis.literal(float(wanted)) / available.cast("float64"))


def sample_beyond(table: ibis.Table, always: str, wanted: int, seed: int, keys: tuple[str, ...]) -> ibis.Table:
    """``table``'s rows where the boolean column ``always`` is true, and about ``wanted`` of the
    others drawn at random (by :func:`uniform_draw` of ``seed`` and the ``keys`` columns), with
    ``sampling_rate``: 1 for the rows always kept, the others' keep rate for the rest."""
    totals = table.aggregate(_others=(~table[always]).cast("int64").sum())
    rows = table.cross_join(totals)
    rows = rows.mutate(
        sampling_rate=ibis.ifelse(rows[always], 1.0, keep_rate(wanted, rows._others)).cast("float64"),
        _draw=uniform_draw(seed, *(rows[key] for key in keys)),
    )
    return rows.filter(rows[always] | (rows._draw < rows.sampling_rate)).drop("_others", "_draw")
