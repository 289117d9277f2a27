"""The ledger's database: its tables (their migrations: :mod:`.ledger_migrations`), its URL, and reading it
without changing it.

:mod:`agentdigest.ledger` holds what runs do with it (claims, leases, history); this module, how it is
reached and laid out: SQLite (its file: :mod:`.ledger_sqlite`) or PostgreSQL (``postgresql://``
mapped to the installed driver, psycopg 3 first, then psycopg2; one host or several), and whether a run
could write it.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from sqlalchemy import (
    Boolean, Column, DateTime, Integer, MetaData, String, Table, Text, UniqueConstraint, create_engine,
    inspect, select, text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from .errors import AgentDigestError, ConfigError, install_extra
from .folders import cannot_write
from .ledger_sqlite import a_folder, read_only_url, write_problem
from .ledger_url import libpq_hosts, sqlalchemy_url
from .masking import mask_text, mask_url
from .pg_connect import each_host

SCHEMA_VERSION = 5
MAX_ERROR = 2000

metadata = MetaData()
schema_version = Table(
    "schema_version", metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("upgraded_at", DateTime, nullable=False),
)
runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("report_id", String(200), nullable=False, index=True),
    Column("period_key", String(32), nullable=False),
    Column("trigger", String(32), nullable=False),
    Column("state", String(16), nullable=False),  # running | done | failed | interrupted | abandoned | before_data
    Column("error", Text),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("owner", String(200)),  # since version 2: the process that ran it (see owners.py)
)
deliveries = Table(
    "deliveries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("report_id", String(200), nullable=False),
    Column("period_key", String(32), nullable=False),
    Column("channel", String(200), nullable=False),
    Column("recipient", String(320), nullable=False, server_default=""),
    Column("kind", String(8), nullable=False, server_default="period"),  # period | test | alarm
    Column("state", String(16), nullable=False),  # pending | sending | sent | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("sends", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("retryable", Boolean),
    Column("provider_id", String(255)),
    Column("owner", String(200)),
    Column("claim_token", String(32)),
    Column("lease_until", DateTime),
    Column("takeovers", Integer, nullable=False, server_default="0"),
    Column("note", Text),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
    # since version 4: a fingerprint of where the latest send went (renames.py), never the destination itself
    Column("destination", String(64)),
    # since version 5: a fingerprint of the report's settings its last failure happened under (refusals.py), so a
    # target refused for good is not tried again by `run --due` until they change; never the settings themselves
    Column("failed_under", String(64)),
    UniqueConstraint("report_id", "period_key", "channel", "recipient", "kind", name="uq_deliveries_target"),
)
heartbeats = Table(
    "heartbeats", metadata,
    Column("owner", String(200), primary_key=True),
    Column("info", Text, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)


class LedgerError(AgentDigestError):
    """The ledger database cannot be opened, upgraded or written."""


class StatementFailed(LedgerError):
    """A ledger statement failed (the database went away mid-run): one masked line, never a traceback."""

    def __init__(self, url: str, exc: SQLAlchemyError, hint: str = ""):
        self.reason = db_reason(exc, url) + (f" ({hint})" if hint else "")
        #: no host gave a session (asking the server why it failed would wait for them all again)
        self.unreachable = connect_failed(str(getattr(exc, "orig", None) or exc))
        #: the driver refused the URL itself (an unknown ?option, a value it does not take): the config's fault
        self.refused = url_refused(url, exc)
        super().__init__(f"the ledger {mask_url(url)} failed: {self.reason}")


# How libpq (through psycopg or psycopg2) refuses a URL's option or value before connecting to anything
_URL_REFUSED = re.compile(r'^(?:invalid dsn: )?(?:connection (?:failed|is bad): )?(?:connection to server at "[^"]*", '
                          r"port \d+ failed: )?(?:invalid connection option|invalid \S+ value|bad value for "
                          r"|invalid URI query parameter)")


class LedgerUrlRefused(ConfigError, LedgerError):
    """The driver refused the ledger's URL itself: a config error (exit 2), and a ledger error to those that
    carry on without the ledger (a dry run, ``history --next``)."""


def url_refused(url: str, exc: SQLAlchemyError) -> LedgerUrlRefused | None:
    """A config error (exit 2) naming ledger.url when the driver refused the URL itself, as the source's
    is (pg_connect): "?sslmode=bogus" or "?foo=bar" read "cannot reach the ledger ...: invalid connection option",
    exit 1, as if the server were down (found in a production audit). None for any other error."""
    if not _URL_REFUSED.match(str(getattr(exc, "orig", None) or exc).strip()):
        return None
    return LedgerUrlRefused(f"{mask_url(url)} is not a usable PostgreSQL URL ({db_reason(exc)})", key="ledger.url")


def engine_url(url: str) -> str:
    """Map ``postgresql://`` (or ``postgres://``) to the installed driver, and several hosts (libpq's
    ``h1:5432,h2:5432``) to SQLAlchemy's form (:mod:`agentdigest.ledger_url`); accept SQLite as is."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(f"invalid ledger url {mask_url(url)!r} (expected sqlite:///path or postgresql://...)",
                          key="ledger.url")
    if scheme in ("postgresql", "postgres"):
        for module, driver in (("psycopg", "psycopg"), ("psycopg2", "psycopg2")):
            try:
                __import__(module)
            except ImportError:
                continue
            return _hosts_in_query(url, f"postgresql+{driver}://{rest}")
        raise ConfigError(f"a PostgreSQL ledger needs a driver; {install_extra('postgres')}", key="ledger.url")
    if scheme.startswith("postgresql+"):
        return _hosts_in_query(url, url)
    if scheme.startswith("sqlite"):
        return url
    raise ConfigError(f"unsupported ledger url {mask_url(url)!r} (expected sqlite:///path or postgresql://...)",
                      key="ledger.url")


