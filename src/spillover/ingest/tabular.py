"""Tabular sources (CSV, Parquet): read in Python with exact line numbers, map and check every row.

Rows are parsed and validated here, and direct identifiers pseudonymised, before anything reaches the
engine; rejected rows go to ``ops_quarantine`` (with file, line, column, reason and a redacted raw
text), accepted ones are uploaded and merged into the source's staging table by key.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa

from spillover.engine import drop_table, replace_partitions, table_exists, upload_arrow, write_table
from spillover.errors import SpilloverConfigError, SpilloverInputError
from spillover.ingest.quarantine import (
    QUARANTINE_TABLE,
    LoadResult,
    QuarantineRow,
    new_load_id,
    now_utc,
    quarantine_arrow,
    record_load,
    write_quarantine,
)
from spillover.privacy.pseudonymise import find_emails, find_phones, redact_text
from spillover.progress import NullProgress, Progress

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from spillover.config import Config

__all__ = [
    "SOURCES",
    "MONEY",
    "CellProblem",
    "Column",
    "Rejection",
    "SourceSpec",
    "CheckedFile",
    "check_file",
    "ingest_source",
    "source_spec",
    "read_records",
    "FileRecords",
    "Record",
]

SOURCES = ("crm", "products", "orders", "order_items")

#: Money is stored exactly, to 1/100 of a cent (values with more decimals are rounded half-even).
MONEY = pa.decimal128(18, 4)
_MONEY_QUANTUM = Decimal("0.0001")

LINEAGE_SCHEMA = pa.schema(
    [("_source_file", pa.string()), ("_source_line", pa.int64()), ("_load_id", pa.string())]
)
_PROGRESS_EVERY = 10_000
_VALUE_SHOWN = 60  # longest value quoted back in a message


# --------------------------------------------------------------------------------------------------
# cell parsing


class CellProblem(Exception):
    """One value that cannot be accepted: a stable reason code and a sentence saying what to do."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def _shown(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= _VALUE_SHOWN else text[:_VALUE_SHOWN] + "…")


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


_INTEGER = re.compile(r"[+-]?\d+(?:\.0*)?")
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)
_TRUE = frozenset({"true", "yes", "1", "y", "t"})
_FALSE = frozenset({"false", "no", "0", "n", "f"})


def parse_text(name: str, value: object) -> str | None:
    return _text(value)


