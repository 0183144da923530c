"""GA4 BigQuery-export ingestion: export files -> ``base_ga4__events``, with nothing lost.

A load's files are checked in the engine in one pass; refused rows go to ``ops_quarantine``, exact
duplicates are dropped, and each export date is swapped in atomically, then staged.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as idt
import pyarrow as pa

from spillover.config import Config
from spillover.engine import replace_partitions, table_exists, temp_name
from spillover.errors import SpilloverInputError
from spillover.ingest.ga4_schema import (
    EXPORT_FILE_PATTERN,
    EXPORT_SCHEMA,
    TypedLeaf,
    text_schema,
    text_type,
    typed_leaves,
)
from spillover.ingest.quarantine import (
    QUARANTINE_TABLE,
    RAW_LIMIT,
    LoadResult,
    QuarantineRow,
    new_load_id,
    now_utc,
    quarantine_arrow,
    record_load,
    write_quarantine,
)
from spillover.ingest.readers import Dialect, FileProblem, LineReader, dialect_for, is_engine_error
from spillover.privacy.pseudonymise import redact_emails_in
from spillover.progress import NullProgress, Progress

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

__all__ = [
    "BASE_TABLE",
    "SOURCE",
    "ExportFile",
    "REASONS",
    "discover_export_files",
    "ingest_ga4",
]

BASE_TABLE = "base_ga4__events"
SOURCE = "ga4"
DAILY = "daily"
INTRADAY = "intraday"

#: Columns spillover adds to the exported ones in ``base_ga4__events``.
LINEAGE_COLUMNS = ("_extra_fields", "_source_file", "_source_line", "_export_table", "_export_date", "_load_id")
BASE_COLUMNS = (*EXPORT_SCHEMA.names, *LINEAGE_COLUMNS)
#: The event itself: what two rows must share, entirely, to be exact duplicates.
PAYLOAD_COLUMNS = (*EXPORT_SCHEMA.names, "_extra_fields")

#: Every quarantine reason code this module writes, with what it means.
REASONS = {
    "unrecognised_file": "a file given by name is not called events_YYYYMMDD* / events_intraday_YYYYMMDD*",
    "unreadable_file": "the file cannot be opened or decoded at all (e.g. not gzip, corrupt Parquet)",
    "empty_file": "the file holds no events",
    "truncated_file": "a gzip stream ends early; the lines before the damage are loaded",
    "corrupt_file": "a gzip stream is damaged part-way; the lines before the damage are loaded",
    "invalid_utf8": "the line is not UTF-8 text",
    "malformed_json": "the line is not valid JSON",
    "not_an_object": "the line is JSON but not an object",
    "missing_required_field": "event_date, event_timestamp, event_name or user_pseudo_id is missing",
    "wrong_type": "a field holds a value of the wrong type (e.g. event_timestamp \"abc\")",
    "invalid_param_key": "event_params / user_properties / item_params has an entry without a key, or a key twice",
    "event_date_mismatch": "event_date is not the date of the file it came from",
    "timestamp_out_of_range": "event_timestamp lies further outside event_date than the allowed skew",
}

_FILE_NAME = re.compile(EXPORT_FILE_PATTERN)
_MICROS_PER_HOUR = 3_600_000_000
_EPOCH = dt.date(1970, 1, 1)
_FILE_ORDER_STRIDE = 1 << 40  # _file_index * stride + line orders rows across a load's files


@dataclass(frozen=True)
class ExportFile:
    """One file of a GA4 export, with what its name says about it."""

    path: Path
    export_date: dt.date
    export_table: str  # "daily" | "intraday"
    format: str  # "json" | "parquet"
    gzip: bool

    @property
    def label(self) -> str:
        return str(self.path)


def _parse_file_name(path: Path) -> ExportFile | None:
    match = _FILE_NAME.match(path.name)
    if not match:
        return None
    try:
        export_date = dt.datetime.strptime(match["date"], "%Y%m%d").date()
    except ValueError:
        return None
    return ExportFile(
        path=path,
        export_date=export_date,
        export_table=INTRADAY if match["intraday"] else DAILY,
        format="parquet" if match["format"] == "parquet" else "json",
        gzip=bool(match["gzip"]),
    )


def discover_export_files(paths: Iterable[Path | str]) -> tuple[list[ExportFile], list[Path]]:
    """Export files under ``paths`` (files, or folders searched recursively), sorted by date.

    Returns the recognised files and the paths given by name that are not export files (files in
    folders that do not look like an export are skipped: folders often hold other tables).
    """
    found: dict[Path, ExportFile] = {}
    unrecognised: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for candidate in sorted(path.rglob("events_*")):
                parsed = _parse_file_name(candidate) if candidate.is_file() else None
                if parsed:
                    found[candidate] = parsed
        elif path.is_file():
            parsed = _parse_file_name(path)
            if parsed:
                found[path] = parsed
            else:
                unrecognised.append(path)
        else:
            raise SpilloverInputError(
                f"{path}: no such file or folder; give GA4 export files (events_YYYYMMDD*.json[.gz], "
                "*.parquet) or folders holding them"
            )
    files = sorted(found.values(), key=lambda f: (f.export_date, f.export_table, f.path.name, str(f.path)))
    if not files and not unrecognised:
        shown = ", ".join(str(p) for p in paths)
        raise SpilloverInputError(
            f"no GA4 export files found in {shown}; expected names like events_20240406.json, "
            "events_20240406-000000000001.json.gz or events_intraday_20240406.parquet"
        )
    return files, unrecognised


# ------------------------------------------------------------------------------------------------
# row checks


@dataclass(frozen=True)
class _Check:
    """One way a row can be refused. ``detail`` adds the row's offending value to the message."""

    reason: str
    column: str | None
    message: str
    failing: Callable[[_Row], ibis.BooleanValue]
    detail: Callable[[ibis.Table], ibis.StringValue] | None = None


