"""Cross-fitted doubly-robust (AIPW / DML) estimates of a product's downstream impact.

:class:`DownstreamImpact` estimates the ATT, E[Y(1) − Y(0) | D = 1] (or the ATE), of a binary
treatment D (bought the gateway product) on an outcome Y (downstream margin) given covariates X, with
an influence-function standard error, the naive difference beside it and the diagnostics of
:mod:`spillover.impact.diagnostics`.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from spillover.errors import SpilloverInputError
from spillover.impact import diagnostics as diag

__all__ = [
    "DownstreamImpact",
    "ImpactResult",
    "LogisticPropensity",
    "default_propensity_model",
    "default_outcome_model",
]

ESTIMANDS = ("att", "ate")
PROPENSITY_MODELS = ("boosting", "logistic")
SMALL_TABLE_ROWS = 100_000


#: Small trees (7 leaves), many rounds, stopped when a held-out fifth stops improving for 30 rounds:
#: in the known-truth simulations this had the least bias among the settings tried (larger trees
#: with early patience stopped too soon and under-fitted smooth signals; no early stopping overfitted
#: the propensities and inflated the variance). See docs/methods.md.
_BOOSTING: dict[str, Any] = dict(
    learning_rate=0.1, max_iter=500, max_leaf_nodes=7, min_samples_leaf=20, early_stopping=True,
    validation_fraction=0.2, n_iter_no_change=30,
)


def default_propensity_model(random_state: int | None = 0) -> BaseEstimator:
    """Gradient-boosted classifier for P(D = 1 | X): scikit-learn's histogram GBM (missing values
    go down their own branch), early-stopped on held-out log loss so probabilities stay calibrated."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(**_BOOSTING, random_state=random_state)


class LogisticPropensity(ClassifierMixin, BaseEstimator):
    """L2-regularised logistic regression for P(D = 1 | X) on tamed covariates: missing values
    filled with the column median (plus a missing-indicator column), every value put on a signed
    log scale (money and counts are heavy-tailed), then standardised. A scikit-learn pipeline that
    accepts ``sample_weight``.

    With a rare treatment (a few hundred buyers among tens of thousands of shoppers) its weights
    balance the covariates better than boosted trees' and keep more effective controls; on the
    synthetic ecosystem it is what passes the balance checks (docs/methods.md).
    """

    def __init__(self, C: float = 1.0, max_iter: int = 5000) -> None:
        self.C = C
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LogisticPropensity:
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer, StandardScaler

        self.pipeline_ = make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            FunctionTransformer(_signed_log),
            StandardScaler(),
            LogisticRegression(C=self.C, max_iter=self.max_iter),
        )
        self.pipeline_.fit(X, y, logisticregression__sample_weight=sample_weight)
        self.classes_ = self.pipeline_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "pipeline_")
        return self.pipeline_.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        """The more likely class (scikit-learn's classifier interface, e.g. for DoubleML)."""
        check_is_fitted(self, "pipeline_")
        return self.pipeline_.predict(X)


