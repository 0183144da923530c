"""The propensity models on a synthetic warehouse: out-of-time quality, no leakage, eligibility.

Out of time (the ``predict`` stage's own evaluation, default settings, 1,000 customers x 90 days):
purchase_probability's ROC-AUC must exceed 0.7 (measured 0.787 on 64 buyers among 610 customers;
its standard error there is about 0.03, so the bound sits more than two below), churn_probability's
0.8 (measured 0.894), and predicted revenue must rank buyers above chance and get the window's total
right within 40% (measured 1.09x). Features computed for a cutoff are identical whatever happens
after it (the leakage test deletes every later record). Thin data is refused with a pinned message.
"""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pandas as pd
import pytest

from spillover.config import DEFAULT_EVENT_FAMILIES, Config, PredictSettings
from spillover.engine import connect
from spillover.errors import SpilloverIneligibleError
from spillover.predict.features import activity_by_day, customer_features, end_instant, features_at
from spillover.predict.propensity import Target, load_history, plan_windows, targets, train_target
from spillover.profiles.build import as_of_instant

FAMILIES = DEFAULT_EVENT_FAMILIES


@pytest.fixture(scope="module")
def warehouse(predict_warehouse):
    con = connect(f"duckdb:///{predict_warehouse['database']}", read_only=True)
    yield con
    con.disconnect()


@pytest.fixture(scope="module")
def latest_models(warehouse) -> dict[str, dict]:
    rows = warehouse.table("ops_models").to_pandas()
    return {row["model"]: row for row in rows.to_dict(orient="records")}


def test_every_model_trained_with_the_default_settings(latest_models):
    assert set(latest_models) == {"purchase_probability", "churn_probability", "predicted_revenue", "clv"}
    assert {row["status"] for row in latest_models.values()} == {"trained"}
    assert {row["version"] for row in latest_models.values()} == {1}


def test_out_of_time_metrics_are_well_above_chance(latest_models):
    purchase = json.loads(latest_models["purchase_probability"]["metrics"])
    churn = json.loads(latest_models["churn_probability"]["metrics"])
    revenue = json.loads(latest_models["predicted_revenue"]["metrics"])
    print({"purchase": purchase["roc_auc"], "churn": churn["roc_auc"], "revenue": revenue["spearman"]})
    assert purchase["positives"] >= 50
    assert purchase["roc_auc"] > 0.7
    assert purchase["pr_auc"] > 2 * purchase["base_rate"]
    assert purchase["top_decile_lift"] > 2
    assert churn["roc_auc"] > 0.8
    for metrics in (purchase, churn):  # better than always predicting the base rate
        assert metrics["brier"] < metrics["base_rate"] * (1 - metrics["base_rate"])
        assert abs(metrics["mean_score"] - metrics["base_rate"]) < 0.05
    assert revenue["buyer_roc_auc"] > 0.7 and revenue["spearman"] > 0.3
    assert 0.6 < revenue["total_ratio"] < 1.4
    assert revenue["top_decile_share"] > 0.15  # 0.10 by chance; measured 0.22


def test_windows_and_counts_are_recorded(latest_models, warehouse):
    end = end_instant(as_of_instant(warehouse))
    row = latest_models["purchase_probability"]
    assert row["evaluation_window_end"] == pd.Timestamp(end)
    assert row["evaluation_window_start"] == pd.Timestamp(end - dt.timedelta(days=7))
    assert row["training_window_end"] == pd.Timestamp(end)  # the stored model's last horizon ends with the data
    assert row["training_window_start"] == pd.Timestamp(end - dt.timedelta(days=7 + 3 * 7))
    metrics = json.loads(row["metrics"])
    # the evaluated model saw nothing of the evaluation window
    assert pd.Timestamp(metrics["evaluated_model"]["training_window_end"]) == row["evaluation_window_start"]
    assert metrics["customers"] == row["evaluation_rows"] and metrics["positives"] == row["evaluation_positives"]
    reliability = metrics["reliability"]
    assert len(reliability) == 10 and sum(b["customers"] for b in reliability) == metrics["customers"]
    parameters = json.loads(row["parameters"])
    assert parameters["learner"] == "HistGradientBoostingClassifier" and len(parameters["training_cutoffs"]) == 4


# --------------------------------------------------------------------------------------------------
# no leakage

TIMESTAMPED = {  # table: (time column, what deleting "from the cutoff on" means)
    "stg_ga4__events": "event_timestamp",
    "fct_sessions": "session_end_at",
    "stg_shop__orders": "ordered_at",
    "fct_product_adoptions": "adopted_at",
}


def test_features_read_nothing_at_or_after_the_cutoff(predict_warehouse, tmp_path):
    source = predict_warehouse["database"]
    con = connect(f"duckdb:///{source}", read_only=True)
    cutoff = end_instant(as_of_instant(con)) - dt.timedelta(days=20, hours=5)
    before = customer_features(con, cutoff=cutoff, event_families=FAMILIES)
    before = before.to_pandas().sort_values("customer_key").reset_index(drop=True)
    con.disconnect()

    truncated = tmp_path / "truncated.duckdb"
    truncated.write_bytes(open(source, "rb").read())
    with duckdb.connect(str(truncated)) as raw:
        raw.execute("set TimeZone='UTC'")
        deleted = 0
        for table, column in TIMESTAMPED.items():
            deleted += raw.execute(f"select count(*) from {table} where {column} >= ?", [cutoff]).fetchone()[0]
            raw.execute(f"delete from {table} where {column} >= ?", [cutoff])
        raw.execute("delete from stg_shop__order_items where order_id not in (select order_id from stg_shop__orders)")
        raw.execute("delete from stg_crm__members where cast(signup_date as timestamptz) >= ?", [cutoff])
    assert deleted > 5_000  # three weeks of data were removed
    after = customer_features(connect(f"duckdb:///{truncated}", read_only=True), cutoff=cutoff, event_families=FAMILIES)
    after = after.to_pandas().sort_values("customer_key").reset_index(drop=True)
    assert len(before) > 500
    pd.testing.assert_frame_equal(before, after)


