"""BG/NBD and Gamma-Gamma as estimators: conventions, collapsing, known-truth recovery, edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from spillover.errors import SpilloverInputError
from spillover.predict.clv import (
    BetaGeoModel,
    GammaGammaModel,
    _bgnbd_log_likelihood,
    _PurchaseData,
)
from spillover.predict.mle import collapse
from spillover.predict.rfm import rfm_summary
from spillover.predict.simulate import simulate_rfm, simulate_transactions

TRUTH = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
SPEND_TRUTH = {"p": 6.0, "q": 3.8, "v": 15.0}


@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    """30,000 customers drawn from known parameters, in continuous time (no rounding bias)."""
    return simulate_rfm(30_000, **TRUTH, **SPEND_TRUTH, max_age=52, whole_periods=False, seed=3)


@pytest.fixture(scope="module")
def fitted(population):
    return BetaGeoModel().fit(population), GammaGammaModel().fit(population)


# --------------------------------------------------------------------------------------------------
# scikit-learn conventions


def test_estimators_follow_scikit_learn_conventions():
    model = BetaGeoModel(tol=1e-8, max_iter=50)
    assert model.get_params() == {"collapse": True, "tol": 1e-8, "max_iter": 50}
    copy = clone(model.set_params(collapse=False))
    assert copy.get_params()["collapse"] is False and not hasattr(copy, "params_")
    with pytest.raises(TypeError):
        BetaGeoModel(True)  # keyword-only hyperparameters
    for unfitted, call in (
        (BetaGeoModel(), lambda m: m.probability_alive([1], [2], [3])),
        (BetaGeoModel(), lambda m: m.expected_purchases(1, [1], [2], [3])),
        (GammaGammaModel(), lambda m: m.expected_spend([1], [2.0])),
    ):
        with pytest.raises(NotFittedError):
            call(unfitted)


# --------------------------------------------------------------------------------------------------
# known truth


def test_bgnbd_recovers_simulated_parameters(fitted):
    model = fitted[0]
    assert model.converged_
    for name, true in TRUTH.items():
        z = (model.params_[name] - true) / model.standard_errors_[name]
        assert abs(z) < 4, (name, model.params_[name], model.standard_errors_[name])


def test_gamma_gamma_recovers_simulated_parameters(fitted):
    model = fitted[1]
    for name, true in SPEND_TRUTH.items():
        z = (model.params_[name] - true) / model.standard_errors_[name]
        assert abs(z) < 4, (name, model.params_[name], model.standard_errors_[name])
    # spend is drawn independently of frequency
    assert abs(model.frequency_spend_correlation_) < 0.05


def test_holdout_purchases_are_predicted():
    """Dated purchases from known parameters: fit on 18 months, predict the next 6."""
    transactions = simulate_transactions(20_000, r=0.25, alpha=28.0, a=0.8, b=2.5, days=730, seed=1)
    summary = rfm_summary(
        transactions, "customer_id", "purchased_at", monetary="amount", freq="D",
        calibration_end="2025-06-30", observation_end="2025-12-30",
    )
    model = BetaGeoModel().fit(summary)
    for name, true in {"r": 0.25, "alpha": 28.0, "a": 0.8, "b": 2.5}.items():
        assert abs(model.params_[name] - true) < 4 * model.standard_errors_[name], name
    duration = summary["duration_holdout"].iloc[0]
    predicted = model.expected_purchases(duration, summary["frequency"], summary["recency"], summary["T"])
    actual = summary["frequency_holdout"].to_numpy()
    # about 8,000 holdout purchases: Poisson noise alone is ~1%
    assert predicted.sum() == pytest.approx(actual.sum(), rel=0.04)
    # customers predicted to buy more do buy more
    top = predicted > np.quantile(predicted, 0.9)
    assert actual[top].mean() > 5 * actual[~top].mean()


# --------------------------------------------------------------------------------------------------
# collapsing


rfm_rows = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 8), st.integers(0, 4)), min_size=1, max_size=40
).map(lambda rows: pd.DataFrame(
    {"frequency": [x for x, _, _ in rows],
     "recency": [0.0 if x == 0 else float(t) for x, t, _ in rows],
     "T": [float(t + extra + (1 if x else 0)) if x else float(t + extra + 1) for x, t, extra in rows]}
))


@settings(max_examples=60, deadline=None)
@given(rows=rfm_rows, params=st.tuples(*(st.floats(0.05, 5.0) for _ in range(4))))
def test_collapsed_log_likelihood_equals_row_by_row(rows, params):
    columns = tuple(rows[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    theta = np.array(params)
    full_value, full_gradient = _bgnbd_log_likelihood(theta, _PurchaseData.of(*columns, np.ones(len(rows))))
    folded, weights = collapse(columns)
    value, gradient = _bgnbd_log_likelihood(theta, _PurchaseData.of(*folded, weights))
    assert weights.sum() == len(rows)
    assert value == pytest.approx(full_value, rel=1e-10, abs=1e-9)
    np.testing.assert_allclose(gradient, full_gradient, rtol=1e-8, atol=1e-8)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2_000, 4_000))
def test_collapsed_fit_equals_uncollapsed_fit(seed, n):
    summary = simulate_rfm(n, **TRUTH, max_age=52, seed=seed)
    folded = BetaGeoModel(collapse=True).fit(summary)
    plain = BetaGeoModel(collapse=False).fit(summary)
    assert folded.n_unique_ < plain.n_unique_ == n
    assert folded.log_likelihood_ == pytest.approx(plain.log_likelihood_, rel=1e-9)
    for name in folded.param_names:
        assert folded.params_[name] == pytest.approx(plain.params_[name], rel=1e-4), name
        assert folded.standard_errors_[name] == pytest.approx(plain.standard_errors_[name], rel=1e-3), name


def test_sample_weight_equals_repeated_rows():
    summary = simulate_rfm(2_000, **TRUTH, **SPEND_TRUTH, max_age=30, seed=11)
    counts = np.random.default_rng(0).integers(0, 4, len(summary))
    repeated = summary.loc[summary.index.repeat(counts)]
    for model in (BetaGeoModel, GammaGammaModel):
        weighted = model().fit(summary, sample_weight=counts)
        expanded = model().fit(repeated)
        assert weighted.n_customers_ == expanded.n_customers_
        assert weighted.log_likelihood_ == pytest.approx(expanded.log_likelihood_, rel=1e-10)
        for name in weighted.param_names:
            assert weighted.params_[name] == pytest.approx(expanded.params_[name], rel=1e-6)


# --------------------------------------------------------------------------------------------------
# predictions


def test_prediction_shapes_and_limits(fitted):
    model = fitted[0]
    assert model.probability_alive([0, 0], [0, 0], [5, 50]).tolist() == [1.0, 1.0]
    # a customer silent for long after many purchases is likely gone; a recent one is not
    stale, fresh = model.probability_alive([10, 10], [5, 49], [50, 50])
    assert stale < 0.05 < 0.9 < fresh
    horizons = model.expected_purchases([0, 1, 10, 100, 1000], [3] * 5, [20] * 5, [30] * 5)
    assert horizons[0] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.diff(horizons) > 0)


def test_expected_purchases_stay_finite_for_heavy_buyers():
    """Hundreds of purchases and long horizons overflow the textbook form; the Euler form does not."""
    model = BetaGeoModel()
    model.params_ = {"r": 0.2426, "alpha": 4.41, "a": 0.793, "b": 2.43}
    x = np.array([1000.0, 500.0, 2000.0, 300.0])
    values = model.expected_purchases([1e6, 1e5, 3000, 5000], x, [1000, 1000, 3000, 500], [1000, 1000, 3000, 520])
    assert np.isfinite(values).all() and (values > 0).all()
    # buying every period until now, the next 3000 periods bring about as many purchases, less churn
    assert 1000 < values[2] <= 3000


def test_clv_discounting_and_margin(fitted):
    purchase, spend = fitted
    args = ([2, 0, 7], [10.0, 0.0, 40.0], [40.0, 30.0, 45.0], [20.0, 0.0, 35.0])
    undiscounted = spend.customer_lifetime_value(purchase, *args, horizon=6, discount_rate=0.0)
    discounted = spend.customer_lifetime_value(purchase, *args, horizon=6, discount_rate=0.02)
    half = spend.customer_lifetime_value(purchase, *args, horizon=6, discount_rate=0.02, margin=0.5)
    expected = spend.expected_spend(args[0], args[3]) * purchase.expected_purchases(6 * 4.345, *args[:3])
    np.testing.assert_allclose(undiscounted, expected, rtol=1e-10)
    assert np.all(discounted < undiscounted) and np.all(discounted > undiscounted / 1.02**6)
    np.testing.assert_allclose(half, discounted / 2, rtol=1e-12)
    daily = spend.customer_lifetime_value(purchase, *args, horizon=6, discount_rate=0.0, time_unit="D")
    assert np.all(daily > undiscounted)  # 180 periods ahead instead of 26


# --------------------------------------------------------------------------------------------------
# bad input


def test_fit_errors_name_the_problem():
    with pytest.raises(SpilloverInputError, match=r"required column 'T' missing \(needs frequency, recency, T; found frequency, recency\)"):
        BetaGeoModel().fit(pd.DataFrame({"frequency": [1], "recency": [1.0]}))
    with pytest.raises(SpilloverInputError, match="no customer has a repeat purchase"):
        BetaGeoModel().fit(pd.DataFrame({"frequency": [0, 0], "recency": [0.0, 0.0], "T": [3.0, 4.0]}))
    with pytest.raises(SpilloverInputError, match="no customer has frequency > 0"):
        GammaGammaModel().fit(pd.DataFrame({"frequency": [0], "monetary_value": [0.0]}))
    with pytest.raises(SpilloverInputError, match=r"monetary_value must be > 0 where frequency > 0.*row 2: monetary_value=-3"):
        GammaGammaModel().fit(pd.DataFrame({"frequency": [1, 2], "monetary_value": [5.0, -3.0]}))
    with pytest.raises(SpilloverInputError, match=r"sample_weight must hold 2 finite, non-negative numbers"):
        BetaGeoModel().fit(pd.DataFrame({"frequency": [1, 2], "recency": [1.0, 2.0], "T": [3.0, 4.0]}), sample_weight=[1, -1])
    with pytest.raises(SpilloverInputError, match=r"array of shape \(n_customers, 3\), got shape \(2, 2\)"):
        BetaGeoModel().fit(np.ones((2, 2)))


def test_prediction_errors(fitted):
    purchase, spend = fitted
    with pytest.raises(SpilloverInputError, match=r"0 <= recency <= T must hold.*first at row 1: recency=9, T=5"):
        purchase.probability_alive([1], [9], [5])
    with pytest.raises(SpilloverInputError, match="t must be finite and >= 0"):
        purchase.expected_purchases(-1, [1], [2], [5])
    with pytest.raises(SpilloverInputError, match=r"margin must be a share of spend in \(0, 1\]"):
        spend.customer_lifetime_value(purchase, [1], [2], [5], [3.0], margin=2.0)
    with pytest.raises(SpilloverInputError, match="time_unit 'M' is not supported"):
        spend.customer_lifetime_value(purchase, [1], [2], [5], [3.0], time_unit="M")


def test_expected_purchases_stay_finite_when_drop_out_does_not_vary():
    """A fit on data without spread in the drop-out probability sends a and b to infinity together
    (seen on 150 synthetic days: a = 3e4, b = 2.2e6); both hypergeometric forms overflow there and
    the point-mass limit takes over. It is within 1/a of the full expression where that is finite."""
    x = np.array([0.0, 1, 2, 5, 20, 100])
    t_x = np.minimum(x * 5, 100.0)
    T = np.full(6, 100.0)

    def expected(a: float, b: float, horizon: float) -> np.ndarray:
        model = BetaGeoModel()
        model.params_ = {"r": 0.8, "alpha": 41.5, "a": a, "b": b}
        return model.expected_purchases(horizon, x, t_x, T)

    huge = expected(30_000.0, 2_200_000.0, 360.0)
    assert np.all(np.isfinite(huge)) and np.all(np.diff(huge) > 0)
    # about the same p = a / (a + b), ten times less concentrated: within a few 1/a
    assert huge == pytest.approx(expected(3_000.0, 220_000.0, 360.0), rel=1e-3)
    full = expected(1_000.0, 73_333.3, 30.0)
    model = BetaGeoModel()
    model.params_ = {"r": 0.8, "alpha": 41.5, "a": 1_000.0, "b": 73_333.3}
    p = 1_000.0 / (1_000.0 + 73_333.3 + x)
    limit = (1_000.0 + 73_333.3 + x - 1) / 999.0 * (1 - ((41.5 + T) / (41.5 + T + p * 30.0)) ** (0.8 + x))
    limit *= model.probability_alive(x, t_x, T)
    assert np.all(np.isfinite(full)) and limit == pytest.approx(full, rel=1 / 1_000)
