"""GA4 staging on DuckDB and Spark: one typed row per event and per item, keys built once."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from spillover.config import Config
from spillover.ingest.ga4 import ingest_ga4
from spillover.stage.ga4_events import EVENTS_TABLE, ITEMS_TABLE, build_ga4_staging
from tests.conftest import drop_all

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ga4"
WEB_CLIENT, APP_CLIENT = "1166526666.1712391776", "2098765432.1712390001"
WEB_STREAM, APP_STREAM = "1966637064", "3344556677"


def md5(*parts: object) -> str:
    return hashlib.md5("|".join(str(p) for p in parts).encode()).hexdigest()


def utc(stamp: dt.datetime) -> dt.datetime:
    # Spark hands timestamps back without a zone (in its UTC session time); DuckDB with one.
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)


def rows(con, name: str) -> list[dict]:
    """A table as dicts; map columns travel as key and value arrays (Ibis cannot hand Spark maps to Arrow)."""
    table = con.table(name)
    maps = [c for c, dtype in table.schema().items() if dtype.is_map()]
    flat = table.mutate(**{f"{c}__keys": table[c].keys() for c in maps},
                        **{f"{c}__values": table[c].values() for c in maps}).drop(*maps)
    out = flat.to_pyarrow().to_pylist()
    for row in out:
        for c in maps:
            keys, values = row.pop(f"{c}__keys"), row.pop(f"{c}__values")
            row[c] = None if keys is None else dict(zip(keys, values))
    return out


@pytest.fixture(scope="module")
def staged(engine) -> dict[str, list[dict]]:
    """The fixture export loaded once per engine; staged tables as plain rows."""
    drop_all(engine)
    ingest_ga4(engine, [FIXTURES], config=Config())
    return {name: rows(engine, name) for name in (EVENTS_TABLE, ITEMS_TABLE)}


def _events(staged, **match) -> list[dict]:
    rows = [r for r in staged[EVENTS_TABLE] if all(r[k] == v for k, v in match.items())]
    return sorted(rows, key=lambda r: utc(r["event_timestamp"]))


def test_one_row_per_event_with_date_and_utc_timestamp(staged):
    events = staged[EVENTS_TABLE]
    assert len(events) == 8  # 7 daily lines less one exact duplicate, plus 2 intraday events
    assert len({r["event_key"] for r in events}) == 8
    purchase = _events(staged, event_name="purchase")[0]
    assert purchase["event_date"] == dt.date(2024, 4, 6)
    assert utc(purchase["event_timestamp"]) == dt.datetime(2024, 4, 6, 8, 24, 10, tzinfo=dt.timezone.utc)
    page = _events(staged, event_name="page_view", user_id="member-1042")[0]
    assert utc(page["event_timestamp"]) == dt.datetime(2024, 4, 6, 8, 23, 10, 431476, tzinfo=dt.timezone.utc)
    assert {r["event_date"] for r in events} == {dt.date(2024, 4, 6), dt.date(2024, 4, 7)}


def test_common_params_are_lifted_into_typed_columns(staged):
    start = _events(staged, event_name="session_start")[0]
    assert (start["ga_session_id"], start["ga_session_number"], start["entrances"]) == (1712391775, 3, 1)
    assert (start["event_source"], start["event_medium"], start["event_campaign"]) == (
        "newsletter", "email", "spring_sale")
    assert start["session_engaged"] is False  # "0"
    assert start["page_location"] == "https://shop.example.com/?utm_source=newsletter"
    page = _events(staged, event_name="page_view", user_id="member-1042")[0]
    assert (page["page_title"], page["engagement_time_msec"], page["session_engaged"]) == ("Speaker Mini", 15231, True)
    assert page["percent_scrolled"] == pytest.approx(62.5)  # a double_value
    landing = _events(staged, event_name="page_view", ga_session_id=1712391775)[0]
    assert landing["page_referrer"] == "https://mail.example.net/"
    purchase = _events(staged, event_name="purchase")[0]
    assert (purchase["currency"], purchase["value"]) == ("USD", pytest.approx(59.98))
    assert purchase["event_params_other"] == {"transaction_id": "T-1001"}
    assert purchase["user_properties"] == {"member_tier": "gold"}
    screen = _events(staged, event_name="screen_view")[0]
    assert (screen["firebase_screen"], screen["firebase_screen_class"]) == ("Home", "MainActivity")
    assert screen["event_params_other"] == {}


def test_keys_are_md5_of_client_and_session_and_null_without_consent(staged):
    web_client = md5(WEB_CLIENT, WEB_STREAM)
    session = _events(staged, event_date=dt.date(2024, 4, 6), client_key=web_client)
    assert [r["event_name"] for r in session] == ["session_start", "page_view", "page_view", "purchase"]
    assert {r["session_key"] for r in session} == {md5(web_client, 1712391775)}
    # the login mid-session: user_id appears on later events, the session stays one
    assert [r["user_id"] for r in session] == [None, None, "member-1042", "member-1042"]
    (ping,) = _events(staged, consent_analytics_storage=False)
    assert (ping["user_pseudo_id"], ping["client_key"], ping["session_key"]) == (None, None, None)
    assert ping["consent_ads_storage"] is False
    (app,) = _events(staged, event_name="screen_view")
    assert (app["client_key"], app["session_key"]) == (md5(APP_CLIENT, APP_STREAM), md5(md5(APP_CLIENT, APP_STREAM), 1712433590))
    next_day = _events(staged, event_date=dt.date(2024, 4, 7))
    assert {r["session_key"] for r in next_day} == {md5(web_client, 1712479990)}


def test_event_key_is_md5_of_the_identifying_fields_and_params(staged):
    start = _events(staged, event_name="session_start")[0]
    params = "&".join([
        "ga_session_id=1712391775", "ga_session_number=3", "page_location=https://shop.example.com/?utm_source=newsletter",
        "page_title=Home", "session_engaged=0", "source=newsletter", "medium=email", "campaign=spring_sale", "entrances=1",
    ])
    assert start["event_key"] == md5(WEB_STREAM, WEB_CLIENT, 1712391775100000, "session_start", 5001, 0, 1,
                                     1712391775000, params)


def test_device_geo_traffic_privacy_and_ecommerce_basics(staged):
    purchase = _events(staged, event_name="purchase")[0]
    assert (purchase["stream_id"], purchase["platform"], purchase["device_category"], purchase["device_browser"],
            purchase["hostname"], purchase["geo_country"], purchase["geo_city"]) == (
        WEB_STREAM, "WEB", "desktop", "Chrome", "shop.example.com", "United States", "Springfield")
    assert (purchase["traffic_source_source"], purchase["traffic_source_medium"], purchase["traffic_source_name"]) == (
        "google", "organic", "(organic)")
    assert (purchase["session_source"], purchase["session_medium"], purchase["session_default_channel_group"]) == (
        "newsletter", "email", "Email")
    assert (purchase["consent_analytics_storage"], purchase["consent_ads_storage"], purchase["uses_transient_token"]) == (
        True, True, False)
    assert (purchase["transaction_id"], purchase["purchase_revenue"], purchase["shipping_value"],
            purchase["total_item_quantity"], purchase["item_count"]) == (
        "T-1001", pytest.approx(59.98), pytest.approx(4.99), 3, 2)
    start = _events(staged, event_name="session_start")[0]
    assert (start["collected_source"], start["collected_campaign"]) == ("newsletter", "spring_sale")
    (app,) = _events(staged, event_name="screen_view")
    assert (app["platform"], app["app_id"], app["app_version"], app["device_operating_system"]) == (
        "ANDROID", "com.example.shop", "4.2.0", "Android")


def test_items_are_one_row_each_with_their_event_key_and_params(staged):
    purchase = _events(staged, event_name="purchase")[0]
    view = _events(staged, event_name="view_item")[0]
    items = sorted(staged[ITEMS_TABLE], key=lambda r: (r["event_date"], r["item_index"]))
    assert [(r["event_key"], r["item_index"], r["item_id"], r["quantity"], r["transaction_id"]) for r in items] == [
        (purchase["event_key"], 0, "SKU-100", 2, "T-1001"),
        (purchase["event_key"], 1, "SKU-200", 1, "T-1001"),
        (view["event_key"], 0, "SKU-300", 1, None),
    ]
    assert items[0]["price"] == pytest.approx(19.99) and items[0]["item_revenue"] == pytest.approx(39.98)
    assert items[0]["item_params"] == {"color": "charcoal"}
    assert items[1]["item_params"] == {}
    assert {r["session_key"] for r in items[:2]} == {purchase["session_key"]}


def test_reloading_a_date_restages_only_that_date_and_empties_its_items(engine, staged, tmp_path):
    # on top of the module's load (snapshotted in `staged` before this test changes it)
    page_view_only = (FIXTURES / "events_intraday_20240407.json").read_text().splitlines()[0]
    (tmp_path / "events_intraday_20240407.json").write_text(page_view_only + "\n")
    result = ingest_ga4(engine, [tmp_path], config=Config())
    assert result.tables["stg_ga4__events"] == 7 and result.tables["stg_ga4__event_items"] == 2
    items = rows(engine, ITEMS_TABLE)
    assert {r["event_date"] for r in items} == {dt.date(2024, 4, 6)}
    untouched = [r for r in rows(engine, EVENTS_TABLE) if r["event_date"] == dt.date(2024, 4, 6)]
    assert sorted(r["event_key"] for r in untouched) == sorted(
        r["event_key"] for r in staged[EVENTS_TABLE] if r["event_date"] == dt.date(2024, 4, 6))
    # a full rebuild gives the same rows as the date-by-date restaging
    before = sorted(json.dumps(r, default=str, sort_keys=True) for r in rows(engine, EVENTS_TABLE))
    assert build_ga4_staging(engine, config=Config()) == {EVENTS_TABLE: 7, ITEMS_TABLE: 2}
    after = sorted(json.dumps(r, default=str, sort_keys=True) for r in rows(engine, EVENTS_TABLE))
    assert after == before


def test_staging_without_ga4_data_writes_nothing(duck, config):
    assert build_ga4_staging(duck, config=config) == {}
    assert build_ga4_staging(duck, config=config, partitions=[]) == {}
    assert EVENTS_TABLE not in duck.list_tables()
