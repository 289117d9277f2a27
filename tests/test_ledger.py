"""The ledger: claims, leases, takeovers and races, on SQLite and on a real PostgreSQL.

Every test runs on both backends (one suite, marked per backend, Ibis style). PostgreSQL is
started by pytest-postgresql; without its binaries the postgres half skips locally, never in CI.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.engine import make_url

from agentdigest.errors import ConfigError
from agentdigest.ledger import Ledger
from agentdigest.ledger_schema import SCHEMA_VERSION, LedgerError, engine_url, probe, read_version, schema_version

R, P = "weekly-exec", "2026-W48"
EXPIRED = -1.0  # a lease that has already run out: a crashed sender, without waiting for a clock


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def ledger(url):
    led = Ledger(url)
    yield led
    led.close()


def test_a_target_is_claimed_once(ledger):
    first = ledger.claim(R, P, "mail", "a@example.com", owner="one", lease_seconds=60)
    assert first is not None and first.attempts == 1 and first.took_over_from is None
    assert ledger.claim(R, P, "mail", "a@example.com", owner="two", lease_seconds=60) is None
    assert ledger.delivery_state(R, P, "mail", "a@example.com") == "sending"
    # Another recipient of the same channel is its own target.
    assert ledger.claim(R, P, "mail", "b@example.com", owner="two", lease_seconds=60) is not None


def test_sent_is_never_claimed_again_unless_forced(ledger):
    claim = ledger.claim(R, P, "slack", owner="one", lease_seconds=60)
    assert ledger.mark_sent(claim, "1700000000.0001")
    assert ledger.delivery_state(R, P, "slack") == "sent"
    assert ledger.claim(R, P, "slack", owner="two", lease_seconds=60) is None
    forced = ledger.claim(R, P, "slack", owner="two", lease_seconds=60, force=True)
    assert forced is not None and forced.attempts == 2
    # A failed resend does not undo the first delivery: the period stays sent, a rerun stays quiet.
    assert ledger.mark_failed(forced, "HTTP 500", retryable=True)
    assert ledger.is_period_sent(R, P, ["slack"])
    assert ledger.claim(R, P, "slack", owner="three", lease_seconds=60) is None
    assert ledger.deliveries(R, P)[0]["sends"] == 1


def test_failed_is_claimed_again_and_counts_attempts(ledger):
    claim = ledger.claim(R, P, "mail", "a@example.com", owner="one", lease_seconds=60)
    ledger.mark_failed(claim, "450 mailbox busy", retryable=True)
    row = ledger.delivery(R, P, "mail", "a@example.com")
    assert (row["state"], row["retryable"], row["error"]) == ("failed", True, "450 mailbox busy")
    again = ledger.claim(R, P, "mail", "a@example.com", owner="two", lease_seconds=60)
    assert again is not None and again.attempts == 2 and again.took_over_from is None


def test_a_sent_row_is_never_marked_failed_afterwards(ledger):
    # An interruption after the channel's receipt was recorded releases every claim of the channel;
    # the one already sent must stay sent.
    claim = ledger.claim(R, P, "mail", "a@example.com", owner="one", lease_seconds=60)
    assert ledger.mark_sent(claim, "<m1@example.com>")
    assert not ledger.mark_failed(claim, "interrupted by SIGINT (Ctrl-C) while delivering", retryable=True)
    row = ledger.delivery(R, P, "mail", "a@example.com")
    assert (row["state"], row["error"], row["provider_id"]) == ("sent", None, "<m1@example.com>")


def test_an_expired_lease_is_taken_over_and_recorded(ledger):
    crashed = ledger.claim(R, P, "webhook", owner="crashed-host:41", lease_seconds=EXPIRED)
    taker = ledger.claim(R, P, "webhook", owner="healthy-host:7", lease_seconds=60)
    assert taker is not None and "crashed-host:41" in taker.took_over_from
    row = ledger.delivery(R, P, "webhook")
    assert row["takeovers"] == 1 and row["owner"] == "healthy-host:7"
    # The crashed sender comes back late: it cannot fail the row it no longer holds ...
    assert not ledger.mark_failed(crashed, "timeout", retryable=True)
    assert ledger.delivery_state(R, P, "webhook") == "sending"
    # ... and if it did send after all, that is recorded with a warning, not hidden.
    assert not ledger.mark_sent(crashed, "late")
    assert "may have been sent twice" in ledger.delivery(R, P, "webhook")["note"]
    assert ledger.mark_sent(taker, "on-time")


def test_a_run_whose_claim_ran_out_and_was_taken_over_is_closed_as_abandoned(ledger):
    """Found in a crash audit: a run killed on another machine, or in a container (process ids not trusted),
    stayed `running` in history for ever, also after the next run took its deliveries over and sent them.
    A taken-over claim says its run is gone (its lease is the longest its delivery could take)."""
    crashed_run = ledger.start_run(R, P, "due", "pod-a:1:crash01")
    other_run = ledger.start_run(R, P, "due", "pod-c:1:live01")  # another run, its claims still leased
    assert ledger.claim(R, P, "mail", "cto@example.com", owner="pod-a:1:crash01", lease_seconds=EXPIRED)
    assert ledger.claim(R, P, "hook", owner="pod-c:1:live01", lease_seconds=300)
    assert ledger.claim(R, P, "mail", "cto@example.com", owner="pod-b:1:next01", lease_seconds=60)
    runs = {row["id"]: row for row in ledger.history() if row["kind"] == "run"}
    assert runs[crashed_run]["state"] == "abandoned" and "pod-b:1:next01" in runs[crashed_run]["error"]
    assert runs[other_run]["state"] == "running"


def test_a_live_lease_is_not_taken_over_even_with_force(ledger):
    assert ledger.claim(R, P, "mail", owner="one", lease_seconds=300)
    assert ledger.claim(R, P, "mail", owner="two", lease_seconds=300, force=True) is None


def test_period_sent_needs_every_channel_and_recipient(ledger):
    a = ledger.claim(R, P, "mail", "a@example.com", owner="o", lease_seconds=60)
    b = ledger.claim(R, P, "mail", "b@example.com", owner="o", lease_seconds=60)
    s = ledger.claim(R, P, "slack", owner="o", lease_seconds=60)
    ledger.mark_sent(a, "<id>")
    ledger.mark_sent(s, "ts")
    ledger.mark_failed(b, "550 no such user", retryable=False)
    assert not ledger.is_period_sent(R, P, ["mail", "slack"])
    assert ledger.is_period_sent(R, P, ["slack"])
    assert not ledger.is_period_sent(R, P, ["slack", "never-claimed"])
    assert ledger.is_period_sent(R, P, [])


def test_test_sends_never_count_as_the_period(ledger):
    ledger.record_test(R, P, "mail", "me@example.com", state="sent", provider_id="<t1>")
    ledger.record_test(R, P, "mail", "me@example.com", state="sent", provider_id="<t2>")
    assert ledger.delivery_state(R, P, "mail", "me@example.com") is None
    assert not ledger.is_period_sent(R, P, ["mail"])
    assert ledger.claim(R, P, "mail", "me@example.com", owner="o", lease_seconds=60) is not None
    tests = [row for row in ledger.deliveries(R, P) if row["kind"] == "test"]
    assert [(t["sends"], t["provider_id"]) for t in tests] == [(2, "<t2>")]


def test_sends_restored_from_another_record_fill_only_what_the_ledger_lacks(ledger):
    """A new or reset ledger learns the archive's sends (see run_records.restore_sends): a row without a send
    becomes sent at the recorded time; a row a run has claimed meanwhile is left to that run."""
    failed = ledger.claim(R, P, "mail", "a@example.com", owner="one", lease_seconds=60)
    ledger.mark_failed(failed, "HTTP 500", retryable=True)
    ledger.claim(R, P, "mail", "busy@example.com", owner="two", lease_seconds=60)
    sends = [{"channel": "mail", "recipient": r, "sent_at": "2026-11-23T08:00:00+00:00", "provider_id": f"<{r}>"}
             for r in ("a@example.com", "b@example.com", "busy@example.com")]
    assert ledger.restore_sent(R, P, sends, note="restored") == 2
    rows = {row["recipient"]: row for row in ledger.deliveries(R, P)}
    assert {r: rows[r]["state"] for r in rows} == {"a@example.com": "sent", "b@example.com": "sent",
                                                  "busy@example.com": "sending"}
    assert rows["b@example.com"]["sent_at"].startswith("2026-11-23T08:00:00")
    assert rows["a@example.com"]["provider_id"] == "<a@example.com>" and rows["a@example.com"]["error"] is None
    assert rows["b@example.com"]["note"] == "restored" and rows["b@example.com"]["sends"] == 1
    assert ledger.claim(R, P, "mail", "b@example.com", owner="three", lease_seconds=60) is None
    assert ledger.restore_sent(R, P, sends, note="again") == 0  # a sent row is never rewritten


def test_runs_history_and_heartbeats(ledger):
    run = ledger.start_run(R, P, "schedule")
    claim = ledger.claim(R, P, "mail", "a@example.com", owner="o", lease_seconds=60)
    ledger.mark_failed(claim, "login refused by smtps://reports:hunter2-PLANTED@mail.example.com:465", retryable=False)
    ledger.finish_run(run, "failed", "1 delivery failed")
    ledger.start_run("other", P, "manual")
    ledger.heartbeat("sched-1", {"next": "2026-12-07T09:00:00+01:00", "url": "postgresql://u:pw-PLANTED@db/x"})
    history = ledger.history()
    assert {(h["kind"], h["state"]) for h in history} >= {("run", "failed"), ("delivery", "failed"), ("run", "running")}
    assert all(h["report_id"] == R for h in ledger.history(report_id=R))
    assert len(ledger.history(limit=1)) == 1
    text = repr(history) + repr(ledger.heartbeats())
    assert "PLANTED" not in text and "smtps://reports:***@mail.example.com:465" in text
    assert ledger.heartbeats()[0]["owner"] == "sched-1"


def test_heartbeats_of_schedulers_silent_for_30_days_are_pruned(ledger):
    """Every scheduler process ever started kept its heartbeat row for ever (an operator review); rows not written
    for 30 days (stopped, or killed and never stopped) go, those written since stay."""
    from datetime import datetime, timedelta, timezone

    from agentdigest.ledger_schema import heartbeats

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    ages = {"stopped-31d": 31, "killed-40d": 40, "stopped-29d": 29, "live": 0}
    for owner, days in ages.items():
        ledger.heartbeat(owner, {"state": "running" if owner in ("killed-40d", "live") else "stopped"})
        with ledger.engine.begin() as conn:
            conn.execute(update(heartbeats).where(heartbeats.c.owner == owner).values(
                updated_at=now - timedelta(days=days, minutes=1)))
    assert ledger.prune_heartbeats() == 2
    assert {b["owner"] for b in ledger.heartbeats()} == {"stopped-29d", "live"}
    assert ledger.prune_heartbeats() == 0


def test_schema_is_versioned_and_reopening_is_harmless(url, ledger):
    assert ledger.schema_version() == SCHEMA_VERSION
    claim = ledger.claim(R, P, "mail", owner="o", lease_seconds=60)
    ledger.mark_sent(claim, "x")
    again = Ledger(url)
    assert again.delivery_state(R, P, "mail") == "sent"
    with again.engine.begin() as conn:
        conn.execute(update(schema_version).values(version=SCHEMA_VERSION + 1))
    again.close()
    with pytest.raises(LedgerError, match="newer than this agentdigest"):
        Ledger(url)


def test_a_ledger_refused_at_open_leaves_no_connection_open(url):
    """Found from a psycopg ResourceWarning "connection ... deleted while still open" in a later test: a ledger whose
    schema is newer was refused with its engine's pooled connection never closed, only dropped with the engine."""
    import gc
    import warnings

    Ledger(url).close()
    engine = create_engine(engine_url(url))
    with engine.begin() as conn:
        conn.execute(update(schema_version).values(version=SCHEMA_VERSION + 1))
    engine.dispose()
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for read_only in (False, True):
            try:
                Ledger(url, read_only=read_only)
            except LedgerError:
                pass
            else:
                pytest.fail("a ledger with a newer schema was opened")
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_a_version_3_ledger_gains_the_destination_column_and_keeps_its_rows(url):
    """Version 4 adds a nullable fingerprint of each send's destination (renames.py); a row sent before has
    none, and a send after the upgrade records one."""
    Ledger(url).close()
    engine = create_engine(engine_url(url))
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE deliveries DROP COLUMN destination"))
        conn.execute(update(schema_version).values(version=3))
        conn.execute(text("INSERT INTO deliveries (report_id, period_key, channel, recipient, kind, state, attempts, "
                          "sends, takeovers, created_at, updated_at, sent_at) VALUES ('weekly-exec', '2026-W47', "
                          "'slack', '', 'period', 'sent', 1, 1, 0, :at, :at, :at)"), {"at": "2026-11-23 09:00:00"})
    engine.dispose()
    ledger = Ledger(url)
    try:
        assert ledger.schema_version() == SCHEMA_VERSION == 5
        assert [(r["channel"], r["state"], r["destination"]) for r in ledger.deliveries(R, "2026-W47")] == [
            ("slack", "sent", None)]
        claim = ledger.claim(R, P, "slack", owner="o", lease_seconds=60)
        ledger.mark_sent(claim, "ts", destination="0123456789abcdef01234567")
        ledger.restore_sent(R, P, [{"channel": "box", "recipient": "", "destination": "fedcba9876543210fedcba98"}],
                            note="restored")
        assert {r["channel"]: r["destination"] for r in ledger.deliveries(R, P)} == {
            "slack": "0123456789abcdef01234567", "box": "fedcba9876543210fedcba98"}
    finally:
        ledger.close()


