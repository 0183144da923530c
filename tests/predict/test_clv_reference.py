"""CLV models against published CDNOW estimates and against the ``lifetimes`` package on the same data.

The CDNOW sample (2,357 customers, weeks) ships inside ``lifetimes``; its summary with mean repeat
spend (``zbar``) gives the Gamma-Gamma inputs. Published figures: BG/NBD r = 0.243, alpha = 4.414,
a = 0.793, b = 2.426 (Fader, Hardie & Lee 2005, "Counting your customers the easy way", section 5);
Gamma-Gamma p = 6.25, q = 3.74, v = 15.44 on the 946 repeat buyers (Fader, Hardie & Lee 2005, "RFM
and CLV"; Fader & Hardie 2013).
"""

from __future__ import annotations

import importlib.resources

import numpy as np
import pandas as pd
import pytest

from spillover.predict.clv import BetaGeoModel, GammaGammaModel, predict_customers

lifetimes = pytest.importorskip("lifetimes")


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    path = importlib.resources.files("lifetimes") / "datasets" / "cdnow_customers_summary_with_transactions.csv"
    with importlib.resources.as_file(path) as file:
        raw = pd.read_csv(file)
    return pd.DataFrame(
        {"ID": raw["ID"], "frequency": raw["x"], "recency": raw["t_x"], "T": raw["T"], "monetary_value": raw["zbar"]}
    )


@pytest.fixture(scope="module")
def fitted(cdnow):
    return BetaGeoModel().fit(cdnow), GammaGammaModel().fit(cdnow)


@pytest.fixture(scope="module")
def reference(cdnow):
    """lifetimes' own fitters on the same data."""
    purchase = lifetimes.BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    repeat = cdnow[cdnow["frequency"] > 0]
    spend = lifetimes.GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    return purchase, spend


def test_cdnow_summary_is_the_published_sample(cdnow):
    assert len(cdnow) == 2357
    assert int((cdnow["frequency"] > 0).sum()) == 946
    # the plain summary shipped beside it holds the same customers
    path = importlib.resources.files("lifetimes") / "datasets" / "cdnow_customers_summary.csv"
    with importlib.resources.as_file(path) as file:
        plain = pd.read_csv(file)
    np.testing.assert_allclose(plain[["frequency", "recency", "T"]].to_numpy(), cdnow[["frequency", "recency", "T"]].to_numpy())


def test_bgnbd_matches_published_parameters(fitted):
    params = fitted[0].params_
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert round(params[name], 3) == value, (name, params[name])
    # the published log-likelihood of the calibration fit is -9582.4
    assert fitted[0].log_likelihood_ == pytest.approx(-9582.4, abs=0.05)
    assert fitted[0].n_customers_ == 2357 and fitted[0].converged_


def test_gamma_gamma_matches_published_parameters(fitted):
    params = fitted[1].params_
    # within one unit of the last published digit: the maximum of the likelihood is at v = 15.4477
    # (lifetimes finds the same), so the published 15.44 is truncated rather than rounded
    for name, value in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert abs(params[name] - value) <= 0.01, (name, params[name])
    assert round(params["p"], 2) == 6.25 and round(params["q"], 2) == 3.74
    assert fitted[1].n_customers_ == 946
    # the published check of the independence assumption: correlation 0.11 on CDNOW
    assert fitted[1].frequency_spend_correlation_ == pytest.approx(0.11, abs=0.005)


def test_parameters_and_standard_errors_agree_with_lifetimes(fitted, reference):
    ours_bg, ours_gg = fitted
    theirs_bg, theirs_gg = reference
    for ours, theirs in ((ours_bg, theirs_bg), (ours_gg, theirs_gg)):
        for name in ours.param_names:
            # both optimise to ~1e-6 relative; standard errors agree to the accuracy of the Hessians
            assert ours.params_[name] == pytest.approx(theirs.params_[name], rel=1e-5), name
            assert ours.standard_errors_[name] == pytest.approx(theirs.summary.loc[name, "se(coef)"], rel=1e-4), name


def test_predictions_agree_with_lifetimes(cdnow, fitted, reference):
    ours_bg, ours_gg = fitted
    theirs_bg, theirs_gg = reference
    x, t_x, age, money = (cdnow[c] for c in ("frequency", "recency", "T", "monetary_value"))
    # tolerance 1e-5 relative: the two fits differ in the 6th-7th digit of their parameters
    for horizon in (1.0, 10.0, 52.0, 520.0):
        np.testing.assert_allclose(
            ours_bg.expected_purchases(horizon, x, t_x, age),
            theirs_bg.conditional_expected_number_of_purchases_up_to_time(horizon, x, t_x, age),
            rtol=1e-5,
        )
    np.testing.assert_allclose(ours_bg.probability_alive(x, t_x, age), theirs_bg.conditional_probability_alive(x, t_x, age), rtol=1e-5)
    np.testing.assert_allclose(ours_gg.expected_spend(x, money), theirs_gg.conditional_expected_average_profit(x, money), rtol=1e-5)
    theirs_clv = theirs_gg.customer_lifetime_value(theirs_bg, x, t_x, age, money, time=12, discount_rate=0.01, freq="W")
    ours_clv = ours_gg.customer_lifetime_value(ours_bg, x, t_x, age, money, horizon=12, discount_rate=0.01, time_unit="W")
    np.testing.assert_allclose(ours_clv, theirs_clv.to_numpy(), rtol=1e-5)
    assert ours_clv.sum() == pytest.approx(theirs_clv.sum(), rel=1e-6)


def test_first_customers_hand_checked(fitted):
    """Customer 1 of CDNOW (x=2, t_x=30.43, T=38.86, zbar=22.35): figures from the closed forms."""
    purchase, spend = fitted
    assert purchase.probability_alive([2], [30.43], [38.86])[0] == pytest.approx(0.7266, abs=1e-4)
    assert purchase.expected_purchases(39, [2], [30.43], [38.86])[0] == pytest.approx(1.2260, abs=1e-3)
    # (p v + p x zbar) / (p x + q - 1)
    p, q, v = (spend.params_[k] for k in "pqv")
    assert spend.expected_spend([2], [22.35])[0] == pytest.approx((p * v + p * 2 * 22.35) / (p * 2 + q - 1))
    assert spend.expected_spend([0], [0.0])[0] == pytest.approx(p * v / (q - 1))


def test_predict_customers_frame(cdnow, fitted):
    frame = predict_customers(cdnow, *fitted, horizon=12, discount_rate=0.0, time_unit="W", id_column="ID")
    assert list(frame.columns) == ["ID", "expected_purchases", "p_alive", "expected_spend", "clv"]
    assert frame["ID"].tolist() == cdnow["ID"].tolist()
    # undiscounted at margin 1: CLV is expected spend times expected purchases over 12 months
    np.testing.assert_allclose(frame["clv"], frame["expected_spend"] * frame["expected_purchases"], rtol=1e-10)
