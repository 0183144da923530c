"""A synthetic year (4,000 customers × 365 days, seed 0) built once for the slow impact tests.

GA4 is loaded for one day only (the impact design reads orders; a day of events suffices for the
stages to run), then the stage, identity and profiles stages. spillover.toml carries the business's
serving costs, as the demo's does.
"""

from __future__ import annotations

from typing import Any

import pytest

YEAR = {"customers": 4000, "days": 365, "seed": 0}


@pytest.fixture(scope="session")
def synthetic_year(tmp_path_factory) -> Any:
    """``{"con", "config", "data"}``: a warehouse of the synthetic year and its data folder."""
    from spillover.demo import synthesise_and_load
    from spillover.pipeline import run_pipeline

    directory = tmp_path_factory.mktemp("impact_year")
    project = synthesise_and_load(directory, **YEAR, db=f"duckdb:///{directory / 'warehouse.duckdb'}", ga4_days=1)
    con, config, data = project.con, project.config, project.data_dir
    run_pipeline(con, config, stages=["stage", "identity", "profiles"])
    yield {"con": con, "config": config, "data": data}
    con.disconnect()