@dataclass(frozen=True)
class _Group:
    """Checks tried together. ``gate`` is a cheaper condition that holds whenever one may fail."""

    checks: tuple[_Check, ...]
    gate: Callable[[_Row], ibis.BooleanValue] | None = None


@dataclass
class _Row:
    """The expressions a check may look at."""

    text: ibis.StringValue
    utf8_ok: ibis.BooleanValue
    keys: ibis.ArrayValue
    parsed: ibis.StructValue
    parse_failed: ibis.BooleanValue
    dialect: Dialect
    expected_event_date: ibis.StringValue  # the file's date as YYYYMMDD
    timestamp_min: ibis.IntegerValue  # allowed event_timestamp range, microseconds
    timestamp_max: ibis.IntegerValue


def _all_null(value: ibis.StructValue, dtype: idt.Struct) -> ibis.BooleanValue:
    """Whether every field of a (non-null) record is null: how engines read a non-object."""
    nulls = ibis.literal({name: None for name in dtype.names}, type=dtype)
    return value.notnull() & value.identical_to(nulls)


def _kind_is(raw: ibis.StringValue, kind: str) -> ibis.BooleanValue:
    """Whether raw JSON member text is null or of ``kind`` ("object" or "array")."""
    text = ibis.coalesce(raw, "null").lstrip()
    return (text == "null") | text.startswith("{" if kind == "object" else "[")


@dataclass(frozen=True)
class _Node:
    """A record or repeated field of the schema, checked for its JSON shape."""

    path: tuple[str, ...]  # "[]" steps descend into array elements
    dtype: idt.DataType

    @property
    def column(self) -> str:
        return ".".join(self.path).replace(".[]", "[]")


def _structural_nodes() -> list[_Node]:
    nodes: list[_Node] = []

    def walk(path: tuple[str, ...], dtype: idt.DataType) -> None:
        if dtype.is_struct():
            if path[-1] != "[]":  # array elements are checked with their array
                nodes.append(_Node(path, dtype))
            for name, field in dtype.items():
                walk((*path, name), field)
        elif dtype.is_array():
            nodes.append(_Node(path, dtype))
            walk((*path, "[]"), dtype.value_type)

    for name, dtype in text_schema().items():
        walk((name,), dtype)
    return nodes


def _node_values(parsed: ibis.StructValue, path: tuple[str, ...], test: Callable[[ibis.Value], ibis.BooleanValue]) -> ibis.BooleanValue:
    """``test`` applied to the value at ``path``, any-over the elements of arrays on the way."""

    def go(value: ibis.Value, rest: tuple[str, ...]) -> ibis.BooleanValue:
        if not rest:
            return test(value)
        head, tail = rest[0], rest[1:]
        if head == "[]":
            return value.map(lambda element: go(element, tail)).anys().fill_null(False)
        return go(value[head], tail)

    return go(parsed, path)


def _raw_values(row: _Row, path: tuple[str, ...], test: Callable[[ibis.StringValue], ibis.BooleanValue]) -> ibis.BooleanValue:
    """``test`` over the raw JSON text at ``path`` (walked with the engine's JSON functions)."""
    dialect = row.dialect

    def go(raw: ibis.StringValue, rest: tuple[str, ...]) -> ibis.BooleanValue:
        if not rest:
            return test(raw)
        head, tail = rest[0], rest[1:]
        if head == "[]":
            return dialect.elements(raw).map(lambda element: go(element, tail)).anys().fill_null(False)
        return go(dialect.member(raw, head), tail)

    return go(row.text, path)


