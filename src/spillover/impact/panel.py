"""The monthly long panel of one gateway product for a staggered difference-in-differences / event
study: one row per customer and complete calendar month, with the month's downstream margin and the
month the customer adopted the product (its cohort; 0 for never).

Customers are those with at least one identified order; the panel is balanced over the complete local
calendar months of the data (months before a customer's first order hold 0, as they bought nothing).
Periods number those months 1, 2, …; a customer who adopted before the first complete month is
already treated there and is left out (no untreated period to compare with); one who adopted after
the last complete month keeps its later period number and is not yet treated anywhere in the panel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis

from spillover.errors import SpilloverInputError
from spillover.impact.calendar import date_of
from spillover.impact.covariates import daily_activity
from spillover.impact.sampling import sample_beyond
from spillover.profiles.attribution import MONEY

if TYPE_CHECKING:
    from spillover.impact.cohorts import CohortSpec
    from spillover.impact.facts import Facts


def monthly_panel(
    facts: Facts, spec: CohortSpec, *, max_never_treated: int | None = None, seed: int = 0,
    daily: ibis.Table | None = None,
) -> ibis.Table:
    """``customer_key, period, month_start, downstream_margin, first_treated`` for ``spec.product_id``
    (the horizon is not used; exclusions are).

    ``max_never_treated``: keep every adopter but only about that many customers who never adopted,
    drawn at random (seeded, in the engine). Never-adopters only serve as controls, whose means a
    random sample estimates without bias, and the aggregation weights use the adopter cohorts'
    relative sizes, which the sampling leaves alone: a big warehouse's panel stays small. ``daily``:
    :func:`daily_activity` of ``spec`` when already built."""
    months = facts.calendar.complete_months()
    if not months:
        raise SpilloverInputError(
            f"impact panel: the data ({date_of(facts.calendar.first_day)} to "
            f"{date_of(facts.calendar.last_day)}) holds no complete calendar month; load at least one whole month"
        )
    first_month, last_month = months[0], months[-1]  # complete months are consecutive
    calendar = facts.calendar
    daily = (daily_activity(facts, spec) if daily is None else daily).select("customer_key", "day", "downstream_margin")
    dated = daily.mutate(month=calendar.month(daily.day))
    monthly = dated.group_by("customer_key", "month").aggregate(margin=dated.downstream_margin.sum())

    adoptions = facts.adoptions.filter(facts.adoptions.product_id == spec.product_id)
    cohorts = adoptions.select(
        "customer_key", first_treated=(calendar.month(adoptions.adopted_day) - first_month + 1).cast("int64")
    )
    already_treated = cohorts.filter(cohorts.first_treated <= 0).select("customer_key")

    customers = daily.select("customer_key").distinct().anti_join(already_treated, "customer_key")
    if max_never_treated is not None:
        adopters = cohorts.select("customer_key", adopter=ibis.literal(True))
        flagged = customers.left_join(adopters, "customer_key").drop("customer_key_right")
        flagged = flagged.mutate(adopter=flagged.adopter.fill_null(False))
        customers = sample_beyond(flagged, "adopter", max_never_treated, seed, ("customer_key",)).select("customer_key")
    grid = customers.select("customer_key", month=ibis.range(first_month, last_month + 1)).unnest("month")
    panel = grid.left_join(monthly, ["customer_key", "month"]).drop("customer_key_right", "month_right")
    panel = panel.left_join(cohorts, "customer_key").drop("customer_key_right")
    return panel.select(
        "customer_key",
        period=(panel.month - first_month + 1).cast("int64"),
        month_start=ibis.date(1970 + panel.month // 12, panel.month % 12 + 1, 1),
        downstream_margin=panel.margin.fill_null(0).cast(MONEY),
        first_treated=panel.first_treated.fill_null(0).cast("int64"),
    ).order_by("customer_key", "period")