def _hosts_in_query(url: str, real: str) -> str:
    try:
        return sqlalchemy_url(real)
    except ValueError as exc:
        raise ConfigError(f"invalid ledger url {mask_url(url)!r} ({exc})", key="ledger.url") from None


def sqlite_path(real: str) -> str:
    """The file of a SQLite engine URL; "" or ":memory:" for an in-memory database."""
    return real.split(":///", 1)[1] if ":///" in real else ""


def db_reason(exc: SQLAlchemyError, url: str | None = None) -> str:
    """The first line of a database error, masked, without SQLAlchemy's "(Background on this error at: ...)";
    a connection to the several hosts ``url`` names that failed: each host's reason (ledger_url)."""
    raw = re.sub(r"\s*\(Background on this error at: [^)]*\)", "", str(getattr(exc, "orig", None) or exc))
    lines = mask_text(raw).strip().splitlines()
    first = lines[0] if lines else type(exc).__name__
    return first if url is None else _connect_failure(url, raw.strip(), first)


# How psycopg and libpq (psycopg2) begin an error that no host gave a session (not a failed statement)
_CONNECT_FAILED = ("connection failed:", "connection to server at", "could not translate host name",
                   "failed to resolve host", "connection timeout expired", "timeout expired")


def connect_failed(message: str) -> bool:
    """Whether a driver's error says no host gave a session (rather than a statement failing on one)."""
    return message.startswith(_CONNECT_FAILED)


def _connect_failure(url: str, message: str, why: str) -> str:
    """What a failed connection to the ledger says: ``why`` (the driver's first line, masked) for one host;
    for several, each host's reason, as the source says it (:func:`pg_connect.each_host`). The first line
    named one host, the last tried, as if it were the only one (``connection failed: connection to server at
    "127.0.0.1", port 5433 failed: Connection refused`` for two hosts both refused)."""
    try:
        hosts = libpq_hosts(url)
    except ValueError:  # refused as ledger.url before any connection: nothing more to say here
        return why
    if hosts is None or not connect_failed(message):
        return why
    return f"cannot connect to any of its {len(hosts)} hosts ({each_host(message, hosts, why, url)})"