def _shape_suspicious(node: _Node, row: _Row) -> ibis.BooleanValue:
    """A cheap sign that ``node`` may not have the JSON shape the schema says.

    Engines read a record that is not an object as null or as a record of nulls, and an array that
    is not an array as null, instead of failing; Spark also nulls a whole row it cannot fit.
    """
    if node.dtype.is_array():
        sign = _node_values(row.parsed, node.path, lambda v: v.isnull())
        if node.dtype.value_type.is_struct():
            element_type = node.dtype.value_type
            sign = sign | _node_values(row.parsed, (*node.path, "[]"), lambda v: _all_null(v, element_type))
    else:
        sign = _node_values(row.parsed, node.path, lambda v: _all_null(v, node.dtype))
    return sign | row.parse_failed


def _shape_check(node: _Node) -> _Check:
    """A record that is not a JSON object, or a repeated field that is not an array of objects."""
    is_array = node.dtype.is_array()
    element_is_record = is_array and node.dtype.value_type.is_struct()

    def wrong(row: _Row) -> ibis.BooleanValue:
        bad = _raw_values(row, node.path, lambda raw: ~_kind_is(raw, "array" if is_array else "object"))
        if element_is_record:
            bad = bad | _raw_values(row, (*node.path, "[]"), lambda raw: ~_kind_is(raw, "object"))
        return bad

    def failing(row: _Row) -> ibis.BooleanValue:
        # The raw JSON is only walked where the cheap sign shows.
        return ibis.ifelse(_shape_suspicious(node, row), wrong(row), False)

    shape = "an array" if is_array else "a JSON object"
    extra = " of objects" if element_is_record else ""
    return _Check(
        "wrong_type",
        node.column,
        f"{node.column} must be {shape}{extra} (or null); fix the value or re-export the date",
        failing,
    )


def _bad_text(text: ibis.Value, dtype: idt.DataType) -> ibis.BooleanValue:
    """Whether non-null text does not read as ``dtype``."""
    if dtype.is_integer():
        # Engines round "1.5" or read "1e3" when casting to an integer; an INT64 must be digits.
        return text.notnull() & ~(text.try_cast(dtype).cast("string") == text).fill_null(False)
    return text.notnull() & text.try_cast(dtype).isnull()


def _leaf_check(leaf: TypedLeaf) -> _Check:
    expected = {"int64": "an integer", "float64": "a number", "boolean": "true or false"}[str(leaf.dtype)]
    return _Check(
        "wrong_type",
        leaf.column,
        f"{leaf.column} must be {expected}; fix the value or re-export the date",
        lambda row: _node_values(row.parsed, leaf.path, lambda text: _bad_text(text, leaf.dtype)),
    )


def _leaf_groups() -> list[_Group]:
    """Typed leaves, grouped by the innermost array holding them.

    Looking into arrays is the costly part, so each array gets one pass that asks whether any of
    its leaves is bad; only rows where one is are asked which.
    """
    by_array: dict[tuple[str, ...], list[TypedLeaf]] = {}
    for leaf in typed_leaves():
        cut = max((i for i, step in enumerate(leaf.path) if step == "[]"), default=-1) + 1
        by_array.setdefault(leaf.path[:cut], []).append(leaf)
    groups = []
    for array_path, leaves in by_array.items():
        checks = tuple(_leaf_check(leaf) for leaf in leaves)
        if not array_path:
            groups.append(_Group(checks))
            continue

        def gate(row: _Row, array_path: tuple[str, ...] = array_path, leaves: list[TypedLeaf] = leaves) -> ibis.BooleanValue:
            def element_bad(element: ibis.Value) -> ibis.BooleanValue:
                relative = [leaf.path[len(array_path):] for leaf in leaves]
                return ibis.or_(*[
                    _bad_text(_walk(element, steps), leaf.dtype) for steps, leaf in zip(relative, leaves)
                ])

            return _node_values(row.parsed, array_path, element_bad)

        groups.append(_Group(checks, gate))
    return groups


def _walk(value: ibis.Value, steps: tuple[str, ...]) -> ibis.Value:
    for step in steps:
        value = value[step]
    return value


def _param_key_check(path: tuple[str, ...], column: str) -> _Check:
    def bad_entries(entries: ibis.ArrayValue) -> ibis.BooleanValue:
        keys = entries.map(lambda entry: entry.key)
        return (keys.map(lambda key: key.isnull()).anys() | (keys.unique().length() < keys.length())).fill_null(False)

    return _Check(
        "invalid_param_key",
        column,
        f"{column} has an entry without a key or the same key twice; GA4 writes each key once, so "
        "the row was altered after export",
        lambda row: _node_values(row.parsed, path, bad_entries),
    )


def _required(name: str) -> _Check:
    def missing(row: _Row) -> ibis.BooleanValue:
        value = row.parsed[name]
        return value.isnull() | (value.strip() == "")

    return _Check(
        "missing_required_field",
        name,
        f"required field {name} is missing or empty; every GA4 event has it, so check that the file "
        "is an unmodified GA4 events export",
        missing,
    )