def test_a_version_4_ledger_gains_the_failed_under_column_and_keeps_its_rows(url):
    """Version 5 adds a nullable fingerprint of the settings a failure happened under (refusals.py); a row
    that failed before has none, and a failure after the upgrade records one."""
    Ledger(url).close()
    engine = create_engine(engine_url(url))
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE deliveries DROP COLUMN failed_under"))
        conn.execute(update(schema_version).values(version=4))
        conn.execute(text("INSERT INTO deliveries (report_id, period_key, channel, recipient, kind, state, attempts, "
                          "sends, takeovers, created_at, updated_at, retryable) VALUES ('weekly-exec', '2026-W47', "
                          "'mail', 'vp@example.com', 'period', 'failed', 1, 0, 0, :at, :at, false)"),
                     {"at": "2026-11-23 09:00:00"})
    engine.dispose()
    ledger = Ledger(url)
    try:
        assert ledger.schema_version() == SCHEMA_VERSION == 5
        assert [(r["recipient"], r["state"], r["failed_under"]) for r in ledger.deliveries(R, "2026-W47")] == [
            ("vp@example.com", "failed", None)]
        claim = ledger.claim(R, P, "mail", "vp@example.com", owner="o", lease_seconds=60)
        ledger.mark_failed(claim, "550 no such user", retryable=False, under="0123456789abcdef01234567")
        assert [r["failed_under"] for r in ledger.deliveries(R, P)] == ["0123456789abcdef01234567"]
    finally:
        ledger.close()


