"""DownstreamImpact: known-truth simulations, coverage, DoubleML cross-check, diagnostics, verdicts
and input errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import roc_auc_score

from spillover.errors import SpilloverInputError
from spillover.impact import diagnostics as diag
from spillover.impact.estimators import (
    DownstreamImpact,
    LogisticPropensity,
    default_outcome_model,
    default_propensity_model,
)
from tests.impact.known_truth import confounded


@pytest.fixture(scope="module")
def table():
    return confounded(3000, seed=7)


@pytest.fixture(scope="module")
def fitted(table):
    return DownstreamImpact().fit(table.covariates, table.treatment, table.outcome)


def test_att_covers_the_truth_where_the_naive_difference_does_not(fitted, table):
    result = fitted.result_
    assert result.ci_low <= table.att <= result.ci_high
    assert abs(result.estimate - table.att) < 0.15
    assert result.naive_difference - table.att > 1.0  # heavy shoppers adopt: attribution doubles it
    assert (result.naive_difference - table.att) / result.diagnostics.naive_difference_se > 10
    assert result.verdict == "reliable" and result.warnings == []
    assert (result.n_treated, result.n_control) == (int(table.treatment.sum()), int((1 - table.treatment).sum()))


def test_diagnostics_of_a_well_posed_table(fitted, table):
    d = fitted.result_.diagnostics
    assert d.balance.max_abs_smd_before > 0.5 and d.balance.max_abs_smd_after < 0.1
    assert d.balance.worst_covariate_after in {"x0", "x1", "x2", "x3"}
    assert 0.7 < d.overlap.propensity_auc < 0.9
    assert d.overlap.propensity_auc == pytest.approx(roc_auc_score(table.treatment, fitted.propensity_))
    assert d.overlap.n_clipped == 0 and d.overlap.share_treated_above_bound == 0
    assert sum(d.overlap.treated_histogram) == fitted.result_.n_treated
    assert 100 < d.control_effective_sample_size < fitted.result_.n_control
    assert d.outcome_model_r2 > 0.7
    assert d.sensitivity.e_value > d.sensitivity.e_value_ci > 1
    assert d.placebo is None
    assert np.sqrt(np.mean(fitted.influence_**2) / len(table.treatment)) == pytest.approx(fitted.result_.se)


def test_ate_covers_the_truth(table):
    result = DownstreamImpact(estimand="ate").fit(table.covariates, table.treatment, table.outcome).result_
    assert result.estimand == "ate"
    assert result.ci_low <= table.ate <= result.ci_high
    assert abs(result.estimate - table.ate) < 0.15


@pytest.mark.slow
def test_coverage_over_twenty_seeds_is_roughly_nominal():
    """95% intervals over 20 independent tables of 1,000 rows: at least 17 cover the truth
    (P(≤ 16 covered | 95%) ≈ 1.6%), and the mean error stays within half the mean standard error (observed: 20 covered, mean
    error -0.06 against a mean SE of 0.21)."""
    covered, errors, ses = 0, [], []
    for seed in range(100, 120):
        truth = confounded(1000, seed)
        result = DownstreamImpact().fit(truth.covariates, truth.treatment, truth.outcome).result_
        covered += result.ci_low <= truth.att <= result.ci_high
        errors.append(result.estimate - truth.att)
        ses.append(result.se)
    assert covered >= 17, (covered, errors)
    assert abs(np.mean(errors)) < np.mean(ses) / 2


def test_placebo_exposes_hidden_confounding():
    truth = confounded(3000, seed=3, hidden=1.5)
    model = DownstreamImpact().fit(truth.covariates, truth.treatment, truth.outcome, placebo_outcome=truth.pre_outcome)
    placebo = model.result_.diagnostics.placebo
    assert placebo is not None and not placebo.covers_zero and placebo.estimate > 0.3
    assert model.result_.verdict == "unreliable"
    assert any(w.startswith("Placebo check failed") for w in model.result_.warnings)


def test_placebo_of_a_clean_table_covers_zero(table):
    model = DownstreamImpact().fit(table.covariates, table.treatment, table.outcome, placebo_outcome=table.pre_outcome)
    placebo = model.result_.diagnostics.placebo
    assert placebo.covers_zero and abs(placebo.estimate) < 3 * placebo.se
    assert model.result_.verdict == "reliable"


def test_perfect_prediction_is_unreliable_not_a_crash():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 3))
    d = (x[:, 0] > 0).astype(int)
    y = x[:, 0] + d + rng.normal(size=600)
    result = DownstreamImpact().fit(x, d, y).result_
    assert result.verdict == "unreliable"
    assert result.diagnostics.overlap.propensity_auc > 0.99
    text = " ".join(result.warnings)
    assert "perfectly predict treatment" in text and "Poor overlap" in text
    assert result.diagnostics.overlap.n_clipped > 0
    assert json.dumps(result.to_dict(), allow_nan=False)


def test_too_few_treated_is_unreliable():
    truth = confounded(400, seed=1)
    keep = np.r_[np.nonzero(truth.treatment == 1)[0][:20], np.nonzero(truth.treatment == 0)[0]]
    model = DownstreamImpact(propensity_model=LogisticRegression(), outcome_model=LinearRegression())
    result = model.fit(truth.covariates[keep], truth.treatment[keep], truth.outcome[keep]).result_
    assert result.verdict == "unreliable"
    assert "Too few treated units: 20 (need at least 30)." in result.warnings


def test_custom_verdict_rules_are_applied(table):
    rules = diag.VerdictRules(min_treated=10_000)
    result = DownstreamImpact(verdict_rules=rules).fit(table.covariates, table.treatment, table.outcome).result_
    assert result.verdict == "unreliable" and result.diagnostics.rules.min_treated == 10_000


def test_matches_doubleml_atte_with_the_same_folds_and_learners(table):
    """DoubleML's DoubleMLIRM(score="ATTE") on the same sample splits and the same (deterministic)
    gradient boosting learners gives the same estimate and standard error."""
    doubleml = pytest.importorskip("doubleml")
    from sklearn.model_selection import StratifiedKFold

    from threadpoolctl import threadpool_limits

    x, d, y = table.covariates[:1500], table.treatment[:1500], table.outcome[:1500]
    ours = DownstreamImpact(n_folds=5, random_state=3).fit(x, d, y).result_
    folds = list(StratifiedKFold(n_splits=5, shuffle=True, random_state=3).split(x, d))
    data = doubleml.DoubleMLData.from_arrays(x, y, d)
    theirs = doubleml.DoubleMLIRM(
        data, ml_g=default_outcome_model(3), ml_m=default_propensity_model(3), n_folds=5, score="ATTE",
        draw_sample_splitting=False,
    )
    theirs.set_sample_splitting([folds])
    with threadpool_limits(1):  # as DownstreamImpact does on small tables
        theirs.fit()
    assert ours.estimate == pytest.approx(float(theirs.coef[0]), abs=1e-9)
    assert ours.se == pytest.approx(float(theirs.se[0]), rel=1e-6)


def test_sklearn_conventions(table):
    model = DownstreamImpact(estimand="ate", n_folds=3, trim=0.05)
    assert clone(model).get_params()["trim"] == 0.05
    with pytest.raises(NotFittedError):
        model.summary()
    model.set_params(estimand="att").fit(table.covariates[:500], table.treatment[:500], table.outcome[:500])
    summary = model.summary()
    assert summary["estimand"] == "att" and model.n_features_in_ == 4
    assert set(summary) >= {"estimate", "se", "ci_low", "ci_high", "naive_difference", "diagnostics", "warnings", "verdict"}


def test_identical_runs_give_identical_numbers(table):
    first = DownstreamImpact(random_state=5).fit(table.covariates[:500], table.treatment[:500], table.outcome[:500])
    second = DownstreamImpact(random_state=5).fit(table.covariates[:500], table.treatment[:500], table.outcome[:500])
    assert first.result_.estimate == second.result_.estimate


def test_folds_fitted_in_parallel_processes_give_the_same_numbers(table):
    x, d, y = table.covariates[:1500], table.treatment[:1500], table.outcome[:1500]
    weights = np.linspace(0.5, 2.0, len(d))
    for estimand in ("att", "ate"):
        kwargs = dict(estimand=estimand, propensity_model="logistic", random_state=2)
        one = DownstreamImpact(n_jobs=1, **kwargs).fit(x, d, y, placebo_outcome=x[:, 0], sample_weight=weights)
        two = DownstreamImpact(n_jobs=2, **kwargs).fit(x, d, y, placebo_outcome=x[:, 0], sample_weight=weights)
        assert two.result_.estimate == pytest.approx(one.result_.estimate, rel=1e-12)
        assert two.result_.se == pytest.approx(one.result_.se, rel=1e-12)
        assert two.result_.diagnostics.placebo.estimate == pytest.approx(one.result_.diagnostics.placebo.estimate, rel=1e-12)
        np.testing.assert_allclose(two.propensity_, one.propensity_, rtol=1e-12)
        np.testing.assert_allclose(two.outcome_control_, one.outcome_control_, rtol=1e-12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x, d, y: (x, d * 2, y), r"treatment must be 0/1 \(1 = bought the product\); found 2"),
        (lambda x, d, y: (x, d * 0, y), "no treated units"),
        (lambda x, d, y: (x, d * 0 + 1, y), "no control units"),
        (lambda x, d, y: (x, d, y * 0 + 4), r"outcome is constant \(4 everywhere\)"),
        (lambda x, d, y: (x, d, np.where(np.arange(len(y)) < 3, np.nan, y)), "outcome has 3 missing or infinite values"),
        (lambda x, d, y: (x[:10], d, y), r"treatment must be one value per row \(10\)"),
        (lambda x, d, y: (np.where(x == x[0, 0], np.inf, x), d, y), "covariates contain infinite values"),
    ],
)
def test_input_errors(table, change, message):
    x, d, y = change(table.covariates[:200], table.treatment[:200], table.outcome[:200])
    with pytest.raises(SpilloverInputError, match=message):
        DownstreamImpact().fit(x, d, y)


def test_parameter_errors(table):
    x, d, y = table.covariates[:200], table.treatment[:200], table.outcome[:200]
    with pytest.raises(SpilloverInputError, match="estimand must be one of att, ate, not 'atc'"):
        DownstreamImpact(estimand="atc").fit(x, d, y)
    with pytest.raises(SpilloverInputError, match=r"trim must lie in \(0, 0.5\)"):
        DownstreamImpact(trim=0.5).fit(x, d, y)
    few = np.r_[np.ones(3, dtype=int), np.zeros(197, dtype=int)]
    with pytest.raises(SpilloverInputError, match="3 treated and 197 control units: cross-fitting with n_folds=5"):
        DownstreamImpact().fit(x, few, y)
    with pytest.raises(SpilloverInputError, match="propensity model must be one of boosting, logistic, not 'forest'"):
        DownstreamImpact(propensity_model="forest").fit(x, d, y)


def test_logistic_propensity_covers_the_truth_and_balances(table):
    model = DownstreamImpact(propensity_model="logistic").fit(table.covariates, table.treatment, table.outcome)
    result = model.result_
    assert result.ci_low <= table.att <= result.ci_high
    assert abs(result.estimate - table.att) < 0.15
    assert result.diagnostics.balance.max_abs_smd_after < 0.1
    assert result.verdict == "reliable"
    # A full scikit-learn classifier (DoubleML's cross_val_predict asks for predict too).
    fitted = LogisticPropensity().fit(table.covariates, table.treatment)
    probability = fitted.predict_proba(table.covariates)[:, 1]
    assert (fitted.predict(table.covariates) == (probability > 0.5)).all()


def test_the_att_clips_propensities_only_near_one():
    """With a rare treatment many controls have e < trim; the ATT leaves them their small weight
    (lifting them to the bound would give the least buyer-like controls up to 1/e times too much)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6000, 2))
    d = (rng.random(6000) < 1 / (1 + np.exp(-(-4.5 + 1.5 * x[:, 0])))).astype(int)
    y = x[:, 0] + 2.0 * d + rng.normal(size=6000)
    att = DownstreamImpact(propensity_model=LogisticRegression(), outcome_model=LinearRegression()).fit(x, d, y)
    raw = att.propensity_
    assert (raw < 0.01).sum() > 1000
    overlap = att.result_.diagnostics.overlap
    assert overlap.n_clipped == int((raw > 0.99).sum()) and overlap.n_control_below_bound > 1000
    assert att.result_.ci_low <= 2.0 <= att.result_.ci_high
    ate = DownstreamImpact(estimand="ate", propensity_model=LogisticRegression(), outcome_model=LinearRegression())
    overlap = ate.fit(x, d, y).result_.diagnostics.overlap
    assert overlap.n_clipped == int(((ate.propensity_ < 0.01) | (ate.propensity_ > 0.99)).sum())