def _pseudo_id_required() -> _Check:
    def missing(row: _Row) -> ibis.BooleanValue:
        value = row.parsed.user_pseudo_id
        consent = row.parsed.privacy_info.analytics_storage
        denied = (consent == "No").fill_null(False)
        return (value.isnull() | (value.strip() == "")) & ~denied

    return _Check(
        "missing_required_field",
        "user_pseudo_id",
        "user_pseudo_id is missing although privacy_info.analytics_storage is not \"No\"; only "
        "events whose analytics consent was denied may lack it",
        missing,
    )


def _date_check() -> _Check:
    return _Check(
        "event_date_mismatch",
        "event_date",
        "event_date is not the date in the file name; load each file under its export name "
        "(events_YYYYMMDD*), or re-export the date",
        lambda row: row.parsed.event_date != row.expected_event_date,
        detail=lambda t: ibis.literal(" (event_date ").concat(t.event_date.fill_null(""), ")"),
    )


def _timestamp_check() -> _Check:
    def failing(row: _Row) -> ibis.BooleanValue:
        ts = row.parsed.event_timestamp.try_cast("int64")
        return (ts < row.timestamp_min) | (ts > row.timestamp_max)

    return _Check(
        "timestamp_out_of_range",
        "event_timestamp",
        "event_timestamp (UTC) lies further outside the UTC day of event_date than "
        "[ga4] max_timestamp_skew_hours allows; check the export's clock, or raise the setting",
        failing,
        detail=lambda t: ibis.literal(" (event_timestamp ").concat(
            t.event_timestamp.cast("string").fill_null(""), ")"
        ),
    )


def _build_groups() -> list[_Group]:
    first = _Group((
        _Check(
            "invalid_utf8",
            None,
            "the line is not UTF-8 text (raw shows the bytes escaped); re-export the file, since "
            "BigQuery writes UTF-8",
            lambda row: ~row.utf8_ok,
        ),
        _Check(
            "malformed_json",
            None,
            "the line is not valid JSON; repair or remove it and load the file's date again",
            lambda row: ibis.ifelse(row.keys.isnull(), ~row.dialect.is_json(row.text), False),
        ),
        _Check(
            "not_an_object",
            None,
            "the line is JSON but not an object; each line of a GA4 export is one {...} event",
            lambda row: row.keys.isnull() | ((row.keys.length() == 0) & ~row.text.lstrip().startswith("{")),
        ),
    ))
    # No gate here: each shape check already looks at the raw JSON only where its own cheap sign
    # shows, and a gate over all the signs made engines evaluate every check where any sign shows.
    shapes = _Group((
        *[_shape_check(node) for node in _structural_nodes()],
        _Check(
            "wrong_type",
            None,
            "a nested field has a value of the wrong JSON type; compare the row with the GA4 "
            "export schema or re-export the date",
            lambda row: row.parse_failed,
        ),
    ))
    required = _Group((
        *[_required(name) for name in ("event_date", "event_timestamp", "event_name")],
        _pseudo_id_required(),
    ))
    keys = _Group((
        _param_key_check(("event_params",), "event_params"),
        _param_key_check(("user_properties",), "user_properties"),
        _param_key_check(("items", "[]", "item_params"), "items[].item_params"),
    ))
    dates = _Group((_date_check(), _timestamp_check()))
    return [first, shapes, required, *_leaf_groups(), keys, dates]


#: Checks in the order they are tried, in groups; a row's ``_check`` is the index into CHECKS of
#: the first one it fails.
GROUPS = _build_groups()
CHECKS = [check for group in GROUPS for check in group.checks]


def _first_failure(row: _Row) -> ibis.IntegerValue:
    """Index into CHECKS of the first check ``row`` fails, or null."""
    index = 0
    per_group = []
    for group in GROUPS:
        branches = [(check.failing(row), index + i) for i, check in enumerate(group.checks)]
        index += len(group.checks)
        failed = ibis.cases(*branches, else_=ibis.null("int16"))
        per_group.append(failed if group.gate is None else ibis.ifelse(group.gate(row), failed, ibis.null("int16")))
    # COALESCE stops at the first group that names a failure; later groups are not evaluated.
    return ibis.coalesce(*per_group)


def _typed_columns(parsed: ibis.StructValue) -> dict[str, ibis.Value]:
    columns = {}
    for name, dtype in EXPORT_SCHEMA.items():
        value = parsed[name]
        columns[name] = value if text_type(dtype) == dtype else value.try_cast(dtype)
    return columns


def _extra_fields(row: _Row) -> ibis.StringValue:
    """Unknown top-level members as a JSON object of their text, or null (new export columns)."""
    known = list(EXPORT_SCHEMA.names)
    unknown = row.keys.filter(lambda key: ~key.isin(known))
    members = row.dialect.members(row.text)
    as_json = row.dialect.to_json(ibis.map(unknown, unknown.map(lambda key: members[key])))
    # The cheap test first: the members are only looked at in the rare rows that have others.
    return ibis.ifelse(row.dialect.has_others(row.keys, known), as_json, ibis.null("string"))


