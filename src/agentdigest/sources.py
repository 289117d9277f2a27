"""Event sources: one Ibis table of agent events with canonical column names.

A backend is chosen by the URL's scheme (``duckdb://``, ``postgresql://``, ``pyspark://``; any
other Ibis URL is passed to ``ibis.connect``). Whatever the engine, the rest of agentdigest sees
the same thing: an Ibis table whose columns carry the canonical names and types (README, Events).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
from ibis.common.exceptions import TableNotFound

from .columns import COLUMN_TYPES, blank_is_null, canonical, expected_values, refuse_renamed_columns, text_timestamp
from .config import SourceConfig
from .errors import InputError, Interrupted, SourceError, first_line
from .interrupts import last_stop_signal
from .masking import mask_text, mask_url, url_secrets
from .redact import Redactor
from .source_files import file_secrets
from .spark_errors import java_root_cause
from .source_errors import csv_cause, did_you_mean, query_advice, view_cause, without_values
from .unreadable import Unreadable


@dataclass
class Source:
    """An opened source: the backend, the canonical events table and which columns it has."""

    backend: Any
    events: ir.Table
    present: frozenset[str]
    name: str
    kind: str
    approximate_quantiles: bool = False
    #: the user pinned the engine's thread count ([source.settings] threads)
    fixed_threads: bool = False
    #: canonical column -> the user's text column it is converted from (a number or a timestamp)
    converted: dict[str, str] = field(default_factory=dict)
    #: the config file that configured the source (error messages name it)
    config_file: str | None = None
    #: the user's table as read, before renaming and casting (an error shows one value that did not convert)
    raw: ir.Table | None = None
    #: the engine may create the temporary tables a report keeps its cohort in (see engines.temp_tables_allowed)
    temp_tables: bool = True
    #: canonical column -> the user's column it is read from
    columns: dict[str, str] = field(default_factory=dict)
    #: the rows of CSV files left out for their shape (None: not CSV files read by DuckDB or Spark, or not listed)
    unreadable: Unreadable | None = None
    #: the engine enforces one row per event_id (see engines.unique_ids): the report skips the search for repeats
    unique_ids: bool = False
    #: optional columns the table has but the role may not read (PostgreSQL column privileges): left out
    withheld: frozenset[str] = frozenset()
    #: what a report's queries (and check's) run inside: on PostgreSQL one transaction (see engines.one_transaction)
    transaction: Callable[[], AbstractContextManager[Any]] = nullcontext
    client_memory_limit: str | None = None  # of the DuckDB that keeps the steps without temporary tables (client_tables)
    epoch_unit: str | None = None  # [source] epoch_unit: a text event_ts is read as epoch numbers

    def close(self) -> None:
        _close(self.backend)

    def query_failed(self, exc: "QueryFailed") -> "QueryFailed":
        """``exc`` naming this source: "query failed: permission denied for table x" alone does not say
        which connection failed. Masked: the name of a files source is its file URLs."""
        return QueryFailed(mask_text(f"source {self.name!r}: {exc}", file_secrets(self.name.split(", "))))

    def conversion_error(self, exc: InputError) -> InputError:
        """The column behind a :class:`ConversionError`: each text column converted to a number or a
        timestamp is converted alone until one fails (only after a failure, one query per column), then
        each number or timestamp column the engine typed itself: DuckDB types a CSV file's columns from its
        first 20,480 rows, and a later 'fast' in latency_ms failed the run with "CSV Error on Line: 30038",
        naming neither column nor value (found in a dirty-data audit)."""
        typed = {canon: col for canon, col in sorted(self.columns.items())
                 if canon not in self.converted and not COLUMN_TYPES[canon].is_string()}
        for canon, col in [*self.converted.items(), *typed.items()]:
            try:
                self.events.agg(n=self.events[canon].count()).to_pyarrow()
            except Exception as probe:  # noqa: BLE001 - classified just below
                # A typed column is named only where the engine says it read text there (DuckDB's CSV reader).
                found = re.search(r'Could not convert string "(.*)" to ', str(probe)) if canon in typed else None
                if isinstance(query_error(probe), ConversionError) and (found or canon not in typed):
                    prefix = f"{self.config_file}: " if self.config_file else ""
                    example = (self._shown(found.group(1)) if found
                               else self._unconverted_example(canon, col) or self._quoted_value(probe))
                    where = ", after the rows its type was read from" if canon in typed else ""
                    # One short line for every column (a new-user review: event_ts's was 310 characters, a number
                    # column's 150, with advice and formats README gives). Refused, not counted: README, "Times in text".
                    held = repr(example) if example is not None else "values that do not convert"
                    expected = expected_values(canon, self.epoch_unit, example)
                    return InputError(f"{prefix}source.columns.{canon}: {'' if canon in typed else 'text '}column "
                                      f"{col!r} holds {held}{where} (expected {expected})")
        return exc

    def _unconverted_example(self, canon: str, col: str) -> str | None:
        """One value of the user's text column ``col`` that does not convert to ``canon``'s type, so the
        user sees what is wrong. It is event data: PII redacted, secrets masked, clipped to 40 characters.
        None where the engine has no TRY_CAST (PostgreSQL) or the search fails."""
        if self.raw is None:
            return None
        try:
            value = blank_is_null(self.raw[col])  # as the run reads it: a blank is absent, not the bad value
            epoch = canon == "event_ts" and self.epoch_unit is not None  # epoch numbers in text
            converted = text_timestamp(value, self.kind) if canon == "event_ts" and not epoch else value
            target = "float64" if epoch else COLUMN_TYPES[canon]
            bad = self.raw.filter(value.notnull() & converted.try_cast(target).isnull())
            rows = bad.select(v=value).limit(1).to_pyarrow().to_pylist()
        except Exception:  # noqa: BLE001 - the example is a courtesy; the error is said without it
            return None
        if not rows or rows[0]["v"] is None:
            return None
        return self._shown(str(rows[0]["v"]))

    def _quoted_value(self, probe: BaseException) -> str | None:
        """The value PostgreSQL quotes in its conversion error ('invalid input syntax for type double
        precision: "fast"'), shown as :meth:`_shown` shows event text. PostgreSQL 15 has no TRY_CAST, so
        without this its error named no value, as the README says every engine's does (found in a Postgres
        audit). The cause may sit behind the cursor's failed close (see query_error)."""
        for exc in (probe, probe.__context__):
            first = str(exc or "").split("\n", 1)[0]
            found = _QUOTED_VALUE.search(first)
            if found:  # '"1e999" is out of range for type double precision' quotes it first
                return self._shown(found.group(1) if found.group(1) is not None else found.group(2))
        return None

    def _shown(self, value: str) -> str:
        """An event's value as an error message may show it: PII redacted, secrets masked, 40 characters."""
        text = Redactor().redact(value) or ""
        text = mask_text(text, file_secrets(self.name.split(", ")))
        return text if len(text) <= 40 else text[:39] + "…"

    @contextmanager
    def many_groups(self) -> Iterator[None]:
        """Engine tuning around an aggregation into millions of groups (the repeated-event_id search).

        DuckDB derives how finely it partitions an aggregation from its thread count: with 2 threads
        at most 8 partitions, so 8M ids make hash tables of 1M keys that miss the CPU cache. One
        thread more than cores (16 partitions) made that query 1.8x faster on 2 cores (0.69 -> 0.38 s
        for 10M events, DuckDB 1.5); the other queries are slower with it, so it is set around this
        one only, and never when [source.settings] pins ``threads``.
        """
        if self.kind != "duckdb" or self.fixed_threads:
            yield
            return
        threads = int(self.backend.raw_sql("SELECT current_setting('threads')").fetchone()[0])
        if threads > 2:
            yield
            return
        self.backend.raw_sql("SET threads = 3")
        try:
            yield
        finally:
            self.backend.raw_sql(f"SET threads = {threads}")