def test_probe_reads_a_ledger_without_creating_or_upgrading_it(url):
    empty = probe(url)
    assert empty.startswith(("not created yet", "reachable, empty")), empty
    Ledger(url).close()
    assert probe(url) == f"reachable, schema version {SCHEMA_VERSION}"
    engine = create_engine(engine_url(url))
    with engine.begin() as conn:
        conn.execute(update(schema_version).values(version=SCHEMA_VERSION - 1))
    assert probe(url).endswith(f"(upgraded to {SCHEMA_VERSION} on the next run)")
    with engine.connect() as conn:  # the probe itself upgraded nothing
        assert conn.scalar(select(schema_version.c.version)) == SCHEMA_VERSION - 1
    engine.dispose()


def test_urls_are_mapped_to_the_installed_driver():
    assert engine_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert engine_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert engine_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert engine_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    with pytest.raises(ConfigError, match=r"ledger\.url: unsupported ledger url 'mysql://u:\*\*\*@h/db'"):
        engine_url("mysql://u:secret@h/db")


def test_an_unreachable_ledger_is_one_masked_line():
    with pytest.raises(LedgerError) as err:
        Ledger("postgresql://reports:pw-PLANTED@127.0.0.1:1/none?connect_timeout=2")
    assert "PLANTED" not in str(err.value) and "\n" not in str(err.value)


