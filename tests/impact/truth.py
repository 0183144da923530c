"""Reading the synthetic truth for the impact tests: true adopters, people behind customers, local days."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from spillover.impact.calendar import day_number
from spillover.synth.scoring import person_of_each_customer, person_of_each_id
from tests.conftest import TEST_KEY


def adopters_of(truth: Path, device: str) -> pd.DataFrame:
    """``truth/adopters.csv`` rows of ``device``, with ``period_days`` (the days the data covers)."""
    adopters = pd.read_csv(truth / "adopters.csv")
    adopters = adopters[adopters.device == device].copy()
    adopters["period_days"] = json.loads((truth / "impact.json").read_text())["period"]["days"]
    return adopters


def local_days(instants: pd.Series, timezone: str) -> pd.Series:
    """Day numbers (days since 1970-01-01) of UTC instants in ``timezone``, computed by pandas."""
    local = pd.to_datetime(instants, utc=True).dt.tz_convert(timezone)
    return local.dt.date.map(day_number).astype("int64")


def persons_of_customers(con, truth: Path) -> dict[str, str]:
    """customer_key → the synthetic person behind it."""
    events = con.table("stg_ga4__events")
    clients = events.filter(events.client_key.notnull()).select("client_key", "user_pseudo_id").distinct().to_pandas()
    person_of = person_of_each_id(truth, dict(zip(clients.client_key, clients.user_pseudo_id)), TEST_KEY)
    return person_of_each_customer(con, person_of)

