"""Customer lifetime value: the BG/NBD purchase model, the Gamma-Gamma spend model and their DCF value.

Both models are scikit-learn estimators fitted by maximum likelihood on the RFM summary of
:mod:`spillover.predict.rfm` (identical customers collapsed into weights, L-BFGS-B on log-parameters,
analytic gradients, standard errors from the observed information). Their parameters match the
published CDNOW estimates and their predictions match the ``lifetimes`` package (see
``tests/predict``). References:

- [FHL05] Fader, Hardie & Lee (2005), "'Counting Your Customers' the Easy Way: An Alternative to the
  Pareto/NBD Model", Marketing Science 24(2), 275-284.
- [FHL08] Fader, Hardie & Lee (2008), "Computing P(alive) Using the BG/NBD Model", note.
- [FHL05b] Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base
  Analysis", Journal of Marketing Research 42(4), 415-430.
- [FH13] Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value", note.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import digamma, expit, gammaln, hyp2f1
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from spillover.errors import SpilloverInputError
from spillover.predict.mle import collapse, maximise
from spillover.predict.rfm import TIME_UNITS, check_rfm, rfm_arrays

__all__ = ["BetaGeoModel", "GammaGammaModel", "PERIODS_PER_MONTH", "predict_customers"]

# periods in a month for the discounted-cash-flow sum; the values lifetimes uses, so CLVs agree
PERIODS_PER_MONTH = {"D": 30.0, "W": 4.345}


def _columns(X: Any, names: tuple[str, ...], where: str) -> tuple[np.ndarray, ...]:
    """The named columns of a DataFrame, or of a 2-D array in that order, checked against the contract."""
    if isinstance(X, pd.DataFrame):
        return check_rfm(X, columns=names, where=where)
    array = np.asarray(X, dtype=float)
    if array.ndim != 2 or array.shape[1] != len(names):
        raise SpilloverInputError(
            f"{where}: expected a DataFrame with columns {', '.join(names)} or an array of shape "
            f"(n_customers, {len(names)}), got shape {array.shape}"
        )
    return tuple(a for a in rfm_arrays(*array.T, where=where) if a is not None)


def _weights(sample_weight: Any, n: int, where: str) -> np.ndarray | None:
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=float)
    if weights.shape != (n,) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise SpilloverInputError(
            f"{where}: sample_weight must hold {n:,} finite, non-negative numbers (one per customer)"
        )
    return weights


def _named(names: tuple[str, ...], values: np.ndarray) -> dict[str, float]:
    return {name: float(value) for name, value in zip(names, values, strict=True)}


def _purchase_inputs(
    X: Any, sample_weight: Any, *, collapse_rows: bool, model: str
) -> tuple[tuple[np.ndarray, ...], np.ndarray, float]:
    """``(frequency, recency, T)``, their weights (collapsed if asked) and the mean purchase rate,
    checked for what a repeat-purchase model needs: at least one customer with a repeat purchase."""
    where = f"{model} fit"
    columns = _columns(X, ("frequency", "recency", "T"), where)
    weights = _weights(sample_weight, len(columns[0]), where)
    if collapse_rows:
        columns, weights = collapse(columns, weights)
    elif weights is None:
        weights = np.ones(len(columns[0]))
    x, _, age = columns
    if not np.any((x > 0) & (weights > 0)):
        raise SpilloverInputError(
            f"{where}: no customer has a repeat purchase (frequency is 0 everywhere); the model "
            "cannot tell purchase rates from churn. Use a longer window or check the summary."
        )
    rate = float(weights @ x) / max(float(weights @ age), 1e-12)
    return columns, weights, rate


def _store_fit(model: Any, result: Any, weights: np.ndarray) -> Any:
    """Set a purchase model's learned attributes from its maximum-likelihood ``result``."""
    model.params_ = _named(model.param_names, result.params)
    model.covariance_ = result.covariance
    model.standard_errors_ = _named(model.param_names, np.sqrt(np.diag(result.covariance)))
    model.log_likelihood_ = result.log_likelihood
    model.n_customers_ = float(weights.sum())
    model.n_unique_ = int(len(weights))
    model.converged_ = result.converged
    model.n_iter_ = result.iterations
    return model


# --------------------------------------------------------------------------------------------------
# BG/NBD


