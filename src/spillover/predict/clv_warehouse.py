"""Lifetime value on the warehouse's orders: BG/NBD + Gamma-Gamma fitted, checked on a holdout, scored.

The transactions are the attributed back-office orders (one row per order: customer, time, revenue),
summarised in days up to the latest event or order. Gamma-Gamma models revenue per order (it needs
positive amounts, and device orders can lose money); ``clv`` is that revenue times the warehouse's
contribution-margin share, so it is a margin figure. The holdout check refits on the data before a
holdout period and compares predicted with actual repeat purchases in it, by calibration frequency.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from spillover.errors import SpilloverIneligibleError, SpilloverInputError
from spillover.predict.clv import BetaGeoModel, GammaGammaModel, predict_customers
from spillover.predict.rfm import rfm_summary
from spillover.profiles.attribution import order_lines

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from spillover.config import PredictSettings

__all__ = ["FittedCLV", "HOLDOUT_FREQUENCY_CAP", "clv_holdout", "customer_orders", "fit_clv_models", "score_clv"]

#: Calibration frequencies at and above this share one row of the holdout table.
HOLDOUT_FREQUENCY_CAP = 7


def customer_orders(con: BaseBackend) -> pd.DataFrame:
    """One row per attributed order: ``customer_key``, ``ordered_at`` (UTC, naive), ``revenue``, ``margin``."""
    lines = order_lines(con)
    lines = lines.filter(lines.customer_key.notnull())
    orders = lines.group_by("customer_key", "order_id").aggregate(
        ordered_at=lines.ordered_at.min(), revenue=lines.revenue.sum().cast("float64"),
        margin=lines.margin.sum().cast("float64"),
    ).to_pandas()
    stamps = pd.to_datetime(orders["ordered_at"])
    orders["ordered_at"] = stamps.dt.tz_convert("UTC").dt.tz_localize(None) if stamps.dt.tz is not None else stamps
    return orders


@dataclass
class FittedCLV:
    """BG/NBD and Gamma-Gamma fitted on the orders up to ``as_of``, and the margin share applied."""

    purchase_model: BetaGeoModel
    spend_model: GammaGammaModel
    margin_share: float
    as_of: dt.datetime
    customers: int
    first_order_at: dt.datetime

    def parameters(self) -> dict[str, Any]:
        return {
            "bgnbd": self.purchase_model.params_,
            "gamma_gamma": self.spend_model.params_,
            "margin_share": self.margin_share,
            "time_unit": "D",
        }


def _naive_utc(instant: dt.datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(instant)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def _summary(orders: pd.DataFrame, *, as_of: dt.datetime, calibration_end: dt.datetime | None = None) -> pd.DataFrame:
    return rfm_summary(
        orders, "customer_key", "ordered_at", monetary="revenue", freq="D",
        calibration_end=None if calibration_end is None else _naive_utc(calibration_end),
        observation_end=_naive_utc(as_of), where="attributed orders",
    )


def _fit(summary: pd.DataFrame) -> tuple[BetaGeoModel, GammaGammaModel]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return BetaGeoModel().fit(summary), GammaGammaModel().fit(summary)
    except SpilloverIneligibleError:
        raise
    except SpilloverInputError as exc:
        raise SpilloverIneligibleError(f"clv: {exc}") from exc


def fit_clv_models(orders: pd.DataFrame, *, as_of: dt.datetime) -> FittedCLV:
    """Fit both models on every order up to ``as_of``; refuses when the orders cannot support them."""
    if orders.empty:
        raise SpilloverIneligibleError("clv: no order is attributed to a customer; load orders and build identity first")
    revenue = float(orders["revenue"].sum())
    margin_share = float(orders["margin"].sum()) / revenue if revenue > 0 else 0.0
    if not 0 < margin_share <= 1:
        raise SpilloverIneligibleError(
            f"clv: contribution margin is {margin_share:.1%} of revenue over all orders; a lifetime value in "
            "margin needs a positive share (check unit_cost in the product catalog)"
        )
    summary = _summary(orders, as_of=as_of)
    purchase, spend = _fit(summary)
    if spend.params_["q"] <= 1:
        raise SpilloverIneligibleError(
            f"clv: the Gamma-Gamma fit gives q = {spend.params_['q']:.3g} <= 1, an infinite mean spend per order; "
            "look for extreme order values, or wait for more repeat buyers"
        )
    return FittedCLV(
        purchase_model=purchase, spend_model=spend, margin_share=margin_share, as_of=as_of,
        customers=len(summary), first_order_at=orders["ordered_at"].min().to_pydatetime().replace(tzinfo=dt.timezone.utc),
    )


def score_clv(fitted: FittedCLV, orders: pd.DataFrame, *, as_of: dt.datetime, settings: PredictSettings) -> pd.DataFrame:
    """``customer_key, p_alive, clv`` for every customer with an order up to ``as_of``."""
    summary = _summary(orders, as_of=as_of)
    predictions = predict_customers(
        summary, fitted.purchase_model, fitted.spend_model, horizon=settings.clv_horizon_months,
        discount_rate=settings.clv_discount_rate, margin=fitted.margin_share, time_unit="D",
        id_column="customer_key", where="attributed orders",
    )
    return predictions[["customer_key", "p_alive", "clv"]]


def clv_holdout(orders: pd.DataFrame, *, as_of: dt.datetime, span_days: int, settings: PredictSettings) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Refit BG/NBD before a holdout period and compare its expected repeat purchases in the holdout
    with the actual ones, per calibration frequency (``HOLDOUT_FREQUENCY_CAP`` and above together).

    The holdout is ``clv_holdout_days``, at most a third of the data's span. Returns the table
    (``mart_clv__holdout``) and its totals.
    """
    holdout_days = min(settings.clv_holdout_days, span_days // 3)
    if holdout_days < 1:
        raise SpilloverIneligibleError(f"clv: {span_days} days of data leave no holdout period to check the model on")
    calibration_end = as_of - dt.timedelta(days=holdout_days)
    summary = _summary(orders, as_of=as_of, calibration_end=calibration_end)
    purchase, _ = _fit(summary)
    duration = float(summary["duration_holdout"].iloc[0])
    predicted = purchase.expected_purchases(duration, summary["frequency"], summary["recency"], summary["T"])
    frame = pd.DataFrame({
        "frequency": np.minimum(summary["frequency"].to_numpy(), HOLDOUT_FREQUENCY_CAP),
        "actual": summary["frequency_holdout"].to_numpy(dtype=float),
        "predicted": predicted,
    })
    table = frame.groupby("frequency", sort=True).agg(
        customers=("actual", "size"), actual_purchases=("actual", "sum"), predicted_purchases=("predicted", "sum")
    ).reset_index()
    table["frequency"] = table["frequency"].astype("int64")
    table["frequency_label"] = [
        f"{f}+" if f == HOLDOUT_FREQUENCY_CAP else str(f) for f in table["frequency"]
    ]
    table["customers"] = table["customers"].astype("int64")
    table["mean_actual"] = table["actual_purchases"] / table["customers"]
    table["mean_predicted"] = table["predicted_purchases"] / table["customers"]
    table["calibration_end"] = pd.Timestamp(calibration_end).tz_convert("UTC") if pd.Timestamp(calibration_end).tzinfo else pd.Timestamp(calibration_end, tz="UTC")
    table["holdout_days"] = int(duration)
    table = table[["frequency", "frequency_label", "customers", "actual_purchases", "predicted_purchases",
                   "mean_actual", "mean_predicted", "calibration_end", "holdout_days"]]
    actual, expected = float(frame["actual"].sum()), float(frame["predicted"].sum())
    totals = {
        "calibration_end": pd.Timestamp(calibration_end).isoformat(),
        "holdout_days": int(duration),
        "customers": len(frame),
        "actual_purchases": actual,
        "predicted_purchases": expected,
        "ratio": expected / actual if actual > 0 else None,
        "mean_absolute_error": float(np.mean(np.abs(frame["predicted"] - frame["actual"]))),
    }
    return table, totals
