"""Engine helpers: atomic table writes and idempotent partition replacement, on every engine."""

from __future__ import annotations

import ibis
import pyarrow as pa
import pytest

from spillover import engine
from spillover.errors import SpilloverEngineError


def _rows(con, name):
    return sorted(map(tuple, con.table(name).to_pandas().itertuples(index=False)))


def test_replace_partitions_is_idempotent_and_keeps_other_partitions(con):
    engine.replace_partitions(con, "t", pa.table({"day": ["a", "a", "b"], "v": [1, 2, 3]}), "day")
    second = pa.table({"day": ["b", "c"], "v": [10, 20]})
    engine.replace_partitions(con, "t", second, "day")
    engine.replace_partitions(con, "t", second, "day")
    assert _rows(con, "t") == [("a", 1), ("a", 2), ("b", 10), ("c", 20)]


def test_replace_partitions_with_two_key_columns(con):
    first = pa.table({"day": ["a", "a"], "kind": ["x", "y"], "v": [1, 2]})
    engine.replace_partitions(con, "t", first, ["day", "kind"])
    engine.replace_partitions(con, "t", pa.table({"day": ["a"], "kind": ["y"], "v": [9]}), ["day", "kind"])
    assert _rows(con, "t") == [("a", "x", 1), ("a", "y", 9)]


def test_write_table_replaces_and_reads_its_own_previous_version(con):
    engine.write_table(con, "t", pa.table({"v": [1, 2, 3]}))
    engine.write_table(con, "t", con.table("t").filter(ibis._.v > 1))
    assert _rows(con, "t") == [(2,), (3,)]
    assert not [n for n in con.list_tables() if n.startswith("_spillover_")]


def test_failed_write_leaves_previous_table_intact(duck):
    engine.write_table(duck, "t", pa.table({"v": ["1", "2"]}))
    # The cast fails while the new rows are computed: the old table must survive untouched.
    bad = duck.table("t").mutate(v=ibis.literal("not a number").cast("int64"))
    with pytest.raises(Exception):
        engine.write_table(duck, "t", bad)
    assert _rows(duck, "t") == [("1",), ("2",)]


def test_append_rows_creates_then_appends(con):
    engine.append_rows(con, "log", pa.table({"x": [1]}))
    engine.append_rows(con, "log", pa.table({"x": [2]}))
    assert _rows(con, "log") == [(1,), (2,)]


def test_duckdb_url_forms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    con = engine.connect("duckdb:///rel/warehouse.duckdb")
    con.create_table("t", pa.table({"v": [1]}))
    con.disconnect()
    assert (tmp_path / "rel" / "warehouse.duckdb").exists()
    absolute = engine.connect(f"duckdb:///{tmp_path / 'abs.duckdb'}")
    assert absolute.list_tables() == []
    assert engine.connect("duckdb://").list_tables() == []


def test_read_only_connection_to_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(SpilloverEngineError, match=r"does not exist; load data first"):
        engine.connect(f"duckdb:///{tmp_path / 'missing.duckdb'}", read_only=True)


def test_unknown_url_names_the_url():
    with pytest.raises(SpilloverEngineError, match=r"could not connect to 'nosuchengine://x'"):
        engine.connect("nosuchengine://x")


def test_arrow_nulls_stay_null_on_every_engine(con):
    # PySpark through pandas would store a null string as the text 'NaN' and a null double as NaN.
    data = pa.table({"s": pa.array(["a", None]), "d": pa.array([1.5, None]), "k": [1, 2]})
    uploaded = engine.upload_arrow(con, data)
    engine.write_table(con, "w", data)
    engine.append_rows(con, "w", data)
    engine.replace_partitions(con, "p", data, "k")
    for table in (uploaded, con.table("w"), con.table("p")):
        assert table.s.isnull().sum().execute() == table.count().execute() // 2
        assert table.d.isnull().sum().execute() == table.count().execute() // 2


def test_scratch_tables_on_duckdb_never_reach_the_database_file(tmp_path):
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    con = engine.connect(url)
    scratch = engine.create_scratch_table(con, ibis.memtable({"x": [1, 2, 3]}), "test")
    assert scratch.get_name().startswith("_spillover_test_")
    assert engine.table_exists(con, scratch.get_name())
    assert scratch.x.sum().to_pyarrow().as_py() == 6
    con.disconnect()
    assert not [name for name in engine.connect(url).list_tables() if name.startswith("_spillover_")]
