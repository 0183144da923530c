"""``mart_customer_profile``: one row per customer of ``dim_customers``, as of a fixed instant.

Orders, money, adoptions, sessions, GA4 engagement, consent and CRM attributes, each aggregated per
customer and joined onto ``dim_customers``. Durations are counted back from ``as_of`` (the latest
event or order in the data, not the clock), so rebuilding the same data gives the same profiles.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import ibis

from spillover.ingest.shop import CHANNELS
from spillover.profiles.attribution import MONEY

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

CUSTOMERS = "dim_customers"
MEMBERS = "stg_crm__members"
SECONDS_PER_DAY = 86_400


def _days_before(as_of: dt.datetime, moment: ibis.TimestampValue) -> ibis.IntegerValue:
    """Whole days from ``moment`` to ``as_of``."""
    elapsed = ibis.literal(int(as_of.timestamp())) - moment.epoch_seconds()
    return (elapsed / SECONDS_PER_DAY).floor().cast("int64")


def _money(value: ibis.Value) -> ibis.Value:
    return value.fill_null(0).cast(MONEY)


def _as_map(entries: ibis.ArrayValue, key: str, value: str) -> ibis.MapValue:
    return ibis.map(entries.map(lambda e: e[key]), entries.map(lambda e: e[value]))


def _orders(lines: ibis.Table) -> ibis.Table:
    """Orders, RFM inputs and money per customer, with revenue and margin by channel."""
    lines = lines.filter(lines.customer_key.notnull())
    money: dict[str, ibis.Value] = {}
    for channel in CHANNELS:
        in_channel = lines.channel == channel
        money[f"revenue_{channel}"] = lines.revenue.sum(where=in_channel)
        money[f"margin_{channel}"] = lines.margin.sum(where=in_channel)
    return lines.group_by("customer_key").aggregate(
        orders=lines.order_id.nunique(),
        first_order_at=lines.ordered_at.min(),
        last_order_at=lines.ordered_at.max(),
        revenue=lines.revenue.sum(),
        margin=lines.margin.sum(),
        discount=lines.discount.sum(),
        **money,
    )


def _by_category(lines: ibis.Table) -> ibis.Table:
    """Revenue and margin per customer as maps keyed by product category."""
    lines = lines.filter(lines.customer_key.notnull())
    per = lines.group_by("customer_key", "category").aggregate(
        revenue=lines.revenue.sum().cast(MONEY), margin=lines.margin.sum().cast(MONEY)
    )
    grouped = per.group_by("customer_key").aggregate(
        entries=ibis.struct({"category": per.category, "revenue": per.revenue, "margin": per.margin}).collect()
    )
    return grouped.select(
        "customer_key",
        revenue_by_category=_as_map(grouped.entries, "category", "revenue"),
        margin_by_category=_as_map(grouped.entries, "category", "margin"),
    )


def _adoptions(adoptions: ibis.Table) -> ibis.Table:
    """Gateway products each customer owns, as a map product_id → adopted_at."""
    grouped = adoptions.group_by("customer_key").aggregate(
        gateway_products=adoptions.count(),
        first_adoption_at=adoptions.adopted_at.min(),
        entries=ibis.struct({"product_id": adoptions.product_id, "adopted_at": adoptions.adopted_at}).collect(),
    )
    return grouped.select(
        "customer_key",
        "gateway_products",
        "first_adoption_at",
        adopted=_as_map(grouped.entries, "product_id", "adopted_at"),
    )


def _engagement(events: ibis.Table, families: Mapping[str, Sequence[str]]) -> ibis.Table:
    """GA4 events per customer: all, per family, and the latest consent the events stated."""
    events = events.filter(events.customer_key.notnull())
    consent = ibis.struct({"analytics": events.consent_analytics_storage, "ads": events.consent_ads_storage})
    counts = {
        f"{family}_events": events.event_name.isin(list(names)).sum() for family, names in families.items()
    }
    return events.group_by("customer_key").aggregate(
        events=events.count(),
        **counts,
        ga4_consent=consent.argmax(
            events.event_timestamp, where=consent["analytics"].notnull() | consent["ads"].notnull()
        ),
    )


def _sessions(sessions: ibis.Table) -> ibis.Table:
    """Sessions per customer: how many, engaged, when, and through which channels."""
    sessions = sessions.filter(sessions.customer_key.notnull())
    per_channel = sessions.group_by("customer_key", "channel").aggregate(channel_sessions=sessions.count())
    rank = ibis.row_number().over(
        group_by=per_channel.customer_key,
        order_by=[ibis.desc(per_channel.channel_sessions), per_channel.channel],
    )
    ranked = per_channel.mutate(rank=rank)
    main = ranked.filter(ranked["rank"] == 0).select("customer_key", main_session_channel=ranked.channel)
    totals = sessions.group_by("customer_key").aggregate(
        sessions=sessions.count(),
        engaged_sessions=sessions.engaged.sum(),
        first_session_at=sessions.session_start_at.min(),
        last_session_at=sessions.session_start_at.max(),
        first_session_channel=sessions.channel.argmin(sessions.session_start_at),
        session_channels=sessions.channel.nunique(),
    )
    return totals.join(main, "customer_key")


def _consent(ga4: ibis.BooleanValue, crm: ibis.BooleanValue) -> ibis.BooleanValue:
    """False when either source's latest word is no; true when one says yes and none says no."""
    return ibis.cases(
        ((ga4 == False) | (crm == False), False),  # noqa: E712 (null-aware comparison in the engine)
        (ga4.notnull() | crm.notnull(), True),
        else_=ibis.null("boolean"),
    )


