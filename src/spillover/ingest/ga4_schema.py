"""The GA4 BigQuery-export event schema as Ibis types, and the views of it ingestion needs.

One definition for every engine: the typed schema of ``base_ga4__events``, the all-text shape raw
rows are parsed into first, and the typed leaves whose text must cast cleanly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt

__all__ = [
    "EXPORT_SCHEMA",
    "REQUIRED_FIELDS",
    "TypedLeaf",
    "text_type",
    "text_schema",
    "typed_leaves",
    "EXPORT_FILE_PATTERN",
]

STRING = dt.string
INT64 = dt.int64
FLOAT64 = dt.float64
BOOL = dt.boolean


def _record(**fields: dt.DataType) -> dt.Struct:
    return dt.Struct(fields)


def _strings(*names: str) -> dt.Struct:
    return dt.Struct({name: STRING for name in names})


def _key_value(**extra: dt.DataType) -> dt.Array:
    """A repeated ``{key, value{string_value, int_value, float_value, double_value, ...}}`` record."""
    value = _record(string_value=STRING, int_value=INT64, float_value=FLOAT64, double_value=FLOAT64, **extra)
    return dt.Array(_record(key=STRING, value=value))


EVENT_PARAMS = _key_value()
USER_PROPERTIES = _key_value(set_timestamp_micros=INT64)

ITEM = _record(
    item_id=STRING,
    item_name=STRING,
    item_brand=STRING,
    item_variant=STRING,
    item_category=STRING,
    item_category2=STRING,
    item_category3=STRING,
    item_category4=STRING,
    item_category5=STRING,
    price_in_usd=FLOAT64,
    price=FLOAT64,
    quantity=INT64,
    item_revenue_in_usd=FLOAT64,
    item_revenue=FLOAT64,
    item_refund_in_usd=FLOAT64,
    item_refund=FLOAT64,
    coupon=STRING,
    affiliation=STRING,
    location_id=STRING,
    item_list_id=STRING,
    item_list_name=STRING,
    item_list_index=STRING,
    promotion_id=STRING,
    promotion_name=STRING,
    creative_name=STRING,
    creative_slot=STRING,
    item_params=EVENT_PARAMS,
)

DEVICE = _record(
    category=STRING,
    mobile_brand_name=STRING,
    mobile_model_name=STRING,
    mobile_marketing_name=STRING,
    mobile_os_hardware_model=STRING,
    operating_system=STRING,
    operating_system_version=STRING,
    vendor_id=STRING,
    advertising_id=STRING,
    language=STRING,
    is_limited_ad_tracking=STRING,
    time_zone_offset_seconds=INT64,
    browser=STRING,
    browser_version=STRING,
    web_info=_strings("browser", "browser_version", "hostname"),
)

ECOMMERCE = _record(
    total_item_quantity=INT64,
    purchase_revenue_in_usd=FLOAT64,
    purchase_revenue=FLOAT64,
    refund_value_in_usd=FLOAT64,
    refund_value=FLOAT64,
    shipping_value_in_usd=FLOAT64,
    shipping_value=FLOAT64,
    tax_value_in_usd=FLOAT64,
    tax_value=FLOAT64,
    unique_items=INT64,
    transaction_id=STRING,
)

SESSION_TRAFFIC_SOURCE_LAST_CLICK = _record(
    manual_campaign=_strings(
        "campaign_id", "campaign_name", "source", "medium", "term", "content",
        "source_platform", "creative_format", "marketing_tactic",
    ),
    google_ads_campaign=_strings(
        "customer_id", "account_name", "campaign_id", "campaign_name", "ad_group_id", "ad_group_name",
    ),
    cross_channel_campaign=_strings(
        "campaign_id", "campaign_name", "source", "medium", "source_platform",
        "default_channel_group", "primary_channel_group",
    ),
    sa360_campaign=_strings(
        "campaign_id", "campaign_name", "source", "medium", "ad_group_id", "ad_group_name",
        "creative_format", "engine_account_name", "engine_account_type", "manager_account_name",
    ),
    cm360_campaign=_strings(
        "campaign_id", "campaign_name", "source", "medium", "account_id", "account_name",
        "advertiser_id", "advertiser_name", "creative_id", "creative_format", "creative_name",
        "creative_type", "creative_type_id", "creative_version", "placement_id",
        "placement_cost_structure", "placement_name", "rendering_id", "site_id", "site_name",
    ),
    dv360_campaign=_strings(
        "campaign_id", "campaign_name", "source", "medium", "partner_id", "partner_name",
        "advertiser_id", "advertiser_name", "insertion_order_id", "insertion_order_name",
        "line_item_id", "line_item_name", "creative_id", "creative_name", "creative_format",
        "exchange_id", "exchange_name",
    ),
)

#: Every column of an ``events_YYYYMMDD`` table, in the export's order, with BigQuery's types
#: (INTEGER -> int64, FLOAT -> float64). Columns a given export lacks load as null.
EXPORT_SCHEMA = ibis.schema(
    {
        "event_date": STRING,
        "event_timestamp": INT64,
        "event_name": STRING,
        "event_params": EVENT_PARAMS,
        "event_previous_timestamp": INT64,
        "event_value_in_usd": FLOAT64,
        "event_bundle_sequence_id": INT64,
        "event_server_timestamp_offset": INT64,
        "user_id": STRING,
        "user_pseudo_id": STRING,
        "privacy_info": _strings("analytics_storage", "ads_storage", "uses_transient_token"),
        "user_properties": USER_PROPERTIES,
        "user_first_touch_timestamp": INT64,
        "user_ltv": _record(revenue=FLOAT64, currency=STRING),
        "device": DEVICE,
        "geo": _strings("city", "country", "continent", "region", "sub_continent", "metro"),
        "app_info": _strings("id", "version", "install_store", "firebase_app_id", "install_source"),
        "traffic_source": _strings("name", "medium", "source"),
        "stream_id": STRING,
        "platform": STRING,
        "event_dimensions": _strings("hostname"),
        "ecommerce": ECOMMERCE,
        "items": dt.Array(ITEM),
        "collected_traffic_source": _strings(
            "manual_campaign_id", "manual_campaign_name", "manual_source", "manual_medium",
            "manual_term", "manual_content", "manual_source_platform", "manual_creative_format",
            "manual_marketing_tactic", "gclid", "dclid", "srsltid",
        ),
        "is_active_user": BOOL,
        "batch_event_index": INT64,
        "batch_ordering_id": INT64,
        "batch_page_id": INT64,
        "session_traffic_source_last_click": SESSION_TRAFFIC_SOURCE_LAST_CLICK,
        "publisher": _record(
            ad_revenue_in_usd=FLOAT64, ad_format=STRING, ad_source_name=STRING, ad_unit_id=STRING
        ),
    }
)

#: Fields every event must carry. ``user_pseudo_id`` is also required unless consent mode denied
#: analytics storage (``privacy_info.analytics_storage = "No"``), which exports it as null.
REQUIRED_FIELDS = ("event_date", "event_timestamp", "event_name", "user_pseudo_id")

#: ``events_YYYYMMDD`` or ``events_intraday_YYYYMMDD``, optionally sharded (``-000000000001``).
EXPORT_FILE_PATTERN = (
    r"^events_(?P<intraday>intraday_)?(?P<date>\d{8})(?:[-_]\d+)?"
    r"\.(?P<format>json|jsonl|ndjson|parquet)(?P<gzip>\.gz)?$"
)


def text_type(dtype: dt.DataType) -> dt.DataType:
    """``dtype`` with every leaf replaced by string: the shape raw rows are parsed into.

    Parsing numbers as text keeps BigQuery's quoted INT64 and plain JSON numbers alike, and lets a
    later cast tell a wrong value (``"abc"``) from a missing one.
    """
    if dtype.is_struct():
        return dt.Struct({name: text_type(field) for name, field in dtype.items()})
    if dtype.is_array():
        return dt.Array(text_type(dtype.value_type))
    return STRING


def text_schema() -> ibis.Schema:
    return ibis.schema({name: text_type(dtype) for name, dtype in EXPORT_SCHEMA.items()})


@dataclass(frozen=True)
class TypedLeaf:
    """A non-string field of the export, addressed from a top-level column.

    ``path`` walks struct fields; a ``"[]"`` step descends into every element of a repeated record.
    ``column`` is how error messages name it, e.g. ``event_params[].value.int_value``.
    """

    path: tuple[str, ...]
    dtype: dt.DataType

    @property
    def column(self) -> str:
        return ".".join(self.path).replace(".[]", "[]")


def _leaves(path: tuple[str, ...], dtype: dt.DataType) -> Iterator[TypedLeaf]:
    if dtype.is_struct():
        for name, field in dtype.items():
            yield from _leaves((*path, name), field)
    elif dtype.is_array():
        yield from _leaves((*path, "[]"), dtype.value_type)
    elif not dtype.is_string():
        yield TypedLeaf(path, dtype)


def typed_leaves() -> list[TypedLeaf]:
    """Every int/float/bool leaf of the export schema, in schema order."""
    return [leaf for name, dtype in EXPORT_SCHEMA.items() for leaf in _leaves((name,), dtype)]
