"""The missed-report alarm sent once: per recipient of an email alarm channel, across a ledger reopened, and
across every pass over a period whose recipient is refused for good.

Most reports here have no source, so every pass fails and raises a ``failed`` alarm (and, past the grace
time, a ``late`` one) without computing anything; the refused recipient's report is computed from real
DuckDB events. Alarms go to a real aiosmtpd server (STARTTLS, AUTH) or to an outbox; the ledger is a real
SQLite file; the scheduler is the real daemon, driven in-process.
"""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email.policy import default

import pytest
import time_machine
from rich.console import Console

from agentdigest.config import load_config
from agentdigest.ledger import Ledger
from agentdigest.schedule import run_due
from schedule_helpers import make_events, utc, write_config

WEEKLY = {"id": "weekly", "period": "week", "timezone": "America/New_York", "schedule": "0 9 * * mon",
          "channels": ["box"]}  # W48 is due 2026-11-30 14:00Z


def due_run(config_path, now: str) -> tuple[int, str]:
    config = load_config(config_path)
    buffer = io.StringIO()
    code = run_due(config, list(config.reports), now=utc(now), console=Console(file=buffer, width=200))
    return code, buffer.getvalue()


def alarm_rows(config_path, period_key: str = "2026-W48") -> dict[tuple[str, str], dict]:
    ledger = Ledger(load_config(config_path).ledger.url)
    try:
        rows = ledger.deliveries("weekly", period_key)
    finally:
        ledger.close()
    return {(r["channel"], r["recipient"]): r for r in rows if r["kind"] == "alarm"}


@pytest.mark.parametrize("answer,second_pass", [
    (["450 4.2.1 mailbox busy"], ["lead@example.com"]),  # refused once: the next pass sends it to lead only
    ("550 5.1.1 no such user", []),  # refused for good: not tried again (for a day), oncall gets no second copy
], ids=["deferred-once", "refused-for-good"])
def test_an_email_alarm_refused_by_one_recipient_is_sent_again_to_that_one_only(tmp_path, smtp_server, tls_cert,
                                                                                answer, second_pass):
    """Found in an audit, left open until now: the alarm was one ledger row for all its recipients, so one
    refused RCPT marked it failed and the next pass sent it again to every recipient."""
    server = smtp_server(rcpt={"lead@example.com": answer})
    oncall = {"type": "email", "to": ["oncall@example.com", "lead@example.com"], "from": "agentdigest@example.com",
              "smtp_url": server.url(), "ca_file": str(tls_cert[0]), "retry_budget": 0, "timeout": 5}
    path = write_config(tmp_path, events=tmp_path / "missing.duckdb", reports=[WEEKLY],
                        channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")}, "oncall": oncall},
                        alarms={"channel": "oncall", "grace_minutes": 600})
    for now in ("2026-11-30T14:05:00Z", "2026-11-30T14:35:00Z"):  # the source is missing: each pass fails
        code, out = due_run(path, now)
        assert code != 0 and "DuckDB file not found" in out
    envelopes = [sorted(rcpts) for _, rcpts, _ in server.messages]
    assert envelopes == [["oncall@example.com"], *([r] for r in second_pass)]
    assert server.handler.rcpts.count("lead@example.com") == 1 + len(second_pass)
    assert {message_from_bytes(raw)["Subject"] for _, _, raw in server.messages} == {
        "[agentdigest] weekly 2026-W48 could not be delivered"}
    rows = alarm_rows(path)
    assert rows[("alarm:oncall", "failed:oncall@example.com")]["sends"] == 1
    lead = rows[("alarm:oncall", "failed:lead@example.com")]
    assert lead["state"] == ("sent" if second_pass else "failed")
    assert server.handler.password not in str(rows) and "***" in str(lead["error"] or "***")


