"""The back-office contracts: product catalog, orders and order lines, and their staging tables.

Guest emails on orders become keyed pseudonyms; order lines are checked in the engine (anti-joins)
against the loaded products and orders, so an unknown reference is quarantined, never dropped.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa

from spillover.ingest.tabular import MONEY, CellProblem, Column, Rejection, SourceSpec
from spillover.privacy.pseudonymise import pseudonymise_email

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

__all__ = [
    "PRODUCTS_TABLE",
    "ORDERS_TABLE",
    "ORDER_ITEMS_TABLE",
    "CHANNELS",
    "products_spec",
    "orders_spec",
    "order_items_spec",
]

PRODUCTS_TABLE = "stg_shop__products"
ORDERS_TABLE = "stg_shop__orders"
ORDER_ITEMS_TABLE = "stg_shop__order_items"
CHANNELS = ("online", "store", "call_centre")

_MONEY_HINT = "a decimal amount such as 19.99"


def products_spec() -> SourceSpec:
    """The product catalog: one row per product_id; a re-load replaces the products it holds."""
    return SourceSpec(
        source="products",
        table=PRODUCTS_TABLE,
        columns=(
            Column("product_id", required=True),
            Column("name", required=True),
            Column("category", required=True),
            Column("price", "decimal", required=True, minimum="zero", hint=_MONEY_HINT),
            Column("unit_cost", "decimal", required=True, minimum="zero", hint=_MONEY_HINT),
            Column("is_gateway", "boolean", default=False),
            Column("subscription_price", "decimal", minimum="zero"),
        ),
        key=("product_id",),
        replace_by=("product_id",),
        schema=pa.schema(
            [
                ("product_id", pa.string()),
                ("name", pa.string()),
                ("category", pa.string()),
                ("price", MONEY),
                ("unit_cost", MONEY),
                ("is_gateway", pa.bool_()),
                ("subscription_price", MONEY),  # monthly; null when the product is no subscription
            ]
        ),
    )


def orders_spec(*, key: bytes) -> SourceSpec:
    """Back-office orders: one row per order_id; a guest's email is kept only as ``email_pid``."""

    def to_row(parsed: dict[str, object]) -> dict[str, object]:
        email = pseudonymise_email(parsed["email"], key)  # type: ignore[arg-type]
        row = {name: value for name, value in parsed.items() if name != "email"}
        return {**row, "email_pid": email.pid, "email_status": email.status}

    return SourceSpec(
        source="orders",
        table=ORDERS_TABLE,
        columns=(
            Column("order_id", required=True),
            Column("member_id", pseudonymous_id=True),
            Column("email", identifier="email"),
            Column("ordered_at", "timestamp", required=True, hint="e.g. 2024-03-01T14:05:00Z"),
            Column("channel", required=True, choices=CHANNELS, choice_reason="unknown_channel",
                   hint="online, store or call_centre"),
            Column("transaction_id"),
            Column("store_id"),
        ),
        key=("order_id",),
        replace_by=("order_id",),
        schema=pa.schema(
            [
                ("order_id", pa.string()),
                ("member_id", pa.string()),  # null for guest orders
                ("email_pid", pa.string()),
                ("email_status", pa.string()),  # valid | invalid | missing
                ("ordered_at", pa.timestamp("us", tz="UTC")),
                ("channel", pa.string()),  # online | store | call_centre
                ("transaction_id", pa.string()),  # GA4 ecommerce.transaction_id of online orders
                ("store_id", pa.string()),
            ]
        ),
        to_row=to_row,
    )


def _discount_within_line(parsed: dict[str, object]) -> CellProblem | None:
    line_total = parsed["quantity"] * parsed["unit_price"]  # type: ignore[operator]
    discount: Decimal = parsed["discount"]  # type: ignore[assignment]
    if discount > line_total:
        return CellProblem(
            "discount_exceeds_line_total",
            f"discount is {discount.normalize():f} but quantity × unit_price is only "
            f"{line_total.normalize():f}; discount is the "
            "line's total discount, not a percentage: correct it and re-load the file",
        )
    return None


def _check_references(con: BaseBackend, staged: ibis.Table) -> tuple[ibis.Table, list[Rejection]]:
    orders = con.table(ORDERS_TABLE).select("order_id").distinct()
    products = con.table(PRODUCTS_TABLE).select("product_id").distinct()
    known_order = staged.semi_join(orders, "order_id")
    accepted = known_order.semi_join(products, "product_id")
    rejections = [
        Rejection(
            staged.anti_join(orders, "order_id"),
            "order_id",
            "unknown_order",
            lambda rows: "order_id '" + rows.order_id + (
                f"' is not in {ORDERS_TABLE}; load the orders file first "
                "(spillover ingest orders FILE), then re-load these order items"
            ),
        ),
        Rejection(
            known_order.anti_join(products, "product_id"),
            "product_id",
            "unknown_product",
            lambda rows: "product_id '" + rows.product_id + (
                f"' is not in {PRODUCTS_TABLE}; add it to the product catalog and load it "
                "(spillover ingest products FILE), then re-load these order items"
            ),
        ),
    ]
    return accepted, rejections


def order_items_spec() -> SourceSpec:
    """Order lines: one row per (order_id, line_number); a re-load replaces all lines of its orders."""
    return SourceSpec(
        source="order_items",
        table=ORDER_ITEMS_TABLE,
        columns=(
            Column("order_id", required=True),
            Column("line_number", "integer", required=True, hint="1, 2, 3 … within the order"),
            Column("product_id", required=True),
            Column("quantity", "integer", required=True, minimum="positive", hint="a whole number above 0"),
            Column("unit_price", "decimal", required=True, minimum="zero", hint=_MONEY_HINT),
            Column("discount", "decimal", default=Decimal("0.0000"), minimum="zero"),
        ),
        key=("order_id", "line_number"),
        replace_by=("order_id",),
        schema=pa.schema(
            [
                ("order_id", pa.string()),
                ("line_number", pa.int64()),
                ("product_id", pa.string()),
                ("quantity", pa.int64()),
                ("unit_price", MONEY),
                ("discount", MONEY),  # total discount of the line, in money
            ]
        ),
        row_check=_discount_within_line,
        row_check_column="discount",
        engine_check=_check_references,
        requires_tables=(PRODUCTS_TABLE, ORDERS_TABLE),
        requires_hint="load the product catalog and the orders first "
        "(spillover ingest products FILE; spillover ingest orders FILE)",
    )
