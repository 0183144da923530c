"""Small hand-written staged tables (events, CRM members, orders) for identity tests."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from spillover.engine import write_table

UTC = dt.timezone.utc
STAMP = pa.timestamp("us", tz="UTC")


def at(day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, tzinfo=UTC)


def write_staged(con, events=(), members=(), orders=()) -> None:
    """events: (client_key, user_id, day, transaction_id); members: (member_id, email_pid, phone_pid,
    signup day); orders: (order_id, member_id, email_pid, day, transaction_id)."""
    write_table(con, "stg_ga4__events", pa.table({
        "client_key": pa.array([e[0] for e in events], pa.string()),
        "user_id": pa.array([e[1] for e in events], pa.string()),
        "event_timestamp": pa.array([at(e[2]) for e in events], STAMP),
        "transaction_id": pa.array([e[3] for e in events], pa.string()),
    }))
    write_table(con, "stg_crm__members", pa.table({
        "member_id": pa.array([m[0] for m in members], pa.string()),
        "email_pid": pa.array([m[1] for m in members], pa.string()),
        "phone_pid": pa.array([m[2] for m in members], pa.string()),
        "signup_date": pa.array([dt.date(2026, 3, m[3]) for m in members], pa.date32()),
    }))
    write_table(con, "stg_shop__orders", pa.table({
        "order_id": pa.array([o[0] for o in orders], pa.string()),
        "member_id": pa.array([o[1] for o in orders], pa.string()),
        "email_pid": pa.array([o[2] for o in orders], pa.string()),
        "ordered_at": pa.array([at(o[3]) for o in orders], STAMP),
        "transaction_id": pa.array([o[4] for o in orders], pa.string()),
    }))
