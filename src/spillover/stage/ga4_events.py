"""GA4 staging: ``base_ga4__events`` -> ``stg_ga4__events`` and ``stg_ga4__event_items``.

One typed row per event (common parameters lifted, ``event_key``/``client_key``/``session_key``
built once, here) and one per item; both are partitioned by ``event_date`` and restaged by date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as idt

from spillover.engine import replace_partitions, table_exists, write_table
from spillover.progress import NullProgress, Progress

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from spillover.config import Config

__all__ = ["EVENTS_TABLE", "ITEMS_TABLE", "LIFTED_PARAMS", "build_ga4_staging", "stage_events", "stage_items"]

BASE_TABLE = "base_ga4__events"
EVENTS_TABLE = "stg_ga4__events"
ITEMS_TABLE = "stg_ga4__event_items"

#: Event parameters lifted into columns of their own: parameter key -> (column, type). The rest stay
#: in ``event_params_other``. ``session_engaged`` arrives as "1" (web) or 1 (app): it becomes a flag.
LIFTED_PARAMS: dict[str, tuple[str, idt.DataType]] = {
    "ga_session_id": ("ga_session_id", idt.int64),
    "ga_session_number": ("ga_session_number", idt.int64),
    "page_location": ("page_location", idt.string),
    "page_referrer": ("page_referrer", idt.string),
    "page_title": ("page_title", idt.string),
    "engagement_time_msec": ("engagement_time_msec", idt.int64),
    "session_engaged": ("session_engaged", idt.boolean),
    "engaged_session_event": ("engaged_session_event", idt.int64),
    "entrances": ("entrances", idt.int64),
    "percent_scrolled": ("percent_scrolled", idt.float64),
    "source": ("event_source", idt.string),
    "medium": ("event_medium", idt.string),
    "campaign": ("event_campaign", idt.string),
    "term": ("event_term", idt.string),
    "content": ("event_content", idt.string),
    "gclid": ("event_gclid", idt.string),
    "currency": ("currency", idt.string),
    "value": ("value", idt.float64),
    "search_term": ("search_term", idt.string),
    "firebase_screen": ("firebase_screen", idt.string),
    "firebase_screen_class": ("firebase_screen_class", idt.string),
}

_EPOCH = ibis.timestamp("1970-01-01 00:00:00", timezone="UTC")
_KEY_SEPARATOR = "|"


def _micros_to_timestamp(micros: ibis.IntegerValue) -> ibis.TimestampValue:
    return _EPOCH + micros.as_interval("us")


def _value_text(value: ibis.StructValue) -> ibis.StringValue:
    """A parameter's value as text, whichever of its typed fields holds it."""
    return ibis.coalesce(
        value.string_value,
        value.int_value.cast("string"),
        value.double_value.cast("string"),
        value.float_value.cast("string"),
    )


def _as_map(entries: ibis.ArrayValue) -> ibis.MapValue:
    """``[{key, value{...}}]`` -> map of key to value text (ingestion refuses repeated keys)."""
    return ibis.map(entries.map(lambda e: e.key), entries.map(lambda e: _value_text(e.value)))


def _param(entries: ibis.ArrayValue, key: str) -> ibis.StringValue:
    """The value text of one parameter, or null when the event lacks it.

    A filter over the entries, rather than a lookup in :func:`_as_map`: Ibis repeats a map's whole
    construction at each lookup, which made staging several times slower. Keys are unique
    (ingestion refuses repeats), so the max is the one value; unlike indexing, it is null for no
    match on every engine (Spark's ANSI mode fails an index past the end).
    """
    return entries.filter(lambda e: e.key == key).map(lambda e: _value_text(e.value)).maxs()


def _md5(*parts: ibis.Value) -> ibis.StringValue:
    text = ibis.literal("")
    for i, part in enumerate(parts):
        text = text.concat(_KEY_SEPARATOR if i else "", part.cast("string").fill_null(""))
    return text.hexdigest("md5")


def _consent(value: ibis.StringValue) -> ibis.BooleanValue:
    """GA4's "Yes"/"No" consent strings as a flag (null when not stated)."""
    return value.cases(("Yes", True), ("No", False), else_=ibis.null("boolean"))


