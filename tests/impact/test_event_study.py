"""StaggeredDiD against the published Callaway & Sant'Anna numbers on mpdta, and on panels with a
known truth (dynamic effects, parallel trends, and a violated one the pre-trend test must catch)."""

from __future__ import annotations

import gzip
import pickle
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from spillover.errors import SpilloverInputError
from spillover.impact.event_study import StaggeredDiD

# The `did` R package vignette ("Getting started", unconditional parallel trends, never-treated
# controls, xformla = ~1): ATT(g, t) to 4 decimals; its standard errors are multiplier-bootstrap
# ones (random), so they are compared loosely. Event-time and simple aggregates from `aggte`.
PUBLISHED_NEVER_TREATED = {
    (2004, 2004): (-0.0105, 0.0233), (2004, 2005): (-0.0704, 0.0310), (2004, 2006): (-0.1373, 0.0364),
    (2004, 2007): (-0.1008, 0.0344), (2006, 2004): (0.0065, 0.0233), (2006, 2005): (-0.0028, 0.0196),
    (2006, 2006): (-0.0046, 0.0178), (2006, 2007): (-0.0412, 0.0202), (2007, 2004): (0.0305, 0.0150),
    (2007, 2005): (-0.0027, 0.0164), (2007, 2006): (-0.0311, 0.0179), (2007, 2007): (-0.0261, 0.0167),
}
PUBLISHED_EVENT_TIME = {-3: 0.0305, -2: -0.0006, -1: -0.0245, 0: -0.0199, 1: -0.0510, 2: -0.1373, 3: -0.1008}
PUBLISHED_SIMPLE_ATT = -0.0400
PUBLISHED_PRETEST_P = 0.16812

# Not-yet-treated controls: moderndid 0.2.0 (a Python port of `did`), analytic standard errors,
# att_gt(..., xformla="~1", control_group="notyettreated", boot=False).
MODERNDID_NOT_YET = {
    (2004, 2004): (-0.01937, 0.02231), (2004, 2005): (-0.07832, 0.03039), (2004, 2006): (-0.13627, 0.03540),
    (2004, 2007): (-0.10081, 0.03436), (2006, 2004): (-0.00256, 0.02253), (2006, 2005): (-0.00194, 0.01904),
    (2006, 2006): (0.00466, 0.01634), (2006, 2007): (-0.04122, 0.02023), (2007, 2004): (0.02976, 0.01453),
    (2007, 2005): (-0.00241, 0.01603), (2007, 2006): (-0.03109, 0.01788), (2007, 2007): (-0.02605, 0.01666),
}
MODERNDID_NOT_YET_SIMPLE = (-0.039764, 0.012052)

# Conditional parallel trends given lpop (doubly robust, xformla = ~lpop), never-treated controls: the
# `did` vignette's ATT(g, t) to 4 decimals and pre-test p = 0.23267; SEs from moderndid 0.2.0
# (analytic), which also gives the simple ATT -0.041752 (se 0.011503).
PUBLISHED_LPOP_NEVER = {
    (2004, 2004): (-0.0145, 0.022129), (2004, 2005): (-0.0764, 0.028671), (2004, 2006): (-0.1404, 0.035378),
    (2004, 2007): (-0.1069, 0.032886), (2006, 2004): (-0.0005, 0.022223), (2006, 2005): (-0.0062, 0.018496),
    (2006, 2006): (0.0010, 0.019400), (2006, 2007): (-0.0413, 0.019721), (2007, 2004): (0.0267, 0.014066),
    (2007, 2005): (-0.0046, 0.015718), (2007, 2006): (-0.0284, 0.018181), (2007, 2007): (-0.0288, 0.016239),
}
MODERNDID_LPOP_NEVER_SIMPLE = (-0.041752, 0.011503)
# not-yet-treated with ~lpop, moderndid 0.2.0: two cells that differ from the never-treated run
MODERNDID_LPOP_NOT_YET = {(2004, 2004): (-0.021183, 0.021648), (2006, 2006): (0.008661, 0.016839)}
# moderndid's analytic standard errors for the never-treated run (the published ones are bootstrap)
MODERNDID_NEVER_SIMPLE_SE = 0.012034


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    """The mpdta county panel as moderndid ships it (a pickled DataFrame in its package data)."""
    path = resources.files("moderndid") / "core" / "datasets" / "mpdta_long.pkl.gz"
    with gzip.open(path) as handle:  # type: ignore[arg-type]
        frame = pickle.load(handle)
    assert frame.shape == (2500, 6)
    return frame


def fit(panel, **params):
    return StaggeredDiD(unit="countyreal", period="year", outcome="lemp", first_treated="first.treat", **params).fit(panel)


def cells(result):
    return {(row.group, row.period): (row.att, row.se) for row in result.group_time.itertuples()}


