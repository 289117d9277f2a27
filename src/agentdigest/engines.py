"""The PostgreSQL source, registered by URL scheme like any extension would be (the Spark source is in
:mod:`agentdigest.spark`, DuckDB's in :mod:`agentdigest.duckdb_source`).

``postgresql://user@host:port/db`` (or ``postgres://``; several hosts as libpq names them, see
:mod:`agentdigest.pg_connect`) reads ``table`` (``schema.table`` allowed) through Ibis's postgres backend.
A report's queries run in one transaction (:func:`one_transaction`), in UTC so naive ``timestamp`` columns are read as UTC, with ``[source.settings]`` applied by ``SET LOCAL``
(``work_mem = "256MB"``, ``statement_timeout``): so it works through PgBouncer in transaction mode.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import ibis.expr.types as ir

from .config import REQUIRED_COLUMNS, SourceConfig
from .errors import InputError, SourceError, first_line
from .masking import mask_url
from .pg_connect import connect
from .pg_tables import (current_user, on_search_path, other_case, regclass, schemas_holding, sql_name, sql_table,
                        unknown_table, unreadable_columns)
from .source_errors import query_advice
from .sources import _table, query_error, register_backend, table_path

_PG_SETTING = re.compile(r"^[a-z_][a-z0-9_.]*$")


@register_backend("postgres", "postgresql")
def _open_postgres(cfg: SourceConfig) -> tuple[Any, ir.Table, str]:
    if not cfg.table:
        raise InputError("source: 'files' is only supported by duckdb:// and pyspark:// sources; set 'table'")
    for key in cfg.settings:
        if not _PG_SETTING.match(key.lower()):
            raise InputError(f"source.settings: {key!r} is not a PostgreSQL setting name")
        if key.lower() == "timezone":
            raise InputError(f"source.settings.{key}: event times are read in UTC (naive ones are UTC, as the event "
                             "contract says); a report's own timezone is its `timezone` in [[reports]]")
        if key.lower() in ("datestyle", "intervalstyle", "extra_float_digits"):  # found in a re-check
            raise InputError(f"source.settings.{key}: agentdigest reads values in PostgreSQL's default formats; "
                             "this setting would make them unreadable (expected it left out)")
    con = connect(cfg.url)  # after the settings are checked: a wrong one is said without a server
    try:
        # Checked here; applied in each report's transaction (one_transaction), where they end with it.
        with con.con.transaction(), con.con.cursor() as cur:
            _set_local(cur, cfg.settings)
    except InputError:
        con.disconnect()
        raise
    except Exception as exc:
        con.disconnect()
        raise InputError(f"source.settings: PostgreSQL refused a setting ({first_line(exc, 300)})") from exc
    try:
        table = _table(con, on_search_path(con, cfg.table), cfg.url, hint=False)
    except InputError as exc:
        schemas = schemas_holding(con, cfg.table)
        cased = [] if schemas else other_case(con, cfg.table)
        unknown = "" if schemas or cased else unknown_table(con, cfg.table)  # "did you mean", or the tables there
        con.disconnect()
        if cased:
            # Found in a Postgres audit: table = "Analytics.Agent_Log", as SQL would fold it, said only "not found".
            raise InputError(f"{exc}; names are read with their case as written: "
                             f"write {' or '.join(cased)}") from exc
        if not schemas:
            raise InputError(f"{exc}{unknown}") from exc
        # Found in a PostgreSQL audit: "not found" alone, for a table in a schema off the search path.
        where = " or ".join(f"{sql_name(schema)}.{sql_name(table_path(cfg.table)[-1])}" for schema in schemas)
        raise InputError(f"{exc}; it is in a schema not on the role's search path: write {where}") from exc
    table = _naive_event_ts_as_utc(table, cfg.columns.get("event_ts", "event_ts"))
    try:
        # Column privileges that keep PII from a reporting role (error_message, say): every query failed with
        # "permission denied for table agent_events" (exit 3), naming no column, and a column read by its name
        # cannot be left out in [source.columns] (found in a PostgreSQL audit). Such a column is absent, unless
        # the report needs it: a required column, or one [source.columns] maps.
        hidden = [col for col in unreadable_columns(con, cfg.table) if col in table.columns]
        if hidden and len(hidden) == len(table.columns):
            # Found in a production audit: a role with USAGE on the schema but no SELECT on the table read only
            # "query failed: permission denied for table agent_events", where a column's error names its GRANT.
            raise SourceError(f"source {mask_url(cfg.url)}: the role may not read table {cfg.table!r} (expected "
                              f"GRANT SELECT ON {sql_table(cfg.table)} TO {sql_name(current_user(con))})")
        needed = sorted(set(hidden) & {*(cfg.columns.get(c, c) for c in REQUIRED_COLUMNS), *cfg.columns.values()})
        if needed:
            raise SourceError(f"source {mask_url(cfg.url)}: the role may not read column(s) {', '.join(needed)} of "
                              f"table {cfg.table!r}, which the report needs (expected GRANT SELECT "
                              f"({', '.join(sql_name(c) for c in needed)}) ON {cfg.table} to the role)")
        table = _enums_and_money(con, table.drop(*hidden) if hidden else table, cfg.table)
    except SourceError:
        con.disconnect()
        raise
    except Exception as exc:
        con.disconnect()
        # A role with SELECT on the table but no USAGE on its schema: Ibis reads the columns from the catalog,
        # but to_regclass refuses the name, and every run and check ended "unexpected error: InsufficientPrivilege:
        # permission denied for schema Events" (exit 1; found in a PostgreSQL audit).
        raise SourceError(f"source {mask_url(cfg.url)}: cannot read table {cfg.table!r} ({first_line(exc, 300)})"
                          f"{query_advice(exc)}") from exc
    return con, table, cfg.table


def temp_tables_allowed(backend: Any, settings: dict[str, Any] | None = None) -> bool:
    """Whether the source's session may create temporary tables, where a report keeps its cohort.

    On PostgreSQL a read-only role (``default_transaction_read_only``), a role without the TEMPORARY
    privilege, or a hot standby (a replica, which README advises) may not: every run failed with
    "cannot execute CREATE TABLE in a read-only transaction" (exit 3) while ``check`` said ok (found in a
    PostgreSQL audit). Without them the report keeps its steps in an in-process DuckDB (client_tables). Such a
    source's reports run with ``enable_nestloop = off`` (:func:`one_transaction`) unless [source.settings]
    say otherwise: without a temporary table's statistics Postgres estimated the cohort at one row and joined the events
    to it 4,746 times (32 s for a report of 134k events; 7 s without nested loops, 3 s with temporary tables).
    """
    return temp_tables_refused(backend, settings) is None


def temp_tables_refused(backend: Any, settings: dict[str, Any] | None = None) -> str | None:
    """Why the PostgreSQL session may not create temporary tables, in words ``check`` shows; None when it may
    (or when it cannot be told: they are tried). A role without the TEMPORARY privilege read "(read-only)" in
    check, sending the user to look for a read-only setting that was not there (found in a Postgres audit).
    Asked with ``settings`` ([source.settings]) applied, as a report's transaction applies them: with
    ``transaction_read_only = true`` there every run failed "cannot execute CREATE TABLE in a read-only transaction"."""
    if getattr(backend, "name", "") != "postgres":
        return None
    try:
        with backend.con.transaction(), backend.con.cursor() as cur:
            _set_local(cur, settings or {})
            cur.execute("SELECT current_setting('transaction_read_only') = 'on' OR pg_is_in_recovery(), "
                        "has_database_privilege(current_database(), 'TEMPORARY'), current_database(), current_user")
            read_only, temporary, database, role = cur.fetchone()
    except Exception:  # noqa: BLE001 - unknown: try them, as before
        return None
    if read_only:  # default_transaction_read_only, or a hot standby
        return "read-only"
    if not temporary:
        return (f"the role may not create them: GRANT TEMPORARY ON DATABASE {sql_name(database)} "
                f"TO {sql_name(role)}")
    return None


def withheld_columns(backend: Any, name: str | None, mapped: Iterable[str]) -> frozenset[str]:
    """The optional canonical columns the table has but the PostgreSQL role may not read (column privileges),
    which the source leaves out (``_open_postgres``): the notes say so, where "the events have no model column"
    sent the reader looking for a column the table has. Not ``mapped`` ones ([source.columns] values: those stop
    the run); none on other engines, or when the catalog cannot be read."""
    if getattr(backend, "name", "") != "postgres" or not name:
        return frozenset()
    try:
        hidden = unreadable_columns(backend, name)
        backend.con.commit()
    except Exception:  # noqa: BLE001 - the notes then say the column is absent, as they did
        try:
            backend.con.rollback()
        except Exception:  # noqa: BLE001
            pass
        return frozenset()
    return frozenset(hidden) - set(mapped)


def one_transaction(backend: Any, settings: dict[str, Any],
                    temp_tables: bool) -> Callable[[], AbstractContextManager[Any]]:
    """What a report's queries run inside: on PostgreSQL one transaction, which sets ``settings``
    ([source.settings]), ``jit = off``, ``enable_nestloop = off`` without temporary tables (see
    :func:`temp_tables_allowed`) and the UTC ``TimeZone`` with ``SET LOCAL``, and holds the report's temporary
    tables (released before it commits); other engines need nothing.

    Through PgBouncer in transaction mode each transaction may run on another server connection. Measured
    (PgBouncer 1.18) when the settings were SET for the session and each query was its own transaction: a
    report failed "relation "ibis_cached_..." does not exist" (exit 3), its temporary table made on another
    connection; [source.settings] and jit = off were lost, and left behind on the pool's connections for
    other clients. One transaction runs on one server connection, and SET LOCAL ends with it, whatever the pool.
    """
    if getattr(backend, "name", "") != "postgres":
        return nullcontext
    return partial(_in_one_transaction, backend.con, settings, not temp_tables)


@contextmanager
def _in_one_transaction(con: Any, settings: dict[str, Any], nestloop_off: bool) -> Iterator[None]:
    phase = "begin"
    try:
        with con.transaction():  # commits, or rolls back when the report failed
            with con.cursor() as cur:
                _set_local(cur, settings, nestloop_off)
            phase = "report"
            yield
            phase = "commit"
    except Exception as exc:
        if phase == "report":
            raise
        raise query_error(exc) from exc  # the connection was lost, say


def _set_local(cur: Any, settings: dict[str, Any], nestloop_off: bool = False) -> None:
    """Apply the session's settings for the current transaction only (SET LOCAL): none stays on the connection."""
    # JIT compiling these analytical queries cost up to 1.8 s each (EXPLAIN ANALYZE); a setting can turn it back on.
    cur.execute("SET LOCAL jit = off")
    if nestloop_off:  # before the settings: enable_nestloop = "on" there keeps them
        cur.execute("SET LOCAL enable_nestloop = off")
    for key, value in settings.items():
        cur.execute("SELECT set_config(%s, %s, true)", (key.lower(), _pg_value(value)))
    # Ibis sets this for the session too; the event contract depends on it (naive timestamps are UTC).
    cur.execute("SET LOCAL TIME ZONE 'UTC'")
    # PostgreSQL's default, whatever the database's or role's (found in a column-types audit): with datestyle =
    # 'SQL, DMY' psycopg could not read a timestamp back ("can't parse timestamptz with DateStyle"), so every run
    # failed, exit 3; and a text event_ts such as '10/12/2026' was 12 October for one role and 10 December for another.
    cur.execute("SET LOCAL DateStyle = 'ISO, MDY'")