#: Fixed names of the relations the check query reads, so that it compiles once per process.
ROWS_VIEW = "_spillover_ga4_rows"
FILES_VIEW = "_spillover_ga4_files"


def file_row(index: int, file: ExportFile, config: Config) -> dict[str, object]:
    """One row of FILES_VIEW: what the checks and the lineage columns need to know of a file."""
    skew = int(config.ga4.max_timestamp_skew_hours * _MICROS_PER_HOUR)
    day_start = (file.export_date - _EPOCH).days * 24 * _MICROS_PER_HOUR
    return {
        "file_index": index,
        "source_file": file.label,
        "export_table": file.export_table,
        "export_date": file.export_date,
        "expected_event_date": file.export_date.strftime("%Y%m%d"),
        "timestamp_min": day_start - skew,
        "timestamp_max": day_start + 24 * _MICROS_PER_HOUR + skew - 1,
    }


FILES_SCHEMA = pa.schema(
    [
        ("file_index", pa.int32()),
        ("source_file", pa.string()),
        ("export_table", pa.string()),
        ("export_date", pa.date32()),
        ("expected_event_date", pa.string()),
        ("timestamp_min", pa.int64()),
        ("timestamp_max", pa.int64()),
    ]
)


def check_rows(rows: ibis.Table, files: ibis.Table, *, dialect: Dialect) -> ibis.Table:
    """Parse and check raw rows (``LINES_SCHEMA``) in one pass.

    ``files`` holds a :func:`file_row` per ``rows.file_index``. Returns the typed export columns,
    ``_extra_fields``, ``_file_index``, ``_source_line``, ``_export_date``, ``_check`` (index of the
    first failed check in :data:`CHECKS`, null for a good row), ``_raw`` (the line, kept for
    refused rows only) and ``_text_hash`` (finds candidate duplicates).
    """
    joined = rows.join(files, rows.file_index == files.file_index)
    # Emails in URLs and titles are redacted before anything reads the line (base, staging and the
    # raw text of a quarantined row alike).
    text = redact_emails_in(joined.text)
    # Parse once, in a projection of its own: Ibis otherwise inlines a projection into the next
    # one, and the engine would parse the line again for every check that reads it. An impure
    # column (never read) is what stops the inlining.
    staged = joined.select(
        _parsed=dialect.parse(text, text_type(idt.Struct(dict(EXPORT_SCHEMA.items())))),
        _keys=dialect.object_keys(text),
        _text=text,
        _file_index=rows.file_index,
        _source_line=joined.source_line,
        _utf8_ok=joined.utf8_ok,
        _export_date=joined.export_date,
        _expected_event_date=joined.expected_event_date,
        _timestamp_min=joined.timestamp_min,
        _timestamp_max=joined.timestamp_max,
        _keep_projection=ibis.random(),
    )
    row = _Row(
        text=staged._text,
        utf8_ok=staged._utf8_ok,
        keys=staged._keys,
        parsed=staged._parsed,
        parse_failed=dialect.parse_failed(staged._parsed),
        dialect=dialect,
        expected_event_date=staged._expected_event_date,
        timestamp_min=staged._timestamp_min,
        timestamp_max=staged._timestamp_max,
    )
    checked = staged.select(
        **_typed_columns(staged._parsed),
        _extra_fields=_extra_fields(row),
        _file_index=staged._file_index,
        _source_line=staged._source_line,
        _export_date=staged._export_date,
        _check=_first_failure(row).cast("int16"),
        _text=staged._text,
        _keep_projection=ibis.random(),  # evaluate the checks once, not again for _raw
    )
    # Every line ends with its line ending (readers add one to a last line without), so equal
    # events hash equal; the raw text of a refused line is kept without it.
    raw = checked._text.re_replace(r"[\r\n]+$", "").substr(0, RAW_LIMIT)
    return checked.select(
        *EXPORT_SCHEMA.names,
        "_extra_fields",
        "_file_index",
        "_source_line",
        "_export_date",
        "_check",
        _raw=ibis.ifelse(checked._check.notnull(), raw, ibis.null("string")),
        _text_hash=checked._text.hash(),
    )


_COMPILED_CHECKS: dict[tuple[str, int], str] = {}


def checked_rows(con: BaseBackend, dialect: Dialect) -> ibis.Table:
    """:func:`check_rows` over ROWS_VIEW and FILES_VIEW, compiled once per process.

    The check query is large (a check per field of the export schema); building and compiling it
    takes a second or more, which would otherwise be paid again for every load.
    """
    key = (dialect.name, id(type(con)))
    if key not in _COMPILED_CHECKS:
        expr = check_rows(con.table(ROWS_VIEW), con.table(FILES_VIEW), dialect=dialect)
        _COMPILED_CHECKS[key] = str(con.compile(expr))
    return dialect.register_sql(temp_name("ga4_check"), _COMPILED_CHECKS[key])


