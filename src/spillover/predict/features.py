"""Per-customer history as of a cutoff: the features and outcomes the propensity models learn from.

Everything is counted in whole 24-hour days back from an exclusive ``end`` instant, so a cutoff
``k`` days back is the instant ``end - k days``: its features read only records strictly before it
and its outcomes only records at or after it, within the horizon. One engine-side table of daily
activity per customer (orders and money from the attributed order lines, sessions, GA4 events by
family, gateway adoptions, CRM sign-up) serves every cutoff; features for many cutoffs are one
range join over it, so training windows cost one query, not one per window.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as dt_

from spillover.engine import drop_table, temp_name
from spillover.profiles.attribution import EVENTS, customers_of, order_lines

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

__all__ = [
    "FEATURE_WINDOWS",
    "activity_by_day",
    "customer_features",
    "data_span_days",
    "end_instant",
    "feature_columns",
    "features_at",
    "outcomes_at",
    "stored_activity",
]

SECONDS_PER_DAY = 86_400
#: Trailing windows (days before the cutoff) that counts and money are summed over.
FEATURE_WINDOWS = (7, 28, 91)
SESSIONS = "fct_sessions"
ADOPTIONS = "fct_product_adoptions"
CUSTOMERS = "dim_customers"
MEMBERS = "stg_crm__members"
_MONEY = dt_.Decimal(38, 4)
#: Daily counts summed per window; ``active`` is a day with a session or an order.
_COUNTS = ("orders", "revenue", "margin", "sessions", "engaged_sessions", "page_views", "adoptions", "signups")


def end_instant(latest: dt.datetime) -> dt.datetime:
    """The exclusive end of the data: the whole second after the ``latest`` record."""
    latest = latest if latest.tzinfo else latest.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromtimestamp(math.floor(latest.timestamp()) + 1, tz=dt.timezone.utc)


def _days_back(end: dt.datetime, moment: ibis.TimestampValue) -> ibis.IntegerValue:
    """Whole days from ``moment`` back from ``end`` (exclusive): 0 for the last 24 hours before it,
    negative for moments at or after it. Truncated to the second, so the same on every engine."""
    end_seconds = int(end.timestamp())
    seconds = moment.truncate("s").epoch_seconds().cast("int64")
    return ((ibis.literal(end_seconds - 1, type="int64") - seconds) / SECONDS_PER_DAY).floor().cast("int64")


def _family_column(family: str) -> str:
    return f"{family}_events"


def _shaped(table: ibis.Table, values: Mapping[str, ibis.Value], families: Sequence[str]) -> ibis.Table:
    """``table`` as ``(customer_key, days_back, <every count>)``: the given counts, zeros elsewhere.

    Money stays decimal until the features are read, so its sums are exact and do not depend on the
    order an engine adds them in (a last-bit difference can move a customer across a tree's split).
    """
    columns: dict[str, ibis.Value] = {"customer_key": table.customer_key, "days_back": table.days_back}
    for name in (*_COUNTS, *(_family_column(f) for f in families)):
        kind = _MONEY if name in ("revenue", "margin") else dt_.float64
        columns[name] = values[name].cast(kind) if name in values else ibis.literal(0, type=kind)
    columns["active"] = values.get("active", ibis.literal(0, type="int64")).cast("int64")
    return table.select(**columns)


def _events_by_day(con: BaseBackend, end: dt.datetime, event_families: Mapping[str, Sequence[str]]) -> ibis.Table:
    """GA4 events per family, customer and day. Events of a session count when the session ends and
    go to its customer (as its sessions do), so a session running across a cutoff, whose customer
    may come from a login after it, adds nothing before it; events outside sessions (server-side
    purchases) count at their own time, for the customer of their ``user_id``, else of their client."""
    events = con.table(EVENTS)
    counted = {
        _family_column(family): events.event_name.isin(list(names)).cast("int64").sum()
        for family, names in event_families.items()
    }
    in_sessions = events.filter(events.session_key.notnull()).group_by("session_key").aggregate(**counted)
    sessions = con.table(SESSIONS)
    sessions = sessions.filter(sessions.customer_key.notnull()).select(
        "session_key", "customer_key", days_back=_days_back(end, sessions.session_end_at)
    )
    by_session = in_sessions.join(sessions, "session_key").drop("session_key")
    loose = events.filter(events.session_key.isnull())
    loose = loose.left_join(customers_of(con, "member_id", "user_id"), "user_id").left_join(
        customers_of(con, "client_key", "client_key"), "client_key"
    )
    loose = loose.mutate(
        customer_key=ibis.coalesce(loose.user_id_customer_key, loose.client_key_customer_key),
        days_back=_days_back(end, loose.event_timestamp),
    )
    loose = loose.filter(loose.customer_key.notnull())
    loose_counts = {
        _family_column(family): loose.event_name.isin(list(names)).cast("int64").sum()
        for family, names in event_families.items()
    }
    by_event = loose.group_by("customer_key", "days_back").aggregate(**loose_counts)
    columns = ["customer_key", "days_back", *counted]
    return ibis.union(by_session.select(columns), by_event.select(columns), distinct=False)


def activity_by_day(
    con: BaseBackend, *, end: dt.datetime, event_families: Mapping[str, Sequence[str]]
) -> ibis.Table:
    """One row per customer and day with any record: ``days_back`` (relative to ``end``), orders,
    revenue, margin, sessions, engaged sessions, page views, events per family, adoptions, sign-ups
    and ``active`` (1 when the day had a session or an order)."""
    families = list(event_families)
    lines = order_lines(con)
    lines = lines.filter(lines.customer_key.notnull()).mutate(days_back=_days_back(end, lines.ordered_at))
    orders = lines.group_by("customer_key", "days_back").aggregate(
        orders=lines.order_id.nunique(), revenue=lines.revenue.sum(), margin=lines.margin.sum()
    )
    orders = _shaped(orders, {**{c: orders[c] for c in ("orders", "revenue", "margin")}, "active": ibis.literal(1)}, families)

    sessions = con.table(SESSIONS)
    # A session counts when it has ended: its events and engagement are then all in the past.
    sessions = sessions.filter(sessions.customer_key.notnull()).mutate(
        days_back=_days_back(end, sessions.session_end_at)
    )
    per_session = sessions.group_by("customer_key", "days_back").aggregate(
        sessions=sessions.count(), engaged_sessions=sessions.engaged.sum(), page_views=sessions.page_views.sum()
    )
    per_session = _shaped(
        per_session,
        {**{c: per_session[c] for c in ("sessions", "engaged_sessions", "page_views")}, "active": ibis.literal(1)},
        families,
    )

    per_event = _events_by_day(con, end, event_families) if event_families else None
    adoptions = con.table(ADOPTIONS)
    adoptions = adoptions.mutate(days_back=_days_back(end, adoptions.adopted_at))
    per_adoption = adoptions.group_by("customer_key", "days_back").aggregate(adoptions=adoptions.count())
    members = con.table(CUSTOMERS).filter(ibis._.member_id.notnull()).join(
        con.table(MEMBERS).select("member_id", "signup_date"), "member_id"
    )
    signed = members.mutate(days_back=_days_back(end, members.signup_date.cast("timestamp('UTC')")))
    per_signup = signed.group_by("customer_key", "days_back").aggregate(signups=signed.count())

    parts = [orders, per_session]
    if per_event is not None:
        parts.append(_shaped(per_event, {_family_column(f): per_event[_family_column(f)] for f in families}, families))
    parts.append(_shaped(per_adoption, {"adoptions": per_adoption.adoptions}, families))
    parts.append(_shaped(per_signup, {"signups": per_signup.signups}, families))
    union = ibis.union(*parts, distinct=False)
    sums = {name: union[name].sum() for name in union.columns if name not in ("customer_key", "days_back", "active")}
    return union.group_by("customer_key", "days_back").aggregate(**sums, active=union.active.max())


def feature_columns(event_families: Sequence[str]) -> list[str]:
    """The model's input columns, in order (see :func:`features_at`)."""
    names = ["days_since_first_record", "days_since_last_active", "days_since_last_order", "days_since_last_session"]
    for window in FEATURE_WINDOWS:
        names += [f"active_days_{window}", f"orders_{window}", f"revenue_{window}", f"sessions_{window}",
                  f"engaged_sessions_{window}", f"page_views_{window}"]
        names += [f"{_family_column(f)}_{window}" for f in event_families]
    names += ["orders_all", "revenue_all", "margin_all", "mean_order_revenue", "gateway_products", "member",
              "days_since_signup"]
    return names


def features_at(activity: ibis.Table, cutoffs: Sequence[int], event_families: Sequence[str]) -> ibis.Table:
    """Features of each customer with a record before each cutoff (``cutoff_days_back`` days before
    ``end``), read only from the days before it: ``(customer_key, cutoff_days_back, *feature_columns)``.

    ``days_since_*`` are whole days from the latest (first) record to the cutoff, null when there is
    none; ``<count>_<w>`` sums the ``w`` days before the cutoff; ``*_all`` sums everything before it.
    """
    cuts = ibis.memtable({"cutoff_days_back": [int(c) for c in cutoffs]}, schema={"cutoff_days_back": "int64"})
    joined = activity.join(cuts, activity.days_back >= cuts.cutoff_days_back)
    age = (joined.days_back - joined.cutoff_days_back).name("age")
    joined = joined.mutate(age=age)
    t = joined
    active = t.active == 1
    aggregates: dict[str, ibis.Value] = {
        "days_since_first_record": t.age.max(),
        "days_since_last_active": t.age.min(where=active),
        "days_since_last_order": t.age.min(where=t.orders > 0),
        "days_since_last_session": t.age.min(where=t.sessions > 0),
    }
    for window in FEATURE_WINDOWS:
        inside = t.age < window
        aggregates[f"active_days_{window}"] = t.active.sum(where=inside)
        for name in ("orders", "revenue", "sessions", "engaged_sessions", "page_views",
                     *(_family_column(f) for f in event_families)):
            aggregates[f"{name}_{window}"] = t[name].sum(where=inside)
    aggregates |= {
        "orders_all": t.orders.sum(),
        "revenue_all": t.revenue.sum(),
        "margin_all": t.margin.sum(),
        "gateway_products": t.adoptions.sum(),
        "member": t.signups.sum(),
        "days_since_signup": t.age.max(where=t.signups > 0),
    }
    per = t.group_by("customer_key", "cutoff_days_back").aggregate(**aggregates)
    columns: dict[str, ibis.Value] = {"customer_key": per.customer_key, "cutoff_days_back": per.cutoff_days_back}
    for name in feature_columns(event_families):
        if name == "mean_order_revenue":
            value = ibis.ifelse(per.orders_all > 0, per.revenue_all.cast("float64") / per.orders_all, ibis.null("float64"))
        elif name == "member":
            value = (per.member > 0).cast("float64")
        elif name.startswith("days_since_"):
            value = per[name]
        else:
            value = per[name].fill_null(0)
        columns[name] = value.cast("float64")
    return per.select(**columns)


def outcomes_at(activity: ibis.Table, cutoffs: Sequence[int], horizon_days: int) -> ibis.Table:
    """What each customer did in the ``horizon_days`` after each cutoff: ``(customer_key,
    cutoff_days_back, orders, revenue, active_days)``; customers with nothing there have no row."""
    cuts = ibis.memtable({"cutoff_days_back": [int(c) for c in cutoffs]}, schema={"cutoff_days_back": "int64"})
    joined = activity.join(
        cuts,
        (activity.days_back < cuts.cutoff_days_back) & (activity.days_back >= cuts.cutoff_days_back - horizon_days),
    )
    return joined.group_by("customer_key", "cutoff_days_back").aggregate(
        orders=joined.orders.sum(), revenue=joined.revenue.sum().cast("float64"), active_days=joined.active.sum()
    )


def data_span_days(activity: ibis.Table) -> int:
    """Days from the first active day (a session or an order) to ``end``; 0 when there is none."""
    oldest = activity.filter(activity.active == 1).days_back.max().to_pyarrow().as_py()
    return 0 if oldest is None else int(oldest) + 1


@contextlib.contextmanager
def stored_activity(
    con: BaseBackend, *, end: dt.datetime, event_families: Mapping[str, Sequence[str]]
) -> Iterator[ibis.Table]:
    """:func:`activity_by_day` written once to a temporary table (read by several queries), dropped after."""
    name = temp_name("activity")
    try:
        con.create_table(name, activity_by_day(con, end=end, event_families=event_families))
        yield con.table(name)
    finally:
        drop_table(con, name)


def customer_features(
    con: BaseBackend, *, cutoff: dt.datetime, event_families: Mapping[str, Sequence[str]]
) -> ibis.Table:
    """Features of every customer with a record strictly before ``cutoff``, as of ``cutoff``."""
    activity = activity_by_day(con, end=cutoff, event_families=event_families)
    return features_at(activity, [0], list(event_families)).drop("cutoff_days_back")
