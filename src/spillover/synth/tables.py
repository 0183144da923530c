"""The CSV files: catalog, back-office orders and lines, CRM members, and the truth tables.

Orders are streamed day by day; everything sized by people (CRM, identity, people, adopters) is
written once at the end. Every field is rendered column-wise and needs no CSV quoting.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spillover.synth import text
from spillover.synth.catalog import CATEGORIES, DEVICES, Catalog
from spillover.synth.ga4_json import transaction_ids
from spillover.synth.ga4_sessions import N_WEB_PROFILES, Clients, web_client_number
from spillover.synth.identity import emails, member_ids, person_ids
from spillover.synth.people import Population
from spillover.synth.truth import HOLDOUT_WINDOWS, HORIZONS, Ledger
from spillover.synth.world import CAUSES, CHANNEL_ONLINE, CHANNELS, NEVER, DayOrders

ORDER_COLUMNS = ("order_id", "member_id", "email", "ordered_at", "channel", "transaction_id", "store_id")
ORDER_ITEM_COLUMNS = ("order_id", "line_number", "product_id", "quantity", "unit_price", "discount")
PRODUCT_COLUMNS = ("product_id", "name", "category", "price", "unit_cost", "is_gateway", "subscription_price")
MEMBER_COLUMNS = ("member_id", "email", "phone", "first_name", "last_name", "address", "postcode",
                  "signup_date", "tier", "region", "consent_analytics", "consent_ads")
IDENTITY_COLUMNS = ("id_type", "id_value", "person_id")


def _header(columns: tuple[str, ...]) -> bytes:
    return (",".join(columns) + "\n").encode()


def write_csv(handle: BinaryIO, columns: list[pa.Array], n: int) -> None:
    if n:
        handle.write(text.lines_to_bytes(text.csv_text(columns, n)))


def order_ids(numbers: np.ndarray) -> pa.Array:
    return text.fixed_digits(numbers, 9, prefix="O")


def write_products(path: Path, catalog: Catalog) -> None:
    n = catalog.size
    with path.open("wb") as handle:
        handle.write(_header(PRODUCT_COLUMNS))
        write_csv(handle, [
            pa.array(catalog.product_id), pa.array(catalog.name), pa.array(catalog.category),
            text.money(catalog.price_cents), text.money(catalog.unit_cost_cents),
            text.pick(("false", "true"), catalog.is_gateway.astype(int)),
            text.money(np.maximum(catalog.subscription_price_cents, 0), catalog.subscription_price_cents < 0),
        ], n)


class _Batch:
    """Columns of rows held back until there are enough to render in one go: rendering text costs
    a fixed amount per call, which a small day would otherwise pay for every file it writes."""

    ROWS = 20_000

    def __init__(self):
        self.parts: list[dict[str, np.ndarray]] = []
        self.rows = 0

    def add(self, rows: int, **columns: np.ndarray) -> bool:
        """Hold the columns; True when the batch is full."""
        self.parts.append(columns)
        self.rows += rows
        return self.rows >= self.ROWS

    def take(self) -> dict[str, np.ndarray] | None:
        """The held columns, one array each (None when empty); the batch is emptied."""
        if not self.parts:
            return None
        columns = {name: np.concatenate([part[name] for part in self.parts]) for name in self.parts[0]}
        self.parts, self.rows = [], 0
        return columns


class OrderWriter:
    """Streams shop/orders.csv, shop/order_items.csv and truth/orders.csv (in batches of days)."""

    def __init__(self, out_dir: Path, pop: Population, catalog: Catalog):
        self.pop, self.catalog = pop, catalog
        self.orders = (out_dir / "shop" / "orders.csv").open("wb")
        self.items = (out_dir / "shop" / "order_items.csv").open("wb")
        self.truth = (out_dir / "truth" / "orders.csv").open("wb")
        self.orders.write(_header(ORDER_COLUMNS))
        self.items.write(_header(ORDER_ITEM_COLUMNS))
        self.truth.write(_header(("order_id", "person_id", "cause")))
        self.next_order = 1
        self.next_transaction = 1
        self.guest_email_used = np.zeros(pop.size, dtype=bool)
        self.counts = {"orders": 0, "online_orders": 0, "order_items": 0}
        self.batch = _Batch()

    def write_day(self, orders: DayOrders, order_time_us: np.ndarray) -> np.ndarray:
        """Number the day's orders in time order and queue them for writing; return each order's
        transaction number (or -1)."""
        n = orders.size
        sequence = np.lexsort((orders.person, order_time_us))
        number = np.empty(n, dtype=np.int64)
        number[sequence] = self.next_order + np.arange(n)
        self.next_order += n
        online = orders.channel == CHANNEL_ONLINE
        transaction = np.full(n, -1, dtype=np.int64)
        online_in_sequence = sequence[online[sequence]]
        transaction[online_in_sequence] = self.next_transaction + np.arange(len(online_in_sequence))
        self.next_transaction += len(online_in_sequence)

        s = sequence
        person = orders.person[s]
        guest_email = orders.guest_email[s]
        self.guest_email_used[person[guest_email]] = True
        # Lines, in order-id order.
        counts = orders.line_count[s]
        rows = np.repeat(orders.line_start[s] - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
        full = self.batch.add(
            n, number=number[s], person=person, guest_email=guest_email, member_number=orders.member_number[s],
            time_us=order_time_us[s], channel=orders.channel[s], transaction=transaction[s], store=orders.store[s],
            cause=orders.cause[s], line_count=counts, line_product=orders.line_product[rows],
            line_quantity=orders.line_quantity[rows], line_unit_price=orders.line_unit_price[rows],
            line_discount=orders.line_discount[rows],
        )
        self.counts["orders"] += n
        self.counts["online_orders"] += int(online.sum())
        self.counts["order_items"] += len(rows)
        if full:
            self.flush()
        return transaction

    def flush(self) -> None:
        """Write the queued orders."""
        b = self.batch.take()
        if b is None:
            return
        n = len(b["number"])
        guests = np.flatnonzero(b["guest_email"])
        email = text.scatter(emails(self.pop, b["person"][guests]), guests, n)
        store = b["store"]
        store_id = text.fixed_digits(np.maximum(store, 0) + 1, 3, prefix="S", null_mask=store < 0)
        ids = order_ids(b["number"])
        write_csv(self.orders, [
            ids, member_ids(b["member_number"]), email, text.iso_seconds(b["time_us"]),
            text.pick(CHANNELS, b["channel"]), transaction_ids(b["transaction"]), store_id,
        ], n)
        write_csv(self.truth, [ids, person_ids(b["person"]), text.pick(CAUSES, b["cause"])], n)
        counts = b["line_count"]
        m = int(counts.sum())
        line_number = np.arange(m) - np.repeat(np.cumsum(counts) - counts, counts) + 1
        write_csv(self.items, [
            order_ids(np.repeat(b["number"], counts)), text.integers(line_number),
            text.pick(self.catalog.product_id, b["line_product"]), text.integers(b["line_quantity"]),
            text.money(b["line_unit_price"]), text.money(b["line_discount"]),
        ], m)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            for handle in (self.orders, self.items, self.truth):
                handle.close()


def client_ids(high: np.ndarray, low: np.ndarray, first_touch_us: np.ndarray, profile: np.ndarray) -> pa.Array:
    """The user_pseudo_id text of clients (as the GA4 rows write it, without quotes)."""
    n = len(high)
    web = text.fixed_width([text.digit_matrix(web_client_number(high), 10), ".",
                            text.digit_matrix(np.maximum(first_touch_us, 0) // 1_000_000, 10)], n)
    app = text.hex_digits(high, low)
    return pc.if_else(pa.array(profile < N_WEB_PROFILES), web, app)


class IdentityWriter:
    """Streams truth/identity.csv: client ids as they first appear (in batches of days), the rest
    at the end."""

    def __init__(self, path: Path):
        self.handle = path.open("wb")
        self.handle.write(_header(IDENTITY_COLUMNS))
        self.rows = 0
        self.batch = _Batch()

    def write(self, id_type: str, values: pa.Array, people: np.ndarray) -> None:
        self.flush()
        self._write(id_type, values, people)

    def _write(self, id_type: str, values: pa.Array, people: np.ndarray) -> None:
        present = pc.is_valid(values).to_numpy(zero_copy_only=False)
        values, people = values.filter(pa.array(present)), people[present]
        n = len(people)
        write_csv(self.handle, [text.constant(id_type, n), values, person_ids(people)], n)
        self.rows += n

    def clients(self, clients: Clients, people: np.ndarray, slots: np.ndarray) -> None:
        """Queue the ids of these clients as they are now (a cookie reset later changes them)."""
        if self.batch.add(len(people), people=people, high=clients.id_high[people, slots],
                          low=clients.id_low[people, slots], first_touch_us=clients.first_touch_us[people, slots],
                          profile=clients.profile[people, slots]):
            self.flush()

    def flush(self) -> None:
        """Write the queued client ids."""
        b = self.batch.take()
        if b is not None:
            self._write("user_pseudo_id", client_ids(b["high"], b["low"], b["first_touch_us"], b["profile"]),
                        b["people"])

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.handle.close()


def write_members(path: Path, crm: dict[str, object]) -> int:
    columns = crm["columns"]
    n = len(crm["person"])
    with path.open("wb") as handle:
        handle.write(_header(MEMBER_COLUMNS))
        write_csv(handle, [columns[c] for c in MEMBER_COLUMNS], n)
    return n


def write_final_identities(writer: IdentityWriter, crm: dict[str, object], pop: Population,
                           user_id_seen: np.ndarray, guest_email_used: np.ndarray) -> None:
    """Member ids, the user ids GA4 saw, every email and phone written anywhere, with their person."""
    crm_people = crm["person"]
    numbers = crm["member_number"]
    columns = crm["columns"]
    writer.write("member_id", columns["member_id"], crm_people)
    seen = np.zeros(len(numbers), dtype=bool)
    inside = numbers < len(user_id_seen)
    seen[inside] = user_id_seen[numbers[inside]]
    writer.write("user_id", columns["member_id"].filter(pa.array(seen)), crm_people[seen])
    crm_email = columns["email"]
    guests = np.flatnonzero(guest_email_used)
    guest_email = emails(pop, guests)
    all_email = pa.concat_arrays([crm_email, guest_email])
    all_people = np.concatenate([crm_people, guests])
    # The same address can be both a CRM email and a guest's: one row each.
    _, first = np.unique(np.asarray(all_email.to_numpy(zero_copy_only=False), dtype=object).astype(str),
                         return_index=True)
    first = np.sort(first)
    writer.write("email", all_email.take(pa.array(first)), all_people[first])
    writer.write("phone", columns["phone"], crm_people)


def write_people(path: Path, pop: Population, world_state: dict[str, np.ndarray], ledger: Ledger,
                 start: dt.date) -> None:
    """truth/people.csv: latent traits, what happened in the period, and the true future."""
    n = pop.size
    people = np.arange(n)

    def date_or_empty(days: np.ndarray) -> pa.Array:
        days = np.asarray(days, dtype=np.int64)
        missing = days >= NEVER // 2
        stamps = np.datetime64(start, "D") + np.where(missing, 0, days).astype("timedelta64[D]")
        return text.null_where(pa.array(np.datetime_as_string(stamps, unit="D")), missing)

    def decimals(values: np.ndarray, digits: int = 6) -> pa.Array:
        return pc.cast(pa.array(np.round(values, digits)), pa.string())

    columns = {
        "person_id": person_ids(people),
        "first_day": date_or_empty(pop.birth_day),
        "existing_customer": text.pick(("false", "true"), pop.existing.astype(int)),
        "member": text.pick(("false", "true"), (world_state["member_since"] < ledger.days).astype(int)),
        "orders_per_year": decimals(pop.order_rate * 365.0),
        "dropout_probability": decimals(pop.dropout_probability),
        "extra_lines": decimals(pop.extra_lines),
        "tech_affinity": decimals(pop.tech_affinity),
        "price_sensitivity": decimals(pop.price_sensitivity),
        "online_share": decimals(pop.online_share),
        **{f"taste_{c.slug}": decimals(pop.taste[:, k]) for k, c in enumerate(CATEGORIES)},
        "active_at_end": text.pick(("false", "true"), world_state["active_at_end"].astype(int)),
        "lapsed_on": date_or_empty(world_state["churn_day_at_end"]),
        "period_orders": text.integers(ledger.period_orders),
        "period_revenue": text.money(ledger.period_revenue),
        "period_margin": text.money(ledger.period_margin),
    }
    for k, device in enumerate(DEVICES):
        adopted = world_state["adoption_day"][:, k]
        columns[f"{device.key}_adopted_on"] = date_or_empty(np.where(adopted < ledger.days, adopted, NEVER))
        columns[f"{device.key}_effect_scale"] = decimals(pop.effect_scale[:, k] * 365.0)
    for w, window in enumerate(HOLDOUT_WINDOWS):
        columns[f"future_orders_{window}"] = text.integers(ledger.future_orders[w])
        columns[f"future_revenue_{window}"] = text.money(ledger.future_revenue[w])
        columns[f"future_margin_{window}"] = text.money(ledger.future_margin[w])
    with path.open("wb") as handle:
        handle.write(_header(tuple(columns)))
        write_csv(handle, list(columns.values()), n)


def write_adopters(path: Path, pop: Population, adoption_day: np.ndarray, ledger: Ledger,
                   start: dt.date) -> int:
    """truth/adopters.csv: every adopter's margin with and without the device, per horizon."""
    rows = 0
    with path.open("wb") as handle:
        columns = ["person_id", "device", "adopted_on", "adoption_day", "days_as_customer", "effect_scale_per_year"]
        for horizon in HORIZONS:
            columns += [f"margin_with_{horizon}", f"margin_without_{horizon}", f"induced_orders_{horizon}",
                        f"fully_observed_{horizon}"]
        handle.write(_header(tuple(columns)))
        for k, device in enumerate(DEVICES):
            people = np.flatnonzero(adoption_day[:, k] < ledger.days)
            people = people[np.argsort(adoption_day[people, k], kind="stable")]
            n = len(people)
            day = adoption_day[people, k]
            dates = np.datetime_as_string(np.datetime64(start, "D") + day.astype("timedelta64[D]"), unit="D")
            parts: list[pa.Array] = [person_ids(people), text.constant(device.key, n), pa.array(dates),
                                     text.integers(day), text.integers(day - pop.birth_day[people]),
                                     pc.cast(pa.array(np.round(pop.effect_scale[people, k] * 365.0, 6)), pa.string())]
            for h, horizon in enumerate(HORIZONS):
                with_device = ledger.margin_with[k, h, people]
                parts += [text.money(with_device), text.money(with_device - ledger.effect[k, h, people]),
                          text.integers(ledger.induced_orders[k, h, people]),
                          text.pick(("false", "true"), (day + horizon <= ledger.days - 1).astype(int))]
            write_csv(handle, parts, n)
            rows += n
    return rows


__all__ = ["OrderWriter", "IdentityWriter", "write_products", "write_members", "write_final_identities",
           "write_people", "write_adopters"]
