"""The ledger's database (SQLAlchemy 2 Core): opened, its schema created or upgraded, its transactions,
and the period lock across machines; :class:`ledger.Ledger` keeps the records in it.

SQLite by default (WAL, a busy timeout: safe for several processes on one machine); PostgreSQL
when several schedulers on several machines share the work (``postgresql://`` is mapped to the
installed driver, psycopg 3 first, then psycopg2).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool, StaticPool

from .ledger_migrations import MIGRATIONS, older_schema_views
from .ledger_schema import (SCHEMA_VERSION, LedgerError, StatementFailed, db_reason, engine_url, not_a_ledger,
                            pg_cannot_write, schema_version, sqlite_path)
from .ledger_sqlite import a_folder, create_private, read_only_url, sqlite_setup, write_problem
from .folders import no_space
from .masking import mask_url
from .waiting import wait_for


#: How SQLite says a write failed for want of room (an -shm or -wal file it could not grow, a full database file)
_NO_ROOM = ("disk I/O error", "database or disk is full", "unable to open database file")


def _identity(path: Path) -> tuple[int, int] | None:
    """Which file ``path`` is (device, inode); None when there is none."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class LedgerDatabase:
    """The ledger's database, safe to share between processes; :class:`ledger.Ledger` adds its records."""

    def __init__(self, url: str, *, read_only: bool = False):
        """Open (and create or upgrade) the ledger; ``read_only`` opens an existing SQLite ledger without
        writing anything, for commands that only read it from a file or folder they may not write."""
        self.url = url
        self.read_only = read_only
        self.read_note = ""  # what a read-only open may not show
        self._file: tuple[Path, tuple[int, int] | None] | None = None  # a SQLite file, as opened
        #: what a use of a replaced SQLite file says to do (the scheduler takes up the new one itself)
        self.when_replaced = "start agentdigest again to use the new one"
        self.checked_at = utc_now()  # when the file was last found to be the one opened
        self._views_of = 0  # an older schema version read through views (_check_version), else 0
        real = engine_url(url)
        kwargs: dict[str, Any] = {}
        if real.startswith("sqlite"):
            path = sqlite_path(real)
            if path in ("", ":memory:"):  # one shared in-memory database, not one per connection
                kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
            elif read_only:
                self._file = (Path(path), _identity(Path(path)))
                real, self.read_note = read_only_url(Path(path))
                kwargs["connect_args"] = {"timeout": 30}
            else:
                if problem := a_folder(Path(path)):
                    raise LedgerError(f"cannot open the ledger {path}: {problem}")
                try:
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                    create_private(Path(path))
                    self._file = (Path(path), _identity(Path(path)))
                except OSError as exc:  # a parent that is a file, a read-only disk: one line, not a traceback
                    raise LedgerError(f"cannot create the ledger {path}: {exc.strerror or exc}") from None
                if self._file[1] is not None and (problem := write_problem(Path(path))):
                    # Found in a crash audit: "cannot open the ledger ...: attempt to write a readonly database"
                    raise LedgerError(f"the ledger {path} is read-only for this user ({problem}): runs record "
                                      "their deliveries in it, so nothing was run (`agentdigest history` can "
                                      "still read it)")
                kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["connect_args"] = {}
            if "connect_timeout=" not in real:  # a server that accepts but never answers must not hang a run
                kwargs["connect_args"]["connect_timeout"] = 10
            if real.startswith("postgresql+psycopg:"):
                # No server-side prepared statements: psycopg prepares a statement run 5 times on a connection
                # (a heartbeat, a lock's poll), and through PgBouncer in transaction mode (before 1.21) it lives
                # on one server connection of the pool: the next writes failed "prepared statement "_pg3_0"
                # already exists", or "... does not exist" where the pool resets its connections (measured,
                # PgBouncer 1.18). The ledger's statements are small: preparing buys nothing measurable.
                kwargs["connect_args"]["prepare_threshold"] = None
            # A pooled connection is tested (one round trip) before each use: after a restart or failover of the
            # server every pooled connection is dead, and the next use of one failed ("terminating connection due
            # to administrator command"): a scheduler's pass then waited 5 minutes for its retry, and a send the
            # relay had accepted could not be recorded (tests/test_ledger_restart.py). Not for SQLite: a local file.
            kwargs["pool_pre_ping"] = True
        self._connect_kwargs = {k: v for k, v in kwargs.items() if k == "connect_args"}
        self._lock_engine: Engine | None = None
        self.engine: Engine = create_engine(real, **kwargs)
        self._insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        if self.engine.dialect.name == "sqlite":
            sqlite_setup(self.engine, read_only=read_only)
        try:
            self._open(url, read_only)
        except BaseException:
            # Nobody gets this ledger to close: its pooled connection went with the engine, unclosed (a psycopg
            # ResourceWarning "connection ... deleted while still open", in a later test, after a newer schema)
            self.close()
            raise

    def _open(self, url: str, read_only: bool) -> None:
        try:
            if read_only:
                self._check_version()
            else:
                self._migrate()
        except StatementFailed as exc:
            if exc.refused:
                raise exc.refused from None
            # Not after a connection no host gave: asking again waited as long again (measured: 16 s instead of 8
            # for two hosts that accept and never answer, prefer-standby, connect_timeout=2)
            # the GRANT it needs, as check says (a README audit)
            if not exc.unreachable and (problem := self._pg_write_problem()):
                raise LedgerError(f"the ledger {mask_url(url)} cannot be written: {problem}") from None
            raise LedgerError(f"cannot open the ledger {mask_url(url)}: {exc.reason}") from None

    def _pg_write_problem(self) -> str | None:
        """Why this PostgreSQL role cannot create or write the ledger's tables, or None (not PostgreSQL, or
        nothing found: the error itself then says it)."""
        if self.engine.dialect.name != "postgresql":
            return None
        try:
            with self.engine.connect() as conn:
                return pg_cannot_write(conn, inspect(conn).has_table("schema_version"))
        except SQLAlchemyError:
            return None

    def close(self) -> None:
        self.engine.dispose()
        if self._lock_engine is not None:
            self._lock_engine.dispose()

    # -- schema ---------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._write() as conn:
            if self.engine.dialect.name == "postgresql":  # serialise concurrent first starts
                conn.execute(text("SELECT pg_advisory_xact_lock(74657301)"))
            if problem := not_a_ledger(conn, self.url):
                raise LedgerError(problem)
            schema_version.create(conn, checkfirst=True)
            current = conn.scalar(select(schema_version.c.version).where(schema_version.c.id == 1)) or 0
            if current > SCHEMA_VERSION:
                raise LedgerError(f"the ledger {mask_url(self.url)} has schema version {current}, newer than this "
                                  f"agentdigest understands ({SCHEMA_VERSION}); upgrade agentdigest")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version](conn)
            if current == 0:
                conn.execute(schema_version.insert().values(id=1, version=SCHEMA_VERSION, upgraded_at=utc_now()))
            elif current < SCHEMA_VERSION:
                conn.execute(schema_version.update().values(version=SCHEMA_VERSION, upgraded_at=utc_now()))

    def _check_version(self) -> None:
        """A ledger read without being written must have this agentdigest's schema or an older one, read through
        views that show it as this one's (:func:`ledger_migrations.older_schema_views`); a run upgrades it.

        Found in an upgrade audit: an operator's `history` and `check --missed` (they may read production's ledger,
        not write it) failed "has schema version 4, and this agentdigest reads 5" while the older agentdigest that
        writes it ran on: nobody may upgrade it but its writers, and they were not upgraded yet."""
        version = self.schema_version()
        if 1 <= version < SCHEMA_VERSION:
            self._views_of = version  # each read transaction makes them (_read)
            return
        if version != SCHEMA_VERSION:
            raise LedgerError(f"the ledger {mask_url(self.url)} has schema version {version}, and this agentdigest "
                              + (f"understands {SCHEMA_VERSION}; upgrade agentdigest" if version > SCHEMA_VERSION else
                                 f"reads {SCHEMA_VERSION}: the next run that may write it upgrades it"))

    def schema_version(self) -> int:
        with self._read() as conn:
            return int(conn.scalar(select(schema_version.c.version)) or 0)

    @property
    def file(self) -> Path | None:
        """The SQLite file this ledger is (None for PostgreSQL and in-memory ledgers)."""
        return None if self._file is None else self._file[0]

    def replaced(self) -> bool:
        """Whether the SQLite file was deleted or replaced since this ledger opened it."""
        return self._file is not None and _identity(self._file[0]) != self._file[1]

    def _same_file(self) -> None:
        """Refuse to go on with a SQLite file deleted or replaced since it was opened: the open connections
        would go on using the old one, which no other process sees (found in a crash audit: a scheduler
        recorded its sends and heartbeats in a deleted ledger while `history` showed a new, empty one)."""
        if self._file is None:
            return
        now = utc_now()
        if self.replaced():
            raise LedgerError(f"the ledger {self._file[0]} was deleted or replaced while agentdigest had it open; "
                              f"{self.when_replaced}")
        self.checked_at = now  # taken before the look: the file was there at least until then

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        # SQLite: BEGIN IMMEDIATE takes the write lock up front, so the busy timeout applies
        # instead of a deadlock when two readers both try to upgrade to writers.
        if self.read_only:
            raise LedgerError(f"the ledger {mask_url(self.url)} was opened read-only")
        self._same_file()
        try:
            with self.engine.execution_options(immediate=True).begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise self._failed(exc) from None

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A read transaction, ended by a rollback (a read commits nothing)."""
        self._same_file()
        try:
            with self.engine.connect() as conn:
                if self._views_of:
                    # In this transaction only; its rollback drops them. Found in a re-check: made once per
                    # connection and committed, through PgBouncer in transaction mode they were on one server
                    # connection, so the next read, on another, failed ("column deliveries.failed_under does not
                    # exist"), and that connection's next clients read (and a writer upgraded) the views.
                    older_schema_views(conn, self._views_of)
                yield conn
        except SQLAlchemyError as exc:
            raise self._failed(exc) from None

    def _failed(self, exc: SQLAlchemyError) -> StatementFailed:
        """``exc`` as one line; a SQLite I/O error in a folder without space says so (found in a storage audit: a
        ledger on a full disk failed every run "disk I/O error", SQLite unable to size its -shm file)."""
        full = self._file is not None and str(getattr(exc, "orig", exc)).startswith(_NO_ROOM)
        return StatementFailed(self.url, exc, no_space(self._file[0].parent) if full else "")

    # -- the period lock across machines -------------------------------------------------

    @contextmanager
    def hold_period(self, report_id: str, period_key: str, on_wait: Any = None, max_wait: float | None = None,
                    on_give_up: Any = None, sleep: Any = None) -> Iterator[None]:
        """Hold (report, period) for this process among every process sharing a PostgreSQL ledger,
        whatever machine it runs on (the archive's ``flock`` covers one machine only); SQLite: nothing
        to add, its processes share one machine.

        A transaction-scoped advisory lock (``pg_try_advisory_xact_lock``) in a transaction of its own, on
        a connection of its own, kept open for the hold and rolled back to release it: PostgreSQL releases it
        when that transaction or the holder's connection ends, so a killed process never keeps it, and
        keepalives (set for the transaction, ``set_config(..., true)``) end the connection of a machine that
        is lost within about two minutes. Through PgBouncer in transaction mode the whole hold is one
        transaction, so it stays on one server connection and leaves nothing there (measured with
        PgBouncer 1.18: a session lock, taken in one transaction and released in another, was taken again
        by another machine's ledger on the same server connection, or dropped at once where the pool
        resets its connections). ``on_wait`` is called once when another process holds it; this one polls
        until it is free (``sleep`` between tries, as :func:`waiting.wait_for`), or for ``max_wait`` seconds: then
        ``on_give_up`` is called and it goes on
        without the lock (a holder that hangs, stopped but connected, must not block the period on every
        machine: its claims' leases run out and are taken over, and they keep every delivery single).

        Held through a delivery, the transaction is "idle in transaction": the server's (or role's)
        ``idle_in_transaction_session_timeout`` is turned off for it, as it would end the holder's session,
        and the lock with it, mid-delivery. PgBouncer's ``idle_transaction_timeout`` cannot be: one shorter
        than a delivery does that; another machine may then take the period, as after ``max_wait``, and the
        claims' leases still keep each delivery single. It runs READ COMMITTED and writes nothing, so it holds no snapshot and no transaction id between
        its statements: it keeps no vacuum back.

        Each hold has a connection of its own, outside the ledger's pool: held through a delivery, 15
        reports delivering at once used up the pool (found in a re-check).
        """
        if self.engine.dialect.name != "postgresql":
            yield
            return
        key = int.from_bytes(hashlib.blake2b(f"agentdigest period {report_id}\0{period_key}".encode(),
                                             digest_size=8).digest(), "big", signed=True)
        if self._lock_engine is None:
            self._lock_engine = create_engine(self.engine.url, poolclass=NullPool, **self._connect_kwargs)
        try:
            # READ COMMITTED whatever the server's default: no snapshot kept through the hold
            conn = self._lock_engine.connect().execution_options(isolation_level="READ COMMITTED")
        except SQLAlchemyError as exc:
            raise LedgerError(f"the ledger {mask_url(self.url)} failed: {db_reason(exc, self.url)}") from None
        try:
            conn.begin()
            # idle_in_transaction_session_timeout off for the hold alone: a server or role default shorter than a
            # delivery (60 s is common) ended the hold mid-delivery, letting another machine take the period
            conn.execute(text("SELECT set_config('tcp_keepalives_idle', '60', true), "
                              "set_config('tcp_keepalives_interval', '10', true), "
                              "set_config('tcp_keepalives_count', '6', true), "
                              "set_config('idle_in_transaction_session_timeout', '0', true)"))
            held = wait_for(lambda: bool(conn.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key})),
                            interval=1.0, max_wait=max_wait, on_wait=on_wait, on_give_up=on_give_up,
                            **({"sleep": sleep} if sleep is not None else {}))
        except BaseException as exc:  # an error, or a signal while waiting: the session goes, and its lock
            conn.invalidate()
            conn.close()
            if isinstance(exc, SQLAlchemyError):
                raise LedgerError(f"the ledger {mask_url(self.url)} failed: {db_reason(exc, self.url)}") from None
            raise
        if not held:
            self._end_hold(conn)
            yield
            return
        try:
            yield
        finally:
            self._end_hold(conn)

    @staticmethod
    def _end_hold(conn: Connection) -> None:
        """End a hold's transaction, and its lock with it; a connection that cannot is dropped, never kept."""
        try:
            conn.rollback()
        except SQLAlchemyError:  # ended already (idle_in_transaction_session_timeout, a lost server): so is the lock
            conn.invalidate()
        finally:
            conn.close()
