"""A report paused with ``enabled = false``: the schedule leaves it alone (``run --due``, ``run`` of every report,
the scheduler and its catch-up, late and failed alarms), an explicit ``run REPORT`` still sends it, and resuming
sends the latest due period only, as after any downtime.

Real DuckDB events, outbox channels (files counted), a real SQLite ledger, the CLI and the scheduler as real
processes where what is tested is theirs.
"""

from __future__ import annotations

import io
import signal
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from rich.console import Console

from agentdigest.alarms import Alarm, notify
from agentdigest.config import load_config, parse_config
from agentdigest.ledger import Ledger
from agentdigest.periods import parse_period
from agentdigest.schedule import run_due, send_alarms
from agentdigest.schedule_status import check_missed, show_next
from schedule_helpers import (cli, cron_far_from_now, events_of, make_events, sent_files, spawn, stop, utc, wait_for,
                              write_config)

FORMATS = {"json", "txt", "eml", "slack"}
WEEKLY = {"id": "weekly", "period": "week", "timezone": "America/New_York", "schedule": "0 9 * * mon",
          "channels": ["box"]}  # a week is due on its Monday at 14:00Z (09:00 New York)
PAUSED = {**WEEKLY, "id": "paused", "enabled": False}


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    return make_events(tmp_path_factory.mktemp("events") / "events.duckdb",
                       end=datetime(2026, 12, 16, tzinfo=timezone.utc), days=330, conversations=1500)


def channels(tmp_path: Path) -> dict:
    return {"box": {"type": "outbox", "path": str(tmp_path / "outbox")},
            "oncall": {"type": "outbox", "path": str(tmp_path / "alarms")}}


def configure(tmp_path: Path, events: Path, reports: list[dict]) -> Path:
    return write_config(tmp_path, events=events, reports=reports, channels=channels(tmp_path),
                        alarms={"channel": "oncall", "grace_minutes": 60})


def due_run(path: Path, now: str) -> tuple[int, str]:
    config = load_config(path)
    buffer = io.StringIO()
    code = run_due(config, list(config.reports), now=utc(now), formats=FORMATS,
                   console=Console(file=buffer, width=300, highlight=False))
    return code, buffer.getvalue()


def alarms_sent(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "alarms").rglob("*.eml"))


# -- the setting ------------------------------------------------------------------------------

def test_enabled_defaults_to_true_and_false_is_taken():
    config = parse_config({"source": {"url": "duckdb://", "table": "agent_events"},
                           "reports": [{"id": "a"}, {"id": "b", "enabled": False}]})
    assert [r.enabled for r in config.reports] == [True, False]


@pytest.mark.parametrize("value", ['"no"', '"false"', "0"])
def test_enabled_as_anything_but_a_boolean_is_one_line_naming_the_key(tmp_path, value):
    path = tmp_path / "agentdigest.toml"
    path.write_text(f'[source]\nurl = "duckdb://events.duckdb"\ntable = "agent_events"\n\n'
                    f'[[reports]]\nid = "weekly"\nenabled = {value}\n')
    done = cli("check", "--config", str(path))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "agentdigest.toml" in lines[0] and "reports[0].enabled" in lines[0] and "expected true or false" in lines[0]


# -- run --due and run ------------------------------------------------------------------------

def test_run_due_skips_a_paused_report_and_sends_the_others(tmp_path, events):
    path = configure(tmp_path, events, [PAUSED, WEEKLY])
    code, out = due_run(path, "2026-11-30T14:05:00Z")
    assert code == 0, out
    assert sent_files(tmp_path / "outbox") == {("weekly", "2026-W48"): 1}
    assert "paused: paused (enabled = false); not run" in out
    assert not (tmp_path / "reports" / "paused").exists()  # not even computed
    code, out = due_run(path, "2026-11-30T18:00:00Z")  # past the grace: no late alarm either
    assert code == 0 and "paused: paused" in out and "nothing is due yet" not in out
    assert sent_files(tmp_path / "outbox") == {("weekly", "2026-W48"): 1} and not alarms_sent(tmp_path)


