"""A PostgreSQL ledger whose server restarts, fails over or goes down while agentdigest uses it.

Each test has a server of its own (initdb + pg_ctl, as pg_standby.py does), which it stops and restarts: the
session's ``pg_server`` is shared by other tests. ``pg_ctl restart -m fast`` ends every session, so what a pool
kept open is dead afterwards, as after a failover to an address that follows the primary. Delivery goes to a
real outbox or to a real SMTP server (aiosmtpd) whose DATA is held until the test releases it, to stop the
server while a message is in flight.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from agentdigest.ledger import Ledger
from conftest import _pg_ctl, free_port, postgres_account, skip_or_fail
from schedule_helpers import (cli, cron_far_from_now, events_of, json_lines, make_events, sent_files, spawn, stop, wait_for,
                              write_config)

pytestmark = [pytest.mark.postgres, pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")]


@dataclass
class Server:
    """A PostgreSQL server of the test's own, on loopback, that the test may stop and restart."""

    bindir: Path
    base: Path
    port: int
    as_postgres: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_postgres, *args], check=True, capture_output=True, timeout=120)

    def ctl(self, *args: str) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.base / "data"), "-l", str(self.base / "server.log"),
                  "-w", *args)

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every session is ended, the server is back when this returns."""
        self.ctl("-m", "fast", "restart")

    def down(self) -> None:
        self.ctl("-m", "fast", "stop")

    def up(self) -> None:
        self.ctl("start")

    def sessions(self) -> int:
        """Client sessions open on the server now (this one's not counted)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as con:
            return con.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                               "AND pid <> pg_backend_pid()").fetchone()[0]


@pytest.fixture
def server(request):
    pg_ctl = _pg_ctl(request)
    if pg_ctl is None:
        skip_or_fail("no PostgreSQL server binaries (pg_ctl) found; set --postgresql-exec")
    bindir = Path(os.path.realpath(pg_ctl)).parent
    if not (bindir / "initdb").exists():
        skip_or_fail(f"initdb is needed beside {pg_ctl} for a server of the test's own")
    base = Path(tempfile.mkdtemp(prefix="agentdigest-restart-"))
    as_postgres = postgres_account(base)
    srv = Server(bindir, base, free_port(), as_postgres)
    srv._run(str(bindir / "initdb"), "-D", str(base / "data"), "-U", "postgres", "-A", "trust", "-N")
    with open(base / "data" / "postgresql.conf", "a") as conf:
        conf.write(f"listen_addresses = '127.0.0.1'\nport = {srv.port}\nunix_socket_directories = '{base}'\n"
                   "fsync = off\n")
    try:
        srv.up()
        yield srv
    finally:
        if (base / "data" / "postmaster.pid").exists():
            try:
                srv.ctl("-m", "immediate", "stop")
            except subprocess.CalledProcessError:  # already gone
                pass
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    now = datetime.now(timezone.utc)
    return make_events(tmp_path_factory.mktemp("events") / "events.duckdb", end=now + timedelta(days=2), days=20)


class HeldSMTP:
    """An aiosmtpd handler whose DATA is answered only once the test releases it; accepted messages are kept."""

    def __init__(self):
        self.release = threading.Event()
        self.data_started = threading.Event()
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):
        self.data_started.set()
        while not self.release.is_set():
            await asyncio.sleep(0.05)
        self.messages.append(envelope.original_content or b"")
        return f"250 OK queued as m{len(self.messages)}"


@pytest.fixture
def held_smtp():
    handler = HeldSMTP()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, f"smtp://127.0.0.1:{controller.port}"
    finally:
        handler.release.set()
        controller.stop()


def daily(report_id: str = "daily", channels=("box",)) -> dict:
    return {"id": report_id, "period": "day", "timezone": "UTC", "schedule": cron_far_from_now(),
            "channels": list(channels)}


def mail_channel(url: str) -> dict:
    return {"mail": {"type": "email", "to": ["cto@example.com"], "from": "reports@example.com", "smtp_url": url,
                     "timeout": 120, "retry_budget": 0}}


def box(tmp_path: Path) -> dict:
    return {"box": {"type": "outbox", "path": str(tmp_path / "outbox")}}


def heartbeat_at(url: str) -> datetime | None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        row = con.execute("SELECT max(updated_at) FROM heartbeats").fetchone()
    return row[0] if row else None


