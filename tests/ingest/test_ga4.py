"""GA4 export ingestion on DuckDB and Spark: what loads, typed as exported, and reloads idempotently.

Loads are expensive on Spark, so a few module-scoped loads are snapshotted (as plain Python data)
and many tests read the same snapshot; tests that need a sequence of loads use ``con``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spillover.config import Config
from spillover.engine import connect
from spillover.errors import SpilloverInputError
from spillover.ingest.ga4 import BASE_TABLE, ingest_ga4
from spillover.ingest.ga4_schema import EXPORT_SCHEMA
from spillover.ingest.quarantine import LoadResult
from tests.conftest import drop_all

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ga4"
DAILY = FIXTURES / "events_20240406.json"
INTRADAY = FIXTURES / "events_intraday_20240407.json"


def fixture_events(path: Path = DAILY) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_lines(path: Path, events: list[dict | str]) -> Path:
    path.write_text("".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events))
    return path


@dataclass
class Snapshot:
    """A load's result and tables as plain Python data (safe to keep across tests)."""

    result: LoadResult
    base: list[dict]
    quarantine: list[dict]
    loads: list[dict]


def snapshot(con, result: LoadResult) -> Snapshot:
    def rows(name):
        return con.table(name).to_pyarrow().to_pylist() if name in con.list_tables() else []

    return Snapshot(result, rows(BASE_TABLE), rows("ops_quarantine"), rows("ops_loads"))


@pytest.fixture(scope="module")
def fixture_load(engine) -> Snapshot:
    drop_all(engine)
    return snapshot(engine, ingest_ga4(engine, [FIXTURES], config=Config()))


@pytest.fixture(scope="module")
def fixture_reload(engine, fixture_load) -> Snapshot:
    """The same files loaded a second time, on top of ``fixture_load``."""
    return snapshot(engine, ingest_ga4(engine, [FIXTURES], config=Config()))


def _by_line(rows: list[dict], source_file: str) -> dict[int, dict]:
    return {r["_source_line"]: r for r in rows if r["_source_file"] == source_file}


# ------------------------------------------------------------------------------------------------
# the fixture export


def test_fixture_export_loads_with_reconciled_counts(fixture_load):
    r = fixture_load.result
    # 7 daily lines (one an exact duplicate) + 2 intraday lines of the next date
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined, r.duplicates_dropped) == (9, 8, 0, 1)
    assert r.rows_read == r.rows_loaded + r.rows_quarantined + r.duplicates_dropped
    assert r.partitions == ["2024-04-06", "2024-04-07"]
    assert r.files == [str(DAILY), str(INTRADAY)]
    assert r.file_errors == []
    assert r.tables == {"base_ga4__events": 8, "stg_ga4__event_items": 3, "stg_ga4__events": 8}
    assert fixture_load.quarantine == []


