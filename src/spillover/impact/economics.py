"""Unit economics of a gateway product: what one unit sold is worth once its downstream effect is
counted — hardware margin, plus the present value of the incremental downstream margin over the
owner's life, minus the cost of serving the owner — with an interval, the chance it is positive, the
payback month, what would make it break even, and a verdict.

Net value per unit (Gupta, Lehmann & Stuart 2004, CLV = Σ m_t r^t / (1 + i)^t − AC)::

    V = hardware_margin − Σ_t c_t / (1 + i)^(t/12) + Σ_t m_t / (1 + i)^(t/12),   t = 1 … life (months)

with ``m_t`` the incremental downstream margin per owner in month ``t`` (an :class:`EffectCurve`),
``c_t`` the monthly service cost and ``i`` the annual discount rate; cash flows fall at the end of
each month. ``V`` is linear in the effect curve, so its standard error is exact given the curve's
covariance (``sqrt(dᵀ Σ d)``, the delta method without approximation) and the interval is normal.
Pure functions over numpy; no engine.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

from spillover.errors import SpilloverInputError

if TYPE_CHECKING:
    from spillover.config import ImpactSettings

#: Days in a month of ownership (a twelfth of a year).
DAYS_PER_MONTH = 365.25 / 12

VALUE_CREATOR = "value creator"
VALUE_DESTROYER = "value destroyer"
INCONCLUSIVE = "inconclusive"


def _check_persistence(monthly_persistence: float) -> None:
    if not 0.0 <= monthly_persistence <= 1.0:
        raise SpilloverInputError(f"monthly_persistence {monthly_persistence} must lie between 0 and 1")


def horizon_loading(horizon_days: float, life_months: int, monthly_persistence: float) -> np.ndarray:
    """Month-by-month share of an effect measured as ``ATT`` over ``horizon_days``: the margin in
    month ``t`` is ``ATT × loading[t − 1]``.

    Inside the horizon the effect accrues evenly (``ATT / horizon_days`` a day, so a month straddling
    the horizon's end gets its share of days); after it, the daily rate keeps a share
    ``monthly_persistence`` per month, continuously (``ρ^((day − H) / month)``).
    """
    if horizon_days <= 0 or life_months < 1:
        raise SpilloverInputError(
            f"horizon_days ({horizon_days}) must be positive and life_months ({life_months}) at least 1"
        )
    _check_persistence(monthly_persistence)
    rate = 1.0 / horizon_days
    loading = np.zeros(life_months)
    for month in range(1, life_months + 1):
        start, end = (month - 1) * DAYS_PER_MONTH, month * DAYS_PER_MONTH
        inside = max(0.0, min(end, horizon_days) - start)
        after_start, after_end = max(start, horizon_days), end
        after = 0.0
        if after_end > after_start:
            if monthly_persistence == 1.0:
                after = after_end - after_start
            elif monthly_persistence > 0.0:
                decay = -math.log(monthly_persistence) / DAYS_PER_MONTH  # per day
                after = (
                    math.exp(-decay * (after_start - horizon_days)) - math.exp(-decay * (after_end - horizon_days))
                ) / decay
        loading[month - 1] = rate * (inside + after)
    return loading


@dataclass(frozen=True)
class EffectCurve:
    """Incremental downstream margin per owner in each month of ownership (``mean[t − 1]`` for month
    ``t``), its covariance, and how many months of it were measured rather than extrapolated."""

    mean: np.ndarray
    covariance: np.ndarray
    measured_months: float

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=float)
        covariance = np.asarray(self.covariance, dtype=float)
        if mean.ndim != 1 or covariance.shape != (len(mean), len(mean)):
            raise SpilloverInputError(
                f"effect curve: mean has shape {mean.shape} and covariance {covariance.shape}; "
                "the covariance must be (months × months)"
            )
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "covariance", covariance)

    @property
    def life_months(self) -> int:
        return len(self.mean)

    @classmethod
    def from_horizon(
        cls, att: float, se: float, *, horizon_days: float, life_months: int, monthly_persistence: float
    ) -> EffectCurve:
        """The curve of one ATT estimate over ``horizon_days`` (see :func:`horizon_loading`); every
        month moves with the one estimate, so the covariance is ``se² · l lᵀ``."""
        if se < 0:
            raise SpilloverInputError(f"effect curve: standard error {se} is negative")
        loading = horizon_loading(horizon_days, life_months, monthly_persistence)
        return cls(att * loading, se**2 * np.outer(loading, loading), horizon_days / DAYS_PER_MONTH)

    @classmethod
    def from_monthly(
        cls,
        effects: np.ndarray,
        covariance: np.ndarray,
        *,
        life_months: int,
        monthly_persistence: float,
    ) -> EffectCurve:
        """A curve from per-month effects measured for months 1…k (e.g. an event study by months since
        adoption, with their covariance), carried past month k from its last value:
        ``m_t = m_k · ρ^(t − k)``. Months past ``life_months`` are dropped."""
        effects = np.asarray(effects, dtype=float)
        covariance = np.asarray(covariance, dtype=float)
        measured = len(effects)
        if measured == 0 or covariance.shape != (measured, measured):
            raise SpilloverInputError(
                f"effect curve: {measured} monthly effects need a {measured}×{measured} covariance, "
                f"got {covariance.shape}"
            )
        _check_persistence(monthly_persistence)
        transform = np.zeros((life_months, measured))
        for month in range(life_months):
            if month < measured:
                transform[month, month] = 1.0
            else:
                transform[month, measured - 1] = monthly_persistence ** (month - measured + 1)
        return cls(transform @ effects, transform @ covariance @ transform.T, float(min(measured, life_months)))


def discount_factors(life_months: int, annual_discount_rate: float) -> np.ndarray:
    """``(1 + i)^(−t/12)`` for months ``t = 1 … life_months`` (cash at each month's end)."""
    if not 0.0 <= annual_discount_rate < 1.0:
        raise SpilloverInputError(f"annual discount rate {annual_discount_rate} must lie in [0, 1)")
    months = np.arange(1, life_months + 1)
    return (1.0 + annual_discount_rate) ** (-months / 12.0)


@dataclass(frozen=True)
class UnitEconomics:
    """What one unit sold is worth, per unit, in the orders' currency (see module docstring)."""

    hardware_margin: float
    service_cost_pv: float
    downstream_pv: float
    downstream_pv_se: float
    extrapolated_share: float
    net_value: float
    net_value_se: float
    ci_low: float
    ci_high: float
    confidence_level: float
    probability_positive: float
    payback_month: int | None
    break_even_monthly_margin: float
    estimated_monthly_margin: float
    shortfall_monthly_margin: float
    verdict: str
    reasons: tuple[str, ...]
    cumulative_value: tuple[float, ...] = field(repr=False, default=())

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def payback_month(
    hardware_margin: float, monthly_net: np.ndarray, discount: np.ndarray
) -> tuple[int | None, np.ndarray]:
    """The first month by whose end the discounted cumulative value is no longer negative (0 when
    the hardware margin alone is not), None when that never happens within the life; and the
    cumulative value month by month."""
    cumulative = hardware_margin + np.cumsum(monthly_net * discount)
    if hardware_margin >= 0:
        return 0, cumulative
    reached = np.flatnonzero(cumulative >= 0)
    return (int(reached[0]) + 1 if len(reached) else None), cumulative


def subscription_break_even(
    shortfall_monthly_margin: float, *, price: float, unit_cost: float, take_up: float | None = None
) -> dict[str, float | None]:
    """What a subscription must bring for the product to break even, given the extra margin per owner
    per month it still needs: the share of owners who must subscribe at ``price`` (margin
    ``price − unit_cost`` a month), and, given a ``take_up`` share, the monthly price needed."""
    margin = price - unit_cost
    if margin <= 0:
        raise SpilloverInputError(
            f"subscription price {price} does not exceed its unit cost {unit_cost}; it cannot close a shortfall"
        )
    needed = max(shortfall_monthly_margin, 0.0)
    result: dict[str, float | None] = {"take_up_needed": needed / margin, "price_needed": None}
    if take_up is not None:
        if not 0.0 < take_up <= 1.0:
            raise SpilloverInputError(f"take_up {take_up} must lie in (0, 1]")
        result["price_needed"] = unit_cost + needed / take_up
    return result


def _money(value: float) -> str:
    return f"{value:,.2f}"


def unit_economics(
    *,
    hardware_margin: float,
    curve: EffectCurve,
    annual_discount_rate: float,
    service_cost_per_month: float = 0.0,
    confidence_level: float = 0.95,
    diagnostics_failed: tuple[str, ...] = (),
) -> UnitEconomics:
    """Net value per unit, its interval and chance of being positive, payback, break-even and a verdict.

    ``hardware_margin`` is price − unit cost (− fulfilment and returns) per unit, negative when the
    product is sold at a loss. ``diagnostics_failed`` lists reasons the effect estimate cannot be
    trusted (poor overlap, failed placebo…): any makes the verdict ``inconclusive``.

    Verdict: ``value creator`` when the interval lies wholly above 0, ``value destroyer`` when wholly
    below, ``inconclusive`` otherwise.
    """
    if not 0.0 < confidence_level < 1.0:
        raise SpilloverInputError(f"confidence_level {confidence_level} must lie strictly between 0 and 1")
    discount = discount_factors(curve.life_months, annual_discount_rate)
    annuity = float(discount.sum())
    service_pv = service_cost_per_month * annuity
    downstream_pv = float(discount @ curve.mean)
    downstream_se = math.sqrt(max(float(discount @ curve.covariance @ discount), 0.0))
    net = hardware_margin - service_pv + downstream_pv
    z = NormalDist().inv_cdf(0.5 + confidence_level / 2)
    low, high = net - z * downstream_se, net + z * downstream_se
    if downstream_se > 0:
        probability = NormalDist().cdf(net / downstream_se)
    else:
        probability = 1.0 if net > 0 else 0.0 if net < 0 else 0.5

    measured = np.clip(curve.measured_months - np.arange(curve.life_months), 0.0, 1.0)  # share of each month measured
    extrapolated_pv = float(discount @ (curve.mean * (1.0 - measured)))
    extrapolated_share = extrapolated_pv / downstream_pv if downstream_pv != 0 else 0.0

    monthly_net = curve.mean - service_cost_per_month
    payback, cumulative = payback_month(hardware_margin, monthly_net, discount)
    break_even = (service_pv - hardware_margin) / annuity
    estimated = downstream_pv / annuity

    level = f"{confidence_level:.0%}"
    interval = f"[{_money(low)}, {_money(high)}]"
    reasons: list[str] = []
    if diagnostics_failed:
        verdict = INCONCLUSIVE
        reasons += [f"the effect estimate failed a diagnostic: {reason}" for reason in diagnostics_failed]
    elif low > 0:
        verdict = VALUE_CREATOR
        reasons.append(f"the {level} interval of net value per unit, {interval}, lies above 0")
    elif high < 0:
        verdict = VALUE_DESTROYER
        reasons.append(f"the {level} interval of net value per unit, {interval}, lies below 0")
    else:
        verdict = INCONCLUSIVE
        reasons.append(f"the {level} interval of net value per unit, {interval}, contains 0")
    if hardware_margin < 0:
        reasons.append(
            f"each unit is sold at a loss of {_money(-hardware_margin)}; downstream margin must make up "
            f"{_money(break_even)} per owner per month over {curve.life_months} months to break even, "
            f"and the estimate is {_money(estimated)}"
        )
    if service_cost_per_month > 0:
        reasons.append(
            f"serving an owner costs {_money(service_cost_per_month)} a month, {_money(service_pv)} over "
            f"{curve.life_months} months at present value"
        )
    if extrapolated_share > 0.5:
        reasons.append(
            f"{extrapolated_share:.0%} of the downstream value lies beyond the {curve.measured_months:.1f} "
            "months measured (extrapolated)"
        )
    return UnitEconomics(
        hardware_margin=hardware_margin,
        service_cost_pv=service_pv,
        downstream_pv=downstream_pv,
        downstream_pv_se=downstream_se,
        extrapolated_share=extrapolated_share,
        net_value=net,
        net_value_se=downstream_se,
        ci_low=low,
        ci_high=high,
        confidence_level=confidence_level,
        probability_positive=probability,
        payback_month=payback,
        break_even_monthly_margin=break_even,
        estimated_monthly_margin=estimated,
        shortfall_monthly_margin=break_even - estimated,
        verdict=verdict,
        reasons=tuple(reasons),
        cumulative_value=tuple(float(v) for v in cumulative),
    )


def unit_economics_from_settings(
    settings: ImpactSettings,
    *,
    product_id: str,
    hardware_margin: float,
    att: float,
    att_se: float,
    horizon_days: int,
    diagnostics_failed: tuple[str, ...] = (),
) -> UnitEconomics:
    """:func:`unit_economics` of one ATT estimate over ``horizon_days``, with the life, discount rate,
    persistence, service cost and confidence level ``[impact]`` configures for ``product_id``."""
    curve = EffectCurve.from_horizon(
        att, att_se, horizon_days=horizon_days, life_months=settings.life_months,
        monthly_persistence=settings.monthly_persistence,
    )
    return unit_economics(
        hardware_margin=hardware_margin,
        curve=curve,
        annual_discount_rate=settings.discount_rate,
        service_cost_per_month=settings.service_cost_per_month.get(product_id, 0.0),
        confidence_level=settings.confidence_level,
        diagnostics_failed=diagnostics_failed,
    )
