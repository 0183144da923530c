"""Whose is it: the customer behind each client, member, order line and event, through the id graph.

Back-stitching happens here. Every identifier in ``int_identity__id_graph`` has a customer, so a
client's events belong to the customer its ``client_key`` resolves to, including what the browser
did before its first login. Expressions only: nothing is written, so read-only callers (the CLI's
``profile`` command) use them too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as dt

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

ID_GRAPH = "int_identity__id_graph"
EVENTS = "stg_ga4__events"
ORDERS = "stg_shop__orders"
ORDER_ITEMS = "stg_shop__order_items"
PRODUCTS = "stg_shop__products"

MONEY = dt.Decimal(18, 4)


def customers_of(con: BaseBackend, id_type: str, name: str) -> ibis.Table:
    """``(name, <name>_customer_key)``: the customer of each identifier of ``id_type``."""
    graph = con.table(ID_GRAPH)
    of_type = graph.filter(graph.id_type == id_type)
    return of_type.select(**{name: of_type.id_value, f"{name}_customer_key": of_type.customer_key})


def purchasing_clients(con: BaseBackend) -> ibis.Table:
    """``(transaction_id, client_key)``: the GA4 client whose purchase event carried each transaction id.

    Should two clients report the same transaction, the smallest key stands for it, so an order is
    never counted twice.
    """
    events = con.table(EVENTS)
    purchases = events.filter(events.transaction_id.notnull() & events.client_key.notnull())
    return purchases.group_by("transaction_id").aggregate(client_key=purchases.client_key.min())


def order_customers(con: BaseBackend) -> ibis.Table:
    """Each back-office order with its ``customer_key`` and the identifier that gave it.

    The order's member decides; a guest order goes to its email's customer, else to the GA4 client
    whose purchase event has the order's ``transaction_id``. A guest order with none of these (a
    store sale paid in cash) has a null ``customer_key`` and ``attributed_by``.
    """
    orders = con.table(ORDERS)
    by_member = customers_of(con, "member_id", "member_id")
    by_email = customers_of(con, "email_pid", "email_pid")
    by_client = customers_of(con, "client_key", "client_key")
    clients = purchasing_clients(con).join(by_client, "client_key").select(
        "transaction_id", "client_key_customer_key"
    )
    joined = (
        orders.left_join(by_member, "member_id")
        .left_join(by_email, "email_pid")
        .left_join(clients, "transaction_id")
    )
    return joined.select(
        "order_id",
        "ordered_at",
        "channel",
        "member_id",
        "transaction_id",
        customer_key=ibis.coalesce(
            joined.member_id_customer_key, joined.email_pid_customer_key, joined.client_key_customer_key
        ),
        attributed_by=ibis.cases(
            (joined.member_id_customer_key.notnull(), "member_id"),
            (joined.email_pid_customer_key.notnull(), "email_pid"),
            (joined.client_key_customer_key.notnull(), "client_key"),
            else_=ibis.null("string"),
        ),
    )


def order_lines(con: BaseBackend) -> ibis.Table:
    """Every order line with its order's customer, channel and time, its product, and its money.

    ``revenue`` is what the customer paid (quantity × unit price − discount); ``margin`` is the
    contribution margin, revenue − quantity × unit cost.
    """
    items = con.table(ORDER_ITEMS)
    products = con.table(PRODUCTS).select("product_id", "category", "is_gateway", "unit_cost")
    orders = order_customers(con)
    lines = items.join(orders, "order_id").join(products, "product_id")
    revenue = (lines.quantity * lines.unit_price - lines.discount).cast(MONEY)
    cost = (lines.quantity * lines.unit_cost).cast(MONEY)
    return lines.select(
        "order_id",
        "line_number",
        "customer_key",
        "ordered_at",
        "channel",
        "product_id",
        "is_gateway",
        "quantity",
        category=lines.category.fill_null("(not set)"),
        discount=lines.discount.cast(MONEY),
        revenue=revenue,
        margin=(revenue - cost).cast(MONEY),
    )


def attributed_events(con: BaseBackend, sessions: ibis.Table) -> ibis.Table:
    """Every GA4 event with the customer it belongs to (null when nothing identifies it).

    An event in a session takes the session's customer; an event outside any session (a
    server-side purchase) the customer of its ``user_id``, else of its client.
    """
    events = con.table(EVENTS)
    by_member = customers_of(con, "member_id", "user_id")
    by_client = customers_of(con, "client_key", "client_key")
    of_session = sessions.select("session_key", session_customer_key=sessions.customer_key)
    joined = (
        events.left_join(of_session, "session_key")
        .left_join(by_member, "user_id")
        .left_join(by_client, "client_key")
    )
    return joined.select(
        "event_key",
        "event_timestamp",
        "event_name",
        "client_key",
        "session_key",
        "consent_analytics_storage",
        "consent_ads_storage",
        customer_key=ibis.coalesce(
            joined.session_customer_key, joined.user_id_customer_key, joined.client_key_customer_key
        ),
    )