def parse_integer(name: str, value: object) -> int | None:
    if isinstance(value, bool):
        raise CellProblem("invalid_integer", f"{name} is {_shown(value)}, not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = _text(value)
    if text is None:
        return None
    if _INTEGER.fullmatch(text) is None:
        raise CellProblem("invalid_integer", f"{name} is {_shown(text)}, not a whole number; write e.g. 3")
    return int(Decimal(text))


def parse_decimal(name: str, value: object) -> Decimal | None:
    if isinstance(value, bool):
        raise CellProblem("invalid_number", f"{name} is {_shown(value)}, not a number")
    if isinstance(value, (int, Decimal)):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    else:
        text = _text(value)
        if text is None:
            return None
        if _DECIMAL.fullmatch(text) is None:
            raise CellProblem(
                "invalid_number",
                f"{name} is {_shown(text)}, not a decimal number; write amounts like 1234.50 "
                "(no currency sign, no thousands separator)",
            )
        number = Decimal(text)
    if not number.is_finite():
        raise CellProblem("invalid_number", f"{name} is {_shown(value)}, not a finite number")
    try:
        return number.quantize(_MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        raise CellProblem("invalid_number", f"{name} is {_shown(value)}, too large to be an amount") from None


def parse_boolean(name: str, value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = _text(value)
    if text is None:
        return None
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise CellProblem(
        "invalid_boolean", f"{name} is {_shown(text)}, not a boolean; use true/false, yes/no, y/n or 1/0"
    )


def parse_date(name: str, value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0) and value.tzinfo is None:
            return value.date()
        raise CellProblem("invalid_date", f"{name} is {_shown(value)}, a timestamp; a date (YYYY-MM-DD) is expected")
    if isinstance(value, dt.date):
        return value
    text = _text(value)
    if text is None:
        return None
    try:
        if _DATE.fullmatch(text) is None:
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CellProblem("invalid_date", f"{name} is {_shown(text)}, not a date; write dates as YYYY-MM-DD") from None


def parse_timestamp(name: str, value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        stamp = value
    elif isinstance(value, dt.date):
        stamp = dt.datetime.combine(value, dt.time(0))
    else:
        text = _text(value)
        if text is None:
            return None
        try:
            if _TIMESTAMP.fullmatch(text) is None:
                raise ValueError(text)
            stamp = dt.datetime.fromisoformat(text)
        except ValueError:
            raise CellProblem(
                "invalid_timestamp",
                f"{name} is {_shown(text)}, not an ISO-8601 timestamp; write e.g. 2024-03-01T14:05:00Z "
                "or 2024-03-01T15:05:00+01:00 (without an offset it is read as UTC)",
            ) from None
    # A timestamp without an offset is UTC by contract.
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=dt.timezone.utc)
    return stamp.astimezone(dt.timezone.utc)


PARSERS: dict[str, Callable[[str, object], object]] = {
    "text": parse_text,
    "integer": parse_integer,
    "decimal": parse_decimal,
    "boolean": parse_boolean,
    "date": parse_date,
    "timestamp": parse_timestamp,
}


# --------------------------------------------------------------------------------------------------
# specs


@dataclass(frozen=True)
class Column:
    """One column of a source's contract, by spillover's name.

    ``identifier`` names the kind of direct identifier the column holds (email, phone, name,
    address, postcode); such values are redacted in quarantined raw text and never quoted in
    messages. ``file_name`` overrides the name looked up in the file (for kept extra attributes).
    """

    name: str
    kind: str = "text"
    required: bool = False
    default: object = None
    minimum: str | None = None  # "zero": must be >= 0 (negative_value); "positive": > 0
    choices: tuple[str, ...] = ()
    choice_reason: str = "unknown_value"
    identifier: str | None = None
    pseudonymous_id: bool = False  # an id that must not be an email address (personal_data_in_id)
    free_text: bool = False  # kept text that must hold no email or phone (personal_data_in_text)
    file_name: str | None = None
    hint: str = ""  # how to write the value, for missing_required_value

    def parse(self, value: object) -> object:
        if isinstance(value, str) and self.identifier is not None:
            parsed: object = value.strip() or None  # normalised later, by the source's transform
        else:
            parsed = PARSERS[self.kind](self.name, value)
        if parsed is None:
            if self.required:
                hint = f" ({self.hint})" if self.hint else ""
                raise CellProblem(
                    "missing_required_value",
                    f"{self.name} is required but empty; fill it in{hint} and re-load the file",
                )
            return self.default
        if self.minimum == "zero" and parsed < 0:  # type: ignore[operator]
            raise CellProblem("negative_value", f"{self.name} is {_shown(_text(value))}; it must be 0 or more")
        if self.minimum == "positive" and parsed <= 0:  # type: ignore[operator]
            raise CellProblem(
                "non_positive_value", f"{self.name} is {_shown(_text(value))}; it must be greater than 0"
            )
        if self.choices:
            choice = str(parsed).lower().replace("-", "_").replace(" ", "_")
            if choice not in self.choices:
                raise CellProblem(
                    self.choice_reason,
                    f"{self.name} is {_shown(parsed)}; use one of {', '.join(self.choices)}",
                )
            parsed = choice
        if self.pseudonymous_id and find_emails(str(parsed)):
            raise CellProblem(
                "personal_data_in_id",
                f"{self.name} looks like an email address; ids must not be direct identifiers: "
                "use the customer number of your CRM instead",
            )
        return parsed


@dataclass(frozen=True)
class Rejection:
    """Rows the engine refused after upload (e.g. unknown references), with why."""

    rows: ibis.Table
    column: str
    reason: str
    message: Callable[[ibis.Table], ibis.Value]


EngineCheck = Callable[["BaseBackend", ibis.Table], tuple[ibis.Table, list[Rejection]]]


@dataclass(frozen=True)
class SourceSpec:
    """How one tabular source is read, checked, transformed and merged into its table."""

    source: str  # crm | products | orders | order_items
    table: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # at most one row per key; a file's exact duplicates are dropped
    replace_by: tuple[str, ...]  # re-loading replaces every group of these present in the file
    schema: pa.Schema  # the table's columns, lineage columns excepted
    to_row: Callable[[dict[str, object]], dict[str, object]] = dict
    row_check: Callable[[dict[str, object]], CellProblem | None] | None = None
    row_check_column: str | None = None
    engine_check: EngineCheck | None = None
    requires_tables: tuple[str, ...] = ()  # must exist before this source loads
    requires_hint: str = ""
    # Values of each loaded row that are used in memory after the merge and never stored (e.g. the
    # raw names that fuzzy matching compares), and what uses them: it returns the tables it wrote.
    features: Callable[[dict[str, object]], dict[str, object]] | None = None
    use_features: Callable[[BaseBackend, list[dict[str, object]], dict[str, str]], dict[str, int]] | None = None

    @property
    def has_identifiers(self) -> bool:
        return any(column.identifier for column in self.columns)


def source_spec(source: str, config: Config) -> SourceSpec:
    """The spec of ``source`` under ``config`` (the CRM spec depends on the privacy settings)."""
    from spillover.config import project_key
    from spillover.ingest import crm, shop

    if source == "crm":
        return crm.members_spec(config, key=project_key(config))
    if source == "orders":
        return shop.orders_spec(key=project_key(config))
    if source == "products":
        return shop.products_spec()
    if source in ("order_items", "order-items"):
        return shop.order_items_spec()
    raise SpilloverInputError(f"unknown source {source!r}; use one of {', '.join(SOURCES)}")


# --------------------------------------------------------------------------------------------------
# reading


@dataclass
class Record:
    """One record of the file: its first line, its fields (``None`` if unusable) and raw text."""

    line: int
    fields: list[object] | None
    raw: str
    last_line: int = 0
    problem: CellProblem | None = None


@dataclass
class FileRecords:
    """A file's header, and its records, read lazily (one pass)."""

    header: list[str]
    records: Iterator[Record]
    kind: str  # csv | parquet
    header_line: int = 1


def _open_bytes(path: Path) -> io.BufferedIOBase:
    try:
        handle = path.open("rb")
        magic = handle.peek(4)[:4] if hasattr(handle, "peek") else b""
    except FileNotFoundError:
        raise SpilloverInputError(f"{path}: no such file; check the path") from None
    except IsADirectoryError:
        raise SpilloverInputError(f"{path}: is a folder; give one CSV or Parquet file") from None
    except OSError as exc:
        raise SpilloverInputError(f"{path}: cannot be read ({exc.strerror}); check its permissions") from None
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=handle)  # type: ignore[return-value]
    return handle  # type: ignore[return-value]


def _is_parquet(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == b"PAR1"
    except OSError:
        return False


def read_records(path: Path) -> FileRecords:
    """Open a CSV (optionally gzipped) or Parquet file and return its header and records.

    CSV: the first non-blank line is the header (line 1 in an ordinary file); a record's line is the
    physical line it starts on, even when quoted fields span lines; blank lines are skipped.
    Parquet: a record's "line" is its 1-based row number.
    """
    if _is_parquet(path):
        return _read_parquet(path)
    return _read_csv(path)


def _read_csv(path: Path) -> FileRecords:
    binary = _open_bytes(path)
    # surrogateescape keeps undecodable bytes so that one bad row is quarantined, not the file lost
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
    consumed: list[str] = []

    def lines() -> Iterator[str]:
        for line in text:
            consumed.append(line)
            yield line

    reader = csv.reader(lines())
    try:
        header_fields: list[str] | None = None
        while header_fields is None:
            row = next(reader)
            if row and any(cell.strip() for cell in row):
                header_fields = row
            consumed.clear()
        header_line = reader.line_num
    except StopIteration:
        text.close()
        raise SpilloverInputError(
            f"{path}: the file is empty (no header line); write a header with the column names, "
            "then the rows"
        ) from None
    except (OSError, EOFError, csv.Error) as exc:
        text.close()
        raise SpilloverInputError(f"{path}: cannot be read as CSV ({exc}); check the file") from None
    if _has_undecodable(",".join(header_fields)):
        text.close()
        raise SpilloverInputError(f"{path}, line {header_line} (header): not valid UTF-8; save the file as UTF-8")

    def records() -> Iterator[Record]:
        previous = reader.line_num
        try:
            while True:
                try:
                    fields = next(reader)
                    problem = None
                except StopIteration:
                    return
                except csv.Error as exc:
                    fields = None
                    problem = CellProblem("malformed_row", f"the CSV reader rejected it ({exc}); check its quoting")
                raw = "".join(consumed).rstrip("\r\n")
                consumed.clear()
                first, previous = previous + 1, reader.line_num
                if fields is not None and not fields:
                    continue  # a blank line is not a row
                if problem is None and _has_undecodable(raw):
                    problem = CellProblem("invalid_encoding", "the row is not valid UTF-8; save the file as UTF-8 and re-load it")
                    fields = None
                yield Record(first, fields if problem is None else None, _printable(raw), previous, problem)
        except (OSError, EOFError) as exc:  # e.g. a truncated gzip stream
            raise SpilloverInputError(
                f"{path}, after line {previous}: the file cannot be read further ({exc}); "
                "nothing was loaded; check the file (is it truncated?) and re-load it"
            ) from None
        finally:
            text.close()

    return FileRecords([h.strip() for h in header_fields], records(), "csv", header_line)


def _has_undecodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _printable(text: str) -> str:
    if not _has_undecodable(text):
        return text
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def _read_parquet(path: Path) -> FileRecords:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise SpilloverInputError(f"{path}: cannot be read as Parquet ({exc}); check the file") from None
    header = list(parquet.schema_arrow.names)

    def records() -> Iterator[Record]:
        row_number = 0
        try:
            for batch in parquet.iter_batches(batch_size=_PROGRESS_EVERY):
                for row in batch.to_pylist():
                    row_number += 1
                    fields = [row[name] for name in header]
                    yield Record(row_number, fields, json.dumps(row, default=str), row_number)
        except (OSError, pa.ArrowException) as exc:
            raise SpilloverInputError(
                f"{path}, after row {row_number}: the file cannot be read further ({exc}); nothing was loaded"
            ) from None

    return FileRecords(header, records(), "parquet")


# --------------------------------------------------------------------------------------------------
# header


@dataclass
class _Layout:
    """Where each of the spec's columns sits in the file, and what is ignored."""

    header: list[str]
    positions: dict[str, int | None]
    ignored: list[str]
    redaction: list[str | None]  # per file position: None (keep) or the marker that replaces it


def _resolve_header(spec: SourceSpec, data: FileRecords, mapping: dict[str, str], path: Path) -> _Layout:
    header = data.header
    where = f"{path}, line {data.header_line} (header)" if data.kind == "csv" else f"{path} (schema)"
    known = {c.name for c in spec.columns if c.file_name is None}
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise SpilloverConfigError(
            f"[columns.{spec.source}] of spillover.toml maps {', '.join(unknown)}, which "
            f"{'is not a' if len(unknown) == 1 else 'are not'} {spec.source} "
            f"column{'' if len(unknown) == 1 else 's'}; "
            f"the names on the left are spillover's: {', '.join(sorted(known))}"
        )
    by_name: dict[str, int] = {}
    for position, name in enumerate(header):
        by_name.setdefault(name.strip().lower(), position)
    positions: dict[str, int | None] = {}
    missing: list[str] = []
    for column in spec.columns:
        wanted = column.file_name or mapping.get(column.name, column.name)
        position = by_name.get(wanted.strip().lower())
        if position is None and column.required:
            missing.append(column.name if wanted == column.name else f"{column.name} (mapped to {wanted!r})")
        positions[column.name] = position
    if missing:
        raise SpilloverInputError(
            f"{where}: missing required column(s) {', '.join(missing)}; nothing was loaded. "
            f"Add them to the file, or if your file names them differently, map them in "
            f"[columns.{spec.source}] of spillover.toml (e.g. {missing[0].split()[0]} = \"YourColumnName\"). "
            f"Columns found: {', '.join(header) or '(none)'}"
        )
    used = {position for position in positions.values() if position is not None}
    duplicated = sorted(
        {header[p] for p in range(len(header)) if p not in used and header[p].strip().lower() in
         {header[u].strip().lower() for u in used}}
    )
    if duplicated:
        raise SpilloverInputError(
            f"{where}: column(s) {', '.join(duplicated)} appear more than once; "
            "rename or remove the copies so each column is named once"
        )
    ignored = [header[p] for p in range(len(header)) if p not in used]
    redaction: list[str | None] = [None] * len(header)
    if spec.has_identifiers:
        # In sources that carry direct identifiers, only columns known to be safe keep their text.
        redaction = ["<redacted:ignored column>"] * len(header)
        for column in spec.columns:
            position = positions[column.name]
            if position is not None:
                redaction[position] = f"<redacted:{column.identifier}>" if column.identifier else None
    return _Layout(header, positions, ignored, redaction)


def _safe_raw(record: Record, layout: _Layout, spec: SourceSpec, input_kind: str, region: str) -> str:
    """The record's raw text as it may be stored: identifiers redacted, email/phone look-alikes too."""
    if not spec.has_identifiers:
        return redact_text(record.raw, region)
    if record.fields is None or len(record.fields) != len(layout.redaction):
        # The fields cannot be trusted to sit under their headers, so keep only those before the
        # first column that could hold an identifier.
        first_sensitive = next((i for i, marker in enumerate(layout.redaction) if marker), len(layout.redaction))
        fields = _split_raw(record, input_kind)
        shown = [field if i < first_sensitive else "<redacted>" for i, field in enumerate(fields)]
        if not fields:
            shown = ["<redacted>"]
    else:
        shown = [
            value if marker is None or value in (None, "") else marker
            for value, marker in zip(record.fields, layout.redaction)
        ]
    return redact_text(_render(shown, input_kind, layout, record), region)


def _split_raw(record: Record, input_kind: str) -> list[str]:
    if record.fields is not None:
        return ["" if f is None else str(f) for f in record.fields]
    if input_kind == "csv":
        return record.raw.split(",")
    return []


def _render(values: Sequence[object], input_kind: str, layout: _Layout, record: Record) -> str:
    if input_kind == "parquet" and record.fields is not None:
        return json.dumps(dict(zip(layout.header, values)), default=str)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(["" if v is None else str(v) for v in values])
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# the load


@dataclass
class _Candidate:
    record: Record
    fingerprint: tuple[object, ...]
    row: dict[str, object]
    features: dict[str, object] | None = None


@dataclass
class CheckedFile:
    """A file read and checked in Python: the rows to load (identifiers already pseudonymised),
    the rows refused, and the counts. Nothing has reached the engine yet."""

    path: Path
    rows: list[dict[str, object]] = field(default_factory=list)
    features: list[dict[str, object]] = field(default_factory=list)  # one per row when the spec has features
    quarantined: list[QuarantineRow] = field(default_factory=list)
    duplicates: int = 0
    read: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    #: The stored-safe raw text of a loaded row by its source line, for rows the engine refuses later.
    #: Redacting is slow (the phone matcher), so it is done only for those rows.
    raw_of_line: Callable[[int], str] | None = None


def check_file(
    spec: SourceSpec, path: Path | str, *, config: Config, progress: Progress | None = None
) -> CheckedFile:
    """Read ``path`` and check every row against ``spec``, in Python.

    Raises :class:`SpilloverInputError` when the file as a whole is unusable (missing, unreadable,
    empty, missing required columns: all of them are named at once). Each row then ends in exactly
    one of ``rows``, ``quarantined`` or the ``duplicates`` count.
    """
    path = Path(path)
    data = read_records(path)
    layout = _resolve_header(spec, data, dict(getattr(config.columns, spec.source)), path)
    checked = _check_rows(spec, data, layout, path, config.privacy.phone_default_region,
                          progress or NullProgress())
    checked.ignored_columns = layout.ignored
    return checked


def ingest_source(
    con: BaseBackend,
    source: str,
    path: Path | str,
    *,
    config: Config,
    progress: Progress | None = None,
) -> LoadResult:
    """Load one CSV or Parquet file of ``source`` (crm, products, orders, order_items).

    A file that is unusable as a whole stops the load before anything is written. Otherwise every
    row ends loaded, quarantined (``ops_quarantine``) or counted as an exact duplicate; accepted rows
    are merged into the source's table by key, so re-loading a file leaves the same rows;
    ``ops_loads`` records the load.
    """
    spec = source_spec(source, config)
    path = Path(path)
    started = now_utc()
    load_id = new_load_id()
    missing_tables = [t for t in spec.requires_tables if not table_exists(con, t)]
    if missing_tables:
        raise SpilloverInputError(
            f"{path}: {', '.join(missing_tables)} {'does' if len(missing_tables) == 1 else 'do'} not exist "
            f"yet; {spec.requires_hint}"
        )
    checked = check_file(spec, path, config=config, progress=progress)

    lineage = {"_source_file": str(path), "_load_id": load_id}
    arrow = _to_arrow(spec, checked.rows, lineage)
    refused: list[QuarantineRow] = []
    if spec.engine_check is None:
        _merge(con, spec, arrow)
    else:
        staged = upload_arrow(con, arrow, prefix=spec.source)
        try:
            accepted, rejections = spec.engine_check(con, staged)
            assert checked.raw_of_line is not None
            refused = _refused_rows(rejections, config.privacy.phone_default_region, checked.raw_of_line)
            _merge(con, spec, accepted)
        finally:
            drop_table(con, staged.get_name())
    written: dict[str, int] = {}
    if spec.use_features is not None:
        written = spec.use_features(con, checked.features, lineage)
    quarantined = checked.quarantined + refused
    # Written even when empty the first time, so that users can always query ops_quarantine.
    if quarantined or not table_exists(con, QUARANTINE_TABLE):
        write_quarantine(con, quarantine_arrow(load_id, spec.source, quarantined))

    result = LoadResult(
        source=spec.source,
        load_id=load_id,
        files=[str(path)],
        rows_read=checked.read,
        rows_loaded=len(checked.rows) - len(refused),
        rows_quarantined=len(quarantined),
        duplicates_dropped=checked.duplicates,
        ignored_columns=checked.ignored_columns,
        tables={spec.table: int(con.table(spec.table).count().execute()), **written},
        started_at=started,
        finished_at=now_utc(),
    )
    record_load(con, result)
    return result


def _check_rows(
    spec: SourceSpec, data: FileRecords, layout: _Layout, path: Path, region: str, progress: Progress
) -> CheckedFile:
    checked = CheckedFile(path)
    task = progress.task(f"reading {path.name}")
    width = len(data.header)
    columns = [(column, layout.positions[column.name]) for column in spec.columns]
    free_text = [(column, position) for column, position in columns if column.free_text and position is not None]
    candidates: list[_Candidate] = []
    by_key: dict[tuple[object, ...], list[int]] = {}

    def reject(record: Record, column: str | None, reason: str, message: str) -> None:
        # File and line are columns of the quarantine row; a record spanning lines says so.
        if record.last_line > record.line:
            message = f"{message} (the record spans lines {record.line}-{record.last_line})"
        checked.quarantined.append(
            QuarantineRow(
                source_file=str(path),
                source_line=record.line,
                reason=reason,
                message=redact_text(message, region),
                raw=_safe_raw(record, layout, spec, data.kind, region),
                column_name=column,
            )
        )

    for record in data.records:
        checked.read += 1
        if checked.read % _PROGRESS_EVERY == 0:
            progress.advance(task, _PROGRESS_EVERY)
        if record.problem is not None:
            reject(record, None, record.problem.reason, record.problem.message)
            continue
        assert record.fields is not None
        if len(record.fields) != width:
            reject(
                record, None, "malformed_row",
                f"the row has {len(record.fields)} fields but the header has {width}; look for an "
                "unquoted comma, a missing field or an unclosed quote (quote values that contain commas)",
            )
            continue
        parsed: dict[str, object] = {}
        problems: list[tuple[str, CellProblem]] = []
        for column, position in columns:
            try:
                parsed[column.name] = column.parse(None if position is None else record.fields[position])
            except CellProblem as problem:
                problems.append((column.name, problem))
        for column, _ in free_text:
            value = parsed[column.name]
            if isinstance(value, str) and (find_emails(value) or find_phones(value, region)):
                problems.append((column.name, CellProblem(
                    "personal_data_in_text",
                    f"{column.name} holds what looks like an email address or a phone number; "
                    "remove it from that column (or stop keeping the column) and re-load the file",
                )))
        if not problems and spec.row_check is not None:
            problem = spec.row_check(parsed)
            if problem is not None:
                problems.append((spec.row_check_column or spec.key[0], problem))
        if problems:
            column, first = problems[0]
            reject(record, column, first.reason, "; ".join(p.message for _, p in problems))
            continue
        key = tuple(parsed[k] for k in spec.key)
        by_key.setdefault(key, []).append(len(candidates))
        row = spec.to_row(parsed)
        # Duplicates are judged on what is kept, after normalisation ("A@x.com" equals "a@x.com").
        features = spec.features(parsed) if spec.features is not None else None
        candidates.append(_Candidate(record, tuple(row.values()), row, features))

    conflicting: set[int] = set()
    duplicate: set[int] = set()
    for key, members in by_key.items():
        if len(members) == 1:
            continue
        versions = {candidates[i].fingerprint for i in members}
        if len(versions) == 1:
            duplicate.update(members[1:])
            continue
        conflicting.update(members)
        differing = _differing_columns([candidates[i].row for i in members])
        lines = [candidates[i].record.line for i in members]
        shown_lines = ", ".join(str(n) for n in lines[:10]) + (" …" if len(lines) > 10 else "")
        key_text = ", ".join(f"{k} {_shown(v)}" for k, v in zip(spec.key, key))
        for i in members:
            reject(
                candidates[i].record, differing[0] if differing else spec.key[0], "conflicting_duplicate",
                f"{key_text} appears on {len(lines)} rows (lines {shown_lines}) that disagree on "
                f"{', '.join(differing)}; none of them was loaded: keep one row per "
                f"{', '.join(spec.key)} and re-load the file",
            )
    checked.duplicates = len(duplicate)
    kept = [c for i, c in enumerate(candidates) if i not in conflicting and i not in duplicate]
    checked.rows = [dict(c.row, _source_line=c.record.line) for c in kept]
    if spec.engine_check is not None:
        record_of_line = {c.record.line: c.record for c in kept}
        checked.raw_of_line = lambda line: _safe_raw(record_of_line[line], layout, spec, data.kind, region)
    if spec.features is not None:
        checked.features = [c.features for c in kept]  # type: ignore[misc]
    progress.advance(task, checked.read % _PROGRESS_EVERY)
    return checked


def _differing_columns(rows: list[dict[str, object]]) -> list[str]:
    return [name for name in rows[0] if len({row[name] for row in rows}) > 1]


def _to_arrow(spec: SourceSpec, rows: list[dict[str, object]], lineage: dict[str, str]) -> pa.Table:
    schema = pa.schema(list(spec.schema) + list(LINEAGE_SCHEMA))
    arrays = {}
    for column in schema:
        if column.name in lineage:
            arrays[column.name] = pa.array([lineage[column.name]] * len(rows), column.type)
        else:
            arrays[column.name] = pa.array([row.get(column.name) for row in rows], column.type)
    return pa.table(arrays, schema=schema)


def _refused_rows(rejections: list[Rejection], region: str, raw_of_line: Callable[[int], str]) -> list[QuarantineRow]:
    """The rows the engine refused, brought back to be quarantined with the others (only they move),
    with their raw text as it may be stored."""
    if not rejections:
        return []
    parts = [
        r.rows.select(
            source_file=r.rows._source_file,
            source_line=r.rows._source_line.cast("int64"),
            column_name=ibis.literal(r.column, "string"),
            reason=ibis.literal(r.reason, "string"),
            message=r.message(r.rows),
        )
        for r in rejections
    ]
    combined = parts[0]
    for part in parts[1:]:
        combined = combined.union(part)
    return [
        QuarantineRow(
            source_file=row["source_file"],
            source_line=row["source_line"],
            reason=row["reason"],
            message=redact_text(row["message"], region),
            raw=raw_of_line(row["source_line"]),
            column_name=row["column_name"],
        )
        for row in combined.order_by("source_line").to_pyarrow().to_pylist()
    ]


def _merge(con: BaseBackend, spec: SourceSpec, rows: ibis.Table | pa.Table) -> None:
    """Merge the accepted rows into the source's table, replacing every ``replace_by`` group they hold."""
    columns = list(rows.column_names if isinstance(rows, pa.Table) else rows.columns)
    if not table_exists(con, spec.table) or list(con.table(spec.table).columns) == columns:
        replace_partitions(con, spec.table, rows, by=list(spec.replace_by))
        return
    # The columns changed (e.g. privacy.allowed_attributes was edited): rewrite the table in the new
    # shape, so that a column no longer allowed disappears from every row, not only the new ones.
    staged = upload_arrow(con, rows, prefix=spec.source) if isinstance(rows, pa.Table) else rows
    try:
        keys = list(spec.replace_by)
        existing = con.table(spec.table)
        kept = existing.anti_join(staged.select(keys).distinct(), keys)
        kept = kept.select(
            [kept[c].cast(staged[c].type()) if c in kept.columns else ibis.null(staged[c].type()).name(c)
             for c in columns]
        )
        write_table(con, spec.table, kept.union(staged))
    finally:
        if staged is not rows:
            drop_table(con, staged.get_name())
