"""Find a customer by any identifier and gather what spillover knows of them (``spillover profile``).

An email or phone number is normalised and pseudonymised with the project key exactly as at ingest
before it is looked up, so raw identifiers are compared with nothing and stored nowhere. The card
holds pseudonymised identifiers only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import ibis

from spillover.engine import table_exists
from spillover.errors import SpilloverInputError
from spillover.privacy.pseudonymise import (
    normalise_email,
    normalise_phone,
    pseudonymise_email,
    pseudonymise_phone,
)
from spillover.profiles.attribution import EVENTS, ID_GRAPH, PRODUCTS, order_customers
from spillover.profiles.build import ADOPTIONS, PROFILES
from spillover.profiles.profile import CUSTOMERS

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

#: What ``--id-type`` accepts, and what each is.
LOOKUP_TYPES = {
    "customer_key": "spillover's customer key",
    "member_id": "CRM member id",
    "user_id": "GA4 user_id (the member id a login sets)",
    "client_key": "spillover's key of one browser or app install",
    "user_pseudo_id": "GA4 client id (web) or app instance id",
    "email": "email address (pseudonymised with the project key before lookup)",
    "phone": "phone number (pseudonymised with the project key before lookup)",
    "email_pid": "email pseudonym as stored",
    "phone_pid": "phone pseudonym as stored",
    "order_id": "back-office order id",
    "transaction_id": "GA4 / back-office transaction id of an online order",
}
_SENSITIVE = ("email", "phone")


@dataclass(frozen=True)
class CustomerMatch:
    """The customer an identifier resolved to, and as which kinds of identifier it matched."""

    customer_key: str
    matched_as: tuple[str, ...]


def _in_graph(con: BaseBackend, id_type: str, value: str) -> ibis.Table:
    graph = con.table(ID_GRAPH)
    return graph.filter((graph.id_type == id_type) & (graph.id_value == value)).select("customer_key")


def _candidates(
    con: BaseBackend, value: str, id_type: str, key: Callable[[], bytes], phone_region: str
) -> ibis.Table | None:
    """``customer_key`` rows the value names as ``id_type``; None when it cannot be one."""
    if id_type == "customer_key":
        customers = con.table(CUSTOMERS)
        return customers.filter(customers.customer_key == value).select("customer_key")
    if id_type in ("member_id", "user_id"):
        return _in_graph(con, "member_id", value)
    if id_type in ("client_key", "email_pid", "phone_pid"):
        return _in_graph(con, id_type, value)
    if id_type == "email":
        pid = pseudonymise_email(value, key()).pid
        return None if pid is None else _in_graph(con, "email_pid", pid)
    if id_type == "phone":
        pid = pseudonymise_phone(value, key(), phone_region).pid
        return None if pid is None else _in_graph(con, "phone_pid", pid)
    if id_type == "user_pseudo_id":
        events = con.table(EVENTS)
        clients = events.filter((events.user_pseudo_id == value) & events.client_key.notnull())
        graph = con.table(ID_GRAPH).filter(lambda g: g.id_type == "client_key")
        joined = clients.select("client_key").distinct().join(graph, clients.client_key == graph.id_value)
        return joined.select("customer_key")
    if id_type in ("order_id", "transaction_id"):
        orders = order_customers(con)
        return orders.filter((orders[id_type] == value) & orders.customer_key.notnull()).select("customer_key")
    raise SpilloverInputError(f"unknown --id-type {id_type!r}; use one of {', '.join(LOOKUP_TYPES)}")


def _plausible_types(value: str, phone_region: str) -> list[str]:
    """The identifier types a bare value may be: emails only if shaped like one, and so on."""
    types = [t for t in LOOKUP_TYPES if t not in _SENSITIVE]
    if normalise_email(value) is not None:
        types.append("email")
    if normalise_phone(value, phone_region) is not None:
        types.append("phone")
    return types


def _shown(value: str, id_type: str | None, phone_region: str) -> str:
    """The value for a message: never echo what may be a raw email address or phone number."""
    looks_sensitive = normalise_email(value) is not None or normalise_phone(value, phone_region) is not None
    if id_type in _SENSITIVE or (id_type is None and looks_sensitive):
        return "the identifier given"
    return repr(value)


def find_customer(
    con: BaseBackend,
    value: str,
    *,
    id_type: str | None = None,
    key: Callable[[], bytes],
    phone_region: str = "US",
) -> CustomerMatch:
    """The one customer ``value`` identifies (as ``id_type``, or as any type it may be).

    ``key`` returns the project key (asked only for emails and phones). Raises
    :class:`SpilloverInputError` when no customer or more than one matches.
    """
    for table in (ID_GRAPH, CUSTOMERS, PROFILES):
        if not table_exists(con, table):
            raise SpilloverInputError(f"the warehouse has no {table}; run `spillover build` first")
    if id_type is not None and id_type not in LOOKUP_TYPES:
        raise SpilloverInputError(f"unknown --id-type {id_type!r}; use one of {', '.join(LOOKUP_TYPES)}")
    types = [id_type] if id_type else _plausible_types(value, phone_region)
    parts = []
    for candidate_type in types:
        found = _candidates(con, value, candidate_type, key, phone_region)
        if found is not None:
            parts.append(found.select(id_type=ibis.literal(candidate_type), customer_key=found.customer_key))
    rows = ibis.union(*parts, distinct=True).to_pyarrow().to_pylist() if parts else []
    by_customer: dict[str, list[str]] = {}
    for row in rows:
        by_customer.setdefault(row["customer_key"], []).append(row["id_type"])
    shown = _shown(value, id_type, phone_region)
    if not by_customer:
        as_what = f" as {id_type}" if id_type else f" as any of {', '.join(types)}"
        raise SpilloverInputError(f"no customer found for {shown}{as_what}; check the value or --id-type")
    if len(by_customer) > 1:
        listed = "; ".join(
            f"{key_} (as {', '.join(sorted(kinds))})" for key_, kinds in sorted(by_customer.items())
        )
        hint = (
            "look it up by another identifier" if id_type else "pass --id-type to say which kind of identifier it is"
        )
        raise SpilloverInputError(f"{shown} matches {len(by_customer)} customers: {listed}; {hint}")
    (customer_key, kinds), = by_customer.items()
    return CustomerMatch(customer_key, tuple(sorted(kinds)))


def _plain(value: Any) -> Any:
    """A value as JSON-friendly Python: maps as dicts, money as float, times as ISO text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list) and all(isinstance(v, tuple) and len(v) == 2 for v in value):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def customer_card(con: BaseBackend, customer_key: str) -> dict[str, Any]:
    """The customer's profile row, their (pseudonymised) identifiers and their adoptions."""
    profiles = con.table(PROFILES)
    rows = profiles.filter(profiles.customer_key == customer_key).to_pyarrow().to_pylist()
    if not rows:
        raise SpilloverInputError(
            f"customer {customer_key} has no profile; run `spillover build` to bring the profiles up to date"
        )
    graph = con.table(ID_GRAPH)
    identifiers = graph.filter(graph.customer_key == customer_key).select("id_type", "id_value")
    identifiers = identifiers.order_by(["id_type", "id_value"])
    adoptions = con.table(ADOPTIONS)
    products = con.table(PRODUCTS).select("product_id", product_name="name")
    mine = adoptions.filter(adoptions.customer_key == customer_key)
    adopted = mine.left_join(products, "product_id").select(
        mine.product_id, "product_name", mine.adopted_at, mine.channel, mine.order_id
    ).order_by(["adopted_at", "product_id"])
    return {
        "customer_key": customer_key,
        "profile": {name: _plain(value) for name, value in rows[0].items()},
        "identifiers": identifiers.to_pyarrow().to_pylist(),
        "adoptions": [{k: _plain(v) for k, v in row.items()} for row in adopted.to_pyarrow().to_pylist()],
    }