LEDGER_COMMANDS = {"history": ["history"], "run": ["run", "r", "--period", "2026-W47"],
                   "check --missed": ["check", "--missed"]}


def _cli_on_ledger(tmp_path, command: str, ledger: str):
    """``command`` on a config whose ledger is ``ledger`` (``${PW}`` its password) and whose source is a
    small DuckDB table; exit code and stderr."""
    import os
    import subprocess
    import sys

    import duckdb

    with duckdb.connect(str(tmp_path / "events.duckdb")) as con:
        con.execute("CREATE TABLE agent_events AS SELECT 'c' || i AS conversation_id, 'message' AS event_type, "
                    "TIMESTAMPTZ '2026-11-16 10:00:00+00' + to_hours(i) AS event_ts FROM range(30) r(i)")
    (tmp_path / "agentdigest.toml").write_text(
        f'[source]\nurl = "duckdb://events.duckdb"\ntable = "agent_events"\n[ledger]\nurl = "{ledger}"\n'
        '[archive]\npath = "archive"\n[channels.box]\ntype = "outbox"\npath = "outbox"\n'
        '[[reports]]\nid = "r"\ntimezone = "UTC"\nchannels = ["box"]\n')
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", *LEDGER_COMMANDS[command]], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "300", "PW": "pw-PLANTED"})
    assert "PLANTED" not in done.stdout + done.stderr and "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stderr.strip().splitlines()


