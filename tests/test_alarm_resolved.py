"""The resolved notice of a period delivered outside the window a pass looks at: by `resend`, or after its notice
was refused for now until later periods came due (with the ledger kept, or reset meanwhile); with alarm checks
racing; and what the check costs: one ledger query however many periods were alarmed.

Alarms go to a real aiosmtpd server (STARTTLS, AUTH); the report to an outbox or a second real SMTP server; the
ledger is a real SQLite file. W48 is due 2026-11-30 14:00Z, late from 16:00Z; W49 is due 2026-12-07 14:00Z.
"""

from __future__ import annotations

import io
import threading
from datetime import datetime, timezone
from email import message_from_bytes
from email.policy import default

import pytest
import time_machine
from rich.console import Console

from agentdigest.alarm_resolved import resolve_pending
from agentdigest.config import load_config
from agentdigest.ledger import Ledger
from schedule_helpers import make_events, utc, write_config
from test_alarms import DELIVERED, WEEKLY, alarm_rows, pager_config, subjects, tick, timed_run

LATE = "[agentdigest] weekly 2026-W48 is late"


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    return make_events(tmp_path_factory.mktemp("events") / "events.duckdb",
                       end=datetime(2026, 12, 16, tzinfo=timezone.utc), days=60, conversations=500)


@pytest.mark.parametrize("only", ["mail", None])
def test_a_failed_channel_delivered_by_resend_is_resolved_by_the_resend(tmp_path, smtp_server, tls_cert, events, only):
    """The report's mail recipient refused W48 (550): `failed` alarm. Once the mailbox exists, the operator resends
    the period (its failed channel, or all of it) a week later: the resend itself tells the alarm channel, once."""
    from agentdigest.commands_delivery import resend

    relay = smtp_server(rcpt={"vp@example.com": "550 5.1.1 no such user"})
    pager = smtp_server()
    mail = {"from": "agentdigest@example.com", "ca_file": str(tls_cert[0]), "retry_budget": 0, "timeout": 5}
    path = write_config(tmp_path, events=events, reports=[{**WEEKLY, "channels": ["box", "mail"]}],
                        alarms={"channel": "oncall"},
                        channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")},
                                  "mail": {"type": "email", "to": ["vp@example.com"], "smtp_url": relay.url(), **mail},
                                  "oncall": {"type": "email", "to": ["oncall@example.com"], "smtp_url": pager.url(),
                                             **mail}})
    assert timed_run(path, "2026-11-30T14:05:00Z")[0] == 1
    assert [s for s, _ in subjects(pager)] == ["[agentdigest] weekly 2026-W48 could not be delivered"]
    relay.handler.rcpt.clear()
    for _ in range(2):  # the second resend finds the notice sent
        with time_machine.travel(utc("2026-12-09T10:00:00Z"), tick=False):
            assert resend(load_config(path), "weekly", "2026-W48", channel=only,
                          console=Console(file=io.StringIO())) == 0
        assert [s for s, _ in subjects(pager)] == ["[agentdigest] weekly 2026-W48 could not be delivered", DELIVERED]
    tick(path, "2026-12-09T10:05:00Z")  # (W49 is late by now: that is its own alarm)
    assert [s for s, _ in subjects(pager) if "W48" in s] == [
        "[agentdigest] weekly 2026-W48 could not be delivered", DELIVERED]
    body = message_from_bytes(pager.messages[1][2], policy=default).get_content()
    assert "sent at: 2026-12-09T05:00:00-05:00" in body and "resolves: failed: mail vp@example.com" in body
    assert alarm_rows(path)[("alarm:oncall", "resolved:oncall@example.com")]["sends"] == 1


def notice_refused_for_now(tmp_path, smtp_server, tls_cert, events):
    """W48 late, then delivered at 17:05Z while the alarm relay defers the notice (451) at that run and at two
    heartbeats; the relay accepts again after that. The pager and the config's path."""
    pager = smtp_server()
    path = pager_config(tmp_path, pager, tls_cert, events=events)
    tick(path, "2026-11-30T17:00:00Z")
    pager.handler.rcpt["oncall@example.com"] = ["451 4.2.1 busy"] * 3
    assert timed_run(path, "2026-11-30T17:05:00Z")[0] == 0
    tick(path, "2026-11-30T17:10:00Z")
    tick(path, "2026-11-30T17:15:00Z")
    row = alarm_rows(path)[("alarm:oncall", "resolved:oncall@example.com")]
    assert (row["state"], row["attempts"]) == ("failed", 3) and subjects(pager) == [(LATE, ["oncall@example.com"])]
    return pager, path


