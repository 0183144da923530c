"""The impact design on PySpark gives DuckDB's answers: the demo warehouse's inputs copied to Spark,
the design, panel, naive figures and engagement mix computed on both and compared."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from spillover.config import Config, ImpactSettings, load_config
from spillover.engine import connect, write_table
from spillover.impact.cohorts import CohortSpec, cohort
from spillover.impact.engagement import engagement_mix
from spillover.impact.facts import load_facts
from spillover.impact.naive import naive_figures
from spillover.impact.panel import monthly_panel
from tests.conftest import drop_all

pytestmark = pytest.mark.spark

EVENT_COLUMNS = (
    "event_key, event_timestamp, event_name, client_key, session_key, user_id, transaction_id, "
    "consent_analytics_storage, consent_ads_storage"
)
INPUTS = {
    "stg_ga4__events": EVENT_COLUMNS,
    "stg_crm__members": "*", "stg_shop__orders": "*", "stg_shop__order_items": "*", "stg_shop__products": "*",
    "int_identity__id_graph": "*", "dim_customers": "*", "fct_sessions": "*", "fct_product_adoptions": "*",
}
SPEC = CohortSpec("G002", 21, pre_period_days=30)
FAMILIES = Config().profiles.event_families


def _results(con, timezone: str) -> dict[str, object]:
    facts = load_facts(con, timezone).cached()
    try:
        return _computed(facts)
    finally:
        facts.release()


def _computed(facts) -> dict[str, object]:
    with cohort(facts, SPEC, event_families=FAMILIES).cache() as table:
        design = table.to_pandas()
        naive = naive_figures(facts, SPEC, event_families=FAMILIES, design=table).to_dict()
    design["index_date"] = pd.to_datetime(design.index_date).dt.date
    panel = monthly_panel(facts, SPEC).to_pandas()
    panel["month_start"] = pd.to_datetime(panel.month_start).dt.date
    mix = engagement_mix(facts, ImpactSettings().device_events).to_pandas()
    return {
        "calendar": facts.calendar,
        "design": design.sort_values(["index_day", "customer_key"]).reset_index(drop=True),
        "panel": panel.sort_values(["customer_key", "period"]).reset_index(drop=True),
        "naive": naive,
        "mix": mix.sort_values(["product_id", "months_since_adoption"]).reset_index(drop=True),
    }


def test_spark_gives_duckdbs_design(demo_warehouse, spark_backend):
    timezone = load_config(demo_warehouse["directory"]).ga4.property_timezone
    original = connect(f"duckdb:///{demo_warehouse['database']}", read_only=True)
    expected = _results(original, timezone)
    original.disconnect()

    drop_all(spark_backend)
    source = duckdb.connect(demo_warehouse["database"], read_only=True)
    for table, columns in INPUTS.items():
        write_table(spark_backend, table, source.sql(f"select {columns} from {table}").fetch_arrow_table())
    source.close()
    try:
        got = _results(spark_backend, timezone)
    finally:
        drop_all(spark_backend)

    assert got["calendar"] == expected["calendar"]
    assert len(expected["design"]) > 30
    pd.testing.assert_frame_equal(got["design"], expected["design"], check_dtype=False)
    pd.testing.assert_frame_equal(got["panel"], expected["panel"], check_dtype=False)
    pd.testing.assert_frame_equal(got["mix"], expected["mix"], check_dtype=False)
    assert _close(got["naive"], expected["naive"])


def _close(a: dict, b: dict) -> bool:
    for name, value in a.items():
        if isinstance(value, dict):
            assert _close(value, b[name])
        elif isinstance(value, float):
            assert value == pytest.approx(b[name], rel=1e-9), name
        else:
            assert value == b[name], name
    return True