@dataclass(frozen=True)
class _PurchaseData:
    """BG/NBD inputs prepared once per fit: rows, weights, and per distinct frequency their total weight.

    Terms of the likelihood that depend on x alone (gamma and digamma functions) are evaluated once
    per distinct x and weighted by ``x_weight``: a few hundred values instead of one per row.
    """

    x: np.ndarray
    recency: np.ndarray
    age: np.ndarray
    weights: np.ndarray
    repeat: np.ndarray
    distinct_x: np.ndarray
    x_weight: np.ndarray
    x_index: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, recency: np.ndarray, age: np.ndarray, weights: np.ndarray) -> _PurchaseData:
        distinct_x, x_index = np.unique(x, return_inverse=True)
        return cls(
            x=x, recency=recency, age=age, weights=weights, repeat=x > 0, distinct_x=distinct_x,
            x_weight=np.bincount(x_index, weights=weights, minlength=len(distinct_x)), x_index=x_index,
        )


def _bgnbd_log_likelihood(params: np.ndarray, data: _PurchaseData) -> tuple[float, np.ndarray]:
    """Weighted BG/NBD log-likelihood [FHL05, eq. 6] and its gradient in (r, alpha, a, b).

    ln L = ln A1 + ln A2 + ln(A3 + [x > 0] A4), with ln(A3 + A4) by log-sum-exp so that customers with
    many purchases do not underflow. s3, s4 (summing to 1) are the shares of A3 and A4 in that sum:
    each term's derivative enters the gradient weighted by its share.
    """
    r, alpha, a, b = params
    x, t_x, age, weights, repeat = data.x, data.recency, data.age, data.weights, data.repeat
    ux, uw = data.distinct_x, data.x_weight
    total = uw.sum()
    inverse_b_x_1 = np.zeros_like(ux)
    inverse_b_x_1[ux > 0] = 1.0 / (b + ux[ux > 0] - 1.0)

    log_alpha_age = np.log(alpha + age)
    log_alpha_recency = np.log(alpha + t_x)
    log_a3 = -(r + x) * log_alpha_age
    log_a4 = np.full_like(x, -np.inf)
    log_a4[repeat] = (
        np.log(a) + np.log(inverse_b_x_1[data.x_index[repeat]]) - (r + x[repeat]) * log_alpha_recency[repeat]
    )
    log_mix = np.logaddexp(log_a3, log_a4)
    share_a3 = np.exp(log_a3 - log_mix)
    share_a4 = np.exp(log_a4 - log_mix)
    weighted_a3 = weights * share_a3
    weighted_a4 = weights * share_a4

    value = (
        weights @ log_mix
        + uw @ (gammaln(r + ux) + gammaln(b + ux) - gammaln(a + b + ux))
        + total * (r * np.log(alpha) - gammaln(r) + gammaln(a + b) - gammaln(b))
    )
    d_r = (
        uw @ digamma(r + ux) - weighted_a3 @ log_alpha_age - weighted_a4 @ log_alpha_recency
        + total * (np.log(alpha) - digamma(r))
    )
    d_alpha = total * r / alpha - (weighted_a3 / (alpha + age) + weighted_a4 / (alpha + t_x)) @ (r + x)
    digamma_abx = digamma(a + b + ux)
    d_a = -(uw @ digamma_abx) + weighted_a4.sum() / a + total * digamma(a + b)
    d_b = (
        uw @ (digamma(b + ux) - digamma_abx) - weighted_a4 @ inverse_b_x_1[data.x_index]
        + total * (digamma(a + b) - digamma(b))
    )
    return float(value), np.array([d_r, d_alpha, d_a, d_b])


