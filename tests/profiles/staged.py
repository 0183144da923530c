"""A small hand-written shop (events, members, orders, products) whose profiles are worked out by hand.

Days are in March 2026, events at noon UTC unless an hour is given. The story:

- ``web1`` browses on day 1 (session s1, Google organic, first session) without logging in, then on
  day 3 (s2, from the newsletter) logs in as M1 mid-session; ``app1`` is M1's phone app (s3, day 4),
  where M1 buys order O1 (transaction T1); a server-side purchase on day 6 carries only M1's user id.
- ``anon`` never logs in; it buys O5 (T5) as a guest without an email on day 2.
- ``dev1`` is M2's smart speaker (s5, day 5); M2 buys O3 by phone on day 2 as a guest, giving the
  email M2 registered with.
- M3 is a member who never did anything; O4 is a cash sale in a store (nobody).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa

from spillover.engine import write_table

UTC = dt.timezone.utc
STAMP = pa.timestamp("us", tz="UTC")
MONEY = pa.decimal128(18, 4)
WEB, IOS, DEVICE = ("w", "WEB"), ("i", "IOS"), ("d", "ANDROID")


def at(day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=UTC)


# (client, stream, session number, session id, day, minute, event, user_id, extra)
EVENTS = [
    ("web1", WEB, 1, 101, 1, 0, "session_start", None, {"traffic": ("google", "organic", "(organic)")}),
    ("web1", WEB, 1, 101, 1, 1, "page_view", None, {"engagement": 3000}),
    ("web1", WEB, 1, 101, 1, 2, "view_item", None, {}),
    ("web1", WEB, 2, 103, 3, 0, "page_view", None, {"event_source": ("newsletter", "email", "spring")}),
    ("web1", WEB, 2, 103, 3, 1, "login", "M1", {}),
    ("web1", WEB, 2, 103, 3, 2, "page_view", "M1", {}),
    ("web1", WEB, 2, 103, 3, 3, "add_to_cart", "M1", {}),
    ("app1", IOS, 1, 104, 4, 0, "screen_view", "M1", {"traffic": ("(direct)", "(none)", "(direct)")}),
    ("app1", IOS, 1, 104, 4, 1, "purchase", "M1", {"transaction_id": "T1"}),
    ("web1", WEB, None, None, 6, 0, "purchase", "M1", {}),  # server-side: no session
    ("anon", WEB, 1, 102, 2, 0, "page_view", None, {"engagement": 12000}),
    ("anon", WEB, 1, 102, 2, 1, "purchase", None, {"transaction_id": "T5"}),
    ("dev1", DEVICE, 1, 105, 5, 0, "voice_timer", "M2", {"device": "smart speaker"}),
    ("dev1", DEVICE, 1, 105, 5, 1, "voice_shop", "M2", {"device": "smart speaker"}),
    ("dev1", DEVICE, 1, 105, 5, 2, "voice_timer", "M2", {"device": "smart speaker", "ads": False}),
    (None, WEB, None, None, 6, 5, "page_view", None, {"analytics": False, "ads": False}),  # consent denied
]

# member_id, email_pid, phone_pid, signup day, tier, region, consent_analytics, consent_ads
MEMBERS = [
    ("M1", "e1", "p1", 1, "gold", "CA", True, False),
    ("M2", "e2", None, 2, "silver", "NY", True, True),
    ("M3", "e3", None, 2, "bronze", "TX", True, True),
]

# product_id, name, category, price, unit_cost, is_gateway
PRODUCTS = [
    ("P1", "A Novel", "books", "10", "6", False),
    ("P2", "Apples", "groceries", "5", "4", False),
    ("G1", "Reader", "devices", "100", "110", True),
    ("G2", "Speaker", "devices", "50", "40", True),
]

# order_id, member_id, email_pid, day, channel, transaction_id
ORDERS = [
    ("O1", "M1", None, 4, "online", "T1"),
    ("O2", "M1", None, 5, "store", None),
    ("O3", None, "e2", 2, "call_centre", None),
    ("O4", None, None, 6, "store", None),
    ("O5", None, None, 2, "online", "T5"),
]

# order_id, line_number, product_id, quantity, unit_price, discount
ORDER_ITEMS = [
    ("O1", 1, "P1", 2, "10", "1"),
    ("O1", 2, "G1", 1, "80", "0"),
    ("O2", 1, "G1", 1, "100", "0"),
    ("O3", 1, "G2", 1, "50", "5"),
    ("O4", 1, "P2", 3, "5", "0"),
    ("O5", 1, "P2", 1, "5", "0"),
]


def _events() -> pa.Table:
    rows = []
    for client, (stream, platform), number, session_id, day, minute, name, user_id, extra in EVENTS:
        traffic = extra.get("traffic", (None, None, None))
        source = extra.get("event_source", (None, None, None))
        session_key = f"{client}-{session_id}" if client and session_id else None
        rows.append({
            "event_key": f"{client}-{day}-{minute}-{name}",
            "client_key": client,
            "session_key": session_key,
            "user_id": user_id,
            "user_pseudo_id": f"pseudo-{client}" if client else None,
            "event_date": at(day).date(),
            "event_timestamp": at(day, 12, minute),
            "event_name": name,
            "stream_id": stream,
            "platform": platform,
            "ga_session_id": session_id,
            "ga_session_number": number,
            "engagement_time_msec": extra.get("engagement"),
            "session_engaged": None,
            "session_source": None, "session_medium": None, "session_campaign": None,
            "session_default_channel_group": None,
            "collected_source": None, "collected_medium": None, "collected_campaign": None,
            "event_source": source[0], "event_medium": source[1], "event_campaign": source[2],
            "traffic_source_source": traffic[0], "traffic_source_medium": traffic[1], "traffic_source_name": traffic[2],
            "device_category": extra.get("device", "desktop" if platform == "WEB" else "mobile"),
            "consent_analytics_storage": extra.get("analytics", True),
            "consent_ads_storage": extra.get("ads", True),
            "transaction_id": extra.get("transaction_id"),
        })
    types = {
        "event_date": pa.date32(), "event_timestamp": STAMP, "ga_session_id": pa.int64(),
        "ga_session_number": pa.int64(), "engagement_time_msec": pa.int64(), "session_engaged": pa.bool_(),
        "consent_analytics_storage": pa.bool_(), "consent_ads_storage": pa.bool_(),
    }
    schema = pa.schema([(name, types.get(name, pa.string())) for name in rows[0]])
    return pa.Table.from_pylist(rows, schema=schema)


def write_shop(con, orders=ORDERS) -> None:
    """Write the staged tables of the story above into ``con`` (``orders`` to change the orders)."""
    write_table(con, "stg_ga4__events", _events())
    write_table(con, "stg_crm__members", pa.table({
        "member_id": [m[0] for m in MEMBERS],
        "email_pid": [m[1] for m in MEMBERS],
        "phone_pid": pa.array([m[2] for m in MEMBERS], pa.string()),
        "signup_date": pa.array([at(m[3]).date() for m in MEMBERS], pa.date32()),
        "tier": [m[4] for m in MEMBERS],
        "region": [m[5] for m in MEMBERS],
        "consent_analytics": [m[6] for m in MEMBERS],
        "consent_ads": [m[7] for m in MEMBERS],
    }))
    write_table(con, "stg_shop__products", pa.table({
        "product_id": [p[0] for p in PRODUCTS],
        "name": [p[1] for p in PRODUCTS],
        "category": [p[2] for p in PRODUCTS],
        "price": pa.array([Decimal(p[3]) for p in PRODUCTS], MONEY),
        "unit_cost": pa.array([Decimal(p[4]) for p in PRODUCTS], MONEY),
        "is_gateway": [p[5] for p in PRODUCTS],
    }))
    write_table(con, "stg_shop__orders", pa.table({
        "order_id": [o[0] for o in orders],
        "member_id": pa.array([o[1] for o in orders], pa.string()),
        "email_pid": pa.array([o[2] for o in orders], pa.string()),
        "ordered_at": pa.array([at(o[3]) for o in orders], STAMP),
        "channel": [o[4] for o in orders],
        "transaction_id": pa.array([o[5] for o in orders], pa.string()),
    }))
    write_table(con, "stg_shop__order_items", pa.table({
        "order_id": [i[0] for i in ORDER_ITEMS],
        "line_number": pa.array([i[1] for i in ORDER_ITEMS], pa.int64()),
        "product_id": [i[2] for i in ORDER_ITEMS],
        "quantity": pa.array([i[3] for i in ORDER_ITEMS], pa.int64()),
        "unit_price": pa.array([Decimal(i[4]) for i in ORDER_ITEMS], MONEY),
        "discount": pa.array([Decimal(i[5]) for i in ORDER_ITEMS], MONEY),
    }))