@pytest.mark.parametrize("command", sorted(LEDGER_COMMANDS))
def test_an_unreachable_ledger_is_one_line_for_every_command(tmp_path, command):
    """Found in a production audit: `history` exited 1 on a ledger it could not reach, where exit 1 reads "a
    delivery failed". It stays 1, as `run` (which then sends nothing: its deliveries failed) and `check` say:
    3 is the event source's code (README: with the source and the ledger both down a run exits 3 for the
    source), and a monitor reading 3 would look at the events database. Every command says so alike.

    But `check --missed` exited 1 both when a report was late and when the ledger was unreachable, so a
    monitoring script could not tell them apart (an operator review). The ledger is all it reads, so it
    exits 3 then, as a command whose input could not be read."""
    from conftest import free_port

    port = free_port()
    code, lines = _cli_on_ledger(tmp_path, command, f"postgresql://reports:${{PW}}@127.0.0.1:{port}/ledger")
    assert code == (3 if command == "check --missed" else 1) and len(lines) == 1, (code, lines)
    assert lines[0].startswith(("agentdigest: error: cannot reach the ledger ",
                                "agentdigest: error: cannot open the ledger ")), lines
    assert f"postgresql://reports:***@127.0.0.1:{port}/ledger: connection failed: " in lines[0], lines
    assert lines[0].endswith("Connection refused"), lines


@pytest.mark.parametrize("command", sorted(LEDGER_COMMANDS))
@pytest.mark.parametrize("query,why", [
    ("foo=bar", 'invalid connection option "foo"'),
    ("sslmode=bogus", 'invalid sslmode value: "bogus"'),
    ("connect_timeout=soon", "connect_timeout"),
])
def test_a_ledger_url_the_driver_refuses_is_a_config_error(tmp_path, command, query, why):
    """Found in a production audit: a ledger URL whose ?option or value the driver refuses read "cannot reach the
    ledger ...: invalid connection option "foo"", exit 1, as if its server were down; the source's URL said
    "is not a usable PostgreSQL URL", exit 2. The ledger's now says the same, naming ledger.url."""
    code, lines = _cli_on_ledger(tmp_path, command, f"postgresql://reports:${{PW}}@127.0.0.1:1/ledger?{query}")
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"agentdigest: error: ledger.url: postgresql://reports:***@127.0.0.1:1/ledger?{query} "
                               "is not a usable PostgreSQL URL ("), lines
    assert why in lines[0], lines