def unique_ids(backend: Any, name: str | None, column: str) -> bool:
    """Whether the engine enforces one row per value of the table's ``column`` (the event_id): in PostgreSQL a
    valid primary key or unique index on that column alone, not partial, of a table without INHERITS children;
    in DuckDB a primary key or UNIQUE constraint on it alone. Then no event_id repeats, and the report skips the
    search for repeated ids (cohort.duplicate_ids), the longest of its queries: 10 s of a 38 s report on 10M events in PostgreSQL.
    A view, files, another engine or a catalog that cannot be read: False (the search runs)."""
    if getattr(backend, "name", "") == "duckdb" and name:
        return _duckdb_unique_ids(backend, name, column)
    if getattr(backend, "name", "") != "postgres" or not name:
        return False
    try:
        with backend.con.cursor() as cur:
            # Not a table with children (INHERITS): it is read with their rows, and its key holds in its own rows
            # only, so an event in it and in a child counted twice (found in a column-types audit). A partitioned
            # table (relkind p) is fine: its key holds across its partitions.
            cur.execute("SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                        "AND a.attnum = i.indkey[0] JOIN pg_class c ON c.oid = i.indrelid "
                        "WHERE i.indrelid = to_regclass(%s) AND i.indisunique "
                        "AND i.indisvalid AND i.indnkeyatts = 1 AND i.indpred IS NULL AND i.indexprs IS NULL "
                        "AND a.attname = %s AND (c.relkind = 'p' OR NOT EXISTS "
                        "(SELECT 1 FROM pg_inherits h WHERE h.inhparent = i.indrelid)))", (regclass(name), column))
            found = bool(cur.fetchone()[0])
        backend.con.commit()
    except Exception:  # noqa: BLE001 - unknown: search, as before
        try:
            backend.con.rollback()
        except Exception:  # noqa: BLE001
            pass
        return False
    return found


