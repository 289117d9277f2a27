"""The SQLite ledger's file: created private (0600), opened with WAL and a busy timeout (explicit BEGINs so a
writer can take the lock up front), opened read-only without writing anything beside it, and whether this
process could write it.

What the ledger holds and how it is reached (either database) is :mod:`agentdigest.ledger_schema`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

from .folders import cannot_write


def _may_write(file: Path) -> bool:
    """Whether this process may write ``file``: its permissions, and the immutable flag even for root
    (``access`` ignores that flag, opening the file for writing does not)."""
    if not os.access(file, os.W_OK):
        return False
    try:
        with open(file, "r+b"):
            return True
    except OSError:
        return False


def a_folder(file: Path) -> str:
    """What is wrong with a SQLite ledger path that names a folder, or "". Found in an exit-code audit: a run
    called such a ledger "read-only for this user", and history "unable to open database file"."""
    return f"{file} is a folder, not a SQLite file (expected ledger.url = \"sqlite:///path/to/ledger.db\")" \
        if file.is_dir() else ""


def write_problem(file: Path) -> str:
    """Why this process could not write the SQLite ledger ``file`` (an existing one): the file, or its folder,
    where SQLite keeps the -wal and -shm files; "" when it could."""
    return cannot_write(file.parent) or ("" if _may_write(file) else f"{file} is read-only")


def read_only_url(file: Path) -> tuple[str, str]:
    """The URL that opens the SQLite ledger ``file`` without writing anything, and what it may not show ("").

    Found in a crash audit: an operator could not read production's ledger (a file, or a folder, they may
    not write). Without a -wal file everything is in the file itself, and ``immutable=1`` reads it without
    creating the -wal and -shm files a WAL reader otherwise makes (made by another user, they would stand in
    the way of the ledger's owner). With one (a scheduler running now), ``mode=ro`` reads it through its
    -shm index; when that cannot be opened either, the file alone is read, without what the -wal holds."""
    uri = quote(str(file))
    immutable = f"sqlite:///file:{uri}?immutable=1&uri=true"
    wal = file.with_name(file.name + "-wal")
    if not wal.exists():
        return immutable, ""
    probe = None
    try:
        probe = sqlite3.connect(f"file:{uri}?mode=ro", uri=True)
        probe.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return f"sqlite:///file:{uri}?mode=ro&uri=true", ""
    except sqlite3.Error:
        return immutable, (f"{file} was read without its -wal file, which this user cannot use; what was written "
                           "since its last checkpoint is not shown")
    finally:
        if probe is not None:
            probe.close()


def create_private(path: Path) -> None:
    """Create a new SQLite ledger readable by its owner only (0600, like the archive): it names
    recipients and channels. SQLite gives its -wal and -shm files the database file's mode."""
    # Already there (FileExistsError), or a read-only folder: SQLite's own error says it better.
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def sqlite_setup(engine: Engine, read_only: bool = False) -> None:
    """WAL and a busy timeout on every connection; explicit BEGINs so writers can take the lock up front.
    A read-only connection only waits (setting WAL is a write)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")
        if not read_only:
            _set_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("immediate") else "BEGIN")


def _set_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode = WAL``, retried for up to 30 s: SQLite answers "database is locked" at once,
    without its busy handler, when another connection opens or converts the same new file at that moment
    (1 in 10 of five simultaneous first opens here)."""
    for attempt in Retrying(retry=retry_if_exception(lambda e: isinstance(e, sqlite3.OperationalError)
                                                     and "locked" in str(e)),
                            wait=wait_exponential(multiplier=0.005, max=0.25), stop=stop_after_delay(30),
                            reraise=True):
        with attempt:
            cursor.execute("PRAGMA journal_mode = WAL")