def test_check_says_a_refused_ledger_url_on_its_line_and_exits_2(tmp_path):
    import subprocess
    import sys

    _cli_on_ledger(tmp_path, "history", "sqlite:///ledger.db")  # the config and events
    text = (tmp_path / "agentdigest.toml").read_text()
    (tmp_path / "agentdigest.toml").write_text(text.replace("sqlite:///ledger.db",
                                                            "postgresql://reports@127.0.0.1:1/ledger?foo=bar"))
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "check"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert ("ledger postgresql://reports@127.0.0.1:1/ledger?foo=bar: FAILED - ledger.url: postgresql://reports@"
            "127.0.0.1:1/ledger?foo=bar is not a usable PostgreSQL URL "
            '(invalid connection option "foo")') in done.stdout
    assert "channel box: ok" in done.stdout, done.stdout  # the channels are still checked


@pytest.mark.parametrize("open_it", [lambda url: read_version(url), Ledger], ids=["read_version", "Ledger"])
def test_a_ledger_url_connect_timeout_is_the_wait_for_a_server_that_never_answers(open_it):
    # Found in a docs audit: the schema check set connect_timeout=10 over the URL's own, so `history`
    # waited 11.8 s for a hung server with ?connect_timeout=2. A real socket that accepts and never answers.
    import socket
    import time

    server = socket.create_server(("127.0.0.1", 0))
    try:
        url = f"postgresql://reports@127.0.0.1:{server.getsockname()[1]}/none?connect_timeout=1"
        start = time.monotonic()
        with pytest.raises(LedgerError, match="timeout"):
            open_it(url)
        assert time.monotonic() - start < 5
    finally:
        server.close()


# -- races: many senders, one winner per target ---------------------------------------------

TARGETS = [f"r{i}@example.com" for i in range(25)]


def _claim_all(url: str, owner: str, seed: int) -> list[str]:
    """Claim every target in a random order with a fresh connection; return the ones won."""
    led = Ledger(url)
    order = TARGETS[:]
    random.Random(seed).shuffle(order)
    won = [t for t in order if led.claim(R, P, "mail", t, owner=owner, lease_seconds=300) is not None]
    led.close()
    return won


def test_threads_racing_win_each_target_once(url):
    Ledger(url).close()  # schema first, so the race is about claims
    barrier = threading.Barrier(6)

    def racer(i: int) -> list[str]:
        barrier.wait()
        return _claim_all(url, f"thread-{i}", i)

    with ThreadPoolExecutor(6) as pool:
        wins = [t for won in pool.map(racer, range(6)) for t in won]
    assert sorted(wins) == sorted(TARGETS)


def test_processes_racing_win_each_target_once(url):
    Ledger(url).close()
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
        wins = [t for won in pool.map(_claim_all, [url] * 4, [f"proc-{i}" for i in range(4)], range(4)) for t in won]
    assert sorted(wins) == sorted(TARGETS)


def test_concurrent_first_opens_create_the_schema_once(url):
    with ThreadPoolExecutor(5) as pool:
        ledgers = list(pool.map(lambda _: Ledger(url), range(5)))
    assert {led.schema_version() for led in ledgers} == {SCHEMA_VERSION}
    for led in ledgers:
        led.close()


@pytest.mark.postgres
def test_a_ledger_that_goes_away_mid_run_is_one_masked_line(pg_url):
    """Found black-box: a PostgreSQL ledger stopped mid-delivery ended the run with
    'unexpected error: OperationalError' (exit 1, and a traceback with --verbose).

    Sessions ended under it alone are no failure (pool_pre_ping opens new ones: a restarted server,
    tests/test_ledger_restart.py); a database that then refuses connections is, in one line."""
    ledger = Ledger(pg_url)
    assert ledger.claim(R, P, "mail", owner="o", lease_seconds=60) is not None
    url = make_url(engine_url(pg_url))
    name = url.database
    # from another database: a database cannot refuse connections to itself
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")

    def end_sessions(conn):
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})

    with admin.connect() as conn:
        end_sessions(conn)
    assert ledger.claim(R, P, "webhook", owner="o", lease_seconds=60) is not None
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        end_sessions(conn)
    try:
        with pytest.raises(LedgerError, match=r"^the ledger postgresql://.* failed: ") as err:
            ledger.claim(R, P, "slack", owner="o", lease_seconds=60)
        assert "\n" not in str(err.value) and "not currently accepting connections" in str(err.value)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
        ledger.close()