def _signed_log(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.log1p(np.abs(values))


def propensity_model_named(name: str, random_state: int | None = 0) -> BaseEstimator:
    """The propensity model called ``name``: "boosting" (:func:`default_propensity_model`) or
    "logistic" (:class:`LogisticPropensity`)."""
    if name == "boosting":
        return default_propensity_model(random_state)
    if name == "logistic":
        return LogisticPropensity()
    raise SpilloverInputError(f"propensity model must be one of {', '.join(PROPENSITY_MODELS)}, not {name!r}")


def default_outcome_model(random_state: int | None = 0) -> BaseEstimator:
    """Gradient-boosted regressor for E[Y | X, D = d], configured as :func:`default_propensity_model`."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(**_BOOSTING, random_state=random_state)


@dataclass(frozen=True)
class ImpactResult:
    """One downstream-impact estimate with its uncertainty, diagnostics and verdict.

    ``naive_difference`` is mean(Y | D = 1) − mean(Y | D = 0): the attribution figure, shown only
    beside the adjusted one. ``ci_low``/``ci_high`` bound the 95% normal interval.
    """

    estimand: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    n_treated: int
    n_control: int
    naive_difference: float
    diagnostics: diag.Diagnostics
    warnings: list[str]
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (non-finite numbers become ``None``)."""
        return diag.as_plain(self)


@dataclass(frozen=True)
class _Score:
    estimate: float
    se: float
    influence: np.ndarray

    @property
    def ci(self) -> tuple[float, float]:
        return self.estimate - diag.Z_95 * self.se, self.estimate + diag.Z_95 * self.se

    @property
    def p_value(self) -> float:
        if not self.se > 0:
            return float("nan")
        return float(2 * stats.norm.sf(abs(self.estimate) / self.se))


class DownstreamImpact(BaseEstimator):
    """Cross-fitted AIPW / double machine learning estimator of the ATT or ATE of a binary treatment.

    Nuisances (Chernozhukov et al. 2018, Econometrics J. 21:C1–C68, Definition 3.2 "DML2"): the propensity
    e(X) = P(D = 1 | X) and the outcome regressions m_d(X) = E[Y | X, D = d] are fitted on K − 1 folds
    and predicted on the held-out fold (folds stratified by D). Propensities are clipped to
    ``[trim, 1 − trim]``; how many were clipped is reported, never hidden.

    ATT, the "ATTE" score of Chernozhukov et al. (2018, Section 5.1; DoubleML's
    ``DoubleMLIRM(score="ATTE")``), with p = mean(D)::

        ψ_i = [D_i (Y_i − m0(X_i)) − (1 − D_i) e(X_i)/(1 − e(X_i)) (Y_i − m0(X_i))] / p,
        θ = mean(ψ),  IF_i = ψ_i − θ D_i / p,  se = sqrt(mean(IF²) / n).

    ATE, the AIPW score (Robins, Rotnitzky & Zhao 1994; Chernozhukov et al. 2018, Section 5.1)::

        ψ_i = m1 − m0 + D (Y − m1)/e − (1 − D)(Y − m0)/(1 − e),  θ = mean(ψ),  IF_i = ψ_i − θ.

    Parameters
    ----------
    estimand : {"att", "ate"}
    n_folds : int
        Cross-fitting folds K (≥ 2).
    n_repeats : int
        Cross-fit on this many independent fold splits and report the median estimate, with the
        standard error median(sqrt(se_s² + (θ_s − θ)²)) (Chernozhukov et al. 2018, Section 3.4), so
        the result depends less on one random split; costs ``n_repeats`` times the time.
    propensity_model, outcome_model : scikit-learn estimators or None
        Classifier with ``predict_proba`` and regressor; ``None`` uses gradient boosting
        (:func:`default_propensity_model`, :func:`default_outcome_model`), which handles missing
        values itself. ``propensity_model`` may also be named: "boosting" or "logistic"
        (:class:`LogisticPropensity`).
    trim : float
        Clipping bound for propensities, in (0, 0.5): above ``1 − trim`` for the ATT (a control's
        weight e/(1 − e) only explodes near 1; small propensities just weigh little), on both sides
        for the ATE.
    verdict_rules : VerdictRules or None
        Thresholds of the verdict (defaults: :class:`~spillover.impact.diagnostics.VerdictRules`).
    n_jobs : int or None
        Fold models fitted at once, each in its own process and single-threaded (joblib); -1: one per
        core. ``None``: one after another, each model single-threaded below 100,000 rows (thread
        start-up and synchronisation cost more than they save there, badly so on busy machines) and
        using the libraries' threads above. The estimate does not depend on it.
    random_state : int or None
        Seeds the folds and the default models.

    Attributes
    ----------
    result_ : ImpactResult
    propensity_ : ndarray of shape (n,)
        Cross-fitted propensities, before clipping.
    outcome_control_ : ndarray of shape (n,)
        Cross-fitted m0(X).
    influence_ : ndarray of shape (n,)
        The estimate's influence function (se = sqrt(mean(influence_²) / n)); with ``n_repeats`` > 1,
        the mean over the splits.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression, LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 2))
    >>> d = (rng.random(2000) < 1 / (1 + np.exp(-X[:, 0]))).astype(int)
    >>> y = 2.0 * d + 3.0 * X[:, 0] + rng.normal(size=2000)
    >>> model = DownstreamImpact(propensity_model=LogisticRegression(),
    ...                          outcome_model=LinearRegression()).fit(X, d, y)
    >>> result = model.result_
    >>> bool(result.ci_low < 2.0 < result.ci_high), bool(result.naive_difference > 3), result.verdict
    (True, True, 'reliable')
    """

    def __init__(
        self,
        *,
        estimand: str = "att",
        n_folds: int = 5,
        n_repeats: int = 1,
        propensity_model: BaseEstimator | None = None,
        outcome_model: BaseEstimator | None = None,
        trim: float = 0.01,
        verdict_rules: diag.VerdictRules | None = None,
        n_jobs: int | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.estimand = estimand
        self.n_folds = n_folds
        self.n_repeats = n_repeats
        self.propensity_model = propensity_model
        self.outcome_model = outcome_model
        self.trim = trim
        self.verdict_rules = verdict_rules
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ----------------------------------------------------------------------------------------------

    def fit(
        self,
        X: Any,
        treatment: Any,
        outcome: Any,
        *,
        placebo_outcome: Any = None,
        feature_names: list[str] | None = None,
        sample_weight: Any = None,
        groups: Any = None,
    ) -> DownstreamImpact:
        """Estimate the effect of ``treatment`` (0/1) on ``outcome`` adjusting for ``X``.

        ``placebo_outcome`` (optional): an outcome the treatment cannot have moved (e.g. margin in the
        period before adoption); the same estimator must find ≈ 0 on it.

        ``sample_weight`` (optional, positive): design weights, e.g. calendar weights of control rows
        or the inverse of a control subsampling rate. The nuisances are fitted with them and every
        sum of the score is weighted.

        ``groups`` (optional): a cluster label per row (e.g. ``customer_key`` when a customer
        contributes several rows). Folds then keep each cluster whole, clusters holding a treated row
        spread evenly over them (:func:`_cluster_folds`), and the standard error is cluster-robust:
        the influence function is summed within each cluster, ``se = sqrt(Σ_g (Σ_{i∈g} IF_i)²) / n``.
        """
        self._check_params()
        covariates, names = _as_matrix(X, feature_names)
        d = _as_treatment(treatment, len(covariates))
        y = _as_outcome(outcome, len(covariates), "outcome")
        placebo = None if placebo_outcome is None else _as_outcome(placebo_outcome, len(covariates), "placebo outcome")
        w = _as_weights(sample_weight, len(covariates))
        cluster = _as_groups(groups, len(covariates))
        self._weights, self._clusters = w, cluster
        n_treated, n_control = int(d.sum()), int(len(d) - d.sum())
        if min(n_treated, n_control) < self.n_folds:
            raise SpilloverInputError(
                f"{n_treated} treated and {n_control} control units: cross-fitting with n_folds={self.n_folds} "
                f"needs at least {self.n_folds} of each; add units or lower n_folds"
            )

        outcomes = [y] if placebo is None else [y, placebo]
        propensities, fits = [], []
        for repeat in range(self.n_repeats):
            seed = None if self.random_state is None else self.random_state + repeat
            folds = self._folds(covariates, d, cluster, seed)
            propensity, fitted = self._cross_fit(covariates, d, outcomes, folds, seed)
            propensities.append(propensity)
            fits.append(fitted)
        clipped = [self._clip(p) for p in propensities]
        main = _median_of_splits([self._score(d, y, e, *fit[0]) for e, fit in zip(clipped, fits)])
        placebo_result = None
        if placebo is not None:
            placebo_score = _median_of_splits([self._score(d, placebo, e, *fit[1]) for e, fit in zip(clipped, fits)])
            low, high = placebo_score.ci
            placebo_result = diag.Placebo(
                estimate=placebo_score.estimate, se=placebo_score.se, ci_low=low, ci_high=high,
                p_value=placebo_score.p_value, covers_zero=bool(low <= 0 <= high),
            )
        # Diagnostics describe the average held-out nuisance predictions over the repeats.
        propensity = np.mean(propensities, axis=0)
        control_outcome = np.mean([fit[0][0] for fit in fits], axis=0)
        clipped_mean = self._clip(propensity)

        rules = self.verdict_rules or diag.VerdictRules()
        weights = self._balancing_weights(d, clipped_mean) * (1.0 if w is None else w)
        ci_low, ci_high = main.ci
        diagnostics = diag.Diagnostics(
            overlap=diag.overlap(propensity, d, trim=self.trim, estimand=self.estimand),
            balance=diag.balance(covariates, d, weights, names, rules=rules),
            control_effective_sample_size=diag.effective_sample_size(weights[d == 0]),
            outcome_model_r2=_r_squared(y[d == 0], control_outcome[d == 0]),
            placebo=placebo_result,
            sensitivity=diag.e_value(main.estimate, ci_low, ci_high, _pooled_sd(y, d)),
            naive_difference_se=_naive_se(y, d),
            rules=rules,
        )
        warnings, verdict = diag.judge(diagnostics, estimand=self.estimand, n_treated=n_treated, n_control=n_control)
        self.propensity_ = propensity
        self.outcome_control_ = control_outcome
        self.influence_ = main.influence
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = covariates.shape[1]
        self.result_ = ImpactResult(
            estimand=self.estimand,
            estimate=main.estimate,
            se=main.se,
            ci_low=ci_low,
            ci_high=ci_high,
            p_value=main.p_value,
            n_treated=n_treated,
            n_control=n_control,
            naive_difference=_weighted_mean_difference(y, d, w),
            diagnostics=diagnostics,
            warnings=warnings,
            verdict=verdict,
        )
        return self

    def summary(self) -> dict[str, Any]:
        """The fitted result as a JSON-ready dictionary."""
        check_is_fitted(self, "result_")
        return self.result_.to_dict()

    # ----------------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        if self.estimand not in ESTIMANDS:
            raise SpilloverInputError(f"estimand must be one of {', '.join(ESTIMANDS)}, not {self.estimand!r}")
        if not (isinstance(self.n_folds, (int, np.integer)) and self.n_folds >= 2):
            raise SpilloverInputError(f"n_folds must be an integer of at least 2, not {self.n_folds!r}")
        if not (isinstance(self.n_repeats, (int, np.integer)) and self.n_repeats >= 1):
            raise SpilloverInputError(f"n_repeats must be a positive integer, not {self.n_repeats!r}")
        if not 0 < self.trim < 0.5:
            raise SpilloverInputError(f"trim must lie in (0, 0.5), not {self.trim!r}")
        if isinstance(self.propensity_model, str) and self.propensity_model not in PROPENSITY_MODELS:
            propensity_model_named(self.propensity_model)  # raises with the known names

    def _threads(self, n_rows: int) -> int | None:
        """Threads of each model when the folds are fitted one after another."""
        if self.n_jobs is None:
            return 1 if n_rows < SMALL_TABLE_ROWS else None
        return 1

    def _workers(self) -> int:
        """Processes fitting the folds' models at once."""
        if self.n_jobs is None:
            return 1
        if self.n_jobs == -1:
            import os

            return max(os.cpu_count() or 1, 1)
        return max(int(self.n_jobs), 1)

    def _folds(self, X: np.ndarray, d: np.ndarray, cluster: np.ndarray | None, seed: int | None) -> list:
        """Cross-fitting folds stratified by treatment; with clusters, each cluster kept in one fold."""
        if cluster is None:
            return list(StratifiedKFold(n_splits=self.n_folds, shuffle=True, random_state=seed).split(X, d))
        return _cluster_folds(d, cluster, self.n_folds, seed)

    def _cross_fit(
        self, X: np.ndarray, d: np.ndarray, outcomes: list[np.ndarray], folds: list, seed: int | None
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray | None]]]:
        """Held-out propensities e(X), and per outcome held-out m0(X) (and m1(X) for the ATE): every
        fold's models, fitted one after another or ``n_jobs`` at a time in separate processes."""
        if self.propensity_model is None or isinstance(self.propensity_model, str):
            propensity_template = propensity_model_named(self.propensity_model or "boosting", seed)
        else:
            propensity_template = self.propensity_model
        if not hasattr(propensity_template, "predict_proba"):
            raise SpilloverInputError(f"propensity_model {type(propensity_template).__name__} has no predict_proba")
        outcome_template = self.outcome_model if self.outcome_model is not None else default_outcome_model(seed)
        arms = (0, 1) if self.estimand == "ate" else (0,)
        # (what the prediction fills, model, training rows, target, held-out rows)
        tasks: list[tuple[tuple, BaseEstimator, np.ndarray, np.ndarray, np.ndarray]] = []
        for train, test in folds:
            tasks.append((("e",), propensity_template, train, d, test))
            for j, y in enumerate(outcomes):
                for arm in arms:
                    tasks.append((("m", j, arm), outcome_template, train[d[train] == arm], y, test))
        w = self._weights
        jobs = (
            (clone(model), X[rows], target[rows], None if w is None else w[rows], X[test], kind == ("e",))
            for kind, model, rows, target, test in tasks
        )
        workers = self._workers()
        if workers == 1:
            with threadpool_limits(self._threads(len(d))):
                predictions = [_fit_predict(*job) for job in jobs]
        else:
            from joblib import Parallel, delayed

            predictions = Parallel(n_jobs=workers)(delayed(_fit_predict)(*job, threads=1) for job in jobs)
        propensity = np.empty(len(d))
        fitted = {(j, arm): np.empty(len(d)) for j in range(len(outcomes)) for arm in arms}
        for (kind, *_, test), prediction in zip(tasks, predictions):
            if kind == ("e",):
                propensity[test] = prediction
            else:
                fitted[kind[1:]][test] = prediction
        return propensity, [(fitted[j, 0], fitted.get((j, 1))) for j in range(len(outcomes))]

    def _score(
        self, d: np.ndarray, y: np.ndarray, e: np.ndarray, m0: np.ndarray, m1: np.ndarray | None
    ) -> _Score:
        n = len(d)
        w = np.ones(n) if self._weights is None else self._weights
        if self.estimand == "att":
            share_treated = float(np.mean(w * d))
            residual = y - m0
            # e/(1-e) from clipped e stays below (1 - trim)/trim; no overflow.
            psi = w * (d * residual - (1 - d) * (e / (1.0 - e)) * residual) / share_treated
            estimate = float(psi.mean())
            influence = psi - estimate * w * d / share_treated
        else:
            assert m1 is not None
            mean_weight = float(np.mean(w))
            psi = w * (m1 - m0 + d * (y - m1) / e - (1 - d) * (y - m0) / (1.0 - e)) / mean_weight
            estimate = float(psi.mean())
            influence = psi - estimate * w / mean_weight
        if self._clusters is None:
            se = float(math.sqrt(np.mean(influence**2) / n))
        else:
            se = float(math.sqrt(np.sum(_cluster_sums(influence, self._clusters) ** 2)) / n)
        return _Score(estimate, se, influence)

    def _clip(self, propensity: np.ndarray) -> np.ndarray:
        """Propensities bounded where the estimand's weights blow up: the ATT weights controls by
        e/(1 − e), which only explodes near 1; the ATE also divides by e."""
        low = 0.0 if self.estimand == "att" else self.trim
        return np.clip(propensity, low, 1.0 - self.trim)

    def _balancing_weights(self, d: np.ndarray, e: np.ndarray) -> np.ndarray:
        """The weights the score implies: ATT treated 1, controls e/(1 − e); ATE 1/e and 1/(1 − e)."""
        if self.estimand == "att":
            return np.where(d == 1, 1.0, e / (1.0 - e))
        return np.where(d == 1, 1.0 / e, 1.0 / (1.0 - e))


