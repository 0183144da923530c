"""The profiles stage on a hand-written shop (tests/profiles/staged.py), every number worked out by hand."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

import pytest

from spillover.config import Config
from spillover.errors import SpilloverInputError
from spillover.identity.graph import build_identity
from spillover.profiles.build import build_profiles
from tests.profiles.staged import at, write_shop


def _key(node: str) -> str:
    return hashlib.md5(node.encode()).hexdigest()


M1, M2, M3, ANON = _key("member_id:M1"), _key("member_id:M2"), _key("member_id:M3"), _key("client_key:anon")


def _naive(value):
    """Spark reads timestamps back without a zone (UTC)."""
    return value.replace(tzinfo=None) if isinstance(value, dt.datetime) else value


def _rows(con, table, key):
    return {row[key]: row for row in con.table(table).to_pyarrow().to_pylist()}


@pytest.fixture(scope="module")
def built(engine, tmp_path_factory):
    write_shop(engine)
    config = Config(project_dir=tmp_path_factory.mktemp("profiles"))
    build_identity(engine, config)
    counts = build_profiles(engine, config)
    return engine, counts


def test_stage_writes_one_profile_per_customer(built):
    con, counts = built
    assert counts == {"fct_sessions": 5, "fct_product_adoptions": 2, "mart_customer_profile": 4}
    customers = {r["customer_key"] for r in con.table("dim_customers").to_pyarrow().to_pylist()}
    assert set(_rows(con, "mart_customer_profile", "customer_key")) == customers
    assert customers == {M1, M2, M3, ANON}


def test_a_session_before_the_first_login_belongs_to_the_customer(built):
    con, _ = built
    sessions = _rows(con, "fct_sessions", "session_key")
    before_login = sessions["web1-101"]
    assert before_login["logged_in"] is False and before_login["user_id"] is None
    assert before_login["customer_key"] == M1  # back-stitched through web1's later login
    assert sessions["web1-103"]["customer_key"] == M1 and sessions["web1-103"]["user_id"] == "M1"
    assert sessions["app1-104"]["customer_key"] == M1
    assert sessions["anon-102"]["customer_key"] == ANON  # never identified: a customer of its own
    assert sessions["dev1-105"]["customer_key"] == M2


def test_sessions_count_time_engagement_and_traffic(built):
    con, _ = built
    sessions = _rows(con, "fct_sessions", "session_key")
    first, login = sessions["web1-101"], sessions["web1-103"]
    assert (first["events"], first["page_views"], first["purchases"], first["engagement_time_msec"]) == (3, 1, 0, 3000)
    assert first["engaged"] is False  # one page, 3 s, no purchase
    assert _naive(first["session_start_at"]) == _naive(at(1, 12, 0))
    assert _naive(first["session_end_at"]) == _naive(at(1, 12, 2))
    assert first["duration_seconds"] == 120
    assert (first["source"], first["medium"], first["campaign"], first["channel"]) == ("google", "organic", "(organic)", "Organic Search")
    assert (first["stream_id"], first["platform"], first["device_category"], first["ga_session_number"]) == ("w", "WEB", "desktop", 1)
    assert login["engaged"] is True and login["page_views"] == 2  # two pages
    # The second session takes the source its events name, not the client's first touch.
    assert (login["source"], login["medium"], login["campaign"], login["channel"]) == ("newsletter", "email", "spring", "Email")
    assert sessions["anon-102"]["engaged"] is True  # 12 s engaged
    assert sessions["app1-104"]["engaged"] is True and sessions["app1-104"]["channel"] == "Direct"  # a purchase
    speaker = sessions["dev1-105"]
    assert speaker["device_category"] == "smart speaker"
    assert (speaker["consent_analytics"], speaker["consent_ads"]) == (True, False)  # the latest event's word
    assert speaker["channel"] == "Direct" and speaker["source"] == "(direct)"  # no source at all


def test_adoptions_are_first_gateway_purchases_of_identified_customers(built):
    con, _ = built
    rows = sorted(
        ((r["customer_key"], r["product_id"], _naive(r["adopted_at"]), r["channel"], r["order_id"])
         for r in con.table("fct_product_adoptions").to_pyarrow().to_pylist()),
    )
    assert rows == sorted([
        (M1, "G1", _naive(at(4)), "online", "O1"),  # not O2, the second G1
        (M2, "G2", _naive(at(2)), "call_centre", "O3"),  # a guest order, through M2's email
    ])


def test_profile_money_rfm_and_adoptions(built):
    con, _ = built
    profile = _rows(con, "mart_customer_profile", "customer_key")[M1]
    assert _naive(profile["as_of"]) == _naive(at(6, 12, 5))  # the latest event or order
    assert profile["tenure_days"] == 5  # first seen at the signup, day 1 00:00
    assert (profile["orders"], profile["frequency"], profile["recency_days"]) == (2, 1, 1)
    assert profile["revenue"] == Decimal("199")  # 2 × 10 − 1 + 80 + 100
    assert profile["margin"] == Decimal("-33")  # 199 − 2 × 6 − 2 × 110
    assert profile["discount"] == Decimal("1")
    assert profile["monetary"] == Decimal("99.5")
    assert (profile["revenue_online"], profile["revenue_store"], profile["revenue_call_centre"]) == (
        Decimal("99"), Decimal("100"), Decimal("0"))
    assert (profile["margin_online"], profile["margin_store"]) == (Decimal("-23"), Decimal("-10"))
    assert dict(profile["revenue_by_category"]) == {"books": Decimal("19"), "devices": Decimal("180")}
    assert dict(profile["margin_by_category"]) == {"books": Decimal("7"), "devices": Decimal("-40")}
    assert profile["gateway_products"] == 1
    assert {k: _naive(v) for k, v in dict(profile["adopted"]).items()} == {"G1": _naive(at(4))}
    assert (profile["tier"], profile["region"], profile["member_id"]) == ("gold", "CA", "M1")


def test_profile_engagement_sessions_and_consent(built):
    con, _ = built
    profiles = _rows(con, "mart_customer_profile", "customer_key")
    m1, m2 = profiles[M1], profiles[M2]
    # s1 3 + s2 4 + s3 2 + the server-side purchase
    assert (m1["events"], m1["browse_events"], m1["cart_events"], m1["purchase_events"]) == (10, 5, 1, 2)
    assert (m1["sessions"], m1["engaged_sessions"], m1["session_channels"]) == (3, 2, 3)
    assert m1["first_session_channel"] == "Organic Search"
    assert m1["main_session_channel"] == "Direct"  # one session each: ties go alphabetically
    assert _naive(m1["first_session_at"]) == _naive(at(1, 12, 0))
    assert (m2["device_use_events"], m2["device_shop_events"]) == (2, 1)
    # Consent: a "no" from either source wins; M1's CRM record refuses ads, M2's speaker did last.
    assert (m1["ga4_consent_ads"], m1["crm_consent_ads"], m1["consent_ads"]) == (True, False, False)
    assert (m2["ga4_consent_ads"], m2["crm_consent_ads"], m2["consent_ads"]) == (False, True, False)
    assert (profiles[ANON]["consent_ads"], profiles[ANON]["crm_consent_ads"]) == (True, None)


def test_customers_without_activity_have_zeros_not_missing_rows(built):
    con, _ = built
    profiles = _rows(con, "mart_customer_profile", "customer_key")
    m3 = profiles[M3]
    assert (m3["orders"], m3["revenue"], m3["sessions"], m3["events"], m3["gateway_products"]) == (0, Decimal("0"), 0, 0, 0)
    assert m3["recency_days"] is None and m3["monetary"] is None and m3["revenue_by_category"] is None
    assert (m3["tier"], m3["consent_ads"]) == ("bronze", True)
    anon = profiles[ANON]
    assert (anon["orders"], anon["revenue"], anon["member_id"]) == (1, Decimal("5"), None)  # O5 via its purchase event


def test_the_store_cash_sale_reaches_no_profile(built):
    con, _ = built
    total = sum(r["revenue"] for r in con.table("mart_customer_profile").to_pyarrow().to_pylist())
    assert total == Decimal("199") + Decimal("45") + Decimal("5")  # all orders but O4 (15)


def test_profiles_need_the_identity_stage(con, config):
    write_shop(con)
    with pytest.raises(SpilloverInputError, match=r"needs int_identity__id_graph, dim_customers.*spillover build --stage identity"):
        build_profiles(con, config)
