"""The predict stage's table-building part on Spark: features, outcomes and mart_predictions from a
copy of the synthetic warehouse's inputs match the DuckDB original (which the other tests check)."""

from __future__ import annotations

import shutil

import duckdb
import pandas as pd
import pytest

from spillover.config import DEFAULT_EVENT_FAMILIES, load_config
from spillover.engine import connect, write_table
from spillover.predict.build import score_models
from spillover.predict.features import activity_by_day, end_instant, features_at, outcomes_at, stored_activity
from spillover.profiles.build import as_of_instant
from tests.conftest import drop_all

INPUTS = {
    "stg_ga4__events": "event_key, event_name, session_key, event_timestamp, user_id, client_key, transaction_id",
    "fct_sessions": "*", "fct_product_adoptions": "*", "dim_customers": "*", "int_identity__id_graph": "*",
    "stg_crm__members": "*", "stg_shop__orders": "*", "stg_shop__order_items": "*", "stg_shop__products": "*",
}
CUTOFFS = [0, 7, 35]


pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def copied(spark_backend, predict_warehouse, tmp_path_factory):
    """The predict inputs on Spark, and a project folder holding the trained models."""
    engine = spark_backend
    drop_all(engine)
    source = duckdb.connect(predict_warehouse["database"], read_only=True)
    for table, columns in INPUTS.items():
        write_table(engine, table, source.sql(f"select {columns} from {table}").fetch_arrow_table())
    source.close()
    project = tmp_path_factory.mktemp("engine_project")
    shutil.copytree(predict_warehouse["directory"] / "models", project / "models")
    shutil.copy(predict_warehouse["directory"] / "spillover.toml", project / "spillover.toml")
    yield engine, project
    drop_all(engine)


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys).reset_index(drop=True)


def test_features_and_outcomes_match_duckdb(copied, predict_warehouse):
    engine, _ = copied
    original = connect(f"duckdb:///{predict_warehouse['database']}", read_only=True)
    end = end_instant(as_of_instant(original))
    assert end_instant(as_of_instant(engine)) == end
    frames = {}
    keys = ["customer_key", "cutoff_days_back"]

    def tables(activity):
        return (
            _sorted(features_at(activity, CUTOFFS, list(DEFAULT_EVENT_FAMILIES)).to_pandas(), keys),
            _sorted(outcomes_at(activity, CUTOFFS[1:], 7).to_pandas(), keys),
        )

    frames["original"] = tables(activity_by_day(original, end=end, event_families=DEFAULT_EVENT_FAMILIES))
    with stored_activity(engine, end=end, event_families=DEFAULT_EVENT_FAMILIES) as activity:
        frames["copy"] = tables(activity)
    original.disconnect()
    assert len(frames["original"][0]) > 1_000
    for mine, theirs in zip(frames["copy"], frames["original"], strict=True):
        pd.testing.assert_frame_equal(mine, theirs, check_dtype=False)


def test_scores_written_on_the_engine_match_duckdb(copied, predict_warehouse):
    engine, project = copied
    counts = score_models(engine, load_config(project))
    written = _sorted(engine.table("mart_predictions").to_pandas(), ["model", "customer_key"])
    with duckdb.connect(predict_warehouse["database"], read_only=True) as source:
        expected = _sorted(source.sql("select * from mart_predictions").df(), ["model", "customer_key"])
    assert counts == expected.groupby("model").size().to_dict()
    assert list(written.customer_key) == list(expected.customer_key)
    assert (written.score - expected.score).abs().max() < 1e-9