#: (backend, table, name), or with a fourth item, the rows of the source's files it left out (see .unreadable).
Opener = Callable[[SourceConfig], tuple[Any, ...]]
_OPENERS: dict[str, Opener] = {}


def register_backend(*schemes: str) -> Callable[[Opener], Opener]:
    """Register an opener for URL schemes; built-in engines use the same seam as extensions."""

    def wrap(fn: Opener) -> Opener:
        for scheme in schemes:
            _OPENERS[scheme] = fn
        return fn

    return wrap


def scheme_of(url: str) -> str:
    # Not urlsplit: it rejects Spark masters such as pyspark://local[2] as bad IPv6 hosts.
    head, sep, _ = url.partition("://")
    return head.split("+")[0].lower() if sep else ""


_NAME_PART = re.compile(r'"((?:[^"]|"")+)"|([^."]+)')


def table_path(name: str) -> list[str]:
    """``analytics.agent_log`` -> ["analytics", "agent_log"]; SQL's double quotes may wrap a part, as
    for a name that would need them in a query (``"My-Schema"."Agent Log"``, ``"a.b"`` is one part)."""
    parts, pos = [], 0
    while m := _NAME_PART.match(name, pos):
        parts.append(m.group(2) if m.group(1) is None else m.group(1).replace('""', '"'))
        pos = m.end()
        if pos == len(name):
            return parts
        if name[pos] != ".":
            break
        pos += 1
    raise InputError(f"source.table: {name!r} is not a table name (expected table, schema.table or "
                     f"database.schema.table; double quotes may wrap a part)")


