"""The ``predict`` stage: train the models, record them in ``ops_models``, and score ``mart_predictions``.

Training fits the three propensity models (:mod:`spillover.predict.propensity`) and the BG/NBD +
Gamma-Gamma lifetime-value models (:mod:`spillover.predict.clv_warehouse`), appends one row per model
to ``ops_models`` (a refused model gets a row saying why), stores each fitted model in ``models/``
and writes the CLV holdout check to ``mart_clv__holdout``. Scoring loads the stored models and
writes one row per customer and model to ``mart_predictions``. ``spillover build`` does both;
``spillover predict train`` and ``spillover predict score`` do one each.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from spillover.engine import append_rows, drop_table, table_exists, write_table
from spillover.errors import SpilloverIneligibleError, SpilloverInputError
from spillover.ingest.quarantine import now_utc
from spillover.predict.artefacts import load_artefact, model_path, save_artefact
from spillover.predict.clv_warehouse import clv_holdout, customer_orders, fit_clv_models, score_clv
from spillover.predict.features import data_span_days, end_instant, feature_columns, stored_activity
from spillover.predict.propensity import (
    HYPERPARAMETERS,
    PROPENSITY_MODELS,
    History,
    TrainedPropensity,
    load_history,
    plan_windows,
    predict_scores,
    targets,
    train_target,
)
from spillover.progress import NullProgress, Progress

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from spillover.config import Config

__all__ = [
    "CLV_HOLDOUT", "MODELS", "MODELS_TABLE", "PREDICTIONS", "SCORES_OF", "build_predictions", "score_models",
    "train_models",
]

PREDICTIONS = "mart_predictions"
MODELS_TABLE = "ops_models"
CLV_HOLDOUT = "mart_clv__holdout"
#: Every model trained, in order; ``clv`` is BG/NBD + Gamma-Gamma.
MODELS = (*PROPENSITY_MODELS, "clv")
#: The scores (``mart_predictions.model``) each trained model gives.
SCORES_OF = {name: (name,) for name in PROPENSITY_MODELS} | {"clv": ("clv", "p_alive")}

REQUIRED = {
    "fct_sessions": "spillover build --stage profiles",
    "fct_product_adoptions": "spillover build --stage profiles",
    "dim_customers": "spillover build --stage identity",
    "int_identity__id_graph": "spillover build --stage identity",
    "stg_shop__orders": "spillover ingest orders",
    "stg_shop__order_items": "spillover ingest order-items",
    "stg_shop__products": "spillover ingest products",
    "stg_crm__members": "spillover ingest crm",
    "stg_ga4__events": "spillover ingest ga4",
}

UTC_STAMP = pa.timestamp("us", tz="UTC")
MODELS_SCHEMA = pa.schema([
    ("model", pa.string()), ("version", pa.int64()), ("status", pa.string()), ("message", pa.string()),
    ("trained_at", UTC_STAMP), ("as_of", UTC_STAMP),
    ("training_window_start", UTC_STAMP), ("training_window_end", UTC_STAMP),
    ("evaluation_window_start", UTC_STAMP), ("evaluation_window_end", UTC_STAMP),
    ("training_rows", pa.int64()), ("training_positives", pa.int64()),
    ("evaluation_rows", pa.int64()), ("evaluation_positives", pa.int64()),
    ("metrics", pa.string()), ("parameters", pa.string()), ("artefact", pa.string()),
])
PREDICTIONS_SCHEMA = pa.schema([
    ("customer_key", pa.string()), ("model", pa.string()), ("score", pa.float64()),
    ("model_version", pa.int64()), ("as_of", UTC_STAMP), ("scored_at", UTC_STAMP),
])


def check_inputs(con: BaseBackend) -> None:
    missing = [name for name in REQUIRED if not table_exists(con, name)]
    if missing:
        steps = sorted({REQUIRED[name] for name in missing})
        raise SpilloverInputError(
            f"stage 'predict' needs {', '.join(missing)}, which the warehouse does not have; "
            f"run {' and '.join(f'`{step}`' for step in steps)} first"
        )


def _finite(data: Any) -> Any:
    """``data`` with NaN and infinities as null (JSON has neither) and numpy numbers as Python's."""
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(value) for value in data]
    if isinstance(data, (float, int)) and not isinstance(data, bool) or hasattr(data, "dtype"):
        value = data.item() if hasattr(data, "item") else data
        return value if not isinstance(value, float) or math.isfinite(value) else None
    return data


