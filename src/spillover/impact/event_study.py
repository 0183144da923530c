"""Staggered-adoption difference-in-differences and event study (Callaway & Sant'Anna 2021).

:class:`StaggeredDiD` takes a long panel (unit, period, outcome, first-treated period with 0 for
never) and estimates each adoption cohort's effect in each period, ATT(g, t), against not-yet- or
never-treated units, then aggregates them by periods since adoption (negative ones are pre-trend
placebos) and overall, with influence-function standard errors and a Wald pre-trend test; optional
covariates make the parallel-trends assumption conditional (doubly-robust DiD per cell).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from spillover.errors import SpilloverInputError
from spillover.impact.diagnostics import Z_95, as_plain

__all__ = ["StaggeredDiD", "StaggeredDiDResult"]

CONTROL_GROUPS = ("not_yet_treated", "never_treated")
BASE_PERIODS = ("varying", "universal")


@dataclass(frozen=True)
class StaggeredDiDResult:
    """Group-time effects, their event-time and overall aggregates, and the pre-trend test.

    ``group_time``: one row per (group, period) with att, se, ci_low, ci_high, event_time,
    n_treated, n_control. ``event_study``: att by ``event_time`` (periods since adoption).
    ``overall``: the "simple" aggregate, the average of post-adoption ATT(g, t) weighted by group
    size. ``pretrend_test``: Wald test that every pre-adoption ATT(g, t) is 0.
    """

    control_group: str
    base_period: str
    n_units: int
    n_periods: int
    group_time: pd.DataFrame
    event_study: pd.DataFrame
    overall: dict[str, float]
    pretrend_test: dict[str, Any]
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        return as_plain(
            {
                "control_group": self.control_group,
                "base_period": self.base_period,
                "n_units": self.n_units,
                "n_periods": self.n_periods,
                "overall": self.overall,
                "event_study": self.event_study.to_dict(orient="records"),
                "group_time": self.group_time.to_dict(orient="records"),
                "pretrend_test": self.pretrend_test,
                "warnings": self.warnings,
            }
        )


class StaggeredDiD(BaseEstimator):
    """Callaway & Sant'Anna (2021, J. Econometrics 225:200–230) group-time ATTs.

    For adoption cohort g and period t, with base period b (``varying``: t − 1 before adoption and
    g − 1 − anticipation after; ``universal``: always g − 1 − anticipation)::

        ATT(g, t) = E[Y_t − Y_b | G = g] − E[Y_t − Y_b | C],               (C&S eq. 2.5 / 2.6 without X)

    where C is the never-treated units (``never_treated``) or those not treated by max(t, b) +
    anticipation, other than g (``not_yet_treated``). Each ATT(g, t) has the influence function
    n [1{G=g}(ΔY − μ_g)/n_g − 1{C}(ΔY − μ_C)/n_C]; aggregates (C&S Section 4) add the influence
    of their estimated group-share weights, as the R package ``did`` does, so the standard errors
    match its analytic ones. The pre-trend test is the Wald statistic n θ' V⁻¹ θ over the
    pre-adoption ATT(g, t), χ² with as many degrees of freedom.

    Parameters
    ----------
    unit, period, outcome, first_treated : str
        Column names in the panel; ``first_treated`` is the period of adoption, 0 (or missing) for
        never. Periods are integers (e.g. years, month numbers).
    covariates : list of str or None
        Columns for conditional parallel trends: each ATT(g, t) is then the doubly-robust DiD of
        Sant'Anna & Zhao (2020, J. Econometrics 219:101–122, eq. 3.1; ``DRDID::drdid_panel``, as
        ``did`` uses by default), with a logistic propensity and a linear outcome-change model, the
        covariates taken in the cell's base period. ``None``: unconditional.
    control_group : {"not_yet_treated", "never_treated"}
    base_period : {"varying", "universal"}
    anticipation : int
        Periods before adoption in which units may already react.

    Attributes
    ----------
    result_ : StaggeredDiDResult
    influence_ : ndarray (n_units, n_cells)
        Influence functions of the group-time effects, in ``result_.group_time`` order.

    Examples
    --------
    >>> import pandas as pd
    >>> panel = pd.DataFrame({
    ...     "unit": [1, 1, 1, 2, 2, 2, 3, 3, 3], "period": [1, 2, 3] * 3,
    ...     "y": [0.0, 0.0, 2.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0], "first": [3, 3, 3, 0, 0, 0, 0, 0, 0]})
    >>> model = StaggeredDiD(unit="unit", period="period", outcome="y", first_treated="first").fit(panel)
    >>> model.result_.overall["att"]
    2.0
    """

    def __init__(
        self,
        *,
        unit: str = "unit",
        period: str = "period",
        outcome: str = "outcome",
        first_treated: str = "first_treated",
        covariates: list[str] | None = None,
        control_group: str = "not_yet_treated",
        base_period: str = "varying",
        anticipation: int = 0,
    ) -> None:
        self.unit = unit
        self.period = period
        self.outcome = outcome
        self.first_treated = first_treated
        self.covariates = covariates
        self.control_group = control_group
        self.base_period = base_period
        self.anticipation = anticipation

    def fit(self, panel: pd.DataFrame, y: Any = None) -> StaggeredDiD:
        """Estimate every ATT(g, t) of ``panel`` and their aggregates."""
        self._check_params()
        outcomes, covariates, groups, periods, warnings = self._wide(panel)
        n = len(groups)
        cells, influence = self._group_time(outcomes, covariates, groups, periods, warnings)
        group_time = pd.DataFrame(cells)
        if group_time.empty:
            raise SpilloverInputError("no group-time effect could be estimated: no cohort has a comparison group")
        share = {g: float(np.mean(groups == g)) for g in group_time["group"].unique()}
        post = group_time["event_time"].to_numpy() >= 0
        overall = _aggregate(group_time, influence, groups, share, post, n)
        event_rows = []
        for e in sorted(group_time["event_time"].unique()):
            chosen = group_time["event_time"].to_numpy() == e
            agg = _aggregate(group_time, influence, groups, share, chosen, n)
            event_rows.append({"event_time": int(e), **agg, "n_groups": int(chosen.sum())})
        pretrend = _pretrend_test(group_time, influence, n, self.anticipation)
        if pretrend["p_value"] is not None and pretrend["p_value"] < 0.05:
            warnings.append(
                f"Pre-trends: the pre-adoption effects are jointly non-zero (Wald p = {pretrend['p_value']:.3g}); "
                "parallel trends is doubtful."
            )
        self.influence_ = influence
        self.result_ = StaggeredDiDResult(
            control_group=self.control_group,
            base_period=self.base_period,
            n_units=n,
            n_periods=len(periods),
            group_time=group_time,
            event_study=pd.DataFrame(event_rows),
            overall=overall,
            pretrend_test=pretrend,
            warnings=warnings,
        )
        return self

    def summary(self) -> dict[str, Any]:
        check_is_fitted(self, "result_")
        return self.result_.to_dict()

    # ----------------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        if self.control_group not in CONTROL_GROUPS:
            raise SpilloverInputError(f"control_group must be one of {', '.join(CONTROL_GROUPS)}, not {self.control_group!r}")
        if self.base_period not in BASE_PERIODS:
            raise SpilloverInputError(f"base_period must be one of {', '.join(BASE_PERIODS)}, not {self.base_period!r}")
        if not (isinstance(self.anticipation, (int, np.integer)) and self.anticipation >= 0):
            raise SpilloverInputError(f"anticipation must be a non-negative integer, not {self.anticipation!r}")

    def _wide(
        self, panel: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray, list[str]]:
        """Units × periods outcomes of a balanced panel, units × periods × covariates (or None),
        each unit's group, the periods."""
        warnings: list[str] = []
        extra = list(self.covariates or [])
        columns = [self.unit, self.period, self.outcome, self.first_treated, *extra]
        missing = [c for c in columns if c not in panel.columns]
        if missing:
            raise SpilloverInputError(f"panel column(s) {', '.join(map(repr, missing))} not found (columns: {', '.join(map(str, panel.columns))})")
        frame = panel[columns].copy()
        for name in (self.period, self.outcome, *extra):
            if not pd.api.types.is_numeric_dtype(frame[name]):
                raise SpilloverInputError(f"panel column {name!r} must be numeric")
        frame[self.first_treated] = pd.to_numeric(frame[self.first_treated], errors="coerce").fillna(0)
        if frame[self.period].isna().any():
            raise SpilloverInputError(f"panel column {self.period!r} has missing values")
        if frame.duplicated([self.unit, self.period]).any():
            raise SpilloverInputError(f"panel has several rows for the same {self.unit!r} and {self.period!r}; one row per unit and period")
        per_unit = frame.groupby(self.unit)[self.first_treated].nunique()
        if (per_unit > 1).any():
            raise SpilloverInputError(f"{self.first_treated!r} differs between periods of the same unit (e.g. {per_unit[per_unit > 1].index[0]!r})")
        wide = frame.pivot(index=self.unit, columns=self.period, values=self.outcome).sort_index(axis=1)
        periods = wide.columns.to_numpy()
        if len(periods) < 2:
            raise SpilloverInputError("the panel needs at least two periods")
        groups = frame.groupby(self.unit)[self.first_treated].first().reindex(wide.index).to_numpy(dtype=float)
        incomplete = wide.isna().any(axis=1).to_numpy()
        if incomplete.any():
            warnings.append(f"{int(incomplete.sum())} units without an outcome in every period were dropped (balanced panel needed).")
        covariates = None
        if extra:
            covariates = np.stack(
                [frame.pivot(index=self.unit, columns=self.period, values=name).reindex(index=wide.index, columns=periods).to_numpy(dtype=float) for name in extra],
                axis=2,
            )
            unusable = np.isnan(covariates).any(axis=(1, 2)) & ~incomplete
            if unusable.any():
                warnings.append(f"{int(unusable.sum())} units with a missing covariate were dropped.")
                incomplete = incomplete | unusable
        late = groups > periods[-1]
        if late.any():
            warnings.append(f"{int(late.sum())} units adopt after the last period; counted as never treated.")
            groups = np.where(late, 0.0, groups)
        early = (groups > 0) & (groups - self.anticipation <= periods[0])
        if early.any():
            warnings.append(f"{int(early.sum())} units adopted in or before the first period (no pre-period to compare); dropped.")
        unknown = (groups > 0) & ~np.isin(groups, periods)
        if unknown.any():
            raise SpilloverInputError(
                f"{self.first_treated!r} must be one of the panel's periods or 0; found {groups[unknown][0]:g}"
            )
        keep = ~incomplete & ~early
        if self.control_group == "never_treated" and not (groups[keep] == 0).any():
            raise SpilloverInputError("no never-treated units: use control_group='not_yet_treated'")
        return (
            wide.to_numpy(dtype=float)[keep], None if covariates is None else covariates[keep], groups[keep], periods, warnings
        )

    def _group_time(
        self,
        outcomes: np.ndarray,
        covariates: np.ndarray | None,
        groups: np.ndarray,
        periods: np.ndarray,
        warnings: list[str],
    ) -> tuple[list[dict[str, Any]], np.ndarray]:
        n = len(groups)
        cells: list[dict[str, Any]] = []
        columns: list[np.ndarray] = []
        for g in np.unique(groups[groups > 0]):
            treated = groups == g
            # last period before adoption (less anticipation): the post-period base
            reference = int(np.nonzero(periods + self.anticipation < g)[0][-1])
            first = 1 if self.base_period == "varying" else 0
            for current in range(first, len(periods)):
                is_post = periods[current] >= g - self.anticipation
                base = reference if (is_post or self.base_period == "universal") else current - 1
                if current == base:
                    continue
                if self.control_group == "never_treated":
                    control = groups == 0
                else:
                    latest = max(periods[current], periods[base]) + self.anticipation
                    control = (groups == 0) | ((groups > latest) & ~treated)
                n_treated, n_control = int(treated.sum()), int(control.sum())
                if n_control == 0:
                    warnings.append(f"ATT({g:g}, {periods[current]:g}) skipped: no comparison units in that period.")
                    continue
                change = outcomes[:, current] - outcomes[:, base]
                if covariates is None:
                    att, influence = _difference_in_means(change, treated, control)
                else:
                    subset = treated | control
                    design = np.column_stack([np.ones(int(subset.sum())), covariates[subset, base, :]])
                    att, local = _doubly_robust_did(change[subset], treated[subset].astype(float), design)
                    influence = np.zeros(n)
                    influence[subset] = local * n / subset.sum()
                se = float(math.sqrt(np.mean(influence**2) / n))
                cells.append(
                    {
                        "group": _plain_number(g),
                        "period": _plain_number(periods[current]),
                        "base_period": _plain_number(periods[base]),
                        "event_time": _plain_number(periods[current] - g),
                        "att": att,
                        "se": se,
                        "ci_low": att - Z_95 * se,
                        "ci_high": att + Z_95 * se,
                        "n_treated": n_treated,
                        "n_control": n_control,
                    }
                )
                columns.append(influence)
        influence = np.column_stack(columns) if columns else np.empty((n, 0))
        return cells, influence