class BetaGeoModel(BaseEstimator):
    """The BG/NBD model of repeat purchasing [FHL05].

    While active, a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha); after each
    purchase they become inactive with probability p ~ Beta(a, b). Fitted by maximum likelihood on
    ``frequency`` (repeat purchases x), ``recency`` (t_x) and ``T``, in periods since the first
    purchase (see :func:`spillover.predict.rfm.rfm_summary`).

    Parameters
    ----------
    collapse:
        Fold customers with identical (frequency, recency, T) into one weighted row before fitting
        (same estimates, far less work on large populations).
    tol:
        Tolerance on the mean log-likelihood per customer (L-BFGS-B ``ftol``).
    max_iter:
        Iteration cap of the optimiser.

    Attributes
    ----------
    params_ : dict
        ``r``, ``alpha``, ``a``, ``b``.
    standard_errors_ : dict
        Their asymptotic standard errors (square roots of the diagonal of ``covariance_``).
    covariance_ : ndarray of shape (4, 4)
        Inverse observed information (numerical Hessian of the negative log-likelihood).
    log_likelihood_ : float
        Maximised log-likelihood (sum over customers).
    n_customers_ : float
        Customers fitted (sum of weights); ``n_unique_`` the distinct rows the likelihood was evaluated on.
    converged_ : bool
        Whether the optimiser converged with every parameter inside its range; ``n_iter_`` its iterations.

    Examples
    --------
    >>> import pandas as pd
    >>> summary = pd.DataFrame({"frequency": [0, 2, 5, 1], "recency": [0, 20, 30, 4], "T": [40, 38, 35, 30]})
    >>> model = BetaGeoModel().fit(summary)
    >>> sorted(model.params_)
    ['a', 'alpha', 'b', 'r']
    """

    param_names = ("r", "alpha", "a", "b")

    def __init__(self, *, collapse: bool = True, tol: float = 1e-12, max_iter: int = 2000):
        self.collapse = collapse
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X: Any, y: None = None, sample_weight: Any = None) -> BetaGeoModel:
        """Fit to an RFM summary: a DataFrame with ``frequency, recency, T`` (or an (n, 3) array)."""
        columns, weights, rate = _purchase_inputs(X, sample_weight, collapse_rows=self.collapse, model="BG/NBD")
        initial = np.array([1.0, 1.0 / max(rate, 1e-6), 0.5, 2.0])
        result = maximise(
            _bgnbd_log_likelihood, initial, _PurchaseData.of(*columns, weights),
            total_weight=float(weights.sum()), names=self.param_names, model="BG/NBD",
            tol=self.tol, max_iter=self.max_iter,
        )
        return _store_fit(self, result, weights)

    def _params(self) -> tuple[float, float, float, float]:
        check_is_fitted(self, "params_")
        return tuple(self.params_[name] for name in self.param_names)  # type: ignore[return-value]

    def _log_odds_dead(self, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
        """ln of [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x); -inf for x = 0 [FHL08]."""
        r, alpha, a, b = self._params()
        out = np.full_like(x, -np.inf)
        repeat = x > 0
        xr = x[repeat]
        out[repeat] = (
            np.log(a) - np.log(b + xr - 1)
            + (r + xr) * (np.log(alpha + age[repeat]) - np.log(alpha + t_x[repeat]))
        )
        return out

    def probability_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(still active at T | x, t_x, T) [FHL08, the Bayes step on their eq. 1; FHL05, eq. 3].

        = 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)): a customer who never repurchased
        cannot have dropped out (in the BG/NBD, drop-out follows a purchase), so this is 1 for x = 0.
        """
        self._params()
        x, t_x, age, _ = rfm_arrays(frequency, recency, T, where="BG/NBD probability_alive")
        return expit(-self._log_odds_dead(x, t_x, age))

    def expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """E[purchases in (T, T+t] | x, t_x, T], the conditional expectation [FHL05, eq. 10].

        (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
        * P(alive). ``t`` is a scalar or one horizon per customer, in the periods of ``T``.
        """
        r, alpha, a, b = self._params()
        x, t_x, age, _ = rfm_arrays(frequency, recency, T, where="BG/NBD expected_purchases")
        horizon = np.broadcast_to(np.asarray(t, dtype=float), x.shape)
        if not np.all(np.isfinite(horizon)) or np.any(horizon < 0):
            raise SpilloverInputError("BG/NBD expected_purchases: t must be finite and >= 0 (periods ahead)")
        return self._expected_purchases(horizon, x, t_x, age)

    def _expected_purchases(self, t: np.ndarray, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
        # ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; c; z) underflows times overflows for frequent
        # buyers (x in the hundreds); Euler's transformation 2F1(A, B; C; z) = (1-z)^(C-A-B)
        # 2F1(C-A, C-B; C; z) turns it into (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose
        # parameters no longer grow with x (the #NUM! problem of Fader & Hardie's 2013 note).
        r, alpha, a, b = self._params()
        log_one_minus_z = np.log(alpha + age) - np.log(alpha + age + t)
        with np.errstate(over="ignore", invalid="ignore"):
            tail = np.exp((a - 1) * log_one_minus_z) * _hypergeometric(
                a + b - 1 - r, a - 1, a + b + x - 1, t / (alpha + age + t)
            )
            expected = (a + b + x - 1) / (a - 1) * (1 - tail)
        failed = ~np.isfinite(expected)
        if failed.any():
            # Both powers still overflow when a and b are huge: the fit ran to the edge because the
            # data show no spread in the drop-out probability p, so Beta(a, b + x) is all but a point
            # mass at p = a / (a + b + x). Then E[Y(t)] = E[1/p] (1 - ((alpha+T)/(alpha+T+p t))^(r+x)),
            # exact in the limit and within 1/a of the full expression (0.1% at a = 1,000).
            p = a / (a + b + x[failed])
            ratio = (alpha + age[failed]) / (alpha + age[failed] + p * t[failed])
            expected[failed] = (a + b + x[failed] - 1) / (a - 1) * -np.expm1((r + x[failed]) * np.log(ratio))
        return expected * expit(-self._log_odds_dead(x, t_x, age))


def _hypergeometric(A: float, B: float, C: np.ndarray, z: np.ndarray, max_terms: int = 20_000) -> np.ndarray:
    """Gauss's 2F1(A, B; C; z) for 0 <= z < 1: SciPy's, and the power series where SciPy fails.

    SciPy returns inf/NaN when C - A - B is (close to) an integer and z is near 1; those rows are
    summed term by term, which converges quickly there because C is large.
    """
    values = hyp2f1(A, B, C, z)
    failed = ~np.isfinite(values)
    if failed.any():
        c, zz = C[failed], z[failed]
        term = np.ones_like(zz)
        total = np.ones_like(zz)
        for k in range(max_terms):
            term = term * (A + k) * (B + k) / ((c + k) * (k + 1)) * zz
            total = total + term
            if np.all(np.abs(term) <= 1e-16 * np.abs(total)) or not np.isfinite(total).any():
                break
        values[failed] = total
    return values


# --------------------------------------------------------------------------------------------------
# Gamma-Gamma


@dataclass(frozen=True)
class _SpendData:
    """Gamma-Gamma inputs prepared once per fit (customers with x > 0): rows, weights, the sums that
    do not depend on the parameters, and per distinct frequency its total weight."""

    x: np.ndarray
    spend: np.ndarray
    weights: np.ndarray
    distinct_x: np.ndarray
    x_weight: np.ndarray
    sum_x_log_xz: float
    sum_log_z: float

    @classmethod
    def of(cls, x: np.ndarray, spend: np.ndarray, weights: np.ndarray) -> _SpendData:
        distinct_x, x_index = np.unique(x, return_inverse=True)
        return cls(
            x=x, spend=spend, weights=weights, distinct_x=distinct_x,
            x_weight=np.bincount(x_index, weights=weights, minlength=len(distinct_x)),
            sum_x_log_xz=float(weights @ (x * (np.log(x) + np.log(spend)))),
            sum_log_z=float(weights @ np.log(spend)),
        )


def _gamma_gamma_log_likelihood(params: np.ndarray, data: _SpendData) -> tuple[float, np.ndarray]:
    """Weighted Gamma-Gamma log-likelihood of mean spends and its gradient in (p, q, v).

    The marginal density of a customer's mean spend z over x purchases [FH13; FHL05b, appendix]:
    f(z | p, q, v; x) = Gamma(px+q) / (Gamma(px) Gamma(q)) * v^q x^(px) z^(px-1) / (v + x z)^(px+q).
    """
    p, q, v = params
    x, weights, ux, uw = data.x, data.weights, data.distinct_x, data.x_weight
    total = uw.sum()
    log_v_xz = np.log(v + x * data.spend)
    pux = p * ux
    value = (
        uw @ (gammaln(pux + q) - gammaln(pux))
        + p * data.sum_x_log_xz - data.sum_log_z
        - weights @ ((p * x + q) * log_v_xz)
        + total * (q * np.log(v) - gammaln(q))
    )
    psi = digamma(pux + q)
    d_p = (uw * ux) @ (psi - digamma(pux)) + data.sum_x_log_xz - (weights * x) @ log_v_xz
    d_q = uw @ psi - weights @ log_v_xz + total * (np.log(v) - digamma(q))
    d_v = total * q / v - weights @ ((p * x + q) / (v + x * data.spend))
    return float(value), np.array([d_p, d_q, d_v])


class GammaGammaModel(BaseEstimator):
    """The Gamma-Gamma model of spend per transaction [FHL05b; FH13].

    Each purchase of a customer is Gamma(p, nu) distributed; nu varies across customers as
    Gamma(q, v). Fitted on ``frequency`` (x) and ``monetary_value`` (the mean of the x repeat
    purchases) of customers with ``frequency > 0``; rows with ``frequency == 0`` carry no spend
    information and are skipped. The model assumes spend is independent of purchase frequency:
    ``frequency_spend_correlation_`` reports the Pearson correlation to check it.

    Parameters
    ----------
    collapse, tol, max_iter:
        As in :class:`BetaGeoModel`.

    Attributes
    ----------
    params_ : dict
        ``p``, ``q``, ``v``; ``standard_errors_``, ``covariance_``, ``log_likelihood_``,
        ``n_customers_``, ``n_unique_``, ``converged_``, ``n_iter_`` as in :class:`BetaGeoModel`.
    frequency_spend_correlation_ : float
        Correlation of frequency and monetary value among the fitted customers (near 0 is good).
    """

    param_names = ("p", "q", "v")

    def __init__(self, *, collapse: bool = True, tol: float = 1e-12, max_iter: int = 2000):
        self.collapse = collapse
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X: Any, y: None = None, sample_weight: Any = None) -> GammaGammaModel:
        """Fit to a DataFrame with ``frequency`` and ``monetary_value`` (or an (n, 2) array)."""
        x, z = _columns(X, ("frequency", "monetary_value"), "Gamma-Gamma fit")
        weights = _weights(sample_weight, len(x), "Gamma-Gamma fit")
        repeat = x > 0
        if not repeat.any():
            raise SpilloverInputError(
                "Gamma-Gamma fit: no customer has frequency > 0; the spend model needs repeat purchases"
            )
        columns = (x[repeat], z[repeat])
        weights = weights[repeat] if weights is not None else None
        self.frequency_spend_correlation_ = (
            float(np.corrcoef(columns[0], columns[1])[0, 1])
            if len(columns[0]) > 1 and np.ptp(columns[0]) > 0 and np.ptp(columns[1]) > 0
            else float("nan")
        )
        if self.collapse:
            columns, weights = collapse(columns, weights)
        elif weights is None:
            weights = np.ones(len(columns[0]))
        mean_spend = float(weights @ columns[1]) / float(weights.sum())
        result = maximise(
            _gamma_gamma_log_likelihood, np.array([1.0, 2.0, mean_spend]), _SpendData.of(*columns, weights),
            total_weight=float(weights.sum()), names=self.param_names, model="Gamma-Gamma",
            tol=self.tol, max_iter=self.max_iter,
        )
        self.params_ = _named(self.param_names, result.params)
        self.covariance_ = result.covariance
        self.standard_errors_ = _named(self.param_names, np.sqrt(np.diag(result.covariance)))
        self.log_likelihood_ = result.log_likelihood
        self.n_customers_ = float(weights.sum())
        self.n_unique_ = int(len(columns[0]))
        self.converged_ = result.converged
        self.n_iter_ = result.iterations
        return self

    def expected_spend(self, frequency: Any, monetary_value: Any) -> np.ndarray:
        """E[spend per purchase | x, mean spend m] [FHL05b, eq. 5; FH13].

        = (q-1)/(px+q-1) * pv/(q-1) + px/(px+q-1) * m: a weighted average of the population mean
        pv/(q-1) and the customer's own mean, with more weight on the latter the more purchases it
        rests on. Customers with x = 0 get the population mean.
        """
        check_is_fitted(self, "params_")
        p, q, v = (self.params_[name] for name in self.param_names)
        if q <= 1:
            raise SpilloverInputError(
                f"Gamma-Gamma: q = {q:.3g} <= 1, so the population mean spend is infinite; the model "
                "does not describe this data (look for extreme spends)"
            )
        x, _, _, m = rfm_arrays(frequency, None, None, monetary_value, where="Gamma-Gamma expected_spend")
        m = np.where(x > 0, m, 0.0)
        return (p * v + p * x * m) / (p * x + q - 1)

    def customer_lifetime_value(
        self,
        purchase_model: BetaGeoModel | Any,
        frequency: Any,
        recency: Any,
        T: Any,
        monetary_value: Any,
        *,
        horizon: int = 12,
        discount_rate: float = 0.01,
        margin: float = 1.0,
        time_unit: str = "W",
    ) -> np.ndarray:
        """Discounted value of each customer's purchases over the next ``horizon`` months.

        CLV = sum over months k = 1..horizon of margin * E[spend] * (E[Y(k f)] - E[Y((k-1) f)]) / (1+d)^k,
        with E[Y(t)] the purchase model's conditional expectation (BG/NBD or Pareto/NBD), E[spend] from
        :meth:`expected_spend`, f periods per month (30 days or 4.345 weeks) and d the monthly
        discount rate: the discounted-cash-flow sum of ``lifetimes``' ``customer_lifetime_value``,
        times ``margin`` (the share of spend that is contribution margin; 1 gives revenue).
        """
        check_is_fitted(self, "params_")
        if time_unit not in TIME_UNITS:
            raise SpilloverInputError(f"time_unit {time_unit!r} is not supported; use 'D' (days) or 'W' (weeks)")
        if not (isinstance(horizon, (int, np.integer)) and horizon >= 1):
            raise SpilloverInputError(f"horizon must be a whole number of months >= 1, got {horizon!r}")
        if not (np.isfinite(discount_rate) and discount_rate > -1):
            raise SpilloverInputError(f"discount_rate must be a monthly rate > -1, got {discount_rate!r}")
        if not (np.isfinite(margin) and 0 < margin <= 1):
            raise SpilloverInputError(f"margin must be a share of spend in (0, 1], got {margin!r}")
        x, t_x, age, m = rfm_arrays(frequency, recency, T, monetary_value, where="customer_lifetime_value")
        spend = self.expected_spend(x, m) * margin
        check_is_fitted(purchase_model, "params_")
        per_month = PERIODS_PER_MONTH[time_unit]
        value = np.zeros_like(x)
        previous = np.zeros_like(x)
        for month in range(1, horizon + 1):
            cumulative = purchase_model._expected_purchases(np.full_like(x, month * per_month), x, t_x, age)
            value += spend * (cumulative - previous) / (1 + discount_rate) ** month
            previous = cumulative
        return value


# --------------------------------------------------------------------------------------------------
# per-customer predictions


def predict_customers(
    summary: pd.DataFrame,
    purchase_model: BetaGeoModel | Any,
    spend_model: GammaGammaModel | None = None,
    *,
    horizon: int = 12,
    discount_rate: float = 0.01,
    margin: float = 1.0,
    time_unit: str = "W",
    id_column: str | None = None,
    where: str = "RFM summary",
) -> pd.DataFrame:
    """One row per customer: ``expected_purchases`` over the next ``horizon`` months, ``p_alive``, and
    with a spend model ``expected_spend`` and ``clv`` (see :meth:`GammaGammaModel.customer_lifetime_value`).

    ``id_column``, when given, is carried through as the first column.
    """
    if time_unit not in TIME_UNITS:
        raise SpilloverInputError(f"time_unit {time_unit!r} is not supported; use 'D' (days) or 'W' (weeks)")
    names = ("frequency", "recency", "T") + (("monetary_value",) if spend_model is not None else ())
    arrays = check_rfm(summary, columns=names, where=where)
    x, t_x, age = arrays[:3]
    out = pd.DataFrame(index=range(len(x)))
    if id_column is not None:
        out[id_column] = summary[id_column].to_numpy()
    periods = horizon * PERIODS_PER_MONTH[time_unit]
    out["expected_purchases"] = purchase_model.expected_purchases(periods, x, t_x, age)
    out["p_alive"] = purchase_model.probability_alive(x, t_x, age)
    if spend_model is not None:
        out["expected_spend"] = spend_model.expected_spend(x, arrays[3])
        out["clv"] = spend_model.customer_lifetime_value(
            purchase_model, x, t_x, age, arrays[3],
            horizon=horizon, discount_rate=discount_rate, margin=margin, time_unit=time_unit,
        )
    return out