def _json(data: Any) -> str:
    return json.dumps(_finite(data), allow_nan=False, sort_keys=True)


def _next_versions(con: BaseBackend) -> dict[str, int]:
    if not table_exists(con, MODELS_TABLE):
        return {}
    table = con.table(MODELS_TABLE)
    rows = table.group_by("model").aggregate(version=table.version.max()).to_pyarrow().to_pylist()
    return {row["model"]: int(row["version"] or 0) + 1 for row in rows}


@dataclass
class Training:
    """What one training run produced: the ``ops_models`` rows, and the models for scoring at once."""

    as_of: dt.datetime
    rows: list[dict[str, Any]] = field(default_factory=list)
    propensity: dict[str, TrainedPropensity] = field(default_factory=dict)
    artefacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    holdout: list[dict[str, Any]] = field(default_factory=list)
    history: History | None = None

    def summary(self) -> list[dict[str, Any]]:
        """The rows as JSON-ready data (metrics and parameters parsed)."""
        out = []
        for row in self.rows:
            shown = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()}
            shown["metrics"] = json.loads(row["metrics"]) if row["metrics"] else None
            shown["parameters"] = json.loads(row["parameters"]) if row["parameters"] else None
            out.append(shown)
        return out


def _row(model: str, *, trained_at: dt.datetime, as_of: dt.datetime, **values: Any) -> dict[str, Any]:
    row = {name: None for name in MODELS_SCHEMA.names}
    return row | {"model": model, "trained_at": trained_at, "as_of": as_of} | values


def _refusal(config: Config, model: str, exc: SpilloverIneligibleError, **context: Any) -> dict[str, Any]:
    # A stale file would keep scoring after the data stopped supporting the model: remove it.
    model_path(config, model).unlink(missing_ok=True)
    return _row(model, status="ineligible", message=str(exc), **context)


def _history_for(con: BaseBackend, config: Config, end: dt.datetime, activity: Any) -> History:
    settings = config.predict
    wanted = targets(settings)
    span = data_span_days(activity)
    cutoffs: set[int] = {0}
    for target in wanted.values():
        try:
            windows = plan_windows(target, settings, span)
        except SpilloverIneligibleError:
            continue
        cutoffs |= windows.cutoffs
    return load_history(
        con, end=end, event_families=config.profiles.event_families, cutoffs=cutoffs,
        horizons={t.horizon_days for t in wanted.values()},
        max_lookback_days=max(t.lookback_days for t in wanted.values()), activity=activity,
    )