def test_mpdta_never_treated_matches_the_did_vignette(mpdta):
    result = fit(mpdta, control_group="never_treated").result_
    found = cells(result)
    assert set(found) == set(PUBLISHED_NEVER_TREATED)
    for key, (att, se) in PUBLISHED_NEVER_TREATED.items():
        assert found[key][0] == pytest.approx(att, abs=6e-5), key
        assert found[key][1] == pytest.approx(se, abs=0.002), key  # bootstrap SEs in the vignette
    event = dict(zip(result.event_study.event_time, result.event_study.att))
    for e, att in PUBLISHED_EVENT_TIME.items():
        assert event[e] == pytest.approx(att, abs=6e-5), e
    assert result.overall["att"] == pytest.approx(PUBLISHED_SIMPLE_ATT, abs=6e-5)
    assert result.overall["se"] == pytest.approx(MODERNDID_NEVER_SIMPLE_SE, abs=1e-6)
    assert result.pretrend_test["p_value"] == pytest.approx(PUBLISHED_PRETEST_P, abs=1e-5)
    assert result.pretrend_test["df"] == 5 and result.pretrend_test["passed"] is True


def test_mpdta_not_yet_treated_matches_moderndid(mpdta):
    result = fit(mpdta).result_  # not-yet-treated is the default
    found = cells(result)
    for key, (att, se) in MODERNDID_NOT_YET.items():
        assert found[key] == pytest.approx((att, se), abs=6e-6), key
    assert (result.overall["att"], result.overall["se"]) == pytest.approx(MODERNDID_NOT_YET_SIMPLE, abs=1e-6)
    # controls shrink as later cohorts adopt: 2004's effect in 2007 has only never-treated units
    counts = {(row.group, row.period): row.n_control for row in result.group_time.itertuples()}
    assert counts[(2004, 2004)] == 480 and counts[(2004, 2007)] == 309


def test_mpdta_with_lpop_matches_the_doubly_robust_did(mpdta):
    result = fit(mpdta, control_group="never_treated", covariates=["lpop"]).result_
    found = cells(result)
    for key, (att, se) in PUBLISHED_LPOP_NEVER.items():
        assert found[key][0] == pytest.approx(att, abs=6e-5), key
        assert found[key][1] == pytest.approx(se, abs=1e-6), key
    assert (result.overall["att"], result.overall["se"]) == pytest.approx(MODERNDID_LPOP_NEVER_SIMPLE, abs=1e-6)
    assert result.pretrend_test["p_value"] == pytest.approx(0.23267, abs=1e-5)
    not_yet = cells(fit(mpdta, covariates=["lpop"]).result_)
    for key, expected in MODERNDID_LPOP_NOT_YET.items():
        assert not_yet[key] == pytest.approx(expected, abs=1e-6), key


def staggered_panel(seed: int, *, units: int = 600, trend_gap: float = 0.0) -> tuple[pd.DataFrame, dict[int, float]]:
    """Cohorts adopting in periods 4, 6, 8 of 1..10 (and never), effect 1 + 0.5 × periods since
    adoption; unit and period effects; ``trend_gap`` adds a cohort-specific linear trend."""
    rng = np.random.default_rng(seed)
    cohort = rng.choice([0, 4, 6, 8], size=units, p=[0.4, 0.2, 0.2, 0.2])
    level = rng.normal(size=units) + 0.5 * (cohort > 0)
    rows = []
    for period in range(1, 11):
        shock = 0.3 * period
        since = period - cohort
        effect = np.where((cohort > 0) & (since >= 0), 1.0 + 0.5 * since, 0.0)
        trend = trend_gap * period * (cohort > 0)
        y = level + shock + trend + effect + rng.normal(scale=0.5, size=units)
        rows.append(pd.DataFrame({"unit": np.arange(units), "period": period, "y": y, "first": cohort}))
    truth = {e: 1.0 + 0.5 * e for e in range(0, 7)}
    return pd.concat(rows, ignore_index=True), truth


@pytest.mark.parametrize("control_group", ["not_yet_treated", "never_treated"])
@pytest.mark.parametrize("base_period", ["varying", "universal"])
def test_known_dynamic_effects_are_recovered(control_group, base_period):
    panel, truth = staggered_panel(0)
    model = StaggeredDiD(outcome="y", first_treated="first", control_group=control_group, base_period=base_period)
    result = model.fit(panel).result_
    event = result.event_study.set_index("event_time")
    # 7 correlated event times per run: each within 3 standard errors. Over 60 seeds the z-scores of
    # this design had means within ±0.2 and SDs 0.93-1.22, and over 100 seeds 5.6% of pre-period
    # cells had |z| > 1.96: the SEs are calibrated, so one seed suffices here.
    for e, effect in truth.items():
        assert abs(event.loc[e, "att"] - effect) <= 3 * event.loc[e, "se"], (e, event.loc[e].to_dict())
    pre = event[event.index < 0]
    assert len(pre) > 0 and (pre["att"].abs() < 4 * pre["se"]).all()
    assert result.pretrend_test["passed"] is True
    if base_period == "universal":
        assert -1 not in event.index  # the reference period is the normalisation, not an estimate