def test_training_cutoffs_give_the_features_of_that_instant(warehouse):
    end = end_instant(as_of_instant(warehouse))
    stacked = features_at(activity_by_day(warehouse, end=end, event_families=FAMILIES), [14], list(FAMILIES))
    stacked = stacked.to_pandas().drop(columns="cutoff_days_back").sort_values("customer_key").reset_index(drop=True)
    direct = customer_features(warehouse, cutoff=end - dt.timedelta(days=14), event_families=FAMILIES)
    direct = direct.to_pandas().sort_values("customer_key").reset_index(drop=True)
    pd.testing.assert_frame_equal(stacked, direct)


# --------------------------------------------------------------------------------------------------
# eligibility


@pytest.fixture(scope="module")
def history(warehouse):
    end = end_instant(as_of_instant(warehouse))
    windows = plan_windows(targets(PredictSettings())["purchase_probability"], PredictSettings(), 90)
    return load_history(warehouse, end=end, event_families=FAMILIES, cutoffs=windows.cutoffs, horizons={7},
                        max_lookback_days=28, activity=activity_by_day(warehouse, end=end, event_families=FAMILIES))


def test_too_few_positives_is_refused_with_what_to_do(history):
    settings = PredictSettings(min_positives=10_000)
    target = targets(settings)["purchase_probability"]
    pattern = (
        r"^purchase_probability: not enough training examples to train on \(customers active in the 28 days "
        r"before a cutoff, positive: an order in the 7 days after it; 4 cutoff\(s\) from 2024-02-25 to "
        r"2024-03-17\): 2\d\d positive and [\d,]+ negative, need at least 10,000 and 200 \(min_positives, "
        r"min_negatives in \[predict\] of spillover.toml\)\. Load more customers or history, or lower the "
        r"thresholds knowing the figures will be noisier$"
    )
    with pytest.raises(SpilloverIneligibleError, match=pattern):
        train_target(history, target, settings)


def test_too_few_evaluation_positives_is_refused(history):
    settings = PredictSettings(min_evaluation_positives=1_000)
    with pytest.raises(SpilloverIneligibleError, match=r"not enough evaluation examples .* need at least 1,000 and 1,000 \(min_evaluation_positives"):
        train_target(history, targets(settings)["purchase_probability"], settings)


def test_too_short_a_history_is_refused():
    target = targets(PredictSettings())["predicted_revenue"]
    with pytest.raises(SpilloverIneligibleError, match=r"^predicted_revenue: the warehouse holds 60 days of sessions and orders; one training window needs 70 \(14 days of history, 28 days of outcome, then 28 days to evaluate on\)"):
        plan_windows(target, PredictSettings(), 60)


def test_windows_never_let_training_outcomes_reach_the_evaluation():
    settings = PredictSettings(evaluation_windows=3, training_windows=5, window_step_days=3)
    for target in targets(settings).values():
        windows = plan_windows(target, settings, 200)
        assert len(windows.backtests) == 3 and windows.backtests[0].evaluation == target.horizon_days
        for backtest in windows.backtests:
            assert len(backtest.training) == 5
            assert all(k - target.horizon_days >= backtest.evaluation for k in backtest.training)
        assert min(windows.final) == target.horizon_days  # the stored model's last horizon ends with the data


def test_backtests_step_back_one_step_each_and_stop_where_history_runs_out():
    settings = PredictSettings(evaluation_windows=10)
    windows = plan_windows(targets(settings)["purchase_probability"], settings, 90)
    # cutoffs need 14 days of history: at most 76 days back, so the oldest backtests train on fewer cutoffs
    assert [b.evaluation for b in windows.backtests] == [7, 14, 21, 28, 35, 42, 49, 56, 63]
    assert [len(b.training) for b in windows.backtests] == [4, 4, 4, 4, 4, 4, 3, 2, 1]
    assert max(k for b in windows.backtests for k in b.training) <= 76


def test_outcomes_define_the_targets():
    frame = pd.DataFrame({"orders": [0.0, 2.0, 0.0], "revenue": [0.0, 40.5, -3.0], "active_days": [0.0, 1.0, 2.0]})
    defined = targets(PredictSettings())
    assert list(defined["purchase_probability"].outcome(frame)) == [0, 1, 0]
    assert list(defined["churn_probability"].outcome(frame)) == [1, 0, 0]
    assert list(defined["predicted_revenue"].outcome(frame)) == [0, 40.5, 0]  # refunds count as nothing
    assert isinstance(defined["churn_probability"], Target)
    assert Config().predict.purchase_lookback_days == 28 and Config().predict.purchase_horizon_days == 7