def quarantine_rows(refused: ibis.Table, files: ibis.Table, *, load_id: str) -> ibis.Table:
    """Refused rows of a checked table in the shape of ``ops_quarantine``."""
    refused = refused.join(files, refused._file_index == files.file_index)
    reason = refused._check.cases(*[(i, c.reason) for i, c in enumerate(CHECKS)])
    column = refused._check.cases(*[(i, c.column) for i, c in enumerate(CHECKS) if c.column])
    message = refused._check.cases(
        *[
            (i, ibis.literal(c.message).concat(c.detail(refused)) if c.detail else c.message)
            for i, c in enumerate(CHECKS)
        ]
    )
    return refused.select(
        load_id=ibis.literal(load_id),
        source=ibis.literal(SOURCE),
        source_file=refused.source_file,
        source_line=refused._source_line,
        column_name=column.cast("string"),
        reason=reason,
        message=message,
        raw=refused._raw,
        quarantined_at=ibis.literal(now_utc(), idt.Timestamp(timezone="UTC", scale=6)),
    )


def base_rows(good: ibis.Table, files: ibis.Table, *, load_id: str, duplicates: ibis.Table | None) -> ibis.Table:
    """Good checked rows as ``base_ga4__events`` rows, one per distinct event and date.

    ``duplicates`` holds the (``_export_date``, ``_text_hash``) pairs seen more than once. Only rows
    with one of those are compared, and on every column (a hash alone could merge two different
    events); the first by file, then line, is kept.
    """
    columns = [*PAYLOAD_COLUMNS, "_export_date", "_file_index", "_source_line"]
    if duplicates is not None:
        keys = ["_export_date", "_text_hash"]
        singles = good.anti_join(duplicates, keys)
        candidates = good.semi_join(duplicates, keys)
        order = candidates._file_index.cast("int64") * _FILE_ORDER_STRIDE + candidates._source_line
        kept = candidates.group_by([*PAYLOAD_COLUMNS, "_export_date"]).agg(
            _file_index=candidates._file_index.argmin(order),
            _source_line=candidates._source_line.argmin(order),
        )
        good = singles.select(*columns).union(kept.select(*columns))
    joined = good.join(files, good._file_index == files.file_index)
    return joined.select(
        *EXPORT_SCHEMA.names,
        _extra_fields=joined._extra_fields,
        _source_file=joined.source_file,
        _source_line=joined._source_line,
        _export_table=joined.export_table,
        _export_date=joined._export_date,
        _load_id=ibis.literal(load_id),
    )


# ------------------------------------------------------------------------------------------------
# the load


@dataclass
class _Counts:
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    duplicates_dropped: int = 0


class _Load:
    """State of one ``ingest_ga4`` call."""

    def __init__(self, con: BaseBackend, config: Config, progress: Progress, files: int):
        self.con = con
        self.config = config
        self.progress = progress
        self.load_id = new_load_id()
        self.started_at = now_utc()
        self.counts = _Counts()
        self.file_problems: list[QuarantineRow] = []
        self.file_errors: list[dict[str, str]] = []
        self.partitions: list[dt.date] = []
        self.files_task = progress.task("reading GA4 files", total=files)
        self.rows_task = progress.task("GA4 rows read", total=None)

    def file_problem(self, file_label: str, problem: FileProblem) -> None:
        """A problem found in Python: one quarantine row; whole-file ones are file errors too."""
        self.file_problems.append(
            QuarantineRow(file_label, problem.line, problem.reason, problem.message, problem.raw)
        )
        self.counts.rows_read += 1
        self.counts.rows_quarantined += 1
        if problem.line == 0:
            self.file_errors.append({"file": file_label, "reason": f"{problem.reason}: {problem.message}"})

    def rows_progress(self, rows: int) -> None:
        self.progress.advance(self.rows_task, rows)

    def file_done(self, name: str) -> None:
        self.progress.advance(self.files_task, 1, description=f"GA4 {name}")


def _daily_dates_loaded(con: BaseBackend) -> set[dt.date]:
    if not table_exists(con, BASE_TABLE):
        return set()
    base = con.table(BASE_TABLE)
    dates = base.filter(base._export_table == DAILY).select("_export_date").distinct().to_pyarrow()
    return {value.as_py() for value in dates.column(0)}