def _cluster_folds(d: np.ndarray, cluster: np.ndarray, n_folds: int, seed: int | None) -> list:
    """Folds that keep each cluster (codes 0 … G − 1) whole, stratified by whether the cluster holds
    a treated row: the clusters of each kind are shuffled and dealt to the folds in turn, so every
    fold gets the same number of them, give or take one.

    A group k-fold stratified on the clusters' labels, in O(n log n); scikit-learn's
    ``StratifiedGroupKFold``, which balances row-level class shares by a greedy search over the
    clusters, took 22 s on one design of the 1M-customer benchmark (92,537 rows).
    """
    n_clusters = int(cluster.max()) + 1
    treated_cluster = np.bincount(cluster, weights=d, minlength=n_clusters) > 0
    order = np.random.default_rng(seed).permutation(n_clusters)
    order = order[np.argsort(~treated_cluster[order], kind="stable")]
    fold_of_cluster = np.empty(n_clusters, dtype=np.int64)
    fold_of_cluster[order] = np.arange(n_clusters) % n_folds
    fold = fold_of_cluster[cluster]
    return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(n_folds)]


def _fit_predict(
    model: BaseEstimator, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None, X_test: np.ndarray,
    probability: bool, threads: int | None = None,
) -> np.ndarray:
    """Fit ``model`` on (X, y) and predict ``X_test``: P(class 1) when ``probability``, else the mean;
    with ``threads``, its thread pools limited to that many."""
    with threadpool_limits(threads) if threads is not None else nullcontext():
        model.fit(X, y) if weight is None else model.fit(X, y, sample_weight=weight)
        if probability:
            return model.predict_proba(X_test)[:, list(model.classes_).index(1)]
        return model.predict(X_test)


