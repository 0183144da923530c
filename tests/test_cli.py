"""The command line: help for every command, docs in sync, init, sql, errors and start-up cost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from spillover import clidocs
from spillover.cli import app
from spillover.engine import connect

runner = CliRunner()
DOCS = Path(__file__).parents[1] / "docs" / "cli.md"


def invoke(*args, **kwargs):
    return runner.invoke(app, list(args), prog_name="spillover", **kwargs)


@pytest.mark.parametrize("path", clidocs.command_paths(), ids=lambda p: " ".join(p) or "root")
def test_every_command_has_help_with_an_example(path):
    text = clidocs.help_text(path)
    assert "Usage: spillover" in text
    assert "Example:" in text


def test_cli_reference_is_up_to_date():
    assert DOCS.read_text() == clidocs.render(), "docs/cli.md is stale: run `make docs`"


def test_commands_returning_data_offer_json():
    for path in clidocs.command_paths():
        if path and path != ("ingest",):
            assert "--json" in clidocs.help_text(path), path


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from spillover.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('ibis', 'duckdb', 'pyspark', 'pandas', 'pyarrow', 'sklearn', 'pydantic') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY=\n" in out


def test_init_is_safe_to_rerun(tmp_path, monkeypatch):
    monkeypatch.delenv("SPILLOVER_KEY")
    first = json.loads(invoke("init", str(tmp_path), "--json").output)
    second = json.loads(invoke("init", str(tmp_path), "--json").output)
    assert first["key_written"] is True and second["key_written"] is False
    assert second["config_written"] is False


def _warehouse(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    con = connect("duckdb:///spillover.duckdb")
    con.create_table("ops_loads", pa.table({"source": ["ga4", "crm"], "rows_read": [10, 3]}))
    con.disconnect()


def test_sql_json_output(tmp_path, monkeypatch):
    _warehouse(tmp_path, monkeypatch)
    result = invoke("sql", "select source, rows_read from ops_loads order by source", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"source": "crm", "rows_read": 3}, {"source": "ga4", "rows_read": 10}]


def test_sql_refuses_writes_with_exit_code_2(tmp_path, monkeypatch):
    _warehouse(tmp_path, monkeypatch)
    proc = subprocess.run(
        [sys.executable, "-m", "spillover.cli", "sql", "drop table ops_loads"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "only read-only queries are allowed (got DROP)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sql_engine_error_is_one_clean_line(tmp_path, monkeypatch):
    _warehouse(tmp_path, monkeypatch)
    proc = subprocess.run(
        [sys.executable, "-m", "spillover.cli", "sql", "select nope from ops_loads"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: the engine rejected the query:")


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    _warehouse(tmp_path, monkeypatch)
    proc = subprocess.run(
        [sys.executable, "-m", "spillover.cli", "--debug", "sql", "drop table ops_loads"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_tables_lists_counts(tmp_path, monkeypatch):
    _warehouse(tmp_path, monkeypatch)
    assert json.loads(invoke("tables", "--json").output) == {"ops_loads": 2}


def test_sql_limit_reports_truncation(tmp_path, monkeypatch):
    _warehouse(tmp_path, monkeypatch)
    result = invoke("sql", "select * from ops_loads", "--limit", "1")
    assert "showing 1 of 2 rows" in result.output
