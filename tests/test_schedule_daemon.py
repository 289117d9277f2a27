"""The ``agentdigest schedule`` daemon as a real process: catch-up, SIGTERM, restart, SIGKILL, SIGHUP.

The daemon reads the real clock, so each report gets a daily cron twelve hours away from now:
it cannot fire during a test, and its latest due period is known. Delivery goes to an outbox
(files counted) or to aiosmtpd servers whose DATA handler can be made to stall, standing in for
a relay that hangs mid-delivery. The only timing assertion is the documented "exits within 10 s".
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import threading
import tomllib
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from agentdigest.config import load_config
from agentdigest.ledger import Ledger
from conftest import free_port
from schedule_helpers import (cli, cron_far_from_now, events_of, json_lines, make_events, sent_files, spawn, stop,
                              wait_for, write_config)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
LEASE = "3"  # seconds; AGENTDIGEST_LEASE_SECONDS makes a crashed sender's claim expire quickly


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    now = datetime.now(timezone.utc)
    return make_events(tmp_path_factory.mktemp("events") / "events.duckdb", end=now + timedelta(days=2), days=20)


def daily(report_id: str = "daily", channels=("box",), **extra):
    return {"id": report_id, "period": "day", "timezone": "UTC", "schedule": cron_far_from_now(),
            "channels": list(channels), **extra}


def expected_period(config_path, report_id="daily") -> str:
    """The day a daily UTC report's pass sends now, worked out by hand from the schedule in the file.

    A day ends at midnight UTC and is due at the first fire at or after that; so the latest due day is
    the one before the last fire at or before now. The fire is 12 h from when the config was written
    (cron_far_from_now), so it cannot pass between this and the daemon's own pass, whatever the hour;
    one clock reading, compared with the schedule, keeps it right across midnight.
    """
    report = next(r for r in tomllib.loads(Path(config_path).read_text())["reports"] if r["id"] == report_id)
    minute, hour, *rest = report["schedule"].split()
    assert (rest, report["period"], report["timezone"]) == (["*", "*", "*"], "day", "UTC"), report
    now = datetime.now(timezone.utc)
    fire = now.replace(hour=int(hour), minute=int(minute), second=0, microsecond=0)
    if fire > now:
        fire -= timedelta(days=1)
    return (fire.date() - timedelta(days=1)).isoformat()


def start(config, log, **env):
    return spawn("schedule", "--config", str(config), "--log-format", "json", log=log, extra_env=env)


class StallingSMTP:
    """An aiosmtpd handler whose DATA can stall until released; accepted messages are recorded."""

    def __init__(self, stall_seconds: float = 0.0, forever: bool = False):
        self.stall_seconds, self.forever = stall_seconds, forever
        self.release = threading.Event()
        self.data_started = threading.Event()
        self.messages: list[bytes] = []
        self.abandoned: list[bytes] = []  # fully received, never answered: the sender was gone

    async def handle_DATA(self, server, session, envelope):
        self.data_started.set()
        content = envelope.original_content or b""
        if self.forever:
            self.abandoned.append(content)  # aiosmtpd cancels this handler when the sender's connection drops
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            return "451 4.4.2 sender went away"
        await asyncio.sleep(self.stall_seconds)
        self.messages.append(content)
        return f"250 OK queued as m{len(self.messages)}"


@pytest.fixture
def stalling_smtp():
    controllers = []

    def make(**kwargs):
        handler = StallingSMTP(**kwargs)
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        controller.start()
        controllers.append((controller, handler))
        return handler, f"smtp://127.0.0.1:{controller.port}"

    yield make
    for controller, handler in controllers:
        handler.release.set()
        controller.stop()


def mail_channel(url: str) -> dict:
    return {"mail": {"type": "email", "to": ["cto@example.com"], "from": "reports@example.com", "smtp_url": url,
                     "timeout": 120, "retry_budget": 0}}


# -- start, catch up, stop, restart -------------------------------------------------------------

def test_daemon_catches_up_one_period_stops_on_sigterm_and_restarts_without_resending(tmp_path, events):
    config = write_config(tmp_path, events=events, channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")}},
                          reports=[daily()])
    key = expected_period(config)
    log = tmp_path / "first.log"
    proc = start(config, log)
    wait_for(lambda: events_of(log, "sent", "daily"), what="the catch-up delivery", proc=proc, log=log)
    code, seconds = stop(proc, signal.SIGTERM)
    assert code == 0 and seconds < 10
    assert sent_files(tmp_path / "outbox") == {("daily", key): 1}

    log2 = tmp_path / "second.log"
    proc = start(config, log2)
    wait_for(lambda: events_of(log2, "skipped_sent", "daily"), what="the restart's catch-up", proc=proc, log=log2)
    code, seconds = stop(proc, signal.SIGINT)
    assert code == 0 and seconds < 10
    assert sent_files(tmp_path / "outbox") == {("daily", key): 1}

    for path in (log, log2):  # --log-format json: every line of the log is one JSON object
        entries = json_lines(path)
        assert entries and all("ts" in e and "level" in e and "message" in e for e in entries)
    assert [e["event"] for e in json_lines(log) if e.get("event") in ("start", "due", "sent", "stopped")] == \
        ["start", "due", "sent", "stopped"]
    ledger = Ledger(load_config(config).ledger.url)
    try:
        beats = ledger.heartbeats()
    finally:
        ledger.close()
    assert len(beats) == 2 and {b["info"]["state"] for b in beats} == {"stopped"}


def test_a_stop_that_comes_while_a_report_computes_sends_nothing_and_the_next_pass_sends_it(tmp_path, events,
                                                                                            monkeypatch):
    """Found in an operations audit: a SIGTERM (docker stop) that came while a report computed still started its
    delivery, which could outlast the 8 s stop deadline: the process then ended mid-send, its claim left "sending"
    for the next start to wait out. The stop is set from inside the computation here (a signal's timing cannot be
    pinned in a test): nothing is archived or sent, the run is recorded as interrupted, and the next pass sends
    the period once."""
    from agentdigest import runner
    from agentdigest.schedule import run_pass

    config_path = write_config(tmp_path, events=events, reports=[daily()],
                               channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")}})
    key = expected_period(config_path)
    config = load_config(config_path)
    stop = threading.Event()
    real = runner.compute

    def computing(*args, **kwargs):
        data = real(*args, **kwargs)
        stop.set()  # as the daemon's SIGTERM handler does
        return data

    monkeypatch.setattr(runner, "compute", computing)
    ledger = Ledger(config.ledger.url)
    try:
        first = run_pass(config, config.reports, datetime.now(timezone.utc), ledger=ledger, stop=stop)
        assert stop.is_set() and not sent_files(tmp_path / "outbox")
        assert not (tmp_path / "reports" / "daily" / key).exists()  # not archived either
        assert [(r.period.key, r.failed, r.deliveries) for r in first.runs] == [(key, False, [])]
        runs = [h for h in ledger.history("daily") if h["kind"] == "run"]
        assert [(r["period_key"], r["state"], r["trigger"]) for r in runs] == [(key, "interrupted", "due")]
        assert "shutting down" in runs[0]["error"]
        monkeypatch.setattr(runner, "compute", real)
        second = run_pass(config, config.reports, datetime.now(timezone.utc), ledger=ledger, stop=threading.Event())
    finally:
        ledger.close()
    assert [d.state for r in second.runs for d in r.deliveries] == ["sent"]
    assert sent_files(tmp_path / "outbox") == {("daily", key): 1}


def test_sigterm_lets_the_delivery_in_flight_finish(tmp_path, events, stalling_smtp):
    handler, url = stalling_smtp(stall_seconds=3)
    config = write_config(tmp_path, events=events, channels=mail_channel(url), reports=[daily(channels=["mail"])])
    log = tmp_path / "daemon.log"
    proc = start(config, log)
    wait_for(handler.data_started.is_set, what="the SMTP transaction", proc=proc, log=log)
    code, seconds = stop(proc, signal.SIGTERM)
    assert code == 0 and seconds < 10
    assert len(handler.messages) == 1
    ledger = Ledger(load_config(config).ledger.url)
    try:
        assert ledger.delivery_state("daily", expected_period(config), "mail", "cto@example.com") == "sent"
    finally:
        ledger.close()


def test_sigterm_with_a_hung_relay_still_exits_0_within_10_s(tmp_path, events, stalling_smtp):
    handler, url = stalling_smtp(forever=True)
    config = write_config(tmp_path, events=events, channels=mail_channel(url), reports=[daily(channels=["mail"])])
    log = tmp_path / "daemon.log"
    proc = start(config, log)
    wait_for(handler.data_started.is_set, what="the hung SMTP transaction", proc=proc, log=log)
    code, seconds = stop(proc, signal.SIGTERM)
    assert code == 0 and seconds < 10
    assert events_of(log, "abandoned") and events_of(log, "stopped")
    assert handler.messages == []


# -- crash and takeover -----------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_scheduler_is_taken_over_after_its_lease(tmp_path, events, stalling_smtp, sig):
    """SIGKILL, and SIGTERM with the relay hung past the stop's 8 s (the worker abandoned in its DATA, the process
    gone by os._exit): the claim left `sending` is taken over by the next start and the message accepted once."""
    handler, url = stalling_smtp(forever=True)
    config = write_config(tmp_path, events=events, channels=mail_channel(url), reports=[daily(channels=["mail"])])
    key = expected_period(config)
    log = tmp_path / "crashed.log"
    crashed = start(config, log, AGENTDIGEST_LEASE_SECONDS=LEASE)
    wait_for(handler.data_started.is_set, what="the stalled SMTP transaction", proc=crashed, log=log)
    crashed.send_signal(sig)
    assert crashed.wait(timeout=30) == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
    if sig == signal.SIGTERM:
        assert events_of(log, "abandoned") and events_of(log, "stopped")
    handler.forever = False  # the relay recovers
    handler.release.set()

    ledger = Ledger(load_config(config).ledger.url)
    try:
        row = ledger.delivery("daily", key, "mail", "cto@example.com")
        assert row["state"] == "sending" and f":{crashed.pid}" in row["owner"]

        log2 = tmp_path / "restarted.log"
        proc = start(config, log2, AGENTDIGEST_LEASE_SECONDS=LEASE)
        wait_for(lambda: handler.messages, what="the takeover delivery", proc=proc, log=log2)
        wait_for(lambda: events_of(log2, "sent", "daily"), what="the ledger write", proc=proc, log=log2)
        code, seconds = stop(proc, signal.SIGTERM)
        assert code == 0 and seconds < 10

        row = ledger.delivery("daily", key, "mail", "cto@example.com")
        assert (row["state"], row["takeovers"], row["attempts"], row["sends"]) == ("sent", 1, 2, 1)
        # On this host the dead process is seen at once; elsewhere (a container) its lease runs out first.
        assert ("took over the expired claim of" in row["note"] or "whose process had exited" in row["note"])
        assert f":{crashed.pid}" in row["note"]
    finally:
        ledger.close()
    # One message accepted; the one the crashed sender left behind carries the same Message-ID,
    # so a relay that delivered it anyway lets the mailbox deduplicate the pair.
    assert len(handler.messages) == 1 and len(handler.abandoned) == 1
    ids = {message_from_bytes(m)["Message-ID"] for m in handler.messages + handler.abandoned}
    assert len(ids) == 1


def test_a_claim_held_elsewhere_is_looked_at_again_when_its_lease_ends(tmp_path, events):
    config = write_config(tmp_path, events=events, channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")}},
                          reports=[daily()])
    key = expected_period(config)
    ledger = Ledger(load_config(config).ledger.url)
    try:
        # A sender that died just now, mid-delivery: its claim is live for another 30 s. (10 s was flaky: on a
        # loaded machine the claim could end before the daemon had started and computed, so it never saw it.)
        assert ledger.claim("daily", key, "box", owner="ghost:1", lease_seconds=30) is not None
        log = tmp_path / "daemon.log"
        proc = start(config, log, AGENTDIGEST_LEASE_SECONDS="10")
        wait_for(lambda: events_of(log, "sent", "daily"), what="the takeover", proc=proc, log=log)
        assert stop(proc)[0] == 0
        assert events_of(log, "claimed_elsewhere", "daily") and events_of(log, "recheck_planned", "daily")
        row = ledger.delivery("daily", key, "box")
        assert (row["state"], row["takeovers"]) == ("sent", 1) and "ghost:1" in row["note"]
    finally:
        ledger.close()
    assert sent_files(tmp_path / "outbox") == {("daily", key): 1}


def test_a_failed_pass_is_retried_without_waiting_for_the_next_fire(tmp_path, events):
    """Found in a regression check: with the source down at start the daemon failed the period and only
    a SIGHUP or the next cron fire (a day or a week later) tried again. It now retries with a doubling
    wait (5 min at first; 1 s here through AGENTDIGEST_RETRY_SECONDS) until a pass succeeds."""
    import shutil

    source = tmp_path / "events.duckdb"  # not there yet: the source is down
    config = write_config(tmp_path, events=source, channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")}},
                          reports=[daily()])
    key = expected_period(config)
    log = tmp_path / "daemon.log"
    proc = start(config, log, AGENTDIGEST_RETRY_SECONDS="1")
    wait_for(lambda: len(events_of(log, "retry_planned", "daily")) >= 2, what="two planned retries", proc=proc, log=log)
    shutil.copyfile(events, source)
    wait_for(lambda: events_of(log, "sent", "daily"), what="the retried delivery", proc=proc, log=log)
    assert stop(proc)[0] == 0
    waits = [e["message"] for e in events_of(log, "retry_planned", "daily")]
    assert "trying again in 1 s" in waits[0] and "trying again in 2 s" in waits[1]  # doubling
    assert not events_of(log, "fired", "daily")  # no cron fire helped
    assert sent_files(tmp_path / "outbox") == {("daily", key): 1}


def test_no_late_alarm_for_the_period_the_catch_up_is_sending(tmp_path, events):
    """Found in a regression check: a scheduler started after the grace time sent the "late" alarm about
    3 s before its own catch-up delivered the period."""
    config = write_config(tmp_path, events=events, channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")},
                                                            "oncall": {"type": "outbox", "path": str(tmp_path / "alarms")}},
                          reports=[daily()], alarms={"channel": "oncall", "grace_minutes": 1})
    key = expected_period(config)
    log = tmp_path / "daemon.log"
    proc = start(config, log)
    wait_for(lambda: events_of(log, "sent", "daily"), what="the catch-up delivery", proc=proc, log=log)
    assert stop(proc)[0] == 0
    assert sent_files(tmp_path / "outbox") == {("daily", key): 1}
    assert not list((tmp_path / "alarms").rglob("*.eml")) and not events_of(log, "alarm_sent")


# -- several daemons and a run --due, one ledger ------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_daemons_and_run_due_together_send_once(tmp_path, events, backend, request):
    url = f"sqlite:///{tmp_path / 'ledger.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    config = write_config(tmp_path, events=events, ledger_url=url,
                          channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")}},
                          reports=[daily("a"), daily("b", catch_up=1)])
    logs = [tmp_path / f"d{i}.log" for i in range(2)]
    procs = [start(config, log) for log in logs]
    once = cli("run", "--due", "--config", str(config))
    assert once.returncode == 0, once.stderr
    for proc, log in zip(procs, logs):
        for rid in ("a", "b"):
            wait_for(lambda: events_of(log, "sent", rid) or events_of(log, "skipped_sent", rid)
                     or events_of(log, "claimed_elsewhere", rid), what=f"{rid} decided", proc=proc, log=log)
    for proc in procs:
        assert stop(proc)[0] == 0
    key_a, key_b = expected_period(config, "a"), expected_period(config, "b")
    previous_b = (datetime.fromisoformat(key_b) - timedelta(days=1)).date().isoformat()
    assert sent_files(tmp_path / "outbox") == {("a", key_a): 1, ("b", key_b): 1, ("b", previous_b): 1}


# -- a cron fire, in-process with a pinned clock ------------------------------------------------

def test_a_fire_at_the_cron_time_runs_the_new_period_once(tmp_path):
    import time_machine

    from agentdigest.daemon import Daemon

    events = make_events(tmp_path / "events.duckdb", end=datetime(2026, 12, 2, tzinfo=timezone.utc), days=21)
    config = write_config(tmp_path, events=events, channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")}},
                          reports=[{"id": "weekly", "period": "week", "timezone": "Europe/Berlin",
                                    "schedule": "0 9 * * mon", "channels": ["box"]}])
    daemon = Daemon(config)
    daemon.scheduler.start(paused=True)  # the jobs as the running scheduler holds them; no fire of its own
    daemon._sync_jobs()
    try:
        job = daemon.scheduler.get_job("report:weekly")
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, None)
        with time_machine.travel(datetime(2026, 11, 30, 8, 0, 1, tzinfo=timezone.utc)):  # 09:00:01 Berlin
            daemon.fire("weekly")
            daemon.fire("weekly")  # a second fire while the first pass runs coalesces into it
            wait_for(lambda: sent_files(tmp_path / "outbox"), what="the fired delivery")
            daemon.fire("weekly")
            wait_for(lambda: not daemon.workers["weekly"].busy and not daemon.workers["weekly"].pending.is_set(),
                     what="the worker to go idle")
    finally:
        daemon.stop.set()
        daemon.scheduler.shutdown(wait=False)
        daemon.workers["weekly"].thread.join(timeout=30)
        daemon.ledger.close()
    assert sent_files(tmp_path / "outbox") == {("weekly", "2026-W48"): 1}


# -- SIGHUP -----------------------------------------------------------------------------------

def test_sighup_reloads_the_config_and_keeps_running_on_a_bad_one(tmp_path, events):
    box = {"box": {"type": "outbox", "path": str(tmp_path / "outbox")}}
    config = write_config(tmp_path, events=events, channels=box, reports=[daily("a")])
    log = tmp_path / "daemon.log"
    proc = start(config, log)
    wait_for(lambda: events_of(log, "sent", "a"), what="report a", proc=proc, log=log)

    good = config.read_text()
    config.write_text(good + "\n[[reports]]\nbroken = \n")
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: events_of(log, "reload_failed"), what="the refused reload", proc=proc, log=log)

    write_config(tmp_path, events=events, channels=box, reports=[daily("a"), daily("b")])
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: events_of(log, "sent", "b"), what="report b after the reload", proc=proc, log=log)
    code, seconds = stop(proc)
    assert code == 0 and seconds < 10
    assert sorted(rid for rid, _ in sent_files(tmp_path / "outbox")) == ["a", "b"]
    assert sum(sent_files(tmp_path / "outbox").values()) == 2


def test_a_sighup_keeps_a_failing_reports_backoff_unless_its_config_changed(tmp_path, events):
    """Found in an operations audit: every SIGHUP (logrotate sends them) ran a failing report's pass at
    once, hitting a broken channel with no backoff. An unchanged report now keeps its retry wait; a
    changed one (the operator fixed it) is tried at once."""
    import shutil

    source = tmp_path / "events.duckdb"  # missing: every pass fails
    box = {"box": {"type": "outbox", "path": str(tmp_path / "outbox")}}
    unchanged, probe = daily(), daily("probe")  # the same dicts on every write: the same schedule
    config = write_config(tmp_path, events=source, channels=box, reports=[unchanged, probe])
    log = tmp_path / "daemon.log"
    proc = start(config, log, AGENTDIGEST_RETRY_SECONDS="600")
    for rid in ("daily", "probe"):
        wait_for(lambda: events_of(log, "retry_planned", rid), what=f"{rid}'s planned retry", proc=proc, log=log)
    # The reload changes only the probe report: it is tried again at once, the unchanged one keeps its wait.
    # The probe's second failed pass is the positive signal that the reload's passes have run.
    write_config(tmp_path, events=source, channels=box, reports=[unchanged, {**probe, "grace_minutes": 30}])
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: events_of(log, "reloaded"), what="the reload", proc=proc, log=log)
    wait_for(lambda: len(events_of(log, "retry_planned", "probe")) == 2, what="the changed report's pass after the "
             "reload", proc=proc, log=log)
    assert len(events_of(log, "due", "probe")) == 2
    assert len(events_of(log, "retry_planned", "daily")) == 1 and len(events_of(log, "due", "daily")) == 1

    shutil.copyfile(events, source)
    write_config(tmp_path, events=source, channels=box, reports=[daily(grace_minutes=30)])  # the operator's fix
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: events_of(log, "sent", "daily"), what="the pass after a changed config", proc=proc, log=log)
    assert stop(proc)[0] == 0
    assert sent_files(tmp_path / "outbox") == {("daily", expected_period(config)): 1}


def test_a_pass_whose_every_failure_is_permanent_is_not_retried_until_its_config_changes(tmp_path, events,
                                                                                         smtp_server, tls_cert):
    """Found in a delivery audit: a recipient refused with 550 (no such mailbox) had the failed pass retried
    every hour for the rest of the period, the same refusal each time, while the other recipient was done.
    Such a pass now plans no retry and says so once; a transient failure (451) keeps its backoff; the period
    stays late; a reload that changes the report's channel tries it at once."""
    server = smtp_server(rcpt={"gone@example.com": "550 5.1.1 no such user", "busy@example.com": "451 4.2.1 busy"})

    def mail(*to: str) -> dict:
        return {"type": "email", "to": list(to), "from": "reports@example.com", "smtp_url": server.url(),
                "ca_file": str(tls_cert[0]), "retry_budget": 0, "timeout": 10}

    reports = [daily("refused", ["refused"], grace_minutes=1), daily("deferred", ["deferred"])]
    config = write_config(tmp_path, events=events, reports=reports, channels={
        "refused": mail("cto@example.com", "gone@example.com"), "deferred": mail("busy@example.com")})
    key = expected_period(config, "refused")
    log = tmp_path / "daemon.log"
    proc = start(config, log, AGENTDIGEST_RETRY_SECONDS="1")
    wait_for(lambda: events_of(log, "retry_not_planned", "refused") or events_of(log, "retry_planned", "refused"),
             what="the refused report's decision", proc=proc, log=log)
    # Two more passes of the deferred report (1 s apart at least): time for a retry of the refused one.
    passes = len(events_of(log, "due", "deferred"))
    wait_for(lambda: len(events_of(log, "due", "deferred")) >= passes + 2, what="the deferred report's retries",
             proc=proc, log=log)
    assert not events_of(log, "retry_planned", "refused") and len(events_of(log, "due", "refused")) == 1
    [decided] = events_of(log, "retry_not_planned", "refused")
    assert decided["level"] == "warning" and decided["period"] == key
    assert "refused gone@example.com" in decided["message"] and f"run refused --period {key}" in decided["message"]
    assert len(events_of(log, "retry_planned", "deferred")) >= 2  # transient: the backoff as before
    missed = cli("check", "--missed", "--config", str(config))  # still late: `check --missed` and the alarms say so
    assert missed.returncode == 1 and "refused" in missed.stdout

    # The operator replaces the address: the reload tries the report at once, sending to the new one only.
    write_config(tmp_path, events=events, reports=reports, channels={
        "refused": mail("cto@example.com", "new@example.com"), "deferred": mail("busy@example.com")})
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: any(e.get("recipient") == "new@example.com" for e in events_of(log, "sent", "refused")),
             what="the pass after the changed config", proc=proc, log=log)
    assert stop(proc)[0] == 0
    assert sorted(rcpt for _, rcpts, _ in server.messages for rcpt in rcpts) == ["cto@example.com", "new@example.com"]



