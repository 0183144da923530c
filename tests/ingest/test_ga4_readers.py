"""Reading GA4 export files: line numbering, gzip streams, file names, reason codes and progress."""

from __future__ import annotations

import datetime as dt
import gzip
import re
from pathlib import Path

import pytest

from spillover.ingest import ga4
from spillover.ingest.ga4 import REASONS, discover_export_files, ingest_ga4
from spillover.ingest.readers import LineReader

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ga4"
DOCS = Path(__file__).parents[2] / "docs" / "ga4.md"


def read_all(path: Path, *, gzip_file: bool, chunk_bytes: int = 8 << 20) -> tuple[list[tuple[int, str, bool]], LineReader]:
    reader = LineReader(path, gzip=gzip_file, chunk_bytes=chunk_bytes)
    rows = [(r["source_line"], r["text"], r["utf8_ok"]) for b in reader.batches() for r in b.to_pylist()]
    return rows, reader


@pytest.mark.parametrize("chunk_bytes", [4, 8 << 20])
def test_lines_keep_editor_numbers_across_blank_lines_bom_crlf_and_chunks(tmp_path, chunk_bytes):
    path = tmp_path / "events_20240406.json"
    path.write_bytes(b'\xef\xbb\xbf{"a":1}\r\n\r\n{"b":2}\n\n  \n{"c":\xff}\n{"d":4}')
    rows, reader = read_all(path, gzip_file=False, chunk_bytes=chunk_bytes)
    assert rows == [
        (1, '{"a":1}\r\n', True),
        (3, '{"b":2}\n', True),
        (5, "  \n", True),  # whitespace is not blank: it is refused as malformed JSON
        (6, '{"c":\\xff}\n', False),
        (7, '{"d":4}\n', True),  # the last line needs no line ending
    ]
    assert (reader.lines, reader.problem) == (5, None)


def test_concatenated_gzip_members_and_zero_padding_read_as_one_stream(tmp_path):
    path = tmp_path / "events_20240406.json.gz"
    path.write_bytes(gzip.compress(b'{"n":1}\n{"n":2}\n') + gzip.compress(b'{"n":3}\n') + b"\0" * 16)
    rows, reader = read_all(path, gzip_file=True, chunk_bytes=40)
    assert [(line, text) for line, text, _ in rows] == [(1, '{"n":1}\n'), (2, '{"n":2}\n'), (3, '{"n":3}\n')]
    assert reader.problem is None


def test_truncated_gzip_yields_the_lines_before_and_reports_the_partial_one(tmp_path):
    content = b"".join(b'{"n":%d}\n' % i for i in range(1000))
    path = tmp_path / "events_20240406.json.gz"
    path.write_bytes(gzip.compress(content)[:-200])
    rows, reader = read_all(path, gzip_file=True)
    assert rows[-1][0] == len(rows) and 900 < len(rows) < 1000
    assert (reader.problem.reason, reader.problem.line) == ("truncated_file", len(rows) + 1)
    assert content.decode().splitlines()[len(rows)].startswith(reader.problem.raw)


def test_damaged_gzip_keeps_the_lines_before_the_damage(tmp_path):
    compressed = bytearray(gzip.compress(b"".join(b'{"n":%d, "pad": "%s"}\n' % (i, b"x" * (i % 50)) for i in range(5000))))
    middle = len(compressed) // 2
    compressed[middle:middle + 64] = b"\xff" * 64
    path = tmp_path / "events_20240406.json.gz"
    path.write_bytes(bytes(compressed))
    rows, reader = read_all(path, gzip_file=True, chunk_bytes=4096)
    assert reader.problem.reason in {"corrupt_file", "truncated_file"}
    assert reader.problem.line == len(rows) + 1 > 1
    assert [line for line, _, _ in rows] == list(range(1, len(rows) + 1))


def test_files_that_cannot_be_read_are_whole_file_problems(tmp_path):
    not_gzip = tmp_path / "events_20240406.json.gz"
    not_gzip.write_text('{"a":1}\n')
    _, reader = read_all(not_gzip, gzip_file=True)
    assert (reader.problem.reason, reader.problem.line) == ("unreadable_file", 0)
    assert "not gzip-compressed" in reader.problem.message
    empty = tmp_path / "events_20240407.json"
    empty.write_text("\n\n")
    _, reader = read_all(empty, gzip_file=False)
    assert (reader.problem.reason, reader.problem.line, reader.lines) == ("empty_file", 0, 0)
    _, reader = read_all(tmp_path / "events_20240408.json", gzip_file=False)
    assert (reader.problem.reason, reader.problem.line) == ("unreadable_file", 0)


def test_export_file_names_give_table_date_format_and_compression(tmp_path):
    names = [
        "events_20240406.json", "events_20240406-000000000001.json.gz", "events_intraday_20240407.ndjson",
        "events_20240408_000000000000.jsonl", "events_20240409.parquet", "events_20241301.json",
        "pseudonymous_users_20240406.json", "events_20240406.csv",
    ]
    for name in names:
        (tmp_path / name).write_text("{}\n")
    files, unrecognised = discover_export_files([tmp_path])
    assert [(f.path.name, f.export_table, f.export_date, f.format, f.gzip) for f in files] == [
        ("events_20240406-000000000001.json.gz", "daily", dt.date(2024, 4, 6), "json", True),
        ("events_20240406.json", "daily", dt.date(2024, 4, 6), "json", False),
        ("events_intraday_20240407.ndjson", "intraday", dt.date(2024, 4, 7), "json", False),
        ("events_20240408_000000000000.jsonl", "daily", dt.date(2024, 4, 8), "json", False),
        ("events_20240409.parquet", "daily", dt.date(2024, 4, 9), "parquet", False),
    ]
    assert unrecognised == []  # in a folder, other files are skipped, not refused
    _, unrecognised = discover_export_files([tmp_path / "events_20241301.json"])
    assert unrecognised == [tmp_path / "events_20241301.json"]  # no 13th month


