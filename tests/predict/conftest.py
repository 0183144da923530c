"""A synthetic warehouse big enough to judge the propensity models, built once for tests/predict.

The session-wide demo (500 customers x 60 days) holds about 30 buyers per week: too few to train on
with the default thresholds or to tell an AUC of 0.75 from 0.7. This one (1,000 x 90 days, seed 5)
runs the whole pipeline, the ``predict`` stage with its default settings included (about 40 s).
"""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import TEST_KEY

PREDICT_SIZE = {"customers": 1000, "days": 90, "seed": 5}


@pytest.fixture(scope="session")
def predict_warehouse(tmp_path_factory) -> dict[str, object]:
    """``run_demo`` at :data:`PREDICT_SIZE`: its summary plus ``directory`` and ``database``. Read only;
    copy it (:func:`warehouse_copy`) to change it."""
    from spillover.demo import run_demo

    directory = tmp_path_factory.mktemp("predict_warehouse")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPILLOVER_KEY", TEST_KEY.decode())
        summary = run_demo(directory, **PREDICT_SIZE)
    return {**summary, "directory": directory, "database": summary["db"].removeprefix("duckdb:///")}


@pytest.fixture
def warehouse_copy(predict_warehouse, tmp_path):
    """A writable copy of the project folder (config, models/ and the DuckDB file)."""
    copy = tmp_path / "project"
    shutil.copytree(predict_warehouse["directory"], copy, ignore=shutil.ignore_patterns("data"))
    return copy