def _table(con: Any, name: str, url: str, hint: bool = True) -> ir.Table:
    """The user's table ``name``; InputError when it is not found, with a name it may mean unless not ``hint``."""
    *where, table = table_path(name)
    database = None if not where else where[0] if len(where) == 1 else tuple(where)
    try:
        return con.table(table, database=database) if database else con.table(table)
    except Exception as exc:
        if (cause := view_cause(exc, table)) is not None:
            raise SourceError(f"source {mask_url(url)}: cannot read table {name!r} ({cause})") from exc
        text = str(exc).lower()
        if isinstance(exc, TableNotFound) or any(
                w in text for w in ("not found", "does not exist", "no such", "catalog error", "cannot be found")):
            raise InputError(f"source.table: table {name!r} not found in {mask_url(url)}"
                             f"{did_you_mean(con, table, database, where) if hint else ''}") from exc
        raise SourceError(f"source {mask_url(url)}: cannot read table {name!r} ({first_line(exc, 300)})"
                          f"{query_advice(exc)}") from exc


def _generic(cfg: SourceConfig) -> tuple[Any, ir.Table, str]:
    try:
        con = ibis.connect(cfg.url)
    except Exception as exc:
        if isinstance(exc, ValueError) and "know how to connect" in str(exc):  # Ibis has no such backend
            # an empty url said "no engine for ://" (a new-user audit)
            what = f"no engine for {scheme_of(cfg.url)}://" if cfg.url.strip() else "is empty"
            raise InputError(f"source.url: {what} (expected duckdb://, postgresql://, "
                             "pyspark://, or another Ibis backend's URL such as clickhouse://)") from exc
        missing = re.match(r"Failed to import the (\w+) backend due to missing dependencies", str(exc))
        if isinstance(exc, ImportError) and missing:  # Ibis knows the backend; its driver is not installed
            # said "cannot connect (Failed to import the mysql backend due to missing dependencies.)", the hint
            # of how to install it cut away with the rest of Ibis's message (a new-user audit)
            backend = missing[1]
            raise SourceError(f"source {mask_url(cfg.url)}: Ibis's {backend} backend is not installed; install it "
                              f"into agentdigest's environment with pip install 'ibis-framework[{backend}]' "
                              "(untested here: agentdigest is tested on DuckDB, PostgreSQL and Spark)") from exc
        raise SourceError(f"source {mask_url(cfg.url)}: cannot connect ({mask_text(first_line(exc, 300), url_secrets(cfg.url))})") from exc
    if not cfg.table:
        raise InputError("source: 'files' is only supported by duckdb:// and pyspark:// sources; set 'table'")
    return con, _table(con, cfg.table, cfg.url), cfg.table


def open_source(cfg: SourceConfig, config_file: str | Path | None = None) -> Source:
    """Open the configured source; InputError for a wrong shape or setting (prefixed with
    ``config_file``, the file that configured it), SourceError if it cannot be read."""
    kind = scheme_of(cfg.url)
    opener = _OPENERS.get(kind, _generic)
    try:
        backend, table, name, *left_out = opener(cfg)
        unreadable = left_out[0] if left_out else None  # CSV files' rows left out (DuckDB, Spark)
        try:
            if unreadable and unreadable.rows and not unreadable.read:
                # The wrong file, not a dirty one: no report of nothing (exit 3).
                raise SourceError(mask_text(f"source.files: no row of {cfg.file_list} can be read ({unreadable.first})",
                                            file_secrets(cfg.file_list)))
            events, present, converted = canonical(table, cfg.columns, name, kind, cfg.epoch_unit)
            if not cfg.table:
                refuse_renamed_columns(table, cfg.columns)
        except Exception:
            _close(backend)
            raise
    except (InputError, SourceError) as exc:
        # An InputError names a key; so does a SourceError of the url (a DuckDB file not found, still exit 3)
        if config_file is None or not (isinstance(exc, InputError) or str(exc).startswith("source.url: ")):
            raise
        raise (InputError if isinstance(exc, InputError) else SourceError)(f"{config_file}: {exc}") from exc
    approx = kind in ("pyspark",)
    temp_tables = engines.temp_tables_allowed(backend, cfg.settings)
    return Source(backend, events, present, name, kind, approximate_quantiles=approx,
                  fixed_threads="threads" in cfg.settings, converted=converted,
                  config_file=None if config_file is None else str(config_file), raw=table,
                  temp_tables=temp_tables, transaction=engines.one_transaction(backend, cfg.settings, temp_tables),
                  columns={canon: cfg.columns.get(canon, canon) for canon in present}, unreadable=unreadable,
                  unique_ids="event_id" in present and engines.unique_ids(backend, cfg.table,
                                                                            cfg.columns.get("event_id", "event_id")),
                  withheld=engines.withheld_columns(backend, cfg.table, cfg.columns.values()),
                  client_memory_limit=cfg.client_memory_limit, epoch_unit=cfg.epoch_unit)