def test_run_of_every_report_skips_a_paused_one_and_run_naming_it_sends_it(tmp_path, events):
    path = configure(tmp_path, events, [PAUSED, WEEKLY])
    every = cli("run", "--config", str(path), "--period", "2026-W47", "--format", "json,eml")
    assert every.returncode == 0, every.stdout + every.stderr
    assert "paused: paused (enabled = false); not run" in every.stdout
    assert sent_files(tmp_path / "outbox") == {("weekly", "2026-W47"): 1}

    named = cli("run", "paused", "--config", str(path), "--period", "2026-W47", "--format", "json,eml")
    assert named.returncode == 0, named.stdout + named.stderr
    assert "paused: paused for the schedule (enabled = false); running it as asked" in named.stdout
    assert sent_files(tmp_path / "outbox") == {("weekly", "2026-W47"): 1, ("paused", "2026-W47"): 1}
    again = cli("resend", "paused", "2026-W47", "--config", str(path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "paused: paused for the schedule (enabled = false); resending it as asked" in again.stdout
    assert sent_files(tmp_path / "outbox")[("paused", "2026-W47")] == 2


# -- alarms -----------------------------------------------------------------------------------

def test_no_late_or_failed_alarm_for_a_paused_report_whose_periods_are_overdue(tmp_path, events):
    # Neither report was ever sent; two weeks past their due time only the one not paused is late.
    path = configure(tmp_path, events, [PAUSED, WEEKLY])
    config = load_config(path)
    buffer = io.StringIO()
    assert check_missed(config, now=utc("2026-12-14T18:00:00Z"), console=Console(file=buffer, width=300)) == 1
    assert "weekly" in buffer.getvalue() and "paused" not in buffer.getvalue()

    ledger = Ledger(config.ledger.url)
    try:
        send_alarms(config, None, utc("2026-12-14T18:00:00Z"), ledger=ledger, archive=config.archive.path,
                    owner="test", reports=config.reports)  # the scheduler's heartbeat check
        period = parse_period("week", "2026-W50", "America/New_York")
        failed = Alarm("failed", "paused", period, failures=(("box", "", "refused"),))
        assert notify(config, ledger, failed, owner="test", archive=config.archive.path) == "paused"
        kinds = {(r["channel"], r["recipient"]) for rid in ("weekly", "paused")
                 for r in ledger.deliveries(rid, "2026-W50") if r["kind"] == "alarm"}
    finally:
        ledger.close()
    assert kinds == {("alarm:oncall", "late")}  # the weekly report's late alarm, nothing for the paused one
    assert [p.parent.parent.name for p in alarms_sent(tmp_path)] == ["_alarms"]


def test_resuming_sends_the_latest_due_period_only_and_raises_no_late_alarm(tmp_path, events):
    path = configure(tmp_path, events, [WEEKLY])
    assert due_run(path, "2026-06-01T14:05:00Z")[0] == 0  # 2026-W22 sent, then paused for half a year
    configure(tmp_path, events, [{**WEEKLY, "enabled": False}])
    for now in ("2026-06-08T14:05:00Z", "2026-09-07T16:00:00Z", "2026-11-30T16:00:00Z"):
        code, out = due_run(path, now)
        assert code == 0 and "weekly: paused" in out, out
    assert sent_files(tmp_path / "outbox") == {("weekly", "2026-W22"): 1} and not alarms_sent(tmp_path)

    configure(tmp_path, events, [WEEKLY])
    code, out = due_run(path, "2026-11-30T16:05:00Z")  # the latest week's due time is two hours ago
    assert code == 0, out
    assert sent_files(tmp_path / "outbox") == {("weekly", "2026-W22"): 1, ("weekly", "2026-W48"): 1}
    assert "2026-W23 to 2026-W47 (25 weeks) came due while no pass ran and are not sent" in out
    # neither late nor failed: the paused weeks are told once, as passed over (the alarm cannot tell a pause from
    # a scheduler that was down: the ledger keeps no record of a pause)
    (alarm,) = alarms_sent(tmp_path)
    assert "Subject: [agentdigest] weekly 2026-W23 to 2026-W47 (25 weeks) passed over" in alarm.read_text(), \
        alarm.read_text()


# -- check, history --next --------------------------------------------------------------------

def test_check_and_history_next_say_a_report_is_paused(tmp_path, events):
    path = configure(tmp_path, events, [PAUSED, WEEKLY])
    checked = cli("check", "--config", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    paused = [line for line in checked.stdout.splitlines() if "paused" in line]
    assert paused == ["report paused: paused (enabled = false): the schedule does not run it, nor alarms about it"]

    buffer = io.StringIO()
    assert show_next(load_config(path), now=utc("2026-11-25T12:00:00Z"),
                     console=Console(file=buffer, width=300, highlight=False)) == 0
    rows = {line.split("│")[1].strip(): line for line in buffer.getvalue().splitlines() if line.count("│") > 2}
    assert "paused (enabled = false)" in rows["paused"] and "2026-11-30" not in rows["paused"]
    assert "Mon 2026-11-30 09:00 EST" in rows["weekly"]


# -- the scheduler ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def recent_events(tmp_path_factory):
    now = datetime.now(timezone.utc)
    return make_events(tmp_path_factory.mktemp("recent") / "events.duckdb", end=now + timedelta(days=2), days=10,
                       conversations=500)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_the_scheduler_does_not_fire_a_paused_report_and_a_sighup_that_resumes_it_does(tmp_path, recent_events):
    def daily(report_id: str, **extra) -> dict:
        return {"id": report_id, "period": "day", "timezone": "UTC", "schedule": cron, "channels": ["box"], **extra}

    cron = cron_far_from_now()
    box = {"box": {"type": "outbox", "path": str(tmp_path / "outbox")}}
    path = write_config(tmp_path, events=recent_events, channels=box, reports=[daily("a", enabled=False), daily("b")])
    log = tmp_path / "daemon.log"
    proc = spawn("schedule", "--config", str(path), "--log-format", "json", log=log)
    try:
        wait_for(lambda: events_of(log, "sent", "b"), what="report b's catch-up", proc=proc, log=log)
        assert len(events_of(log, "paused", "a")) == 1  # said once, at start
        assert not events_of(log, "due", "a") and {rid for rid, _ in sent_files(tmp_path / "outbox")} == {"b"}

        write_config(tmp_path, events=recent_events, channels=box, reports=[daily("a"), daily("b")])
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: events_of(log, "sent", "a"), what="report a after the resuming reload", proc=proc, log=log)
    finally:
        code, seconds = stop(proc)
    assert code == 0 and seconds < 10
    sent = sent_files(tmp_path / "outbox")
    assert sum(sent.values()) == 2 and {rid for rid, _ in sent} == {"a", "b"}
    assert len(events_of(log, "paused", "a")) == 1 and not events_of(log, "passed_over", "a")


@pytest.mark.parametrize("enabled", [None, True, False])
def test_enabled_is_outside_the_settings_fingerprint_so_upgrading_or_pausing_retries_nothing(enabled):
    """A target refused for good is tried again when its report's settings change (refusals.py). `enabled` decides
    whether a report runs, not how it is sent: the fingerprint of a report is the one computed before the key existed
    (the value below, from the code at b14e33f), paused or not, so an upgrade does not retry every refused target."""
    from agentdigest.refusals import settings_fingerprint

    report = {"id": "weekly", "timezone": "America/New_York", "channels": ["box"]}
    data = {"source": {"url": "duckdb:///srv/events.duckdb", "table": "agent_events"},
            "archive": {"path": "/srv/reports"}, "ledger": {"url": "sqlite:////srv/agentdigest.db"},
            "channels": {"box": {"type": "outbox", "path": "/srv/outbox"}},
            "reports": [report if enabled is None else {**report, "enabled": enabled}]}
    config = parse_config(data, "agentdigest.toml")
    assert settings_fingerprint(config, config.reports[0]) == "f37c801504f114f27fe3d01d"
