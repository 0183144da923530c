"""Raw-file readers: the one engine-specific step of ingestion, one dialect class per engine.

Python streams text files as Arrow batches of numbered lines; each dialect brings them (or Parquet
rows as JSON) into its engine and names the engine's JSON functions. From there on, it is Ibis.
"""

from __future__ import annotations

import contextlib
import json
import threading
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from queue import Full, Queue
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.datatypes as dt
import numpy as np
import pyarrow as pa
import sqlglot.expressions as sge

from spillover.engine import another_duckdb_connection, drop_table, engine_name, temp_name

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

__all__ = [
    "LINES_SCHEMA",
    "is_engine_error",
    "FileProblem",
    "LineReader",
    "Dialect",
    "DuckDBDialect",
    "SparkDialect",
    "dialect_for",
]

#: What every reader hands to the engine: the file's index in its load, the 1-based physical
#: line, its text (with its line ending) and whether its bytes were valid UTF-8 (if not, ``text``
#: shows them escaped).
LINES_SCHEMA = pa.schema(
    [
        ("file_index", pa.int32()),
        ("source_line", pa.int64()),
        ("text", pa.large_string()),
        ("utf8_ok", pa.bool_()),
    ]
)

_CHUNK_BYTES = 8 << 20
_NEWLINE = 10
_CARRIAGE_RETURN = 13
_BOM = b"\xef\xbb\xbf"


@dataclass
class FileProblem:
    """Something wrong with a file as a whole or with its end; becomes one quarantine row."""

    reason: str
    message: str
    line: int = 0
    raw: str = ""