def test_a_retry_of_a_mixed_pass_skips_the_recipients_refused_for_good(tmp_path, events, smtp_server, tls_cert):
    """Found in a delivery audit: a pass with one recipient refused for good (550) and one deferred (451) was
    retried, rightly, but every retry sent to the refused one too, for the same 550 each time. A retry of the
    scheduler's own backoff now tries only the targets whose last failure in the ledger was transient; the
    refused one stays failed in the ledger. A pass the scheduler did not plan as a retry (here a SIGHUP that
    changed the report; a restart, the next fire, `run --period` alike) tries every target again."""
    server = smtp_server(rcpt={"gone@example.com": "550 5.1.1 no such user",
                               "busy@example.com": ["451 4.2.1 busy", "451 4.2.1 busy"]})  # then accepted
    mail = {"type": "email", "to": ["gone@example.com", "busy@example.com"], "from": "reports@example.com",
            "smtp_url": server.url(), "ca_file": str(tls_cert[0]), "retry_budget": 0, "timeout": 10}
    report = daily("mixed", ["mail"])
    config = write_config(tmp_path, events=events, reports=[report], channels={"mail": mail})
    key = expected_period(config, "mixed")
    log = tmp_path / "daemon.log"
    proc = start(config, log, AGENTDIGEST_RETRY_SECONDS="1")
    wait_for(lambda: events_of(log, "retry_not_planned", "mixed"), what="the pass that delivered the deferred one",
             proc=proc, log=log)
    assert [e["recipient"] for e in events_of(log, "sent", "mixed")] == ["busy@example.com"]
    assert len(events_of(log, "due", "mixed")) == 3 and len(events_of(log, "retry_planned", "mixed")) == 2
    assert server.handler.rcpts.count("gone@example.com") == 1  # one RCPT across the pass and its two retries
    ledger = Ledger(load_config(config).ledger.url)
    try:
        gone = ledger.delivery("mixed", key, "mail", "gone@example.com")
        assert (gone["state"], gone["retryable"], gone["attempts"]) == ("failed", False, 1) and "550" in gone["error"]
        assert ledger.delivery_state("mixed", key, "mail", "busy@example.com") == "sent"
    finally:
        ledger.close()

    write_config(tmp_path, events=events, reports=[{**report, "grace_minutes": 30}], channels={"mail": mail})
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: len(events_of(log, "retry_not_planned", "mixed")) == 2, what="the pass after the changed config",
             proc=proc, log=log)
    assert stop(proc)[0] == 0
    assert server.handler.rcpts.count("gone@example.com") == 2  # a pass not planned as a retry tries it again
    assert [rcpts for _, rcpts, _ in server.messages] == [["busy@example.com"]]


