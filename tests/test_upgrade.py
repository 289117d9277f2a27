"""Upgrading agentdigest over a ledger an older version wrote (an upgrade audit).

Old ledgers are built by SQL from today's tables, as tests/test_interrupted.py does for version 1: each schema
version added nullable columns only (2: runs.owner, 4: deliveries.destination, 5: deliveries.failed_under) or
moved rows (3: alarms out of the period's deliveries).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agentdigest.ledger import Ledger
from agentdigest.ledger_schema import LedgerError, SCHEMA_VERSION

R = "weekly-exec"


def old_ledger(path: Path, version: int) -> None:
    """A SQLite ledger as agentdigest at schema ``version`` left it: W48 sent to outbox, failed on mail, and
    (up to version 2, as a period delivery) a sent 'failed' alarm."""
    Ledger(f"sqlite:///{path}").close()
    drops = {1: ["runs.owner", "deliveries.destination", "deliveries.failed_under"],
             2: ["deliveries.destination", "deliveries.failed_under"], 3: ["deliveries.destination",
                                                                            "deliveries.failed_under"],
             4: ["deliveries.failed_under"]}[version]
    con = sqlite3.connect(path)
    for dropped in drops:
        table, column = dropped.split(".")
        con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    alarm_kind = "period" if version <= 2 else "alarm"
    con.executescript(f"""
        UPDATE schema_version SET version = {version};
        INSERT INTO runs (report_id, period_key, trigger, state, started_at, finished_at)
            VALUES ('{R}', '2026-W48', 'due', 'failed', '2026-11-30 08:00:00', '2026-11-30 08:00:05');
        INSERT INTO deliveries (report_id, period_key, channel, recipient, kind, state, attempts, sends, takeovers,
                                created_at, updated_at, sent_at, provider_id)
            VALUES ('{R}', '2026-W48', 'outbox', '', 'period', 'sent', 1, 1, 0,
                    '2026-11-30 08:00:01', '2026-11-30 08:00:01', '2026-11-30 08:00:01', 'x.eml'),
                   ('{R}', '2026-W48', 'alarm:oncall', 'failed', '{alarm_kind}', 'sent', 1, 1, 0,
                    '2026-11-30 08:00:06', '2026-11-30 08:00:06', '2026-11-30 08:00:06', NULL);
        INSERT INTO deliveries (report_id, period_key, channel, recipient, kind, state, attempts, sends, takeovers,
                                last_error, retryable, created_at, updated_at)
            VALUES ('{R}', '2026-W48', 'mail', 'cto@example.com', 'period', 'failed', 2, 0, 0,
                    'cannot reach smtp://relay:25: Connection refused', 1, '2026-11-30 08:00:02',
                    '2026-11-30 08:00:02');
    """)
    con.commit()
    con.close()


def _version(path: Path) -> int:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("SELECT version FROM schema_version").fetchone()[0]
    finally:
        con.close()


# -- an operator's read-only look at a ledger an older agentdigest still writes -------------------

@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_an_older_ledger_is_read_without_being_upgraded(tmp_path, version):
    """Found in an upgrade audit: `history` and `check --missed` of the new version, on a ledger the operator
    may read but not write (production's, its old scheduler still running), failed "has schema version 4, and
    this agentdigest reads 5". Read-only, it cannot be upgraded, and it need not be: every column added since is
    read as empty, and alarms recorded as period deliveries (up to version 2) as alarms, as the upgrade would."""
    path = tmp_path / "old.db"
    old_ledger(path, version)
    wal = path.with_name("old.db-wal")
    before, wal_before = path.read_bytes(), wal.exists()
    ledger = Ledger(f"sqlite:///{path}", read_only=True)
    try:
        rows = ledger.deliveries(R, "2026-W48")
        assert [(r["channel"], r["recipient"], r["kind"], r["state"]) for r in rows] == [
            ("alarm:oncall", "failed", "alarm", "sent"), ("mail", "cto@example.com", "delivery", "failed"),
            ("outbox", "", "delivery", "sent")]
        assert {r["destination"] for r in rows} == {None} and {r["failed_under"] for r in rows} == {None}
        runs = [row for row in ledger.history() if row["kind"] == "run"]
        assert [(r["period_key"], r["state"], r["owner"]) for r in runs] == [("2026-W48", "failed", None)]
        assert ledger.tried_periods(R) == (["2026-W48"], ["2026-W48"])
        assert ledger.schema_version() == version
    finally:
        ledger.close()
    assert wal.exists() == wal_before
    assert path.read_bytes() == before and _version(path) == version
    # A run (a writer) then upgrades it, keeping every row.
    writer = Ledger(f"sqlite:///{path}")
    try:
        assert writer.schema_version() == SCHEMA_VERSION
        assert len(writer.deliveries(R, "2026-W48")) == 3
    finally:
        writer.close()


def test_a_newer_ledger_is_still_refused_read_only(tmp_path):
    path = tmp_path / "new.db"
    Ledger(f"sqlite:///{path}").close()
    con = sqlite3.connect(path)
    con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    con.commit()
    con.close()
    with pytest.raises(LedgerError, match=f"schema version {SCHEMA_VERSION + 1}, and this agentdigest understands"):
        Ledger(f"sqlite:///{path}", read_only=True)


def _old_pg_ledger(url: str) -> None:
    """A PostgreSQL ledger as agentdigest at schema 4 left it: W48 sent to outbox (no failed_under column)."""
    import sqlalchemy as sa

    Ledger(url).close()
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE deliveries DROP COLUMN failed_under"))
        conn.execute(sa.text("UPDATE schema_version SET version = 4"))
        conn.execute(sa.text(
            "INSERT INTO deliveries (report_id, period_key, channel, recipient, kind, state, attempts, sends, "
            "takeovers, created_at, updated_at, sent_at, provider_id) VALUES (:r, '2026-W48', 'outbox', '', "
            "'period', 'sent', 1, 1, 0, now(), now(), now(), 'x.eml')"), {"r": R})
    engine.dispose()


def _pg_version(url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return conn.scalar(sa.text("SELECT version FROM schema_version"))
    finally:
        engine.dispose()


def test_reading_an_older_postgresql_ledger_never_upgrades_it(pg_url):
    """Found in an upgrade audit: a newer agentdigest's `history` upgraded a shared PostgreSQL ledger, and every
    older host's next run then refused it ("newer than this agentdigest understands") until that host was
    upgraded too. The commands that only read it (history, check --missed, a dry run) open it read-only."""
    from agentdigest.ledger import open_existing

    _old_pg_ledger(pg_url)
    ledger = open_existing(pg_url)
    try:
        for _ in range(3):  # views made anew in each read transaction, on whichever pooled connection
            rows = ledger.deliveries(R, "2026-W48")
            assert [(r["channel"], r["state"], r["failed_under"]) for r in rows] == [("outbox", "sent", None)]
            assert [r["state"] for r in ledger.history() if r["kind"] == "delivery"] == ["sent"]
        ledger.engine.dispose()  # a new connection gets the views too
        assert ledger.tried_periods(R) == (["2026-W48"], [])
    finally:
        ledger.close()
    assert _pg_version(pg_url) == 4
    writer = Ledger(pg_url)  # a run upgrades it, keeping its rows
    try:
        assert writer.schema_version() == SCHEMA_VERSION and len(writer.deliveries(R, "2026-W48")) == 1
    finally:
        writer.close()


def _temp_ledger_views(pg_url: str) -> list[str]:
    """The temporary relations named like the ledger's tables on the server, in any session (seen directly, not
    through a pool: pg_class lists every session's temporary objects)."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as con:
        return [row[0] for row in con.execute(
            "SELECT relname FROM pg_class WHERE relname IN ('runs', 'deliveries') AND relpersistence = 't' "
            "ORDER BY relname").fetchall()]


@pytest.mark.postgres
@pytest.mark.parametrize("settings", [{"default_pool_size": 1},
                                      {"server_reset_query": "DISCARD ALL", "server_reset_query_always": 1}],
                         ids=["one-connection", "reset"])
def test_an_older_postgresql_ledger_is_read_through_a_transaction_pool_leaving_nothing(pg_url, pgbouncer, settings):
    """Found in a re-check of the read-only views: they were made once per client connection and committed,
    which through PgBouncer in transaction mode is one transaction on one server connection. Where the pool
    resets its connections the next read found no views ("column deliveries.failed_under does not exist"); with
    PgBouncer's defaults they stayed on that server connection for its next clients, whose unqualified
    ``deliveries`` then meant the view: a writer's upgrade there saw the view's failed_under, never added the
    column and marked the ledger version 5 without it. Each read makes them in its own transaction now, and
    that transaction's end drops them."""
    import sqlalchemy as sa

    from agentdigest.ledger import Ledger, open_existing

    _old_pg_ledger(pg_url)
    url = pgbouncer("transaction", **settings)(pg_url)
    ledger = open_existing(url)
    try:
        for _ in range(3):
            rows = ledger.deliveries(R, "2026-W48")
            assert [(r["channel"], r["state"], r["failed_under"]) for r in rows] == [("outbox", "sent", None)]
            assert [r["state"] for r in ledger.history() if r["kind"] == "delivery"] == ["sent"]
            assert ledger.tried_periods(R) == (["2026-W48"], [])
            assert _temp_ledger_views(pg_url) == []  # not even while the reader is open
    finally:
        ledger.close()
    assert _temp_ledger_views(pg_url) == []
    assert _pg_version(pg_url) == 4
    writer = Ledger(url)  # another client of the same pool: upgrades the ledger's own tables and writes them
    try:
        writer.claim(R, "2026-W49", "outbox", "", owner="writer", lease_seconds=60)
        assert writer.schema_version() == SCHEMA_VERSION and len(writer.deliveries(R, "2026-W48")) == 1
    finally:
        writer.close()
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            assert "failed_under" in {c["name"] for c in sa.inspect(conn).get_columns("deliveries", schema="public")}
    finally:
        engine.dispose()
