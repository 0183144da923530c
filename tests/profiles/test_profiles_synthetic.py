"""The profiles stage on the synthetic demo warehouse, checked against the ecosystem's truth.

Adoptions: at least 95% of true adopters are found with the right product and local adoption date,
and at least 98% of adoption rows are true ones. Money: order lines reproduce the truth's period
revenue and margin to the cent, and profiles hold exactly the attributed part. Back-stitching: every
session of a client that logged in carries the logged-in customer, the sessions before the first
login included. The same stage on another engine (PySpark) gives the same tables.
"""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pandas as pd
import pytest

from spillover.config import Config
from spillover.engine import connect, write_table
from spillover.profiles.attribution import order_lines
from spillover.profiles.build import build_profiles
from spillover.synth.scoring import adoption_scores, person_of_each_customer, person_of_each_id
from tests.conftest import TEST_KEY

ADOPTION_RECALL_AT_LEAST = 0.95
ADOPTION_PRECISION_AT_LEAST = 0.98
CENT = 0.005


@pytest.fixture(scope="module")
def warehouse(demo_warehouse):
    con = connect(f"duckdb:///{demo_warehouse['database']}", read_only=True)
    yield con, demo_warehouse["directory"] / "data" / "truth"
    con.disconnect()


@pytest.fixture(scope="module")
def person_of_customer(warehouse):
    con, truth = warehouse
    clients = con.sql("select distinct client_key, user_pseudo_id from stg_ga4__events where client_key is not null").to_pandas()
    person_of = person_of_each_id(truth, dict(zip(clients.client_key, clients.user_pseudo_id)), TEST_KEY)
    return person_of_each_customer(con, person_of)


def test_every_customer_has_one_profile_and_every_session_a_customer(warehouse):
    con, _ = warehouse
    counts = con.sql(
        "select (select count(*) from dim_customers) customers, (select count(*) from mart_customer_profile) profiles, "
        "(select count(distinct customer_key) from mart_customer_profile) keys, "
        "(select count(*) from fct_sessions) sessions, (select count(*) from fct_sessions where customer_key is null) orphans, "
        "(select sum(sessions) from mart_customer_profile) profile_sessions, "
        "(select count(distinct session_key) from stg_ga4__events where session_key is not null) staged_sessions"
    ).to_pyarrow().to_pylist()[0]
    assert counts["profiles"] == counts["keys"] == counts["customers"] > 400
    assert counts["orphans"] == 0
    assert counts["sessions"] == counts["profile_sessions"] == counts["staged_sessions"]


def test_adoptions_match_the_true_adopters(warehouse):
    con, truth = warehouse
    score = adoption_scores(con, truth, TEST_KEY)
    print(score)
    assert score["true_adopters"] >= 50
    assert score["recall"] >= ADOPTION_RECALL_AT_LEAST
    assert score["precision"] >= ADOPTION_PRECISION_AT_LEAST


def test_money_reconciles_with_the_truth_to_the_cent(warehouse, person_of_customer):
    con, truth = warehouse
    people = pd.read_csv(truth / "people.csv")
    lines = order_lines(con).to_pandas()
    assert float(lines.revenue.sum()) == pytest.approx(people.period_revenue.sum(), abs=CENT)
    assert float(lines.margin.sum()) == pytest.approx(people.period_margin.sum(), abs=CENT)
    profiles = con.table("mart_customer_profile").to_pandas()
    attributed = lines[lines.customer_key.notna()]
    assert sum(profiles.revenue) == sum(attributed.revenue)  # Decimal: exact
    assert sum(profiles.margin) == sum(attributed.margin)
    assert profiles.orders.sum() == attributed.order_id.nunique()
    # Per person: what a profile holds is the person's own spending (never someone else's); only
    # orders nobody can be identified by (guest store sales) are missing.
    profiles["person"] = profiles.customer_key.map(person_of_customer)
    held = profiles.groupby("person").revenue.sum().astype(float)
    truth_revenue = people.set_index("person_id").period_revenue
    compared = pd.concat([held, truth_revenue], axis=1, join="inner").fillna(0)
    assert (compared.revenue <= compared.period_revenue + CENT).all()
    buyers = compared[compared.period_revenue > 0]
    assert ((buyers.revenue - buyers.period_revenue).abs() < CENT).mean() >= 0.75


def test_sessions_before_the_first_login_carry_the_logged_in_customer(warehouse, person_of_customer):
    con, _ = warehouse
    sessions = con.table("fct_sessions").to_pandas()
    logins = con.sql(
        "select client_key, min(event_timestamp) first_login, min(user_id) login_member from stg_ga4__events "
        "where user_id is not null and client_key is not null group by 1"
    ).to_pandas()
    graph = con.sql("select id_value login_member, customer_key member_customer from int_identity__id_graph where id_type = 'member_id'").to_pandas()
    logged = sessions.merge(logins, on="client_key").merge(graph, on="login_member")
    before = logged[logged.session_end_at < logged.first_login]  # wholly before it
    assert len(before) >= 50  # browsing before the first login is common
    assert not before.logged_in.any()
    # Back-stitched: the member's customer (clients used by one member; guards may keep shared ones apart)
    assert (before.customer_key == before.member_customer).mean() >= 0.99
    # ...and that customer is the person who browsed: the client's truth person.
    assert (before.customer_key.map(person_of_customer) == before.member_customer.map(person_of_customer)).all()