def test_passes_refused_for_good_do_not_lengthen_a_later_backoff(tmp_path, events, smtp_server, tls_cert):
    """Found in a review: a pass refused for good, which plans no retry, still counted towards the backoff, so
    the first retry of a later transient failure waited 2 ** (such passes) times the first wait (4 s here after
    two of them, for 1 s). The backoff doubles only along retries in a row; a pass that is not retried ends it."""
    server = smtp_server(rcpt={"cto@example.com": ["550 5.1.1 no such user", "550 5.1.1 no such user",
                                                   "451 4.2.1 busy"]})  # then accepted
    mail = {"type": "email", "to": ["cto@example.com"], "from": "reports@example.com", "smtp_url": server.url(),
            "ca_file": str(tls_cert[0]), "retry_budget": 0, "timeout": 10}
    report = daily("flaky", ["mail"])
    config = write_config(tmp_path, events=events, reports=[report], channels={"mail": mail})
    log = tmp_path / "daemon.log"
    proc = start(config, log, AGENTDIGEST_RETRY_SECONDS="1")
    for grace in (30, 31):  # a SIGHUP that changes the report: a new pass, refused again, then deferred
        wait_for(lambda: len(events_of(log, "due", "flaky")) == grace - 29 and decided(log, "flaky"),
                 what="the pass's decision", proc=proc, log=log)
        write_config(tmp_path, events=events, reports=[{**report, "grace_minutes": grace}], channels={"mail": mail})
        proc.send_signal(signal.SIGHUP)
    wait_for(lambda: events_of(log, "sent", "flaky"), what="the retried delivery", proc=proc, log=log)
    assert stop(proc)[0] == 0
    assert len(events_of(log, "retry_not_planned", "flaky")) == 2
    [planned] = events_of(log, "retry_planned", "flaky")
    assert "trying again in 1 s" in planned["message"]
    assert server.handler.rcpts.count("cto@example.com") == 4


