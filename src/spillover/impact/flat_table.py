"""Downstream impact from one flat table (a row per customer): read, check, encode, estimate.

This is what ``spillover impact estimate`` runs and what the warehouse side calls with the
per-customer frame it builds. Checks name the file and the column; categorical covariates are
one-hot encoded, numeric ones keep their missing values (the gradient-boosting models handle them).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spillover.errors import SpilloverInputError
from spillover.impact.diagnostics import as_plain
from spillover.impact.estimators import DownstreamImpact, ImpactResult

__all__ = ["TableImpact", "read_flat_table", "encode_covariates", "estimate_from_table"]

#: Categorical covariates keep their most frequent levels; the rest share one "(other)" column.
MAX_LEVELS = 50


@dataclass(frozen=True)
class TableImpact:
    """An :class:`ImpactResult` with what it was estimated from."""

    source: str
    rows: int
    treatment: str
    outcome: str
    placebo_outcome: str | None
    covariates: list[str]
    encoded_covariates: int
    result: ImpactResult

    def to_dict(self) -> dict[str, Any]:
        data = self.result.to_dict()
        data.update(
            source=self.source, rows=self.rows, treatment=self.treatment, outcome=self.outcome,
            placebo_outcome=self.placebo_outcome, covariates=list(self.covariates),
            encoded_covariates=self.encoded_covariates,
        )
        return as_plain(data)


def read_flat_table(path: Path | str) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame; a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise SpilloverInputError(f"{path}: no such file")
    suffixes = "".join(path.suffixes[-2:]).lower()
    try:
        if suffixes.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if suffixes.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise SpilloverInputError(f"{path}: could not read the file: {exc}") from None
    raise SpilloverInputError(f"{path}: unsupported file type; give a .csv, .csv.gz or .parquet file")


def _is_identifier(values: pd.Series) -> bool:
    """Text or integer column with a distinct value on every row: a key, not a covariate."""
    if pd.api.types.is_float_dtype(values) or pd.api.types.is_bool_dtype(values):
        return False
    return len(values) > 1 and values.nunique(dropna=False) == len(values)


def encode_covariates(frame: pd.DataFrame, columns: list[str], *, source: str, chosen: bool) -> tuple[pd.DataFrame, list[str]]:
    """Numeric design matrix from ``columns`` of ``frame`` and notes on what was done.

    Numbers and booleans pass as floats (missing values stay NaN); dates become days since
    1970-01-01; text and categories are one-hot encoded with a ``(missing)`` level. Unless the user
    ``chosen`` the columns, identifier-like and date columns are left out with a note.
    """
    parts: list[pd.DataFrame] = []
    notes: list[str] = []
    for name in columns:
        values = frame[name]
        if not chosen and _is_identifier(values):
            notes.append(f"Column {name!r} has a distinct value on every row (an identifier?); left out of the covariates.")
            continue
        if pd.api.types.is_datetime64_any_dtype(values):
            if not chosen:
                notes.append(f"Date column {name!r} left out of the covariates; derive a number from it, or name it in --covariates.")
                continue
            days = (values - pd.Timestamp("1970-01-01", tz=getattr(values.dtype, "tz", None))) / pd.Timedelta(days=1)
            parts.append(days.astype(float).rename(name).to_frame())
        elif pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            parts.append(values.astype(float).rename(name).to_frame())
        else:
            parts.append(_one_hot(values.astype("string"), name))
            continue
        missing = int(parts[-1].isna().sum().sum())
        if missing:
            notes.append(f"Covariate {name!r} has {missing:,} missing values; the models treat them as their own branch.")
    if not parts:
        raise SpilloverInputError(f"{source}: no usable covariate columns; name them with --covariates")
    return pd.concat(parts, axis=1), notes


def _one_hot(values: pd.Series, name: str) -> pd.DataFrame:
    levels = values.fillna("(missing)")
    counts = levels.value_counts()
    if len(counts) > MAX_LEVELS:
        keep = set(counts.index[: MAX_LEVELS - 1])
        levels = levels.where(levels.isin(keep), "(other)")
    dummies = pd.get_dummies(levels, prefix=name, prefix_sep="=", dtype=float)
    # One level is redundant for the models but kept: balance is reported for every level.
    return dummies


def _column(frame: pd.DataFrame, name: str, source: str, role: str) -> pd.Series:
    if name not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:20])) + (" …" if len(frame.columns) > 20 else "")
        raise SpilloverInputError(f"{source}: {role} column {name!r} not found (columns: {shown})")
    return frame[name]


def _treatment(frame: pd.DataFrame, name: str, source: str) -> np.ndarray:
    values = _column(frame, name, source, "treatment")
    missing = int(values.isna().sum())
    if missing:
        raise SpilloverInputError(f"{source}: treatment column {name!r} has {missing:,} missing values; it must be 0 or 1 on every row")
    numeric = pd.to_numeric(values.astype("object").map(lambda v: int(v) if isinstance(v, (bool, np.bool_)) else v), errors="coerce")
    bad = ~numeric.isin([0, 1])
    if bad.any():
        examples = ", ".join(repr(v) for v in values[bad].drop_duplicates().head(3).tolist())
        raise SpilloverInputError(
            f"{source}: treatment column {name!r} must be 0/1 (1 = bought the product); found {examples}"
        )
    d = numeric.to_numpy(dtype=np.int64)
    if d.sum() == 0:
        raise SpilloverInputError(f"{source}: treatment column {name!r} has no treated units (no 1s); nothing to estimate")
    if d.sum() == len(d):
        raise SpilloverInputError(f"{source}: treatment column {name!r} has no control units (no 0s); nothing to compare with")
    return d


def _outcome(frame: pd.DataFrame, name: str, source: str, role: str) -> np.ndarray:
    values = _column(frame, name, source, role)
    numeric = pd.to_numeric(values, errors="coerce")
    not_numbers = int((numeric.isna() & values.notna()).sum())
    if not_numbers:
        raise SpilloverInputError(f"{source}: {role} column {name!r} has {not_numbers:,} values that are not numbers")
    missing = int(numeric.isna().sum())
    if missing:
        raise SpilloverInputError(
            f"{source}: {role} column {name!r} has {missing:,} missing values; drop or fill those rows first"
        )
    y = numeric.to_numpy(dtype=np.float64)
    if not np.isfinite(y).all():
        raise SpilloverInputError(f"{source}: {role} column {name!r} has infinite values")
    if len(y) and np.ptp(y) == 0:
        raise SpilloverInputError(f"{source}: {role} column {name!r} is constant ({y[0]:g} on every row); there is no effect to estimate")
    return y


def estimate_from_table(
    data: pd.DataFrame | Path | str,
    *,
    treatment: str,
    outcome: str,
    covariates: list[str] | None = None,
    estimand: str = "att",
    placebo_outcome: str | None = None,
    source: str | None = None,
    **estimator_params: Any,
) -> TableImpact:
    """Estimate the impact of ``treatment`` on ``outcome`` in a flat table (a frame, CSV or Parquet).

    ``covariates`` default to every other column (identifiers and dates left out, with a note).
    ``estimator_params`` go to :class:`DownstreamImpact` (``n_folds``, ``trim``, models, ...).
    """
    if isinstance(data, pd.DataFrame):
        frame, source = data, source or "table"
    else:
        frame, source = read_flat_table(data), source or str(data)
    if frame.empty:
        raise SpilloverInputError(f"{source}: the table has no rows")
    d = _treatment(frame, treatment, source)
    y = _outcome(frame, outcome, source, "outcome")
    placebo = None if placebo_outcome is None else _outcome(frame, placebo_outcome, source, "placebo outcome")
    used = {treatment, outcome} | ({placebo_outcome} if placebo_outcome else set())
    chosen = covariates is not None
    if covariates is None:
        covariates = [str(c) for c in frame.columns if c not in used]
    for name in covariates:
        _column(frame, name, source, "covariate")
        if name in used:
            raise SpilloverInputError(f"{source}: column {name!r} cannot be both a covariate and the treatment or an outcome")
    design, notes = encode_covariates(frame, covariates, source=source, chosen=chosen)
    model = DownstreamImpact(estimand=estimand, **estimator_params)
    result = model.fit(design, d, y, placebo_outcome=placebo).result_
    result = replace(result, warnings=[*result.warnings, *notes])
    return TableImpact(
        source=source, rows=len(frame), treatment=treatment, outcome=outcome, placebo_outcome=placebo_outcome,
        covariates=[c for c in covariates if any(col == c or col.startswith(f"{c}=") for col in design.columns)],
        encoded_covariates=design.shape[1], result=result,
    )
