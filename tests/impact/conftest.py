"""A synthetic year (4,000 customers × 365 days, seed 0) built once for the slow impact tests.

GA4 is loaded for one day only (the impact design reads orders; a day of events suffices for the
stages to run), then the stage, identity and profiles stages. spillover.toml carries the business's
serving costs, as the demo's does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from spillover.config import init_project, load_config
from spillover.engine import connect

YEAR = {"customers": 4000, "days": 365, "seed": 0}


@pytest.fixture(scope="session")
def synthetic_year(tmp_path_factory) -> Any:
    """``{"con", "config", "data"}``: a warehouse of the synthetic year and its data folder."""
    from spillover.demo import TABULAR_SOURCES, write_business_costs
    from spillover.ingest.ga4 import ingest_ga4
    from spillover.ingest.tabular import ingest_source
    from spillover.pipeline import run_pipeline
    from spillover.synth import generate

    directory = tmp_path_factory.mktemp("impact_year")
    data: Path = directory / "data"
    summary = generate(data, **YEAR)
    init_project(directory, db=f"duckdb:///{directory / 'warehouse.duckdb'}", timezone=summary["property_timezone"])
    write_business_costs(directory / "spillover.toml")
    config = load_config(directory)
    con = connect(config.db)
    ingest_ga4(con, sorted((data / "ga4").glob("events_*.json"))[:1], config=config)
    for source, relative in TABULAR_SOURCES:
        ingest_source(con, source, data / relative, config=config)
    run_pipeline(con, config, stages=["stage", "identity", "profiles"])
    yield {"con": con, "config": config, "data": data}
    con.disconnect()