def _plan(files: Sequence[ExportFile], daily_loaded: set[dt.date]) -> tuple[list[ExportFile], list[ExportFile]]:
    """Split files into those to load and intraday files a daily table supersedes."""
    to_load: list[ExportFile] = []
    superseded: list[ExportFile] = []
    for export_date, group in groupby(files, key=lambda f: f.export_date):
        group = list(group)
        daily = [f for f in group if f.export_table == DAILY]
        intraday = [f for f in group if f.export_table == INTRADAY]
        if daily or export_date in daily_loaded:
            to_load += daily
            superseded += intraday
        else:
            to_load += intraday
    return to_load, superseded


def _check_files(load: _Load, dialect: Dialect, files: Sequence[ExportFile]) -> ibis.Table | None:
    """Read and check every file to load into one scratch table (text files in one stream)."""
    con = load.con
    dialect.register_table(
        FILES_VIEW, pa.Table.from_pylist([file_row(i, f, load.config) for i, f in enumerate(files)], FILES_SCHEMA)
    )
    checked: ibis.Table | None = None

    def add(rows: ibis.Table) -> None:
        nonlocal checked
        dialect.register_view(ROWS_VIEW, rows)
        query = checked_rows(con, dialect)
        if checked is None:
            checked = dialect.scratch(query, "ga4_checked")
        else:
            dialect.scratch_append(checked, query)

    readers = [
        LineReader(file.path, gzip=file.gzip, file_index=index, on_rows=load.rows_progress)
        for index, file in enumerate(files)
        if file.format == "json"
    ]
    if readers:
        lines = dialect.lines_table(readers)
        add(lines)
        dialect.drop_scratch(lines)
        for reader in readers:
            file = files[reader.file_index]
            if reader.problem is not None:
                load.file_problem(file.label, reader.problem)
            load.file_done(file.path.name)
    for index, file in enumerate(files):
        if file.format != "parquet":
            continue
        try:
            add(dialect.parquet_table(file.path, index))
        except Exception as exc:
            if not is_engine_error(exc):  # a bug of ours, not a bad file: let it surface
                raise
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            load.file_problem(
                file.label,
                FileProblem(
                    "unreadable_file",
                    f"the engine cannot read this Parquet file ({detail[:300]}); export the date again",
                ),
            )
        load.file_done(file.path.name)
    return checked


def _settle(load: _Load, dialect: Dialect, checked: ibis.Table) -> Callable[[BaseBackend], dict[str, int]] | None:
    """Quarantine the refused rows; return the write that swaps the distinct good rows in, date by
    date, atomically (None when no row is good). The write must run on the load's connection."""
    files = load.con.table(FILES_VIEW)
    good_row = checked._check.isnull()
    # One pass for every count the load needs: rows and refusals per date, and whether any good
    # line of a date repeats (fewer distinct line hashes than good rows).
    tally = checked.group_by("_export_date").aggregate(
        rows=checked.count(),
        refused=checked._check.notnull().sum(),
        distinct_good=checked._text_hash.nunique(where=good_row),
    ).to_pyarrow().to_pylist()
    rows = sum(int(t["rows"]) for t in tally)
    refused = sum(int(t["refused"]) for t in tally)
    load.counts.rows_read += rows
    load.counts.rows_quarantined += refused
    if refused:
        write_quarantine(load.con, quarantine_rows(checked.filter(checked._check.notnull()), files, load_id=load.load_id))
    good_rows = rows - refused
    dates = sorted(t["_export_date"] for t in tally if t["rows"] > t["refused"])
    if not dates:
        return None
    good = checked.filter(good_row)
    duplicates = None
    if any(t["distinct_good"] < t["rows"] - t["refused"] for t in tally):
        repeated = good.group_by(["_export_date", "_text_hash"]).agg(copies=good.count()).filter(ibis._.copies > 1)
        duplicates = dialect.scratch(repeated.select("_export_date", "_text_hash"), "ga4_repeated")
    rows_out = base_rows(good, files, load_id=load.load_id, duplicates=duplicates)

    def write(con: BaseBackend) -> dict[str, int]:
        replace_partitions(con, BASE_TABLE, rows_out, by="_export_date", partitions=dates)
        base = con.table(BASE_TABLE)
        loaded = int(base.filter(base._export_date.isin(dates)).count().to_pyarrow().as_py())
        load.counts.rows_loaded += loaded
        load.counts.duplicates_dropped += good_rows - loaded
        load.partitions += dates
        return {}

    return write


#: How much export one check pass reads: whole dates are grouped up to about this many bytes of
#: text, so a load's memory stays bounded by the batch, not by the export (gzip counts ~8x).
#: Larger is faster on DuckDB: an insert of a few row groups (about 250k GA4 events, 0.5 GB of
#: text) is written straight to the database file, while a smaller one goes through the
#: write-ahead log and is written again at the checkpoint (0.8 s against 1.8 s per 100k events
#: in base_ga4__events on the benchmark machine, two threads). A batch's scratch table spills to disk
#: beyond the load's memory limit.
BATCH_BYTES = 1024 * 2**20
_GZIP_RATIO = 8


