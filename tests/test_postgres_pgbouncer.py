"""A PostgreSQL source reached through PgBouncer, as production often reaches it, in each pool mode.

In transaction mode each transaction may run on another server connection of the pool. The pools here
run ``DISCARD ALL`` after every transaction (``server_reset_query_always``), so every transaction finds a
connection with no session state: what a busy pool does now and then, made certain for a test.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from agentdigest.compute import compute_report
from agentdigest.config import ReportConfig, SourceConfig
from agentdigest.periods import parse_period
from agentdigest.sources import open_source
from backend_loaders import load_postgres
from compare import compare_report
from reference import Reference
from trapdata import SCENARIOS, now_for, trap_rows

SCENARIO = "berlin-fall-week"
ROLE = "agentdigest_pooled"  # listed in conftest's PgBouncer auth_file
#: A pool whose every transaction finds a connection with no session state.
RESET_EACH_TRANSACTION = {"server_reset_query": "DISCARD ALL", "server_reset_query_always": 1}


def pooled_role(pg_url: str, naive: bool) -> str:
    """``pg_url`` as ROLE, which may read events.agent_events and whose sessions start at UTC+14: a report
    that lost its UTC TimeZone would shift every naive event_ts by 14 hours."""
    import psycopg

    db = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as con:
        if naive:
            con.execute("ALTER TABLE events.agent_events ALTER COLUMN event_ts TYPE timestamp "
                        "USING event_ts AT TIME ZONE 'UTC'")
            con.execute("ANALYZE events.agent_events")
        con.execute(f"DO $$ BEGIN CREATE ROLE {ROLE} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        con.execute(f"GRANT USAGE ON SCHEMA events TO {ROLE}")
        con.execute(f"GRANT SELECT ON events.agent_events TO {ROLE}")
        con.execute(f"ALTER ROLE {ROLE} IN DATABASE {db} SET TimeZone = 'Pacific/Kiritimati'")
    user = pg_url.split("://", 1)[1].split("@", 1)[0]
    return pg_url.replace(f"://{user}@", f"://{ROLE}@")


def report_of(url: str, settings: dict | None = None) -> dict:
    tz, kind, key = SCENARIOS[SCENARIO]
    source = open_source(SourceConfig(url=url, table="events.agent_events", settings=settings or {}))
    try:
        data = compute_report(source, ReportConfig(id="r", period=kind, timezone=tz), parse_period(kind, key, tz),
                              now=now_for(SCENARIO))
    finally:
        source.close()
    return json.loads(data.to_json())


def differences(a, b, where: str = "") -> list[str]:
    """Where two report.json trees differ: counts and text exactly, other numbers to 1e-6."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str) for d in differences(a.get(k), b.get(k), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    if isinstance(a, float) and isinstance(b, (int, float)) or isinstance(b, float) and isinstance(a, int):
        return [] if math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6) else [f"{where}: {a!r} != {b!r}"]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


@pytest.mark.postgres
@pytest.mark.parametrize("naive", [False, True], ids=["timestamptz", "naive-timestamp"])
@pytest.mark.parametrize("pool_mode", ["transaction", "session"])
def test_a_report_through_pgbouncer_equals_the_direct_one(pg_url, pgbouncer, pool_mode, naive):
    """Measured with PgBouncer 1.18 in transaction mode: every report through a pool whose next transaction
    ran on another connection failed "relation "ibis_cached_..." does not exist" (exit 3), its temporary
    table made on another connection. A report now runs in one transaction, with the same figures as direct,
    and in UTC, whatever the role's TimeZone (here UTC+14)."""
    rows = trap_rows(SCENARIO)
    load_postgres(rows, pg_url)
    url = pooled_role(pg_url, naive)
    direct = report_of(url)
    pooled = report_of(pgbouncer(pool_mode, **RESET_EACH_TRANSACTION)(url))
    found = differences({k: v for k, v in pooled.items() if k != "generated_at"},
                        {k: v for k, v in direct.items() if k != "generated_at"})
    assert not found, "\n".join(found)
    tz, kind, key = SCENARIOS[SCENARIO]
    mismatches = compare_report(pooled, Reference(rows, tz, kind, key, now_for(SCENARIO)))
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.postgres
def test_a_transaction_pool_keeps_nothing_of_a_report(pg_url, pgbouncer):
    """Measured with PgBouncer 1.18 in transaction mode: a run's session settings (jit = off,
    [source.settings]) stayed on the pool's server connection for its next clients, and Ibis's column lookup
    left a prepared statement there: after an open that made no temporary table (check, a read-only role, a
    failed run) the next one failed "prepared statement "_pg3_0" already exists" (exit 3). With one server
    connection in the pool every client shares it: it keeps nothing of agentdigest's."""
    import psycopg

    load_postgres(trap_rows(SCENARIO), pg_url)
    url = pgbouncer("transaction", default_pool_size=1)(pooled_role(pg_url, naive=False))
    settings = {"work_mem": "64MB", "statement_timeout": "30min"}
    for _ in range(2):
        open_source(SourceConfig(url=url, table="events.agent_events", settings=settings)).close()
    report = report_of(url, settings)
    assert report["metrics"]["conversations"]["value"] > 0
    with psycopg.connect(url, autocommit=True) as con:
        found = con.execute("SELECT current_setting('work_mem'), current_setting('statement_timeout'), "
                            "current_setting('jit'), (SELECT count(*) FROM pg_prepared_statements), "
                            "(SELECT count(*) FROM pg_class WHERE relpersistence = 't')").fetchone()
    assert found == ("4MB", "0", "on", 0, 0)