class LineReader:
    """Streams a (possibly gzip-compressed) text file as Arrow batches of numbered lines.

    Blank lines are skipped but counted, so ``source_line`` is the line an editor shows. Reading
    stops at the first damage: lines before it are yielded and the damage is kept in ``problem``
    (whole-file problems at line 0). ``batches`` never raises for bad input.
    """

    def __init__(
        self,
        path: Path,
        *,
        gzip: bool,
        file_index: int = 0,
        on_rows: Callable[[int], None] | None = None,
        chunk_bytes: int = _CHUNK_BYTES,
    ):
        self.path = path
        self.gzip = gzip
        self.file_index = file_index
        self.on_rows = on_rows
        self.chunk_bytes = chunk_bytes
        self.problem: FileProblem | None = None
        self.lines = 0  # data lines yielded
        self._next_line = 1
        self._bytes_seen = 0

    def batches(self) -> Iterator[pa.RecordBatch]:
        tail = b""
        try:
            for chunk in self._chunks():
                if self._bytes_seen == 0 and chunk.startswith(_BOM):
                    chunk = chunk[len(_BOM):]
                self._bytes_seen += len(chunk)
                data = tail + chunk if tail else chunk
                cut = data.rfind(b"\n") + 1
                tail = data[cut:]
                if cut:
                    batch = self._batch(data, cut)
                    if batch is not None:
                        yield batch
        except _StreamDamage as damage:
            # The partial line at the damage is the quarantined row; nothing read means the file.
            line = self._next_line if self._bytes_seen else 0
            self.problem = FileProblem(damage.reason, damage.message, line, tail.decode("utf-8", "backslashreplace"))
            return
        if tail.strip():
            batch = self._batch(tail + b"\n", len(tail) + 1)
            if batch is not None:
                yield batch
        if self.lines == 0 and self.problem is None:
            self.problem = FileProblem(
                "empty_file",
                "the file holds no events; if the export failed, export the date again, "
                "otherwise remove the file",
            )

    def _chunks(self) -> Iterator[bytes]:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - closed below, after streaming
        except OSError as exc:
            raise _StreamDamage("unreadable_file", f"the file cannot be opened ({exc.strerror})") from exc
        with handle:
            if not self.gzip:
                while chunk := handle.read(self.chunk_bytes):
                    yield chunk
                return
            yield from self._gunzip(handle)

    def _gunzip(self, handle: Any) -> Iterator[bytes]:
        # zlib rather than the gzip module: it keeps everything decoded before a truncation and
        # tells a damaged stream from a file that is not gzip at all.
        decoder = zlib.decompressobj(wbits=31)
        produced = False
        read_any = False
        member_ended = False  # the last gzip member ended cleanly (concatenated members may follow)
        while raw := handle.read(self.chunk_bytes // 4):
            read_any = True
            while raw:
                if member_ended:
                    if not raw.strip(b"\0"):  # zero padding after the last member is harmless
                        break
                    decoder = zlib.decompressobj(wbits=31)
                    member_ended = False
                try:
                    out = decoder.decompress(raw)
                except zlib.error as exc:
                    if not produced:
                        raise _StreamDamage(
                            "unreadable_file",
                            "the file is not gzip-compressed although its name ends in .gz "
                            f"({exc}); rename it without .gz or compress it again",
                        ) from exc
                    raise _StreamDamage(
                        "corrupt_file",
                        f"the compressed data is damaged from this line on ({exc}); the lines "
                        "before it were loaded; export the date again to load the rest",
                    ) from exc
                if out:
                    produced = True
                    yield out
                if decoder.eof:
                    raw = decoder.unused_data
                    member_ended = True
                else:
                    raw = b""
        if read_any and not member_ended:
            raise _StreamDamage(
                "truncated_file",
                "the gzip stream ends early (the file is truncated) in this line; the lines "
                "before it were loaded; copy or export the file again to load the rest",
            )

    def _batch(self, data: bytes, cut: int) -> pa.RecordBatch | None:
        """Numbered, non-blank lines of ``data[:cut]`` (which ends with a newline)."""
        body = np.frombuffer(data, np.uint8, cut)
        ends = np.flatnonzero(body == _NEWLINE) + 1
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1]
        numbers = np.arange(self._next_line, self._next_line + len(ends), dtype=np.int64)
        self._next_line += len(ends)
        lengths = ends - starts
        blank = (lengths == 1) | ((lengths == 2) & (body[starts] == _CARRIAGE_RETURN))
        offsets = np.empty(len(ends) + 1, np.int64)
        offsets[0] = 0
        offsets[1:] = ends
        text = pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(data))
        utf8_ok = np.ones(len(ends), bool)
        try:
            text.validate(full=True)
        except pa.ArrowInvalid:
            text, utf8_ok = self._escape_bad_utf8(data, starts, ends)
        file_index = pa.array(np.full(len(ends), self.file_index, np.int32))
        batch = pa.record_batch(
            [file_index, pa.array(numbers), text, pa.array(utf8_ok)], schema=LINES_SCHEMA
        )
        if blank.any():
            batch = batch.filter(pa.array(~blank))
        self.lines += batch.num_rows
        if self.on_rows is not None:
            self.on_rows(batch.num_rows)
        return batch if batch.num_rows else None

    @staticmethod
    def _escape_bad_utf8(data: bytes, starts: np.ndarray, ends: np.ndarray) -> tuple[pa.Array, np.ndarray]:
        texts = []
        ok = np.ones(len(ends), bool)
        for i, (start, end) in enumerate(zip(starts.tolist(), ends.tolist())):
            raw = data[start:end]
            try:
                texts.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                texts.append(raw.decode("utf-8", "backslashreplace"))
                ok[i] = False
        return pa.array(texts, pa.large_string()), ok


