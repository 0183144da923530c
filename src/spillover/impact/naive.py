"""The naive figures a downstream-impact metric used to report, computed on the same design so they
can be shown (labelled naive) beside the honest estimate they are not.

- ``post_purchase_margin``: all downstream margin buyers made in the ``H`` days after buying,
  credited to the product (the attribution that failed);
- ``owner_vs_non_owner``: buyers' margin in their window minus the margin of customers who never
  bought it, over the same calendar windows;
- ``before_after``: buyers' margin in their window minus their margin in the ``H`` days before;
- ``adopters_vs_controls``: the design's plain difference in means (calendar-weighted controls), with
  no covariates.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import ibis

from spillover.impact.cohorts import CohortSpec, cohort
from spillover.impact.covariates import daily_activity

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from spillover.impact.facts import Facts


@dataclass(frozen=True)
class NaiveFigure:
    """One naive figure in money per buyer, its standard error (None where not computed) and the
    number of buyers it averages over."""

    value: float | None
    se: float | None
    buyers: int
    description: str
    naive: bool = True


@dataclass(frozen=True)
class NaiveFigures:
    """The naive figures of one product and horizon."""

    product_id: str
    horizon_days: int
    post_purchase_margin: NaiveFigure
    owner_vs_non_owner: NaiveFigure
    before_after: NaiveFigure
    adopters_vs_controls: NaiveFigure

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _mean_se(n: int, total: float, squares: float) -> tuple[float | None, float | None]:
    if n == 0:
        return None, None
    mean = total / n
    if n < 2:
        return mean, None
    variance = max(squares - n * mean * mean, 0.0) / (n - 1)
    return mean, math.sqrt(variance / n)


def _as_float(value: float | int | None) -> float:
    return 0.0 if value is None else float(value)


def _design_moments(design: ibis.Table) -> dict[str, float]:
    """Sums the figures need, in one aggregate in the engine."""
    y = design.outcome.cast("float64")
    before = design.margin_before.cast("float64")
    change = y - before
    w = design.calendar_weight
    treated, control = design.treated, ~design.treated
    paired = design.treated & design.before_complete
    aggregates = {
        "n_treated": design.treated.cast("int64").sum(),
        "sum_y": y.sum(where=treated),
        "sum_y2": (y * y).sum(where=treated),
        "n_paired": paired.cast("int64").sum(),
        "sum_change": change.sum(where=paired),
        "sum_change2": (change * change).sum(where=paired),
        "sum_w": w.sum(where=control),
        "sum_wy": (w * y).sum(where=control),
        "sum_w2": (w * w).sum(where=control),
        "sum_w2y": (w * w * y).sum(where=control),
        "sum_w2y2": (w * w * y * y).sum(where=control),
    }
    row = design.aggregate(**aggregates).to_pyarrow().to_pylist()[0]
    return {name: _as_float(value) for name, value in row.items()}


def _never_adopters_mean(facts: Facts, spec: CohortSpec, design: ibis.Table, daily: ibis.Table) -> float | None:
    """Mean downstream margin of customers who never bought the product, per customer, over the
    adopters' windows: for each adoption day ``d``, the never-buyers' total margin in ``(d, d + H]``
    divided by the never-buyers who had placed an order by ``d + H`` (every customer the total can
    include, buyers in the window or not), averaged over adopters."""
    horizon = spec.horizon_days
    adopters = facts.adoptions.filter(facts.adoptions.product_id == spec.product_id).select("customer_key")
    never = daily.anti_join(adopters, "customer_key")
    totals = never.group_by("day").aggregate(margin=never.downstream_margin.sum().cast("float64"))
    firsts = never.group_by("customer_key").aggregate(first_day=never.day.min())
    joined_days = design.filter(design.treated).group_by("index_day").aggregate(buyers=ibis._.count())
    window = joined_days.join(
        totals, [totals.day > joined_days.index_day, totals.day <= joined_days.index_day + horizon]
    )
    margins = window.group_by("index_day").aggregate(margin=window.margin.sum())
    starts = firsts.group_by("first_day").aggregate(new=firsts.count())
    known = joined_days.join(starts, starts.first_day <= joined_days.index_day + horizon)
    customers = known.group_by("index_day").aggregate(customers=known.new.sum())
    per_day = joined_days.left_join(margins, "index_day").drop("index_day_right").join(customers, "index_day")
    per_customer = per_day.margin.fill_null(0.0) / per_day.customers
    result = per_day.aggregate(
        weighted=(per_customer * per_day.buyers).sum(), buyers=per_day.buyers.sum()
    ).to_pyarrow().to_pylist()[0]
    if not result["buyers"]:
        return None
    return float(result["weighted"]) / float(result["buyers"])


def naive_figures(
    facts: Facts,
    spec: CohortSpec,
    *,
    event_families: Mapping[str, Sequence[str]],
    design: ibis.Table | None = None,
    daily: ibis.Table | None = None,
) -> NaiveFigures:
    """The naive figures of ``spec``'s design (pass ``design``, the :func:`cohort` table, and
    ``daily``, its :func:`daily_activity`, to reuse ones already built or cached)."""
    daily = daily if daily is not None else daily_activity(facts, spec)
    design = design if design is not None else cohort(facts, spec, event_families=event_families, daily=daily)
    s = _design_moments(design)
    n = int(s["n_treated"])
    post, post_se = _mean_se(n, s["sum_y"], s["sum_y2"])
    n_paired = int(s["n_paired"])
    change, change_se = _mean_se(n_paired, s["sum_change"], s["sum_change2"])

    gap: float | None = None
    gap_se: float | None = None
    if post is not None and s["sum_w"] > 0:
        control_mean = s["sum_wy"] / s["sum_w"]
        # Variance of a weighted (ratio) mean, linearised.
        spread = s["sum_w2y2"] - 2 * control_mean * s["sum_w2y"] + control_mean**2 * s["sum_w2"]
        control_var = spread / s["sum_w"] ** 2
        gap = post - control_mean
        gap_se = math.sqrt(post_se**2 + max(control_var, 0.0)) if post_se is not None else None

    non_owner = _never_adopters_mean(facts, spec, design, daily) if n else None
    owner_gap = post - non_owner if post is not None and non_owner is not None else None
    horizon = spec.horizon_days
    return NaiveFigures(
        product_id=spec.product_id,
        horizon_days=horizon,
        post_purchase_margin=NaiveFigure(
            post, post_se, n, f"all downstream margin buyers made in the {horizon} days after buying"
        ),
        owner_vs_non_owner=NaiveFigure(
            owner_gap, post_se if owner_gap is not None else None, n,
            f"buyers' {horizon}-day margin minus never-buyers' over the same calendar windows "
            "(se: the buyers' side only)",
        ),
        before_after=NaiveFigure(
            change, change_se, n_paired, f"buyers' margin in the {horizon} days after minus the {horizon} days before"
        ),
        adopters_vs_controls=NaiveFigure(
            gap, gap_se, n, "difference in means of the design's outcome, calendar-weighted controls, no covariates"
        ),
    )