# -- 1. the scheduler: a restart between passes ------------------------------------------------------

def test_a_pass_after_a_server_restart_delivers_at_once_without_a_stale_connection_error(tmp_path, events, server):
    """The pool's connections all die with the restart. The next pass (here a reload's catch-up of a new report,
    and the pass of the report already sent) must not fail on one, which planned a retry 5 minutes away."""
    config = write_config(tmp_path, events=events, channels=box(tmp_path), reports=[daily("a")], ledger_url=server.url)
    log = tmp_path / "daemon.log"
    proc = spawn("schedule", "--config", str(config), "--log-format", "json", log=log)
    try:
        wait_for(lambda: events_of(log, "sent", "a"), what="report a's catch-up", proc=proc, log=log)
        # Right after a heartbeat, so that the next one (30 s later) is not the use that meets a dead connection
        first = wait_for(lambda: heartbeat_at(server.url), what="a heartbeat", proc=proc, log=log)
        wait_for(lambda: heartbeat_at(server.url) != first, what="the next heartbeat", timeout=40, proc=proc, log=log)
        server.restart()
        write_config(tmp_path, events=events, channels=box(tmp_path), reports=[daily("a"), daily("b")],
                     ledger_url=server.url)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: events_of(log, "sent", "b") or events_of(log, "error"), timeout=25,
                 what="report b's delivery after the restart", proc=proc, log=log)
        wait_for(lambda: len(events_of(log, "skipped_sent", "a")) >= 1 or events_of(log, "error", "a"),
                 what="report a's pass after the restart", proc=proc, log=log)
    finally:
        code = stop(proc)[0]
    assert code == 0
    errors = events_of(log, "error") + events_of(log, "retry_planned")
    assert not errors, [e["message"] for e in errors]
    assert events_of(log, "sent", "b")
    assert sorted(sent_files(tmp_path / "outbox").values()) == [1, 1]


def test_a_restart_while_a_report_computes_does_not_fail_its_delivery(tmp_path, events, server, monkeypatch):
    """A long compute (here: the server restarted from inside it) leaves the pool's connections dead by the
    time the run claims and records its deliveries; the period lock's connection is taken after the compute."""
    from agentdigest import runner
    from agentdigest.config import load_config
    from agentdigest.schedule import run_pass

    config = load_config(write_config(tmp_path, events=events, channels=box(tmp_path), reports=[daily()],
                                      ledger_url=server.url))
    real = runner.compute

    def computing(*args, **kwargs):
        data = real(*args, **kwargs)
        server.restart()
        return data

    monkeypatch.setattr(runner, "compute", computing)
    ledger = Ledger(config.ledger.url)
    try:
        result = run_pass(config, config.reports, datetime.now(timezone.utc), ledger=ledger, stop=threading.Event())
        assert [(r.error, [d.state for d in r.deliveries]) for r in result.runs] == [(None, ["sent"])]
        assert [h["state"] for h in ledger.history("daily") if h["kind"] == "run"] == ["done"]
    finally:
        ledger.close()
    assert sum(sent_files(tmp_path / "outbox").values()) == 1


# -- 2 and 4. the server goes away while a message is in flight (the period held) -----------------------

def run_due_in_background(config: Path, out: Path) -> subprocess.Popen:
    from schedule_helpers import env

    return subprocess.Popen([sys.executable, "-m", "agentdigest.cli", "run", "--due", "--config", str(config)],
                            stdout=open(out.with_suffix(".out"), "wb"), stderr=open(out.with_suffix(".err"), "wb"),
                            env=env())


def test_a_restart_during_the_smtp_data_still_records_the_send(tmp_path, events, server, held_smtp):
    """The server restarts (and is back) while the relay holds the message: the hold's transaction and the
    pool's connections are gone. The send must still be recorded as sent, the run exit 0."""
    handler, url = held_smtp
    config = write_config(tmp_path, events=events, channels=mail_channel(url), reports=[daily(channels=["mail"])],
                          ledger_url=server.url)
    proc = run_due_in_background(config, tmp_path / "run")
    wait_for(handler.data_started.is_set, what="the SMTP DATA", proc=proc)
    server.restart()
    handler.release.set()
    code = proc.wait(timeout=120)
    err = (tmp_path / "run.err").read_text()
    assert code == 0, err
    assert len(handler.messages) == 1
    ledger = Ledger(server.url)
    try:
        rows = [r for r in ledger.history("daily") if r["kind"] != "run"]
        assert [(r["state"], r["sends"]) for r in rows] == [("sent", 1)], rows
    finally:
        ledger.close()
    assert "Traceback" not in err
    # neither the hold nor the pool left a session behind (a backend ends a moment after its client has gone)
    wait_for(lambda: server.sessions() == 0, timeout=10, what="no session left")