def decided(log: Path, report_id: str) -> bool:
    """Whether the report's last pass has decided (a retry planned or not, or a delivery)."""
    events = ("retry_planned", "retry_not_planned", "sent")
    return sum(len(events_of(log, e, report_id)) for e in events) == len(events_of(log, "due", report_id))

def _open_files(prefix: Path) -> list[str]:
    """The files starting with ``prefix`` that this process holds open (a ledger and its -wal, -shm)."""
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("needs /proc to see this process's open files")
    held = []
    for fd in fds.iterdir():
        try:
            held.append(str(fd.readlink()))
        except OSError:  # closed while listed
            continue
    return sorted(path for path in held if path.startswith(str(prefix)))


def test_a_sighup_that_changes_the_ledger_closes_the_old_one_once_no_pass_uses_it(tmp_path, events):
    """A reload that changed [ledger] url left the old ledger open: its connections (a server's, or a SQLite
    file's handles) stayed for as long as the scheduler ran, one more set for each such reload. The old one is
    closed once the new one is in use, and not under a pass or a heartbeat that is still recording in it."""
    from agentdigest.daemon import Daemon

    box = {"box": {"type": "outbox", "path": str(tmp_path / "outbox")}}
    old_db, new_db = tmp_path / "old.db", tmp_path / "new.db"
    config = write_config(tmp_path, events=events, channels=box, reports=[daily()], ledger_url=f"sqlite:///{old_db}")
    daemon = Daemon(config)
    daemon.stop.set()  # the reload's workers exit at once: no pass of their own
    try:
        daemon.tick()  # a heartbeat: the first ledger is in use
        assert _open_files(old_db)
        write_config(tmp_path, events=events, channels=box, reports=[daily()], ledger_url=f"sqlite:///{new_db}")
        daemon.reload()  # no pass running: the first ledger is closed at once
        daemon.tick()
        assert _open_files(new_db) and not _open_files(old_db)
        with daemon.ledger_in_use() as held:  # a pass still running with the second ledger
            write_config(tmp_path, events=events, channels=box, reports=[daily()], ledger_url=f"sqlite:///{old_db}")
            daemon.reload()
            assert daemon.ledger is not held and daemon.ledger.url.endswith("old.db")
            held.heartbeat("a pass", {"state": "running"})  # still open for the pass that holds it
            assert _open_files(new_db)
        assert not _open_files(new_db)
    finally:
        daemon.scheduler.shutdown(wait=False) if daemon.scheduler.running else None
        for worker in daemon.workers.values():
            worker.thread.join(timeout=30)
        daemon.ledger.close()


