"""The RFM summary that the CLV models read: built from a transactions table, and its contract checked.

One row per customer, in whole periods (days or weeks) since that customer's first purchase:

- ``frequency``: the number of *repeat* purchase periods (periods with a purchase, less the first);
- ``recency``: periods from the first to the last purchase (0 when ``frequency`` is 0);
- ``T``: periods from the first purchase to the end of the calibration (or observation) window;
- ``monetary_value``: the mean spend of the repeat purchase periods (0 when ``frequency`` is 0).

These are the definitions of Fader, Hardie & Lee (2005) and of the ``lifetimes`` package, so
summaries and fitted parameters can be compared with theirs. :func:`check_rfm` enforces the contract
(``0 <= recency <= T``, integral ``frequency``, ...) with messages that name the row and the column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from spillover.errors import SpilloverInputError

__all__ = ["RFM_COLUMNS", "TIME_UNITS", "check_rfm", "rfm_arrays", "rfm_summary"]

RFM_COLUMNS = ("frequency", "recency", "T")
TIME_UNITS = ("D", "W")


# --------------------------------------------------------------------------------------------------
# the contract


def _first_bad(bad: np.ndarray) -> tuple[int, int]:
    """The 1-based position of the first True in ``bad`` and how many there are."""
    positions = np.flatnonzero(bad)
    return int(positions[0]) + 1, len(positions)


def _rows(count: int) -> str:
    return f"{count:,} row{'s' if count != 1 else ''}"


def _as_float(values: Any, name: str, where: str) -> np.ndarray:
    """``values`` as a finite float array, or an error naming the column and the first bad row."""
    series = pd.Series(values) if not isinstance(values, pd.Series) else values
    if not (pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)):
        raise SpilloverInputError(
            f"{where}: column {name!r} must be numeric, found dtype {series.dtype}; "
            "convert it to numbers (periods or currency units) first"
        )
    array = series.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(array)
    if bad.any():
        row, count = _first_bad(bad)
        raise SpilloverInputError(
            f"{where}: column {name!r} has missing or infinite values ({_rows(count)}, first at row "
            f"{row}: {array[row - 1]}); fill or drop those customers first"
        )
    return array


def rfm_arrays(
    frequency: Any,
    recency: Any = None,
    T: Any = None,
    monetary_value: Any = None,
    *,
    where: str = "RFM input",
) -> tuple[np.ndarray | None, ...]:
    """Check the RFM contract on arrays and return them as float arrays (``None`` stays ``None``).

    Rules: every value finite; ``frequency`` a non-negative integer; ``0 <= recency <= T``;
    ``recency == 0`` when ``frequency == 0``; ``monetary_value > 0`` where ``frequency > 0``.
    Rows in messages are counted from 1.
    """
    x = _as_float(frequency, "frequency", where)
    n = len(x)
    if n == 0:
        raise SpilloverInputError(f"{where} has no customers (0 rows); nothing to fit or predict")
    arrays: dict[str, np.ndarray | None] = {"frequency": x}
    for name, values in (("recency", recency), ("T", T), ("monetary_value", monetary_value)):
        arrays[name] = None if values is None else _as_float(values, name, where)
        if arrays[name] is not None and len(arrays[name]) != n:
            raise SpilloverInputError(
                f"{where}: {name} has {len(arrays[name]):,} values but frequency has {n:,}; "
                "pass one value per customer"
            )
    bad = (x < 0) | (x != np.floor(x))
    if bad.any():
        row, count = _first_bad(bad)
        raise SpilloverInputError(
            f"{where}: frequency must be a non-negative integer (the number of repeat purchase "
            f"periods); {_rows(count)} break this, first at row {row}: frequency={x[row - 1]:g}"
        )
    t_x, age = arrays["recency"], arrays["T"]
    if t_x is not None and age is not None:
        bad = (t_x < 0) | (t_x > age)
        if bad.any():
            row, count = _first_bad(bad)
            raise SpilloverInputError(
                f"{where}: 0 <= recency <= T must hold (recency is the age at the last purchase, T "
                f"the age at the end of the window); {_rows(count)} break this, first at row {row}: "
                f"recency={t_x[row - 1]:g}, T={age[row - 1]:g}"
            )
    if t_x is not None:
        bad = (x == 0) & (t_x != 0)
        if bad.any():
            row, count = _first_bad(bad)
            raise SpilloverInputError(
                f"{where}: recency must be 0 when frequency is 0 (no repeat purchase); "
                f"{_rows(count)} break this, first at row {row}: recency={t_x[row - 1]:g}"
            )
    money = arrays["monetary_value"]
    if money is not None:
        bad = (x > 0) & (money <= 0)
        if bad.any():
            row, count = _first_bad(bad)
            raise SpilloverInputError(
                f"{where}: monetary_value must be > 0 where frequency > 0 (the Gamma-Gamma spend "
                f"model needs a positive mean spend per repeat purchase); {_rows(count)} break this, "
                f"first at row {row}: monetary_value={money[row - 1]:g}; drop refunds-only customers "
                "or net refunds against purchases first"
            )
    return x, t_x, age, money


def check_rfm(
    summary: pd.DataFrame,
    *,
    columns: Sequence[str] = RFM_COLUMNS,
    where: str = "RFM summary",
) -> tuple[np.ndarray, ...]:
    """Check that ``summary`` holds ``columns`` and meets the RFM contract; return them as arrays.

    ``columns`` is a subset of ``frequency, recency, T, monetary_value`` (``frequency`` always
    included). ``where`` names the input in messages (a file name, say). Raises
    :class:`~spillover.errors.SpilloverInputError` naming the first missing column or bad row.
    """
    if not isinstance(summary, pd.DataFrame):
        raise SpilloverInputError(
            f"{where}: expected a pandas DataFrame with columns {', '.join(columns)}, "
            f"got {type(summary).__name__}"
        )
    missing = [name for name in columns if name not in summary.columns]
    if missing:
        found = ", ".join(map(str, summary.columns)) or "none"
        raise SpilloverInputError(
            f"{where}: required column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            f"missing (needs {', '.join(columns)}; found {found})"
        )
    given = {name: summary[name] for name in columns}
    x, t_x, age, money = rfm_arrays(
        given["frequency"], given.get("recency"), given.get("T"), given.get("monetary_value"), where=where
    )
    by_name = {"frequency": x, "recency": t_x, "T": age, "monetary_value": money}
    return tuple(by_name[name] for name in columns)


# --------------------------------------------------------------------------------------------------
# building the summary


def _parse_datetimes(values: pd.Series, column: str, where: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = values
    else:
        parsed = pd.to_datetime(values, format="ISO8601", errors="coerce")
        if (parsed.isna() & values.notna()).any():
            parsed = pd.to_datetime(values, format="mixed", errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row, count = _first_bad(bad)
        raise SpilloverInputError(
            f"{where}: column {column!r} has {_rows(count)} that are empty or not a date/time, "
            f"first at row {row}: {values.iloc[row - 1]!r}; fix or drop them first"
        )
    if getattr(parsed.dt, "tz", None) is not None:
        # keep the wall-clock time of the zone the data was recorded in: periods are local days
        parsed = parsed.dt.tz_localize(None)
    return parsed


def _parse_boundary(value: Any, name: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise SpilloverInputError(f"{name} {value!r} is not a date; use YYYY-MM-DD") from exc
    if stamp is pd.NaT:
        raise SpilloverInputError(f"{name} {value!r} is not a date; use YYYY-MM-DD")
    return stamp.tz_localize(None) if stamp.tzinfo is not None else stamp


def _ordinals(stamps: pd.Series | pd.Timestamp, freq: str) -> Any:
    """Period numbers (days or weeks ending Sunday) whose differences are whole periods."""
    if isinstance(stamps, pd.Timestamp):
        return stamps.to_period(freq).ordinal
    return stamps.dt.to_period(freq).array.asi8


def _per_customer(periods: pd.DataFrame, has_money: bool) -> pd.DataFrame:
    """frequency, recency, first period and mean repeat spend from one row per (customer, period)."""
    grouped = periods.groupby("customer", sort=True)
    out = pd.DataFrame(
        {"first": grouped["period"].min(), "last": grouped["period"].max(), "periods": grouped.size()}
    )
    out["frequency"] = out["periods"] - 1
    if has_money:
        first_spend = periods.loc[grouped["period"].idxmin(), ["customer", "spend"]].set_index("customer")["spend"]
        repeat_spend = grouped["spend"].sum() - first_spend
        out["monetary_value"] = np.where(
            out["frequency"] > 0, repeat_spend / out["frequency"].where(out["frequency"] > 0, 1), 0.0
        )
    return out


def rfm_summary(
    transactions: pd.DataFrame,
    customer_id: str,
    datetime: str,
    *,
    monetary: str | None = None,
    freq: str = "D",
    calibration_end: Any = None,
    observation_end: Any = None,
    where: str = "transactions",
) -> pd.DataFrame:
    """Summarise a transactions table into one RFM row per customer.

    Transactions are grouped into periods (``freq``: ``"D"`` days, ``"W"`` weeks ending Sunday);
    several purchases in one period count as one purchase whose spend is their sum, as in
    ``lifetimes.utils.summary_data_from_transaction_data``.

    Parameters
    ----------
    transactions:
        One row per purchase (or order line).
    customer_id, datetime:
        Column names of the customer identifier and of the purchase time (datetimes or strings
        such as ``2024-03-01`` or ``2024-03-01T10:15:00Z``; time-zone-aware times keep their local
        wall-clock time).
    monetary:
        Column name of the spend (or margin) of each row; adds ``monetary_value``.
    calibration_end:
        End of the calibration window (inclusive). The summary describes purchases up to it; customers
        whose first purchase is later are left out; ``frequency_holdout``, ``duration_holdout`` and (with
        ``monetary``) ``monetary_value_holdout`` count their purchase periods after it, up to
        ``observation_end``, for out-of-sample checks.
    observation_end:
        End of the observation window (inclusive); default the last transaction. Later purchases are
        ignored.
    where:
        Names the input in error messages (a file name, say).

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id`` (named as given), ``frequency`` (int), ``recency``, ``T``,
        ``monetary_value`` (with ``monetary``) and the holdout columns, sorted by customer.
    """
    if not isinstance(transactions, pd.DataFrame):
        raise SpilloverInputError(f"{where}: expected a pandas DataFrame, got {type(transactions).__name__}")
    if freq not in TIME_UNITS:
        raise SpilloverInputError(f"freq {freq!r} is not supported; use 'D' (days) or 'W' (weeks)")
    wanted = [customer_id, datetime] + ([monetary] if monetary is not None else [])
    missing = [name for name in wanted if name not in transactions.columns]
    if missing:
        found = ", ".join(map(str, transactions.columns)) or "none"
        raise SpilloverInputError(
            f"{where}: column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            f"missing (found {found}); name the customer id, date/time and spend columns"
        )
    if len(transactions) == 0:
        raise SpilloverInputError(f"{where}: the table is empty; nothing to summarise")
    ids = transactions[customer_id]
    bad = ids.isna().to_numpy()
    if bad.any():
        row, count = _first_bad(bad)
        raise SpilloverInputError(
            f"{where}: column {customer_id!r} is empty in {_rows(count)}, first at row {row}; "
            "every purchase needs a customer id"
        )
    stamps = _parse_datetimes(transactions[datetime], datetime, where)
    frame = pd.DataFrame({"customer": ids.to_numpy(), "stamp": stamps.to_numpy()})
    if monetary is not None:
        frame["spend"] = _as_float(transactions[monetary], monetary, where)

    end = _parse_boundary(observation_end, "observation_end") if observation_end is not None else frame["stamp"].max()
    calibration = _parse_boundary(calibration_end, "calibration_end") if calibration_end is not None else None
    if calibration is not None and calibration > end:
        raise SpilloverInputError(
            f"calibration_end {calibration.date()} is after observation_end {end.date()}; "
            "the calibration window must end inside the observation window"
        )
    frame = frame[frame["stamp"] <= end]
    cutoff = calibration if calibration is not None else end
    frame["period"] = _ordinals(frame["stamp"], freq)
    in_calibration = frame["stamp"] <= cutoff
    if not in_calibration.any():
        raise SpilloverInputError(
            f"{where}: no purchase on or before {cutoff.date()}; move calibration_end later"
        )

    has_money = monetary is not None
    aggregations = {"spend": ("spend", "sum")} if has_money else {}
    periods = (
        frame[in_calibration]
        .groupby(["customer", "period"], sort=False)
        .agg(**aggregations, rows=("stamp", "size"))
        .reset_index()
    )
    per = _per_customer(periods, has_money)
    cutoff_period = _ordinals(cutoff, freq)
    summary = pd.DataFrame(
        {
            customer_id: per.index.to_numpy(),
            "frequency": per["frequency"].to_numpy(dtype="int64"),
            "recency": (per["last"] - per["first"]).to_numpy(dtype=float),
            "T": (cutoff_period - per["first"]).to_numpy(dtype=float),
        }
    )
    if has_money:
        summary["monetary_value"] = per["monetary_value"].to_numpy(dtype=float)

    if calibration is not None:
        later = frame[~in_calibration & frame["customer"].isin(per.index)]
        holdout = later.groupby(["customer", "period"], sort=False).agg(**aggregations, rows=("stamp", "size"))
        holdout = holdout.reset_index().groupby("customer")
        counts = holdout.size().reindex(per.index, fill_value=0)
        summary["frequency_holdout"] = counts.to_numpy(dtype="int64")
        if has_money:
            means = holdout["spend"].mean().reindex(per.index, fill_value=0.0)
            summary["monetary_value_holdout"] = means.to_numpy(dtype=float)
        summary["duration_holdout"] = float(_ordinals(end, freq) - cutoff_period)
    return summary