@pytest.mark.parametrize("how", ["run --due", "schedule"])
def test_a_send_the_ledger_could_not_record_is_learnt_from_the_archive_not_sent_again(tmp_path, events, server,
                                                                                     held_smtp, how):
    """The server goes down during DATA and comes back: the relay accepted the email, its `sent` could not be
    written, and the run fails (exit 1; the scheduler plans a retry). The archive's send log records the send;
    the next `run --due`, or the scheduler's own retry in the same process, learns it from there, records it
    as sent and does not send it again, and says so. Before, the scheduler's retry left the row to its own
    claim ("being sent by" itself, looked at again in 29 minutes) and did not count the period as sent."""
    handler, url = held_smtp
    config = write_config(tmp_path, events=events, channels=mail_channel(url), reports=[daily(channels=["mail"])],
                          ledger_url=server.url)
    log = tmp_path / "daemon.log"
    if how == "run --due":
        proc = run_due_in_background(config, tmp_path / "run")
    else:
        proc = spawn("schedule", "--config", str(config), "--log-format", "json", log=log,
                     extra_env={"AGENTDIGEST_RETRY_SECONDS": "1"})
    wait_for(handler.data_started.is_set, what="the SMTP DATA", proc=proc)
    server.down()
    handler.release.set()
    restored = "the ledger had no record of 1 send that the archive records"
    if how == "run --due":
        assert proc.wait(timeout=120) == 1
        first = (tmp_path / "run.err").read_text()
        # the send is what the user must hear of, not the run's closing write failing as well
        assert "cto@example.com was sent but could not be recorded as sent in the ledger" in first
        assert "Connection refused" in first and "Traceback" not in first and len(first.strip().splitlines()) == 1
        server.up()
        second = cli("run", "--due", "--config", str(config))
        assert second.returncode == 0, second.stderr
        assert restored in second.stderr and "already sent to every channel" in second.stdout
    else:
        try:
            wait_for(lambda: events_of(log, "retry_planned", "daily"), what="the failed pass", proc=proc, log=log)
            assert "Connection refused" in events_of(log, "error", "daily")[0]["message"]
            server.up()
            wait_for(lambda: events_of(log, "skipped_sent", "daily") or events_of(log, "claimed_elsewhere"),
                     what="the retry", proc=proc, log=log)
        finally:
            assert stop(proc)[0] == 0
        assert not events_of(log, "claimed_elsewhere") and not events_of(log, "recheck_planned")
        assert any(restored in e["message"] for e in json_lines(log))
    assert len(handler.messages) == 1
    ledger = Ledger(server.url)
    try:
        row = ledger.delivery("daily", daily_key(tmp_path), "mail", "cto@example.com")
    finally:
        ledger.close()
    assert (row["state"], row["sends"], row["lease_until"]) == ("sent", 1, None)
    assert row["note"].startswith("restored from the archive")
    sends = [line for line in (tmp_path / "reports" / "daily" / daily_key(tmp_path) / ".delivered").read_text()
             .splitlines() if line.strip()]
    assert len(sends) == 1 and '"recipient": "cto@example.com"' in sends[0]


def daily_key(tmp_path: Path) -> str:
    """The one period archived under ``tmp_path`` for the report ``daily``."""
    (folder,) = (tmp_path / "reports" / "daily").iterdir()
    return folder.name


# -- 3. run --due with the server down ------------------------------------------------------------