def _difference_in_means(change: np.ndarray, treated: np.ndarray, control: np.ndarray) -> tuple[float, np.ndarray]:
    """Unconditional ATT(g, t) and its influence function over all n units."""
    n, n_treated, n_control = len(change), int(treated.sum()), int(control.sum())
    mean_treated, mean_control = change[treated].mean(), change[control].mean()
    influence = n * (
        np.where(treated, change - mean_treated, 0.0) / n_treated
        - np.where(control, change - mean_control, 0.0) / n_control
    )
    return float(mean_treated - mean_control), influence


def _logistic_fit(design: np.ndarray, d: np.ndarray, iterations: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Unpenalised logistic regression by Newton–Raphson: fitted probabilities and the inverse of
    the average Hessian (the maximum-likelihood sandwich's bread)."""
    beta = np.zeros(design.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -35, 35)))
        hessian = (design * (p * (1 - p))[:, None]).T @ design
        step = np.linalg.lstsq(hessian, design.T @ (d - p), rcond=None)[0]
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -35, 35)))
    bread = np.linalg.pinv((design * (p * (1 - p))[:, None]).T @ design / len(d))
    return p, bread


def _doubly_robust_did(change: np.ndarray, d: np.ndarray, design: np.ndarray) -> tuple[float, np.ndarray]:
    """Sant'Anna & Zhao (2020) doubly-robust DiD for panel data (``DRDID::drdid_panel``): the ATT
    and its influence function over the rows given (treated cohort and its controls)."""
    n = len(d)
    propensity, ps_bread = _logistic_fit(design, d)
    propensity = np.minimum(propensity, 1 - 1e-6)
    # controls with propensity ≥ 0.995 carry no weight, as in DRDID
    usable = np.where(d == 1, 1.0, (propensity < 0.995).astype(float))
    controls = d == 0
    beta = np.linalg.lstsq(design[controls], change[controls], rcond=None)[0]
    predicted_change = design @ beta
    weight_treated = usable * d
    weight_control = usable * propensity * (1 - d) / (1 - propensity)
    residual = change - predicted_change
    eta_treated = np.mean(weight_treated * residual) / np.mean(weight_treated)
    eta_control = np.mean(weight_control * residual) / np.mean(weight_control)
    # estimation effects of the outcome regression and the propensity model
    ols_bread = np.linalg.pinv((design * (1 - d)[:, None]).T @ design / n)
    ols_linear = (design * ((1 - d) * residual)[:, None]) @ ols_bread
    ps_linear = (design * (d - propensity)[:, None]) @ ps_bread
    influence_treated = (
        weight_treated * residual - weight_treated * eta_treated
        - ols_linear @ np.mean(weight_treated[:, None] * design, axis=0)
    ) / np.mean(weight_treated)
    influence_control = (
        weight_control * residual - weight_control * eta_control
        + ps_linear @ np.mean((weight_control * (residual - eta_control))[:, None] * design, axis=0)
        - ols_linear @ np.mean(weight_control[:, None] * design, axis=0)
    ) / np.mean(weight_control)
    return float(eta_treated - eta_control), influence_treated - influence_control


