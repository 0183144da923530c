"""Datasets shared by the synth tests, each generated once per test session.

``small`` is read in full (every GA4 line parsed once into a flat frame); ``medium`` is big enough
for the statistical checks, which read only its CSV files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import ibis.expr.datatypes as dt
import pandas as pd
import pytest

from spillover.ingest.ga4_schema import EXPORT_SCHEMA
from spillover.synth import generate

SMALL = {"customers": 600, "days": 150, "seed": 11}
MEDIUM = {"customers": 5000, "days": 365, "seed": 5}


def schema_problem(value: object, dtype: dt.DataType, where: str) -> str | None:
    """Where ``value`` departs from the export schema as ``bq extract`` writes it, or None.

    Records must carry exactly the schema's fields in its order; INT64 is a string of digits,
    FLOAT64 a JSON number, BOOL a JSON boolean; any value may be null.
    """
    if value is None:
        return None
    if dtype.is_struct():
        if not isinstance(value, dict) or list(value) != list(dtype.names):
            return f"{where}: fields {list(value) if isinstance(value, dict) else value!r}"
        for name, field_type in dtype.items():
            problem = schema_problem(value[name], field_type, f"{where}.{name}")
            if problem:
                return problem
        return None
    if dtype.is_array():
        if not isinstance(value, list):
            return f"{where}: not a list"
        for element in value:
            problem = schema_problem(element, dtype.value_type, f"{where}[]")
            if problem:
                return problem
        return None
    if dtype.is_int64():
        ok = isinstance(value, str) and value.lstrip("-").isdigit()
    elif dtype.is_float64():
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif dtype.is_boolean():
        ok = isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    return None if ok else f"{where}: {value!r} is not {dtype}"


@dataclass
class Dataset:
    root: Path
    summary: dict[str, object]
    _frames: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    def csv(self, relative: str) -> pd.DataFrame:
        """A CSV of the dataset, every column as text (empty cells as "")."""
        if relative not in self._frames:
            self._frames[relative] = pd.read_csv(self.root / relative, dtype=str, keep_default_na=False)
        return self._frames[relative]

    @cached_property
    def impact(self) -> dict[str, object]:
        return json.loads((self.root / "truth" / "impact.json").read_text())

    def ga4_files(self) -> list[Path]:
        return sorted((self.root / "ga4").glob("events_*.json"))


@pytest.fixture(scope="session")
def small_arguments() -> dict[str, int]:
    return dict(SMALL)


@pytest.fixture(scope="session")
def small(tmp_path_factory) -> Dataset:
    root = tmp_path_factory.mktemp("synth-small") / "data"
    return Dataset(root, generate(root, **SMALL))


@pytest.fixture(scope="session")
def medium(tmp_path_factory) -> Dataset:
    root = tmp_path_factory.mktemp("synth-medium") / "data"
    return Dataset(root, generate(root, **MEDIUM))


@pytest.fixture(scope="session")
def small_events(small) -> tuple[pd.DataFrame, list[dict]]:
    """Every GA4 row of ``small`` as a flat frame (one row per line), plus a sample of parsed rows."""
    rows, sample = [], []
    for path in small.ga4_files():
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                event = json.loads(line)
                problem = schema_problem(event, dt.Struct(dict(EXPORT_SCHEMA.items())), "row")
                values_set = [sum(v is not None for v in p["value"].values()) for p in event["event_params"]]
                if problem is None and max(values_set, default=0) > 1:
                    problem = "an event parameter has more than one value set"
                params = {p["key"]: p["value"] for p in event["event_params"]}
                session = params.get("ga_session_id", {}).get("int_value")
                rows.append({
                    "file": path.name,
                    "line": number,
                    "raw": line,
                    "event_date": event["event_date"],
                    "event_timestamp": event["event_timestamp"],
                    "event_name": event["event_name"],
                    "user_id": event["user_id"],
                    "user_pseudo_id": event["user_pseudo_id"],
                    "ga_session_id": session,
                    "has_session_params": "ga_session_id" in params,
                    "stream_id": event["stream_id"],
                    "platform": event["platform"],
                    "analytics_storage": event["privacy_info"]["analytics_storage"],
                    "transaction_id": (event["ecommerce"] or {}).get("transaction_id"),
                    "purchase_revenue": (event["ecommerce"] or {}).get("purchase_revenue"),
                    "n_items": len(event["items"]),
                    "schema_problem": problem or "",
                })
                if number % 50 == 1:
                    sample.append(event)
    return pd.DataFrame(rows), sample