def read_version(url: str, writable: bool = False) -> int | None:
    """The ledger's schema version, read without creating or changing anything; None when it does not
    exist yet (no SQLite file, or a database without its tables). LedgerError when it cannot be read,
    and with ``writable`` also when a run could not write it: a read-only SQLite file or folder, or a
    PostgreSQL role that may not create or write its tables."""
    real = engine_url(url)
    try:
        if real.startswith("sqlite"):
            path = sqlite_path(real)
            if path in ("", ":memory:"):
                return None
            file = Path(path)
            if not file.exists():
                if problem := cannot_write(file.parent):  # a read-only folder, or a file where one should be
                    raise LedgerError(f"cannot create the ledger {mask_url(url)}: {problem}")
                return None
            if problem := a_folder(file):
                raise LedgerError(f"cannot open the ledger {mask_url(url)}: {problem}")
            # A run writes the file and, beside it, its -wal and -shm files (found in a scheduling audit:
            # check called a read-only ledger fine, and every run then failed to record what it sent)
            problem = write_problem(file)
            if writable and problem:
                raise LedgerError(f"the ledger {mask_url(url)} cannot be written: {problem}")
            engine = create_engine(read_only_url(file)[0], poolclass=NullPool)
        else:
            # The URL's own ?connect_timeout= wins, as it does for the ledger's connections (ledger_db)
            timeout = {} if "connect_timeout=" in real else {"connect_timeout": 10}
            engine = create_engine(real, connect_args=timeout, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                exists = inspect(conn).has_table("schema_version")
                problem = pg_cannot_write(conn, exists) if writable and not real.startswith("sqlite") else None
                if problem:
                    raise LedgerError(f"the ledger {mask_url(url)} cannot be written: {problem}")
                if not exists:
                    if problem := not_a_ledger(conn, url):
                        raise LedgerError(problem)
                    return None
                version = int(conn.scalar(select(schema_version.c.version)) or 0)
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:
        raise url_refused(url, exc) or LedgerError(f"cannot reach the ledger {mask_url(url)}: "
                                                   f"{db_reason(exc, url)}") from None
    if version > SCHEMA_VERSION:
        raise LedgerError(f"the ledger {mask_url(url)} has schema version {version}, newer than this agentdigest "
                          f"understands ({SCHEMA_VERSION}); upgrade agentdigest")
    return version


def not_a_ledger(conn: Connection, url: str) -> str | None:
    """Why the database at ``url`` is another application's, not a ledger to create; None when it may be one. A
    ledger's schema_version table is created first (``ledger_db``), so one of its table names without it is not
    its own. Found in an exit-code audit: a ledger.url naming a database with another application's ``runs`` was
    "ok - not created yet" to check, and a run altered that table (ADD COLUMN owner) and failed every report."""
    names = set(inspect(conn).get_table_names())
    if "schema_version" in names:
        return None
    taken = sorted(names & {t.name for t in (runs, deliveries, heartbeats)})
    if not taken:
        return None
    held = f"{'tables' if len(taken) > 1 else 'a table'} {', '.join(taken)}"
    return (f"the ledger {mask_url(url)} is not an agentdigest ledger: it holds {held} and no schema_version "
            "(another application's database?); expected an empty database or an agentdigest ledger: give the "
            "ledger its own (nothing was changed in it)")


def pg_cannot_write(conn: Connection, exists: bool) -> str | None:
    """Why this PostgreSQL role could not create the ledger's tables (a run creates them) or write
    them; None when it can. PostgreSQL 15 no longer lets every role create tables in ``public``."""
    # A hot standby grants every privilege it will then refuse: check called a ledger on a replica "reachable,
    # empty" and the run failed "cannot execute CREATE TABLE in a read-only transaction" (found on a real replica)
    if conn.scalar(text("SELECT pg_is_in_recovery()")):
        return ("the server is a standby (a read-only replica), and runs write the ledger: name the primary, or "
                "the primary and its replicas with ?target_session_attrs=read-write")
    if not exists:
        schema, user = conn.execute(text("SELECT current_schema(), current_user")).one()
        if schema is None:
            return "no schema on the role's search_path to create its tables in"
        if not conn.scalar(text("SELECT has_schema_privilege(current_schema(), 'CREATE')")):
            return (f"the role {user} may not create tables in schema {schema}, and the first run creates "
                    f"them (GRANT CREATE ON SCHEMA {schema} TO {user}, or let the first run use a role that may)")
        return None
    user = conn.scalar(text("SELECT current_user"))
    for table in (t for t in (runs, deliveries, heartbeats) if inspect(conn).has_table(t.name)):  # older schemas
        # One privilege per call: with several, has_table_privilege is true when any one is held.
        if not conn.scalar(text("SELECT has_table_privilege(:t, 'SELECT') AND has_table_privilege(:t, 'INSERT') "
                                "AND has_table_privilege(:t, 'UPDATE')"), {"t": table.name}):
            return f"the role {user} may not read, insert and update its table {table.name}"
        if "id" in table.c and not conn.scalar(text("SELECT has_sequence_privilege(pg_get_serial_sequence(:t, 'id'), "
                                                    "'USAGE')"), {"t": table.name}):
            return (f"the role {user} may not use the sequence of its table {table.name} "
                    f"(GRANT USAGE ON ALL SEQUENCES IN SCHEMA ... TO {user})")
    return None


def probe(url: str) -> str:
    """Reach the ledger without creating or changing anything (``agentdigest check``); what was found.

    Raises :class:`LedgerError` when it cannot be reached or read, or a run could not write it."""
    version = read_version(url, writable=True)
    if version is None:
        real = engine_url(url)
        if not real.startswith("sqlite"):
            return "reachable, empty; the first run creates its tables"
        if sqlite_path(real) in ("", ":memory:"):
            return "in memory (nothing is kept between runs)"
        return "not created yet; the first run creates it"
    return f"reachable, schema version {version}" + ("" if version == SCHEMA_VERSION else
                                                     f" (upgraded to {SCHEMA_VERSION} on the next run)")


def foreign_ledger(file: Path, since: datetime) -> str | None:
    """What the SQLite file now at a ledger's path holds, when a process that had the one before it open (a
    scheduler) should not take it over; None when it is absent, empty, or a ledger begun after ``since`` (naive
    UTC, when the process last found its own file there): one another process created after the old one went.

    Records from before are another ledger's, a restored backup's or another deployment's, and they would
    decide what is sent (a period it says sent would not go out) without anyone having chosen that file."""
    try:
        if file.stat().st_size == 0:
            return None
    except OSError:
        return None
    engine = create_engine(read_only_url(file)[0], poolclass=NullPool)
    try:
        with engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
            if names and "schema_version" not in names:
                return f"a database that is not a ledger (tables {', '.join(sorted(names)[:4])})"
            firsts = [conn.scalar(text(f"SELECT min({column}) FROM {table}")) for table, column in (
                ("schema_version", "upgraded_at"), ("runs", "started_at"), ("deliveries", "created_at"),
                ("heartbeats", "updated_at")) if table in names]
    except SQLAlchemyError as exc:
        return f"a file that cannot be read as a ledger ({db_reason(exc)})"
    finally:
        engine.dispose()
    oldest = min((datetime.fromisoformat(str(at)) for at in firsts if at is not None), default=None)
    if oldest is not None and oldest < since:
        return (f"a ledger with records from {oldest:%Y-%m-%d %H:%M:%S} UTC, before its own file went "
                "(a restored backup, or another ledger?)")
    return None
