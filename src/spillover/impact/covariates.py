"""Pre-period covariates of each index row: what the customer bought, how often and how recently, how
they engaged on GA4, who they are in the CRM, which devices they already owned, and the index month.

Everything is measured in the ``P`` days before the index day (``[index − P, index − 1]``, or an
earlier window of the same length for a placebo run), never on the index day itself, so nothing the
product caused can leak into them. Money and counts are pre-aggregated per customer and local day
before the window join, so the join's size is index rows × active days, not × order lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import ibis

from spillover.errors import SpilloverInputError
from spillover.impact.facts import column_suffix
from spillover.ingest.shop import CHANNELS
from spillover.profiles.attribution import MONEY

if TYPE_CHECKING:
    from spillover.impact.cohorts import CohortSpec
    from spillover.impact.facts import Facts

KEYS = ["customer_key", "index_day"]


def _suffixes(names: Sequence[str], what: str) -> dict[str, str]:
    suffixes = {name: column_suffix(name) for name in names}
    seen: dict[str, str] = {}
    for name, suffix in suffixes.items():
        if suffix in seen:
            raise SpilloverInputError(
                f"impact: {what} {seen[suffix]!r} and {name!r} would name the same covariate column "
                f"(…__{suffix}); rename one of them in the catalog"
            )
        seen[suffix] = name
    return suffixes


def daily_activity(facts: Facts, spec: CohortSpec) -> ibis.Table:
    """Per customer and local day with an order: orders, money (total, by channel, by category) and
    ``downstream_margin`` — the margin of every line except ``spec``'s excluded products and
    categories."""
    lines = facts.lines
    excluded = lines.product_id.isin(list(spec.excluded_products))
    if spec.exclude_categories:
        excluded = excluded | lines.category.isin(list(spec.exclude_categories))
    money: dict[str, ibis.Value] = {}
    for channel in CHANNELS:
        money[f"revenue_{channel}"] = lines.revenue.sum(where=lines.channel == channel)
    for category, suffix in _suffixes(facts.categories, "categories").items():
        money[f"revenue__{suffix}"] = lines.revenue.sum(where=lines.category == category)
        money[f"margin__{suffix}"] = lines.margin.sum(where=lines.category == category)
    return lines.group_by("customer_key", "day").aggregate(
        orders=lines.order_id.nunique(),
        revenue=lines.revenue.sum(),
        margin=lines.margin.sum(),
        discount=lines.discount.sum(),
        downstream_margin=lines.margin.sum(where=~excluded),
        **money,
    )


def _daily_engagement(facts: Facts, event_families: Mapping[str, Sequence[str]]) -> tuple[ibis.Table, ibis.Table]:
    events = facts.events
    per_family = {
        f"{family}_events": events.event_name.isin(list(names)).sum() for family, names in event_families.items()
    }
    daily_events = events.group_by("customer_key", "day").aggregate(events=events.count(), **per_family)
    sessions = facts.sessions
    daily_sessions = sessions.group_by("customer_key", "day").aggregate(
        sessions=sessions.count(), engaged_sessions=sessions.engaged.cast("int64").sum()
    )
    return daily_events, daily_sessions


def _window_sums(
    keys: ibis.Table, daily: ibis.Table, columns: Sequence[str], start_back: int, end_back: int
) -> ibis.Table:
    """Sums of ``columns`` over each key's days ``[index − start_back, index − end_back]``, plus the
    number of such days and the latest of them."""
    joined = keys.join(
        daily,
        ["customer_key", daily.day >= keys.index_day - start_back, daily.day <= keys.index_day - end_back],
    )
    return joined.group_by(KEYS).aggregate(
        active_days=joined.count(),
        last_day=joined.day.max(),
        **{column: joined[column].sum() for column in columns},
    )


def pre_period_covariates(
    facts: Facts,
    index: ibis.Table,
    daily: ibis.Table,
    spec: CohortSpec,
    *,
    event_families: Mapping[str, Sequence[str]],
    ends_days_before: int = 0,
) -> ibis.Table:
    """Covariates of every ``index`` row over the ``spec.pre_period_days`` days ending
    ``ends_days_before`` days before the day before the index (0: the pre-period proper; the horizon:
    the window before ``margin_before``, for a placebo run). Columns in ``docs/impact.md``."""
    period = spec.pre_period_days
    start_back, end_back = ends_days_before + period, ends_days_before + 1
    keys = index.select(*KEYS)
    money_columns = [c for c in daily.columns if c not in ("customer_key", "day", "downstream_margin")]
    money = _window_sums(keys, daily, money_columns, start_back, end_back)
    daily_events, daily_sessions = _daily_engagement(facts, event_families)
    event_columns = [c for c in daily_events.columns if c not in ("customer_key", "day")]
    events = _window_sums(keys, daily_events, event_columns, start_back, end_back)
    sessions = _window_sums(keys, daily_sessions, ["sessions", "engaged_sessions"], start_back, end_back)

    others = [p for p in facts.gateway_products if p != spec.product_id]
    adoptions = facts.adoptions
    first_adoption = {
        f"adopted_day__{column_suffix(p)}": adoptions.adopted_day.min(where=adoptions.product_id == p) for p in others
    }
    owned = adoptions.group_by("customer_key").aggregate(**first_adoption) if others else None

    t = (
        keys.left_join(money, KEYS).drop("customer_key_right", "index_day_right")
        .left_join(events.rename(event_days="active_days", event_last_day="last_day"), KEYS)
        .drop("customer_key_right", "index_day_right")
        .left_join(sessions.rename(session_days="active_days", session_last_day="last_day"), KEYS)
        .drop("customer_key_right", "index_day_right")
        .left_join(facts.customers, "customer_key").drop("customer_key_right")
    )
    if owned is not None:
        t = t.left_join(owned, "customer_key").drop("customer_key_right")

    window_end = t.index_day - end_back
    observed = ibis.least(period, window_end - facts.calendar.first_day + 1)
    columns: dict[str, ibis.Value] = {
        "customer_key": t.customer_key,
        "index_day": t.index_day,
        "pre_days_observed": ibis.greatest(observed, 0).cast("int64"),
        "pre_trips": t.active_days.fill_null(0).cast("int64"),
        "pre_orders": t.orders.fill_null(0).cast("int64"),
        "pre_recency_days": (window_end + 1 - t.last_day).fill_null(period + 1).cast("int64"),
    }
    for column in money_columns:
        if column != "orders":
            columns[f"pre_{column}"] = t[column].fill_null(0).cast(MONEY)
    columns["pre_events"] = t.events.fill_null(0).cast("int64")
    for family in event_families:
        columns[f"pre_{family}_events"] = t[f"{family}_events"].fill_null(0).cast("int64")
    columns["pre_sessions"] = t.sessions.fill_null(0).cast("int64")
    columns["pre_engaged_sessions"] = t.engaged_sessions.fill_null(0).cast("int64")
    columns["tenure_days"] = ibis.greatest(t.index_day - t.first_seen_day, 0).fill_null(0).cast("int64")
    columns["member"] = (t.signup_day < t.index_day).fill_null(False).cast("int64")
    columns["tier"] = t.tier
    columns["region"] = t.region
    for product in others:
        adopted = t[f"adopted_day__{column_suffix(product)}"]
        columns[f"owns_{column_suffix(product)}"] = (adopted < t.index_day).fill_null(False).cast("int64")
    columns["index_month"] = facts.calendar.civil(t.index_day)[1]
    return t.select(**columns)