def _median_of_splits(scores: list[_Score]) -> _Score:
    """Median aggregation over repeated splits (Chernozhukov et al. 2018, Section 3.4)."""
    if len(scores) == 1:
        return scores[0]
    estimate = float(np.median([s.estimate for s in scores]))
    se = float(np.median([math.sqrt(s.se**2 + (s.estimate - estimate) ** 2) for s in scores]))
    return _Score(estimate, se, np.mean([s.influence for s in scores], axis=0))


# --------------------------------------------------------------------------------------------------
# input checks


def _as_matrix(X: Any, feature_names: list[str] | None) -> tuple[np.ndarray, list[str]]:
    names = feature_names
    if names is None and hasattr(X, "columns"):
        names = [str(c) for c in X.columns]
    try:
        matrix = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SpilloverInputError(
            f"covariates must be numeric (encode categories first, e.g. one-hot): {exc}"
        ) from None
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise SpilloverInputError(f"covariates must be a 2-D table with at least one column, got shape {matrix.shape}")
    if np.isinf(matrix).any():
        raise SpilloverInputError("covariates contain infinite values; replace them with finite values or NaN")
    names = names or [f"x{i}" for i in range(matrix.shape[1])]
    if len(names) != matrix.shape[1]:
        raise SpilloverInputError(f"{len(names)} feature names for {matrix.shape[1]} covariate columns")
    return matrix, list(names)


