"""The books of a load: quarantined rows (``ops_quarantine``) and load records (``ops_loads``).

Every ingest function returns a :class:`LoadResult` whose counts reconcile by construction
(``rows_read == rows_loaded + rows_quarantined + duplicates_dropped``), writes the rows it refused to
``ops_quarantine`` and one row per load to ``ops_loads``. A problem with a whole file (unreadable,
empty, truncated) is one quarantine row with the line where it was found (0 when it is the file as a
whole), so the quarantine table and the counts always agree.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa

from spillover import __version__
from spillover.engine import append_rows
from spillover.errors import SpilloverStageError

if TYPE_CHECKING:
    import ibis
    from ibis.backends import BaseBackend

QUARANTINE_TABLE = "ops_quarantine"
LOADS_TABLE = "ops_loads"

#: The schema of ``ops_quarantine``; ingest code builds its quarantine rows in this shape.
QUARANTINE_SCHEMA = pa.schema(
    [
        ("load_id", pa.string()),
        ("source", pa.string()),  # ga4 | crm | orders | order_items | products
        ("source_file", pa.string()),
        ("source_line", pa.int64()),  # 1-based line (CSV: data rows after the header are 2..n); 0 = whole file
        ("column_name", pa.string()),  # the offending column/field, if one
        ("reason", pa.string()),  # stable code, e.g. malformed_json, missing_required_field
        ("message", pa.string()),  # a sentence: what is wrong and what to do
        ("raw", pa.string()),  # the raw line/record as read (may be truncated to 64 KiB)
        ("quarantined_at", pa.timestamp("us", tz="UTC")),
    ]
)

RAW_LIMIT = 65_536


def new_load_id() -> str:
    return uuid.uuid4().hex


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class QuarantineRow:
    source_file: str
    source_line: int
    reason: str
    message: str
    raw: str = ""
    column_name: str | None = None


def quarantine_arrow(load_id: str, source: str, rows: list[QuarantineRow]) -> pa.Table:
    """Quarantine rows found in Python (file-level problems, CSV parse errors) as an Arrow table."""
    stamp = now_utc()
    return pa.table(
        {
            "load_id": [load_id] * len(rows),
            "source": [source] * len(rows),
            "source_file": [r.source_file for r in rows],
            "source_line": [r.source_line for r in rows],
            "column_name": [r.column_name for r in rows],
            "reason": [r.reason for r in rows],
            "message": [r.message for r in rows],
            "raw": [r.raw[:RAW_LIMIT] for r in rows],
            "quarantined_at": [stamp] * len(rows),
        },
        schema=QUARANTINE_SCHEMA,
    )


def write_quarantine(con: BaseBackend, rows: pa.Table | ibis.Table) -> None:
    """Append quarantine rows (Arrow or an Ibis expression with exactly QUARANTINE_SCHEMA's columns)."""
    append_rows(con, QUARANTINE_TABLE, rows)


@dataclass
class LoadResult:
    """What one load did; ``to_dict`` is the ``--json`` output of ``spillover ingest``."""

    source: str
    load_id: str
    files: list[str]
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    duplicates_dropped: int
    partitions: list[str] = field(default_factory=list)
    file_errors: list[dict[str, str]] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)  # file columns that are not loaded
    tables: dict[str, int] = field(default_factory=dict)
    started_at: dt.datetime = field(default_factory=now_utc)
    finished_at: dt.datetime = field(default_factory=now_utc)

    def __post_init__(self) -> None:
        accounted = self.rows_loaded + self.rows_quarantined + self.duplicates_dropped
        if accounted != self.rows_read:
            raise SpilloverStageError(
                "ingest",
                self.source,
                f"counts do not reconcile: read {self.rows_read} rows but loaded {self.rows_loaded}, "
                f"quarantined {self.rows_quarantined} and dropped {self.duplicates_dropped} duplicates "
                "(a bug in spillover: please report it with the input files)",
            )

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["started_at"] = self.started_at.isoformat()
        out["finished_at"] = self.finished_at.isoformat()
        return out


def record_load(con: BaseBackend, result: LoadResult) -> None:
    """Append one row to ``ops_loads``."""
    row = pa.table(
        {
            "load_id": [result.load_id],
            "source": [result.source],
            "started_at": [result.started_at],
            "finished_at": [result.finished_at],
            "files": [len(result.files)],
            "rows_read": [result.rows_read],
            "rows_loaded": [result.rows_loaded],
            "rows_quarantined": [result.rows_quarantined],
            "duplicates_dropped": [result.duplicates_dropped],
            "partitions": [",".join(result.partitions)],
            "file_errors": [len(result.file_errors)],
            "spillover_version": [__version__],
        }
    )
    append_rows(con, LOADS_TABLE, row)