def test_base_keeps_the_export_columns_typed_plus_lineage(fixture_load):
    assert set(fixture_load.base[0]) == {
        *EXPORT_SCHEMA.names, "_extra_fields", "_source_file", "_source_line", "_export_table",
        "_export_date", "_load_id",
    }
    daily = _by_line(fixture_load.base, str(DAILY))
    purchase = daily[4]
    assert purchase["event_name"] == "purchase"
    assert purchase["event_timestamp"] == 1712391850000000  # "1712391850000000" in the file
    assert purchase["event_bundle_sequence_id"] == 5003
    assert purchase["ecommerce"]["transaction_id"] == "T-1001"
    assert purchase["ecommerce"]["purchase_revenue"] == pytest.approx(59.98)
    assert purchase["ecommerce"]["total_item_quantity"] == 3
    assert [(i["item_id"], i["quantity"], i["price"]) for i in purchase["items"]] == [
        ("SKU-100", 2, pytest.approx(19.99)), ("SKU-200", 1, pytest.approx(19.99))]
    assert purchase["items"][0]["item_params"] == [
        {"key": "color", "value": {"string_value": "charcoal", "int_value": None, "float_value": None, "double_value": None}}]
    assert purchase["user_properties"][0]["value"]["set_timestamp_micros"] == 1712391850000000
    assert purchase["user_ltv"] == {"revenue": pytest.approx(59.98), "currency": "USD"}
    assert purchase["session_traffic_source_last_click"]["cross_channel_campaign"]["default_channel_group"] == "Email"
    params = {p["key"]: p["value"] for p in purchase["event_params"]}
    assert params["ga_session_id"]["int_value"] == 1712391775
    assert params["value"]["double_value"] == pytest.approx(59.98)
    assert (purchase["_export_table"], purchase["_export_date"], purchase["_extra_fields"]) == (
        "daily", dt.date(2024, 4, 6), None)
    app = daily[7]
    assert (app["platform"], app["app_info"]["id"], app["device"]["time_zone_offset_seconds"]) == (
        "ANDROID", "com.example.shop", 3600)
    intraday = _by_line(fixture_load.base, str(INTRADAY))
    assert {r["_export_table"] for r in intraday.values()} == {"intraday"}
    assert {r["_export_date"] for r in intraday.values()} == {dt.date(2024, 4, 7)}


def test_exact_duplicate_event_is_dropped_keeping_the_first_line(fixture_load):
    daily = _by_line(fixture_load.base, str(DAILY))
    assert sorted(daily) == [1, 2, 3, 4, 5, 7]  # line 6 repeats line 3 exactly
    assert fixture_load.result.duplicates_dropped == 1


def test_consent_denied_ping_loads_without_a_pseudo_id(fixture_load):
    ping = _by_line(fixture_load.base, str(DAILY))[5]
    assert ping["user_pseudo_id"] is None
    assert ping["privacy_info"]["analytics_storage"] == "No"


def _without_load_id(rows: list[dict]) -> list[dict]:
    return sorted(({k: v for k, v in r.items() if k != "_load_id"} for r in rows),
                  key=lambda r: (r["_source_file"], r["_source_line"]))


def test_reloading_the_same_files_leaves_the_same_rows(fixture_load, fixture_reload):
    first, second = fixture_load.result, fixture_reload.result
    assert _without_load_id(fixture_reload.base) == _without_load_id(fixture_load.base)
    assert {r["_load_id"] for r in fixture_reload.base} == {second.load_id}
    assert (second.rows_read, second.rows_loaded, second.duplicates_dropped, second.partitions) == (
        first.rows_read, first.rows_loaded, first.duplicates_dropped, first.partitions)
    assert second.tables["stg_ga4__events"] == 8
    assert sorted(row["load_id"] for row in fixture_reload.loads) == sorted([first.load_id, second.load_id])


def test_the_load_is_recorded_in_ops_loads(fixture_load):
    (row,) = fixture_load.loads
    r = fixture_load.result
    assert (row["load_id"], row["source"], row["files"], row["rows_read"], row["rows_loaded"],
            row["duplicates_dropped"], row["partitions"]) == (
        r.load_id, "ga4", 2, 9, 8, 1, "2024-04-06,2024-04-07")


# ------------------------------------------------------------------------------------------------
# bad input: one load of a folder holding every kind of damage, one test per kind

DAY_START = 1712361600000000  # 2024-04-06T00:00:00Z in microseconds
HOUR = 3_600_000_000
MINUTE = 60_000_000


