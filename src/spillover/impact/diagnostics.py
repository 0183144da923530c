"""Diagnostics that can invalidate a downstream-impact estimate, and the verdict they lead to.

Overlap of the propensity scores, covariate balance before and after weighting (Austin 2009), the
effective sample size of the weighted controls, a placebo outcome, and the E-value (VanderWeele &
Ding 2017). :func:`judge` turns them into plain-sentence warnings and a ``reliable`` /
``unreliable`` verdict under explicit :class:`VerdictRules`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "VerdictRules",
    "Overlap",
    "CovariateBalance",
    "Balance",
    "Placebo",
    "Sensitivity",
    "Diagnostics",
    "overlap",
    "balance",
    "effective_sample_size",
    "propensity_auc",
    "e_value",
    "judge",
]

Z_95 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class VerdictRules:
    """Thresholds under which an estimate is called ``unreliable`` (each failure also warns).

    ``max_abs_smd``: largest |standardised mean difference| of any covariate after weighting (Austin
    2009's 0.1). ``max_share_outside_overlap``: share of the units the estimand is about (treated for
    the ATT, all for the ATE) whose propensity lies beyond the trimming bound. ``min_treated`` /
    ``min_control``: fewest units per arm, and fewest effective weighted controls. ``max_auc``: a
    cross-fitted propensity AUC at or above it means the covariates all but decide treatment.
    ``placebo_alpha``: a placebo effect significant at this level fails the check.
    """

    max_abs_smd: float = 0.1
    max_share_outside_overlap: float = 0.05
    min_treated: int = 30
    min_control: int = 30
    max_auc: float = 0.99
    placebo_alpha: float = 0.05
    variance_ratio_range: tuple[float, float] = (0.5, 2.0)


@dataclass(frozen=True)
class Overlap:
    """How well treated and control propensities overlap, and what the trimming bound touched.

    Propensities beyond the bound are clipped to it before weighting (the units stay in the
    estimate): above ``1 - trim`` for the ATT, outside ``[trim, 1 - trim]`` for the ATE.
    ``n_clipped`` counts them so that clipping is never silent.
    """

    trim: float
    estimand: str
    share_treated_above_bound: float
    n_treated_above_bound: int
    n_treated_below_bound: int
    n_control_above_bound: int
    n_control_below_bound: int
    n_clipped: int
    share_outside_overlap: float
    propensity_auc: float
    treated_quantiles: dict[str, float]
    control_quantiles: dict[str, float]
    histogram_edges: list[float]
    treated_histogram: list[int]
    control_histogram: list[int]


@dataclass(frozen=True)
class CovariateBalance:
    """One covariate's standardised mean difference before and after weighting."""

    covariate: str
    smd_before: float
    smd_after: float
    variance_ratio_after: float


@dataclass(frozen=True)
class Balance:
    max_abs_smd_before: float
    max_abs_smd_after: float
    worst_covariate_after: str | None
    n_covariates_imbalanced_after: int
    covariates: list[CovariateBalance]


@dataclass(frozen=True)
class Placebo:
    """The same estimator run on an outcome the treatment cannot have caused (e.g. pre-period margin)."""

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    covers_zero: bool


@dataclass(frozen=True)
class Sensitivity:
    """E-value: how strongly (risk-ratio scale) an unmeasured confounder would have to be associated
    with both treatment and outcome to explain the estimate (``e_value``) or move its CI to 0
    (``e_value_ci``). Continuous outcomes use the approximation RR = exp(0.91 d), d = effect / SD."""

    outcome_sd: float
    standardised_effect: float
    e_value: float
    e_value_ci: float


@dataclass(frozen=True)
class Diagnostics:
    overlap: Overlap
    balance: Balance
    control_effective_sample_size: float
    outcome_model_r2: float
    placebo: Placebo | None
    sensitivity: Sensitivity
    naive_difference_se: float
    rules: VerdictRules = field(default_factory=VerdictRules)


# --------------------------------------------------------------------------------------------------
# overlap


def propensity_auc(propensity: np.ndarray, treatment: np.ndarray) -> float:
    """Area under the ROC curve of the propensity for treatment (Mann–Whitney, ties averaged)."""
    ranks = stats.rankdata(propensity)
    treated = treatment == 1
    n_treated = int(treated.sum())
    n_control = len(treatment) - n_treated
    if n_treated == 0 or n_control == 0:
        return float("nan")
    return float((ranks[treated].sum() - n_treated * (n_treated + 1) / 2) / (n_treated * n_control))