@pytest.mark.parametrize("reset", [False, True])
def test_a_notice_refused_until_later_periods_came_due_is_sent_by_the_alarm_check(tmp_path, smtp_server, tls_cert,
                                                                                  events, reset):
    """A week later W48 is no longer among the periods a pass looks at (W49 is the latest, W48 was sent): the
    alarm check still owes its notice and sends it, once; with the ledger reset meanwhile too, from the archive's
    alarm log and send log. W49, never alarmed, gets no notice."""
    pager, path = notice_refused_for_now(tmp_path, smtp_server, tls_cert, events)
    if reset:
        for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):
            (tmp_path / name).unlink(missing_ok=True)
    code, out = timed_run(path, "2026-12-07T14:05:00Z")  # delivers W49, then the alarm check
    assert code == 0 and "2026-W49" in out and "2026-W48" not in out
    tick(path, "2026-12-07T14:10:00Z")
    assert timed_run(path, "2026-12-07T14:15:00Z")[0] == 0
    assert subjects(pager) == [(LATE, ["oncall@example.com"]), (DELIVERED, ["oncall@example.com"])]
    body = message_from_bytes(pager.messages[1][2], policy=default).get_content()
    assert "sent at: 2026-11-30T12:05:00-05:00" in body  # when W48 went out, not when it was told
    assert alarm_rows(path)[("alarm:oncall", "resolved:oncall@example.com")]["sends"] == 1
    ledger = Ledger(load_config(path).ledger.url)
    try:
        assert [r for r in ledger.deliveries("weekly", "2026-W49") if r["kind"] == "alarm"] == []
    finally:
        ledger.close()


def test_alarm_checks_racing_send_the_notice_once(tmp_path, smtp_server, tls_cert, events):
    """Four schedulers' alarm checks (each its own ledger connection) find the same notice owed at the same
    moment: the claim lets exactly one send it."""
    pager, path = notice_refused_for_now(tmp_path, smtp_server, tls_cert, events)
    config = load_config(path)
    start, errors = threading.Barrier(4), []

    def check(owner: str) -> None:
        ledger = Ledger(config.ledger.url)
        try:
            start.wait()
            resolve_pending(config, ledger, config.reports, now=utc("2026-12-07T15:00:00Z"), owner=owner)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            ledger.close()

    with time_machine.travel(utc("2026-12-07T15:00:00Z"), tick=False):
        threads = [threading.Thread(target=check, args=(f"scheduler-{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert errors == []
    assert [s for s, _ in subjects(pager)] == [LATE, DELIVERED]
    row = alarm_rows(path)[("alarm:oncall", "resolved:oncall@example.com")]
    assert row["sends"] == 1 and row["state"] == "sent"


def test_the_alarm_check_reads_the_ledger_once_however_many_periods_were_alarmed(tmp_path, events):
    """Thirty weeks alarmed: twenty delivered and told, ten never delivered (passed over for later ones). The
    check finds nothing owed in one query: no period is read on its own, and no alarm log (there is none)."""
    from sqlalchemy import event

    path = write_config(tmp_path, events=events, reports=[WEEKLY], alarms={"channel": "oncall"},
                        channels={"box": {"type": "outbox", "path": str(tmp_path / "outbox")},
                                  "oncall": {"type": "outbox", "path": str(tmp_path / "alarm-box")}})
    config = load_config(path)
    ledger = Ledger(config.ledger.url)
    try:
        for week in range(10, 40):
            key = f"2026-W{week}"
            sends = [{"channel": "alarm:oncall", "recipient": "late"}]
            if week < 30:
                sends.append({"channel": "alarm:oncall", "recipient": "resolved"})
                ledger.restore_sent("weekly", key, [{"channel": "box", "recipient": ""}], note="test")
            ledger.restore_sent("weekly", key, sends, kind="alarm", note="test")
        statements = []
        event.listen(ledger.engine, "before_cursor_execute",
                     lambda conn, cursor, sql, *args: statements.append(sql))
        resolve_pending(config, ledger, config.reports, now=utc("2026-10-05T12:00:00Z"), owner="me")
        queries = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        assert len(queries) == 1, queries
        assert not (tmp_path / "alarm-box").exists()  # nothing sent
    finally:
        ledger.close()