def _bad_day_lines() -> list:
    good = fixture_events()[1]  # a page_view of 2024-04-06

    def variant(**changes):
        return {**good, **changes}

    return [
        variant(),                                                            # 1 loads
        '{"event_date":"20240406","event_timestamp":"171239',                # 2 malformed JSON
        variant(event_name=None),                                             # 3 missing event_name
        variant(user_pseudo_id=None),                                         # 4 no pseudo id, consent given
        variant(user_pseudo_id=None, event_bundle_sequence_id="4",           # 5 consent denied: loads
                privacy_info={"analytics_storage": "No", "ads_storage": "No", "uses_transient_token": "No"}),
        variant(event_timestamp="abc"),                                       # 6 wrong type
        variant(event_params=[{"key": "ga_session_id", "value": {             # 7 int_value not an integer
            "string_value": None, "int_value": "1.5", "float_value": None, "double_value": None}}]),
        variant(event_timestamp=str(DAY_START - 14 * HOUR + MINUTE)),         # 8 13h59 before the day: loads
        variant(event_timestamp=str(DAY_START + 38 * HOUR - MINUTE)),         # 9 13h59 after the day: loads
        variant(event_timestamp=str(DAY_START - 14 * HOUR - MINUTE)),         # 10 too early
        variant(event_timestamp=str(DAY_START + 38 * HOUR + MINUTE)),         # 11 too late
        variant(event_date="20240405"),                                       # 12 not the file's date
        "[1, 2]",                                                             # 13 not an object
        variant(device="desktop"),                                            # 14 a record given as text
        variant(event_params=[good["event_params"][0], good["event_params"][0]]),  # 15 a key twice
        variant(event_timestamp=1712391775300000, batch_event_index=7),       # 16 INT64 as numbers: loads
        variant(event_bundle_sequence_id="8", new_export_column={"flag": True}),  # 17 unknown column: loads
        "",                                                                   # 18 blank: not a row
    ]


@pytest.fixture(scope="module")
def bad_load(engine, tmp_path_factory) -> Snapshot:
    folder = tmp_path_factory.mktemp("bad_export")
    day = write_lines(folder / "events_20240406.json", _bad_day_lines())
    with day.open("ab") as handle:
        handle.write(b'{"event_name": "page_view", "page_title": "Caf\xe9"}\n')  # 19 latin-1, not UTF-8
    shard = b"".join(json.dumps({**fixture_events()[0], "event_bundle_sequence_id": str(n)}).encode() + b"\n"
                     for n in (11, 12, 13))
    compressed = gzip.compress(shard)
    (folder / "events_20240406-000000000001.json.gz").write_bytes(compressed[: len(compressed) - 40])
    (folder / "events_20240407.json").write_text("")
    (folder / "events_20240408.json.gz").write_text(DAILY.read_text().splitlines()[0] + "\n")
    (folder / "events_20240409.parquet").write_bytes(b"PAR1 this is not a parquet file PAR1")
    later = fixture_events()[0]
    write_lines(folder / "events_20240410.json", [{**later, "event_date": "20240410",
                                                  "event_timestamp": str(DAY_START + 4 * 24 * HOUR + HOUR)}])
    # good exports in the other formats, of later dates: Parquet (native INT64, a new column) and gzip
    reference = _reference_table()
    table = pa.Table.from_pylist([_shifted(r, days=5) for r in reference.to_pylist()], schema=reference.schema)
    pq.write_table(table.append_column("new_export_column", pa.array(["x"] * table.num_rows)),
                   folder / "events_20240411.parquet")
    gz_events = [_shifted_json(e, days=6) for e in fixture_events()]
    (folder / "events_20240412.json.gz").write_bytes(
        gzip.compress("".join(json.dumps(e) + "\n" for e in gz_events).encode()))
    notes = tmp_path_factory.mktemp("notes") / "export_notes.json"
    notes.write_text("{}\n")
    drop_all(engine)
    return snapshot(engine, ingest_ga4(engine, [folder, notes], config=Config()))


def _reference_table() -> pa.Table:
    """The fixture's daily file as typed rows, loaded by DuckDB (the format-neutral expectation)."""
    reference = connect("duckdb://")
    ingest_ga4(reference, [DAILY], config=Config())
    table = reference.table(BASE_TABLE).order_by("_source_line").select(*EXPORT_SCHEMA.names).to_pyarrow()
    reference.disconnect()
    return table


def _reference_rows() -> list[dict]:
    return _reference_table().to_pylist()


