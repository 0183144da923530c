"""The warehouse facts every impact design reads, each dated by local day: order lines, adoptions,
GA4 events and sessions per customer, and the customers' CRM attributes.

Orders and events reach customers exactly as the profiles stage attributes them
(:mod:`spillover.profiles.attribution`); nothing here re-derives who bought what.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import ibis
from ibis.expr.types.relations import CachedTable

from spillover.errors import SpilloverInputError
from spillover.engine import table_exists
from spillover.impact.calendar import Calendar
from spillover.profiles.attribution import EVENTS, ORDERS, PRODUCTS, attributed_events, order_lines
from spillover.profiles.build import ADOPTIONS, SESSIONS, as_of_instant
from spillover.profiles.profile import CUSTOMERS, MEMBERS

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

REQUIRED = (ADOPTIONS, SESSIONS, CUSTOMERS, MEMBERS, ORDERS, PRODUCTS, EVENTS)


def column_suffix(name: str) -> str:
    """``name`` (a category, a product id) made safe as part of a column name: ``(not set)`` → ``not_set``."""
    cleaned = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return cleaned or "blank"


def _utc(moment: dt.datetime) -> dt.datetime:
    # Engines without zoned timestamps (Spark) hand back naive UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def data_calendar(con: BaseBackend, timezone: str) -> Calendar:
    """The local calendar of the loaded data: from the earliest GA4 event or order to ``as_of``."""
    starts = [
        con.table(EVENTS).event_timestamp.min().to_pyarrow().as_py(),
        con.table(ORDERS).ordered_at.min().to_pyarrow().as_py(),
    ]
    known = [_utc(s) for s in starts if s is not None]
    if not known:
        raise SpilloverInputError("impact: no GA4 events and no orders are loaded; load data first")
    return Calendar.spanning(timezone, min(known), as_of_instant(con))


@dataclass(frozen=True)
class Facts:
    """Impact's inputs as Ibis expressions over one warehouse; ``day`` columns are local day numbers.

    - ``lines``: order lines of identified customers (``customer_key``, ``order_id``, ``day``,
      ``channel``, ``product_id``, ``category``, ``quantity``, ``revenue``, ``margin``, ``discount``);
    - ``adoptions``: ``customer_key``, ``product_id``, ``adopted_day``;
    - ``events``: attributed GA4 events (``customer_key``, ``client_key``, ``event_name``, ``day``);
    - ``sessions``: ``customer_key``, ``day``, ``engaged``;
    - ``customers``: ``customer_key``, ``first_seen_day``, ``signup_day``, ``tier``, ``region``.

    ``categories`` and ``gateway_products`` are read from the catalog once, because they name
    covariate columns.
    """

    calendar: Calendar
    lines: ibis.Table
    adoptions: ibis.Table
    events: ibis.Table
    sessions: ibis.Table
    customers: ibis.Table
    categories: tuple[str, ...]
    gateway_products: tuple[str, ...]

    def cached(self) -> Facts:
        """The same facts computed once into the engine's temporary tables (``Table.cache``), so
        the several designs, figures and panels built on them do not recompute the attribution each
        time. Call :meth:`release` before disconnecting."""
        return replace(self, **{name: getattr(self, name).cache() for name in _TABLES})

    def release(self) -> None:
        """Drop the temporary tables of :meth:`cached` facts (a no-op for uncached ones)."""
        for name in _TABLES:
            table = getattr(self, name)
            if isinstance(table, CachedTable):
                table.release()


_TABLES = ("lines", "adoptions", "events", "sessions", "customers")


def load_facts(con: BaseBackend, timezone: str) -> Facts:
    """The facts of the warehouse behind ``con``, days counted in ``timezone`` (the GA4 property's)."""
    missing = [name for name in REQUIRED if not table_exists(con, name)]
    if missing:
        raise SpilloverInputError(
            f"impact needs {', '.join(missing)}, which the warehouse does not have; "
            "run `spillover build` (identity and profiles) first"
        )
    calendar = data_calendar(con, timezone)
    lines = order_lines(con)
    lines = lines.filter(lines.customer_key.notnull())
    lines = lines.select(
        "customer_key", "order_id", "channel", "product_id", "category", "quantity", "revenue", "margin", "discount",
        day=calendar.day(lines.ordered_at),
    )
    adoptions = con.table(ADOPTIONS)
    adoptions = adoptions.select("customer_key", "product_id", adopted_day=calendar.day(adoptions.adopted_at))
    sessions = con.table(SESSIONS)
    events = attributed_events(con, sessions)
    events = events.filter(events.customer_key.notnull()).select(
        "customer_key", "client_key", "event_name", day=calendar.day(events.event_timestamp)
    )
    sessions = sessions.filter(sessions.customer_key.notnull()).select(
        "customer_key", "engaged", day=calendar.day(sessions.session_start_at)
    )
    members = con.table(MEMBERS).select("member_id", "tier", "region", "signup_date")
    customers = con.table(CUSTOMERS).left_join(members, "member_id")
    customers = customers.select(
        "customer_key", "tier", "region",
        first_seen_day=calendar.day(customers.first_seen),
        signup_day=customers.signup_date.epoch_days().cast("int64"),
    )
    products = con.table(PRODUCTS)
    categories = products.select(category=products.category.fill_null("(not set)")).distinct()
    gateway = products.filter(products.is_gateway.fill_null(False)).select("product_id")
    return Facts(
        calendar=calendar,
        lines=lines,
        adoptions=adoptions,
        events=events,
        sessions=sessions,
        customers=customers,
        categories=tuple(sorted(categories.to_pandas().category)),
        gateway_products=tuple(sorted(gateway.to_pandas().product_id)),
    )


def hardware_margin_per_unit(con: BaseBackend, product_id: str) -> tuple[int, float | None]:
    """Units of ``product_id`` sold (every order, identified or not) and their mean margin per unit:
    the price actually paid (list or promotion, net of discount) less the unit cost."""
    lines = order_lines(con)
    sold = lines.filter(lines.product_id == product_id)
    row = sold.aggregate(units=sold.quantity.sum(), margin=sold.margin.sum()).to_pyarrow().to_pylist()[0]
    units = int(row["units"] or 0)
    return units, (float(row["margin"]) / units if units else None)