def train_models(
    con: BaseBackend, config: Config, *, models: tuple[str, ...] | None = None, progress: Progress | None = None
) -> Training:
    """Train ``models`` (default: all), store them, and append their rows to ``ops_models``."""
    from spillover.profiles.build import as_of_instant

    progress = progress or NullProgress()
    check_inputs(con)
    wanted = models or MODELS
    unknown = [m for m in wanted if m not in MODELS]
    if unknown:
        raise SpilloverInputError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    task = progress.task("predict: training", total=len(wanted) + 1)
    as_of = as_of_instant(con)
    end = end_instant(as_of)
    trained_at = now_utc()
    versions = _next_versions(con)
    training = Training(as_of=as_of)
    context = {"trained_at": trained_at, "as_of": as_of}
    settings = config.predict
    with stored_activity(con, end=end, event_families=config.profiles.event_families) as activity:
        history = _history_for(con, config, end, activity)
    training.history = history
    progress.advance(task, 1)
    for name in (m for m in PROPENSITY_MODELS if m in wanted):
        target = targets(settings)[name]
        progress.advance(task, 0, description=f"predict: {name}")
        try:
            model = train_target(history, target, settings)
        except SpilloverIneligibleError as exc:
            training.rows.append(_refusal(config, name, exc, **context))
            progress.advance(task, 1)
            continue
        version = versions.get(name, 1)
        training_start, training_end = model.training_window()
        evaluation_start, evaluation_end = model.evaluation_window()
        evaluated_start, evaluated_end = model.evaluated_training_window()
        parameters = {
            "learner": type(model.estimator).__name__,
            "loss": getattr(model.estimator, "loss", None),
            "hyperparameters": HYPERPARAMETERS,
            "lookback_days": target.lookback_days,
            "horizon_days": target.horizon_days,
            "population": target.population,
            "positive": target.positive,
            "training_cutoffs": [model.instant(k).isoformat() for k in model.windows.final],
            "backtests": [
                {"evaluation_cutoff": model.instant(b.evaluation).isoformat(),
                 "training_cutoffs": [model.instant(k).isoformat() for k in b.training]}
                for b in model.windows.backtests
            ],
            "features": model.feature_names,
        }
        metrics = {
            **model.metrics,
            "evaluated_model": {
                "training_window_start": evaluated_start.isoformat(),
                "training_window_end": evaluated_end.isoformat(),
                "training_rows": model.counts["evaluated_model_training_rows"],
                "training_positives": model.counts["evaluated_model_training_positives"],
            },
        }
        artefact = {
            "version": version, "trained_at": trained_at, "as_of": as_of, "estimator": model.estimator,
            "feature_names": model.feature_names, "target": target.__dict__,
        }
        path = save_artefact(config, name, artefact)
        training.artefacts[name] = {**artefact, "model": name}
        training.propensity[name] = model
        training.rows.append(_row(
            name, **context, version=version, status="trained", message=None,
            training_window_start=training_start, training_window_end=training_end,
            evaluation_window_start=evaluation_start, evaluation_window_end=evaluation_end,
            training_rows=model.counts["training_rows"], training_positives=model.counts["training_positives"],
            evaluation_rows=model.counts["evaluation_rows"], evaluation_positives=model.counts["evaluation_positives"],
            metrics=_json(metrics), parameters=_json(parameters), artefact=str(path),
        ))
        progress.advance(task, 1)
    if "clv" in wanted:
        progress.advance(task, 0, description="predict: clv")
        training.rows.append(_train_clv(con, config, training, versions.get("clv", 1), history.span_days, context))
        progress.advance(task, 1)
    append_rows(con, MODELS_TABLE, pa.Table.from_pylist(training.rows, schema=MODELS_SCHEMA))
    return training


def _train_clv(
    con: BaseBackend, config: Config, training: Training, version: int, span_days: int, context: dict[str, Any]
) -> dict[str, Any]:
    as_of = training.as_of
    orders = customer_orders(con)
    try:
        fitted = fit_clv_models(orders, as_of=as_of)
        table, totals = clv_holdout(orders, as_of=as_of, span_days=span_days, settings=config.predict)
    except SpilloverIneligibleError as exc:
        drop_table(con, CLV_HOLDOUT)
        return _refusal(config, "clv", exc, **context)
    write_table(con, CLV_HOLDOUT, pa.Table.from_pandas(table, preserve_index=False))
    training.holdout = table.to_dict(orient="records")
    artefact = {"version": version, "trained_at": context["trained_at"], "as_of": as_of, "fitted": fitted}
    path = save_artefact(config, "clv", artefact)
    training.artefacts["clv"] = {**artefact, "model": "clv"}
    purchase, spend = fitted.purchase_model, fitted.spend_model
    metrics = {
        "holdout": totals,
        "bgnbd_log_likelihood": purchase.log_likelihood_,
        "gamma_gamma_log_likelihood": spend.log_likelihood_,
        "frequency_spend_correlation": spend.frequency_spend_correlation_,
        "converged": bool(purchase.converged_ and spend.converged_),
    }
    parameters = {
        **fitted.parameters(),
        "bgnbd_standard_errors": purchase.standard_errors_,
        "gamma_gamma_standard_errors": spend.standard_errors_,
        "horizon_months": config.predict.clv_horizon_months,
        "discount_rate": config.predict.clv_discount_rate,
    }
    calibration_end = dt.datetime.fromisoformat(totals["calibration_end"])
    return _row(
        "clv", **context, version=version, status="trained", message=None,
        training_window_start=fitted.first_order_at, training_window_end=as_of,
        evaluation_window_start=calibration_end, evaluation_window_end=as_of,
        training_rows=fitted.customers, training_positives=int(round(spend.n_customers_)),
        evaluation_rows=totals["customers"], evaluation_positives=int(totals["actual_purchases"]),
        metrics=_json(metrics), parameters=_json(parameters), artefact=str(path),
    )


