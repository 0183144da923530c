"""The ``profiles`` stage: back-stitched sessions, gateway adoptions and one profile per customer.

Reads the staged GA4 events, members, orders and products and the identity tables; writes
``fct_sessions``, ``fct_product_adoptions`` and ``mart_customer_profile``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from spillover.engine import drop_table, table_exists, temp_name, write_table
from spillover.errors import SpilloverInputError
from spillover.profiles.adoption import fct_product_adoptions
from spillover.profiles.attribution import (
    EVENTS,
    ID_GRAPH,
    ORDER_ITEMS,
    ORDERS,
    PRODUCTS,
    attributed_events,
    order_lines,
)
from spillover.profiles.profile import CUSTOMERS, MEMBERS, mart_customer_profile
from spillover.profiles.sessions import fct_sessions
from spillover.progress import NullProgress, Progress

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from spillover.config import Config

SESSIONS = "fct_sessions"
ADOPTIONS = "fct_product_adoptions"
PROFILES = "mart_customer_profile"

REQUIRED = {
    EVENTS: "spillover ingest ga4",
    MEMBERS: "spillover ingest crm",
    ORDERS: "spillover ingest orders",
    ORDER_ITEMS: "spillover ingest order-items",
    PRODUCTS: "spillover ingest products",
    ID_GRAPH: "spillover build --stage identity",
    CUSTOMERS: "spillover build --stage identity",
}


def _check_inputs(con: BaseBackend) -> None:
    missing = [name for name in REQUIRED if not table_exists(con, name)]
    if missing:
        steps = sorted({REQUIRED[name] for name in missing})
        raise SpilloverInputError(
            f"stage 'profiles' needs {', '.join(missing)}, which the warehouse does not have; "
            f"run {' and '.join(f'`{step}`' for step in steps)} first"
        )


def as_of_instant(con: BaseBackend) -> dt.datetime:
    """The latest GA4 event or back-office order (UTC): the instant profiles are computed at."""
    candidates = [
        con.table(EVENTS).event_timestamp.max().to_pyarrow().as_py(),
        con.table(ORDERS).ordered_at.max().to_pyarrow().as_py(),
    ]
    # Engines without zoned timestamps (Spark) hand back naive UTC.
    known = [c if c.tzinfo else c.replace(tzinfo=dt.timezone.utc) for c in candidates if c is not None]
    if not known:
        raise SpilloverInputError("stage 'profiles': no GA4 events and no orders are loaded; load data first")
    return max(known)


def build_profiles(con: BaseBackend, config: Config, progress: Progress | None = None) -> dict[str, int]:
    """Write the profiles tables; return their row counts."""
    progress = progress or NullProgress()
    _check_inputs(con)
    task = progress.task("profiles", total=3)
    as_of = as_of_instant(con)
    lines_name = temp_name("order_lines")
    try:
        write_table(con, SESSIONS, fct_sessions(con))
        progress.advance(task, 1, description="profiles: adoptions")
        con.create_table(lines_name, order_lines(con))
        lines = con.table(lines_name)
        write_table(con, ADOPTIONS, fct_product_adoptions(lines))
        progress.advance(task, 1, description="profiles: customer profiles")
        sessions = con.table(SESSIONS)
        profiles = mart_customer_profile(
            con,
            lines=lines,
            adoptions=con.table(ADOPTIONS),
            sessions=sessions,
            events=attributed_events(con, sessions),
            as_of=as_of,
            event_families=config.profiles.event_families,
        )
        write_table(con, PROFILES, profiles)
        progress.advance(task, 1)
    finally:
        drop_table(con, lines_name)
    return {name: int(con.table(name).count().to_pyarrow().as_py()) for name in (SESSIONS, ADOPTIONS, PROFILES)}
