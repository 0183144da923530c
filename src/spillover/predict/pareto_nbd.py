"""The Pareto/NBD purchase model: an alternative to BG/NBD in which drop-out can happen at any time.

A scikit-learn estimator with the interface of :class:`spillover.predict.clv.BetaGeoModel`
(``expected_purchases``, ``probability_alive``; usable by ``GammaGammaModel.customer_lifetime_value``),
fitted by maximum likelihood. Its likelihood involves Gauss's hypergeometric function in every
parameter, so the gradient is taken by central differences. References:

- [SMC87] Schmittlein, Morrison & Colombo (1987), "Counting Your Customers: Who Are They and What
  Will They Do Next?", Management Science 33(1), 1-24.
- [FH05] Fader & Hardie (2005), "A Note on Deriving the Pareto/NBD Model and Related Expressions", note.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, gammaln, hyp2f1
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from spillover.errors import SpilloverInputError
from spillover.predict.clv import _purchase_inputs, _store_fit
from spillover.predict.mle import maximise, with_numerical_gradient
from spillover.predict.rfm import rfm_arrays

__all__ = ["ParetoNBDModel"]


@dataclass(frozen=True)
class _Rows:
    x: np.ndarray
    recency: np.ndarray
    age: np.ndarray
    weights: np.ndarray


def _log_a0(r: float, alpha: float, s: float, beta: float, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """ln A0 [FH05, eqs. 19-20]: the difference of two 2F1 terms, at t_x and at T.

    A0 = 2F1(r+s+x, c; r+s+x+1; |alpha-beta|/(m+t_x)) / (m+t_x)^(r+s+x) - (the same at T), with
    m = max(alpha, beta) and c = s+1 when alpha >= beta, r+x otherwise. The difference is taken on the
    log scale with expm1, as it vanishes when t_x = T.
    """
    top = max(alpha, beta)
    second = s + 1 if alpha >= beta else r + x
    rsx = r + s + x
    gap = abs(alpha - beta)
    with np.errstate(divide="ignore"):
        at_recency = np.log(hyp2f1(rsx, second, rsx + 1, gap / (top + t_x))) - rsx * np.log(top + t_x)
        at_age = np.log(hyp2f1(rsx, second, rsx + 1, gap / (top + age))) - rsx * np.log(top + age)
        return at_recency + np.log(-np.expm1(at_age - at_recency))


def _log_odds_dead(params: tuple[float, ...], x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """ln of the ratio of 'died before T' to 'alive at T' in the likelihood [FH05, section 5]."""
    r, alpha, s, beta = params
    return (
        np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + age) + s * np.log(beta + age)
        + _log_a0(r, alpha, s, beta, x, t_x, age)
    )


def _pareto_nbd_value(params: np.ndarray, data: _Rows) -> float:
    """Weighted Pareto/NBD log-likelihood [FH05]:

    L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [1 / ((alpha+T)^(r+x) (beta+T)^s) + s/(r+s+x) A0].
    """
    r, alpha, s, beta = params
    x, age = data.x, data.age
    alive = -(r + x) * np.log(alpha + age) - s * np.log(beta + age)
    died = np.log(s) - np.log(r + s + x) + _log_a0(r, alpha, s, beta, x, data.recency, age)
    values = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + np.logaddexp(alive, died)
    return float(np.sum(data.weights * values))


class ParetoNBDModel(BaseEstimator):
    """The Pareto/NBD model of repeat purchasing [SMC87; FH05].

    While active, a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha) and stays
    active for an exponential lifetime with rate mu ~ Gamma(s, beta). Same inputs, hyperparameters
    and attributes as :class:`~spillover.predict.clv.BetaGeoModel`, with parameters ``r, alpha, s,
    beta``.
    """

    param_names = ("r", "alpha", "s", "beta")

    def __init__(self, *, collapse: bool = True, tol: float = 1e-12, max_iter: int = 2000):
        self.collapse = collapse
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X: Any, y: None = None, sample_weight: Any = None) -> ParetoNBDModel:
        """Fit to an RFM summary: a DataFrame with ``frequency, recency, T`` (or an (n, 3) array)."""
        columns, weights, rate = _purchase_inputs(X, sample_weight, collapse_rows=self.collapse, model="Pareto/NBD")
        age = columns[2]
        initial = np.array([1.0, 1.0 / max(rate, 1e-6), 1.0, float(np.average(age, weights=weights))])
        result = maximise(
            with_numerical_gradient(_pareto_nbd_value), initial, _Rows(*columns, weights),
            total_weight=float(weights.sum()), names=self.param_names, model="Pareto/NBD",
            tol=self.tol, max_iter=self.max_iter,
        )
        return _store_fit(self, result, weights)

    def _params(self) -> tuple[float, float, float, float]:
        check_is_fitted(self, "params_")
        return tuple(self.params_[name] for name in self.param_names)  # type: ignore[return-value]

    def probability_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(still active at T | x, t_x, T) [FH05, section 5.1]: the 'alive' share of the likelihood,
        1 / (1 + s/(r+s+x) (alpha+T)^(r+x) (beta+T)^s A0)."""
        params = self._params()
        x, t_x, age, _ = rfm_arrays(frequency, recency, T, where="Pareto/NBD probability_alive")
        return expit(-_log_odds_dead(params, x, t_x, age))

    def expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """E[purchases in (T, T+t] | x, t_x, T] [FH05, eq. 41; SMC87]:

        (r+x)(beta+T) / ((alpha+T)(s-1)) * [1 - ((beta+T)/(beta+T+t))^(s-1)] * P(alive).
        """
        self._params()
        x, t_x, age, _ = rfm_arrays(frequency, recency, T, where="Pareto/NBD expected_purchases")
        horizon = np.broadcast_to(np.asarray(t, dtype=float), x.shape)
        if not np.all(np.isfinite(horizon)) or np.any(horizon < 0):
            raise SpilloverInputError("Pareto/NBD expected_purchases: t must be finite and >= 0 (periods ahead)")
        return self._expected_purchases(horizon, x, t_x, age)

    def _expected_purchases(self, t: np.ndarray, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
        params = self._params()
        r, alpha, s, beta = params
        log_shrink = np.log(beta + age) - np.log(beta + age + t)
        # [1 - exp((s-1) L)] / (s-1), which tends to -L as s -> 1
        lifetime = -log_shrink if abs(s - 1) < 1e-12 else -np.expm1((s - 1) * log_shrink) / (s - 1)
        return (r + x) * (beta + age) / (alpha + age) * lifetime * expit(-_log_odds_dead(params, x, t_x, age))
