"""A report's kept steps in an in-process DuckDB, where PostgreSQL may not create temporary tables.

A hot standby (which README advises for reports), a read-only role or one without the TEMPORARY privilege
cannot keep the cohort in temporary tables. Computing it again in every query that reads it took a weekly
report over 3M events from 23 s to 4 min 8 s (found in a Postgres audit). Instead PostgreSQL computes each
step once and streams its rows out (``COPY ... TO STDOUT``, read by Arrow's CSV reader), and the queries
over them run here, in an in-memory DuckDB. A step a later PostgreSQL query joins (the few repeated
event_ids, the few over-long conversations) goes back as a ``VALUES`` list; a large one is computed there
again instead.

That DuckDB spills to a folder of its own under the system's temporary folder, removed when the report is
done (by default an in-memory DuckDB spills to ".tmp" in the working folder, which a service may not be
allowed to write). ``[source] client_memory_limit`` bounds its memory: with DuckDB's default (80% of RAM) the
process grew with the steps, to 1.17 GB at its peak for a weekly report over 3M events (found in a production
review); with 256MB, 0.76 to 0.80 GB, the same report.json. It is not bounded by default: below about 100 MB
a million events a week the join of the last two periods' events cannot spill and the run fails (64MB did at
3M events over 3 weeks), and a report that ran before must not fail after an upgrade.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.csv as pa_csv

from .cohort import engine_name
from .errors import AgentDigestError, SourceError
from .sources import query_error


#: The most rows a kept step goes back to PostgreSQL as a VALUES list (about 80 bytes of SQL a row).
MAX_VALUES_ROWS = 50_000

_PG_TYPES = {dt.String: "text", dt.Int64: "bigint", dt.Int32: "integer", dt.Int16: "smallint",
             dt.Float64: "double precision", dt.Boolean: "boolean"}


def _spill_folder() -> str:
    """A new folder under the system's temporary folder for DuckDB's spill files. One that cannot be made (TMPDIR
    naming a folder since removed, or a file; none writable) is a source that cannot be read, exit 3, in one line:
    it read "unexpected error: FileNotFoundError: [Errno 2] ..." (exit 1), as a bug would (a new-user review)."""
    try:
        return tempfile.mkdtemp(prefix="agentdigest-steps-")
    except OSError as exc:
        where = tempfile.tempdir or os.environ.get("TMPDIR") or "the temporary folder"
        raise SourceError(f"source: cannot make DuckDB's spill folder in {where!r} "
                          f"({exc.strerror or type(exc).__name__}; expected TMPDIR naming a writable folder)") from exc


class ClientTables:
    """Where a report keeps its steps when the engine may not: :meth:`keep`, :meth:`keep_joined` and
    :meth:`on_engine`."""

    def __init__(self, stack: ExitStack, backend: Any, memory_limit: str | None = None):
        self.backend = backend
        self.spill = _spill_folder()
        stack.callback(shutil.rmtree, self.spill, ignore_errors=True)  # after the disconnect below (LIFO)
        self.local = ibis.duckdb.connect()
        stack.callback(self.local.disconnect)
        # In-memory DuckDB spills to ".tmp" in the working folder by default: a folder of its own instead.
        self.local.raw_sql(f"SET TimeZone = 'UTC'; SET enable_progress_bar = false; "
                           f"SET temp_directory = {_literal(self.spill, False)}")
        if memory_limit:  # otherwise DuckDB's own, 80% of RAM
            self.local.raw_sql(f"SET memory_limit = {_literal(memory_limit, False)}")
        self._n = 0

    def keep(self, table: ir.Table) -> ir.Table:
        """``table`` computed once: a PostgreSQL step's rows copied here, a step over kept rows cached here."""
        if engine_name(table) == "duckdb":
            return self._create(table)
        return self.keep_joined(table, lambda copied: copied)

    def keep_joined(self, table: ir.Table, build: Callable[[ir.Table], ir.Table]) -> ir.Table:
        """``build`` of a PostgreSQL step's rows, kept: the rows are read here once, as they arrive, and
        not kept themselves (the events of the last two periods, joined to their conversations)."""
        try:
            with copy_batches(self.backend, table) as reader:
                self._n += 1
                name = f"_arriving_{self._n}"
                self.local.con.register(name, reader)
                try:
                    return self._create(build(self.local.table(name)))
                finally:
                    self.local.con.unregister(name)
        except AgentDigestError:
            raise  # said already (_create): wrapped again it read "query failed: query failed: ..."
        except Exception as exc:
            raise query_error(exc) from exc

    def _create(self, table: ir.Table) -> ir.Table:
        self._n += 1
        try:
            return self.local.create_table(f"_kept_{self._n}", table, temp=True)
        except Exception as exc:
            raise query_error(exc) from exc

    def on_engine(self, kept: ir.Table, fallback: ir.Table) -> ir.Table:
        """The kept rows ``kept`` for a PostgreSQL query to join: a VALUES list, or ``fallback`` (the
        PostgreSQL expression they came from, computed again) when they are more than MAX_VALUES_ROWS."""
        try:
            found = kept.limit(MAX_VALUES_ROWS + 1).to_pyarrow()
        except Exception as exc:
            raise query_error(exc) from exc
        if found.num_rows > MAX_VALUES_ROWS:
            return fallback
        return values(self.backend, found, kept.schema())


