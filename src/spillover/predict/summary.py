"""A short account of the latest predictions: each model's out-of-time figures and the top customers.

Read from ``ops_models`` and ``mart_predictions``; used by the demo's summary.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from spillover.engine import table_exists
from spillover.predict.build import MODELS_TABLE, PREDICTIONS

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

__all__ = ["prediction_summary"]

#: Figures shown per model, from its metrics JSON.
SHOWN = {
    "purchase_probability": ("customers", "positives", "roc_auc", "pr_auc", "top_decile_lift", "brier"),
    "churn_probability": ("customers", "positives", "roc_auc", "pr_auc", "top_decile_lift", "brier"),
    "predicted_revenue": ("customers", "buyers", "buyer_roc_auc", "spearman", "top_decile_lift", "total_ratio"),
}


def prediction_summary(con: BaseBackend, *, top: int = 5) -> dict[str, Any]:
    """The latest row of each model in ``ops_models`` (its headline metrics, or why it was refused)
    and the ``top`` customers by ``clv`` with their other scores."""
    if not table_exists(con, MODELS_TABLE):
        return {}
    models = con.table(MODELS_TABLE).to_pandas().sort_values("trained_at").groupby("model").tail(1)
    out: dict[str, Any] = {"models": {}, "top_customers": []}
    for row in models.itertuples(index=False):
        if row.status != "trained":
            out["models"][row.model] = {"status": row.status, "message": row.message}
            continue
        metrics = json.loads(row.metrics)
        if row.model == "clv":
            figures = {k: metrics["holdout"][k] for k in ("holdout_days", "customers", "actual_purchases", "predicted_purchases", "ratio")}
        else:
            figures = {k: metrics[k] for k in SHOWN[row.model]}
        out["models"][row.model] = {"status": row.status, "version": int(row.version), **figures}
    if table_exists(con, PREDICTIONS):
        scores = con.table(PREDICTIONS).to_pandas()
        wide = scores.pivot_table(index="customer_key", columns="model", values="score", aggfunc="first")
        if "clv" in wide.columns:
            best = wide.sort_values("clv", ascending=False).head(top)
            out["top_customers"] = [
                {"customer_key": key, **{name: (None if value != value else float(value)) for name, value in row.items()}}
                for key, row in best.iterrows()
            ]
    return out
