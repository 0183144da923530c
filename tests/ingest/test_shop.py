"""Products, orders and order lines: typed values, guest pseudonyms, reference checks in the engine."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from decimal import Decimal

import pytest

from spillover.errors import SpilloverInputError
from spillover.ingest.tabular import ingest_source

KEY = b"test-key-0123456789abcdef0123456789abcdef"  # the key tests/conftest.py sets


def _records(con, table: str, key: tuple[str, ...]) -> dict[tuple, dict]:
    rows = con.table(table).to_pyarrow().to_pylist()
    return {tuple(r[k] for k in key): r for r in rows}


def _quarantine(con, source: str) -> set[tuple[int, str | None, str]]:
    rows = con.table("ops_quarantine").filter(lambda t: t.source == source).to_pyarrow().to_pylist()
    return {(r["source_line"], r["column_name"], r["reason"]) for r in rows}


def _utc(stamp: dt.datetime) -> dt.datetime:
    # Spark hands timestamps back without a zone (in its UTC session time); DuckDB with one.
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)


def _load_shop(con, config, fixtures):
    shop = fixtures / "shop"
    return [
        ingest_source(con, source, shop / f"{source}.csv", config=config)
        for source in ("products", "orders", "order_items")
    ]


def test_shop_files_load_typed_with_bad_rows_quarantined_and_reload_idempotently(con, config, fixtures, tmp_path):
    products, orders, items = _load_shop(con, config, fixtures)

    assert [(r.rows_read, r.rows_loaded, r.rows_quarantined, r.duplicates_dropped)
            for r in (products, orders, items)] == [(7, 3, 3, 1), (7, 4, 3, 0), (10, 4, 5, 1)]
    assert products.ignored_columns == ["supplier"]

    catalog = _records(con, "stg_shop__products", ("product_id",))
    assert {k[0]: (r["price"], r["unit_cost"], r["is_gateway"], r["subscription_price"])
            for k, r in catalog.items()} == {
        "P100": (Decimal("99"), Decimal("110"), True, None),
        "P200": (Decimal("15.5"), Decimal("3.1"), False, None),
        "P300": (Decimal("0"), Decimal("0"), True, Decimal("9.99")),
    }
    assert _quarantine(con, "products") == {
        (5, "price", "negative_value"), (6, "unit_cost", "missing_required_value"),
        (7, "is_gateway", "invalid_boolean"),
    }

    placed = _records(con, "stg_shop__orders", ("order_id",))
    assert {k[0]: (r["member_id"], _utc(r["ordered_at"]), r["channel"]) for k, r in placed.items()} == {
        "O1001": ("M001", dt.datetime(2024, 3, 1, 14, 5, tzinfo=dt.timezone.utc), "online"),
        "O1002": (None, dt.datetime(2024, 3, 2, 9, 0, tzinfo=dt.timezone.utc), "store"),  # +01:00 → UTC
        "O1003": ("M002", dt.datetime(2024, 3, 3, 12, 0, tzinfo=dt.timezone.utc), "call_centre"),
        "O1007": ("M001", dt.datetime(2024, 3, 6, 9, 30, tzinfo=dt.timezone.utc), "store"),
    }
    guest_pid = hmac.new(KEY, b"guest.one@example.com", hashlib.sha256).hexdigest()
    assert (placed[("O1002",)]["email_pid"], placed[("O1002",)]["email_status"]) == (guest_pid, "valid")
    assert (placed[("O1001",)]["transaction_id"], placed[("O1002",)]["store_id"]) == ("T1001", "S01")
    assert "email" not in con.table("stg_shop__orders").columns
    assert _quarantine(con, "orders") == {
        (5, "ordered_at", "invalid_timestamp"), (6, "channel", "unknown_channel"),
        (7, "member_id", "personal_data_in_id"),
    }

    lines = _records(con, "stg_shop__order_items", ("order_id", "line_number"))
    assert {k: (r["product_id"], r["quantity"], r["unit_price"], r["discount"]) for k, r in lines.items()} == {
        ("O1001", 1): ("P100", 1, Decimal("99"), Decimal("0")),
        ("O1001", 2): ("P200", 2, Decimal("15.5"), Decimal("1")),
        ("O1002", 1): ("P200", 1, Decimal("15.5"), Decimal("0")),
        ("O1003", 2): ("P300", 1, Decimal("9.99"), Decimal("0")),
    }
    assert _quarantine(con, "order_items") == {
        (5, "product_id", "unknown_product"), (6, "order_id", "unknown_order"),
        (7, "quantity", "non_positive_value"), (8, "unit_price", "invalid_number"),
        (9, "discount", "discount_exceeds_line_total"),
    }
    unknown = {r["reason"]: r for r in con.table("ops_quarantine").to_pyarrow().to_pylist()
               if r["reason"] in ("unknown_order", "unknown_product")}
    assert unknown["unknown_order"]["message"].startswith("order_id 'O9999' is not in stg_shop__orders; load")
    assert unknown["unknown_product"]["raw"] == "O1003,1,P999,1,5.00,0"
    assert unknown["unknown_product"]["load_id"] == items.load_id

    # (One test rather than two: each load costs seconds on Spark.)
    _check_reloads(con, config, fixtures, tmp_path)


def _check_reloads(con, config, fixtures, tmp_path):
    """Re-loading leaves the same rows; a later file replaces whole orders' lines."""
    before = {t: _records(con, t, ("_source_line",)) for t in ("stg_shop__orders", "stg_shop__order_items")}
    again = ingest_source(con, "order_items", fixtures / "shop" / "order_items.csv", config=config)
    assert again.tables == {"stg_shop__order_items": 4}
    ingest_source(con, "orders", fixtures / "shop" / "orders.csv", config=config)
    after = {t: _records(con, t, ("_source_line",)) for t in before}
    for table in before:
        assert {k: {c: v for c, v in r.items() if c != "_load_id"} for k, r in after[table].items()} == {
            k: {c: v for c, v in r.items() if c != "_load_id"} for k, r in before[table].items()
        }

    # A later file holding order O1001 replaces all of O1001's lines and leaves other orders alone.
    correction = tmp_path / "items.csv"
    correction.write_text("order_id,line_number,product_id,quantity,unit_price\nO1001,1,P300,3,9.99\n")
    ingest_source(con, "order_items", correction, config=config)
    lines = _records(con, "stg_shop__order_items", ("order_id", "line_number"))
    assert sorted(lines) == [("O1001", 1), ("O1002", 1), ("O1003", 2)]
    assert (lines[("O1001", 1)]["product_id"], lines[("O1001", 1)]["quantity"]) == ("P300", 3)


def test_order_items_need_products_and_orders_first(duck, config, fixtures):
    with pytest.raises(SpilloverInputError, match=r"order_items\.csv: stg_shop__products, stg_shop__orders do "
                       r"not exist yet; load the product catalog and the orders first"):
        ingest_source(duck, "order_items", fixtures / "shop" / "order_items.csv", config=config)
    assert duck.list_tables() == []