def _quantiles(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {}
    points = {"min": 0.0, "p01": 0.01, "p25": 0.25, "median": 0.5, "p75": 0.75, "p99": 0.99, "max": 1.0}
    found = np.quantile(values, list(points.values()))
    return {name: float(v) for name, v in zip(points, found)}


def overlap(propensity: np.ndarray, treatment: np.ndarray, *, trim: float, estimand: str) -> Overlap:
    """Summarise raw (unclipped) cross-fitted propensities against the bound ``[trim, 1 - trim]``."""
    treated = treatment == 1
    low, high = trim, 1.0 - trim
    p_treated, p_control = propensity[treated], propensity[~treated]
    above_t, below_t = int((p_treated > high).sum()), int((p_treated < low).sum())
    above_c, below_c = int((p_control > high).sum()), int((p_control < low).sum())
    if estimand == "att":
        # The ATT needs a comparable control for each treated unit; only treated near 1 lack one.
        share_outside = above_t / max(len(p_treated), 1)
    else:
        share_outside = (above_t + below_t + above_c + below_c) / max(len(propensity), 1)
    clipped = above_t + above_c if estimand == "att" else above_t + below_t + above_c + below_c
    edges = np.linspace(0.0, 1.0, 11)
    return Overlap(
        trim=trim,
        estimand=estimand,
        share_treated_above_bound=above_t / max(len(p_treated), 1),
        n_treated_above_bound=above_t,
        n_treated_below_bound=below_t,
        n_control_above_bound=above_c,
        n_control_below_bound=below_c,
        n_clipped=clipped,
        share_outside_overlap=share_outside,
        propensity_auc=propensity_auc(propensity, treatment),
        treated_quantiles=_quantiles(p_treated),
        control_quantiles=_quantiles(p_control),
        histogram_edges=[float(e) for e in edges],
        treated_histogram=[int(c) for c in np.histogram(p_treated, bins=edges)[0]],
        control_histogram=[int(c) for c in np.histogram(p_control, bins=edges)[0]],
    )


# --------------------------------------------------------------------------------------------------
# balance


def _weighted_mean_var(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and variances of ``values`` (n × k) under ``weights``, ignoring missing values."""
    present = ~np.isnan(values)
    w = weights[:, None] * present
    total = w.sum(axis=0)
    filled = np.where(present, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (w * filled).sum(axis=0) / total
        var = (w * (filled - mean) ** 2 * present).sum(axis=0) / total
    return mean, var


def _smd(diff: np.ndarray, pooled_sd: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        smd = diff / pooled_sd
    # A covariate constant within each arm but different between them separates the arms perfectly.
    smd = np.where(pooled_sd > 0, smd, np.where(np.abs(diff) > 0, np.inf, 0.0))
    return np.nan_to_num(smd, nan=0.0, posinf=np.inf, neginf=-np.inf)


def balance(
    covariates: np.ndarray,
    treatment: np.ndarray,
    weights: np.ndarray,
    names: list[str],
    *,
    rules: VerdictRules,
) -> Balance:
    """Standardised mean differences before and after weighting (Austin 2009, eq. 1).

    The denominator is the unweighted pooled SD, sqrt((s1² + s0²) / 2), before and after, so that
    the two columns are comparable; missing values are left out covariate by covariate.
    """
    treated = treatment == 1
    ones = np.ones(len(treatment))
    mean_t, var_t = _weighted_mean_var(covariates[treated], ones[treated])
    mean_c, var_c = _weighted_mean_var(covariates[~treated], ones[~treated])
    pooled_sd = np.sqrt((var_t + var_c) / 2.0)
    before = _smd(mean_t - mean_c, pooled_sd)
    wmean_t, wvar_t = _weighted_mean_var(covariates[treated], weights[treated])
    wmean_c, wvar_c = _weighted_mean_var(covariates[~treated], weights[~treated])
    after = _smd(wmean_t - wmean_c, pooled_sd)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(wvar_c > 0, wvar_t / wvar_c, np.where(wvar_t > 0, np.inf, 1.0))
    rows = [
        CovariateBalance(name, float(b), float(a), float(r))
        for name, b, a, r in zip(names, before, after, ratio)
    ]
    abs_after = np.abs(after)
    worst = names[int(np.argmax(abs_after))] if len(names) else None
    return Balance(
        max_abs_smd_before=float(np.max(np.abs(before))) if len(names) else 0.0,
        max_abs_smd_after=float(np.max(abs_after)) if len(names) else 0.0,
        worst_covariate_after=worst,
        n_covariates_imbalanced_after=int((abs_after >= rules.max_abs_smd).sum()),
        covariates=rows,
    )


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size, (Σw)² / Σw²."""
    total_sq = float(np.sum(weights**2))
    return float(np.sum(weights) ** 2 / total_sq) if total_sq > 0 else 0.0


# --------------------------------------------------------------------------------------------------
# sensitivity


def _e_value_of_ratio(ratio: float) -> float:
    """VanderWeele & Ding (2017), eq. 2: RR + sqrt(RR (RR − 1)) for RR ≥ 1 (invert RR < 1)."""
    if not math.isfinite(ratio) or ratio <= 0:
        return float("inf")
    ratio = ratio if ratio >= 1 else 1.0 / ratio
    return ratio + math.sqrt(ratio * (ratio - 1.0))


def e_value(estimate: float, ci_low: float, ci_high: float, outcome_sd: float) -> Sensitivity:
    """E-value of a mean difference on a continuous outcome via RR ≈ exp(0.91 d) (VanderWeele &
    Ding 2017, Table 2), for the estimate and for the CI limit nearest the null (1 if it spans 0)."""
    if not outcome_sd > 0:
        return Sensitivity(float(outcome_sd), float("nan"), float("nan"), float("nan"))
    d = estimate / outcome_sd
    if ci_low <= 0 <= ci_high:
        e_ci = 1.0
    else:
        nearest = ci_low if estimate > 0 else ci_high
        e_ci = _e_value_of_ratio(math.exp(0.91 * nearest / outcome_sd))
    return Sensitivity(
        outcome_sd=float(outcome_sd),
        standardised_effect=float(d),
        e_value=_e_value_of_ratio(math.exp(0.91 * d)),
        e_value_ci=float(e_ci),
    )


# --------------------------------------------------------------------------------------------------
# verdict


def judge(
    diagnostics: Diagnostics,
    *,
    estimand: str,
    n_treated: int,
    n_control: int,
) -> tuple[list[str], str]:
    """Plain-sentence warnings and the verdict: ``unreliable`` when any rule in ``diagnostics.rules``
    fails; notes that do not decide the verdict (variance ratios, clipped propensities) only warn."""
    rules = diagnostics.rules
    failures: list[str] = []
    notes: list[str] = []
    ov = diagnostics.overlap
    if n_treated < rules.min_treated:
        failures.append(f"Too few treated units: {n_treated} (need at least {rules.min_treated}).")
    if n_control < rules.min_control:
        failures.append(f"Too few control units: {n_control} (need at least {rules.min_control}).")
    if ov.propensity_auc >= rules.max_auc:
        failures.append(
            f"The covariates (almost) perfectly predict treatment (cross-fitted propensity AUC "
            f"{ov.propensity_auc:.3f}): treated and control units are not comparable."
        )
    if ov.share_outside_overlap > rules.max_share_outside_overlap:
        who = "treated units" if estimand == "att" else "units"
        failures.append(
            f"Poor overlap: {ov.share_outside_overlap:.1%} of {who} have a propensity beyond the "
            f"trimming bound [{ov.trim:g}, {1 - ov.trim:g}] (allowed {rules.max_share_outside_overlap:.0%})."
        )
    bal = diagnostics.balance
    if bal.max_abs_smd_after >= rules.max_abs_smd:
        failures.append(
            f"Covariates still imbalanced after weighting: max |SMD| {bal.max_abs_smd_after:.3f} "
            f"({bal.worst_covariate_after}); {bal.n_covariates_imbalanced_after} covariate(s) at or "
            f"above {rules.max_abs_smd:g}."
        )
    ess = diagnostics.control_effective_sample_size
    if ess < rules.min_control:
        failures.append(
            f"The weighted controls are worth only {ess:.0f} units (effective sample size; need at "
            f"least {rules.min_control}): a few controls carry the estimate."
        )
    placebo = diagnostics.placebo
    if placebo is not None and placebo.p_value < rules.placebo_alpha:
        failures.append(
            f"Placebo check failed: the estimated effect on the placebo outcome is {placebo.estimate:.4g} "
            f"(95% CI {placebo.ci_low:.4g} to {placebo.ci_high:.4g}), not 0; unmeasured differences "
            "between the groups probably remain."
        )
    if ov.n_clipped:
        bound = f"above {1 - ov.trim:g}" if ov.estimand == "att" else f"beyond [{ov.trim:g}, {1 - ov.trim:g}]"
        notes.append(f"{ov.n_clipped} propensities lay {bound} and were clipped to the bound.")
    low, high = rules.variance_ratio_range
    outside = [c.covariate for c in bal.covariates if not low <= c.variance_ratio_after <= high]
    if outside:
        shown = ", ".join(outside[:5]) + (f" and {len(outside) - 5} more" if len(outside) > 5 else "")
        notes.append(f"Variance ratio after weighting outside {low:g}-{high:g} for: {shown}.")
    verdict = "unreliable" if failures else "reliable"
    return failures + notes, verdict


def as_plain(value: Any) -> Any:
    """Dataclasses, numpy scalars and non-finite floats as JSON-ready Python values (NaN/inf -> None)."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return as_plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): as_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
