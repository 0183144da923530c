"""GA4 events as BigQuery's JSON export writes them: one object per line, INT64 as strings, nulls kept.

A line is a run of fragments gathered from one table (text.Fragments): fixed texts (a device/geo/app
context, an event name, the text between fields), values rendered column-wise for the events that
have them, and texts rendered once per client, session or distinct item. No row is formatted on its
own, and nearly every byte of the output is copied once, when the fragments are gathered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from spillover.synth import text
from spillover.synth.catalog import CATEGORIES, DEVICES, Catalog
from spillover.synth.ga4_sessions import EVENT_NAMES, NAME, N_WEB_PROFILES, SLOTS, Events, PageIndex, web_client_number
from spillover.synth.people import CITIES

HOSTNAME = "shop.example.com"
WEB_STREAM_ID, IOS_STREAM_ID, ANDROID_STREAM_ID, DEVICE_STREAM_ID = "5162738490", "5162738491", "5162738492", "5162738493"
CHUNK_EVENTS = text.CONSTANT_ROWS


def _device(category, os, os_version, brand=None, model=None, marketing=None, browser=None,
            browser_version=None, hardware=None):
    web_info = None if browser is None else {"browser": browser, "browser_version": browser_version,
                                             "hostname": HOSTNAME}
    return {
        "category": category, "mobile_brand_name": brand, "mobile_model_name": model,
        "mobile_marketing_name": marketing, "mobile_os_hardware_model": hardware,
        "operating_system": os, "operating_system_version": os_version, "vendor_id": None,
        "advertising_id": None, "language": "en-us", "is_limited_ad_tracking": "No",
        "time_zone_offset_seconds": None, "browser": None, "browser_version": None, "web_info": web_info,
    }


def _app_info(app_id, version, store, firebase):
    return {"id": app_id, "version": version, "install_store": store, "firebase_app_id": firebase,
            "install_source": store}


_IOS_APP = _app_info("com.example.shop", "5.4.1", "com.apple", "1:555000111:ios:5a1b2c3d4e5f6a7b")
_ANDROID_APP = _app_info("com.example.shop", "5.4.0", "com.android.vending", "1:555000111:android:0f1e2d3c4b5a6978")

#: (device, app_info, stream_id, platform) per client profile; ga4_sessions numbers them.
PROFILES = (
    (_device("desktop", "Windows", "Windows 10", browser="Chrome", browser_version="124.0.6367.91"), None, WEB_STREAM_ID, "WEB"),
    (_device("desktop", "Windows", "Windows 11", browser="Edge", browser_version="124.0.2478.67"), None, WEB_STREAM_ID, "WEB"),
    (_device("desktop", "Macintosh", "Macintosh Intel 10.15", browser="Safari", browser_version="17.4.1"), None, WEB_STREAM_ID, "WEB"),
    (_device("desktop", "Macintosh", "Macintosh Intel 10.15", browser="Chrome", browser_version="124.0.6367.91"), None, WEB_STREAM_ID, "WEB"),
    (_device("desktop", "Linux", "(not set)", browser="Firefox", browser_version="125.0"), None, WEB_STREAM_ID, "WEB"),
    (_device("mobile", "iOS", "iOS 17.4.1", "Apple", "iPhone", "(not set)", "Safari", "17.4"), None, WEB_STREAM_ID, "WEB"),
    (_device("mobile", "Android", "Android 14", "Samsung", "SM-S911B", "Galaxy S23", "Chrome", "124.0.6367.82"), None, WEB_STREAM_ID, "WEB"),
    (_device("mobile", "Android", "Android 14", "Google", "Pixel 8", "Pixel 8", "Chrome", "124.0.6367.82"), None, WEB_STREAM_ID, "WEB"),
    (_device("tablet", "iOS", "iPadOS 17.4", "Apple", "iPad", "(not set)", "Safari", "17.4"), None, WEB_STREAM_ID, "WEB"),
    (_device("mobile", "iOS", "iOS 17.4.1", "Apple", "iPhone", "iPhone 15", hardware="iPhone15,4"), _IOS_APP, IOS_STREAM_ID, "IOS"),
    (_device("mobile", "iOS", "iOS 16.7.7", "Apple", "iPhone", "iPhone 13", hardware="iPhone14,5"), _IOS_APP, IOS_STREAM_ID, "IOS"),
    (_device("mobile", "Android", "Android 14", "Samsung", "SM-S911B", "Galaxy S23", hardware="SM-S911B"), _ANDROID_APP, ANDROID_STREAM_ID, "ANDROID"),
    (_device("mobile", "Android", "Android 13", "Google", "Pixel 7", "Pixel 7", hardware="Pixel 7"), _ANDROID_APP, ANDROID_STREAM_ID, "ANDROID"),
    (_device("tablet", "Android", "Android 11", "Example", "LR-2", "Leaf e-Reader", hardware="LR-2"),
     _app_info("com.example.devices.ereader", "3.2.0", "(not set)", "1:555000111:android:e4e4e4e4e4e4e4e4"), DEVICE_STREAM_ID, "ANDROID"),
    (_device("smart speaker", "Android", "Android 9", "Example", "OS-1", "Orbit Smart Speaker", hardware="OS-1"),
     _app_info("com.example.devices.speaker", "1.8.3", "(not set)", "1:555000111:android:5b5b5b5b5b5b5b5b"), DEVICE_STREAM_ID, "ANDROID"),
    (_device("smart tv", "Android", "Android 11", "Example", "BS-4K", "Beam Streaming Stick", hardware="BS-4K"),
     _app_info("com.example.devices.stick", "2.1.0", "(not set)", "1:555000111:android:7c7c7c7c7c7c7c7c"), DEVICE_STREAM_ID, "ANDROID"),
)
TRAFFIC_SOURCES = (
    {"name": "(direct)", "medium": "(none)", "source": "(direct)"},
    {"name": "(organic)", "medium": "organic", "source": "google"},
    {"name": "spring_newsletter", "medium": "email", "source": "newsletter"},
    {"name": "(referral)", "medium": "referral", "source": "social.example.com"},
    {"name": "brand_search", "medium": "cpc", "source": "google"},
)
PRIVACY = (
    {"analytics_storage": "Yes", "ads_storage": "Yes", "uses_transient_token": "No"},
    {"analytics_storage": "Yes", "ads_storage": "No", "uses_transient_token": "No"},
    {"analytics_storage": "No", "ads_storage": "No", "uses_transient_token": "No"},
)
NOT_SET = "(not set)"


def _dump(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _string_param(key: str, value: str) -> str:
    return _dump({"key": key, "value": {"string_value": value, "int_value": None, "float_value": None,
                                        "double_value": None}})


def _distinct(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The row of each distinct key's first occurrence, and each row's distinct key (numbered in
    order of first occurrence); hashing, where np.unique would sort."""
    inverse, _ = pd.factorize(key)
    is_first = np.empty(len(inverse), dtype=bool)
    if len(inverse):
        is_first[0] = True
        is_first[1:] = inverse[1:] > np.maximum.accumulate(inverse)[:-1]
    return np.flatnonzero(is_first), inverse.astype(np.int64, copy=False)