def test_a_sighup_to_a_ledger_that_cannot_be_opened_keeps_the_running_config_and_ledger(tmp_path, events, caplog):
    """Found in a review: a reload whose new [ledger] url could not be opened (a server down, a file where its
    folder should be) raised out of the SIGHUP handler and stopped the scheduler (exit 1). It is a refused
    reload, as an invalid config is: said, and the running config and ledger kept."""
    from agentdigest.daemon import Daemon

    box = {"box": {"type": "outbox", "path": str(tmp_path / "outbox")}}
    good = tmp_path / "ledger.db"
    config = write_config(tmp_path, events=events, channels=box, reports=[daily()], ledger_url=f"sqlite:///{good}")
    daemon = Daemon(config)
    daemon.stop.set()
    try:
        before, ledger = daemon.config, daemon.ledger
        (tmp_path / "a file").write_text("where the new ledger's folder should be")
        write_config(tmp_path, events=events, channels=box, reports=[daily("other")],
                     ledger_url=f"sqlite:///{tmp_path / 'a file' / 'ledger.db'}")
        with caplog.at_level(logging.ERROR, logger="agentdigest.schedule"):
            daemon.reload()
        assert daemon.config is before and daemon.ledger is ledger
        assert any("cannot be opened" in r.getMessage() for r in caplog.records)
        daemon.tick()  # the running ledger still works
        assert _open_files(good)
    finally:
        daemon.scheduler.shutdown(wait=False) if daemon.scheduler.running else None
        for worker in daemon.workers.values():
            worker.thread.join(timeout=30)
        daemon.ledger.close()


