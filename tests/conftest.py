"""Shared fixtures: an engine-parametrised connection (DuckDB always, PySpark under `spark`), and one
small synthetic demo warehouse for the whole run."""

from __future__ import annotations

from pathlib import Path

import pytest

from spillover.config import Config
from spillover.engine import connect

FIXTURES = Path(__file__).parent / "fixtures"
TEST_KEY = b"test-key-0123456789abcdef0123456789abcdef"

ENGINES = ["duckdb", pytest.param("pyspark", marks=pytest.mark.spark)]


@pytest.fixture(scope="session")
def spark_backend():
    """One local Spark session for the whole run (starting one costs seconds)."""
    pytest.importorskip("pyspark")
    return connect("pyspark://local[2]")


def drop_all(con) -> None:
    """Drop every table and view (the shared Spark session outlives each test)."""
    for name in con.list_tables():
        try:
            con.drop_table(name, force=True)
        except Exception:
            con.drop_view(name, force=True)


def _warehouse(request, database: Path):
    """Yield an empty warehouse on the engine ``request.param`` names (DuckDB: a file at ``database``)."""
    if request.param == "duckdb":
        backend = connect(f"duckdb:///{database}")
        yield backend
        backend.disconnect()
    else:
        backend = request.getfixturevalue("spark_backend")
        drop_all(backend)
        yield backend
        drop_all(backend)


@pytest.fixture(params=ENGINES)
def con(request, tmp_path):
    """A fresh, empty warehouse on each engine."""
    yield from _warehouse(request, tmp_path / "test.duckdb")


@pytest.fixture(scope="module", params=ENGINES)
def engine(request, tmp_path_factory):
    """A warehouse per engine shared by one module's tests, for loads worth doing once."""
    yield from _warehouse(request, tmp_path_factory.mktemp("module") / "module.duckdb")


#: The synthetic demo every test that needs a whole resolved warehouse shares (about 10 s to build).
DEMO_SIZE = {"customers": 500, "days": 60, "seed": 11}


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory) -> dict[str, object]:
    """``run_demo`` on DuckDB at :data:`DEMO_SIZE`, once per test run: its summary plus
    ``directory`` (the project folder, data under ``data/``) and ``database`` (the DuckDB file).
    Read it, never write it."""
    from spillover.demo import run_demo

    directory = tmp_path_factory.mktemp("demo_warehouse")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPILLOVER_KEY", TEST_KEY.decode())
        summary = run_demo(directory, **DEMO_SIZE)
    return {**summary, "directory": directory, "database": summary["db"].removeprefix("duckdb:///")}


@pytest.fixture
def duck(tmp_path):
    """A DuckDB warehouse, for tests that are about DuckDB-only behaviour."""
    backend = connect(f"duckdb:///{tmp_path / 'test.duckdb'}")
    yield backend
    backend.disconnect()


@pytest.fixture
def config(tmp_path) -> Config:
    return Config(project_dir=tmp_path)


@pytest.fixture(autouse=True)
def _project_key(monkeypatch):
    monkeypatch.setenv("SPILLOVER_KEY", TEST_KEY.decode())
    yield


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def pytest_collection_modifyitems(config, items):
    # Spark tests share one session; running them last keeps the fast feedback first.
    items.sort(key=lambda item: 1 if item.get_closest_marker("spark") else 0)
