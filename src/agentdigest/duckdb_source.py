"""The DuckDB source, registered by URL scheme like any extension would be (PostgreSQL's is in
:mod:`agentdigest.engines`, Spark's in :mod:`agentdigest.spark`).

``duckdb://path.db`` reads ``table`` from a database file; ``duckdb://`` with ``files`` reads CSV or Parquet
files by column name, leaving out the CSV rows DuckDB cannot read for their shape (see :mod:`.unreadable`).
``[source.settings]`` are applied by ``SET``, over agentdigest's own defaults (:data:`DUCKDB_DEFAULTS`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import ibis.expr.types as ir

from .channel_settings import shown
from .config import CANONICAL_COLUMNS, SourceConfig
from .source_settings import DATA_FILE_SUFFIXES
from .errors import InputError, SourceError, first_line
from .masking import mask_text, mask_url
from .source_errors import csv_cause, not_parquet, not_csv_text, sniff_cause
from .source_files import _data_files, file_secrets
from .sources import _table, register_backend
from .unreadable import Unreadable, is_csv, list_unreadable


@register_backend("duckdb")
def _open_duckdb(cfg: SourceConfig) -> tuple[Any, ir.Table, str, Unreadable | None]:
    """The database's table, or the files; of CSV files, the rows DuckDB cannot read for their shape are left
    out and returned counted (see :mod:`.unreadable`), instead of failing every query."""
    path = cfg.url[len("duckdb://"):] or ":memory:"
    if path.lower().endswith(DATA_FILE_SUFFIXES):
        # DuckDB opens such a path as an empty in-memory database and refuses it read-only, saying "Cannot
        # launch in-memory database in read-only mode!" (found by a new user who wrote duckdb://events.parquet).
        # The path once (it was said twice, 189 characters: a new-user review), as a files list to write.
        files = f" and files = [{shown(path, path=True)}] in place of table" if cfg.table else ": files names the files"
        raise InputError(f"source.url: names a data file, not a database (expected url = \"duckdb://\"{files})")
    if path == ":memory:" and cfg.table:
        # An in-memory database holds no table: a [source] without url read one and said "table 'events' not found in
        # duckdb://", never that the url was missing (found trying agentdigest as a new user).
        raise InputError(f"source.url: not set (expected the URL of the database with table {cfg.table!r}, e.g. "
                         "duckdb://events.duckdb)" if "url" not in cfg.model_fields_set else
                         "source.url: duckdb:// alone is an empty in-memory database (expected the database file, "
                         "e.g. duckdb://events.duckdb, or files = [...] for Parquet or CSV)")
    if path != ":memory:" and not Path(path).exists():
        # With files too: DuckDB opens a missing file by creating it, and a typo in the path left an empty
        # database behind, the run going on as if the path were right (found in an audit).
        # One line naming the key, the path once (it said the path twice, and no key: a new-user review). Exit 3.
        expected = "url = \"duckdb://\": files need no database" if cfg.files else "an existing database file"
        raise SourceError(f"source.url: DuckDB file not found: {shown(path, path=True)} (expected {expected})")
    settings = _duckdb_settings(cfg.settings)
    unreadable = None if cfg.table else _csv_unreadable(cfg)  # before the source's connection: see .unreadable
    try:
        con = ibis.duckdb.connect(path, read_only=bool(cfg.table) and path != ":memory:")
    except Exception as exc:  # duckdb raises IOException, InvalidInputException, ...
        raise SourceError(f"source {mask_url(cfg.url)}: cannot open DuckDB database ({first_line(exc, 300)})") from exc
    for key, value in settings.items():  # one SET each, so a refused value names its key (exit 2)
        try:
            con.raw_sql(f"SET {key} = {_sql_literal(value)}")
        except Exception as exc:
            con.disconnect()
            raise InputError(f"source.settings.{key}: DuckDB refused {value!r} ({first_line(exc, 200)})") from exc
    # Naive timestamps are UTC (event contract); DuckDB would otherwise use the machine's zone.
    con.raw_sql("SET TimeZone = 'UTC'")
    # DuckDB draws a progress bar on stdout for queries over 2 s; the CLI's output is its own.
    con.raw_sql("SET enable_progress_bar = false")
    if cfg.table:
        return con, _enums_as_text(con, _table(con, cfg.table, cfg.url)), cfg.table, None
    skip = bool(unreadable and unreadable.skip_errors)
    return con, _read_files(con, cfg.file_list, skip), ", ".join(cfg.file_list), unreadable


def _enums_as_text(con: Any, table: ir.Table) -> ir.Table:
    """``table`` with its ENUM columns typed as a type Ibis has no name for, so :mod:`.columns` casts them to
    text. Ibis types a DuckDB ENUM as a string and writes no cast, and an ENUM compares by the order of its
    labels, not as text: the smallest agent_id of a conversation's first instant, and the copy of a duplicate
    event kept, were not the text's, so an ENUM agent_id or event_type gave other figures than the same table
    in text (found in a column-types audit; PostgreSQL's enums are read as text in engines.py)."""
    relation = con.con.sql(ibis.to_sql(table, dialect="duckdb"))
    enums = {name for name, kind in zip(relation.columns, relation.types) if kind.id == "enum"}
    op = table.op()
    if not enums or not isinstance(op, ops.DatabaseTable):
        return table
    return op.copy(schema=ibis.schema({c: dt.unknown if c in enums else t for c, t in op.schema.items()})).to_expr()


#: DuckDB settings agentdigest applies unless [source.settings] gives them. block_allocator_memory: DuckDB
#: returns freed buffer memory to the OS after each query and faults it in again for the next; a report
#: runs about 16 queries, and keeping up to 2 GB (what a 100M-event report peaks at) for the connection's
#: life cut the system time of a 10M-event report from 0.42 to 0.08 CPU-s and its wall time by 9%. The
#: memory goes back when the source is closed (after each run), and never exceeds what was used.
DUCKDB_DEFAULTS = {"block_allocator_memory": "2GB"}


def _duckdb_settings(settings: dict[str, Any]) -> dict[str, Any]:
    allowed = {"memory_limit", "threads", "temp_directory", "max_temp_directory_size", "preserve_insertion_order",
               *DUCKDB_DEFAULTS}
    unknown = set(settings) - allowed
    if unknown:
        raise InputError(f"source.settings: unknown DuckDB setting(s) {sorted(unknown)} (expected {sorted(allowed)})")
    return {**DUCKDB_DEFAULTS, **settings}


def _sql_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _read_files(con: Any, patterns: list[str], skip_unreadable: bool = False) -> ir.Table:
    paths = _data_files(patterns)
    try:
        # By name: DuckDB takes the columns from the first file, so a column only later files have
        # (cost_usd added last month) was dropped, and the report said the column does not exist (found in
        # a Spark audit). union_by_name reads every file's columns, null in the files without them.
        if is_csv(paths):
            return con.read_csv(paths, table_name="agent_events", union_by_name=True,
                                **({"ignore_errors": True} if skip_unreadable else {}))
        table = con.read_parquet(paths, table_name="agent_events", union_by_name=True)
        if _unannotated_text(con, paths, [c for c, kind in table.schema().items() if kind.is_binary()]):
            table = con.read_parquet(paths, table_name="agent_events", union_by_name=True, binary_as_string=True)
        return table
    except Exception as exc:
        # Masked: a file URL may carry a password or a presigned signature (found in a security audit).
        line = ((sniff_cause(exc, paths) if is_csv(paths) else not_parquet(paths))
                or f"source.files: cannot read {patterns} ({first_line(exc, 300)}{csv_cause(exc)})")
        raise SourceError(mask_text(line, file_secrets(patterns))) from exc


def _unannotated_text(con: Any, paths: list[str], binary: list[str]) -> bool:
    """Whether the ``binary`` columns of the Parquet files are text written without Parquet's UTF8 annotation
    (Impala's, old Hive's strings), to be read as text as Spark's ``binaryAsString`` reads them: as a BLOB, every such
    file's ids were refused as binary (found in a file-types audit). Not when one is of a fixed length (16-byte UUIDs
    without their annotation): DuckDB's ``binary_as_string`` reads those too, and their bytes failed every query as
    "not valid UTF8" where they are refused as binary ids."""
    if not binary:
        return False
    fixed = con.con.execute("SELECT count(*) FROM parquet_schema(?) WHERE name IN (SELECT unnest(?)) "
                            "AND type = 'FIXED_LEN_BYTE_ARRAY'", [paths, binary]).fetchone()[0]
    return not fixed


def _csv_unreadable(cfg: SourceConfig) -> Unreadable | None:
    """The rows of a DuckDB source's CSV files that cannot be read for their shape (see :mod:`.unreadable`)."""
    paths = _data_files(cfg.file_list)
    if not is_csv(paths):
        return None
    if wrong := not_csv_text(paths):  # read as UTF-8, its header came out as no column the report needs
        raise SourceError(mask_text(wrong, file_secrets(cfg.file_list)))
    columns = sorted({cfg.columns.get(c, c) for c in CANONICAL_COLUMNS})
    return list_unreadable(paths, columns, file_secrets(cfg.file_list))