# --------------------------------------------------------------------------------------------------
# diagnostics helpers against hand calculations


def test_e_value_matches_vanderweele_ding():
    # Risk ratio 3.9 has E-value 3.9 + sqrt(3.9 × 2.9) = 7.26 (VanderWeele & Ding 2017, Section 3).
    assert diag._e_value_of_ratio(3.9) == pytest.approx(7.26, abs=0.005)
    assert diag._e_value_of_ratio(1 / 3.9) == pytest.approx(7.26, abs=0.005)
    # A mean difference of 0.5 SD: RR = exp(0.455) = 1.576, E-value = 1.576 + sqrt(1.576 × 0.576) = 2.53
    found = diag.e_value(5.0, 1.0, 9.0, outcome_sd=10.0)
    assert found.e_value == pytest.approx(2.529, abs=0.002)
    assert found.e_value_ci == pytest.approx(diag._e_value_of_ratio(np.exp(0.091)))
    assert diag.e_value(5.0, -1.0, 11.0, outcome_sd=10.0).e_value_ci == 1.0


def test_balance_and_effective_sample_size_by_hand():
    x = np.array([[0.0], [2.0], [1.0], [3.0]])
    d = np.array([1, 1, 0, 0])
    # means 1 vs 2, variances 1 and 1 (population) -> SMD -1; weights 3:1 on controls -> mean 1.5
    result = diag.balance(x, d, np.array([1.0, 1.0, 3.0, 1.0]), ["x"], rules=diag.VerdictRules())
    assert result.covariates[0].smd_before == pytest.approx(-1.0)
    assert result.covariates[0].smd_after == pytest.approx(-0.5)
    assert diag.effective_sample_size(np.ones(10)) == pytest.approx(10)
    assert diag.effective_sample_size(np.array([1.0, 0.0, 0.0])) == pytest.approx(1)


def test_repeated_splits_report_the_median_estimate(table):
    x, d, y = table.covariates[:600], table.treatment[:600], table.outcome[:600]
    linear = dict(propensity_model=LogisticRegression(), outcome_model=LinearRegression())
    singles = [DownstreamImpact(random_state=seed, **linear).fit(x, d, y).result_ for seed in (4, 5, 6)]
    repeated = DownstreamImpact(random_state=4, n_repeats=3, **linear).fit(x, d, y).result_
    estimates = [r.estimate for r in singles]
    assert repeated.estimate == pytest.approx(np.median(estimates))
    expected_se = np.median([np.sqrt(r.se**2 + (r.estimate - np.median(estimates)) ** 2) for r in singles])
    assert repeated.se == pytest.approx(expected_se)
    with pytest.raises(SpilloverInputError, match="n_repeats must be a positive integer, not 0"):
        DownstreamImpact(n_repeats=0).fit(x, d, y)
