"""``fct_product_adoptions``: when each customer first bought each gateway product, and where.

Read from back-office order lines (every channel, not only what GA4 saw), attributed to customers
through the id graph (see :mod:`spillover.profiles.attribution`). A purchase nobody can be identified
by (a cash sale in a store without a member card) adopts for no customer.
"""

from __future__ import annotations

import ibis


def fct_product_adoptions(lines: ibis.Table) -> ibis.Table:
    """``(customer_key, product_id, adopted_at, channel, order_id)``, one row per customer and gateway
    product: its first order (the earliest; ties go to the smallest ``order_id``)."""
    gateway = lines.filter(lines.is_gateway.fill_null(False) & lines.customer_key.notnull())
    # Several lines of one order hold the product only once.
    orders = gateway.select("customer_key", "product_id", "ordered_at", "channel", "order_id").distinct()
    rank = ibis.row_number().over(
        group_by=[orders.customer_key, orders.product_id], order_by=[orders.ordered_at, orders.order_id]
    )
    ranked = orders.mutate(rank=rank)
    first = ranked.filter(ranked["rank"] == 0)
    return first.select(
        "customer_key", "product_id", adopted_at=first.ordered_at, channel=first.channel, order_id=first.order_id
    )