# -- the ledger file deleted or replaced under the scheduler ---------------------------------------

@pytest.mark.parametrize("accident", ["deleted", "replaced by a new ledger", "replaced by a backup"])
def test_a_ledger_deleted_under_the_scheduler_is_opened_again_and_nothing_is_missed_or_sent_twice(tmp_path, events,
                                                                                                  accident):
    """Found in a crash audit: with its SQLite ledger deleted, the scheduler failed every use of it until
    someone restarted it, missing every report meanwhile. It now opens the ledger at its path again (a new
    one when it is gone, as a fresh start does), says so once, and every report makes its catch-up pass:
    a period sent before is learnt from the archive's send log, not sent again; one still due is sent once.
    A file with records from before (a restored backup) is not taken over: that stays a restart's choice."""
    import sqlite3

    stuck = tmp_path / "stuck"
    stuck.write_text("a file where b's outbox folder should be: its deliveries fail until it goes")
    config = write_config(tmp_path, events=events, reports=[daily("a", ["box"]), daily("b", ["late"])],
                          channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")},
                                    "late": {"type": "outbox", "path": str(stuck)}})
    key, ledger = expected_period(config, "a"), tmp_path / "ledger.db"
    log = tmp_path / "daemon.log"
    proc = start(config, log, AGENTDIGEST_RETRY_SECONDS="1")
    try:
        wait_for(lambda: events_of(log, "sent", "a") and events_of(log, "retry_planned", "b"),
                 what="a sent and b failing", proc=proc, log=log)
        backup = tmp_path / "backup.db"
        with sqlite3.connect(ledger) as live, sqlite3.connect(backup) as copy:
            live.backup(copy)
        for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):
            (tmp_path / name).unlink(missing_ok=True)
        if accident == "replaced by a new ledger":  # another process (a run, a second scheduler) made it
            Ledger(f"sqlite:///{ledger}").close()
        elif accident == "replaced by a backup":
            backup.rename(ledger)
        stuck.unlink()  # b's channel works again
        if accident == "replaced by a backup":
            wait_for(lambda: [e for e in events_of(log, "error", "b") if "is not taken over" in e.get("error", "")],
                     what="the backup refused", proc=proc, log=log)
        else:
            wait_for(lambda: events_of(log, "sent", "b"), what="b sent with the new ledger", proc=proc, log=log)
            wait_for(lambda: [e for e in events_of(log, "skipped_sent", "a") if "already sent" in e["message"]],
                     what="a's pass with the new ledger", proc=proc, log=log)
    finally:
        assert stop(proc)[0] == 0
    reopened = events_of(log, "ledger_reopened")
    assert sent_files(tmp_path / "outbox") == {("a", key): 1}  # never again
    if accident == "replaced by a backup":
        assert not reopened and not sent_files(stuck)
        return
    assert sent_files(stuck) == {("b", key): 1}
    (warning,) = reopened
    assert warning["level"] == "warning" and str(ledger) in warning["message"]
    assert ("was deleted" if accident == "deleted" else "was replaced") in warning["message"]
    assert "forgotten and not retried" in warning["message"]
    now = Ledger(f"sqlite:///{ledger}")
    try:
        a, b = now.delivery("a", key, "box"), now.delivery("b", key, "late")
    finally:
        now.close()
    assert a["state"] == "sent" and "restored from the archive" in a["note"]
    assert b["state"] == "sent" and b["sends"] == 1


