"""The GA4 files read like a BigQuery JSON export: schema, types, time zones, consent, logins, dupes."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pandas as pd

from spillover.synth import PROPERTY_TIMEZONE
from spillover.synth.ga4_sessions import EVENT_NAMES


def test_every_line_follows_the_export_schema(small_events):
    events, _ = small_events
    assert len(events) == events.raw.size > 10_000
    problems = events[events.schema_problem != ""]
    assert problems.empty, problems[["file", "line", "schema_problem"]].head().to_dict("records")


def test_one_file_per_day_named_by_the_property_date(small):
    files = small.ga4_files()
    assert len(files) == small.summary["days"] == small.summary["ga4_files"]
    assert files[0].name == "events_20240101.json"
    assert files[-1].name == "events_20240529.json"  # 150 days, 2024 is a leap year


def test_event_date_is_the_property_date_and_some_events_cross_the_utc_day(small_events):
    events, _ = small_events
    zone = ZoneInfo(PROPERTY_TIMEZONE)
    stamps = events.event_timestamp.astype("int64")
    local_dates = [dt.datetime.fromtimestamp(us / 1e6, zone).strftime("%Y%m%d") for us in stamps]
    assert (pd.Series(local_dates, index=events.index) == events.event_date).all()
    utc_dates = pd.to_datetime(stamps, unit="us", utc=True).dt.strftime("%Y%m%d")
    crossing = (utc_dates != events.event_date).mean()
    assert 0.02 < crossing < 0.5  # evening events (after 19:00/20:00 local) land on the next UTC day
    file_dates = events.file.str[7:15]
    assert (file_dates == events.event_date).all()


def test_all_required_event_names_occur(small_events):
    events, _ = small_events
    assert set(events.event_name) == set(EVENT_NAMES)
    counts = events.event_name.value_counts()
    assert counts["page_view"] > counts["purchase"] > 0


def test_web_and_app_streams_have_their_own_stream_ids(small_events):
    events, _ = small_events
    streams = events.groupby("platform").stream_id.unique()
    assert set(streams.index) == {"WEB", "IOS", "ANDROID"}
    assert len(streams["WEB"]) == 1 and len(streams["IOS"]) == 1
    assert len(set(events.stream_id)) == 4  # web, iOS app, Android app, gateway devices


def test_consent_denied_rows_have_no_pseudo_id_and_only_they(small_events):
    events, _ = small_events
    denied = events.analytics_storage == "No"
    assert 0.01 < denied.mean() < 0.2
    assert events.loc[denied, "user_pseudo_id"].isna().all()
    assert events.loc[denied, "user_id"].isna().all()
    assert events.loc[~denied, "user_pseudo_id"].notna().all()


def test_people_use_several_clients_and_log_in_on_some(small):
    identity = small.csv("truth/identity.csv")
    clients = identity[identity.id_type == "user_pseudo_id"].groupby("person_id").size()
    assert clients.max() >= 3 and (clients >= 2).mean() > 0.3


def test_web_sessions_carry_user_id_from_the_login_on(small_events):
    events, _ = small_events
    web = events[(events.platform == "WEB") & events.ga_session_id.notna()].copy()
    web["order"] = web.event_timestamp.astype("int64")
    logins = 0
    for _, session in web.sort_values("order").groupby(["user_pseudo_id", "ga_session_id"]):
        names = session.event_name.tolist()
        if "login" not in names:
            assert session.user_id.isna().all()
            continue
        logins += 1
        first_login = names.index("login")
        before, after = session.user_id.iloc[:first_login], session.user_id.iloc[first_login:]
        assert before.isna().all()
        assert after.notna().all() and after.nunique() == 1
    assert logins > 100


def test_purchases_and_online_orders_match_one_to_one(small, small_events):
    events, _ = small_events
    purchases = events[events.event_name == "purchase"].drop_duplicates("raw")
    orders = small.csv("shop/orders.csv")
    online = orders[orders.channel == "online"]
    assert purchases.transaction_id.is_unique
    assert set(purchases.transaction_id) == set(online.transaction_id)
    assert (orders.loc[orders.channel != "online", "transaction_id"] == "").all()


def test_subscription_renewals_are_server_side_purchases_without_a_session(medium):
    causes = medium.csv("truth/orders.csv").set_index("order_id").cause
    orders = medium.csv("shop/orders.csv").set_index("order_id")
    renewals = set(orders.loc[causes[causes == "subscription"].index, "transaction_id"])
    sessionless = set()
    for path in medium.ga4_files():
        for line in path.open(encoding="utf-8"):
            if '"event_name":"purchase"' in line and "ga_session_id" not in line:
                sessionless.add(json.loads(line)["ecommerce"]["transaction_id"])
    assert len(renewals) > 20
    assert sessionless == renewals


def test_purchase_revenue_and_time_match_the_back_office_order(small, small_events):
    events, _ = small_events
    purchases = events[events.event_name == "purchase"].drop_duplicates("raw").set_index("transaction_id")
    orders = small.csv("shop/orders.csv")
    items = small.csv("shop/order_items.csv")
    line_total = (items.unit_price.astype(float) * items.quantity.astype(int) - items.discount.astype(float))
    order_total = line_total.groupby(items.order_id).sum().round(2)
    online = orders[orders.channel == "online"].set_index("transaction_id")
    assert (order_total[online.order_id].to_numpy() == purchases.loc[online.index, "purchase_revenue"].to_numpy()).all()
    event_seconds = purchases.loc[online.index, "event_timestamp"].astype("int64") // 1_000_000
    ordered = (pd.to_datetime(online.ordered_at, utc=True) - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    assert (event_seconds.to_numpy() == ordered.to_numpy()).all()


def test_exact_duplicate_rows_are_rare_and_counted(small, small_events):
    events, _ = small_events
    duplicates = int(events.raw.duplicated().sum())
    assert duplicates == small.summary["ga4_duplicate_rows"]
    assert 0.0005 < duplicates / len(events) < 0.01


def test_lines_are_written_in_time_order_within_a_file(small_events):
    events, _ = small_events
    stamps = events.event_timestamp.astype("int64")
    ordered = stamps.groupby(events.file).apply(lambda s: s.is_monotonic_increasing)
    assert ordered.all()