def test_run_due_with_the_ledger_server_down_sends_nothing_and_says_so_in_one_line(tmp_path, events, server):
    """No send without a claim: the ledger is opened before anything is computed, and its failure is one line,
    exit 1 (README: "the ledger could not be written (then nothing was sent)")."""
    config = write_config(tmp_path, events=events, channels=box(tmp_path), reports=[daily()], ledger_url=server.url)
    server.down()
    started = time.monotonic()
    result = cli("run", "--due", "--config", str(config))
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        f'agentdigest: error: cannot open the ledger {server.url}: connection failed: connection to server at '
        f'"127.0.0.1", port {server.port} failed: Connection refused']
    assert time.monotonic() - started < 30  # refused at once: no connect_timeout waited, no retry loop
    assert not sent_files(tmp_path / "outbox")


# -- 4. the scheduler's heartbeat with the server down -----------------------------------------------

def test_a_ledger_down_is_said_once_then_every_15_minutes_and_once_when_it_is_back(tmp_path, events, server, caplog):
    """Found in an operator review: with the ledger's server down, every heartbeat (each 30 s) logged the same
    ERROR line, 120 an hour. Now one ERROR when it goes down, one reminder each REMIND_SECONDS while it lasts (the
    test moves the last one back rather than waiting), and one INFO line when a heartbeat works again."""
    import logging

    from agentdigest import heartbeat
    from agentdigest.daemon import Daemon

    config = write_config(tmp_path, events=events, channels=box(tmp_path), reports=[daily()], ledger_url=server.url)
    daemon = Daemon(config)
    daemon.stop.set()  # no worker passes: the heartbeat alone
    said = lambda: [(r.levelname, getattr(r, "event", ""), r.getMessage()) for r in caplog.records  # noqa: E731
                    if r.getMessage().startswith("heartbeat")]
    try:
        with caplog.at_level(logging.INFO, logger="agentdigest"):
            daemon.tick()
            assert said() == []
            server.down()
            for _ in range(5):
                daemon.tick()
            (first,) = said()
            assert first[:2] == ("ERROR", "error") and "Connection refused" in first[2], first
            assert "said again every 15 min" in first[2]
            daemon.heartbeat.said_at -= heartbeat.REMIND_SECONDS
            for _ in range(3):
                daemon.tick()
            assert len(said()) == 2
            assert said()[1][:2] == ("ERROR", "error") and "still failing, since" in said()[1][2]
            assert "(6 heartbeats)" in said()[1][2] and "Connection refused" in said()[1][2]
            server.up()
            before = heartbeat_at(server.url)
            daemon.tick()
            daemon.tick()
            assert len(said()) == 3
            assert said()[2][:2] == ("INFO", "heartbeat_ok") and "(8 heartbeats)" in said()[2][2], said()[2]
            assert heartbeat_at(server.url) > before
            server.down()  # a second outage is said again
            daemon.tick()
            assert len(said()) == 4 and said()[3][:2] == ("ERROR", "error")
    finally:
        daemon.ledger.close()


def test_a_report_that_failed_with_the_ledger_down_goes_out_once_a_heartbeat_finds_it_back(tmp_path, events, server):
    """Found reviewing the scheduler with the ledger's server down at a report's fire: its pass failed and waited
    to retry 5, 10, 20, 40, then 60 minutes, so a report whose ledger came back after 40 minutes went out 35 minutes
    later still. The heartbeat that finds the ledger back (30 s at most) now has each report waiting to retry a
    failure look again at once. The retry here is left at its 5 minutes: the report goes out well before."""
    from agentdigest.daemon import Daemon

    outbox = tmp_path / "outbox"
    config = write_config(tmp_path, events=events, channels=box(tmp_path), reports=[daily()], ledger_url=server.url)
    daemon = Daemon(config)
    try:
        daemon.tick()
        server.down()
        daemon._sync_jobs()  # the worker, whose catch-up pass meets the ledger down
        worker = daemon.workers["daily"]
        worker.request()
        wait_for(lambda: worker.failing and worker.recheck_at is not None and not worker.busy, what="the failed pass")
        daemon.tick()  # said down
        assert not sent_files(outbox)
        server.up()
        daemon.tick()  # back: the worker looks again now, not in 5 minutes
        wait_for(lambda: sent_files(outbox), what="the report's delivery", timeout=60)
        wait_for(lambda: not worker.failing, what="the pass's end")
    finally:
        daemon.stop.set()
        for worker in daemon.workers.values():
            worker.thread.join(timeout=30)
        daemon.ledger.close()
    assert sum(sent_files(outbox).values()) == 1