@pytest.mark.parametrize("accident", ["deleted", "replaced"])
def test_a_sqlite_ledger_deleted_under_an_open_one_is_refused_not_written_in_the_void(tmp_path, accident):
    """Found in a crash audit: with the ledger file deleted while `agentdigest schedule` ran, the scheduler
    went on recording its sends and heartbeats in the deleted file (its connections kept it open), while
    `history`, `check --missed` and `run --due` used a new, empty one. Each statement now checks the file."""
    path = tmp_path / "ledger.db"
    ledger = Ledger(f"sqlite:///{path}")
    try:
        ledger.heartbeat("scheduler-a", {})
        for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):
            (tmp_path / name).unlink(missing_ok=True)
        if accident == "replaced":
            Ledger(f"sqlite:///{path}").close()
        for use in (lambda: ledger.heartbeat("scheduler-a", {}), lambda: ledger.history()):
            with pytest.raises(LedgerError, match=r"^the ledger .*ledger\.db was deleted or replaced while "
                                                  r"agentdigest had it open; start agentdigest again"):
                use()
    finally:
        ledger.close()


def test_a_new_sqlite_ledger_is_readable_by_its_owner_only(tmp_path):
    """Found in a security audit: the ledger (recipients, channels, errors) was created 0644 while the
    archive is 0600."""
    import stat

    ledger = Ledger(f"sqlite:///{tmp_path / 'state' / 'ledger.db'}")
    try:
        ledger.start_run("r", "2026-W47", "manual", "me:1:x")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "state").iterdir()}
    finally:
        ledger.close()
    assert modes and set(modes.values()) == {0o600}, modes


def test_the_period_is_held_by_one_process_among_all_sharing_the_ledger(url):
    """PostgreSQL: a session advisory lock, so processes on other machines (here: another Ledger, its own
    connections) wait; SQLite: nothing to add to the archive's flock, since its processes share a machine."""
    holder, other = Ledger(url), Ledger(url)
    waited: list[str] = []
    order: list[str] = []
    progressed = threading.Event()  # the second holder either waits (on_wait) or got the period at once

    def on_wait() -> None:
        waited.append("waiting")
        progressed.set()

    try:
        with holder.hold_period(R, P):
            def second() -> None:
                try:
                    with other.hold_period(R, P, on_wait=on_wait):
                        order.append("second")
                finally:
                    progressed.set()

            thread = threading.Thread(target=second)
            thread.start()
            assert progressed.wait(60), "the second holder neither waited nor got the period"
            order.append("first done")
        thread.join(60)
        assert not thread.is_alive()
        with other.hold_period(R, "2026-W49"):  # another period is its own lock
            pass
    finally:
        holder.close()
        other.close()
    if url.startswith("sqlite"):
        assert waited == [] and order == ["second", "first done"]
    else:
        assert len(waited) == 1 and order == ["first done", "second"]