def _shifted(row: dict, days: int) -> dict:
    day = dt.date(2024, 4, 6) + dt.timedelta(days=days)
    return {**row, "event_date": day.strftime("%Y%m%d"), "event_timestamp": row["event_timestamp"] + days * 24 * HOUR}


def _shifted_json(event: dict, days: int) -> dict:
    day = dt.date(2024, 4, 6) + dt.timedelta(days=days)
    return {**event, "event_date": day.strftime("%Y%m%d"),
            "event_timestamp": str(int(event["event_timestamp"]) + days * 24 * HOUR)}


def _refusal(snap: Snapshot, name: str, line: int) -> dict:
    (row,) = [q for q in snap.quarantine if Path(q["source_file"]).name == name and q["source_line"] == line]
    return row


def _day_lines(snap: Snapshot) -> set[int]:
    return {r["_source_line"] for r in snap.base if Path(r["_source_file"]).name == "events_20240406.json"}


def test_bad_input_never_stops_the_load_and_counts_reconcile(bad_load):
    r = bad_load.result
    assert r.rows_read == r.rows_loaded + r.rows_quarantined + r.duplicates_dropped
    # day file: 18 rows (line 18 is blank, not a row) -> 6 load, 12 refused; shard: 2 load + the
    # truncation; empty, not-gzip, corrupt-Parquet and misnamed files: one row each; the 10th: 1
    # loads; good Parquet: 6 load; good gzip: 6 load, 1 duplicate
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined, r.duplicates_dropped) == (
        18 + 3 + 4 + 1 + 6 + 7, 6 + 2 + 1 + 6 + 6, 12 + 1 + 4, 1)
    assert len(bad_load.quarantine) == r.rows_quarantined
    assert r.partitions == ["2024-04-06", "2024-04-10", "2024-04-11", "2024-04-12"]
    assert _day_lines(bad_load) == {1, 5, 8, 9, 16, 17}


def test_malformed_json_line_is_quarantined_with_its_text(bad_load):
    row = _refusal(bad_load, "events_20240406.json", 2)
    assert (row["reason"], row["column_name"], row["source"]) == ("malformed_json", None, "ga4")
    assert row["raw"] == '{"event_date":"20240406","event_timestamp":"171239'
    assert "not valid JSON" in row["message"] and "load the file's date again" in row["message"]


def test_truncated_gzip_keeps_the_lines_before_the_damage(bad_load):
    shard = [r for r in bad_load.base if Path(r["_source_file"]).name.endswith("-000000000001.json.gz")]
    assert sorted(r["event_bundle_sequence_id"] for r in shard) == [11, 12]
    row = _refusal(bad_load, "events_20240406-000000000001.json.gz", 3)
    assert row["reason"] == "truncated_file"
    assert row["raw"].startswith('{"event_date": "20240406"')  # the partial third line
    assert "truncated" in row["message"] and "export the file again" in row["message"]
    assert not any(e["file"].endswith(".json.gz") and "truncated" in e["reason"] for e in bad_load.result.file_errors)


def test_missing_required_fields_are_quarantined_unless_consent_removed_the_pseudo_id(bad_load):
    name = _refusal(bad_load, "events_20240406.json", 3)
    assert (name["reason"], name["column_name"]) == ("missing_required_field", "event_name")
    pseudo = _refusal(bad_load, "events_20240406.json", 4)
    assert (pseudo["reason"], pseudo["column_name"]) == ("missing_required_field", "user_pseudo_id")
    assert 'analytics_storage is not "No"' in pseudo["message"]
    assert 5 in _day_lines(bad_load)