def test_profiles_are_reproducible_as_of_the_data(warehouse):
    con, _ = warehouse
    as_of = con.sql("select distinct as_of from mart_customer_profile").to_pandas().as_of
    latest = con.sql(
        "select greatest((select max(event_timestamp) from stg_ga4__events), (select max(ordered_at) from stg_shop__orders)) t"
    ).to_pandas().t
    assert len(as_of) == 1 and as_of[0] == latest[0]
    bounds = con.sql(
        "select min(recency_days) r0, min(tenure_days) t0, count(*) filter (where recency_days > tenure_days) bad "
        "from mart_customer_profile"
    ).to_pyarrow().to_pylist()[0]
    assert bounds["r0"] >= 0 and bounds["t0"] >= 0 and bounds["bad"] == 0


# --------------------------------------------------------------------------------------------------
# the same stage on each engine

EVENT_COLUMNS = (
    "event_key", "client_key", "session_key", "user_id", "user_pseudo_id", "event_date", "event_timestamp", "event_name",
    "stream_id", "platform", "ga_session_id", "ga_session_number", "engagement_time_msec", "session_engaged",
    "session_source", "session_medium", "session_campaign", "session_default_channel_group", "collected_source",
    "collected_medium", "collected_campaign", "event_source", "event_medium", "event_campaign", "traffic_source_source",
    "traffic_source_medium", "traffic_source_name", "device_category", "consent_analytics_storage",
    "consent_ads_storage", "transaction_id",
)
INPUTS = {
    "stg_ga4__events": ", ".join(EVENT_COLUMNS),
    "stg_crm__members": "*", "stg_shop__orders": "*", "stg_shop__order_items": "*", "stg_shop__products": "*",
    "int_identity__id_graph": "*", "dim_customers": "*",
}


def _utc(values: pd.Series) -> pd.Series:
    """Timestamps as naive UTC (Spark reads them back without a zone)."""
    values = pd.to_datetime(values)
    return values if values.dt.tz is None else values.dt.tz_convert("UTC").dt.tz_localize(None)


def _summary(con) -> dict[str, object]:
    adoptions = con.table("fct_product_adoptions").to_pandas()
    profiles = con.table("mart_customer_profile").to_pandas()
    sessions = con.table("fct_sessions").to_pandas()
    books = profiles.revenue_by_category.dropna().map(lambda entries: dict(entries).get("books", Decimal(0)))
    return {
        "adoptions": sorted(zip(adoptions.customer_key, adoptions.product_id, _utc(adoptions.adopted_at), adoptions.order_id)),
        "profiles": len(profiles),
        "money": (sum(profiles.revenue), sum(profiles.margin), sum(profiles.revenue_store)),
        "books": sum(books, Decimal(0)),
        "per_customer": sorted(zip(
            profiles.customer_key, profiles.orders, profiles.recency_days.fillna(-1), profiles.tenure_days,
            profiles.sessions, profiles.events, profiles.device_use_events, profiles.main_session_channel.fillna(""),
            profiles.consent_ads.map(lambda v: None if pd.isna(v) else bool(v)),
        )),
        "sessions": sorted(zip(sessions.session_key, sessions.customer_key, sessions.channel, sessions.engaged, sessions.events)),
    }


@pytest.fixture(scope="module")
def rebuilt(engine, demo_warehouse, tmp_path_factory):
    """The profiles stage run on ``engine`` over a copy of the demo warehouse's inputs."""
    source = duckdb.connect(demo_warehouse["database"], read_only=True)
    for table, columns in INPUTS.items():
        write_table(engine, table, source.sql(f"select {columns} from {table}").fetch_arrow_table())
    source.close()
    build_profiles(engine, Config(project_dir=tmp_path_factory.mktemp("rebuilt")))
    return engine


def test_the_stage_gives_the_same_tables_on_every_engine(rebuilt, warehouse):
    original, _ = warehouse
    assert _summary(rebuilt) == _summary(original)


def test_analysts_read_a_category_from_the_map_with_the_same_sql(rebuilt):
    dialect = "spark" if rebuilt.name == "pyspark" else "duckdb"
    query = "select sum(revenue_by_category['books']) as books from mart_customer_profile"
    books = rebuilt.sql(query, dialect=dialect).to_pyarrow().column("books")[0].as_py()
    assert books == _summary(rebuilt)["books"] > 0
