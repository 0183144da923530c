"""The RFM summary: hand-worked examples, agreement with lifetimes, invariants, and its contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spillover.errors import SpilloverInputError
from spillover.predict.rfm import check_rfm, rfm_summary
from spillover.predict.simulate import simulate_transactions


def _transactions(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["who", "when", "spend"])


HAND = _transactions([
    ("a", "2024-01-01 09:00", 10.0),
    ("a", "2024-01-01 18:00", 5.0),   # same day: one purchase period of 15
    ("a", "2024-01-04", 20.0),
    ("a", "2024-01-11", 40.0),
    ("b", "2024-01-05", 7.0),
    ("c", "2024-01-09", 3.0),
    ("c", "2024-01-20", 9.0),         # after the calibration end: holdout
    ("d", "2024-01-15", 1.0),         # first purchase after the calibration end: left out
])


def test_daily_summary_by_hand():
    summary = rfm_summary(HAND, "who", "when", monetary="spend", freq="D", observation_end="2024-01-20")
    expected = pd.DataFrame({
        "who": ["a", "b", "c", "d"],
        "frequency": [2, 0, 1, 0],
        "recency": [10.0, 0.0, 11.0, 0.0],
        "T": [19.0, 15.0, 11.0, 5.0],
        "monetary_value": [30.0, 0.0, 9.0, 0.0],  # mean of the repeat periods: (20 + 40) / 2; the first is excluded
    })
    pd.testing.assert_frame_equal(summary, expected)


def test_weekly_summary_with_holdout_by_hand():
    # weeks end on Sunday: 2024-01-01 (Mon) .. 01-07 is week 0, 01-08 .. 01-14 week 1, 01-15 .. 01-21 week 2
    summary = rfm_summary(
        HAND, "who", "when", monetary="spend", freq="W", calibration_end="2024-01-12", observation_end="2024-01-21"
    )
    assert summary["who"].tolist() == ["a", "b", "c"]
    assert summary["frequency"].tolist() == [1, 0, 0]        # a: weeks 0 and 1
    assert summary["recency"].tolist() == [1.0, 0.0, 0.0]
    assert summary["T"].tolist() == [1.0, 1.0, 0.0]
    assert summary["monetary_value"].tolist() == [40.0, 0.0, 0.0]
    assert summary["frequency_holdout"].tolist() == [0, 0, 1]
    assert summary["monetary_value_holdout"].tolist() == [0.0, 0.0, 9.0]
    assert summary["duration_holdout"].tolist() == [1.0, 1.0, 1.0]


def test_time_zones_keep_local_days():
    local = pd.DataFrame({
        "who": ["a", "a"],
        "when": pd.to_datetime(["2024-03-01 23:30", "2024-03-02 00:30"]).tz_localize("America/New_York"),
    })
    summary = rfm_summary(local, "who", "when")
    assert summary[["frequency", "recency", "T"]].iloc[0].tolist() == [1, 1.0, 1.0]


@pytest.mark.parametrize("freq", ["D", "W"])
def test_agrees_with_lifetimes(freq):
    utils = pytest.importorskip("lifetimes.utils")
    transactions = simulate_transactions(3_000, r=0.3, alpha=20.0, a=0.8, b=2.5, days=400, seed=5)
    ours = rfm_summary(
        transactions, "customer_id", "purchased_at", monetary="amount", freq=freq,
        calibration_end="2024-10-31", observation_end="2025-02-03",
    ).set_index("customer_id")
    theirs = utils.calibration_and_holdout_data(
        transactions, "customer_id", "purchased_at", calibration_period_end="2024-10-31",
        observation_period_end="2025-02-03", freq=freq, monetary_value_col="amount",
    )
    assert ours.index.tolist() == theirs.index.tolist()
    pairs = {"frequency": "frequency_cal", "recency": "recency_cal", "T": "T_cal", "monetary_value": "monetary_value_cal",
             "frequency_holdout": "frequency_holdout", "duration_holdout": "duration_holdout"}
    for column, theirs_column in pairs.items():
        np.testing.assert_allclose(ours[column].to_numpy(float), theirs[theirs_column].to_numpy(float), rtol=1e-12, err_msg=column)
    # lifetimes averages holdout spend per transaction row, spillover per purchase period (like the
    # calibration column); they agree where no period holds two purchases
    assert (ours["monetary_value_holdout"] > 0).sum() == (theirs["monetary_value_holdout"] > 0).sum()


purchases = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 60 * 24 * 90), st.floats(0.5, 100.0)), min_size=1, max_size=60
)


@settings(max_examples=80, deadline=None)
@given(rows=purchases, freq=st.sampled_from(["D", "W"]), cut=st.integers(0, 90))
def test_summary_invariants(rows, freq, cut):
    start = pd.Timestamp("2024-02-01")
    transactions = pd.DataFrame({
        "customer": [c for c, _, _ in rows],
        "at": [start + pd.Timedelta(minutes=m) for _, m, _ in rows],
        "spend": [s for _, _, s in rows],
    })
    end = start + pd.Timedelta(days=90)
    calibration = start + pd.Timedelta(days=cut)
    if (transactions["at"] > calibration).all():
        with pytest.raises(SpilloverInputError, match="no purchase on or before"):
            rfm_summary(transactions, "customer", "at", monetary="spend", freq=freq, calibration_end=calibration, observation_end=end)
        return
    summary = rfm_summary(
        transactions, "customer", "at", monetary="spend", freq=freq, calibration_end=calibration, observation_end=end
    )
    # the contract holds
    check_rfm(summary, columns=("frequency", "recency", "T", "monetary_value"))
    assert ((summary["recency"] >= 0) & (summary["recency"] <= summary["T"])).all()
    # frequency counts distinct purchase periods less one; holdout periods are counted after the cut
    period = transactions["at"].dt.to_period(freq)
    before = transactions["at"] <= calibration
    for row in summary.itertuples(index=False):
        mine = transactions["customer"] == row.customer
        assert row.frequency == period[mine & before].nunique() - 1
        assert row.frequency_holdout == period[mine & ~before].nunique()
        spent = transactions.loc[mine & before, "spend"].sum()
        first_period = period[mine & before].min()
        first_spend = transactions.loc[mine & before & (period == first_period), "spend"].sum()
        assert row.monetary_value * row.frequency == pytest.approx(spent - first_spend, rel=1e-9, abs=1e-9)
    # every customer with a purchase up to the cut appears once
    assert sorted(summary["customer"]) == sorted(transactions.loc[before, "customer"].unique())


def test_contract_messages():
    good = pd.DataFrame({"frequency": [0, 2], "recency": [0.0, 3.0], "T": [5.0, 4.0], "monetary_value": [0.0, 2.5]})
    check_rfm(good, columns=("frequency", "recency", "T", "monetary_value"))
    cases = [
        (good.drop(columns=["T", "recency"]), r"RFM summary: required columns 'recency', 'T' missing \(needs frequency, recency, T; found frequency, monetary_value\)"),
        (good.assign(frequency=[0, 1.5]), r"frequency must be a non-negative integer .*1 row break this, first at row 2: frequency=1.5"),
        (good.assign(frequency=[-1, 2]), r"first at row 1: frequency=-1"),
        (good.assign(recency=[0.0, 6.0]), r"0 <= recency <= T must hold .*first at row 2: recency=6, T=4"),
        (good.assign(recency=[1.0, 3.0]), r"recency must be 0 when frequency is 0 \(no repeat purchase\); 1 row break this, first at row 1: recency=1"),
        (good.assign(T=[np.nan, 4.0]), r"column 'T' has missing or infinite values \(1 row, first at row 1: nan\)"),
        (good.assign(recency=["0", "3"]), r"column 'recency' must be numeric, found dtype"),
        (good.iloc[:0], r"RFM summary has no customers \(0 rows\)"),
    ]
    for frame, message in cases:
        with pytest.raises(SpilloverInputError, match=message):
            check_rfm(frame)
    with pytest.raises(SpilloverInputError, match=r"orders.csv: monetary_value must be > 0 where frequency > 0 .* first at row 2: monetary_value=0"):
        check_rfm(good.assign(monetary_value=[0.0, 0.0]), columns=("frequency", "monetary_value"), where="orders.csv")


def test_summary_input_errors():
    with pytest.raises(SpilloverInputError, match=r"orders.csv: columns 'customer', 'at' missing \(found who, when, spend\)"):
        rfm_summary(HAND, "customer", "at", where="orders.csv")
    with pytest.raises(SpilloverInputError, match=r"column 'when' has 1 row that are empty or not a date/time, first at row 2: 'soon'"):
        rfm_summary(_transactions([("a", "2024-01-01", 1.0), ("a", "soon", 2.0)]), "who", "when")
    with pytest.raises(SpilloverInputError, match=r"column 'who' is empty in 1 row, first at row 1"):
        rfm_summary(_transactions([(None, "2024-01-01", 1.0)]), "who", "when")
    with pytest.raises(SpilloverInputError, match="freq 'M' is not supported"):
        rfm_summary(HAND, "who", "when", freq="M")
    with pytest.raises(SpilloverInputError, match="calibration_end 2024-02-01 is after observation_end 2024-01-20"):
        rfm_summary(HAND, "who", "when", calibration_end="2024-02-01", observation_end="2024-01-20")
    with pytest.raises(SpilloverInputError, match=r"column 'spend' has missing or infinite values"):
        rfm_summary(_transactions([("a", "2024-01-01", float("nan"))]), "who", "when", monetary="spend")