def test_wrong_types_are_quarantined_with_the_column(bad_load):
    stamp = _refusal(bad_load, "events_20240406.json", 6)
    assert (stamp["reason"], stamp["column_name"]) == ("wrong_type", "event_timestamp")
    assert "must be an integer" in stamp["message"]
    param = _refusal(bad_load, "events_20240406.json", 7)
    assert (param["reason"], param["column_name"]) == ("wrong_type", "event_params[].value.int_value")
    assert '"int_value": "1.5"' in param["raw"]
    shape = _refusal(bad_load, "events_20240406.json", 14)
    assert (shape["reason"], shape["column_name"]) == ("wrong_type", "device")
    assert "must be a JSON object" in shape["message"]


def test_timestamps_within_the_skew_of_event_date_load_on_both_sides(bad_load):
    loaded = {r["_source_line"]: r["event_timestamp"] for r in bad_load.base
              if Path(r["_source_file"]).name == "events_20240406.json"}
    assert loaded[8] == DAY_START - 14 * HOUR + MINUTE
    assert loaded[9] == DAY_START + 38 * HOUR - MINUTE


def test_timestamps_beyond_the_skew_are_quarantined_on_both_sides(bad_load):
    for line, stamp in ((10, DAY_START - 14 * HOUR - MINUTE), (11, DAY_START + 38 * HOUR + MINUTE)):
        row = _refusal(bad_load, "events_20240406.json", line)
        assert (row["reason"], row["column_name"]) == ("timestamp_out_of_range", "event_timestamp")
        assert row["message"].endswith(f"(event_timestamp {stamp})")
        assert "max_timestamp_skew_hours" in row["message"]


def test_event_date_other_than_the_file_date_is_quarantined(bad_load):
    row = _refusal(bad_load, "events_20240406.json", 12)
    assert (row["reason"], row["column_name"]) == ("event_date_mismatch", "event_date")
    assert row["message"].endswith("(event_date 20240405)")


def test_json_that_is_not_an_object_and_repeated_param_keys_are_quarantined(bad_load):
    assert _refusal(bad_load, "events_20240406.json", 13)["reason"] == "not_an_object"
    row = _refusal(bad_load, "events_20240406.json", 15)
    assert (row["reason"], row["column_name"]) == ("invalid_param_key", "event_params")


def test_a_file_named_unlike_an_export_is_refused_by_name(bad_load):
    row = _refusal(bad_load, "export_notes.json", 0)
    assert row["reason"] == "unrecognised_file"
    assert "name it like events_20240406.json" in row["message"]
    assert row["source_file"] in bad_load.result.files


def test_invalid_utf8_line_is_quarantined_with_its_bytes_escaped(bad_load):
    row = _refusal(bad_load, "events_20240406.json", 19)
    assert row["reason"] == "invalid_utf8"
    assert row["raw"] == '{"event_name": "page_view", "page_title": "Caf\\xe9"}'


def test_int64_as_json_numbers_and_unknown_columns_load(bad_load):
    rows = {r["_source_line"]: r for r in bad_load.base if Path(r["_source_file"]).name == "events_20240406.json"}
    assert (rows[16]["event_timestamp"], rows[16]["batch_event_index"]) == (1712391775300000, 7)
    assert json.loads(rows[17]["_extra_fields"]) == {"new_export_column": '{"flag":true}'}
    assert rows[1]["_extra_fields"] is None


def test_empty_file_is_one_quarantined_row_and_a_file_error(bad_load):
    row = _refusal(bad_load, "events_20240407.json", 0)
    assert row["reason"] == "empty_file"
    assert [e for e in bad_load.result.file_errors if e["file"].endswith("events_20240407.json")] == [
        {"file": row["source_file"], "reason": "empty_file: " + row["message"]}]


def test_unreadable_files_are_file_errors_and_the_other_files_still_load(bad_load):
    not_gzip = _refusal(bad_load, "events_20240408.json.gz", 0)
    assert not_gzip["reason"] == "unreadable_file" and "not gzip-compressed" in not_gzip["message"]
    parquet = _refusal(bad_load, "events_20240409.parquet", 0)
    assert parquet["reason"] == "unreadable_file" and "cannot read this Parquet file" in parquet["message"]
    errors = {Path(e["file"]).name: e["reason"] for e in bad_load.result.file_errors}
    assert set(errors) == {"events_20240407.json", "events_20240408.json.gz", "events_20240409.parquet",
                           "export_notes.json"}
    assert errors["events_20240409.parquet"].startswith("unreadable_file: ")
    assert [r["event_date"] for r in bad_load.base if r["_export_date"] == dt.date(2024, 4, 10)] == ["20240410"]