def _stored_models(config: Config, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    stored = {}
    for name in names:
        if model_path(config, name).is_file():
            stored[name] = load_artefact(config, name)
    return stored


def score_models(
    con: BaseBackend, config: Config, *, training: Training | None = None, progress: Progress | None = None
) -> dict[str, int]:
    """Score every stored model (or those just trained) on today's data; replace ``mart_predictions``.

    Returns the rows written per score name.
    """
    from spillover.profiles.build import as_of_instant

    progress = progress or NullProgress()
    check_inputs(con)
    artefacts = training.artefacts if training is not None else _stored_models(config, MODELS)
    if not artefacts and training is None:
        raise SpilloverInputError(
            f"no trained model in {model_path(config, 'x').parent}; run `spillover predict train` (or `spillover build`) first"
        )
    as_of = training.as_of if training is not None else as_of_instant(con)
    scored_at = now_utc()
    families = config.profiles.event_families
    expected_features = feature_columns(list(families))
    parts: list[pa.Table] = []
    counts: dict[str, int] = {}
    propensity = [name for name in PROPENSITY_MODELS if name in artefacts]
    if propensity:
        history = training.history if training is not None else None
        if history is None:
            lookbacks = [artefacts[name]["target"]["lookback_days"] for name in propensity]
            history = load_history(con, end=end_instant(as_of), event_families=families, cutoffs=[0],
                                   max_lookback_days=max(lookbacks))
        today = history.features[history.features["cutoff_days_back"] == 0]
        for name in propensity:
            artefact = artefacts[name]
            if artefact["feature_names"] != expected_features:
                raise SpilloverInputError(
                    f"{model_path(config, name)}: trained on other features than [profiles] event_families now "
                    "gives; retrain with `spillover predict train`"
                )
            target = targets(config.predict)[name].__class__(**artefact["target"])
            rows = today[today["days_since_last_active"] < target.lookback_days]
            scores = predict_scores(target, artefact["estimator"], rows[artefact["feature_names"]]) if len(rows) else []
            parts.append(_prediction_rows(rows["customer_key"].tolist(), name, list(scores), artefact["version"], as_of, scored_at))
            counts[name] = len(rows)
    if "clv" in artefacts:
        artefact = artefacts["clv"]
        orders = customer_orders(con)
        scores = score_clv(artefact["fitted"], orders, as_of=as_of, settings=config.predict)
        for name in ("clv", "p_alive"):
            parts.append(_prediction_rows(scores["customer_key"].tolist(), name, scores[name].tolist(),
                                          artefact["version"], as_of, scored_at))
            counts[name] = len(scores)
    write_table(con, PREDICTIONS, pa.concat_tables(parts) if parts else PREDICTIONS_SCHEMA.empty_table())
    return counts


def _prediction_rows(
    customers: list[str], model: str, scores: list[float], version: int, as_of: dt.datetime, scored_at: dt.datetime
) -> pa.Table:
    n = len(customers)
    return pa.table({
        "customer_key": customers, "model": [model] * n, "score": [float(s) for s in scores],
        "model_version": [int(version)] * n, "as_of": [as_of] * n, "scored_at": [scored_at] * n,
    }, schema=PREDICTIONS_SCHEMA)


def build_predictions(con: BaseBackend, config: Config, progress: Progress | None = None) -> dict[str, int]:
    """The stage: train every model, then score with what trained; return the tables' row counts."""
    training = train_models(con, config, progress=progress)
    score_models(con, config, training=training, progress=progress)
    names = (PREDICTIONS, MODELS_TABLE, CLV_HOLDOUT)
    return {name: int(con.table(name).count().to_pyarrow().as_py()) for name in names if table_exists(con, name)}