def _close(backend: Any) -> None:
    try:
        backend.disconnect()
    except Exception:  # closing must never mask the run's own outcome
        pass


# How engines word a value that does not convert to the column's canonical type (DuckDB, Postgres, Spark).
# PostgreSQL's text of the right shape but out of range has words of its own: '2026-02-30' is "date/time field
# value out of range", '+25:00' "time zone displacement out of range", '1e999' "is out of range for type double
# precision", and 'Mars/Olympus' 'time zone "mars/olympus" not recognized'; all of them failed the run as an
# unreadable source naming no column, exit 3 (found in a column-types audit). Not "bigint out of range": a sum.
_CONVERSION_ERRORS = ("conversion error", "could not convert", "invalid input syntax", "cast_invalid_input",
                      "cannot be cast", "invalid_timestamp", "cannot_parse_timestamp",
                      "date/time field value out of range", "time zone displacement out of range",
                      "is out of range for type")
# PostgreSQL's conversion errors quote the value (the whole rest of the line: the value may hold quotes).
_QUOTED_VALUE = re.compile(r'(?:invalid input syntax for type [^:"]+|date/time field value out of range'
                           r'|time zone displacement out of range): "(.*)"$|^"(.*)" is out of range for type ')
_CONVERSION_PATTERN = re.compile(r'time zone "[^"]*" not recognized')


class ConversionError(InputError):
    """A source value does not convert to its column's canonical type (see Source.conversion_error)."""


class QueryFailed(SourceError):
    """A query the engine refused or stopped (a timeout, a permission); the report names its source."""


def query_error(exc: BaseException) -> BaseException:
    """The error to raise for a failed query: InputError when the data does not fit the canonical
    types (a mapped text column holding 'fast' as a latency), SourceError otherwise, and the
    interruption itself when Ctrl-C or SIGTERM stopped the engine (DuckDB turns it into its own
    InterruptException, which must not read as an unreadable source: exit 3)."""
    # Ibis reads a PostgreSQL result through a named cursor declared in a savepoint: inside a report's transaction
    # (engines.one_transaction) a failed or interrupted query rolls the savepoint back, cursor and all, and
    # closing the cursor then fails "cursor ... does not exist", which hid the cause: a text latency 'fast' or
    # Ctrl-C on a read-only role (no temporary tables) exited 3 as an unreadable source (found in a review).
    if type(exc).__name__ == "InvalidCursorName" and exc.__context__ is not None:
        exc = exc.__context__
    stopped = last_stop_signal()
    # DuckDB reports the interrupt as its InterruptException, or (through Ibis's cache) a RuntimeError.
    if (type(exc).__name__ == "InterruptException" or isinstance(exc, KeyboardInterrupt)
            or (stopped and "interrupt" in str(exc).lower())):
        return Interrupted(stopped or "SIGINT")
    # Spark's own first line is "An error occurred while calling o74.collectToPython.": the Java cause
    # says what failed (found in a Spark audit). Other engines' errors give their first line.
    first = java_root_cause(exc, 500)
    if any(marker in str(exc).lower() for marker in _CONVERSION_ERRORS) or _CONVERSION_PATTERN.search(str(exc)):
        return ConversionError(f"source: a column's values cannot be converted to the canonical type "
                               f"(check [source.columns] and the column types): {without_values(first)}")
    # Masked: Spark's cause names the file it failed on, and a file URL may carry a password.
    return QueryFailed(mask_text(f"query failed: {first}{csv_cause(exc)}{query_advice(exc)}"))


# The built-in engines register themselves through the same seam as an extension would; importing them
# registers them (named here so that the import of the DuckDB one, used for nothing else, is not unused).
from . import duckdb_source, engines, spark  # noqa: E402
_BUILT_IN_ENGINES = (duckdb_source, engines, spark)