def _duckdb_unique_ids(backend: Any, name: str, column: str) -> bool:
    """DuckDB's part of :func:`unique_ids`: a PRIMARY KEY or UNIQUE constraint on ``column`` alone. Names
    are matched as DuckDB resolves them, case-insensitively; ``schema.table`` or ``database.table`` (its main
    schema), and ``database.schema.table``."""
    parts = [p.lower() for p in table_path(name)]
    *qualifiers, table = parts
    if len(qualifiers) > 2:
        return False
    try:
        found = backend.con.execute(
            "SELECT lower(database_name), lower(schema_name), constraint_column_names FROM duckdb_constraints() "
            "WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE') AND lower(table_name) = ?", [table]).fetchall()
        here = backend.con.execute("SELECT lower(current_database()), lower(current_schema())").fetchone()
    except Exception:  # noqa: BLE001 - unknown: search, as before
        return False
    if len(qualifiers) == 2:
        places = {tuple(qualifiers)}
    elif qualifiers:
        places = {(here[0], qualifiers[0]), (qualifiers[0], "main")}
    else:
        places = {tuple(here)}
    return any((db, schema) in places and [c.lower() for c in columns] == [column.lower()]
               for db, schema, columns in found)


@ibis.udf.scalar.builtin(name="text")
def _pg_text(value: str) -> str:  # type: ignore[empty-body]
    """PostgreSQL's text(x): the value's text form, whatever its type."""


