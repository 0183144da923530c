"""GA4's predictive metrics on the warehouse: purchase probability, churn probability, predicted revenue.

Each model learns from customers' histories at past cutoffs (features strictly before the cutoff,
outcomes in the horizon after it; see :mod:`spillover.predict.features`). Training windows are
stacked weekly cutoffs that end before the evaluation window; the model is judged on that later,
out-of-time window (:mod:`spillover.predict.evaluation`), then refitted on the same number of
windows shifted forward to the latest data, and that refit scores today's customers. A model whose
data holds too few positives or negatives is refused with :class:`SpilloverIneligibleError`, as
GA4 withholds predictions from properties below its thresholds, rather than fitted to noise.

The learner is scikit-learn's ``HistGradientBoostingClassifier`` (log loss) for probabilities and
``HistGradientBoostingRegressor`` (Poisson loss: revenue is zero for most customers and skewed for
the rest) for revenue: histogram gradient boosting in the manner of LightGBM, native handling of
missing values, no extra dependency.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from spillover.errors import SpilloverIneligibleError
from spillover.predict.evaluation import classification_metrics, regression_metrics
from spillover.predict.features import (
    data_span_days,
    feature_columns,
    features_at,
    outcomes_at,
    stored_activity,
)

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from spillover.config import PredictSettings

__all__ = [
    "HYPERPARAMETERS",
    "History",
    "PROPENSITY_MODELS",
    "Target",
    "TrainedPropensity",
    "Windows",
    "load_history",
    "make_estimator",
    "plan_windows",
    "targets",
    "train_target",
]

#: Model names, in the order they are trained and reported.
PROPENSITY_MODELS = ("purchase_probability", "churn_probability", "predicted_revenue")

#: Gradient-boosting settings for every model: shallow trees, a slow learning rate and an L2 penalty,
#: so that a few thousand examples do not overfit; no early stopping, so a fit is deterministic.
HYPERPARAMETERS: dict[str, Any] = {
    "learning_rate": 0.05,
    "max_iter": 150,
    "max_depth": 3,
    "max_leaf_nodes": 8,
    "min_samples_leaf": 50,
    "l2_regularization": 1.0,
    "early_stopping": False,
    "random_state": 0,
}


@dataclass(frozen=True)
class Target:
    """What one model predicts, for whom, and how many days it looks back and ahead."""

    name: str
    kind: Literal["probability", "amount"]
    lookback_days: int
    horizon_days: int
    population: str
    positive: str

    def outcome(self, outcomes: pd.DataFrame) -> np.ndarray:
        """The value to predict, from ``orders``, ``revenue`` and ``active_days`` after the cutoff."""
        if self.name == "purchase_probability":
            return (outcomes["orders"].to_numpy() > 0).astype(float)
        if self.name == "churn_probability":
            return (outcomes["active_days"].to_numpy() == 0).astype(float)
        return np.clip(outcomes["revenue"].to_numpy(dtype=float), 0.0, None)

    def positives(self, y: np.ndarray) -> int:
        return int(np.count_nonzero(y > 0))


def targets(settings: PredictSettings) -> dict[str, Target]:
    """The three models with the windows of ``settings`` (GA4's definitions by default)."""
    s = settings
    return {
        "purchase_probability": Target(
            "purchase_probability", "probability", s.purchase_lookback_days, s.purchase_horizon_days,
            f"customers active in the {s.purchase_lookback_days} days before a cutoff",
            f"an order in the {s.purchase_horizon_days} days after it",
        ),
        "churn_probability": Target(
            "churn_probability", "probability", s.churn_lookback_days, s.churn_horizon_days,
            f"customers active in the {s.churn_lookback_days} days before a cutoff",
            f"no session and no order in the {s.churn_horizon_days} days after it",
        ),
        "predicted_revenue": Target(
            "predicted_revenue", "amount", s.revenue_lookback_days, s.revenue_horizon_days,
            f"customers active in the {s.revenue_lookback_days} days before a cutoff",
            f"revenue in the {s.revenue_horizon_days} days after it",
        ),
    }


@dataclass(frozen=True)
class Backtest:
    """One out-of-time check: a model fitted on ``training`` cutoffs, judged at ``evaluation``.

    Cutoffs are whole days before the end of the data; every training horizon ends at or before
    the evaluation cutoff, so nothing the model is judged on was seen while fitting it.
    """

    evaluation: int
    training: tuple[int, ...]


@dataclass(frozen=True)
class Windows:
    """The backtests (the newest first: its evaluation horizon ends with the data) and the ``final``
    training cutoffs: the newest backtest's shifted forward by the horizon, for the model that
    scores today's customers."""

    backtests: tuple[Backtest, ...]
    final: tuple[int, ...]

    @property
    def cutoffs(self) -> set[int]:
        out = set(self.final)
        for backtest in self.backtests:
            out |= {backtest.evaluation, *backtest.training}
        return out


def plan_windows(target: Target, settings: PredictSettings, span_days: int) -> Windows:
    """The cutoffs for ``target`` on data spanning ``span_days``; refuses when none fit.

    Backtest ``i`` evaluates at ``horizon + i * step`` days back and trains on up to
    ``training_windows`` cutoffs, ``step`` days apart, from one horizon before that; a cutoff needs
    ``min_history_days`` of data before it. Older backtests that do not fit are left out.
    """
    horizon, step = target.horizon_days, settings.window_step_days
    latest_possible = span_days - settings.min_history_days
    backtests = []
    for origin in range(settings.evaluation_windows):
        evaluation = horizon + origin * step
        training = tuple(
            k for k in (evaluation + horizon + j * step for j in range(settings.training_windows)) if k <= latest_possible
        )
        if not training:
            break
        backtests.append(Backtest(evaluation=evaluation, training=training))
    if not backtests:
        needed = 2 * horizon + settings.min_history_days
        raise SpilloverIneligibleError(
            f"{target.name}: the warehouse holds {span_days} days of sessions and orders; one training "
            f"window needs {needed} ({settings.min_history_days} days of history, {horizon} days of outcome, "
            f"then {horizon} days to evaluate on). Load more history, or shorten the horizon or "
            "min_history_days in [predict] of spillover.toml"
        )
    final = tuple(k - horizon for k in backtests[0].training)
    return Windows(backtests=tuple(backtests), final=final)


@dataclass
class History:
    """Customers' features at every cutoff needed, and their outcomes per horizon, as DataFrames."""

    end: dt.datetime
    span_days: int
    feature_names: list[str]
    features: pd.DataFrame
    outcomes: dict[int, pd.DataFrame] = field(default_factory=dict)

    def cutoff_instant(self, days_back: int) -> dt.datetime:
        return self.end - dt.timedelta(days=days_back)

    def examples(self, target: Target, cutoffs: Iterable[int]) -> tuple[pd.DataFrame, np.ndarray]:
        """Rows of the target's population at ``cutoffs`` (customer_key, cutoff_days_back, features)
        and their outcomes (0 where a customer did nothing in the horizon)."""
        frame = self.features
        chosen = frame[frame["cutoff_days_back"].isin(list(cutoffs)) & (frame["days_since_last_active"] < target.lookback_days)]
        outcomes = self.outcomes[target.horizon_days]
        merged = chosen[["customer_key", "cutoff_days_back"]].merge(
            outcomes, on=["customer_key", "cutoff_days_back"], how="left"
        ).fillna({"orders": 0.0, "revenue": 0.0, "active_days": 0.0})
        return chosen.reset_index(drop=True), target.outcome(merged)


def load_history(
    con: BaseBackend,
    *,
    end: dt.datetime,
    event_families: Mapping[str, Sequence[str]],
    cutoffs: Iterable[int],
    horizons: Iterable[int] = (),
    max_lookback_days: int,
    activity: Any = None,
) -> History:
    """Pull features (customers active within ``max_lookback_days`` of each cutoff) and outcomes
    into pandas: one query for the features of every cutoff, one per horizon for the outcomes.

    ``activity`` is :func:`~spillover.predict.features.activity_by_day` for ``end`` when the caller
    already has it; otherwise it is computed once into a temporary table.
    """
    if activity is None:
        with stored_activity(con, end=end, event_families=event_families) as stored:
            return load_history(con, end=end, event_families=event_families, cutoffs=cutoffs, horizons=horizons,
                                max_lookback_days=max_lookback_days, activity=stored)
    families = list(event_families)
    cutoffs = sorted(set(cutoffs))
    features = features_at(activity, cutoffs, families)
    features = features.filter(features.days_since_last_active < max_lookback_days).to_pandas()
    history = History(
        end=end, span_days=data_span_days(activity), feature_names=feature_columns(families), features=features
    )
    for horizon in sorted(set(horizons)):
        with_outcome = [k for k in cutoffs if k >= horizon]
        history.outcomes[horizon] = outcomes_at(activity, with_outcome, horizon).to_pandas()
    return history


#: OpenMP threads for fitting and scoring. Trees over tens of thousands of rows gain little from more,
#: and on a busy machine OpenMP's spinning threads made fits ten times slower (measured on 2 cores).
THREADS = 1


def make_estimator(target: Target) -> Any:
    """A fresh, unfitted learner for ``target``."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if target.kind == "probability":
        return HistGradientBoostingClassifier(**HYPERPARAMETERS)
    return HistGradientBoostingRegressor(loss="poisson", **HYPERPARAMETERS)


def predict_scores(target: Target, estimator: Any, X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1], or non-negative amounts."""
    with threadpool_limits(THREADS, user_api="openmp"):
        if target.kind == "probability":
            return estimator.predict_proba(X)[:, 1]
        return np.clip(estimator.predict(X), 0.0, None)


def fit_estimator(target: Target, X: pd.DataFrame, y: np.ndarray) -> Any:
    """A fresh learner for ``target`` fitted to ``X``, ``y``."""
    with threadpool_limits(THREADS, user_api="openmp"):
        return make_estimator(target).fit(X, y)


@dataclass
class TrainedPropensity:
    """A fitted model, its windows (as days back and instants), counts and out-of-time metrics."""

    target: Target
    estimator: Any
    feature_names: list[str]
    windows: Windows
    end: dt.datetime
    counts: dict[str, int]
    metrics: dict[str, Any]

    @property
    def name(self) -> str:
        return self.target.name

    def instant(self, days_back: int) -> dt.datetime:
        return self.end - dt.timedelta(days=days_back)

    def training_window(self) -> tuple[dt.datetime, dt.datetime]:
        """Earliest training cutoff and end of the latest training horizon (the stored model)."""
        return self.instant(max(self.windows.final)), self.instant(min(self.windows.final) - self.target.horizon_days)

    def evaluation_window(self) -> tuple[dt.datetime, dt.datetime]:
        """Earliest evaluation cutoff and end of the latest evaluation horizon (the end of the data)."""
        cutoffs = [b.evaluation for b in self.windows.backtests]
        return self.instant(max(cutoffs)), self.instant(min(cutoffs) - self.target.horizon_days)

    def evaluated_training_window(self) -> tuple[dt.datetime, dt.datetime]:
        """The same for the training of the models judged in the backtests."""
        cutoffs = [k for b in self.windows.backtests for k in b.training]
        newest = min(b.training[0] for b in self.windows.backtests)
        return self.instant(max(cutoffs)), self.instant(newest - self.target.horizon_days)

    def score(self, features: pd.DataFrame) -> np.ndarray:
        return predict_scores(self.target, self.estimator, features[self.feature_names])


def _refuse_unless_enough(
    target: Target, y: np.ndarray, *, least: tuple[int, int], what: str, where: str, settings_names: str
) -> None:
    positives = target.positives(y)
    negatives = len(y) - positives
    need_positive, need_negative = least
    if positives >= need_positive and negatives >= need_negative:
        return
    raise SpilloverIneligibleError(
        f"{target.name}: not enough {what} examples to train on ({target.population}, positive: "
        f"{target.positive}; {where}): {positives:,} positive and {negatives:,} negative, need at least "
        f"{need_positive:,} and {need_negative:,} ({settings_names} in [predict] of spillover.toml). "
        "Load more customers or history, or lower the thresholds knowing the figures will be noisier"
    )


def train_target(history: History, target: Target, settings: PredictSettings) -> TrainedPropensity:
    """Check eligibility, fit and judge each backtest out of time, then refit on the latest windows.

    The metrics pool every backtest's evaluation rows (each scored by the model fitted before it);
    ``backtests`` in the metrics gives each one's own figures.
    """
    windows = plan_windows(target, settings, history.span_days)
    names = history.feature_names

    def span(cutoffs: Sequence[int]) -> str:
        first, last = history.cutoff_instant(max(cutoffs)), history.cutoff_instant(min(cutoffs))
        return f"{len(cutoffs)} cutoff(s) from {first:%Y-%m-%d} to {last:%Y-%m-%d}"

    least = (settings.min_positives, settings.min_negatives)
    judged = []
    for backtest in windows.backtests:
        rows, y = history.examples(target, backtest.training)
        _refuse_unless_enough(target, y, least=least, what="training", where=span(backtest.training),
                              settings_names="min_positives, min_negatives")
        judged.append((backtest, rows, y, *history.examples(target, [backtest.evaluation])))
    final_rows, final_y = history.examples(target, windows.final)
    _refuse_unless_enough(target, final_y, least=least, what="training", where=span(windows.final),
                          settings_names="min_positives, min_negatives")
    eval_y = np.concatenate([item[4] for item in judged])
    _refuse_unless_enough(target, eval_y, least=(settings.min_evaluation_positives,) * 2, what="evaluation",
                          where=span([b.evaluation for b in windows.backtests]),
                          settings_names="min_evaluation_positives")

    scores, per_backtest = [], []
    for backtest, rows, y, eval_rows, eval_outcome in judged:
        fitted = fit_estimator(target, rows[names], y)
        predicted = predict_scores(target, fitted, eval_rows[names])
        scores.append(predicted)
        per_backtest.append(_backtest_summary(target, history, backtest, len(y), eval_outcome, predicted))
    pooled = np.concatenate(scores)
    metrics = (classification_metrics if target.kind == "probability" else regression_metrics)(eval_y, pooled)
    metrics["backtests"] = per_backtest
    final = fit_estimator(target, final_rows[names], final_y)
    counts = {
        "training_rows": len(final_y),
        "training_positives": target.positives(final_y),
        "evaluated_model_training_rows": int(sum(len(item[2]) for item in judged)),
        "evaluated_model_training_positives": int(sum(target.positives(item[2]) for item in judged)),
        "evaluation_rows": len(eval_y),
        "evaluation_positives": target.positives(eval_y),
    }
    return TrainedPropensity(
        target=target, estimator=final, feature_names=list(names), windows=windows, end=history.end,
        counts=counts, metrics=metrics,
    )


def _backtest_summary(
    target: Target, history: History, backtest: Backtest, training_rows: int, y: np.ndarray, predicted: np.ndarray
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "evaluation_cutoff": history.cutoff_instant(backtest.evaluation).isoformat(),
        "training_cutoffs": len(backtest.training),
        "training_rows": training_rows,
        "customers": len(y),
        "positives": target.positives(y),
    }
    if target.kind == "probability":
        summary["roc_auc"] = classification_metrics(y, predicted)["roc_auc"] if 0 < y.sum() < len(y) else None
    else:
        summary["total_ratio"] = float(predicted.sum() / y.sum()) if y.sum() > 0 else None
    return summary