def _as_treatment(treatment: Any, n: int) -> np.ndarray:
    values = np.asarray(treatment)
    if values.ndim != 1 or len(values) != n:
        raise SpilloverInputError(f"treatment must be one value per row ({n}), got shape {values.shape}")
    try:
        numeric = values.astype(np.float64)
    except (TypeError, ValueError):
        numeric = np.full(n, np.nan)
    if not np.all(np.isin(numeric, (0.0, 1.0))):
        bad = values[~np.isin(numeric, (0.0, 1.0))][:3]
        raise SpilloverInputError(
            f"treatment must be 0/1 (1 = bought the product); found {', '.join(map(repr, bad.tolist()))}"
        )
    d = numeric.astype(np.int64)
    if d.sum() == 0:
        raise SpilloverInputError("no treated units (treatment is 0 everywhere): nothing to estimate")
    if d.sum() == n:
        raise SpilloverInputError("no control units (treatment is 1 everywhere): nothing to compare with")
    return d


def _as_outcome(outcome: Any, n: int, what: str) -> np.ndarray:
    try:
        values = np.asarray(outcome, dtype=np.float64)
    except (TypeError, ValueError):
        raise SpilloverInputError(f"{what} must be numeric") from None
    if values.ndim != 1 or len(values) != n:
        raise SpilloverInputError(f"{what} must be one value per row ({n}), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise SpilloverInputError(
            f"{what} has {int((~np.isfinite(values)).sum())} missing or infinite values; drop or fill those rows"
        )
    if np.ptp(values) == 0:
        raise SpilloverInputError(f"{what} is constant ({values[0]:g} everywhere): there is no effect to estimate")
    return values