def _keys(base: ibis.Table, ga_session_id: ibis.IntegerValue) -> dict[str, ibis.Value]:
    """``client_key``, ``session_key`` and ``event_key``, dbt-ga4 style (md5 hex).

    ``client_key`` is null when consent mode denied analytics storage (no pseudonymous id may be
    used then), and ``session_key`` when there is no client or no session id.
    """
    consent_denied = (base.privacy_info.analytics_storage == "No").fill_null(False)
    client_key = ibis.ifelse(
        base.user_pseudo_id.isnull() | consent_denied,
        ibis.null("string"),
        _md5(base.user_pseudo_id, base.stream_id),
    )
    session_key = ibis.ifelse(
        client_key.isnull() | ga_session_id.isnull(), ibis.null("string"), _md5(client_key, ga_session_id)
    )
    params = base.event_params.map(lambda p: p.key.concat("=", _value_text(p.value).fill_null(""))).join("&")
    event_key = _md5(
        base.stream_id,
        base.user_pseudo_id,
        base.event_timestamp,
        base.event_name,
        base.event_bundle_sequence_id,
        base.batch_event_index,
        base.batch_ordering_id,
        base.batch_page_id,
        params,
    )
    return {"event_key": event_key, "client_key": client_key, "session_key": session_key}


def _session_id(base: ibis.Table) -> ibis.IntegerValue:
    return _param(base.event_params, "ga_session_id").try_cast("int64")


def stage_events(base: ibis.Table) -> ibis.Table:
    """``stg_ga4__events`` rows for the events of ``base``."""
    lifted: dict[str, ibis.Value] = {}
    for key, (column, dtype) in LIFTED_PARAMS.items():
        text = _param(base.event_params, key)
        if key == "session_engaged":
            lifted[column] = text.isin(["1", "true"])
        else:
            lifted[column] = text if dtype.is_string() else text.try_cast(dtype)
    other = base.event_params.filter(lambda p: ~p.key.isin(list(LIFTED_PARAMS)))
    device, geo = base.device, base.geo
    session_click = base.session_traffic_source_last_click
    return base.select(
        **_keys(base, lifted["ga_session_id"]),
        event_date=base._export_date,
        event_timestamp=_micros_to_timestamp(base.event_timestamp),
        event_name=base.event_name,
        event_previous_timestamp=_micros_to_timestamp(base.event_previous_timestamp),
        event_value_in_usd=base.event_value_in_usd,
        event_bundle_sequence_id=base.event_bundle_sequence_id,
        event_server_timestamp_offset=base.event_server_timestamp_offset,
        user_id=base.user_id,
        user_pseudo_id=base.user_pseudo_id,
        user_first_touch_timestamp=_micros_to_timestamp(base.user_first_touch_timestamp),
        is_active_user=base.is_active_user,
        stream_id=base.stream_id,
        platform=base.platform,
        consent_analytics_storage=_consent(base.privacy_info.analytics_storage),
        consent_ads_storage=_consent(base.privacy_info.ads_storage),
        uses_transient_token=_consent(base.privacy_info.uses_transient_token),
        **lifted,
        event_params_other=_as_map(other),
        user_properties=_as_map(base.user_properties),
        device_category=device.category,
        device_mobile_brand_name=device.mobile_brand_name,
        device_mobile_model_name=device.mobile_model_name,
        device_operating_system=device.operating_system,
        device_operating_system_version=device.operating_system_version,
        device_language=device.language,
        device_browser=ibis.coalesce(device.web_info.browser, device.browser),
        device_browser_version=ibis.coalesce(device.web_info.browser_version, device.browser_version),
        hostname=ibis.coalesce(device.web_info.hostname, base.event_dimensions.hostname),
        geo_continent=geo.continent,
        geo_sub_continent=geo.sub_continent,
        geo_country=geo.country,
        geo_region=geo.region,
        geo_city=geo.city,
        geo_metro=geo.metro,
        app_id=base.app_info["id"],
        app_version=base.app_info.version,
        app_install_source=base.app_info.install_source,
        traffic_source_name=base.traffic_source["name"],
        traffic_source_medium=base.traffic_source.medium,
        traffic_source_source=base.traffic_source.source,
        collected_source=base.collected_traffic_source.manual_source,
        collected_medium=base.collected_traffic_source.manual_medium,
        collected_campaign=base.collected_traffic_source.manual_campaign_name,
        collected_term=base.collected_traffic_source.manual_term,
        collected_content=base.collected_traffic_source.manual_content,
        collected_gclid=base.collected_traffic_source.gclid,
        session_source=session_click.manual_campaign.source,
        session_medium=session_click.manual_campaign.medium,
        session_campaign=session_click.manual_campaign.campaign_name,
        session_default_channel_group=session_click.cross_channel_campaign.default_channel_group,
        transaction_id=base.ecommerce.transaction_id,
        purchase_revenue=base.ecommerce.purchase_revenue,
        purchase_revenue_in_usd=base.ecommerce.purchase_revenue_in_usd,
        refund_value=base.ecommerce.refund_value,
        shipping_value=base.ecommerce.shipping_value,
        tax_value=base.ecommerce.tax_value,
        total_item_quantity=base.ecommerce.total_item_quantity,
        unique_items=base.ecommerce.unique_items,
        item_count=base.items.length().fill_null(0).cast("int64"),
        _source_file=base._source_file,
        _source_line=base._source_line,
        _export_table=base._export_table,
        _load_id=base._load_id,
    )


