"""How good a propensity or revenue model is on customers it never saw: the out-of-time metrics.

Probabilities get ROC-AUC, PR-AUC (average precision), lift in the top decile, the Brier score (and
its skill against always predicting the base rate) and a 10-bin reliability table; predicted revenue
gets errors, totals, rank correlation, the top decile's share of the actual revenue and a reliability
table by decile of the prediction. Every figure is plain JSON-ready data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

__all__ = ["RELIABILITY_BINS", "classification_metrics", "regression_metrics", "top_decile"]

RELIABILITY_BINS = 10


def top_decile(scores: np.ndarray) -> np.ndarray:
    """A mask of the ceil(n/10) highest scores (ties broken by position, so the size is exact)."""
    order = np.argsort(-scores, kind="stable")
    mask = np.zeros(len(scores), dtype=bool)
    mask[order[: math.ceil(len(scores) / 10)]] = True
    return mask


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def classification_metrics(outcome: np.ndarray, probability: np.ndarray) -> dict[str, Any]:
    """Metrics of predicted probabilities against 0/1 outcomes (both classes must be present)."""
    y = np.asarray(outcome, dtype=float)
    p = np.asarray(probability, dtype=float)
    base_rate = float(y.mean())
    brier = float(brier_score_loss(y, p))
    reference = base_rate * (1 - base_rate)
    edges = np.linspace(0.0, 1.0, RELIABILITY_BINS + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=False), 0, RELIABILITY_BINS - 1)
    reliability = []
    for index in range(RELIABILITY_BINS):
        inside = which == index
        count = int(inside.sum())
        reliability.append({
            "bin_low": float(edges[index]),
            "bin_high": float(edges[index + 1]),
            "customers": count,
            "mean_score": float(p[inside].mean()) if count else None,
            "observed_rate": float(y[inside].mean()) if count else None,
        })
    top = top_decile(p)
    return {
        "customers": len(y),
        "positives": int(y.sum()),
        "base_rate": base_rate,
        "mean_score": float(p.mean()),
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "top_decile_rate": float(y[top].mean()),
        "top_decile_lift": _number(y[top].mean() / base_rate) if base_rate > 0 else None,
        "brier": brier,
        "brier_skill": _number(1 - brier / reference) if reference > 0 else None,
        "reliability": reliability,
    }


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Metrics of predicted amounts (revenue) against actual amounts."""
    y = np.asarray(actual, dtype=float)
    yhat = np.asarray(predicted, dtype=float)
    top = top_decile(yhat)
    total = float(y.sum())
    buyers = y > 0
    order = np.argsort(yhat, kind="stable")
    reliability = []
    for index, part in enumerate(np.array_split(order, RELIABILITY_BINS)):
        reliability.append({
            "decile": index + 1,
            "customers": int(len(part)),
            "mean_predicted": float(yhat[part].mean()) if len(part) else None,
            "mean_actual": float(y[part].mean()) if len(part) else None,
        })
    share = float(y[top].sum() / total) if total > 0 else None
    return {
        "customers": len(y),
        "buyers": int(buyers.sum()),
        "actual_total": total,
        "predicted_total": float(yhat.sum()),
        "total_ratio": _number(yhat.sum() / total) if total > 0 else None,
        "mae": float(np.mean(np.abs(y - yhat))),
        "rmse": float(np.sqrt(np.mean((y - yhat) ** 2))),
        "spearman": _number(spearmanr(y, yhat).statistic) if np.ptp(y) > 0 and np.ptp(yhat) > 0 else None,
        "buyer_roc_auc": float(roc_auc_score(buyers, yhat)) if 0 < buyers.sum() < len(y) else None,
        "top_decile_share": share,
        "top_decile_lift": share / (top.sum() / len(y)) if share is not None else None,
        "reliability": reliability,
    }