@pytest.mark.postgres
def test_the_settings_apply_in_a_report_through_a_transaction_pool(pg_url, pgbouncer):
    """[source.settings] are in force in the report's transaction, on whichever connection it runs."""
    load_postgres(trap_rows(SCENARIO), pg_url)
    url = pgbouncer("transaction", **RESET_EACH_TRANSACTION)(pooled_role(pg_url, naive=False))
    source = open_source(SourceConfig(url=url, table="events.agent_events", settings={"work_mem": "64MB"}))
    try:
        with source.transaction(), source.backend.con.cursor() as cur:
            cur.execute("SELECT current_setting('work_mem'), current_setting('TimeZone'), current_setting('jit')")
            assert cur.fetchone() == ("64MB", "UTC", "off")
    finally:
        source.close()


@pytest.mark.postgres
def test_a_statement_pool_is_refused_in_one_line_saying_what_works(pg_url, pgbouncer, tmp_path):
    """PgBouncer in statement mode refuses every transaction block; a report needs one."""
    load_postgres(trap_rows(SCENARIO), pg_url)
    url = pgbouncer("statement")(pooled_role(pg_url, naive=False))
    tz, kind, key = SCENARIOS[SCENARIO]
    (tmp_path / "agentdigest.toml").write_text(
        f'[source]\nurl = "{url}"\ntable = "events.agent_events"\n'
        f'[[reports]]\nid = "r"\nperiod = "{kind}"\ntimezone = "{tz}"\n')
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "run", "r", "--period", key, "--dry-run",
                           "--format", "json", "--config", "agentdigest.toml"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120, env={**os.environ, "COLUMNS": "300"})
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "statement pooling" in done.stderr and "transaction or session mode" in done.stderr, done.stderr


# -- a PostgreSQL ledger through PgBouncer ------------------------------------------------------------

R, P = "weekly-exec", "2026-W48"
#: PgBouncer's own defaults in transaction mode (no reset between transactions), and a pool that resets.
LEDGER_POOLS = pytest.mark.parametrize("settings", [{}, RESET_EACH_TRANSACTION], ids=["default", "reset"])


def advisory_locks(pg_url: str) -> int:
    """How many advisory locks the server holds now, for any session (seen directly, not through a pool)."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as con:
        return con.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted").fetchone()[0]


@pytest.mark.postgres
@LEDGER_POOLS
def test_a_period_is_held_once_through_a_transaction_pool(pg_url, pgbouncer, settings):
    """Measured with PgBouncer 1.18 in transaction mode: the period lock was a session lock taken in one
    transaction and released in another, maybe on other server connections. With PgBouncer's defaults a
    second ledger's try ran on the connection holding it and took it too (both held the period); where the
    pool resets its connections the lock was gone at once. Now it is held in one transaction of its own."""
    from agentdigest.ledger import Ledger

    url = pgbouncer("transaction", **settings)(pg_url)
    first, second = Ledger(url), Ledger(url)  # two schedulers on two machines
    gave_up: list[str] = []
    try:
        with first.hold_period(R, P):
            assert advisory_locks(pg_url) == 1
            with second.hold_period(R, P, max_wait=1.5, on_give_up=lambda: gave_up.append("while held")):
                pass
            assert advisory_locks(pg_url) == 1  # the second's try took nothing and left nothing
        assert advisory_locks(pg_url) == 0
        with second.hold_period(R, P, max_wait=5, on_give_up=lambda: gave_up.append("after")):
            assert advisory_locks(pg_url) == 1
        with first.hold_period(R, "2026-W49"), second.hold_period(R, P, max_wait=1.5, on_give_up=gave_up.append):
            assert advisory_locks(pg_url) == 2  # another period is its own lock
    finally:
        first.close()
        second.close()
    assert gave_up == ["while held"]
    assert advisory_locks(pg_url) == 0


@pytest.mark.postgres
@LEDGER_POOLS
def test_a_ledger_through_a_transaction_pool_prepares_nothing(pg_url, pgbouncer, settings):
    """Measured with PgBouncer 1.18 in transaction mode: psycopg prepares a statement run 5 times on one
    connection; the sixth heartbeat of a scheduler failed "prepared statement "_pg3_0" already exists" (or
    "does not exist" where the pool resets), and so did a period lock's sixth poll (a run stopped)."""
    import threading

    from agentdigest.ledger import Ledger

    url = pgbouncer("transaction", default_pool_size=2, **settings)(pg_url)
    ledgers = [Ledger(url) for _ in range(2)]
    holder = Ledger(pg_url)  # direct: the pooled ledgers poll for the period
    outcomes: list[str] = []
    try:
        for i in range(8):
            for n, ledger in enumerate(ledgers):
                ledger.heartbeat(f"scheduler-{n}", {"beat": i})
                ledger.claim(R, f"p{i}", "mail", f"{n}@example.com", owner=f"scheduler-{n}", lease_seconds=60)

        def wait(ledger: Ledger) -> None:
            try:
                with ledger.hold_period(R, P, max_wait=6.5, on_give_up=lambda: outcomes.append("gave up")):
                    pass
            except Exception as exc:  # noqa: BLE001 - the test reports it
                outcomes.append(f"{type(exc).__name__}: {exc}")

        with holder.hold_period(R, P):
            threads = [threading.Thread(target=wait, args=(ledger,)) for ledger in ledgers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        assert len(ledgers[0].heartbeats()) == 2
    finally:
        holder.close()
        for ledger in ledgers:
            ledger.close()
    assert outcomes == ["gave up", "gave up"]