def _plain_number(value: Any) -> int | float:
    value = float(value)
    return int(value) if value.is_integer() else value


def _aggregate(
    group_time: pd.DataFrame,
    influence: np.ndarray,
    groups: np.ndarray,
    share: dict[float, float],
    chosen: np.ndarray,
    n: int,
) -> dict[str, float]:
    """Σ w_k ATT_k over ``chosen`` cells with w_k ∝ P(G = g_k), and its standard error, which
    includes the estimation of the weights (C&S 2021, Section 4; ``did``'s ``wif``)."""
    picked = np.nonzero(chosen)[0]
    if len(picked) == 0:
        return {"att": float("nan"), "se": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    cell_groups = group_time["group"].to_numpy(dtype=float)[picked]
    pg = np.array([share[g] for g in cell_groups])
    att = group_time["att"].to_numpy()[picked]
    total = pg.sum()
    weights = pg / total
    estimate = float(weights @ att)
    # d(weight_k)/d(unit i): numerator and denominator effects of estimating P(G = g).
    member = (groups[:, None] == cell_groups[None, :]).astype(float) - pg[None, :]
    weight_influence = member / total - member.sum(axis=1, keepdims=True) * (pg / total**2)[None, :]
    combined = influence[:, picked] @ weights + weight_influence @ att
    se = float(math.sqrt(np.mean(combined**2) / n))
    return {"att": estimate, "se": se, "ci_low": estimate - Z_95 * se, "ci_high": estimate + Z_95 * se}


def _pretrend_test(group_time: pd.DataFrame, influence: np.ndarray, n: int, anticipation: int) -> dict[str, Any]:
    pre = np.nonzero(group_time["event_time"].to_numpy() < -anticipation)[0]
    if len(pre) == 0:
        return {"statistic": None, "df": 0, "p_value": None, "passed": None}
    theta = group_time["att"].to_numpy()[pre]
    covariance = influence[:, pre].T @ influence[:, pre] / n
    rank = int(np.linalg.matrix_rank(covariance))
    statistic = float(n * theta @ np.linalg.pinv(covariance) @ theta)
    p_value = float(stats.chi2.sf(statistic, rank)) if rank else float("nan")
    return {"statistic": statistic, "df": rank, "p_value": p_value, "passed": bool(p_value >= 0.05)}