@pytest.mark.parametrize("kind", ["slack", "slack-bot", "email"])
def test_a_stop_during_a_retry_wait_records_the_delivery_failed_and_the_next_start_sends_it(tmp_path, events, kind,
                                                                                            httpserver, smtp_server,
                                                                                            tls_cert):
    """Found in an operator audit: a scheduler stopped (SIGTERM) while a delivery waited to retry gave up waiting for
    it after its stop deadline ("abandoned") and left the row `sending` until its claim expired (about 11 min for
    Slack, 20 for email), where `run` stopped by Ctrl-C records it failed at once. The wait now ends at the stop: the
    row is failed (transient, its claim released), the run interrupted, and the next start sends it at once. For
    email, the recipient that got it on the first attempt stays sent, and so does a Slack bot's message posted before
    the wait to retry its PDF's upload: only what did not go is sent again."""
    retry = {"retry_budget": 300, "retry_initial": 60, "retry_max_wait": 60}  # a minute's wait after the failure
    if kind == "slack":
        httpserver.expect_oneshot_request("/hook").respond_with_data("busy", status=503)
        httpserver.expect_request("/hook").respond_with_data("ok")  # after the one-shot 503
        channel = {"type": "slack", "webhook_url": httpserver.url_for("/hook"), **retry}
        targets = {"": ("failed", "sent")}
    elif kind == "slack-bot":
        def ok(**data):
            return json.dumps({"ok": True, **data})
        api = "application/json"
        httpserver.expect_request("/api/chat.postMessage").respond_with_data(ok(channel="C0AGENTS", ts="1.2"),
                                                                             content_type=api)
        httpserver.expect_oneshot_request("/api/files.getUploadURLExternal").respond_with_data("busy", status=503)
        httpserver.expect_request("/api/files.getUploadURLExternal").respond_with_data(
            ok(upload_url=httpserver.url_for("/upload/F1"), file_id="F1"), content_type=api)
        httpserver.expect_request("/upload/F1").respond_with_data("OK")
        httpserver.expect_request("/api/files.completeUploadExternal").respond_with_data(ok(files=[{"id": "F1"}]),
                                                                                         content_type=api)
        channel = {"type": "slack", "bot_token": "xoxb-PLANTED", "channel": "C0AGENTS",
                   "api_url": httpserver.url_for("/api/"), **retry}
        targets = {"": ("sent", "sent"), "file:report.pdf": ("failed", "sent")}
    else:
        server = smtp_server(rcpt={"late@example.com": ["451 4.2.1 busy"]})  # then accepted
        channel = {"type": "email", "to": ["cto@example.com", "late@example.com"], "from": "reports@example.com",
                   "smtp_url": server.url(), "ca_file": str(tls_cert[0]), "timeout": 10, **retry}
        targets = {"cto@example.com": ("sent", "sent"), "late@example.com": ("failed", "sent")}
    config = write_config(tmp_path, events=events, channels={"out": channel}, reports=[daily(channels=["out"])])
    key = expected_period(config)
    log = tmp_path / "daemon.log"
    proc = start(config, log)
    wait_for(lambda: [e for e in json_lines(log) if "retrying for up to 300s" in e.get("message", "")],
             what="the wait to retry", proc=proc, log=log)
    code, seconds = stop(proc, signal.SIGTERM)
    assert code == 0 and seconds < 10
    assert not events_of(log, "abandoned") and events_of(log, "stopped")
    assert "interrupted by SIGTERM during a delivery's wait to retry" in events_of(log, "stopping", "daily")[-1]["message"]
    ledger = Ledger(load_config(config).ledger.url)
    try:
        rows = {t: ledger.delivery("daily", key, "out", t) for t in targets}
        assert {t: r["state"] for t, r in rows.items()} == {t: states[0] for t, states in targets.items()}
        for row in rows.values():
            assert row["lease_until"] is None
            if row["state"] == "failed":
                assert row["retryable"] is True and row["attempts"] == 1
                assert row["error"].startswith("interrupted by SIGTERM while delivering")
        assert [r["state"] for r in ledger.history("daily") if r["kind"] == "run"] == ["interrupted"]

        log2 = tmp_path / "restarted.log"
        proc = start(config, log2)
        wait_for(lambda: len(events_of(log2, "sent", "daily")) == sum(s == ("failed", "sent") for s in targets.values()),
                 what="the delivery sent again", proc=proc, log=log2)
        assert stop(proc)[0] == 0
        rows = {t: ledger.delivery("daily", key, "out", t) for t in targets}
        assert {t: r["state"] for t, r in rows.items()} == {t: states[1] for t, states in targets.items()}
        assert not any(r["takeovers"] for r in rows.values())  # nothing left to take over
    finally:
        ledger.close()
    if kind == "email":
        assert [sorted(rcpts) for _, rcpts, _ in server.messages] == [["cto@example.com"], ["late@example.com"]]
    elif kind == "slack-bot":
        assert [r.path for r, _ in httpserver.log].count("/api/chat.postMessage") == 1  # posted once
    else:
        assert [response.status_code for _, response in httpserver.log] == [503, 200]


def test_a_scheduler_stopped_while_another_process_holds_the_period_stops_at_once(tmp_path, events):
    """Found in a CI run: a scheduler stopped (SIGTERM) while it waited for another process's delivery of the period
    (the archive's period lock) went on waiting, its stop unheeded, until it gave up on the worker ("abandoned", 8 s)
    and left its run open. The wait now ends at the stop: the run is recorded interrupted, nothing is sent, and the
    next start sends the period once the holder is gone."""
    from agentdigest.archive import period_lock

    config = write_config(tmp_path, events=events, channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")}},
                          reports=[daily()])
    key = expected_period(config)
    log = tmp_path / "daemon.log"
    with period_lock(load_config(config).archive.path, "daily", key):  # another process's delivery, as it looks
        proc = start(config, log)
        wait_for(lambda: [e for e in json_lines(log) if "being delivered by another process" in e.get("message", "")],
                 what="the wait for the period's holder", proc=proc, log=log)
        code, _ = stop(proc, signal.SIGTERM)
    assert code == 0
    assert not events_of(log, "abandoned") and events_of(log, "stopped")
    assert ("interrupted by SIGTERM during the wait for another process's delivery of the period"
            in events_of(log, "stopping", "daily")[-1]["message"])
    assert not events_of(log, "sent") and not sent_files(tmp_path / "outbox")
    ledger = Ledger(load_config(config).ledger.url)
    try:
        assert [r["state"] for r in ledger.history("daily") if r["kind"] == "run"] == ["interrupted"]
    finally:
        ledger.close()
    log2 = tmp_path / "restarted.log"
    proc = start(config, log2)
    wait_for(lambda: events_of(log2, "sent", "daily"), what="the period sent after the restart", proc=proc, log=log2)
    assert stop(proc)[0] == 0
    assert sent_files(tmp_path / "outbox") == {("daily", key): 1}