def mart_customer_profile(
    con: BaseBackend,
    *,
    lines: ibis.Table,
    adoptions: ibis.Table,
    sessions: ibis.Table,
    events: ibis.Table,
    as_of: dt.datetime,
    event_families: Mapping[str, Sequence[str]],
) -> ibis.Table:
    """One profile row per ``dim_customers`` row (columns in ``docs/data-model.md``)."""
    customers = con.table(CUSTOMERS)
    members = con.table(MEMBERS).select(
        "member_id", "tier", "region", "signup_date",
        crm_consent_analytics="consent_analytics", crm_consent_ads="consent_ads",
    )
    parts = [
        _orders(lines),
        _by_category(lines),
        _adoptions(adoptions),
        _engagement(events, event_families),
        _sessions(sessions),
    ]
    joined = customers.left_join(members, "member_id")
    for part in parts:
        joined = joined.left_join(part, "customer_key").drop("customer_key_right")
    t = joined
    orders = t.orders.fill_null(0).cast("int64")
    ga4_analytics, ga4_ads = t.ga4_consent["analytics"], t.ga4_consent["ads"]
    columns: dict[str, ibis.Value] = {
        "customer_key": t.customer_key,
        "member_id": t.member_id,
        "as_of": ibis.literal(as_of, type="timestamp('UTC')"),
        "first_seen": t.first_seen,
        "last_seen": t.last_seen,
        "tenure_days": _days_before(as_of, t.first_seen),
        "orders": orders,
        "first_order_at": t.first_order_at,
        "last_order_at": t.last_order_at,
        "recency_days": _days_before(as_of, t.last_order_at),
        "frequency": ibis.greatest(orders - 1, 0).cast("int64"),
        "monetary": ibis.ifelse(orders > 0, (t.revenue / orders).cast(MONEY), ibis.null(MONEY)),
        "revenue": _money(t.revenue),
        "margin": _money(t.margin),
        "discount": _money(t.discount),
    }
    for channel in CHANNELS:
        columns[f"revenue_{channel}"] = _money(t[f"revenue_{channel}"])
        columns[f"margin_{channel}"] = _money(t[f"margin_{channel}"])
    columns |= {
        "revenue_by_category": t.revenue_by_category,
        "margin_by_category": t.margin_by_category,
        "gateway_products": t.gateway_products.fill_null(0).cast("int64"),
        "first_adoption_at": t.first_adoption_at,
        "adopted": t.adopted,
        "events": t.events.fill_null(0).cast("int64"),
        **{f"{family}_events": t[f"{family}_events"].fill_null(0).cast("int64") for family in event_families},
        "sessions": t.sessions.fill_null(0).cast("int64"),
        "engaged_sessions": t.engaged_sessions.fill_null(0).cast("int64"),
        "first_session_at": t.first_session_at,
        "last_session_at": t.last_session_at,
        "first_session_channel": t.first_session_channel,
        "main_session_channel": t.main_session_channel,
        "session_channels": t.session_channels.fill_null(0).cast("int64"),
        "consent_analytics": _consent(ga4_analytics, t.crm_consent_analytics),
        "consent_ads": _consent(ga4_ads, t.crm_consent_ads),
        "ga4_consent_analytics": ga4_analytics,
        "ga4_consent_ads": ga4_ads,
        "crm_consent_analytics": t.crm_consent_analytics,
        "crm_consent_ads": t.crm_consent_ads,
        "tier": t.tier,
        "region": t.region,
        "signup_date": t.signup_date,
    }
    return t.select(**columns)