def test_an_email_alarm_sent_as_one_row_by_an_older_version_is_not_sent_again(tmp_path, smtp_server, tls_cert):
    """Before each recipient had its own row an alarm was one row, recipient its kind alone: its recipients
    got it then, so a ledger that says so is believed and nobody gets it again."""
    server = smtp_server()
    oncall = {"type": "email", "to": ["oncall@example.com", "lead@example.com"], "from": "agentdigest@example.com",
              "smtp_url": server.url(), "ca_file": str(tls_cert[0]), "retry_budget": 0, "timeout": 5}
    path = write_config(tmp_path, events=tmp_path / "missing.duckdb", alarms={"channel": "oncall"}, reports=[WEEKLY],
                        channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")}, "oncall": oncall})
    ledger = Ledger(load_config(path).ledger.url)
    try:
        for kind in ("failed", "late"):
            claim = ledger.claim("weekly", "2026-W48", "alarm:oncall", kind, owner="old", lease_seconds=60,
                                 kind="alarm")
            ledger.mark_sent(claim, None)
    finally:
        ledger.close()
    assert due_run(path, "2026-11-30T17:00:00Z")[0] != 0
    assert server.messages == []
    assert set(alarm_rows(path)) == {("alarm:oncall", "failed"), ("alarm:oncall", "late")}


@pytest.mark.parametrize("by", ["outbox", "email"])
def test_an_alarm_sent_before_the_ledger_was_reopened_is_not_sent_again(tmp_path, smtp_server, tls_cert, by):
    """Found in an audit, left open until now: a scheduler whose SQLite ledger is deleted (or replaced by a new
    one) opens the one at its path again; report sends are learnt from the archive's send logs, but an alarm
    was only in the old ledger, so the next check sent the same late alarm again, and every failing pass
    its failed alarm."""
    from agentdigest.daemon import Daemon

    server = smtp_server() if by == "email" else None
    oncall = ({"type": "outbox", "path": str(tmp_path / "alarm-box")} if server is None else
              {"type": "email", "to": ["oncall@example.com", "lead@example.com"], "from": "agentdigest@example.com",
               "smtp_url": server.url(), "ca_file": str(tls_cert[0]), "retry_budget": 0, "timeout": 5})
    path = write_config(tmp_path, events=tmp_path / "missing.duckdb", reports=[WEEKLY], alarms={"channel": "oncall"},
                        channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")}, "oncall": oncall})
    with time_machine.travel(utc("2026-11-30T17:00:00Z"), tick=False):  # W48 late since 16:00Z
        daemon = Daemon(path)
        try:
            daemon.tick()
            daemon.tick()
            for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):
                (tmp_path / name).unlink(missing_ok=True)
            daemon.tick()  # opens a new ledger at its path
            assert daemon.ledger.file == tmp_path / "ledger.db" and daemon.ledger.file.exists()
            daemon.tick()
        finally:
            daemon.ledger.close()
    if server is None:
        alarms = sorted(p.parent.name for p in (tmp_path / "alarm-box" / "_alarms").rglob("*.eml"))
        assert alarms == ["weekly.2026-W48.late"]
        keys = ["late"]
    else:
        assert [sorted(rcpts) for _, rcpts, _ in server.messages] == [["lead@example.com", "oncall@example.com"]]
        keys = ["late:lead@example.com", "late:oncall@example.com"]
    rows = alarm_rows(path)
    assert sorted(r for _, r in rows) == keys
    for key in keys:
        row = rows[("alarm:oncall", key)]
        assert row["state"] == "sent" and "restored from the archive" in row["note"]


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    return make_events(tmp_path_factory.mktemp("events") / "events.duckdb",
                       end=datetime(2026, 12, 16, tzinfo=timezone.utc), days=60, conversations=500)


@pytest.mark.parametrize("by,to", [
    ("run --due", ["vp@example.com"]),  # its only recipient refused: the period is never delivered
    ("scheduler", ["vp@example.com", "busy@example.com"]),  # and one deferred: the scheduler retries the pass
])
def test_a_period_refused_for_good_is_alarmed_once_per_kind_however_often_it_is_passed(tmp_path, smtp_server, tls_cert,
                                                                                        events, by, to):
    """Checked when `run --due` began to skip a target refused for good: run from cron every 5 minutes, it exits 1
    at every run for as long as the period is due, and the scheduler retries a pass with a deferred recipient for
    hours. Neither spams the alarm channel: it hears of the period once per kind, `failed` at the first failure and
    `late` at the first pass after the grace time (16:00Z), then nothing, not even a day later, when the refused
    recipient is tried again and refused again. Counted by the alarm channel's own (real) relay."""
    from agentdigest.daemon import Daemon
    from agentdigest.report_worker import Worker

    relay = smtp_server(rcpt={"vp@example.com": "550 5.1.1 no such user", "busy@example.com": ["451 4.2.1 busy"] * 99})
    pager = smtp_server()
    mail = {"from": "agentdigest@example.com", "ca_file": str(tls_cert[0]), "retry_budget": 0, "timeout": 5}
    path = write_config(tmp_path, events=events, reports=[{**WEEKLY, "channels": ["mail"]}],
                        alarms={"channel": "oncall"}, channels={"mail": {"type": "email", "to": to, "smtp_url": relay.url(), **mail},
                                  "oncall": {"type": "email", "to": ["oncall@example.com", "lead@example.com"],
                                             "smtp_url": pager.url(), **mail}})
    first = utc("2026-11-30T14:01:00Z")  # W48 due 14:00Z, late from 16:00Z (grace 120 minutes)
    times = [first + timedelta(minutes=5 * i) for i in range(36)]  # to 16:56Z
    times += [first + timedelta(days=1, hours=1), first + timedelta(days=1, hours=1, minutes=5)]  # the refusal aged
    # The scheduler's passes: its start (every target), its retries after 5, 10, 20, 40 and 60 minutes (not the
    # refused one), and a restart a day later (every target); its heartbeat looks for late periods all along.
    passes = {first + timedelta(minutes=m) for m in (0, 5, 15, 35, 75, 135)} | {times[36]}
    daemon = Daemon(path) if by == "scheduler" else None
    worker = Worker(daemon, "weekly") if daemon else None
    seen = {}
    try:
        for now in times:
            with time_machine.travel(now, tick=False):
                if worker is None:
                    assert due_run(path, now.isoformat())[0] == 1
                else:
                    if now in passes:
                        worker._pass(retry=now not in (first, times[36]))
                    daemon.tick()
            seen[now] = len(pager.messages)
    finally:
        if daemon:
            daemon.ledger.close()
    subjects = [(message_from_bytes(raw)["Subject"], sorted(rcpts)) for _, rcpts, raw in pager.messages]
    both = ["lead@example.com", "oncall@example.com"]
    assert subjects == [("[agentdigest] weekly 2026-W48 could not be delivered", both),
                        ("[agentdigest] weekly 2026-W48 is late", both)]
    assert seen[first] == 1 and seen[utc("2026-11-30T15:56:00Z")] == 1 and seen[utc("2026-11-30T16:01:00Z")] == 2
    assert relay.handler.rcpts.count("vp@example.com") == 2  # the first pass, and once more a day later
    if worker is not None:
        assert relay.handler.rcpts.count("busy@example.com") == len(passes)  # every pass tried the deferred one
    rows = alarm_rows(path)
    assert {k: r["sends"] for k, r in rows.items()} == {
        ("alarm:oncall", f"{kind}:{address}"): 1 for kind in ("failed", "late") for address in both}


def test_an_alarm_address_refused_for_good_is_not_tried_again_for_a_day(tmp_path, smtp_server, tls_cert):
    """Found in an audit: an alarm address refused for good (550) was tried again by every `run --due`, for the
    same 550 and an `alarm_failed` line each time (12 cron runs, 24 attempts). It now follows a report target's
    rule (refusals.py): not tried again for a day, or until `[alarms]` or its channel's settings change, and not
    for the period's other kind of alarm either; the working address still gets each alarm once. Counted by the
    alarm channel's own (real) relay."""
    import sqlite3

    server = smtp_server(rcpt={"gone@example.com": "550 5.1.1 no such user"})
    oncall = {"type": "email", "to": ["oncall@example.com", "gone@example.com"], "from": "agentdigest@example.com",
              "smtp_url": server.url(), "ca_file": str(tls_cert[0]), "retry_budget": 0, "timeout": 5}
    box = {"type": "outbox", "path": str(tmp_path / "outbox")}

    def config(**changed):
        return write_config(tmp_path, events=tmp_path / "missing.duckdb", reports=[WEEKLY], alarms={"channel": "oncall"},
                            channels={"box": box, "oncall": {**oncall, **changed}})

    def gone() -> int:
        return server.handler.rcpts.count("gone@example.com")

    path = config()
    start = utc("2026-11-30T14:05:00Z")  # the source is missing: every pass fails; late from 16:00Z
    for i in range(36):  # to 17:00Z, every five minutes
        assert due_run(path, (start + timedelta(minutes=5 * i)).isoformat())[0] != 0
    assert gone() == 1  # 49 before (an alarm_failed line each): the 'failed' alarm every run, the 'late' one too
    assert [(message_from_bytes(raw)["X-Agentdigest-Alarm"], rcpts) for _, rcpts, raw in server.messages] == [
        ("failed", ["oncall@example.com"]), ("late", ["oncall@example.com"])]
    rows = alarm_rows(path)
    refused = rows[("alarm:oncall", "failed:gone@example.com")]
    assert (refused["state"], refused["retryable"], refused["attempts"]) == ("failed", False, 1)
    assert ("alarm:oncall", "late:gone@example.com") not in rows  # never tried: refused for good before

    with sqlite3.connect(tmp_path / "ledger.db") as db:  # the refusal, a little more than a day old
        aged = db.execute("UPDATE deliveries SET updated_at = datetime(updated_at, '-25 hours') "
                          "WHERE recipient LIKE '%:gone@example.com'").rowcount
    assert aged == 1
    assert due_run(path, "2026-11-30T17:05:00Z")[0] != 0
    assert gone() == 2  # tried once more (the 'failed' alarm), refused again: not with the 'late' one
    assert due_run(path, "2026-11-30T17:10:00Z")[0] != 0
    assert gone() == 2

    path = config(timeout=6)  # the alarm channel's settings changed: tried again at once, then not
    for now in ("2026-11-30T17:15:00Z", "2026-11-30T17:20:00Z"):
        assert due_run(path, now)[0] != 0
    assert gone() == 3
    assert len(server.messages) == 2  # the working address never got a second copy


def test_the_schedulers_heartbeat_does_not_try_again_an_alarm_address_refused_for_good(tmp_path, smtp_server,
                                                                                       tls_cert, caplog):
    """The scheduler looks for late periods at every heartbeat (30 s): an alarm address refused for good was tried
    again at each, twice a minute. It is tried once, and once more a day later; that it is not tried is logged once
    (an operator review: at every heartbeat, 2880 lines a day), its refusals each time (alarm_failed)."""
    from agentdigest.daemon import Daemon

    server = smtp_server(rcpt={"gone@example.com": "550 5.1.1 no such user"})
    oncall = {"type": "email", "to": ["oncall@example.com", "gone@example.com"], "from": "agentdigest@example.com",
              "smtp_url": server.url(), "ca_file": str(tls_cert[0]), "retry_budget": 0, "timeout": 5}
    path = write_config(tmp_path, events=tmp_path / "missing.duckdb", reports=[WEEKLY], alarms={"channel": "oncall"},
                        channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")}, "oncall": oncall})
    late = utc("2026-11-30T17:00:00Z")  # W48 late since 16:00Z
    ticks = [late + timedelta(seconds=30 * i) for i in range(10)]
    ticks += [late + timedelta(days=1, minutes=1, seconds=30 * i) for i in range(3)]  # the refusal a day old
    daemon = Daemon(path)
    seen = []
    caplog.set_level(logging.INFO, logger="agentdigest.schedule")
    try:
        for now in ticks:
            with time_machine.travel(now, tick=False):
                daemon.tick()
            seen.append(server.handler.rcpts.count("gone@example.com"))
    finally:
        daemon.ledger.close()
    assert seen == [1] * 10 + [2] * 3  # 1 to 10 before: one at every heartbeat
    said = [(getattr(r, "event", None), getattr(r, "recipient", None)) for r in caplog.records]
    assert said.count(("alarm_not_tried", "gone@example.com")) == 1  # 11 before: each heartbeat but the 2 refusals
    assert [getattr(r, "event", None) for r in caplog.records].count("alarm_failed") == 2
    assert [rcpts for _, rcpts, _ in server.messages] == [["oncall@example.com"]]


# -- the resolved notice ------------------------------------------------------------------------------------------

DELIVERED = "[agentdigest] weekly 2026-W48 was delivered"


def pager_config(tmp_path, server, tls_cert, *, events, to=("oncall@example.com",), report_channels=("box",)):
    oncall = {"type": "email", "to": list(to), "from": "agentdigest@example.com", "smtp_url": server.url(),
              "ca_file": str(tls_cert[0]), "retry_budget": 0, "timeout": 5}
    return write_config(tmp_path, events=events, reports=[{**WEEKLY, "channels": list(report_channels)}],
                        alarms={"channel": "oncall"},
                        channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")}, "oncall": oncall})


def subjects(server) -> list[tuple[str, list[str]]]:
    return [(message_from_bytes(raw)["Subject"], sorted(rcpts)) for _, rcpts, raw in server.messages]


def timed_run(path, now: str) -> tuple[int, str]:
    """`run --due` at ``now``, the ledger's clock too (the notice says when the period was sent)."""
    with time_machine.travel(utc(now), tick=False):
        return due_run(path, now)


def tick(path, now: str) -> None:
    from agentdigest.daemon import Daemon

    with time_machine.travel(utc(now), tick=False):
        daemon = Daemon(path)
        try:
            daemon.tick()
        finally:
            daemon.ledger.close()


def test_a_late_period_delivered_at_last_is_resolved_once(tmp_path, smtp_server, tls_cert, events):
    """The on-call person told "weekly 2026-W48 is late" learns it went out, once, whatever passes follow; a
    ledger reset after that learns the notice from the archive's alarm log and does not send it again."""
    from agentdigest.commands_delivery import show_history

    pager = smtp_server()
    path = pager_config(tmp_path, pager, tls_cert, events=events)
    tick(path, "2026-11-30T17:00:00Z")  # the scheduler was down at 14:00Z: W48 is late since 16:00Z
    assert subjects(pager) == [("[agentdigest] weekly 2026-W48 is late", ["oncall@example.com"])]
    code, out = timed_run(path, "2026-11-30T17:05:00Z")  # delivered
    assert code == 0 and "box" in out
    for now in ("2026-11-30T17:10:00Z", "2026-11-30T17:15:00Z"):  # run --due from cron, and the heartbeat
        assert timed_run(path, now)[0] == 0
        tick(path, now)
    assert subjects(pager) == [("[agentdigest] weekly 2026-W48 is late", ["oncall@example.com"]),
                               (DELIVERED, ["oncall@example.com"])]
    message = message_from_bytes(pager.messages[1][2], policy=default)
    body = message.get_content()
    assert message["X-Agentdigest-Alarm"] == "resolved"
    assert "sent at: 2026-11-30T12:05:00-05:00 (2026-11-30 17:05:00Z)" in body  # New York, the report's zone
    assert "resolves: late since 2026-11-30T11:00:00-05:00 (alarm sent 2026-11-30 17:00:00Z)" in body
    rows = alarm_rows(path)
    assert {k: (r["state"], r["sends"]) for k, r in rows.items()} == {
        ("alarm:oncall", "late:oncall@example.com"): ("sent", 1),
        ("alarm:oncall", "resolved:oncall@example.com"): ("sent", 1)}
    log = (tmp_path / "reports" / ".alarms" / "weekly" / "2026-W48.jsonl").read_text()
    assert '"recipient": "resolved:oncall@example.com"' in log

    for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):  # reset: the alarm log still knows
        (tmp_path / name).unlink(missing_ok=True)
    assert timed_run(path, "2026-11-30T17:20:00Z")[0] == 0
    tick(path, "2026-11-30T17:25:00Z")
    assert len(pager.messages) == 2
    assert "restored from the archive" in alarm_rows(path)[("alarm:oncall", "resolved:oncall@example.com")]["note"]
    buffer = io.StringIO()
    show_history(load_config(path), report="weekly", console=Console(file=buffer, width=250))
    assert "alarm:oncall resolved:oncall@example.com" in buffer.getvalue()
    code, out = timed_run(path, "2026-11-30T17:30:00Z")
    assert code == 0 and "already sent" in out  # an alarm row never counts as the delivery: the period is


def test_a_failed_period_fixed_by_a_manual_run_is_resolved_once(tmp_path, smtp_server, tls_cert, events):
    """The operator fixes a failed week with `run REPORT --period KEY`: that run tells the alarm channel."""
    import shutil

    from agentdigest.runner import run_reports

    pager = smtp_server()
    source = tmp_path / "events.duckdb"  # missing at first: the pass fails
    path = pager_config(tmp_path, pager, tls_cert, events=source)
    assert timed_run(path, "2026-11-30T14:05:00Z")[0] != 0
    assert subjects(pager) == [("[agentdigest] weekly 2026-W48 could not be delivered", ["oncall@example.com"])]
    shutil.copy(events, source)
    config = load_config(path)
    with time_machine.travel(utc("2026-11-30T15:00:00Z"), tick=False):
        [outcome] = run_reports(config, list(config.reports), period_key="2026-W48")
    assert not outcome.failed
    assert timed_run(path, "2026-11-30T15:05:00Z")[0] == 0
    tick(path, "2026-11-30T17:00:00Z")  # past the grace: neither late nor resolved again
    assert [s for s, _ in subjects(pager)] == ["[agentdigest] weekly 2026-W48 could not be delivered", DELIVERED]
    body = message_from_bytes(pager.messages[1][2], policy=default).get_content()
    assert "resolves: failed: the run (alarm sent 2026-11-30 14:05:00Z)" in body


def test_a_period_never_alarmed_gets_no_resolved_notice(tmp_path, smtp_server, tls_cert, events):
    pager = smtp_server()
    path = pager_config(tmp_path, pager, tls_cert, events=events)
    assert timed_run(path, "2026-11-30T14:05:00Z")[0] == 0
    tick(path, "2026-11-30T17:00:00Z")
    assert timed_run(path, "2026-11-30T17:05:00Z")[0] == 0
    assert pager.messages == [] and alarm_rows(path) == {}


def test_only_the_alarm_address_that_got_the_alarm_is_told_it_was_resolved(tmp_path, smtp_server, tls_cert, events):
    """Two alarm addresses; one refused the late alarm (550): it never heard of the period, and is not told."""
    pager = smtp_server(rcpt={"gone@example.com": "550 5.1.1 no such user"})
    path = pager_config(tmp_path, pager, tls_cert, events=events, to=("oncall@example.com", "gone@example.com"))
    tick(path, "2026-11-30T17:00:00Z")
    pager.handler.rcpt.clear()  # it would accept now: still not told
    assert timed_run(path, "2026-11-30T17:05:00Z")[0] == 0
    tick(path, "2026-11-30T17:10:00Z")
    assert subjects(pager) == [("[agentdigest] weekly 2026-W48 is late", ["oncall@example.com"]),
                               (DELIVERED, ["oncall@example.com"])]
    assert pager.handler.rcpts.count("gone@example.com") == 1
    assert ("alarm:oncall", "resolved:gone@example.com") not in alarm_rows(path)


@pytest.mark.parametrize("kind", ["outbox", "webhook", "slack"])
def test_the_resolved_notice_by_outbox_webhook_and_slack(tmp_path, httpserver, events, kind):
    """An outbox keeps its message.eml, a webhook gets report.json with "kind": "resolved", Slack slack.json."""
    import json

    from werkzeug import Response

    posts = []
    httpserver.expect_request("/hook", method="POST").respond_with_handler(
        lambda request: (posts.append(json.loads(request.data)), Response("ok"))[1])
    oncall = {"outbox": {"type": "outbox", "path": str(tmp_path / "alarm-box")},
              "webhook": {"type": "webhook", "url": httpserver.url_for("/hook"), "retry_budget": 0, "timeout": 5},
              "slack": {"type": "slack", "webhook_url": httpserver.url_for("/hook"), "retry_budget": 0,
                        "timeout": 5}}[kind]
    path = write_config(tmp_path, events=events, reports=[WEEKLY], alarms={"channel": "oncall"},
                        channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")}, "oncall": oncall})
    tick(path, "2026-11-30T17:00:00Z")
    assert timed_run(path, "2026-11-30T17:05:00Z")[0] == 0
    assert timed_run(path, "2026-11-30T17:10:00Z")[0] == 0
    if kind == "outbox":
        folders = sorted(p.parent.name for p in (tmp_path / "alarm-box" / "_alarms").rglob("*.eml"))
        assert folders == ["weekly.2026-W48.late", "weekly.2026-W48.resolved"]
    elif kind == "slack":
        assert [p["text"] for p in posts] == ["[agentdigest] weekly 2026-W48 is late", DELIVERED]
    else:
        assert [p["kind"] for p in posts] == ["late", "resolved"]
        assert posts[1]["delivered_at"].startswith("2026-11-30T17:05:00") and posts[1]["resolves"]
    assert set(alarm_rows(path)) == {("alarm:oncall", "late"), ("alarm:oncall", "resolved")}


def test_a_resolved_notice_refused_for_now_fails_nothing_and_goes_out_at_the_next_pass(tmp_path, smtp_server, tls_cert,
                                                                                       events, caplog):
    """The notice is refused (451) by the run that delivers the period: the run still succeeds (exit 0), the
    failure is logged as alarm_failed, and the next `run --due` (the period is no longer due) sends the notice."""
    pager = smtp_server()
    path = pager_config(tmp_path, pager, tls_cert, events=events)
    tick(path, "2026-11-30T17:00:00Z")
    pager.handler.rcpt["oncall@example.com"] = ["451 4.2.1 busy"]
    code, out = timed_run(path, "2026-11-30T17:05:00Z")
    assert code == 0 and "error" not in out
    assert [r.event for r in caplog.records if getattr(r, "event", None) == "alarm_failed"] == ["alarm_failed"]
    assert alarm_rows(path)[("alarm:oncall", "resolved:oncall@example.com")]["state"] == "failed"
    assert timed_run(path, "2026-11-30T17:10:00Z")[0] == 0
    assert timed_run(path, "2026-11-30T17:15:00Z")[0] == 0
    assert [s for s, _ in subjects(pager)] == ["[agentdigest] weekly 2026-W48 is late", DELIVERED]
    assert alarm_rows(path)[("alarm:oncall", "resolved:oncall@example.com")]["attempts"] == 2


def test_an_alarm_that_may_have_arrived_is_sent_again_at_the_next_pass(tmp_path, httpserver):
    """Found in an audit: an alarm post left unanswered past the timeout ("it may have arrived") was recorded as
    refused for good, so no later pass tried it for a day, where a report's send that may have arrived goes out
    again at the next run (a second copy, rather than an alarm perhaps never seen). Slack has no idempotency key."""
    import time

    from werkzeug import Response

    posts = []

    def answer(request):
        posts.append(request.data)
        if len(posts) == 1:
            time.sleep(2)  # past the channel's 1 s timeout
        return Response("ok")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(answer)
    oncall = {"type": "slack", "webhook_url": httpserver.url_for("/hook"), "retry_budget": 0, "timeout": 1}
    path = write_config(tmp_path, events=tmp_path / "missing.duckdb", reports=[WEEKLY], alarms={"channel": "oncall"},
                        channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")}, "oncall": oncall})
    assert due_run(path, "2026-11-30T14:05:00Z")[0] != 0  # the source is missing: the 'failed' alarm
    row = alarm_rows(path)[("alarm:oncall", "failed")]
    assert (row["state"], row["retryable"]) == ("failed", True), row
    assert due_run(path, "2026-11-30T14:10:00Z")[0] != 0
    assert len(posts) == 2
    assert alarm_rows(path)[("alarm:oncall", "failed")]["state"] == "sent"
    assert due_run(path, "2026-11-30T14:15:00Z")[0] != 0
    assert len(posts) == 2  # sent: not again


def test_an_alarm_being_retried_says_so_once_with_its_first_error(tmp_path, smtp_server, tls_cert, caplog):
    """An alarm's relay answering 451 was retried in silence for up to the alarm channel's retry budget, as a
    report's delivery was; now its first retry says so, once, with the first error, and the alarm goes."""
    import logging

    server = smtp_server()
    server.handler.data[:] = ["451 4.3.0 mailbox busy", "451 4.3.0 mailbox busy"]  # then accepted
    oncall = {"type": "email", "to": ["oncall@example.com"], "from": "agentdigest@example.com",
              "smtp_url": server.url(), "ca_file": str(tls_cert[0]), "retry_budget": 10, "timeout": 5,
              "retry_initial": 0.05, "retry_max_wait": 0.1}
    path = write_config(tmp_path, events=tmp_path / "missing.duckdb", reports=[WEEKLY], alarms={"channel": "oncall"},
                        channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")}, "oncall": oncall})
    with caplog.at_level(logging.WARNING, logger="agentdigest.schedule"):
        assert due_run(path, "2026-11-30T14:05:00Z")[0] != 0  # the source is missing: the 'failed' alarm
    assert subjects(server) == [("[agentdigest] weekly 2026-W48 could not be delivered", ["oncall@example.com"])]
    said = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(said) == 1, said
    assert said[0].startswith("the 'failed' alarm for weekly 2026-W48 via oncall: ")
    assert "451 4.3.0 mailbox busy" in said[0]
    assert said[0].endswith("retrying for up to 10s (its retry_budget)")
    assert alarm_rows(path)[("alarm:oncall", "failed:oncall@example.com")]["state"] == "sent"


# -- periods passed over ------------------------------------------------------------------------------------------

PASSED_OVER = "[agentdigest] weekly 2026-W45 to 2026-W47 (3 weeks) passed over"


def test_periods_passed_over_are_told_to_the_alarm_channel_once_and_logged_once(tmp_path, smtp_server, tls_cert,
                                                                                events, caplog):
    """Found in an operator audit: the weeks a scheduler back from downtime does not backfill (no catch_up) were
    logged and printed, never sent to the alarm channel, so an operator who watches only that channel never learnt
    of them; and while every channel failed the latest week, the scheduler logged them again at every pass. Now the
    alarm channel hears of them once (its ledger rows remember it), and a scheduler logs them once."""
    from conftest import free_port

    from agentdigest.daemon import Daemon
    from agentdigest.report_worker import Worker

    pager = smtp_server()
    oncall = {"type": "email", "to": ["oncall@example.com"], "from": "agentdigest@example.com",
              "smtp_url": pager.url(), "ca_file": str(tls_cert[0]), "retry_budget": 0, "timeout": 5}
    dead = {"type": "email", "to": ["cto@example.com"], "from": "agentdigest@example.com",
            "smtp_url": f"smtp://127.0.0.1:{free_port()}", "retry_budget": 0, "timeout": 5}
    channels = {"box": {"type": "outbox", "path": str(tmp_path / "outbox")}, "oncall": oncall, "dead": dead}

    def configure(report_channels):
        return write_config(tmp_path, events=events, reports=[{**WEEKLY, "channels": report_channels}],
                            alarms={"channel": "oncall", "grace_minutes": 6000}, channels=channels)

    assert timed_run(configure(["box"]), "2026-11-02T14:01:00Z")[0] == 0  # W44 goes out
    path = configure(["dead"])  # from now on every channel of the report fails
    code, out = timed_run(path, "2026-11-30T14:01:00Z")  # the scheduler was down: W48 is the latest due
    assert code == 1 and "2026-W45 to 2026-W47 (3 weeks) came due while no pass ran" in out, out
    assert subjects(pager) == [("[agentdigest] weekly 2026-W48 could not be delivered", ["oncall@example.com"]),
                               (PASSED_OVER, ["oncall@example.com"])]
    body = message_from_bytes(pager.messages[1][2], policy=default).get_content().replace("\r\n", "\n")
    assert "periods: 2026-W45 to 2026-W47 (3 weeks) (2026-11-02T00:00:00-05:00 to 2026-11-23T00:00:00-05:00)" in body
    assert "catch_up = 0" in body and "`agentdigest run weekly --period 2026-W45` sends one" in body, body
    assert alarm_rows(path, "2026-W47")[("alarm:oncall", "passed_over:oncall@example.com")]["state"] == "sent"

    caplog.set_level(logging.INFO, logger="agentdigest.schedule")
    caplog.clear()  # a scheduler started now: it says them once, whatever run --due said
    daemon = Daemon(path)
    worker = Worker(daemon, "weekly")
    try:
        for now in ("2026-11-30T14:06:00Z", "2026-11-30T14:11:00Z", "2026-11-30T14:21:00Z"):  # its retries
            with time_machine.travel(utc(now), tick=False):
                worker._pass()
    finally:
        daemon.ledger.close()
    said = [r for r in caplog.records if getattr(r, "event", None) == "passed_over"]
    assert len(said) == 1 and "2026-W45 to 2026-W47 (3 weeks)" in said[0].getMessage()
    assert len([r for r in caplog.records if getattr(r, "event", None) == "failed"]) == 3  # the week did fail again
    assert len(pager.messages) == 2  # neither alarm went again


def test_a_passed_over_alarm_names_its_periods_in_json():
    """A webhook alarm channel gets the periods passed over (at most 366 named), their count and catch_up."""
    from agentdigest.alarms import Alarm
    from agentdigest.periods import parse_period

    days = [parse_period("day", "2026-01-01", "UTC")]
    for _ in range(399):
        days.append(days[-1].next())
    alarm = Alarm("passed_over", "daily", days[-1], passed=tuple(days), catch_up=2).as_json()
    assert alarm["kind"] == "passed_over" and alarm["period"]["key"] == "2027-02-04"
    assert alarm["period_count"] == 400 and len(alarm["periods"]) == 366 and alarm["periods"][0] == "2026-01-01"
    assert alarm["catch_up"] == 2