# ------------------------------------------------------------------------------------------------
# reloads, daily and intraday tables, formats


def _base(con) -> list[dict]:
    rows = con.table(BASE_TABLE).drop("_load_id").to_pyarrow().to_pylist()
    return sorted(rows, key=lambda r: (r["_source_file"], r["_source_line"]))


def test_daily_tables_replace_intraday_ones_and_shards_of_a_date_load_together(con, config, tmp_path):
    events = fixture_events()
    intraday, daily = tmp_path / "intraday", tmp_path / "daily"
    intraday.mkdir()
    daily.mkdir()
    write_lines(intraday / "events_intraday_20240406.json", events[:2])
    write_lines(daily / "events_20240406-000000000000.json", events[:3])
    write_lines(daily / "events_20240406-000000000001.json", events[3:5])

    first = ingest_ga4(con, [intraday], config=config)
    assert (first.rows_loaded, first.partitions) == (2, ["2024-04-06"])

    # The daily shards form one partition that replaces the intraday rows; an intraday file of
    # the same date given alongside is skipped and its rows counted as duplicates.
    second = ingest_ga4(con, [daily, intraday], config=config)
    assert (second.rows_read, second.rows_loaded, second.rows_quarantined, second.duplicates_dropped) == (7, 5, 0, 2)
    assert second.partitions == ["2024-04-06"]
    assert {(Path(r["_source_file"]).name[-8:], r["_export_table"], r["_source_line"]) for r in _base(con)} == {
        ("001.json", "daily", 1), ("001.json", "daily", 2),
        ("000.json", "daily", 1), ("000.json", "daily", 2), ("000.json", "daily", 3)}

    # Later intraday files of a date whose daily table is loaded are skipped (every row counted
    # as a duplicate); and a date's rows are those of the files given for it: one shard alone
    # replaces the date.
    third = ingest_ga4(con, [intraday, daily / "events_20240406-000000000001.json"], config=config)
    assert (third.rows_read, third.rows_loaded, third.rows_quarantined, third.duplicates_dropped) == (4, 2, 0, 2)
    assert third.partitions == ["2024-04-06"]
    assert {(Path(r["_source_file"]).name[-8:], r["_source_line"]) for r in _base(con)} == {
        ("001.json", 1), ("001.json", 2)}


def test_gzip_and_parquet_exports_load_like_ndjson(bad_load):
    reference = _reference_rows()

    def of_date(day: int) -> list[dict]:
        rows = [r for r in bad_load.base if r["_export_date"] == dt.date(2024, 4, day)]
        return sorted(rows, key=lambda r: r["_source_line"])

    from_parquet, from_gzip = of_date(11), of_date(12)
    assert [r["_source_line"] for r in from_parquet] == [1, 2, 3, 4, 5, 6]  # Parquet row numbers
    assert {r["_extra_fields"] for r in from_parquet} == {'{"new_export_column":"x"}'}
    assert [{k: r[k] for k in EXPORT_SCHEMA.names} for r in from_parquet] == [_shifted(r, 5) for r in reference]
    assert [r["_source_line"] for r in from_gzip] == [1, 2, 3, 4, 5, 7]  # line 6 repeats line 3
    assert [{k: r[k] for k in EXPORT_SCHEMA.names} for r in from_gzip] == [_shifted(r, 6) for r in reference]