def test_pretrend_test_rejects_diverging_trends():
    panel, _ = staggered_panel(2, trend_gap=0.15)
    result = StaggeredDiD(outcome="y", first_treated="first").fit(panel).result_
    assert result.pretrend_test["passed"] is False
    assert result.pretrend_test["p_value"] < 1e-6
    assert any("Pre-trends" in w for w in result.warnings)


def test_covariates_restore_parallel_trends():
    """Heavy shoppers (high x) adopt earlier and their margin grows faster anyway: unconditional
    pre-trends fail; conditioning on x recovers the effects and passes."""
    rng = np.random.default_rng(5)
    units = 1500
    x = rng.normal(size=units)
    cohort = np.where(rng.random(units) < 1 / (1 + np.exp(-1.5 * x)), rng.choice([4, 6], size=units), 0)
    rows = []
    for period in range(1, 9):
        since = period - cohort
        effect = np.where((cohort > 0) & (since >= 0), 1.0 + 0.5 * since, 0.0)
        y = x + (0.2 + 0.3 * x) * period + effect + rng.normal(scale=0.5, size=units)
        rows.append(pd.DataFrame({"unit": np.arange(units), "period": period, "y": y, "first": cohort, "x": x}))
    panel = pd.concat(rows, ignore_index=True)
    plain = StaggeredDiD(outcome="y", first_treated="first").fit(panel).result_
    assert plain.pretrend_test["passed"] is False
    adjusted = StaggeredDiD(outcome="y", first_treated="first", covariates=["x"]).fit(panel).result_
    assert adjusted.pretrend_test["passed"] is True
    event = adjusted.event_study.set_index("event_time")
    for e in range(0, 5):
        assert abs(event.loc[e, "att"] - (1.0 + 0.5 * e)) <= 3 * event.loc[e, "se"], e


def test_unbalanced_late_and_early_units_are_reported():
    panel, _ = staggered_panel(3, units=200)
    panel = panel[~((panel.unit == 5) & (panel.period == 3))]  # one unit misses a period
    panel.loc[panel.unit == 6, "first"] = 1  # adopts in the first period: nothing to compare before
    panel.loc[panel.unit == 7, "first"] = 99  # adopts after the panel ends: never treated here
    result = StaggeredDiD(outcome="y", first_treated="first").fit(panel).result_
    assert result.n_units == 198
    text = " ".join(result.warnings)
    assert "1 units without an outcome in every period were dropped" in text
    assert "1 units adopted in or before the first period" in text
    assert "1 units adopt after the last period; counted as never treated" in text


def test_input_errors():
    panel, _ = staggered_panel(4, units=50)
    with pytest.raises(SpilloverInputError, match=r"panel column\(s\) 'outcome' not found"):
        StaggeredDiD(first_treated="first").fit(panel)
    with pytest.raises(SpilloverInputError, match="control_group must be one of"):
        StaggeredDiD(outcome="y", first_treated="first", control_group="everyone").fit(panel)
    no_never = panel[panel["first"] > 0]
    with pytest.raises(SpilloverInputError, match="no never-treated units"):
        StaggeredDiD(outcome="y", first_treated="first", control_group="never_treated").fit(no_never)
    changing = panel.copy()
    changing.loc[(changing.unit == changing.unit.iloc[0]) & (changing.period == 2), "first"] = 6
    with pytest.raises(SpilloverInputError, match="'first' differs between periods of the same unit"):
        StaggeredDiD(outcome="y", first_treated="first").fit(changing)
    doubled = pd.concat([panel, panel.head(1)])
    with pytest.raises(SpilloverInputError, match="several rows for the same 'unit' and 'period'"):
        StaggeredDiD(outcome="y", first_treated="first").fit(doubled)
    odd = panel.astype({"first": float})
    odd.loc[odd["first"] == 6, "first"] = 5.5
    with pytest.raises(SpilloverInputError, match="must be one of the panel's periods or 0; found 5.5"):
        StaggeredDiD(outcome="y", first_treated="first").fit(odd)


def test_summary_is_json_ready(mpdta):
    import json

    summary = fit(mpdta).summary()
    text = json.dumps(summary, allow_nan=False)
    assert summary["overall"]["att"] == pytest.approx(-0.0398, abs=1e-4)
    assert len(summary["group_time"]) == 12 and '"event_time": -3' in text
