"""Maximum-likelihood fitting shared by the CLV models.

Three pieces: :func:`collapse` folds customers with identical inputs into one weighted row (a
population of millions has only thousands of distinct ``(frequency, recency, T)`` triples, so the
likelihood is evaluated once per triple); :func:`maximise` runs L-BFGS-B on log-parameters with an
analytic gradient; the covariance of the estimates is the inverse of the observed information (the
Hessian of the negative log-likelihood at the optimum, by central differences of that gradient).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

__all__ = ["MaximumLikelihood", "collapse", "maximise", "with_numerical_gradient"]

# log-parameters stay inside exp(-30)..exp(30): far beyond any sensible estimate, and no overflow
LOG_BOUND = 30.0

# LogLikelihood(params, data) -> (the weighted sum of the customers' log-likelihoods, its gradient in
# params); ``data`` is whatever the model prepared once before the search (columns, weights, ...)
LogLikelihood = Callable[[np.ndarray, Any], tuple[float, np.ndarray]]


def collapse(
    columns: tuple[np.ndarray, ...], weights: np.ndarray | None = None
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Fold rows that agree on every column into one row whose weight is the sum of theirs.

    The log-likelihood of the collapsed rows, each multiplied by its weight, equals the sum over the
    original rows, so the estimates, their covariance and the log-likelihood are unchanged. Rows are
    grouped by hashing (``pandas.factorize``), in order of first appearance; zero-weight groups go.
    """
    codes = [pd.factorize(column)[0] for column in columns]
    key = codes[0].astype(np.int64)
    for code in codes[1:]:
        size = int(code.max()) + 1
        if (int(key.max()) + 1) * size >= 2**62:  # the combined key would overflow: renumber it first
            key = pd.factorize(key)[0].astype(np.int64)
        key = key * size + code
    group, _ = pd.factorize(key)
    n_groups = int(group.max()) + 1
    first = np.empty(n_groups, dtype=np.int64)
    first[group[::-1]] = np.arange(len(group))[::-1]
    row_weights = None if weights is None else np.asarray(weights, dtype=float)
    folded = np.bincount(group, weights=row_weights, minlength=n_groups).astype(float)
    keep = folded > 0
    return tuple(np.asarray(column)[first[keep]] for column in columns), folded[keep]


@dataclass(frozen=True)
class MaximumLikelihood:
    """The outcome of :func:`maximise`."""

    params: np.ndarray
    covariance: np.ndarray
    log_likelihood: float
    converged: bool
    iterations: int
    message: str


def _observed_information(log_likelihood: LogLikelihood, params: np.ndarray, data: Any) -> np.ndarray:
    """Hessian of the negative log-likelihood in the natural parameters, at ``params``.

    Differencing is done on the log scale (relative steps suit parameters of any magnitude) and
    mapped back exactly: with eta = log(theta), d2l/deta2 = D H D + diag(theta * g), D = diag(theta).
    """
    eta = np.log(params)
    step = 1e-5
    size = len(params)
    hessian_eta = np.empty((size, size))
    for j in range(size):
        shift = np.zeros(size)
        shift[j] = step
        _, up = log_likelihood(np.exp(eta + shift), data)
        _, down = log_likelihood(np.exp(eta - shift), data)
        hessian_eta[:, j] = (up * np.exp(eta + shift) - down * np.exp(eta - shift)) / (2 * step)
    hessian_eta = (hessian_eta + hessian_eta.T) / 2
    _, gradient = log_likelihood(params, data)
    hessian = (hessian_eta - np.diag(params * gradient)) / np.outer(params, params)
    return -hessian


def maximise(
    log_likelihood: LogLikelihood,
    initial: np.ndarray,
    data: Any,
    *,
    total_weight: float,
    names: tuple[str, ...],
    model: str,
    tol: float,
    max_iter: int,
) -> MaximumLikelihood:
    """Maximise ``log_likelihood`` over positive parameters with L-BFGS-B on their logarithms.

    The objective is the mean log-likelihood per customer (weights summed), which keeps the
    tolerance meaningful whatever the population size. Warns (``ConvergenceWarning``) when the
    optimiser stops early, a parameter runs to its bound, or the information matrix is singular;
    standard errors are then NaN where they cannot be trusted. ``total_weight`` is the number of
    customers (the sum of the weights).
    """

    def objective(eta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.exp(eta)
        value, gradient = log_likelihood(theta, data)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(eta)
        return -value / total_weight, -gradient * theta / total_weight

    # the likelihoods are weighted sums (vector dot products): a multi-threaded BLAS gains nothing on
    # them and, on a busy machine, makes each one ten times slower
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), threadpool_limits(1, user_api="blas"):
        result = minimize(
            objective,
            np.log(initial),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-LOG_BOUND, LOG_BOUND)] * len(initial),
            options={"maxiter": max_iter, "ftol": tol, "gtol": tol * 1e-2, "maxcor": 20},
        )
    params = np.exp(result.x)
    converged = bool(result.success)
    at_bound = [name for name, eta in zip(names, result.x, strict=True) if abs(eta) > LOG_BOUND - 1e-3]
    if not converged:
        warnings.warn(
            f"{model}: the optimiser stopped before converging ({result.message}); the estimates may be "
            "off. Check the input, or raise max_iter.",
            ConvergenceWarning,
            stacklevel=3,
        )
    if at_bound:
        converged = False
        warnings.warn(
            f"{model}: parameter(s) {', '.join(at_bound)} ran to the edge of the search range; the data "
            "do not identify them (too few repeat buyers, or no sign of churn).",
            ConvergenceWarning,
            stacklevel=3,
        )
    with threadpool_limits(1, user_api="blas"):
        information = _observed_information(log_likelihood, params, data)
    try:
        covariance = np.linalg.inv(information)
        if np.any(np.diag(covariance) <= 0) or not np.all(np.isfinite(covariance)):
            raise np.linalg.LinAlgError("information matrix is not positive definite")
    except np.linalg.LinAlgError:
        covariance = np.full((len(params), len(params)), np.nan)
        warnings.warn(
            f"{model}: the information matrix at the estimate is singular; standard errors are NaN.",
            ConvergenceWarning,
            stacklevel=3,
        )
    value, _ = log_likelihood(params, data)
    return MaximumLikelihood(
        params=params,
        covariance=covariance,
        log_likelihood=float(value),
        converged=converged,
        iterations=int(result.nit),
        message=str(result.message),
    )


def with_numerical_gradient(value: Callable[[np.ndarray, Any], float], step: float = 1e-6) -> LogLikelihood:
    """A log-likelihood with gradient from one whose gradient has no practical closed form.

    Central differences on the log scale (relative steps), mapped to the natural parameters.
    """

    def log_likelihood(params: np.ndarray, data: Any) -> tuple[float, np.ndarray]:
        eta = np.log(params)
        gradient = np.empty(len(params))
        for j in range(len(params)):
            shift = np.zeros(len(params))
            shift[j] = step
            gradient[j] = (value(np.exp(eta + shift), data) - value(np.exp(eta - shift), data)) / (2 * step)
        return value(params, data), gradient / params

    return log_likelihood