def _batches(files: Sequence[ExportFile], limit: int | None = None) -> list[list[ExportFile]]:
    """Group files into batches of whole export dates, each of at most ``limit`` bytes (or one date).

    ``limit`` defaults to BATCH_BYTES as it is when called.
    """
    limit = BATCH_BYTES if limit is None else limit
    batches: list[list[ExportFile]] = []
    current: list[ExportFile] = []
    size = 0
    for _, group in groupby(files, key=lambda f: f.export_date):
        group = list(group)
        group_size = sum(_text_bytes(f) for f in group)
        if current and size + group_size > limit:
            batches.append(current)
            current, size = [], 0
        current += group
        size += group_size
    if current:
        batches.append(current)
    return batches


def _text_bytes(file: ExportFile) -> int:
    try:
        size = file.path.stat().st_size
    except OSError:
        return 0
    return size * _GZIP_RATIO if file.gzip else size


def _count_superseded(load: _Load, file: ExportFile) -> None:
    """An intraday file whose date has a daily table: every row of it counts as a duplicate."""
    if file.format == "parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.ParquetFile(file.path).metadata.num_rows
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported, never fatal
            load.file_problem(file.label, FileProblem("unreadable_file", f"the Parquet file cannot be read ({exc})"))
            load.file_done(file.path.name)
            return
    else:
        reader = LineReader(file.path, gzip=file.gzip, on_rows=load.rows_progress)
        for _ in reader.batches():
            pass
        rows = reader.lines
        if reader.problem is not None and reader.problem.reason != "empty_file":
            load.file_problem(file.label, reader.problem)
    load.counts.rows_read += rows
    load.counts.duplicates_dropped += rows
    load.file_done(file.path.name)


def ingest_ga4(
    con: BaseBackend,
    paths: Sequence[Path | str],
    *,
    config: Config | None = None,
    progress: Progress | None = None,
) -> LoadResult:
    """Load GA4 export files into ``base_ga4__events`` and stage the dates loaded.

    All shards of a date must be loaded together: a date's rows are replaced by the rows of the
    files given for it. A daily table replaces the intraday table of its date; an intraday file
    whose date has a daily table (in this load or loaded before) is skipped and its rows counted
    as duplicates.
    """
    config = config or Config()
    progress = progress or NullProgress()
    files, unrecognised = discover_export_files(paths)
    load = _Load(con, config, progress, len(files) + len(unrecognised))
    for path in unrecognised:
        load.file_problem(
            str(path),
            FileProblem(
                "unrecognised_file",
                "the file name does not say which export table and date it holds; name it like "
                "events_20240406.json or events_intraday_20240406-000000000000.json.gz",
            ),
        )
        load.file_done(path.name)
    to_load, superseded = _plan(files, _daily_dates_loaded(con))
    for file in superseded:
        _count_superseded(load, file)
    tables: dict[str, int] = {}
    if to_load:
        from spillover.stage.ga4_events import build_ga4_staging

        def stage(dates: list[dt.date]) -> Callable[[BaseBackend], dict[str, int]]:
            return lambda on: build_ga4_staging(on, config=config, progress=progress, partitions=dates)

        dialect = dialect_for(con)
        with dialect.loading():
            # Each batch's dates are staged while the next batch is written into the base table:
            # engines that can write two tables side by side do (DuckDB, one core each).
            unstaged: list[dt.date] = []
            for batch in _batches(to_load):
                writes = []
                checked = _check_files(load, dialect, batch)
                if checked is not None and (write_base := _settle(load, dialect, checked)) is not None:
                    writes.append(write_base)
                if unstaged:
                    writes.append(stage(unstaged))
                dates_before = len(load.partitions)
                for written in dialect.write_together(*writes):
                    tables.update(written)
                if checked is not None:
                    dialect.drop_scratch(checked)
                unstaged = load.partitions[dates_before:]
            if unstaged:
                tables.update(dialect.write_together(stage(unstaged))[0])
    if load.file_problems:
        write_quarantine(con, quarantine_arrow(load.load_id, SOURCE, load.file_problems))
    for name in (BASE_TABLE, QUARANTINE_TABLE):
        if table_exists(con, name):
            tables[name] = int(con.table(name).count().to_pyarrow().as_py())
    result = LoadResult(
        source=SOURCE,
        load_id=load.load_id,
        files=[f.label for f in files] + [str(p) for p in unrecognised],
        rows_read=load.counts.rows_read,
        rows_loaded=load.counts.rows_loaded,
        rows_quarantined=load.counts.rows_quarantined,
        duplicates_dropped=load.counts.duplicates_dropped,
        partitions=[d.isoformat() for d in load.partitions],
        file_errors=load.file_errors,
        tables=dict(sorted(tables.items())),
        started_at=load.started_at,
        finished_at=now_utc(),
    )
    record_load(con, result)
    return result