def is_engine_error(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by the engine itself (as for a file it cannot read), not by Python."""
    return type(exc).__module__.split(".")[0] in {"duckdb", "_duckdb", "pyspark", "py4j"}


class _StreamDamage(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def _prefetched(batches: Iterator[pa.RecordBatch], depth: int = 4) -> Iterator[pa.RecordBatch]:
    """``batches``, produced by a thread of their own while the engine works on earlier ones.

    The engine pulls batches from its worker threads; producing them there (in Python, under the
    GIL) would leave those threads waiting on each other instead of copying.
    """
    queue: Queue[Any] = Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        queue.put(batch, timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put(exc)
            return
        queue.put(done)

    producer = threading.Thread(target=produce, name="spillover-lines", daemon=True)
    producer.start()
    try:
        while (item := queue.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        producer.join()


def _builtin(name: str, arg_types: tuple[dt.DataType, ...], return_type: dt.DataType) -> Callable[..., Any]:
    """An engine function as an Ibis expression builder (no SQL strings)."""
    return ibis.udf.scalar.builtin(_STUBS[len(arg_types)], name=name, signature=(arg_types, return_type))


# Ibis reads a builtin's arity from the Python function it wraps.
_STUBS: dict[int, Callable[..., None]] = {
    1: lambda first: None,
    2: lambda first, second: None,
    3: lambda first, second, third: None,
}


STRING_LIST = dt.Array(dt.string)
STRING_MAP = dt.Map(dt.string, dt.string)


class Dialect:
    """What ingestion needs from an engine: bring raw rows in, and its JSON functions.

    Every JSON function returns null for text that is not valid JSON (or not of the asked shape),
    never an error, so that a bad line is quarantined instead of failing the load.
    """

    name = "base"

    def __init__(self, con: BaseBackend):
        self.con = con
        self._scratch: list[str] = []
        self._cleanups: list[Callable[[], None]] = []

    # raw rows -----------------------------------------------------------------------------------
    def lines_table(self, readers: Sequence[LineReader]) -> ibis.Table:
        """The lines of text files, one after the other, as a table of ``LINES_SCHEMA``.

        Read it once, then drop it with :meth:`drop_scratch` (engines may hold it in memory).
        """
        raise NotImplementedError

    def parquet_table(self, path: Path, file_index: int) -> ibis.Table:
        """The rows of a Parquet file as ``LINES_SCHEMA``: ``text`` is each row as a JSON object."""
        raise NotImplementedError

    def register_table(self, name: str, table: pa.Table) -> None:
        """Make a small Arrow table readable as ``name`` until :meth:`close`."""
        raise NotImplementedError

    def register_view(self, name: str, expr: ibis.Table) -> None:
        """Make ``expr`` readable as ``name`` (a session-scoped view) until :meth:`close`."""
        self.register_sql(name, str(self.con.compile(expr)))

    def register_sql(self, name: str, sql: str) -> ibis.Table:
        """Make a query compiled earlier (by Ibis, for this engine) readable as ``name``.

        Handing compiled SQL to the engine directly spares Ibis from parsing it back, which takes
        seconds for the large check query.
        """
        raise NotImplementedError

    # JSON functions -----------------------------------------------------------------------------
    def object_keys(self, text: ibis.Value) -> ibis.Value:
        """Top-level keys of a JSON object; an empty array for other JSON; null if not JSON."""
        raise NotImplementedError

    def is_json(self, text: ibis.Value) -> ibis.Value:
        raise NotImplementedError

    def parse(self, text: ibis.Value, dtype: dt.Struct) -> ibis.Value:
        """Parse a JSON object into ``dtype`` (all leaves strings): unknown keys are ignored."""
        raise NotImplementedError

    def parse_failed(self, parsed: ibis.Value) -> ibis.Value:
        """Whether :meth:`parse` gave up on a row (engines that null a row whose shape is off)."""
        return ibis.literal(False)

    def members(self, text: ibis.Value) -> ibis.Value:
        """A JSON object's members as map<string, string> (nested values as JSON text)."""
        raise NotImplementedError

    def member(self, text: ibis.Value, key: str) -> ibis.Value:
        """The raw text of one member of a JSON object: objects and arrays as JSON; null if absent."""
        raise NotImplementedError

    def elements(self, text: ibis.Value) -> ibis.Value:
        """A JSON array's elements as array<string> (nested values as JSON text)."""
        raise NotImplementedError

    def has_others(self, values: ibis.ArrayValue, known: Sequence[str]) -> ibis.BooleanValue:
        """Whether an array of strings holds one not in ``known`` (null for a null array)."""
        return values.filter(lambda value: ~value.isin(list(known))).length() > 0

    def to_json(self, value: ibis.Value) -> ibis.Value:
        """``value`` as JSON text (engines name the function alike; DuckDB returns its JSON type)."""
        return _builtin("to_json", (value.type(),), dt.json)(value).cast("string")

    # scratch tables -----------------------------------------------------------------------------
    def scratch(self, expr: ibis.Table, prefix: str) -> ibis.Table:
        """Materialise an intermediate result; dropped by :meth:`close`."""
        name = temp_name(prefix)
        self.con.create_table(name, expr)
        self._scratch.append(name)
        return self.con.table(name)

    def scratch_append(self, table: ibis.Table, expr: ibis.Table) -> None:
        self.con.insert(table.get_name(), expr.select(table.columns))

    def drop_scratch(self, table: ibis.Table) -> None:
        name = table.get_name()
        drop_table(self.con, name)
        if name in self._scratch:
            self._scratch.remove(name)

    # writes ---------------------------------------------------------------------------------------
    def write_together(self, *writes: Callable[[BaseBackend], Any]) -> list[Any]:
        """Run writes into different tables, each given a connection; return their results in order.

        The first runs on this dialect's connection, so it may read its scratch tables; the others
        may only read permanent tables. Engines that can write side by side do (see DuckDB's).
        """
        return [write(self.con) for write in writes]

    @contextlib.contextmanager
    def loading(self) -> Iterator[Dialect]:
        """Engine settings for a streaming load; scratch tables are dropped on the way out."""
        try:
            yield self
        finally:
            self.close()

    def close(self) -> None:
        for name in list(self._scratch):
            with contextlib.suppress(Exception):
                drop_table(self.con, name)
        self._scratch.clear()
        for cleanup in reversed(self._cleanups):
            with contextlib.suppress(Exception):
                cleanup()
        self._cleanups.clear()


def _duckdb_structure(dtype: dt.DataType) -> Any:
    if dtype.is_struct():
        return {name: _duckdb_structure(field) for name, field in dtype.items()}
    if dtype.is_array():
        return [_duckdb_structure(dtype.value_type)]
    return "VARCHAR"


class DuckDBDialect(Dialect):
    """DuckDB: Arrow line batches are copied into a temporary table; ``json_transform`` parses them."""

    name = "duckdb"
    #: DuckDB keeps up to 80% of RAM by default; a load streams, so it needs far less, and keeping
    #: it small keeps a large export from crowding out the rest of the machine (it spills to disk).
    memory_limit = "1GB"

    #: Settings for a load: rows need no particular physical order (lineage columns say where each
    #: came from), and not keeping it lets DuckDB write in parallel with less memory. Every commit
    #: checkpoints, inside the memory limit: large inserts barely touch the write-ahead log, so
    #: DuckDB would otherwise leave the whole load to the checkpoint at close, after the limit is
    #: restored, and that one held memory in proportion to the load (16.8 GB for 10M events).
    load_settings = {
        "memory_limit": memory_limit,
        "preserve_insertion_order": "false",
        "checkpoint_threshold": "1KB",
    }

    def __init__(self, con: BaseBackend):
        super().__init__(con)
        self._others: list[BaseBackend] = []  # connections for writes beside this one's

    def write_together(self, *writes: Callable[[BaseBackend], Any]) -> list[Any]:
        # Each write runs on one thread, the others on connections of their own in threads beside
        # it. An insert on N threads leaves N part-filled row groups, which the next checkpoint's
        # vacuum merges by writing them again: as much work again as the insert on a GA4 load
        # (a 333k-event date: 3.4 s to insert into base_ga4__events, then 5 s of checkpoint). One
        # thread leaves one, and writing two tables side by side keeps both cores busy.
        if not writes:
            return []
        raw = self.con.con
        threads = raw.execute("SELECT current_setting('threads')").fetchone()[0]
        raw.execute("SET threads = 1")
        try:
            while len(self._others) < len(writes) - 1:
                self._others.append(another_duckdb_connection(self.con))
            # A pool starts its threads on the first submit: a lone write runs in this thread only.
            with ThreadPoolExecutor(max_workers=max(1, len(writes) - 1), thread_name_prefix="spillover-write") as pool:
                beside = [pool.submit(write, other) for write, other in zip(writes[1:], self._others)]
                try:
                    first = writes[0](self.con)
                finally:
                    wait(beside)  # never leave a write running past this call, even on an error
            return [first, *(future.result() for future in beside)]
        finally:
            raw.execute(f"SET threads = {int(threads)}")

    def close(self) -> None:
        super().close()
        for other in self._others:
            with contextlib.suppress(Exception):
                other.disconnect()
        self._others.clear()

    @contextlib.contextmanager
    def loading(self) -> Iterator[Dialect]:
        raw = self.con.con
        previous = {
            name: raw.execute("SELECT current_setting(?)", [name]).fetchone()[0] for name in self.load_settings
        }
        for name, value in self.load_settings.items():
            raw.execute(f"SET {name} = '{value}'")
        try:
            yield self
        finally:
            self.close()
            for name, value in previous.items():
                raw.execute(f"SET {name} = '{value}'")

    def register_table(self, name: str, table: pa.Table) -> None:
        raw = self.con.con
        with contextlib.suppress(Exception):
            raw.unregister(name)
        raw.register(name, table)
        self._cleanups.append(lambda: raw.unregister(name))

    def register_sql(self, name: str, sql: str) -> ibis.Table:
        raw = self.con.con
        raw.sql(sql).create_view(name, replace=True)
        drop = sge.Drop(this=sge.table_(sge.to_identifier(name, quoted=True)), kind="VIEW", exists=True)
        self._cleanups.append(lambda: raw.execute(drop.sql(dialect="duckdb")))
        return self.con.table(name)

    def lines_table(self, readers: Sequence[LineReader]) -> ibis.Table:
        # The stream is copied into a temporary table before anything reads it: the check query
        # runs about 1.8x faster over DuckDB's own storage than over an Arrow stream (400k GA4
        # events: 1.2 s to copy, then 6.6 s to check, against 12.5 s from the stream). The copy
        # spills to disk beyond the load's memory limit.
        stream_name = temp_name("stream")
        batches = _prefetched(batch for reader in readers for batch in reader.batches())
        raw = self.con.con
        raw.register(stream_name, pa.RecordBatchReader.from_batches(LINES_SCHEMA, batches))
        try:
            return self.scratch(self.con.table(stream_name), "lines")
        finally:
            raw.unregister(stream_name)

    def parquet_table(self, path: Path, file_index: int) -> ibis.Table:
        rows = self.con.read_parquet(str(path), table_name=temp_name("parquet"), file_row_number=True)
        self._cleanups.append(lambda: self.con.drop_view(rows.get_name(), force=True))
        columns = [c for c in rows.columns if c != "file_row_number"]
        return rows.select(
            file_index=ibis.literal(file_index, "int32"),
            source_line=rows.file_row_number.cast("int64") + 1,
            text=self.to_json(ibis.struct({c: rows[c] for c in columns})),
            utf8_ok=ibis.literal(True),
        )

    def scratch(self, expr: ibis.Table, prefix: str) -> ibis.Table:
        name = temp_name(prefix)
        self.con.create_table(name, expr, temp=True)
        self._scratch.append(name)
        return self.con.table(name)

    def object_keys(self, text: ibis.Value) -> ibis.Value:
        keys = _builtin("json_keys", (dt.string,), STRING_LIST)(text)
        return _builtin("try", (STRING_LIST,), STRING_LIST)(keys)

    def is_json(self, text: ibis.Value) -> ibis.Value:
        return _builtin("json_valid", (dt.string,), dt.boolean)(text)

    def parse(self, text: ibis.Value, dtype: dt.Struct) -> ibis.Value:
        structure = json.dumps(_duckdb_structure(dtype), separators=(",", ":"))
        parsed = _builtin("json_transform", (dt.string, dt.string), dtype)(text, structure)
        return _builtin("try", (dtype,), dtype)(parsed)

    def members(self, text: ibis.Value) -> ibis.Value:
        parsed = _builtin("json_transform", (dt.string, dt.string), STRING_MAP)(text, '"MAP(VARCHAR, VARCHAR)"')
        return _builtin("try", (STRING_MAP,), STRING_MAP)(parsed)

    def member(self, text: ibis.Value, key: str) -> ibis.Value:
        extracted = _builtin("json_extract_string", (dt.string, dt.string), dt.string)
        # json_extract_string gives nested values as JSON text and strings unquoted, as Spark does.
        path = "$." + json.dumps(key)
        return _builtin("try", (dt.string,), dt.string)(extracted(text, path))

    def elements(self, text: ibis.Value) -> ibis.Value:
        parsed = _builtin("json_transform", (dt.string, dt.string), STRING_LIST)(text, '["VARCHAR"]')
        return _builtin("try", (STRING_LIST,), STRING_LIST)(parsed)

    def has_others(self, values: ibis.ArrayValue, known: Sequence[str]) -> ibis.BooleanValue:
        # A native list function: the lambda of the generic test cost about 7 us a row.
        has_all = _builtin("list_has_all", (STRING_LIST, STRING_LIST), dt.boolean)
        return ~has_all(ibis.literal(list(known), STRING_LIST), values)


def _spark_type(dtype: dt.DataType) -> str:
    if dtype.is_struct():
        fields = ",".join(f"`{name}`:{_spark_type(field)}" for name, field in dtype.items())
        return f"struct<{fields}>"
    if dtype.is_array():
        return f"array<{_spark_type(dtype.value_type)}>"
    if dtype.is_map():
        return f"map<{_spark_type(dtype.key_type)},{_spark_type(dtype.value_type)}>"
    return "string"


_SPARK_CORRUPT = "_corrupt_record"


class SparkDialect(Dialect):
    """Spark: line batches are staged as Parquet and read back; ``from_json`` parses them.

    Gzip files cannot be split across Spark tasks anyway; streaming them through the driver is what
    lets a truncated file keep the lines before the damage.
    """

    name = "pyspark"

    def __init__(self, con: BaseBackend):
        super().__init__(con)
        self._staging_dir: Path | None = None
        self._frames: dict[str, Any] = {}

    @property
    def session(self) -> Any:
        return self.con._session

    def _staging(self) -> Path:
        if self._staging_dir is None:
            self._staging_dir = Path(tempfile.mkdtemp(prefix="spillover-ga4-lines-"))
            staging = self._staging_dir
            self._cleanups.append(lambda: shutil.rmtree(staging, ignore_errors=True))
        return self._staging_dir

    def register_table(self, name: str, table: pa.Table) -> None:
        self.session.createDataFrame(table).createOrReplaceTempView(name)
        self._cleanups.append(lambda: self.session.catalog.dropTempView(name))

    def register_sql(self, name: str, sql: str) -> ibis.Table:
        self.session.sql(sql).createOrReplaceTempView(name)
        self._cleanups.append(lambda: self.session.catalog.dropTempView(name))
        return self.con.table(name)

    def scratch(self, expr: ibis.Table, prefix: str) -> ibis.Table:
        # Checkpointed in the executors (memory, spilling to disk) rather than written as a table:
        # intermediate results are read a few times and then dropped.
        return self._checkpoint(self.session.sql(str(self.con.compile(expr))), temp_name(prefix))

    def scratch_append(self, table: ibis.Table, expr: ibis.Table) -> None:
        name = table.get_name()
        combined = self.session.table(name).unionByName(self.session.sql(str(self.con.compile(expr.select(table.columns)))))
        self._checkpoint(combined, name)

    def drop_scratch(self, table: ibis.Table) -> None:
        frame = self._frames.pop(table.get_name(), None)
        if frame is not None:
            self.session.catalog.dropTempView(table.get_name())
            frame.unpersist()

    def _checkpoint(self, frame: Any, name: str) -> ibis.Table:
        frame = frame.localCheckpoint(eager=True)
        frame.createOrReplaceTempView(name)
        previous = self._frames.get(name)
        self._frames[name] = frame
        if previous is not None:
            previous.unpersist()
        else:
            self._cleanups.append(lambda: self.drop_scratch(self.con.table(name)) if name in self._frames else None)
        return self.con.table(name)

    def lines_table(self, readers: Sequence[LineReader]) -> ibis.Table:
        import pyarrow.parquet as pq

        # Spark skips files whose names start with an underscore.
        target = self._staging() / f"lines-{temp_name('')[len('_spillover_'):]}.parquet"
        with pq.ParquetWriter(target, LINES_SCHEMA) as writer:
            for reader in readers:
                for batch in reader.batches():
                    writer.write_batch(batch)
        name = temp_name("lines")
        self.session.read.parquet(str(target)).createOrReplaceTempView(name)
        self._cleanups.append(lambda: self.session.catalog.dropTempView(name))
        return self.con.table(name)

    def parquet_table(self, path: Path, file_index: int) -> ibis.Table:
        from pyspark.sql import functions as F

        frame = self.session.read.parquet(str(path))
        columns = frame.columns
        # Rows keep file order within and across read partitions; number them without a shuffle.
        frame = frame.withColumn("_partition", F.spark_partition_id()).withColumn(
            "_position", F.monotonically_increasing_id()
        )
        counts = sorted(
            (row["_partition"], row["count"]) for row in frame.groupBy("_partition").count().collect()
        )
        offsets, total = {}, 0
        for partition, count in counts:
            offsets[partition] = total
            total += count
        offset_map = F.create_map(*[F.lit(x) for pair in offsets.items() for x in pair]) if offsets else F.create_map()
        line = offset_map[F.col("_partition")] + (F.col("_position") - F.shiftleft(F.col("_partition").cast("long"), 33)) + 1
        rows = frame.select(
            F.lit(file_index).cast("int").alias("file_index"),
            line.cast("long").alias("source_line"),
            F.to_json(F.struct(*[F.col(f"`{c}`") for c in columns])).alias("text"),
            F.lit(True).alias("utf8_ok"),
        )
        name = temp_name("parquet")
        rows.createOrReplaceTempView(name)
        self._cleanups.append(lambda: self.session.catalog.dropTempView(name))
        return self.con.table(name)

    def object_keys(self, text: ibis.Value) -> ibis.Value:
        return _builtin("json_object_keys", (dt.string,), STRING_LIST)(text)

    def is_json(self, text: ibis.Value) -> ibis.Value:
        return _builtin("get_json_object", (dt.string, dt.string), dt.string)(text, "$").notnull()

    def parse(self, text: ibis.Value, dtype: dt.Struct) -> ibis.Value:
        # A field named like spark.sql.columnNameOfCorruptRecord receives the line when a value
        # does not fit the schema; Spark then nulls every other field of the row.
        with_corrupt = dt.Struct({**dict(dtype.items()), _SPARK_CORRUPT: dt.string})
        return _builtin("from_json", (dt.string, dt.string), with_corrupt)(text, _spark_type(with_corrupt))

    def parse_failed(self, parsed: ibis.Value) -> ibis.Value:
        return parsed[_SPARK_CORRUPT].notnull()

    def members(self, text: ibis.Value) -> ibis.Value:
        return _builtin("from_json", (dt.string, dt.string), STRING_MAP)(text, "map<string,string>")

    def member(self, text: ibis.Value, key: str) -> ibis.Value:
        return _builtin("get_json_object", (dt.string, dt.string), dt.string)(text, f"$['{key}']")

    def elements(self, text: ibis.Value) -> ibis.Value:
        return _builtin("from_json", (dt.string, dt.string), STRING_LIST)(text, "array<string>")



def dialect_for(con: BaseBackend) -> Dialect:
    """The dialect of ``con``'s engine (DuckDB or PySpark)."""
    engine = engine_name(con)
    if engine == "duckdb":
        return DuckDBDialect(con)
    if engine == "pyspark":
        return SparkDialect(con)
    from spillover.errors import SpilloverEngineError

    raise SpilloverEngineError(
        f"reading raw GA4 files is supported on DuckDB and PySpark, not {engine!r}; load the files "
        "with DuckDB or Spark, or export them into your warehouse and point spillover at it"
    )