def test_every_reason_code_is_documented_and_known():
    written = {check.reason for check in ga4.CHECKS} | {
        "unrecognised_file", "unreadable_file", "empty_file", "truncated_file", "corrupt_file"}
    assert written == set(REASONS)
    table = DOCS.read_text().split("| reason | line | meaning |", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", table, re.M))
    assert documented == set(REASONS)


class RecordingProgress:
    def __init__(self):
        self.tasks: dict[int, dict] = {}

    def task(self, description, total=None):
        handle = len(self.tasks)
        self.tasks[handle] = {"description": description, "total": total, "done": 0, "names": []}
        return handle

    def advance(self, task, amount=1, description=None):
        self.tasks[task]["done"] += amount
        if description:
            self.tasks[task]["names"].append(description)


def test_progress_reports_files_and_rows(duck):
    progress = RecordingProgress()
    result = ingest_ga4(duck, [FIXTURES], progress=progress)
    files, rows = progress.tasks[0], progress.tasks[1]
    assert (files["description"], files["total"], files["done"]) == ("reading GA4 files", 2, 2)
    assert files["names"] == ["GA4 events_20240406.json", "GA4 events_intraday_20240407.json"]
    assert (rows["description"], rows["done"]) == ("GA4 rows read", result.rows_read)
    staging = [t for t in progress.tasks.values() if t["description"] == "staging GA4 events"]
    assert [(t["total"], t["done"]) for t in staging] == [(2, 2)]


def _threads(con) -> int:
    return int(con.con.execute("SELECT current_setting('threads')").fetchone()[0])


def test_duckdb_writes_together_one_thread_each_leaving_one_part_filled_row_group_per_insert(tmp_path):
    """Writes run on one thread each (so an insert leaves one part-filled row group, not one per
    thread for the next checkpoint to merge), side by side, and the thread setting comes back."""
    from spillover.engine import connect
    from spillover.ingest.readers import DuckDBDialect

    con = connect(f"duckdb:///{tmp_path / 'w.duckdb'}")
    raw = con.con
    raw.execute("SET threads = 2")
    raw.execute("CREATE TABLE one (a BIGINT, b VARCHAR)")
    raw.execute("CREATE TABLE two (a BIGINT)")
    insert = "INSERT INTO one SELECT * FROM src WHERE a % 3 = 0"  # 333,334 rows
    threads_seen = []

    def first(on):  # reads a temporary table: the first write runs on the dialect's own connection
        threads_seen.append(_threads(on))
        on.raw_sql(insert)
        return "one"

    def second(on):
        assert on is not con
        on.raw_sql("INSERT INTO two SELECT range FROM range(10)")
        return "two"

    def row_groups():
        return raw.execute(
            "SELECT list(n ORDER BY row_group_id) FROM (SELECT row_group_id, max(start + count) - min(start) AS n "
            "FROM pragma_storage_info('one') WHERE column_id = 0 AND segment_type <> 'VALIDITY' GROUP BY 1)"
        ).fetchone()[0]

    with DuckDBDialect(con).loading() as dialect:
        raw.execute("CREATE TEMP TABLE src AS SELECT range AS a, repeat(md5(range::VARCHAR), 20) AS b FROM range(1000000)")
        assert dialect.write_together(first, second) == ["one", "two"]
        assert dialect.write_together(first, second) == ["one", "two"]
    assert threads_seen == [1, 1] and _threads(con) == 2
    # 333,334 rows = two full row groups of 122,880 and one of 87,574, for each insert
    assert row_groups() == [122880, 122880, 87574] * 2
    assert raw.execute("SELECT count(*) FROM two").fetchone()[0] == 20
    con.disconnect()


def test_duckdb_write_together_waits_for_the_other_writes_when_one_fails(tmp_path):
    from spillover.engine import connect
    from spillover.ingest.readers import DuckDBDialect

    con = connect(f"duckdb:///{tmp_path / 'w.duckdb'}")
    con.raw_sql("CREATE TABLE two (a BIGINT)")
    threads = _threads(con)
    dialect = DuckDBDialect(con)

    def failing(on):
        raise RuntimeError("disk full")

    def slow(on):
        on.raw_sql("INSERT INTO two SELECT range FROM range(1000000)")

    with pytest.raises(RuntimeError, match="disk full"):
        dialect.write_together(failing, slow)
    assert con.con.execute("SELECT count(*) FROM two").fetchone()[0] == 1_000_000
    assert _threads(con) == threads
    dialect.close()
    con.disconnect()


def test_a_load_whose_every_line_is_refused_writes_nothing_and_counts_everything(duck, tmp_path):
    path = tmp_path / "events_20240406.json"
    path.write_text('{"event_name": "page_view"\nnot json\n')
    result = ingest_ga4(duck, [path])
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined, result.partitions) == (2, 0, 2, [])
