"""Fit the CLV models to a file and report them: the library side of ``spillover clv fit``.

Reads an RFM summary or a transactions file (CSV or Parquet), fits BG/NBD (and Gamma-Gamma when
spend is known), and returns the estimates as a plain dictionary, with an out-of-sample check when
a calibration window leaves a holdout period, and per-customer predictions on request.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spillover.errors import SpilloverInputError
from spillover.predict.clv import BetaGeoModel, GammaGammaModel, predict_customers
from spillover.predict.pareto_nbd import ParetoNBDModel
from spillover.predict.rfm import TIME_UNITS, check_rfm, rfm_summary

__all__ = [
    "CLVFit", "ID_COLUMNS", "PURCHASE_MODELS", "fit_clv", "read_table", "summary_from_file", "summary_from_transactions",
    "write_table",
]

# columns carried through as the customer id of a summary file when --customer-id is not given
ID_COLUMNS = ("customer_id", "ID", "id")
# purchase models by the name used in JSON output and on the command line
PURCHASE_MODELS = {"bgnbd": BetaGeoModel, "pareto_nbd": ParetoNBDModel}
SUFFIXES = {".csv": "CSV", ".parquet": "Parquet", ".pq": "Parquet"}


def _kind(path: Path) -> str:
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise SpilloverInputError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; use .csv or .parquet"
        )
    return kind


def read_table(path: Path | str) -> pd.DataFrame:
    """A CSV or Parquet file (by extension) as a DataFrame; errors name the file and what to do."""
    path = Path(path)
    kind = _kind(path)
    if not path.is_file():
        raise SpilloverInputError(f"{path}: no such file")
    try:
        return pd.read_csv(path) if kind == "CSV" else pd.read_parquet(path)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise SpilloverInputError(f"{path}: cannot be read as {kind}: {exc}") from exc


def summary_from_file(path: Path | str, *, id_column: str | None = None) -> tuple[pd.DataFrame, str | None]:
    """An RFM summary file and the name of its id column (``id_column``, else the first of
    ``customer_id, ID, id`` present, else ``None``)."""
    frame = read_table(path)
    if id_column is not None and id_column not in frame.columns:
        raise SpilloverInputError(
            f"{path}: id column {id_column!r} missing (found {', '.join(map(str, frame.columns))})"
        )
    if id_column is None:
        id_column = next((name for name in ID_COLUMNS if name in frame.columns), None)
    return frame, id_column


def summary_from_transactions(
    path: Path | str,
    *,
    customer_id: str,
    datetime: str,
    monetary: str | None = None,
    freq: str = "W",
    calibration_end: Any = None,
    observation_end: Any = None,
) -> pd.DataFrame:
    """The RFM summary of a transactions file (see :func:`spillover.predict.rfm.rfm_summary`)."""
    return rfm_summary(
        read_table(path), customer_id, datetime, monetary=monetary, freq=freq,
        calibration_end=calibration_end, observation_end=observation_end, where=str(path),
    )


@dataclass
class CLVFit:
    """Fitted models, the summary they were fitted on, and the warnings the fit raised."""

    summary: pd.DataFrame
    purchase_model: BetaGeoModel | ParetoNBDModel
    spend_model: GammaGammaModel | None
    time_unit: str
    id_column: str | None = None
    source: str = ""
    warnings: list[str] = field(default_factory=list)

    def holdout_check(self) -> dict[str, Any] | None:
        """Predicted against actual purchases in the holdout window, when the summary has one."""
        if "frequency_holdout" not in self.summary.columns:
            return None
        duration = float(self.summary["duration_holdout"].iloc[0])
        if duration <= 0:
            return None
        s = self.summary
        predicted = self.purchase_model.expected_purchases(duration, s["frequency"], s["recency"], s["T"])
        actual = s["frequency_holdout"].to_numpy(dtype=float)
        return {
            "periods": duration,
            "actual_purchases": float(actual.sum()),
            "predicted_purchases": float(predicted.sum()),
            "mean_absolute_error": float(np.mean(np.abs(predicted - actual))),
        }

    def to_dict(self) -> dict[str, Any]:
        """The estimates as JSON-ready data (the output of ``spillover clv fit --json``)."""
        purchase = self.purchase_model
        name = next(key for key, kind in PURCHASE_MODELS.items() if isinstance(purchase, kind))
        out: dict[str, Any] = {
            "source": self.source,
            "time_unit": self.time_unit,
            "n_customers": int(round(purchase.n_customers_)),
            name: purchase.params_,
            f"{name}_standard_errors": _finite(purchase.standard_errors_),
            "log_likelihood": purchase.log_likelihood_,
            "converged": purchase.converged_,
        }
        if self.spend_model is not None:
            spend = self.spend_model
            out.update(
                gamma_gamma=spend.params_,
                gamma_gamma_standard_errors=_finite(spend.standard_errors_),
                gamma_gamma_log_likelihood=spend.log_likelihood_,
                n_repeat_customers=int(round(spend.n_customers_)),
                frequency_spend_correlation=_finite_value(spend.frequency_spend_correlation_),
            )
            out["converged"] = out["converged"] and spend.converged_
        holdout = self.holdout_check()
        if holdout is not None:
            out["holdout"] = holdout
        out["warnings"] = self.warnings
        return out

    def predictions(self, *, horizon: int = 12, discount_rate: float = 0.01, margin: float = 1.0) -> pd.DataFrame:
        """Per-customer expected purchases over ``horizon`` months, p_alive and (with spend) CLV."""
        return predict_customers(
            self.summary, self.purchase_model, self.spend_model, horizon=horizon,
            discount_rate=discount_rate, margin=margin, time_unit=self.time_unit,
            id_column=self.id_column, where=self.source or "RFM summary",
        )


def _finite_value(value: float) -> float | None:
    return value if np.isfinite(value) else None


def _finite(values: dict[str, float]) -> dict[str, float | None]:
    return {name: _finite_value(value) for name, value in values.items()}


def fit_clv(
    summary: pd.DataFrame,
    *,
    time_unit: str = "W",
    purchase_model: str = "bgnbd",
    spend: bool | None = None,
    id_column: str | None = None,
    source: str = "RFM summary",
) -> CLVFit:
    """Fit the purchase model (``bgnbd`` or ``pareto_nbd``), and Gamma-Gamma when ``spend`` (default:
    a ``monetary_value`` column is present).

    ``time_unit`` is the period of ``recency`` and ``T`` (``"D"`` or ``"W"``), used to turn months into
    periods for CLV. Optimiser warnings are collected in :attr:`CLVFit.warnings` as well as raised.
    """
    if time_unit not in TIME_UNITS:
        raise SpilloverInputError(f"time unit {time_unit!r} is not supported; use 'D' (days) or 'W' (weeks)")
    if purchase_model not in PURCHASE_MODELS:
        raise SpilloverInputError(
            f"purchase model {purchase_model!r} is not supported; use {' or '.join(PURCHASE_MODELS)}"
        )
    spend = "monetary_value" in summary.columns if spend is None else spend
    check_rfm(summary, columns=("frequency", "recency", "T") + (("monetary_value",) if spend else ()), where=source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        purchase = PURCHASE_MODELS[purchase_model]().fit(summary)
        spend_model = GammaGammaModel().fit(summary) if spend else None
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return CLVFit(
        summary=summary, purchase_model=purchase, spend_model=spend_model, time_unit=time_unit,
        id_column=id_column, source=source, warnings=[str(w.message) for w in caught],
    )


def write_table(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write ``frame`` as CSV or Parquet, by the extension of ``path``."""
    path = Path(path)
    kind = _kind(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "CSV":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path