def values(backend: Any, rows: pa.Table, schema: ibis.Schema) -> ir.Table:
    """``rows`` as a PostgreSQL VALUES list of ``schema``'s columns."""
    types = [_pg_type(t) for t in schema.types]
    names = ", ".join(_identifier(n) for n in schema.names)
    if rows.num_rows == 0:
        cols = ", ".join(f"CAST(NULL AS {t}) AS {_identifier(n)}" for n, t in zip(schema.names, types))
        return backend.sql(f"SELECT {cols} WHERE false", schema=schema)
    escape = backend.con.info.parameter_status("standard_conforming_strings") == b"off"
    listed = ", ".join("(" + ", ".join(f"CAST({_literal(v, escape)} AS {t})" for v, t in zip(r.values(), types)) + ")"
                       for r in rows.to_pylist())
    return backend.sql(f"SELECT * FROM (VALUES {listed}) AS _kept ({names})", schema=schema)


def _literal(value: Any, backslash_escapes: bool) -> str:
    """``value`` as a plain quoted string for a CAST. Not psycopg's quoting: Ibis parses the query again
    (sqlglot), which wrote psycopg's ``E'back\\\\slash'`` back as ``e'back\\slash'``, a different text."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(value)  # the shortest exact form; nan, inf and -0.0 as PostgreSQL reads them
    elif hasattr(value, "isoformat"):
        text = value.isoformat()
    else:
        text = str(value)
    if backslash_escapes:
        text = text.replace("\\", "\\\\")
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _pg_type(t: dt.DataType) -> str:
    if t.is_timestamp():
        return "timestamptz" if t.timezone else "timestamp"
    for cls, name in _PG_TYPES.items():
        if isinstance(t, cls):
            return name
    raise TypeError(f"no PostgreSQL type for {t}")


def copy_out(backend: Any, table: ir.Table) -> pa.Table:
    """The rows of a PostgreSQL expression as one Arrow table (see :func:`copy_batches`)."""
    with copy_batches(backend, table) as reader:
        return reader.read_all()


@contextmanager
def copy_batches(backend: Any, table: ir.Table) -> Iterator[pa.RecordBatchReader]:
    """The rows of a PostgreSQL expression as Arrow batches, through ``COPY (query) TO STDOUT`` in CSV:
    Arrow's CSV reader parses them in C++, where a cursor's fetch builds a Python tuple a row. The
    batches are read while the block runs."""
    arrow = table.schema().to_pyarrow()
    if not all(_csv_type(f.type) for f in arrow):
        yield table.to_pyarrow_batches()
        return
    query = backend.compile(table)
    zoned = [f.name for f in arrow if pa.types.is_timestamp(f.type) and f.type.tz]
    if zoned:
        # A naive ``timestamp`` event_ts is typed UTC with no cast written (engines._naive_event_ts_as_utc, for its
        # index), so COPY wrote it without an offset, which Arrow refuses for a zoned type: every run of a read-only
        # role over such a column failed, exit 2 (found in a production audit). Cast here, in the session's UTC.
        cols = ", ".join(f"CAST({_identifier(n)} AS timestamptz) AS {_identifier(n)}" if n in zoned
                         else _identifier(n) for n in arrow.names)
        query = f"SELECT {cols} FROM ({query}) AS _step"
    # In a savepoint, as Ibis reads a query: a failed one (a value that does not convert) leaves the report's
    # transaction usable for the queries that find which column failed (Source.conversion_error).
    with (backend.con.transaction(), backend.con.cursor() as cur,
          cur.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy):
        stream = _CopyStream(copy)
        if not stream.peek():
            yield pa.RecordBatchReader.from_batches(arrow, [])
            return
        yield pa_csv.open_csv(
            stream,
            read_options=pa_csv.ReadOptions(column_names=arrow.names, block_size=8 << 20),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types={f.name: f.type for f in arrow}, null_values=[""], strings_can_be_null=True,
                quoted_strings_can_be_null=False, true_values=["t"], false_values=["f"]))


def _csv_type(t: pa.DataType) -> bool:
    return (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t)
            or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_timestamp(t))


class _CopyStream(io.RawIOBase):
    """The chunks of a psycopg COPY OUT (one row each) as a file Arrow reads in blocks: the rows of a block are
    joined at once (a Python step a row, not a copy of the rest of the block a row)."""

    def __init__(self, copy: Any):
        self._chunks = iter(copy)
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def peek(self) -> bool:
        """Whether any data is to come."""
        if not self._buf:
            self._buf = memoryview(bytes(next(self._chunks, b"")))
        return bool(self._buf)

    def readinto(self, b: Any) -> int:
        want = len(b)
        if len(self._buf) < want:
            parts, size = [self._buf], len(self._buf)
            for chunk in self._chunks:
                parts.append(chunk)
                size += len(chunk)
                if size >= want:
                    break
            self._buf = memoryview(b"".join(parts))
        n = min(want, len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n