def _as_weights(sample_weight: Any, n: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise SpilloverInputError("sample_weight must be numeric") from None
    if weights.shape != (n,):
        raise SpilloverInputError(f"sample_weight must be one value per row ({n}), got shape {weights.shape}")
    if not (np.isfinite(weights).all() and (weights > 0).all()):
        raise SpilloverInputError("sample_weight must be finite and positive; drop rows with zero weight instead")
    return weights


def _as_groups(groups: Any, n: int) -> np.ndarray | None:
    if groups is None:
        return None
    labels = np.asarray(groups)
    if labels.shape != (n,):
        raise SpilloverInputError(f"groups must be one cluster label per row ({n}), got shape {labels.shape}")
    if _is_missing(labels).any():
        raise SpilloverInputError("groups has missing cluster labels; give every row a cluster (e.g. its customer_key)")
    return np.unique(labels, return_inverse=True)[1]


def _is_missing(values: np.ndarray) -> np.ndarray:
    import pandas as pd

    return np.asarray(pd.isna(values))


def _cluster_sums(values: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Sum of ``values`` within each cluster (``clusters`` are codes 0 … G − 1)."""
    return np.bincount(clusters, weights=values)


def _weighted_mean_difference(y: np.ndarray, d: np.ndarray, w: np.ndarray | None) -> float:
    if w is None:
        return float(y[d == 1].mean() - y[d == 0].mean())
    treated, control = d == 1, d == 0
    return float(np.average(y[treated], weights=w[treated]) - np.average(y[control], weights=w[control]))


def _r_squared(actual: np.ndarray, predicted: np.ndarray) -> float:
    total = float(np.sum((actual - actual.mean()) ** 2))
    return 1.0 - float(np.sum((actual - predicted) ** 2)) / total if total > 0 else float("nan")


def _pooled_sd(y: np.ndarray, d: np.ndarray) -> float:
    return float(math.sqrt((np.var(y[d == 1], ddof=1) + np.var(y[d == 0], ddof=1)) / 2.0)) if min(d.sum(), len(d) - d.sum()) > 1 else float("nan")


def _naive_se(y: np.ndarray, d: np.ndarray) -> float:
    treated, control = y[d == 1], y[d == 0]
    if min(len(treated), len(control)) < 2:
        return float("nan")
    return float(math.sqrt(treated.var(ddof=1) / len(treated) + control.var(ddof=1) / len(control)))