def test_paths_that_hold_no_export_are_a_clear_error(duck, tmp_path):
    with pytest.raises(SpilloverInputError, match=r"no such file or folder; give GA4 export files"):
        ingest_ga4(duck, [tmp_path / "missing"])
    (tmp_path / "other.csv").write_text("a\n")
    with pytest.raises(SpilloverInputError, match=r"no GA4 export files found in .*events_20240406.json"):
        ingest_ga4(duck, [tmp_path])


def test_a_first_load_of_parquet_alone_compiles_its_checks(duck, tmp_path, monkeypatch):
    # The check query is compiled once per process from the first load's rows; DuckDB hands
    # Parquet rows over as its JSON type, which must not change what the checks accept.
    from spillover.ingest import ga4

    monkeypatch.setattr(ga4, "_COMPILED_CHECKS", {})
    pq.write_table(_reference_table(), tmp_path / "events_20240406.parquet")
    result = ingest_ga4(duck, [tmp_path], config=Config())
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined, result.file_errors) == (6, 6, 0, [])


def test_a_load_read_in_several_batches_equals_one_read_in_one(tmp_path, monkeypatch):
    """Large exports are checked a few dates at a time; the result must not depend on it."""
    from spillover.ingest import ga4
    from spillover.synth import generate

    data = tmp_path / "data"
    generate(data, customers=120, days=6, seed=5)
    results = {}
    for label, limit in (("one", ga4.BATCH_BYTES), ("many", 1)):
        monkeypatch.setattr(ga4, "BATCH_BYTES", limit)
        con = connect(f"duckdb:///{tmp_path / (label + '.duckdb')}")
        result = ga4.ingest_ga4(con, [data / "ga4"], config=Config(project_dir=tmp_path, ga4={"property_timezone": "America/New_York"}))
        events = con.table("stg_ga4__events").select("event_key").to_pandas()
        results[label] = (result.rows_read, result.rows_loaded, result.duplicates_dropped, result.partitions, sorted(events.event_key))
        con.disconnect()
    assert len(results["one"][3]) == 6
    assert results["many"] == results["one"]
    assert len(ga4._batches(ga4.discover_export_files([data / "ga4"])[0], limit=1)) == 6


def test_emails_in_urls_titles_and_user_ids_are_redacted_everywhere(con, tmp_path):
    good = fixture_events()[1]
    params = [p for p in good["event_params"] if p["key"] not in ("page_location", "page_title")] + [
        {"key": "page_location", "value": {"string_value": "https://shop.example.com/account?email=jane.doe%40example.com&step=2",
                                           "int_value": None, "float_value": None, "double_value": None}},
        {"key": "page_title", "value": {"string_value": "Welcome back, jane@example.org",
                                        "int_value": None, "float_value": None, "double_value": None}},
    ]
    path = write_lines(tmp_path / "events_20240406.json", [
        {**good, "event_params": params, "user_id": "Zoe.Miller@Example.com"},
        '{"event_name": "login", "user_id": "zoe.miller@example.com", ',  # malformed: quarantined
    ])
    result = ingest_ga4(con, [path], config=Config())
    assert (result.rows_loaded, result.rows_quarantined) == (1, 1)
    (base,) = con.table(BASE_TABLE).to_pyarrow().to_pylist()
    values = {p["key"]: p["value"]["string_value"] for p in base["event_params"]}
    assert values["page_location"] == "https://shop.example.com/account?email=<redacted:email>&step=2"
    assert values["page_title"] == "Welcome back, <redacted:email>"
    assert base["user_id"] == "<redacted:email>"  # a blocked identity value: never used to link
    (staged,) = con.table("stg_ga4__events").to_pyarrow().to_pylist()
    assert staged["page_location"] == values["page_location"] and staged["user_id"] == "<redacted:email>"
    (refused,) = con.table("ops_quarantine").to_pyarrow().to_pylist()
    assert refused["reason"] == "malformed_json"
    assert refused["raw"] == '{"event_name": "login", "user_id": "<redacted:email>", '
    assert "<redacted:email>" in Config().identity.blocked_values