def _enums_and_money(con: Any, table: ir.Table, name: str) -> ir.Table:
    """``table`` with its enum columns read as text and its money columns as numbers. Ibis types an enum of
    the search path as a string, so no cast is written, and PostgreSQL then refuses text functions on it and
    any literal that is not one of its labels (found in a re-check: "function convert_to(evtype, unknown)
    does not exist"). Ibis types money as decimal(19, 4), but PostgreSQL casts money only to numeric: a money
    cost_usd failed every run with "query failed: cannot cast type money to double precision" (exit 3, no
    column named; found in a PostgreSQL audit)."""
    with con.con.cursor() as cur:
        cur.execute("SELECT a.attname, t.typtype = 'e' FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
                    "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
                    "AND (t.typtype = 'e' OR t.oid = 'money'::regtype)", (regclass(name),))
        found = cur.fetchall()
    con.con.commit()
    enums = [c for c, enum in found if enum and c in table.columns and table[c].type().is_string()]
    money = [c for c, enum in found if not enum and c in table.columns and table[c].type().is_decimal()]
    readable = {**{c: _pg_text(table[c]) for c in enums}, **{c: table[c].cast(dt.Decimal()) for c in money}}
    return table.mutate(**readable) if readable else table


def _naive_event_ts_as_utc(table: ir.Table, col: str) -> ir.Table:
    """``table`` with a ``timestamp without time zone`` event_ts column typed as UTC, so no cast is written on it.

    Cast to timestamptz in the query (``CAST(event_ts AS TIMESTAMPTZ) >= ...``), the column hid every period
    filter from an index on it: each report read the whole table several times (found in a PostgreSQL audit:
    52 s against 16 s for a timestamptz column, 10M events). Compared as it is, Postgres uses the index through
    its timestamp/timestamptz comparison operators, and every use of the column reads it in the session's time
    zone, which is UTC (naive times are UTC, as the event contract says): a comparison, date_part('epoch', ...),
    a min or a max, and the conversion when a report's temporary table (timestamptz) keeps it."""
    op = table.op()
    if col not in table.columns or not isinstance(op, ops.DatabaseTable):
        return table
    have = table[col].type()
    if not (have.is_timestamp() and have.timezone is None):
        return table
    schema = ibis.schema({**op.schema, col: dt.Timestamp(timezone="UTC", scale=have.scale, nullable=have.nullable)})
    return op.copy(schema=schema).to_expr()


def _pg_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)
