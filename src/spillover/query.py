"""Read-only access for people: run one query, list tables with row counts.

Queries are parsed with sqlglot and refused unless they only read; DuckDB warehouses are also
opened read-only by the CLI, so the check is a clear message rather than the only guard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spillover.engine import engine_name
from spillover.errors import SpilloverQueryError

if TYPE_CHECKING:
    import pandas as pd
    from ibis.backends import BaseBackend

_READ_ONLY_ROOTS = ("Select", "Union", "Intersect", "Except", "Describe", "Show", "Pragma")


def check_read_only(query: str, dialect: str) -> None:
    """Raise :class:`SpilloverQueryError` unless ``query`` is one statement that only reads."""
    import sqlglot
    from sqlglot import exp

    try:
        statements = [s for s in sqlglot.parse(query, read=dialect) if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise SpilloverQueryError(f"could not parse the query: {exc}") from exc
    if len(statements) != 1:
        raise SpilloverQueryError(f"expected one statement, got {len(statements)}; run them one at a time")
    statement = statements[0]
    if type(statement).__name__ not in _READ_ONLY_ROOTS:
        raise SpilloverQueryError(
            f"only read-only queries are allowed (got {statement.key.upper()}); "
            "`spillover sql` never changes the warehouse"
        )
    writes = (exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop, exp.Alter, exp.Merge)
    if any(statement.find_all(*writes)):
        raise SpilloverQueryError("only read-only queries are allowed; the query contains a write")


def run_query(con: BaseBackend, query: str, *, limit: int = 100) -> tuple[pd.DataFrame, int | None]:
    """Run ``query``; return at most ``limit`` rows (0: all) and the total row count when cut."""
    dialect = "spark" if engine_name(con) == "pyspark" else engine_name(con)
    check_read_only(query, dialect)
    try:
        table = con.sql(query, dialect=dialect)
        if limit:
            frame = table.limit(limit + 1).to_pandas()
            if len(frame) > limit:
                return frame.iloc[:limit], int(table.count().execute())
            return frame, None
        return table.to_pandas(), None
    except SpilloverQueryError:
        raise
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpilloverQueryError(f"the engine rejected the query: {message}") from exc


def table_counts(con: BaseBackend) -> dict[str, int]:
    """Row counts of the warehouse's tables (intermediate ``_spillover_*`` tables excluded)."""
    names = sorted(n for n in con.list_tables() if not n.startswith(("_spillover_", "ibis_")))
    return {name: int(con.table(name).count().execute()) for name in names}
