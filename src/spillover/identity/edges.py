"""Identifier sightings and the candidate edges that link them, read from the staged tables.

An edge says two identifiers were seen together (a login, a CRM record, an order) and when; the
guards decide later which edges may merge customers. Raw values never appear: only keys and pseudonyms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as dt

from spillover.config import IDENTITY_ID_TYPES
from spillover.engine import table_exists

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

EVENTS = "stg_ga4__events"
MEMBERS = "stg_crm__members"
MATCHES = "stg_crm__member_matches"
ORDERS = "stg_shop__orders"

ID_TYPES = IDENTITY_ID_TYPES
EDGE_COLUMNS = ("id_type_a", "id_a", "id_type_b", "id_b", "source", "first_seen", "last_seen")
SIGHTING_COLUMNS = ("id_type", "id_value", "first_seen", "last_seen")

_SEEN = dt.Timestamp(timezone="UTC")


def _seen(value: ibis.Value) -> ibis.TimestampValue:
    return value.cast(_SEEN)


def _edges(rows: ibis.Table, type_a: str, a: str, type_b: str, b: str, source: str, seen: str) -> ibis.Table:
    """One edge per distinct pair of ``rows[a]`` and ``rows[b]``, with when it was first/last seen."""
    linked = rows.filter(rows[a].notnull() & rows[b].notnull())
    grouped = linked.group_by(id_a=linked[a], id_b=linked[b]).aggregate(
        first_seen=_seen(linked[seen]).min(), last_seen=_seen(linked[seen]).max()
    )
    return grouped.select(
        id_type_a=ibis.literal(type_a),
        id_a=grouped.id_a,
        id_type_b=ibis.literal(type_b),
        id_b=grouped.id_b,
        source=ibis.literal(source),
        first_seen=grouped.first_seen,
        last_seen=grouped.last_seen,
    )


def _purchasing_clients(con: BaseBackend) -> ibis.Table:
    """Back-office online orders beside the GA4 client that sent the same ``transaction_id``."""
    events = con.table(EVENTS)
    purchases = events.filter(events.transaction_id.notnull() & events.client_key.notnull()).select(
        "transaction_id", "client_key"
    ).distinct()
    orders = con.table(ORDERS).filter(lambda o: o.transaction_id.notnull())
    return orders.join(purchases, "transaction_id").select(
        client_key=purchases.client_key,
        member_id=orders.member_id,
        email_pid=orders.email_pid,
        ordered_at=orders.ordered_at,
    )


def _fuzzy_matches(con: BaseBackend, threshold: float) -> ibis.Table:
    """CRM member pairs matched at ``threshold`` or above, seen from the later of the two signups
    (when the person registered the second time)."""
    matches = con.table(MATCHES)
    matches = matches.filter(matches.match_probability >= threshold)
    members = con.table(MEMBERS).select("member_id", "signup_date")
    left, right = members.view(), members.view()
    joined = matches.join(left, matches.member_id_l == left.member_id).join(
        right, matches.member_id_r == right.member_id
    )
    return joined.select(
        member_id_l=matches.member_id_l,
        member_id_r=matches.member_id_r,
        registered_again=ibis.greatest(left.signup_date, right.signup_date),
    )


def candidate_edges(con: BaseBackend, *, fuzzy_threshold: float | None = None) -> ibis.Table:
    """Every link between identifiers found in events, CRM members and orders, before any guard.

    Sources: ``ga4_login`` (a ``user_id`` on a client), ``crm`` (a member's email and phone),
    ``orders`` (the email on a member's order), ``ga4_purchase`` (the client whose purchase event
    carries an order's ``transaction_id``, to the order's member, or to a guest's email), and with
    ``fuzzy_threshold``, ``crm_fuzzy`` (two members that fuzzy matching at CRM ingest scored at
    least that likely to be one person, when ``stg_crm__member_matches`` exists).
    """
    events = con.table(EVENTS)
    members = con.table(MEMBERS).mutate(signed_up_at=lambda m: m.signup_date)
    orders = con.table(ORDERS)
    purchased = _purchasing_clients(con)
    guest_purchases = purchased.filter(purchased.member_id.isnull())
    parts = [
        _edges(events, "client_key", "client_key", "member_id", "user_id", "ga4_login", "event_timestamp"),
        _edges(members, "member_id", "member_id", "email_pid", "email_pid", "crm", "signed_up_at"),
        _edges(members, "member_id", "member_id", "phone_pid", "phone_pid", "crm", "signed_up_at"),
        _edges(orders, "member_id", "member_id", "email_pid", "email_pid", "orders", "ordered_at"),
        _edges(purchased, "client_key", "client_key", "member_id", "member_id", "ga4_purchase", "ordered_at"),
        _edges(guest_purchases, "client_key", "client_key", "email_pid", "email_pid", "ga4_purchase", "ordered_at"),
    ]
    if fuzzy_threshold is not None and table_exists(con, MATCHES):
        matched = _fuzzy_matches(con, fuzzy_threshold)
        parts.append(_edges(matched, "member_id", "member_id_l", "member_id", "member_id_r", "crm_fuzzy", "registered_again"))
    return ibis.union(*parts, distinct=False)


def _sightings(rows: ibis.Table, id_type: str, column: str, seen: str) -> ibis.Table:
    present = rows.filter(rows[column].notnull())
    return present.select(
        id_type=ibis.literal(id_type), id_value=present[column], seen_at=_seen(present[seen])
    )


def identifier_sightings(con: BaseBackend) -> ibis.Table:
    """Every identifier found in the staged tables, with when it was first and last seen.

    Identifiers that never link to another (an anonymous browser, a guest's email) are here too, so
    each becomes a customer of its own.
    """
    events = con.table(EVENTS)
    members = con.table(MEMBERS).mutate(signed_up_at=lambda m: m.signup_date)
    orders = con.table(ORDERS)
    seen = ibis.union(
        _sightings(events, "client_key", "client_key", "event_timestamp"),
        _sightings(events, "member_id", "user_id", "event_timestamp"),
        _sightings(members, "member_id", "member_id", "signed_up_at"),
        _sightings(members, "email_pid", "email_pid", "signed_up_at"),
        _sightings(members, "phone_pid", "phone_pid", "signed_up_at"),
        _sightings(orders, "member_id", "member_id", "ordered_at"),
        _sightings(orders, "email_pid", "email_pid", "ordered_at"),
        distinct=False,
    )
    return seen.group_by("id_type", "id_value").aggregate(
        first_seen=seen.seen_at.min(), last_seen=seen.seen_at.max()
    )