def stage_items(base: ibis.Table) -> ibis.Table:
    """``stg_ga4__event_items`` rows: one per element of ``items`` (``item_index`` from 0)."""
    keyed = base.filter(base.items.length() > 0)
    # Unnesting in the projection (not a lateral join) keeps engines from hashing whole events.
    numbered = keyed.items.map(lambda item, position: ibis.struct({"item": item, "position": position}))
    keyed = keyed.select(
        **_keys(keyed, _session_id(keyed)),
        event_date=keyed._export_date,
        event_timestamp=_micros_to_timestamp(keyed.event_timestamp),
        event_name=keyed.event_name,
        transaction_id=keyed.ecommerce.transaction_id,
        _item=numbered.unnest(),
    )
    item = keyed._item["item"]
    fields = {name: item[name] for name in item.type().names if name != "item_params"}
    return keyed.select(
        "event_key",
        "client_key",
        "session_key",
        "event_date",
        "event_timestamp",
        "event_name",
        "transaction_id",
        item_index=keyed._item["position"].cast("int64"),
        **fields,
        item_params=_as_map(item.item_params),
    )


def _row_count(con: BaseBackend, name: str) -> int:
    return int(con.table(name).count().to_pyarrow().as_py())


def build_ga4_staging(
    con: BaseBackend,
    *,
    config: Config | None = None,
    progress: Progress | None = None,
    partitions: Sequence[dt.date] | None = None,
) -> dict[str, int]:
    """(Re)build ``stg_ga4__events`` and ``stg_ga4__event_items`` from ``base_ga4__events``.

    With ``partitions`` (export dates) only those dates are restaged, each replaced atomically;
    otherwise both tables are rebuilt. Returns the row count of each table written (nothing when
    no GA4 data has been loaded).
    """
    progress = progress or NullProgress()
    if not table_exists(con, BASE_TABLE):
        return {}
    base = con.table(BASE_TABLE)
    task = progress.task("staging GA4 events", total=2)
    if partitions is not None:
        dates = sorted(set(partitions))
        if not dates:
            return {}
        base = base.filter(base._export_date.isin(dates))
    for name, build in ((EVENTS_TABLE, stage_events), (ITEMS_TABLE, stage_items)):
        rows = build(base)
        if partitions is None:
            write_table(con, name, rows)
        else:
            replace_partitions(con, name, rows, by="event_date", partitions=dates)
        progress.advance(task, 1, description=f"staged {name}")
    return {name: _row_count(con, name) for name in (EVENTS_TABLE, ITEMS_TABLE)}