def test_a_stopped_scheduler_is_gone_within_10_s_whatever_still_runs(tmp_path, events):
    """README promises a stopped scheduler exits 0 within 10 s (a container's grace period before SIGKILL). Found in
    a CI run: one was still running 30 s after SIGTERM. Here its last heartbeat waits on a SQLite ledger that another
    process keeps locked (its busy timeout is 30 s): at 9.5 s it says where its threads were and exits 0."""
    import sqlite3

    config = write_config(tmp_path, events=events, channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")}},
                          reports=[daily()])
    log = tmp_path / "daemon.log"
    proc = start(config, log)
    wait_for(lambda: events_of(log, "sent", "daily"), what="the catch-up delivery", proc=proc, log=log)
    url = load_config(config).ledger.url
    assert url.startswith("sqlite:///"), url
    other = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process writing, for longer than the stop may take
        code, seconds = stop(proc, signal.SIGTERM, timeout=25)
    finally:
        other.close()
    assert code == 0 and seconds < 20  # not the 30 s the heartbeat would wait (the exact 9.5 s is the message's)
    overdue = events_of(log, "stop_overdue")
    assert len(overdue) == 1 and not events_of(log, "stopped")
    assert "still running 9.5 s after the stop; exiting now (threads: " in overdue[0]["message"]
    assert "MainThread at ledger" in overdue[0]["message"]  # the last heartbeat, waiting for the ledger
    assert sent_files(tmp_path / "outbox") == {("daily", expected_period(config)): 1}


def test_the_scheduler_prunes_heartbeats_silent_for_30_days_at_its_first_heartbeat_then_daily(tmp_path, events):
    """Each scheduler process ever started kept its heartbeat row for ever (an operator review): a scheduler deletes
    those not written for 30 days at its first heartbeat, and again a day later, not at every heartbeat."""
    from agentdigest.daemon import Daemon
    from agentdigest.ledger_schema import heartbeats

    box = {"box": {"type": "outbox", "path": str(tmp_path / "outbox")}}
    config = write_config(tmp_path, events=events, channels=box, reports=[daily()])
    now = datetime.now(timezone.utc).replace(tzinfo=None)

    def beat(owner: str, days: float) -> None:
        daemon.ledger.heartbeat(owner, {"state": "stopped"})
        with daemon.ledger.engine.begin() as conn:
            conn.execute(heartbeats.update().where(heartbeats.c.owner == owner).values(
                updated_at=now - timedelta(days=days)))

    daemon = Daemon(config)
    daemon.stop.set()  # no worker passes: the heartbeat alone
    try:
        beat("gone-host:11:aaaaaa", 31)
        beat("other-host:12:bbbbbb", 29)
        daemon.tick()
        assert {b["owner"] for b in daemon.ledger.heartbeats()} == {"other-host:12:bbbbbb", daemon.owner}
        beat("gone-host:13:cccccc", 45)
        daemon.tick()  # the next heartbeat, 30 s later: no pruning until a day has passed
        assert "gone-host:13:cccccc" in {b["owner"] for b in daemon.ledger.heartbeats()}
        daemon.heartbeat.pruned_at -= 86400
        daemon.tick()
        assert {b["owner"] for b in daemon.ledger.heartbeats()} == {"other-host:12:bbbbbb", daemon.owner}
    finally:
        daemon.ledger.close()


def test_the_scheduler_removes_the_lock_files_left_of_periods_sent_at_its_first_heartbeat_then_daily(tmp_path, events):
    """<archive>/.locks kept one empty file per report and period ever run (an operations review). A run now removes
    its finished period's; those that earlier versions left are removed by the scheduler, each while it holds it:
    a period sent, or one before the catch-up window that was never sent (no pass runs it again: found in a later
    review, a failed period's file stayed for ever), not one still to come, nor one whose key is no day, nor one
    another run holds now. A report no longer in the config loses its lock files and its empty folders."""
    import fcntl

    from agentdigest.daemon import Daemon

    box = tmp_path / "outbox"
    config = write_config(tmp_path, events=events, channels={"box": {"type": "outbox", "path": str(box)}},
                          reports=[daily(catch_up=1)])
    result = cli("run", "--due", "--config", str(config))
    assert result.returncode == 0, result.stderr
    locks = tmp_path / "reports" / ".locks" / "daily"
    assert list(locks.iterdir()) == []  # the run removed its own
    first, second = sorted(key for _, key in sent_files(box))
    unsent = (datetime.fromisoformat(first) - timedelta(days=5)).date().isoformat()  # before the window, never sent
    to_come = (datetime.fromisoformat(second) + timedelta(days=1)).date().isoformat()  # not due yet
    for key in (first, second, unsent, to_come, "not-a-day"):
        (locks / f"{key}.lock").touch()  # as versions before this one left them
    removed = tmp_path / "reports" / ".locks" / "taken-out"  # a report since taken out of the config
    removed.mkdir()
    (removed / f"{first}.lock").touch()
    (tmp_path / "reports" / "taken-out").mkdir()
    held = open(locks / f"{second}.lock", "r+b")  # noqa: SIM115 - a run of that period holding it now
    fcntl.flock(held, fcntl.LOCK_EX)
    daemon = Daemon(config)
    daemon.stop.set()  # no worker passes: the heartbeat alone
    try:
        daemon.tick()
        assert sorted(p.name for p in locks.iterdir()) == sorted([f"{second}.lock", f"{to_come}.lock", "not-a-day.lock"])
        assert not removed.exists() and not (tmp_path / "reports" / "taken-out").exists()
        fcntl.flock(held, fcntl.LOCK_UN)
        daemon.tick()  # 30 s later: not swept again before a day has passed
        assert (locks / f"{second}.lock").exists()
        daemon.heartbeat.pruned_at -= 86400
        daemon.tick()
        assert sorted(p.name for p in locks.iterdir()) == sorted([f"{to_come}.lock", "not-a-day.lock"])
    finally:
        held.close()
        daemon.ledger.close()