@pytest.mark.postgres
def test_a_killed_holder_leaves_the_period_free(pg_url):
    """The lock lives with the holder's connection: a process killed while delivering never keeps it."""
    import signal
    import subprocess
    import sys
    import time

    code = ("import sys, time\nfrom agentdigest.ledger import Ledger\n"
            "with Ledger(sys.argv[1]).hold_period('weekly-exec', '2026-W48'):\n"
            "    print('held', flush=True)\n    time.sleep(600)\n")
    with subprocess.Popen([sys.executable, "-c", code, pg_url], stdout=subprocess.PIPE, text=True) as proc:
        # the with closes its stdout (an unclosed-file ResourceWarning otherwise) and waits for it
        probe_ledger = None
        try:
            assert proc.stdout.readline().strip() == "held"
            probe_ledger = Ledger(pg_url)
            with probe_ledger.engine.connect() as conn:  # held now: a try from elsewhere fails
                key_held = conn.scalar(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"))
            assert key_held == 1
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            started = time.monotonic()
            with probe_ledger.hold_period(R, P):
                pass
            assert time.monotonic() - started < 10
        finally:
            proc.kill()
            if probe_ledger is not None:
                probe_ledger.close()  # its pooled connection, also when an assertion failed


def _writer_url(pg_url: str) -> str:
    """``pg_url`` as the role agentdigest_writer (created here), which owns nothing and has no grant."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("DO $$ BEGIN CREATE ROLE agentdigest_writer LOGIN; "
                    "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    owner = pg_url.split("://", 1)[1].split("@", 1)[0]
    return pg_url.replace(f"://{owner}@", "://agentdigest_writer@")


@pytest.mark.postgres
def test_check_says_when_the_role_could_not_create_or_write_the_ledger(pg_url):
    """PostgreSQL 15 lets only the owner create tables in public: `check` said "reachable, empty; the first
    run creates its tables", then the first run failed with "permission denied for schema public"."""
    import psycopg

    url = _writer_url(pg_url)
    with pytest.raises(LedgerError, match="agentdigest_writer may not create tables in schema public"):
        probe(url)
    Ledger(pg_url).close()  # created by its owner
    with pytest.raises(LedgerError, match="may not read, insert and update its table runs"):
        probe(url)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO agentdigest_writer")
    with pytest.raises(LedgerError, match="may not use the sequence of its table runs"):
        probe(url)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO agentdigest_writer")
    assert probe(url).startswith("reachable, schema version")
    ledger = Ledger(url)  # and what check passed, a run can do
    try:
        run = ledger.start_run(R, P, "manual")
        ledger.finish_run(run, "done")
        assert ledger.claim(R, P, "mail", "a@example.com", owner="one", lease_seconds=60) is not None
        ledger.heartbeat("one", {})
    finally:
        ledger.close()


@pytest.mark.postgres
def test_a_run_says_why_the_role_could_not_create_the_ledger_as_check_does(pg_url):
    """Found in a README audit: check named the GRANT, and the run after it only "cannot open the ledger ...:
    permission denied for schema public"."""
    url = _writer_url(pg_url)
    with pytest.raises(LedgerError, match="agentdigest_writer may not create tables in schema public.*GRANT CREATE"):
        Ledger(url)


@pytest.mark.postgres
def test_a_hold_outlasts_a_short_idle_in_transaction_timeout(pg_url):
    """The period hold is a transaction left idle through a delivery: a role whose
    idle_in_transaction_session_timeout is 1 s lost it after 1 s, and another machine could take the period."""
    import time

    import psycopg

    role = pg_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[0]
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f'ALTER ROLE "{role}" SET idle_in_transaction_session_timeout = \'1s\'')
    holder, other = Ledger(pg_url), Ledger(pg_url)
    gave_up: list[str] = []
    try:
        with holder.hold_period(R, P):
            time.sleep(2.5)  # a delivery that takes longer than the timeout
            with other.hold_period(R, P, max_wait=1.5, on_give_up=lambda: gave_up.append("held")):
                pass
    finally:
        holder.close()
        other.close()
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute(f'ALTER ROLE "{role}" RESET idle_in_transaction_session_timeout')
    assert gave_up == ["held"]


def test_a_hung_holder_is_waited_for_only_as_long_as_its_delivery_can_take(url):
    """Found in a re-check: a holder stopped (SIGSTOP) but still connected blocked the period on every
    machine for as long as it stayed stopped, and its expired claims were never taken over."""
    import time

    holder, other = Ledger(url), Ledger(url)
    gave_up: list[float] = []
    try:
        with holder.hold_period(R, P):
            started = time.monotonic()
            with other.hold_period(R, P, max_wait=1.5, on_give_up=lambda: gave_up.append(time.monotonic() - started)):
                pass
    finally:
        holder.close()
        other.close()
    if url.startswith("sqlite"):
        assert gave_up == []  # nothing to wait for: the archive's flock covers one machine
    else:
        assert len(gave_up) == 1 and 1.4 < gave_up[0] < 10


@pytest.mark.postgres
def test_many_reports_can_hold_their_periods_at_once(pg_url):
    """Found in a re-check: each hold kept a pooled connection through its delivery, and 18 reports
    delivering at once ran the pool (5 + 10 overflow) dry; passes failed with "QueuePool limit"."""
    from contextlib import ExitStack

    ledger = Ledger(pg_url)
    try:
        with ExitStack() as stack:
            for i in range(20):
                stack.enter_context(ledger.hold_period(f"r{i}", P))
            assert ledger.claim(R, P, "mail", "a@example.com", owner="one", lease_seconds=60) is not None
    finally:
        ledger.close()
