"""A real streaming replica on loopback: a primary and a hot standby made from it by ``pg_basebackup -R``.

A pair of its own, not the session's ``pg_server``: a standby of that server would replay every other test's
databases as they are created and dropped. As root, both servers run as the ``postgres`` account (initdb
and postgres refuse root), as conftest's ``pg_server`` does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from conftest import free_port, postgres_account, skip_or_fail


@dataclass
class Replica:
    """A running primary and its standby; ``url(port, db)`` names one of them."""

    bindir: Path
    base: Path
    primary: int
    standby: int
    as_postgres: list[str] = field(default_factory=list)

    def url(self, port: int, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{db}"

    def hosts(self, *ports: int, db: str = "postgres", query: str = "") -> str:
        """One URL naming the given servers, in that order, as libpq writes several hosts."""
        return f"postgresql://postgres@{','.join(f'127.0.0.1:{p}' for p in ports)}/{db}{query}"

    def run(self, *args: str) -> None:
        subprocess.run([*self.as_postgres, *args], check=True, capture_output=True, timeout=120)

    def pg_ctl(self, name: str, *args: str) -> None:
        self.run(str(self.bindir / "pg_ctl"), "-D", str(self.base / name), "-l", str(self.base / f"{name}.log"),
                 *args)

    def replayed(self, db: str, sql: str, expected: object, timeout: float = 30) -> None:
        """Wait until ``sql`` gives ``expected`` on the standby (what the primary wrote has been replayed)."""
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url(self.standby, db), autocommit=True, connect_timeout=2) as con:
                    if con.execute(sql).fetchone()[0] == expected:
                        return
            except psycopg.Error:  # the database itself not replayed yet
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the standby did not replay {sql!r} in {timeout} s: "
                                     f"{(self.base / 'standby.log').read_text()[-2000:]}")
            time.sleep(0.1)


def start_replica(pg_ctl: str | None) -> Replica:
    """Start a primary and a hot standby streaming from it; skips (or fails in CI) without the binaries."""
    if pg_ctl is None:
        skip_or_fail("no PostgreSQL server binaries (pg_ctl) found; set --postgresql-exec")
    bindir = Path(os.path.realpath(pg_ctl)).parent
    if not (bindir / "pg_basebackup").exists() or not (bindir / "initdb").exists():
        skip_or_fail(f"initdb and pg_basebackup are needed beside {pg_ctl} for a streaming replica")
    base = Path(tempfile.mkdtemp(prefix="agentdigest-replica-"))
    as_postgres = postgres_account(base)
    pair = Replica(bindir, base, free_port(), free_port(), as_postgres)
    try:
        # initdb's pg_hba trusts loopback, replication connections included
        pair.run(str(bindir / "initdb"), "-D", str(base / "primary"), "-U", "postgres", "-A", "trust", "-N")
        with open(base / "primary" / "postgresql.conf", "a") as conf:
            conf.write(f"listen_addresses = '127.0.0.1'\nunix_socket_directories = '{base}'\nwal_level = replica\n"
                       "max_wal_senders = 4\nhot_standby = on\nfsync = off\n")
        pair.pg_ctl("primary", "-w", "-o", f"-p {pair.primary}", "start")
        pair.run(str(bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(pair.primary), "-U", "postgres",
                 "-D", str(base / "standby"), "-R", "-X", "stream", "-c", "fast")
        pair.pg_ctl("standby", "-w", "-o", f"-p {pair.standby}", "start")
        import psycopg

        with psycopg.connect(pair.url(pair.primary), autocommit=True) as con:
            con.execute("CREATE TABLE replica_marker AS SELECT 42 AS answer")
        pair.replayed("postgres", "SELECT pg_is_in_recovery() AND (SELECT answer FROM replica_marker) = 42", True)
    except BaseException:
        stop_replica(pair)
        raise
    return pair


def stop_replica(pair: Replica) -> None:
    for name in ("standby", "primary"):
        if (pair.base / name / "postmaster.pid").exists():
            try:
                pair.pg_ctl(name, "-m", "immediate", "-w", "stop")
            except subprocess.CalledProcessError:  # already gone: nothing to stop
                pass
    shutil.rmtree(pair.base, ignore_errors=True)