def transaction_ids(numbers: np.ndarray) -> pa.Array:
    """``T`` and ten digits; null where the number is negative (not an online order)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    return text.fixed_digits(np.maximum(numbers, 0), 10, prefix="T", null_mask=numbers < 0)


class EventRenderer:
    """Renders :class:`Events` into NDJSON bytes."""

    def __init__(self, catalog: Catalog, pages: PageIndex, person_city: np.ndarray):
        self.catalog = catalog
        self.person_city = person_city
        # Every fixed fragment of a line sits in one table that starts each chunk's fragment table:
        # device/geo/app contexts, event names, page and login parameters, and the text between fields.
        fixed: list[str] = []

        def table(texts: list[str]) -> int:
            fixed.extend(texts)
            return len(fixed) - len(texts)

        geos = [_dump({"city": city, "country": "United States", "continent": "Americas", "region": state,
                       "sub_continent": "Northern America", "metro": metro}) for city, _, state, _, metro in CITIES]
        sources = [_dump(source) for source in TRAFFIC_SOURCES]
        clients = [(f',"user_ltv":null,"device":{_dump(device)},"geo":', f',"app_info":{_dump(app_info)},"traffic_source":',
                    f',"stream_id":"{stream}","platform":"{platform}","event_dimensions":'
                    f'{_dump({"hostname": HOSTNAME} if app_info is None else None)},"ecommerce":')
                   for device, app_info, stream, platform in PROFILES]
        self.context_base = table([before_geo + geo + before_source + source + after_source
                                   for before_geo, before_source, after_source in clients
                                   for geo in geos for source in sources])
        self.name_base = table([f'","event_name":"{name}","event_params":[' for name in EVENT_NAMES])
        web_pages = ["https://shop.example.com/", "https://shop.example.com/checkout",
                     "https://shop.example.com/checkout/complete", "https://shop.example.com/account/sign-in"]
        web_pages += [f"https://shop.example.com/c/{c.slug}" for c in CATEGORIES]
        web_pages += [f"https://shop.example.com/p/{pid}" for pid in catalog.product_id]
        screens = ["Home", "Checkout", "OrderComplete", "SignIn"] + ["Category"] * len(CATEGORIES)
        screens += ["ProductDetail"] * catalog.size
        self.n_pages = len(web_pages)
        # A parameter's first fragment comes plain and comma-led (after another parameter).

        def parameter_start(texts: list[str]) -> tuple[int, int]:
            return table(texts), table(["," + t for t in texts])

        self.page_start = parameter_start([_string_param("page_location", p) for p in web_pages]
                                          + [_string_param("firebase_screen", s) for s in screens])
        self.login_start = parameter_start([_string_param("method", "email"),
                                            _string_param("method", "device_registration")])
        self.engagement_start = parameter_start(['{"key":"engagement_time_msec","value":{"string_value":null,"int_value":"'])
        self.engagement_end = table(['","float_value":null,"double_value":null}}'])
        self.value_start = parameter_start([_string_param("currency", "USD") + ',{"key":"value","value":'
                                            '{"string_value":null,"int_value":null,"float_value":null,"double_value":'])
        self.value_end = table(["}}"])
        self.transaction_start = parameter_start(['{"key":"transaction_id","value":{"string_value":'])
        self.transaction_end = table([',"int_value":null,"float_value":null,"double_value":null}}'])
        self.empty = table([""])
        self.null = table(["null"])
        self.after_params = table(['],"event_previous_timestamp":null,"event_value_in_usd":'])
        self.before_user_id = table([',"user_id":'])
        self.before_items = table([',"items":['])
        self.line_end = table(['],"collected_traffic_source":null,"is_active_user":true,"batch_event_index":null,'
                               '"batch_ordering_id":null,"batch_page_id":null,"session_traffic_source_last_click":null,'
                               '"publisher":null}\n'])
        self.fixed = pa.array(fixed, pa.string())
        # Fragments that other fragments are built from.
        self.privacy = pa.array([f',"privacy_info":{_dump(p)},"user_properties":[],"user_first_touch_timestamp":'
                                 for p in PRIVACY])
        brands = {c.slug: c.brand for c in CATEGORIES}
        item_prefix = []
        for pid, name, category in zip(catalog.product_id, catalog.name, catalog.category):
            brand = brands.get(category, "Example")
            fields = {"item_id": pid, "item_name": name, "item_brand": brand, "item_variant": NOT_SET,
                      "item_category": category, "item_category2": NOT_SET, "item_category3": NOT_SET,
                      "item_category4": NOT_SET, "item_category5": NOT_SET}
            item_prefix.append(_dump(fields)[:-1] + ',"price_in_usd":')
        self.item_prefix = pa.array(item_prefix)
        tail = ('"affiliation":"(not set)","location_id":"(not set)","item_list_id":"(not set)",'
                '"item_list_name":"(not set)","item_list_index":"(not set)","promotion_id":"(not set)",'
                '"promotion_name":"(not set)","creative_name":"(not set)","creative_slot":"(not set)","item_params":[]}')
        self.coupon_tails = pa.array([f',"coupon":"(not set)",{tail}', f',"coupon":"SAVE10",{tail}'])
        assert len(PROFILES) == 16 and N_WEB_PROFILES == 9 and len(DEVICES) == 3

    def render(self, events: Events, event_date: str, transaction_number: np.ndarray) -> Iterator[memoryview]:
        """The NDJSON bytes of the events (every line ends in a newline), in chunks of at most
        CHUNK_EVENTS lines."""
        bounds = list(range(0, events.size, CHUNK_EVENTS)) + [events.size]
        item_bounds = np.searchsorted(events.item_event, bounds)
        for c in range(len(bounds) - 1):
            yield self._render_chunk(events, bounds[c], bounds[c + 1], int(item_bounds[c]),
                                     int(item_bounds[c + 1]), event_date, transaction_number)

    def _items(self, ev: Events, lo: int, hi: int, start: int, n: int, is_purchase: np.ndarray,
               table: text.Fragments) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per event, the index of its items' text (empty when it has none), its number of items and
        of units."""
        item_event = ev.item_event[lo:hi] - start
        product, quantity = ev.item_product[lo:hi], ev.item_quantity[lo:hi]
        price, discount = ev.item_price[lo:hi], ev.item_discount[lo:hi]
        if len(item_event) == 0:
            none = np.zeros(n, np.int64)
            return np.full(n, self.empty, dtype=np.int64), none, none
        per_event = np.bincount(item_event, minlength=n)
        # Item revenue is reported on purchase events only. A basket line shows up in several events
        # (view, cart, checkout, purchase): each distinct item is rendered once, then gathered.
        with_revenue = is_purchase[item_event]
        if quantity.max() >= 256 or discount.max() >= 2**25:
            raise ValueError("an item's quantity or discount is out of the renderer's range")
        key = ((product * 256 + quantity) * 2**25 + discount) * 2 + with_revenue
        first, inverse = _distinct(key)
        u_product, u_quantity = product[first], quantity[first]
        u_price, u_discount = price[first], discount[first]
        price_text = text.money(u_price)
        revenue_text = text.money(u_price * u_quantity - u_discount, ~with_revenue[first])
        distinct = text.join([
            text.pick(self.item_prefix, u_product), price_text, ',"price":', price_text, ',"quantity":"',
            text.integers(u_quantity), '","item_revenue_in_usd":', revenue_text, ',"item_revenue":', revenue_text,
            ',"item_refund_in_usd":null,"item_refund":null', text.pick(self.coupon_tails, (u_discount > 0).astype(np.int64)),
        ], len(first))
        # Most events show one item: its text is used as it is; longer lists are joined.
        column = np.full(n, self.empty, dtype=np.int64)
        single = per_event[item_event] == 1
        column[item_event[single]] = table.add(distinct) + inverse[single]
        multiple = np.flatnonzero(per_event > 1)
        if len(multiple):
            rows = ~single
            offsets = np.zeros(len(multiple) + 1, dtype=np.int32)
            np.cumsum(per_event[multiple], out=offsets[1:])
            lists = pa.ListArray.from_arrays(pa.array(offsets), distinct.take(pa.array(inverse[rows])))
            column[multiple] = table.add(pc.binary_join(lists, ",")) + np.arange(len(multiple))
        total_quantity = np.rint(np.bincount(item_event, weights=quantity, minlength=n)).astype(np.int64)
        return column, per_event, total_quantity

    def _client_blocks(self, ev: Events, s: slice, table: text.Fragments) -> tuple[np.ndarray, np.ndarray]:
        """Per event, the indices of its client's text from user_pseudo_id to event_dimensions: the
        ids and first touch (rendered once per client) and the device/geo/app context."""
        key = ev.person[s] * SLOTS + ev.slot[s]
        first, inverse = _distinct(key)
        rows = np.arange(s.start, s.stop)[first]
        m = len(rows)
        first_touch = ev.first_touch_us[rows]
        is_web = ev.profile[rows] < N_WEB_PROFILES
        web_id = text.fixed_width(['"', text.digit_matrix(web_client_number(ev.client_high[rows]), 10), ".",
                                   text.digit_matrix(np.maximum(first_touch, 0) // 1_000_000, 10), '"'], m)
        app_id = text.hex_digits(ev.client_high[rows], ev.client_low[rows], quoted=True)
        pseudo_id = text.null_where(pc.if_else(pa.array(is_web), web_id, app_id), ev.consent[rows] == 2)
        ids = text.join([
            ',"user_pseudo_id":', pseudo_id, text.pick(self.privacy, ev.consent[rows]),
            text.fixed_digits(np.maximum(first_touch, 0), 16, quoted=True, null_mask=first_touch < 0),
        ], m)
        city = self.person_city[ev.person[s]]
        context = (ev.profile[s] * len(CITIES) + city) * len(TRAFFIC_SOURCES) + ev.source[s]
        return table.add(ids) + inverse, self.context_base + context

    def _session_params(self, ev: Events, s: slice, table: text.Fragments) -> tuple[np.ndarray, np.ndarray]:
        """Per event, the index of its ga_session_id and ga_session_number parameters, and whether it
        has them (server-side events have none)."""
        session_id, session_number = ev.session_id[s], ev.session_number[s]
        key = (ev.person[s] * SLOTS + ev.slot[s]) * 2**24 + (session_number + 2)
        first, inverse = _distinct(key)
        sid, snum = session_id[first], session_number[first]
        m = len(first)
        params = text.join([
            '{"key":"ga_session_id","value":{"string_value":null,"int_value":',
            text.fixed_digits(np.maximum(sid, 0), 10, quoted=True, null_mask=sid < 0),
            ',"float_value":null,"double_value":null}},{"key":"ga_session_number","value":{"string_value":null,"int_value":',
            text.quoted_integers(snum, snum < 0), ',"float_value":null,"double_value":null}}',
        ], m)
        present = session_id != -2
        return np.where(present, table.add(params) + inverse, self.empty), present

    def _present(self, table: text.Fragments, values: pa.Array, rows: np.ndarray, n: int, absent: int) -> np.ndarray:
        """Per event, the index of its value (``values`` hold the values of ``rows``), else ``absent``."""
        return self._indices(table.add(values), rows, n, absent)

    @staticmethod
    def _indices(base: int, rows: np.ndarray, n: int, absent: int) -> np.ndarray:
        """Per event, the index of its value (the values of ``rows`` start at ``base``), else ``absent``."""
        column = np.full(n, absent, dtype=np.int64)
        column[rows] = base + np.arange(len(rows))
        return column

    def _render_chunk(self, ev: Events, start: int, stop: int, lo: int, hi: int, event_date: str,
                      transaction_number: np.ndarray) -> memoryview:
        n = stop - start
        s = slice(start, stop)
        table = text.Fragments(self.fixed)
        name = ev.name[s]
        is_web = ev.profile[s] < N_WEB_PROFILES
        value = ev.value_cents[s]
        is_purchase = name == NAME["purchase"]
        reports_revenue = is_purchase & (value >= 0)
        order = ev.order[s]
        tx_number = np.full(n, -1, dtype=np.int64)
        reported = np.flatnonzero(is_purchase & (order >= 0))
        tx_number[reported] = transaction_number[order[reported]]

        # event_params: the present ones, each but the first led by a comma.
        session, seen = self._session_params(ev, s, table)

        def start_of(present: np.ndarray, start: tuple[int, int], offset: np.ndarray | int = 0) -> np.ndarray:
            """The first fragment of a parameter: comma-led after another parameter, none if absent."""
            index = np.where(present, np.where(seen, start[1], start[0]) + offset, self.empty)
            np.logical_or(seen, present, out=seen)
            return index

        def end_of(present: np.ndarray, end: int) -> np.ndarray:
            return np.where(present, end, self.empty)

        page, method = ev.page[s], ev.login_method[s]
        engagement_ms = ev.engagement_ms[s]
        engaged, has_value, has_tx = engagement_ms >= 0, value >= 0, tx_number >= 0
        with_value = np.flatnonzero(has_value)
        value_text = table.add(text.money(value[with_value]))
        with_engagement, with_tx = np.flatnonzero(engaged), np.flatnonzero(has_tx)
        params = [
            session,
            start_of(page >= 0, self.page_start, page + np.where(is_web, 0, self.n_pages)),
            start_of(engaged, self.engagement_start),
            self._present(table, text.integers(engagement_ms[with_engagement]), with_engagement, n, self.empty),
            end_of(engaged, self.engagement_end),
            start_of(has_value, self.value_start),
            self._indices(value_text, with_value, n, self.empty),
            end_of(has_value, self.value_end),
            start_of(has_tx, self.transaction_start),
            self._present(table, text.fixed_digits(tx_number[with_tx], 10, prefix="T", quoted=True), with_tx, n,
                          self.empty),
            end_of(has_tx, self.transaction_end),
            start_of(method >= 0, self.login_start, method),
        ]

        # Items and the ecommerce block.
        items, per_event, total_quantity = self._items(ev, lo, hi, start, n, is_purchase, table)
        ecommerce_rows = np.flatnonzero(per_event > 0)
        m = len(ecommerce_rows)
        revenue = text.money(np.maximum(value[ecommerce_rows], 0), ~reports_revenue[ecommerce_rows])
        tx_rows = tx_number[ecommerce_rows]
        ecommerce = self._present(table, text.join([
            '{"total_item_quantity":"', text.integers(total_quantity[ecommerce_rows]), '","purchase_revenue_in_usd":',
            revenue, ',"purchase_revenue":', revenue,
            ',"refund_value_in_usd":null,"refund_value":null,"shipping_value_in_usd":null,"shipping_value":null,'
            '"tax_value_in_usd":null,"tax_value":null,"unique_items":"', text.integers(per_event[ecommerce_rows]),
            '","transaction_id":', text.fill_null(text.fixed_digits(np.maximum(tx_rows, 0), 10, prefix="T", quoted=True,
                                                                   null_mask=tx_rows < 0), '"(not set)"'), "}",
        ], m), ecommerce_rows, n, self.null)

        server_offset = ev.server_offset[s]
        with_offset = np.flatnonzero(server_offset >= 0)
        user = ev.user_member[s]
        with_user = np.flatnonzero(user >= 0)
        every = np.arange(n)
        fragments = [
            self._present(table, text.fixed_digits(ev.timestamp_us[s], 16,
                                                   prefix=f'{{"event_date":"{event_date}","event_timestamp":"'),
                          every, n, self.empty),
            self.name_base + name,
            *params,
            self.after_params,
            # event_value_in_usd: the value parameter's amount, on purchases
            np.where(reports_revenue, self._indices(value_text, with_value, n, self.null), self.null),
            self._present(table, text.fixed_width([',"event_bundle_sequence_id":"', text.digit_matrix(ev.bundle[s], 10),
                                                   '","event_server_timestamp_offset":'], n), every, n, self.empty),
            self._present(table, text.fixed_digits(server_offset[with_offset], 7, quoted=True), with_offset, n, self.null),
            self.before_user_id,
            self._present(table, text.fixed_digits(user[with_user], 8, prefix="M", quoted=True), with_user, n, self.null),
            *self._client_blocks(ev, s, table),
            ecommerce,
            self.before_items,
            items,
            self.line_end,
        ]
        lines = np.empty((n, len(fragments)), dtype=np.int64)
        for k, column in enumerate(fragments):
            lines[:, k] = column
        return table.gather(lines.ravel())


__all__ = ["EventRenderer", "PROFILES", "transaction_ids"]
