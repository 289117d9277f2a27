"""``run --due``, ``check --missed``, ``history --next`` and alarms, in-process, on real data.

Events are real DuckDB tables made by the synthetic generator; delivery goes to the outbox
channel (files are counted) or to a real aiosmtpd server; the ledger is a real SQLite file.
"""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import datetime, timezone
from email import message_from_bytes
from types import SimpleNamespace

import pytest
import time_machine
from rich.console import Console

from agentdigest.commands_delivery import resend, show_history
from agentdigest.config import load_config
from agentdigest.logs import configure_logging
from agentdigest.errors import ConfigError
from agentdigest.ledger import Ledger
from agentdigest.runner import run_reports
from agentdigest.schedule import run_due
from agentdigest.schedule_status import check_missed, show_next
from conftest import free_port
from schedule_helpers import cli, make_events, outbox, sent_files, utc, write_config

FORMATS = {"json", "txt", "eml", "slack"}  # every format a channel reads; the PDF adds time, not coverage
NY_WEEKLY = {"id": "weekly", "period": "week", "timezone": "America/New_York", "schedule": "0 9 * * mon",
             "channels": ["box"]}


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    return make_events(tmp_path_factory.mktemp("events") / "events.duckdb",
                       end=datetime(2026, 12, 16, tzinfo=timezone.utc), days=330)


def console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, highlight=False), buffer


def due_run(config_path, now, **kwargs) -> tuple[int, str]:
    config = load_config(config_path)
    con, buffer = console()
    code = run_due(config, list(config.reports), now=utc(now), formats=FORMATS, console=con, **kwargs)
    return code, buffer.getvalue()


# -- run --due at a pinned time ---------------------------------------------------------------

@pytest.mark.parametrize("report,nows,expected", [
    # New York 09:00 on Monday 2026-11-30 is 14:00Z: before it last week is due, after it this one.
    (NY_WEEKLY, ["2026-11-30T13:59:00Z"], {"2026-W47"}),
    (NY_WEEKLY, ["2026-11-30T14:00:00Z"], {"2026-W48"}),
    (NY_WEEKLY, ["2026-11-30T13:59:00Z", "2026-11-30T14:01:00Z"], {"2026-W47", "2026-W48"}),
    ({**NY_WEEKLY, "catch_up": 2}, ["2026-11-30T14:01:00Z"], {"2026-W46", "2026-W47", "2026-W48"}),
    # Berlin in summer: 09:00 CEST is 07:00Z.
    ({**NY_WEEKLY, "timezone": "Europe/Berlin"}, ["2026-07-06T07:00:00Z"], {"2026-W27"}),
    ({"id": "daily", "period": "day", "timezone": "Asia/Tokyo", "schedule": "30 7 * * *", "channels": ["box"]},
     ["2026-11-29T22:29:00Z", "2026-11-29T22:31:00Z"], {"2026-11-28", "2026-11-29"}),
    ({"id": "monthly", "period": "month", "timezone": "UTC", "schedule": "0 6 1 * *", "channels": ["box"]},
     ["2026-12-01T06:00:00Z"], {"2026-11"}),
], ids=["ny-before", "ny-at", "ny-before-then-after", "ny-catch-up-2", "berlin-summer", "tokyo-daily", "monthly"])
def test_run_due_delivers_exactly_the_expected_periods(tmp_path, events, report, nows, expected):
    path = write_config(tmp_path, events=events, reports=[report], channels=outbox(path=str(tmp_path / "outbox")))
    for now in nows:
        code, out = due_run(path, now)
        assert code == 0, out
    counts = sent_files(tmp_path / "outbox")
    assert counts == {(report["id"], key): 1 for key in expected}

    # Repeating at every pinned time sends nothing, and does not recompute what is sent.
    archived = {p: p.stat().st_mtime_ns for p in (tmp_path / "reports").rglob("*") if p.is_file()}
    for now in nows:
        code, out = due_run(path, now)
        assert code == 0 and "already sent" in out
    assert sent_files(tmp_path / "outbox") == counts
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "reports").rglob("*") if p.is_file()} == archived


def test_run_due_quiet_says_only_what_it_sent_for_cron(tmp_path, events):
    """Found in an operator review: `run --due` from cron every 5 minutes printed "already sent" (or "nothing is due
    yet") at every run, and cron mails any output: a mail every 5 minutes. With --quiet a run with nothing to do
    prints nothing; what it sends, or fails to send, is said as before."""
    paused = {**NY_WEEKLY, "id": "paused", "enabled": False}
    path = write_config(tmp_path, events=events, channels=outbox(path=str(tmp_path / "outbox")),
                        reports=[NY_WEEKLY, paused])

    def quiet(now: str):
        done = cli("run", "--due", "--quiet", "--config", str(path), "--now", now, "--format", "json,eml")
        return done.returncode, done.stdout, done.stderr

    assert quiet("2026-11-30T13:54:00Z") == (0, "weekly 2026-W47 -> box: sent\n", "")  # W48 is due at 14:00Z
    assert quiet("2026-11-30T13:59:00Z") == (0, "", "")
    assert quiet("2026-11-30T14:01:00Z") == (0, "weekly 2026-W48 -> box: sent\n", "")
    for now in ("2026-11-30T14:06:00Z", "2026-11-30T14:11:00Z"):
        assert quiet(now) == (0, "", "")
    loud = cli("run", "--due", "--config", str(path), "--now", "2026-11-30T14:16:00Z", "--format", "json,eml")
    assert (loud.returncode, loud.stdout) == (0, "paused: paused (enabled = false); not run\nweekly 2026-W48: "
                                                 "already sent\n")
    manual = cli("run", "weekly", "--quiet", "--config", str(path))
    assert (manual.returncode, manual.stdout) == (2, "")
    assert manual.stderr.strip() == ("agentdigest: error: --quiet goes with --due (a run without it always says what "
                                     "it did); nothing was run")
    assert sent_files(tmp_path / "outbox") == {("weekly", "2026-W47"): 1, ("weekly", "2026-W48"): 1}


def test_a_period_is_reported_with_its_dst_hours(tmp_path, events):
    path = write_config(tmp_path, events=events, channels=outbox(path=str(tmp_path / "outbox")),
                        reports=[{**NY_WEEKLY, "timezone": "Europe/Berlin"}])
    config = load_config(path)
    for now, key, hours in [("2026-03-30T07:00:30Z", "2026-W13", 167), ("2026-10-26T08:00:30Z", "2026-W43", 169)]:
        with time_machine.travel(utc(now), tick=False):  # run --due without --now reads the clock
            assert run_due(config, list(config.reports), formats={"json", "eml"}, console=console()[0]) == 0
        data = json.loads((tmp_path / "reports" / "weekly" / key / "report.json").read_text())
        start, end = (datetime.fromisoformat(data["period"][k]) for k in ("start", "end"))
        assert (end - start).total_seconds() / 3600 == hours
    assert set(sent_files(tmp_path / "outbox")) == {("weekly", "2026-W13"), ("weekly", "2026-W43")}


def test_a_report_without_channels_is_archived_once(tmp_path, events):
    path = write_config(tmp_path, events=events, channels={}, reports=[{**NY_WEEKLY, "channels": []}])
    code, out = due_run(path, "2026-11-30T14:01:00Z")
    assert code == 0 and "weekly 2026-W48: archived" in out
    assert (tmp_path / "reports" / "weekly" / "2026-W48" / "report.json").is_file()
    code, out = due_run(path, "2026-11-30T14:05:00Z")
    assert code == 0 and out.strip() == "weekly 2026-W48: already archived (the report has no channels)", out


def test_a_preview_of_a_week_not_ended_does_not_stand_for_it(tmp_path, events):
    """A report without channels is done once archived, and a dry run archives: a preview of this week (its
    figures so far) made it "already sent" when the week came due, and the whole week was never computed
    (found in an operator audit). The preview's generated_at, before the week's end, tells it apart."""
    from agentdigest.periods import parse_period

    path = write_config(tmp_path, events=events, channels={}, reports=[{**NY_WEEKLY, "channels": []}])
    config = load_config(path)
    period = parse_period("week", "2026-W49", "America/New_York")
    run_reports(config, list(config.reports), periods={"weekly": [period]}, now=utc("2026-12-03T12:00:00Z"),
                dry_run=True, formats=FORMATS)
    report_json = tmp_path / "reports" / "weekly" / "2026-W49" / "report.json"
    assert json.loads(report_json.read_text())["generated_at"].startswith("2026-12-03")
    code, out = due_run(path, "2026-12-07T14:01:00Z")
    assert code == 0 and "weekly 2026-W49: archived" in out, out
    assert json.loads(report_json.read_text())["generated_at"].startswith("2026-12-07")
    code, out = due_run(path, "2026-12-07T14:05:00Z")
    assert code == 0 and "already archived" in out, out


def test_a_schedule_that_fires_less_often_than_its_period_is_refused(tmp_path, events):
    # 29 February for a daily report: it used to send 2024-02-28 and no other day for four years.
    path = write_config(tmp_path, events=events, channels=outbox(path=str(tmp_path / "outbox")),
                        reports=[{**NY_WEEKLY, "schedule": "0 9 29 2 *", "period": "day"}])
    with pytest.raises(ConfigError, match=r"reports\[0\]\.schedule: '0 9 29 2 \*' fires less often than every day"):
        load_config(path)
    assert not (tmp_path / "outbox").exists()


def test_a_monthly_report_finds_its_fire_a_month_back(tmp_path, events):
    # The longest gap a valid schedule has: monthly fires on the 2nd; on 1 December the due month is October.
    path = write_config(tmp_path, events=events, channels=outbox(path=str(tmp_path / "outbox")),
                        reports=[{**NY_WEEKLY, "schedule": "0 9 2 * *", "period": "month"}])
    code, out = due_run(path, "2026-12-01T14:01:00Z")
    assert code == 0
    assert sent_files(tmp_path / "outbox") == {("weekly", "2026-10"): 1}


def test_dry_run_archives_and_sends_nothing(tmp_path, events):
    path = write_config(tmp_path, events=events, reports=[NY_WEEKLY], channels=outbox(path=str(tmp_path / "outbox")))
    code, out = due_run(path, "2026-11-30T14:01:00Z", dry_run=True)
    assert code == 0 and "archived (dry run)" in out
    assert (tmp_path / "reports" / "weekly" / "2026-W48" / "message.eml").is_file()
    assert not sent_files(tmp_path / "outbox")


# -- check --missed -----------------------------------------------------------------------------

@pytest.mark.parametrize("run_at,check_at,grace,code", [
    (None, "2026-11-30T15:59:00Z", None, 0),               # due 14:00Z, grace 2 h: not late yet
    (None, "2026-11-30T16:00:00Z", None, 1),
    ("2026-11-30T14:01:00Z", "2026-11-30T16:00:00Z", None, 0),
    ("2026-11-30T14:01:00Z", "2026-12-07T16:00:00Z", None, 1),  # next week's never went
    ("2026-11-30T14:01:00Z", "2026-12-07T14:10:00Z", 5, 1),     # the report's own grace
    ("2026-11-30T14:01:00Z", "2026-12-07T14:04:00Z", 5, 0),
])
def test_check_missed_exits_1_exactly_when_a_due_report_is_late(tmp_path, events, run_at, check_at, grace, code):
    path = write_config(tmp_path, events=events, channels=outbox(path=str(tmp_path / "outbox")),
                        reports=[{**NY_WEEKLY, "grace_minutes": grace}])
    if run_at:
        assert due_run(path, run_at)[0] == 0
    con, buffer = console()
    assert check_missed(load_config(path), now=utc(check_at), console=con) == code
    assert ("weekly" in buffer.getvalue()) == bool(code)


@pytest.mark.parametrize("broken", ["channel", "source"])
def test_a_failed_period_stays_due_and_late_until_it_is_sent(tmp_path, events, broken):
    """Found in a scheduling audit: a week whose delivery failed dropped out of the next fire's window
    (catch_up = 0), was never retried, and check --missed stopped naming it: silently missed. Found again
    in an operations audit with the source down at the fire: the run failed before it touched the ledger,
    so the week was forgotten the same way (and said to have come due while no pass ran)."""
    import shutil

    blocked, source = tmp_path / "outbox", tmp_path / "events.duckdb"
    shutil.copyfile(events, source)
    path = write_config(tmp_path, events=source, channels=outbox(path=str(blocked)), reports=[NY_WEEKLY])
    if broken == "channel":
        blocked.write_text("a file where the outbox folder should be")  # the outbox cannot write: it fails
    else:
        source.rename(tmp_path / "away.duckdb")  # the events' database is down
    code, out = due_run(path, "2026-11-30T14:01:00Z")
    assert code == (1 if broken == "channel" else 3) and "2026-W48" in out, out  # 2026-W48 failed
    con, buffer = console()
    assert check_missed(load_config(path), now=utc("2026-12-07T16:00:00Z"), console=con) == 1
    assert "2026-W48" in buffer.getvalue() and "2026-W49" in buffer.getvalue()
    # fixed: the next fire sends the failed week and the new one, oldest first
    blocked.unlink() if broken == "channel" else (tmp_path / "away.duckdb").rename(source)
    code, out = due_run(path, "2026-12-07T14:01:00Z")
    assert code == 0, out
    assert sent_files(blocked) == {("weekly", "2026-W48"): 1, ("weekly", "2026-W49"): 1}
    assert check_missed(load_config(path), now=utc("2026-12-07T16:00:00Z"), console=console()[0]) == 0


def view_source(tmp_path, events):
    """A DuckDB source whose events table is a view over Parquet parts (as a lake's often is), and a good part."""
    import duckdb

    source, parts = tmp_path / "events.duckdb", tmp_path / "parts"
    parts.mkdir()
    with duckdb.connect(str(events), read_only=True) as con:
        con.execute(f"COPY agent_events TO '{parts / 'a.parquet'}' (FORMAT parquet)")
    with duckdb.connect(str(source)) as con:
        con.execute(f"CREATE VIEW agent_events AS SELECT * FROM read_parquet('{parts}/*.parquet')")
    good = (parts / "a.parquet").read_bytes()
    (parts / "b.parquet").write_bytes(good)
    return source, parts, good


def break_source(tmp_path, broken):
    """The view_source made unreadable: its file gone (it cannot be opened), or a part half written (it opens
    and its query fails)."""
    if broken == "file missing":
        (tmp_path / "events.duckdb").rename(tmp_path / "away.duckdb")
    else:
        (tmp_path / "parts" / "b.parquet").write_bytes((tmp_path / "parts" / "a.parquet").read_bytes()[:300] + b"PAR1")


@pytest.mark.parametrize("broken", ["file missing", "a file unreadable"])
def test_an_archive_only_period_whose_source_failed_stays_due_and_late(tmp_path, events, broken):
    """A report without channels records no run when it works (it is done once archived), so one whose source
    failed while the report was computed (a file its view reads is corrupt: the source opens, the query
    fails, exit 3) left nothing either: once the next period came due the failed one was forgotten, not
    retried and gone from check --missed. Its failed scheduled run is now recorded, as a source that cannot
    be opened at all is, and as a report with channels records its own."""
    source, parts, good = view_source(tmp_path, events)
    path = write_config(tmp_path, events=source, channels={}, reports=[{**NY_WEEKLY, "channels": []}])
    break_source(tmp_path, broken)
    code, out = due_run(path, "2026-11-30T14:01:00Z")
    assert code == 3 and "weekly 2026-W48: error: " in out, out
    con, buffer = console()
    assert check_missed(load_config(path), now=utc("2026-12-07T16:00:00Z"), console=con) == 1
    assert "2026-W48" in buffer.getvalue() and "2026-W49" in buffer.getvalue(), buffer.getvalue()
    (tmp_path / "away.duckdb").rename(source) if broken == "file missing" else (parts / "b.parquet").write_bytes(good)
    code, out = due_run(path, "2026-12-07T14:01:00Z")
    assert code == 0 and "weekly 2026-W48: archived" in out and "weekly 2026-W49: archived" in out, out
    assert check_missed(load_config(path), now=utc("2026-12-07T16:00:00Z"), console=console()[0]) == 0


REFUSE_FAILED_RUN = ("CREATE TRIGGER refuse_failed BEFORE UPDATE ON runs WHEN NEW.state = 'failed' "
                     "BEGIN SELECT RAISE(ABORT, 'ledger write refused by the test trigger'); END")


@pytest.mark.parametrize("channels", [["box"], []])
@pytest.mark.parametrize("broken", ["file missing", "a file unreadable"])
def test_a_source_failure_the_ledger_cannot_record_is_still_the_error_shown(tmp_path, events, broken, channels):
    """The source's error is the cause: a ledger failing too (here a trigger refuses to record the failed run)
    replaced it, and the exit code with it (1, not 3). The source's error is shown, then that the ledger
    could not record the failed run; the exit code stays the source's."""
    import sqlite3

    view_source(tmp_path, events)
    path = write_config(tmp_path, events=tmp_path / "events.duckdb", channels=outbox(path=str(tmp_path / "outbox")),
                        reports=[{**NY_WEEKLY, "channels": channels}])
    Ledger(load_config(path).ledger.url).close()
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        db.execute(REFUSE_FAILED_RUN)
    break_source(tmp_path, broken)
    code, out = due_run(path, "2026-11-30T14:01:00Z")
    cause = "DuckDB file not found" if broken == "file missing" else "query failed: Invalid Input Error"
    assert code == 3, out
    assert re.search(rf"^weekly 2026-W48: error: .*source[ .].*{cause}.*; the ledger could not record this failed run "
                     r"\(the ledger sqlite:///\S+ failed: .*refused by the test trigger.*\)$", out, re.M), out


@pytest.mark.parametrize("ledger_down", [False, True])
def test_a_manual_run_whose_source_is_down_is_in_history_and_not_due_for_the_scheduler(tmp_path, events, ledger_down):
    """`agentdigest run` with the source down exited 3 and recorded nothing, where a run whose query failed,
    or a scheduled run, is in history as failed: the operator reading history saw no trace of the attempt.
    It is recorded as the failed manual run it was. A manual run (of any period, a backfill of last year's)
    does not make its period due for the scheduler, as one whose query failed never did."""
    import sqlite3

    path = write_config(tmp_path, events=tmp_path / "events.duckdb", channels=outbox(path=str(tmp_path / "outbox")),
                        reports=[NY_WEEKLY])  # its events' database is down: not there
    if ledger_down:
        Ledger(load_config(path).ledger.url).close()
        with sqlite3.connect(tmp_path / "ledger.db") as db:
            db.execute(REFUSE_FAILED_RUN)
    done = cli("run", "weekly", "--period", "2026-W47", "--now", "2026-12-01T00:00:00Z", "--config", str(path))
    assert done.returncode == 3, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("agentdigest: error: ") and "source.url: DuckDB file not found" in line, line
    ledger = Ledger(load_config(path).ledger.url)
    try:
        runs = [(r["trigger"], r["period_key"], r["state"], r["error"]) for r in ledger.history("weekly")]
        tried = ledger.tried_periods("weekly")
    finally:
        ledger.close()
    if ledger_down:
        assert line.endswith("; the ledger could not record this failed run (the ledger sqlite:///"
                             f"{tmp_path / 'ledger.db'} failed: ledger write refused by the test trigger)"), line
        assert [state for _, _, state, _ in runs] == ["abandoned"]  # started, never closed, its process gone
        return
    assert [r[:3] for r in runs] == [("manual", "2026-W47", "failed")] and "DuckDB file not found" in runs[0][3]
    assert tried == ([], [])
    shown = cli("history", "--config", str(path), extra_env={"COLUMNS": "300"}).stdout
    assert "run (manual)" in shown and "failed" in shown and "DuckDB file not found" in shown, shown


@pytest.mark.parametrize("replaced_by", [[], ["vp2@example.com"]])
def test_a_refused_recipient_removed_from_the_config_no_longer_keeps_its_period_due(tmp_path, events, smtp_server,
                                                                                   tls_cert, replaced_by):
    """Found in a delivery audit: a recipient refused for good (550 no such user), taken out of the config
    (or replaced by the right address), kept its failed row, so the week every current recipient had stayed
    due and late for a year: re-run by every pass, named by check --missed, alarmed as late."""
    server = smtp_server(rcpt={"vp@example.com": "550 5.1.1 no such user"})
    mail = {"type": "email", "to": ["cto@example.com", "vp@example.com"], "from": "reports@example.com",
            "smtp_url": server.url(), "ca_file": str(tls_cert[0]), "retry_budget": 0, "timeout": 5}
    report = {**NY_WEEKLY, "channels": ["mail"]}
    path = write_config(tmp_path, events=events, channels={"mail": mail}, reports=[report])
    assert due_run(path, "2026-11-30T14:01:00Z")[0] == 1  # vp refused
    mail["to"] = ["cto@example.com", *replaced_by]
    path = write_config(tmp_path, events=events, channels={"mail": mail}, reports=[report])
    if replaced_by:  # the right address gets the week, and only it
        code, out = due_run(path, "2026-11-30T14:31:00Z")
        assert code == 0 and "vp2@example.com: sent" in out and "cto@example.com: skipped_sent" in out, out
    assert [sorted(rcpts) for _, rcpts, _ in server.messages] == [["cto@example.com"], *([r] for r in replaced_by)]
    code, out = due_run(path, "2026-11-30T15:01:00Z")
    assert (code, out.strip()) == (0, "weekly 2026-W48: already sent")
    assert check_missed(load_config(path), now=utc("2026-11-30T17:00:00Z"), console=console()[0]) == 0
    assert len(server.messages) == 1 + len(replaced_by)


def refused_and_accepted(tls_cert, server, to=("cto@example.com", "vp@example.com")) -> dict:
    return {"type": "email", "to": list(to), "from": "reports@example.com", "smtp_url": server.url(),
            "ca_file": str(tls_cert[0]), "retry_budget": 0, "timeout": 5}


def test_run_due_does_not_try_again_a_recipient_refused_for_good(tmp_path, events, smtp_server, tls_cert):
    """Found in a delivery audit: the scheduler's retries skipped a recipient refused for good (550), but
    `run --due` from cron sent to it again at every run, for the same 550 each time, for as long as the period
    stayed due (a year). A later `--due` now skips it, and says how to try it again; a changed config and an
    explicit `run REPORT --period KEY` try it again."""
    server = smtp_server(rcpt={"vp@example.com": "550 5.1.1 no such user"})
    mail = refused_and_accepted(tls_cert, server)
    report = {**NY_WEEKLY, "channels": ["mail"]}
    path = write_config(tmp_path, events=events, channels={"mail": mail}, reports=[report])
    assert due_run(path, "2026-11-30T14:01:00Z")[0] == 1
    code, out = due_run(path, "2026-11-30T14:06:00Z")
    assert server.handler.rcpts.count("vp@example.com") == 1, out  # 2 before: each cron run tried it again
    assert code == 1  # the period is still not delivered to every recipient
    [refused] = [line for line in out.splitlines() if "vp@example.com" in line]
    assert refused.startswith("weekly 2026-W48 -> mail vp@example.com: not tried again, refused for good before (")
    assert refused.endswith(": 550 5.1.1 no such user); `agentdigest run weekly --period 2026-W48 --config "
                            f"{path}` tries it again"), out
    assert "cto@example.com: skipped_sent" in out
    assert [rcpts for _, rcpts, _ in server.messages] == [["cto@example.com"]]
    ledger = Ledger(load_config(path).ledger.url)
    try:
        vp = ledger.delivery("weekly", "2026-W48", "mail", "vp@example.com")
        assert (vp["state"], vp["retryable"], vp["attempts"]) == ("failed", False, 1)
    finally:
        ledger.close()

    # A changed config (the channel's settings) tries every target again, as a changed config does for the scheduler
    path = write_config(tmp_path, events=events, channels={"mail": {**mail, "timeout": 6}}, reports=[report])
    assert due_run(path, "2026-11-30T14:11:00Z")[0] == 1
    assert server.handler.rcpts.count("vp@example.com") == 2
    assert due_run(path, "2026-11-30T14:16:00Z")[0] == 1
    assert server.handler.rcpts.count("vp@example.com") == 2
    # ... and so does an explicit run of the period
    config = load_config(path)
    (outcome,) = run_reports(config, list(config.reports), period_key="2026-W48", now=utc("2026-11-30T14:21:00Z"),
                             formats=FORMATS)
    assert [(d.recipient, d.state) for d in outcome.deliveries] == [("cto@example.com", "skipped_sent"),
                                                                   ("vp@example.com", "failed")]
    assert server.handler.rcpts.count("vp@example.com") == 3


def test_run_due_quiet_says_a_refusal_for_good_once(tmp_path, events, smtp_server, tls_cert):
    """Found in an operator review: a recipient refused for good (550) was printed at every `run --due --quiet` from
    cron for a day ("not tried again, refused for good before"), beside the recipient that got it ("skipped_sent"),
    so cron mailed the same failure every 5 minutes. With --quiet it is said by the run that was refused (its line
    on stdout, its ERROR line on stderr), not by the runs that only pass over it; those still exit 1, as the period
    is not delivered to it. A new failure (a recipient added and refused) is said, and without --quiet the line
    stays."""
    server = smtp_server(rcpt={"vp@example.com": "550 5.1.1 no such user", "new@example.com": "550 5.1.1 unknown"})
    mail = refused_and_accepted(tls_cert, server)
    report = {**NY_WEEKLY, "channels": ["mail"]}
    path = write_config(tmp_path, events=events, channels={"mail": mail}, reports=[report])

    def quiet(now: str):
        done = cli("run", "--due", "--quiet", "--config", str(path), "--now", now, "--format", "json,eml")
        return done.returncode, done.stdout, done.stderr

    code, out, err = quiet("2026-11-30T14:01:00Z")
    assert code == 1 and "-> mail cto@example.com: sent" in out and "-> mail vp@example.com: failed: " in out, out
    assert "550 5.1.1 no such user" in err, err
    for now in ("2026-11-30T14:06:00Z", "2026-11-30T14:11:00Z"):
        assert quiet(now) == (1, "", "")  # printed both lines, and the ERROR line, at each run before
    loud = cli("run", "--due", "--config", str(path), "--now", "2026-11-30T14:16:00Z", "--format", "json,eml")
    assert loud.returncode == 1 and "vp@example.com: not tried again, refused for good before" in loud.stdout

    path = write_config(tmp_path, events=events, reports=[report],
                        channels={"mail": {**mail, "to": [*mail["to"], "new@example.com"]}})
    code, out, err = quiet("2026-11-30T14:21:00Z")  # a changed config tries both again: two new refusals
    assert code == 1 and "-> mail new@example.com: failed: " in out and "-> mail vp@example.com: failed: " in out
    assert "cto@example.com" not in out, out
    assert quiet("2026-11-30T14:26:00Z") == (1, "", "")
    assert [rcpts for _, rcpts, _ in server.messages] == [["cto@example.com"]]


def test_run_due_tries_a_refusal_for_good_again_a_day_later(tmp_path, events, smtp_server, tls_cert):
    """A refusal for good is skipped for a day, then tried once more: a mailbox created since, or a password put
    right in the environment (which the settings' fingerprint cannot see), is not left unsent for the period's
    whole year of being due."""
    import sqlite3

    server = smtp_server(rcpt={"vp@example.com": "550 5.1.1 no such user"})
    path = write_config(tmp_path, events=events, channels={"mail": refused_and_accepted(tls_cert, server)},
                        reports=[{**NY_WEEKLY, "channels": ["mail"]}])
    assert due_run(path, "2026-11-30T14:01:00Z")[0] == 1
    assert due_run(path, "2026-11-30T14:06:00Z")[0] == 1
    assert server.handler.rcpts.count("vp@example.com") == 1
    with sqlite3.connect(tmp_path / "ledger.db") as db:  # the refusal, a little more than a day old
        changed = db.execute("UPDATE deliveries SET updated_at = datetime(updated_at, '-25 hours') "
                             "WHERE recipient = 'vp@example.com'").rowcount
    assert changed == 1
    assert due_run(path, "2026-11-30T14:11:00Z")[0] == 1
    assert server.handler.rcpts.count("vp@example.com") == 2
    assert due_run(path, "2026-11-30T14:16:00Z")[0] == 1  # refused again just now: skipped again
    assert server.handler.rcpts.count("vp@example.com") == 2


def test_the_settings_fingerprint_of_a_refusal_holds_no_secret(tmp_path, events):
    """DESIGN: secrets never reach the ledger, not even as a hash (a weak password can be guessed from one): the
    fingerprint kept with a failure is the same whatever the SMTP password or Slack token, and changes with the
    SMTP host or the recipients."""
    from agentdigest.refusals import settings_fingerprint

    def fingerprint(smtp_url: str, token: str = "xoxb-1-aaaa", to: str = "cto@example.com") -> str:
        mail = {"type": "email", "to": [to], "from": "r@example.com", "smtp_url": smtp_url}
        slack = {"type": "slack", "channel": "C0123456789", "bot_token": token}
        path = write_config(tmp_path, events=events, channels={"mail": mail, "chat": slack},
                            reports=[{**NY_WEEKLY, "channels": ["mail", "chat"]}])
        config = load_config(path)
        return settings_fingerprint(config, config.reports[0])

    base = fingerprint("smtps://u:hunter2@mail.example.com:465")
    assert fingerprint("smtps://u:correct-horse@mail.example.com:465") == base
    assert fingerprint("smtps://u:hunter2@mail.example.com:465", token="xoxb-2-bbbb") == base
    assert fingerprint("smtps://u:hunter2@other.example.com:465") != base
    assert fingerprint("smtps://u:hunter2@mail.example.com:465", to="vp@example.com") != base


@pytest.mark.parametrize("vary", [
    {"PGPW": "correct-horse"},  # the source database's password
    {"S3": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},  # a Spark secret setting
    {"TOKEN": "another-session-token-value"},  # a secret in a presigned file URL's query
], ids=["source-password", "spark-secret", "files-token"])
def test_the_settings_fingerprint_of_a_refusal_holds_no_source_secret(tmp_path, monkeypatch, vary):
    """The source's secrets are secrets too: a database password, a Spark or DuckDB secret setting and a file URL's
    token are kept out of the fingerprint kept with a failure, as the channels' are; its host still counts."""
    from agentdigest.refusals import settings_fingerprint

    def fingerprint(host: str = "db.example.com", **env: str) -> str:
        for name, value in {"PGPW": "hunter2", "S3": "s3-secret-1", "TOKEN": "session-token-1", **env}.items():
            monkeypatch.setenv(name, value)
        path = tmp_path / "agentdigest.toml"
        path.write_text(f"""
[source]
url = "postgresql://u:${{PGPW}}@{host}/events"
files = ["https://bucket.example.com/events.parquet?X-Amz-Security-Token=${{TOKEN}}"]
[source.spark_conf]
"spark.hadoop.fs.s3a.secret.key" = "${{S3}}"
[source.settings]
s3_secret_access_key = "${{S3}}"
[channels.box]
type = "outbox"
path = "{tmp_path / 'outbox'}"
[[reports]]
id = "weekly"
title = "Weekly"
period = "week"
timezone = "UTC"
schedule = "0 9 * * mon"
channels = ["box"]
""", encoding="utf-8")
        config = load_config(path)
        return settings_fingerprint(config, config.reports[0])

    base = fingerprint()
    assert fingerprint(**vary) == base
    assert fingerprint(host="other.example.com") != base


def test_run_due_tries_again_a_recipient_deferred(tmp_path, events, smtp_server, tls_cert):
    """A transient refusal (451) is no refusal for good: the next `run --due` sends to that recipient."""
    server = smtp_server(rcpt={"vp@example.com": ["451 4.2.1 busy"]})  # then accepted
    mail = refused_and_accepted(tls_cert, server)
    path = write_config(tmp_path, events=events, channels={"mail": mail}, reports=[{**NY_WEEKLY, "channels": ["mail"]}])
    assert due_run(path, "2026-11-30T14:01:00Z")[0] == 1
    code, out = due_run(path, "2026-11-30T14:06:00Z")
    assert code == 0 and "vp@example.com: sent" in out, out
    assert server.handler.rcpts.count("vp@example.com") == 2
    assert [rcpts for _, rcpts, _ in server.messages] == [["cto@example.com"], ["vp@example.com"]]


def test_run_due_skips_a_period_refused_for_good_everywhere_without_recomputing_it(tmp_path, events, smtp_server,
                                                                                  tls_cert):
    """A period whose only recipient was refused for good is neither recomputed nor recorded as a new run by a
    later `run --due`: nothing it could send has changed."""
    server = smtp_server(rcpt={"vp@example.com": "550 5.1.1 no such user"})
    mail = refused_and_accepted(tls_cert, server, to=["vp@example.com"])
    path = write_config(tmp_path, events=events, channels={"mail": mail}, reports=[{**NY_WEEKLY, "channels": ["mail"]}])
    assert due_run(path, "2026-11-30T14:01:00Z")[0] == 1
    archived = {p: p.stat().st_mtime_ns for p in (tmp_path / "reports").rglob("*") if p.is_file()}
    code, out = due_run(path, "2026-11-30T14:06:00Z")
    assert code == 1 and "vp@example.com: not tried again, refused for good before" in out, out
    assert server.handler.rcpts.count("vp@example.com") == 1
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "reports").rglob("*") if p.is_file()} == archived
    ledger = Ledger(load_config(path).ledger.url)
    try:
        assert [(r["trigger"], r["state"]) for r in ledger.history("weekly") if r.get("trigger")] == [("due", "failed")]
    finally:
        ledger.close()


def archived_times(tmp_path) -> dict:
    return {p: p.stat().st_mtime_ns for p in (tmp_path / "reports" / "weekly").rglob("*") if p.is_file()}


def test_run_due_retries_a_failed_period_from_its_archive_during_an_outage(tmp_path, events, smtp_server, tls_cert):
    """Found in an operator review: while the relay was down, every `run --due` from cron (every 5 minutes)
    recomputed the failed week (its source queried, rendered, the archive rewritten) only to fail to send it
    again. A period whose every target failed, under the settings it still has, is now delivered from what the
    first run archived, as a partly sent one is; the report that finally goes out is that one (its Date and
    Message-ID are the archived message.eml's). A changed config (here the channel's timeout) recomputes it."""
    port = free_port()  # the relay is down: nothing listens there
    mail = {"type": "email", "to": ["cto@example.com"], "from": "reports@example.com", "retry_budget": 0,
            "timeout": 5, "ca_file": str(tls_cert[0]), "smtp_url": f"smtp+starttls://reports:pw@127.0.0.1:{port}"}
    report = {**NY_WEEKLY, "channels": ["mail"]}
    path = write_config(tmp_path, events=events, channels={"mail": mail}, reports=[report])
    code, out = due_run(path, "2026-11-30T14:01:00Z")
    assert code == 1 and "-> mail cto@example.com: failed" in out, out
    first = archived_times(tmp_path)
    archived = message_from_bytes((tmp_path / "reports" / "weekly" / "2026-W48" / "message.eml").read_bytes())
    for now in ("2026-11-30T14:06:00Z", "2026-11-30T14:11:00Z"):
        code, out = due_run(path, now)
        assert code == 1 and "-> mail cto@example.com: failed" in out, out
        assert archived_times(tmp_path) == first  # rewritten at each run before: recomputed

    # Under a changed config the failed period is computed again: what it sends may have changed.
    path = write_config(tmp_path, events=events, reports=[report], channels={"mail": {**mail, "timeout": 6}})
    code, out = due_run(path, "2026-11-30T14:16:00Z")
    assert code == 1 and "-> mail cto@example.com: failed" in out, out
    again = archived_times(tmp_path)
    assert again.keys() == first.keys() and all(again[p] != first[p] for p in first)
    archived = message_from_bytes((tmp_path / "reports" / "weekly" / "2026-W48" / "message.eml").read_bytes())

    server = smtp_server(port=port, password="pw")  # the relay is back
    code, out = due_run(path, "2026-11-30T14:21:00Z")
    assert code == 0 and "-> mail cto@example.com: sent" in out, out
    [(_, rcpts, body)] = server.messages
    sent = message_from_bytes(body)
    assert rcpts == ["cto@example.com"]
    assert (sent["Date"], sent["Message-ID"]) == (archived["Date"], archived["Message-ID"])
    assert {p: t for p, t in archived_times(tmp_path).items() if p.name != ".delivered"} == again


# -- a renamed or replaced email channel --------------------------------------------------------

def mail_channel(server, tls_cert, to: list[str]) -> dict:
    return {"type": "email", "to": to, "from": "reports@example.com", "smtp_url": server.url(),
            "ca_file": str(tls_cert[0]), "retry_budget": 0, "timeout": 5}


@pytest.mark.parametrize("ledger", ["kept", "reset"])
def test_a_renamed_email_channel_does_not_send_the_period_again(tmp_path, events, smtp_server, tls_cert, caplog,
                                                                 ledger):
    """A reported limitation: `[channels.mail]` renamed to `[channels.leadership]` (same addresses) was a new
    channel, so the next pass sent the week again to everyone. An address the week went to through a channel
    no longer in the config now counts as sent (compared case-insensitively); an added address gets it. With a
    reset ledger the archive's send log says who got it under the old name."""
    server = smtp_server()
    report = {**NY_WEEKLY, "channels": ["mail"]}
    path = write_config(tmp_path, events=events, reports=[report],
                        channels={"mail": mail_channel(server, tls_cert, ["cto@example.com", "vp@example.com"])})
    assert due_run(path, "2026-11-30T14:01:00Z")[0] == 0
    assert [sorted(rcpts) for _, rcpts, _ in server.messages] == [["cto@example.com", "vp@example.com"]]
    if ledger == "reset":
        for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):
            (tmp_path / name).unlink(missing_ok=True)
    renamed = mail_channel(server, tls_cert, ["CTO@Example.COM", "vp@example.com", "new@example.com"])
    path = write_config(tmp_path, events=events, channels={"leadership": renamed},
                        reports=[{**report, "channels": ["leadership"]}])
    with caplog.at_level(logging.WARNING, logger="agentdigest"):
        code, out = due_run(path, "2026-11-30T14:31:00Z")
    assert code == 0, out
    assert "-> leadership new@example.com: sent" in out and "-> leadership CTO@Example.COM: skipped_sent" in out, out
    assert [sorted(rcpts) for _, rcpts, _ in server.messages][1:] == [["new@example.com"]]
    said = [r.getMessage() for r in caplog.records if "no longer in the config" in r.getMessage()]
    assert said == ["weekly 2026-W48 -> leadership: CTO@Example.COM, vp@example.com already sent as mail (a channel "
                    "no longer in the config); recorded as sent, not sent again"], said
    code, out = due_run(path, "2026-11-30T15:01:00Z")
    assert (code, out.strip()) == (0, "weekly 2026-W48: already sent")
    assert len(server.messages) == 2

    book = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        rows = {(r["channel"], r["recipient"]): r for r in book.deliveries("weekly", "2026-W48")}
    finally:
        book.close()
    assert rows[("leadership", "CTO@Example.COM")]["note"] == "sent as mail (a channel no longer in the config)"
    assert rows[("leadership", "new@example.com")]["note"] is None
    con, buffer = console()
    assert show_history(load_config(path), console=con) == 0
    assert "sent as mail (a channel no longer in the config)" in buffer.getvalue()
    password = server.handler.password
    assert password not in out + buffer.getvalue() + caplog.text
    assert all(password not in str(r) for r in rows.values())

    # A deliberate resend still sends to every current address.
    assert resend(load_config(path), "weekly", "2026-W48", console=console()[0], now=utc("2026-11-30T16:00:00Z")) == 0
    assert sorted(server.messages[-1][1]) == ["CTO@Example.COM", "new@example.com", "vp@example.com"]


@pytest.mark.parametrize("mail_in_report", [True, False])
def test_two_configured_email_channels_sharing_an_address_each_deliver(tmp_path, events, smtp_server, tls_cert,
                                                                       mail_in_report):
    """A channel still in the config is not a renamed one: its address gets the report through a second
    channel too, whether or not the first one still sends this report."""
    server = smtp_server()
    channels = {"mail": mail_channel(server, tls_cert, ["cto@example.com", "vp@example.com"])}
    report = {**NY_WEEKLY, "channels": ["mail"]}
    path = write_config(tmp_path, events=events, reports=[report], channels=channels)
    assert due_run(path, "2026-11-30T14:01:00Z")[0] == 0
    channels["board"] = mail_channel(server, tls_cert, ["cto@example.com", "chair@example.com"])
    path = write_config(tmp_path, events=events, channels=channels,
                        reports=[{**report, "channels": ["mail", "board"] if mail_in_report else ["board"]}])
    code, out = due_run(path, "2026-11-30T14:31:00Z")
    assert code == 0 and "-> board cto@example.com: sent" in out and "no longer" not in out, out
    assert [sorted(rcpts) for _, rcpts, _ in server.messages] == [["cto@example.com", "vp@example.com"],
                                                                   ["chair@example.com", "cto@example.com"]]


# -- a renamed or replaced Slack, webhook or outbox channel ----------------------------------------

#: secret URL paths: a Slack webhook's path is its key, a webhook URL may carry a token
SLACK_HOOK = "/services/T0AAAA/B0{}/PLANTEDslackHOOK{}"
WEBHOOK = "/ingest/PLANTEDwebhookTOKEN{}"
BOT_TOKEN = "xoxb-PLANTED-bot-token"
FAST = {"timeout": 5, "retry_budget": 0.4, "retry_initial": 0.05, "retry_max_wait": 0.1}


@pytest.fixture
def destinations(httpserver, tmp_path):
    """Channel settings by kind and destination ("a", "b"), against a live HTTP server (Slack's webhooks and
    Web API, a generic webhook) or an outbox folder, and how many requests (or files) each destination got."""
    httpserver.expect_request("/api/chat.postMessage").respond_with_json({"ok": True, "channel": "C0A",
                                                                          "ts": "1700000000.000100"})
    for where in "ab":
        httpserver.expect_request(SLACK_HOOK.format(where.upper(), where)).respond_with_data("ok")
        httpserver.expect_request(WEBHOOK.format(where)).respond_with_data("", status=204)

    def settings(kind: str, where: str = "a") -> dict:
        if kind == "slack-webhook":
            return {"type": "slack", "webhook_url": httpserver.url_for(SLACK_HOOK.format(where.upper(), where)), **FAST}
        if kind == "slack-bot":
            return {"type": "slack", "bot_token": BOT_TOKEN, "channel": f"C0{where.upper()}",
                    "api_url": httpserver.url_for("/api/"), **FAST}
        if kind == "webhook":
            return {"type": "webhook", "url": httpserver.url_for(WEBHOOK.format(where)), **FAST}
        return {"type": "outbox", "path": str(tmp_path / f"outbox-{where}")}

    def got(kind: str, where: str = "a") -> int:
        if kind == "outbox":
            return sum(sent_files(tmp_path / f"outbox-{where}").values())
        if kind == "slack-bot":
            return sum(1 for request, _ in httpserver.log if request.path == "/api/chat.postMessage"
                       and f"C0{where.upper()}" in request.get_data(as_text=True))
        path = SLACK_HOOK.format(where.upper(), where) if kind == "slack-webhook" else WEBHOOK.format(where)
        return sum(1 for request, _ in httpserver.log if request.path == path)

    return SimpleNamespace(settings=settings, got=got)


def reset_ledger(folder) -> None:
    for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):
        (folder / name).unlink(missing_ok=True)


@pytest.mark.parametrize("kind,ledger", [("slack-webhook", "kept"), ("slack-webhook", "reset"), ("slack-bot", "kept"),
                                         ("webhook", "kept"), ("webhook", "reset"), ("outbox", "kept"),
                                         ("outbox", "reset")])
def test_a_renamed_channel_does_not_send_the_period_again_to_the_same_destination(tmp_path, events, destinations,
                                                                                   caplog, kind, ledger):
    """A reported limitation: `[channels.chat]` renamed to `[channels.team]` (same webhook URL, same Slack
    channel, same outbox folder) was a new channel, so the next pass sent the week again. A send through a
    channel no longer in the config to the same destination (its fingerprint) now counts as sent. With a reset
    ledger the archive's send log says where it went under the old name."""
    report = {**NY_WEEKLY, "channels": ["chat"]}
    path = write_config(tmp_path, events=events, reports=[report], channels={"chat": destinations.settings(kind)})
    assert due_run(path, "2026-11-30T14:01:00Z")[0] == 0
    assert destinations.got(kind) == 1
    if ledger == "reset":
        reset_ledger(tmp_path)
    path = write_config(tmp_path, events=events, channels={"team": destinations.settings(kind)},
                        reports=[{**report, "channels": ["team"]}])
    with caplog.at_level(logging.WARNING, logger="agentdigest"):
        code, out = due_run(path, "2026-11-30T14:31:00Z")
    assert (code, out.strip()) == (0, "weekly 2026-W48 -> team: skipped_sent"), out
    assert destinations.got(kind) == 1
    said = [r.getMessage() for r in caplog.records if "no longer in the config" in r.getMessage()]
    assert said == ["weekly 2026-W48 -> team: already sent as chat (a channel no longer in the config); "
                    "recorded as sent, not sent again"], said
    code, out = due_run(path, "2026-11-30T15:01:00Z")
    assert (code, out.strip()) == (0, "weekly 2026-W48: already sent")
    assert check_missed(load_config(path), now=utc("2026-11-30T17:00:00Z"), console=console()[0]) == 0

    book = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        rows = {r["channel"]: r for r in book.deliveries("weekly", "2026-W48")}
    finally:
        book.close()
    assert rows["team"]["note"] == "sent as chat (a channel no longer in the config)"
    assert rows["team"]["destination"] == rows["chat"]["destination"]
    assert re.fullmatch(r"[0-9a-f]{24}", rows["team"]["destination"])
    con, buffer = console()
    assert show_history(load_config(path), console=con) == 0
    assert "sent as chat (a channel no longer in the config)" in buffer.getvalue()

    # A deliberate resend still sends.
    assert resend(load_config(path), "weekly", "2026-W48", console=console()[0], now=utc("2026-11-30T16:00:00Z")) == 0
    assert destinations.got(kind) == 2


@pytest.mark.parametrize("kind", ["slack-webhook", "slack-bot", "webhook"])
def test_only_a_fingerprint_of_the_destination_is_stored(tmp_path, events, destinations, kind):
    """Destinations are secrets (a Slack webhook's path is its key, a webhook URL may carry a token, a bot
    token authenticates): neither the ledger's database nor the archive's send log holds them, only a
    fingerprint of where each send went."""
    report = {**NY_WEEKLY, "channels": ["chat"]}
    path = write_config(tmp_path, events=events, reports=[report], channels={"chat": destinations.settings(kind)})
    assert due_run(path, "2026-11-30T14:01:00Z")[0] == 0
    path = write_config(tmp_path, events=events, channels={"team": destinations.settings(kind)},
                        reports=[{**report, "channels": ["team"]}])
    assert due_run(path, "2026-11-30T14:31:00Z")[0] == 0
    assert destinations.got(kind) == 1
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("ledger.db*"))
    log = (tmp_path / "reports" / "weekly" / "2026-W48" / ".delivered").read_bytes()
    sends = [json.loads(line) for line in log.splitlines()]
    assert [(s["channel"], s["recipient"]) for s in sends] == [("chat", "")]
    assert re.fullmatch(r"[0-9a-f]{24}", sends[0]["destination"]) and sends[0]["destination"].encode() in stored
    for secret in (b"PLANTED", b"/services/T0AAAA", b"/ingest/", b"/api/"):
        assert secret not in stored and secret not in log, secret


@pytest.mark.parametrize("kind,renamed", [
    ("slack-webhook", ("slack-webhook", "b")),   # another webhook
    ("slack-webhook", ("slack-bot", "a")),       # switched to bot mode
    ("slack-bot", ("slack-bot", "b")),           # another Slack channel
    ("slack-bot", ("slack-webhook", "a")),
    ("webhook", ("webhook", "b")),
    ("outbox", ("outbox", "b")),
])
def test_a_renamed_channel_with_another_destination_sends_the_period(tmp_path, events, destinations, kind, renamed):
    report = {**NY_WEEKLY, "channels": ["chat"]}
    path = write_config(tmp_path, events=events, reports=[report], channels={"chat": destinations.settings(kind)})
    assert due_run(path, "2026-11-30T14:01:00Z")[0] == 0
    path = write_config(tmp_path, events=events, channels={"team": destinations.settings(*renamed)},
                        reports=[{**report, "channels": ["team"]}])
    code, out = due_run(path, "2026-11-30T14:31:00Z")
    assert code == 0 and "-> team: sent" in out and "no longer" not in out, out
    assert (destinations.got(kind), destinations.got(*renamed)) == (1, 1)


def test_a_renamed_slack_bot_of_another_workspace_sends_the_period(tmp_path, events, destinations, httpserver):
    """Found in an audit: a bot's channel ("#reports", often a name) is a channel of the bot token's workspace,
    but the destination was the API URL and the channel alone, so a channel replaced by a bot of another
    workspace posting to its channel of the same name was told the period was sent, and that workspace never
    got it. Another token is another destination (a token rotated as the channel is renamed sends once more)."""
    report = {**NY_WEEKLY, "channels": ["acme"]}
    path = write_config(tmp_path, events=events, reports=[report], channels={"acme": destinations.settings("slack-bot")})
    assert due_run(path, "2026-11-30T14:01:00Z")[0] == 0
    other = {**destinations.settings("slack-bot"), "bot_token": "xoxb-PLANTED-other-workspace"}
    path = write_config(tmp_path, events=events, channels={"partner": other}, reports=[{**report, "channels": ["partner"]}])
    code, out = due_run(path, "2026-11-30T14:31:00Z")
    assert code == 0 and "-> partner: sent" in out and "no longer" not in out, out
    tokens = [request.headers.get("Authorization") for request, _ in httpserver.log
              if request.path == "/api/chat.postMessage"]
    assert tokens == [f"Bearer {BOT_TOKEN}", "Bearer xoxb-PLANTED-other-workspace"], tokens


@pytest.mark.parametrize("first,then,ledger", [("#agent-reports", "C0A", "kept"), ("#agent-reports", "C0A", "reset"),
                                                ("C0A", "#agent-reports", "kept"), ("#agent-reports", "#agent-reports", "kept")])
def test_a_renamed_slack_channel_spelled_by_name_or_by_id_is_one_place(tmp_path, events, destinations, httpserver,
                                                                        caplog, first, then, ledger):
    """Found in a delivery audit: a Slack channel renamed in the config and given its id for its #name (or the
    reverse) was another destination, so the week went to that Slack channel again. Slack answers a post with the
    channel's id, and each send keeps a fingerprint of it too; a #name replacing an id is looked up
    (conversations.list), as a retried PDF upload does. check --missed needs no lookup for a #name gone to its id."""
    httpserver.expect_request("/api/conversations.list").respond_with_json(
        {"ok": True, "channels": [{"id": "C0B", "name": "other"}, {"id": "C0A", "name": "agent-reports"}]})
    bot = {**destinations.settings("slack-bot")}
    report = {**NY_WEEKLY, "channels": ["chat"]}
    path = write_config(tmp_path, events=events, reports=[report], channels={"chat": {**bot, "channel": first}})
    assert due_run(path, "2026-11-30T14:01:00Z")[0] == 0
    if ledger == "reset":
        reset_ledger(tmp_path)
    path = write_config(tmp_path, events=events, channels={"team": {**bot, "channel": then}},
                        reports=[{**report, "channels": ["team"]}])
    with caplog.at_level(logging.WARNING, logger="agentdigest"):
        code, out = due_run(path, "2026-11-30T14:31:00Z")
    assert (code, out.strip()) == (0, "weekly 2026-W48 -> team: skipped_sent"), out
    assert [r.path for r, _ in httpserver.log if r.path.endswith("chat.postMessage")] == ["/api/chat.postMessage"]
    looked_up = [r.path for r, _ in httpserver.log if r.path.endswith("conversations.list")]
    assert looked_up == (["/api/conversations.list"] if then.startswith("#") and first != then else []), looked_up
    said = [r.getMessage() for r in caplog.records if "no longer in the config" in r.getMessage()]
    assert said == ["weekly 2026-W48 -> team: already sent as chat (a channel no longer in the config); "
                    "recorded as sent, not sent again"], said
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("ledger.db*"))
    assert b"PLANTED" not in stored and b"PLANTED" not in (tmp_path / "reports" / "weekly" / "2026-W48" / ".delivered").read_bytes()


def test_a_slack_name_that_cannot_be_looked_up_is_sent_the_period(tmp_path, events, destinations, httpserver, caplog):
    """A #name replacing a renamed channel's id needs conversations.list (channels:read) to tell it is the same
    place; a bot without the scope sends the period (at least once, as before), and says why."""
    httpserver.expect_request("/api/conversations.list").respond_with_json({"ok": False, "error": "missing_scope"})
    bot = destinations.settings("slack-bot")
    report = {**NY_WEEKLY, "channels": ["chat"]}
    path = write_config(tmp_path, events=events, reports=[report], channels={"chat": bot})
    assert due_run(path, "2026-11-30T14:01:00Z")[0] == 0
    path = write_config(tmp_path, events=events, channels={"team": {**bot, "channel": "#agent-reports"}},
                        reports=[{**report, "channels": ["team"]}])
    with caplog.at_level(logging.WARNING, logger="agentdigest"):
        code, out = due_run(path, "2026-11-30T14:31:00Z")
    assert code == 0 and "-> team: sent" in out, out
    said = [r.getMessage() for r in caplog.records if "cannot tell" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("weekly 2026-W48 -> team: cannot tell whether it is where a channel "
                                                 "no longer in the config sent the period") and "missing_scope" in said[0]
    assert BOT_TOKEN not in caplog.text


@pytest.mark.parametrize("kind,renamed,late", [
    ("outbox", ("outbox", "a"), False),
    ("slack-webhook", ("slack-webhook", "a"), False),
    ("slack-bot", ("slack-bot", "a"), False),      # sent to #agent-reports, renamed and given its id (C0A)
    ("outbox", ("outbox", "b"), True),             # another folder never got it: late, rightly
])
def test_check_missed_does_not_call_a_renamed_channels_period_late(tmp_path, events, destinations, kind, renamed, late):
    """Found in a delivery audit: once a channel was renamed in the config, `check --missed` (and the late alarm)
    said the week it had sent was late, until a pass recorded it under the new name (with `run --due` from a
    weekly cron, all week). A period that a channel no longer in the config sent to the same place (or address)
    now counts as delivered, as the pass would only record it; check --missed still writes nothing."""
    report = {**NY_WEEKLY, "channels": ["chat"]}
    first = destinations.settings(kind)
    if kind == "slack-bot":
        first["channel"] = "#agent-reports"  # Slack answers the post with its id, C0A
    path = write_config(tmp_path, events=events, reports=[report], channels={"chat": first})
    assert due_run(path, "2026-11-30T14:01:00Z")[0] == 0
    path = write_config(tmp_path, events=events, channels={"team": destinations.settings(*renamed)},
                        reports=[{**report, "channels": ["team"]}])
    before = {p.name: p.read_bytes() for p in tmp_path.glob("ledger.db*")}
    con, buffer = console()
    assert check_missed(load_config(path), now=utc("2026-11-30T17:00:00Z"), console=con) == int(late), buffer.getvalue()
    assert ("2026-W48" in buffer.getvalue()) == late
    assert {p.name: p.read_bytes() for p in tmp_path.glob("ledger.db*")} == before


def test_a_renamed_webhook_with_other_credentials_sends_the_period(tmp_path, events, destinations, httpserver):
    """Found in an audit: `user:password@` was left out of a URL's destination, so on a shared ingest URL a
    channel replaced by another tenant's (the same URL, other credentials) was told the period was sent."""
    report = {**NY_WEEKLY, "channels": ["tenant1"]}
    url = destinations.settings("webhook")["url"]
    first = {**destinations.settings("webhook"), "url": url.replace("://", "://one:PLANTED1@")}
    path = write_config(tmp_path, events=events, reports=[report], channels={"tenant1": first})
    assert due_run(path, "2026-11-30T14:01:00Z")[0] == 0
    second = {**first, "url": url.replace("://", "://two:PLANTED2@")}
    path = write_config(tmp_path, events=events, channels={"tenant2": second},
                        reports=[{**report, "channels": ["tenant2"]}])
    code, out = due_run(path, "2026-11-30T14:31:00Z")
    assert code == 0 and "-> tenant2: sent" in out and "no longer" not in out, out
    assert destinations.got("webhook") == 2
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("ledger.db*"))
    assert b"PLANTED" not in stored


@pytest.mark.parametrize("old_in_report", [True, False])
def test_a_channel_still_in_the_config_is_not_a_renamed_one(tmp_path, events, destinations, old_in_report):
    """Two configured channels with one destination each deliver, as two email channels sharing an address do."""
    channels = {"box": destinations.settings("outbox")}
    report = {**NY_WEEKLY, "channels": ["box"]}
    path = write_config(tmp_path, events=events, reports=[report], channels=channels)
    assert due_run(path, "2026-11-30T14:01:00Z")[0] == 0
    channels["box2"] = destinations.settings("outbox")
    path = write_config(tmp_path, events=events, channels=channels,
                        reports=[{**report, "channels": ["box", "box2"] if old_in_report else ["box2"]}])
    code, out = due_run(path, "2026-11-30T14:31:00Z")
    assert code == 0 and "-> box2: sent" in out and "no longer" not in out, out
    assert destinations.got("outbox") == 2


def test_a_changed_schedule_does_not_send_a_week_older_than_one_already_sent(tmp_path, events):
    """Found in a scheduling audit: after W48 went out on Monday, moving the schedule to Friday made the
    next pass send W47 (never sent, from before the install), although catch_up = 0 means no backfill."""
    path = write_config(tmp_path, events=events, channels=outbox(path=str(tmp_path / "outbox")), reports=[NY_WEEKLY])
    assert due_run(path, "2026-11-30T14:01:00Z")[0] == 0
    path = write_config(tmp_path, events=events, channels=outbox(path=str(tmp_path / "outbox")),
                        reports=[{**NY_WEEKLY, "schedule": "0 9 * * fri"}])
    code, out = due_run(path, "2026-12-01T14:01:00Z")  # Tuesday: the last Friday fire's week is W47
    assert code == 0 and sent_files(tmp_path / "outbox") == {("weekly", "2026-W48"): 1}
    assert check_missed(load_config(path), now=utc("2026-12-01T18:00:00Z"), console=console()[0]) == 0
    assert due_run(path, "2026-12-11T14:01:00Z")[0] == 0  # the next Friday after W49: it goes out as usual
    assert sent_files(tmp_path / "outbox") == {("weekly", "2026-W48"): 1, ("weekly", "2026-W49"): 1}


def test_a_period_sent_by_a_clock_that_was_ahead_does_not_silence_the_real_ones(tmp_path, events):
    """Found in a scheduling audit: run --due --now 2030-01-01 (or a host booted with a wrong clock) sent
    2029-W52, and every real week after that read "nothing is due yet", unflagged by check --missed."""
    path = write_config(tmp_path, events=events, channels=outbox(path=str(tmp_path / "outbox")), reports=[NY_WEEKLY])
    assert due_run(path, "2030-01-07T15:00:00Z")[0] == 0
    assert sent_files(tmp_path / "outbox") == {("weekly", "2030-W01"): 1}
    assert check_missed(load_config(path), now=utc("2026-11-30T16:00:00Z"), console=console()[0]) == 1  # late
    code, out = due_run(path, "2026-11-30T14:01:00Z")
    assert code == 0 and sent_files(tmp_path / "outbox") == {("weekly", "2030-W01"): 1, ("weekly", "2026-W48"): 1}, out


def test_a_due_period_older_than_one_sent_is_said_not_nothing_due(tmp_path, events):
    """Found in a scheduling audit: after a schedule change the skipped week read "nothing is due yet"."""
    path = write_config(tmp_path, events=events, channels=outbox(path=str(tmp_path / "outbox")), reports=[NY_WEEKLY])
    assert due_run(path, "2026-11-30T14:01:00Z")[0] == 0
    path = write_config(tmp_path, events=events, channels=outbox(path=str(tmp_path / "outbox")),
                        reports=[{**NY_WEEKLY, "schedule": "0 9 * * fri"}])
    code, out = due_run(path, "2026-12-01T14:01:00Z")
    assert code == 0 and "nothing is due" not in out
    # Found in a README audit: the period sent is named, and a schedule change is not the only cause said.
    assert "weekly 2026-W47: not sent, a later period (2026-W48) went out already, by a run before its schedule" \
        in out and "catch_up = 1" in out, out


@pytest.mark.parametrize("catch_up, said", [
    (0, "weekly: 2026-W45 to 2026-W47 (3 weeks) came due while no pass ran and are not sent (catch_up = 0)"),
    (2, "weekly: 2026-W45 came due while no pass ran and is not sent (catch_up = 2)"),
    (3, None),
])
def test_periods_a_downtime_passed_over_are_said_not_sent(tmp_path, events, catch_up, said):
    """Found in a scheduling audit: a scheduler down for weeks sent the latest week on restart (the documented
    policy: no backfill beyond catch_up), and nothing said that the weeks between were never sent."""
    box = tmp_path / "outbox"
    path = write_config(tmp_path, events=events, channels=outbox(path=str(box)),
                        reports=[{**NY_WEEKLY, "catch_up": catch_up}])
    assert due_run(path, "2026-11-02T14:01:00Z")[0] == 0  # Monday of W45: W44 goes out (and catch_up before it)
    code, out = due_run(path, "2026-11-30T14:01:00Z")  # four weeks later: W48 is the latest due
    sent = {key for _, key in sent_files(box)}
    expected = {f"2026-W{last - n}" for last in (44, 48) for n in range(catch_up + 1)}
    assert code == 0 and sent == expected, out
    if said is None:
        assert "no pass ran" not in out, out
    else:
        assert said in out and "to send one: agentdigest run weekly --period 2026-W45" in out, out
    assert "no pass ran" not in due_run(path, "2026-11-30T14:06:00Z")[1]  # said once: the latest week is sent now


def test_check_missed_on_the_command_line(tmp_path, events):
    path = write_config(tmp_path, events=events, channels=outbox(path=str(tmp_path / "outbox")), reports=[NY_WEEKLY])
    late = cli("check", "--missed", "--config", str(path), "--now", "2026-11-30T16:30:00Z")
    assert late.returncode == 1 and "weekly" in late.stdout and "2026-W48" in late.stdout
    assert cli("run", "--due", "--config", str(path), "--now", "2026-11-30T16:30:00Z", "--format", "json,eml").returncode == 0
    ok = cli("check", "--missed", "--config", str(path), "--now", "2026-11-30T16:31:00Z")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # A ledger it cannot read is not a late report: exit 3, one line (1 before: a monitor could not tell them apart)
    (tmp_path / "ledger.db").write_bytes(b"not a database" * 400)
    for name in ("ledger.db-wal", "ledger.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    unread = cli("check", "--missed", "--config", str(path), "--now", "2026-11-30T16:31:00Z")
    assert (unread.returncode, unread.stdout) == (3, ""), unread.stdout + unread.stderr
    assert unread.stderr.startswith("agentdigest: error: cannot reach the ledger sqlite:///") and \
        unread.stderr.count("\n") == 1, unread.stderr


# -- history --next ---------------------------------------------------------------------------

def test_history_next_shows_local_and_utc_times(tmp_path, events):
    path = write_config(tmp_path, events=events, channels=outbox(path=str(tmp_path / "outbox")),
                        reports=[{**NY_WEEKLY, "id": "berlin", "timezone": "Europe/Berlin"}, NY_WEEKLY])
    con, buffer = console()
    with time_machine.travel(utc("2026-11-25T12:00:00Z"), tick=False):
        assert show_next(load_config(path), console=con) == 0
    text = buffer.getvalue()
    assert "Mon 2026-11-30 09:00 CET" in text and "2026-11-30 08:00Z" in text
    assert "Mon 2026-11-30 09:00 EST" in text and "2026-11-30 14:00Z" in text
    assert "2026-W48" in text


def test_history_next_says_when_the_period_it_would_deliver_is_sent_already(tmp_path, events):
    """Found in a README audit: after a manual run of this week before Monday's 09:00, history --next still said
    the 09:00 run delivers 2026-W48, which that run then skipped."""
    path = write_config(tmp_path, events=events, channels=outbox(path=str(tmp_path / "outbox")), reports=[NY_WEEKLY])
    con, buffer = console()
    with time_machine.travel(utc("2026-11-30T10:00:00Z"), tick=False):
        assert show_next(load_config(path), console=con) == 0  # no ledger yet: shown all the same
        assert "2026-W48" in buffer.getvalue() and "sent already" not in buffer.getvalue()
    assert cli("run", "weekly", "--period", "2026-W48", "--config", str(path), "--format", "json,eml").returncode == 0
    con, buffer = console()
    with time_machine.travel(utc("2026-11-30T10:00:00Z"), tick=False):
        assert show_next(load_config(path), console=con) == 0
    assert "2026-W48 (sent already: the run skips it)" in buffer.getvalue()


# -- alarms -----------------------------------------------------------------------------------

def dead_email(port: int) -> dict:
    return {"type": "email", "to": ["cto@example.com"], "from": "reports@example.com",
            "smtp_url": f"smtp://reports:PLANTED-smtp-secret@127.0.0.1:{port}", "retry_budget": 0, "timeout": 5}


def test_a_failed_and_late_report_raises_one_alarm_each_through_the_alarm_channel(tmp_path, events):
    channels = {"mail": dead_email(free_port()), **outbox("alarms", path=str(tmp_path / "alarm-box"))}
    path = write_config(tmp_path, events=events, channels=channels, alarms={"channel": "alarms"},
                        reports=[{**NY_WEEKLY, "channels": ["mail"]}])
    for now in ("2026-11-30T17:00:00Z", "2026-11-30T17:30:00Z"):  # past due + 2 h; the mail relay is down
        code, out = due_run(path, now)
        assert code == 1 and "failed" in out
    alarms = sorted((tmp_path / "alarm-box" / "_alarms").rglob("*.eml"))
    assert [p.parent.name for p in alarms] == ["weekly.2026-W48.failed", "weekly.2026-W48.late"]
    failed = message_from_bytes(alarms[0].read_bytes())
    assert failed["Subject"] == "[agentdigest] weekly 2026-W48 could not be delivered"
    body = failed.get_payload(decode=True).decode()
    assert "mail" in body and "PLANTED" not in body and "***" in body
    ledger = Ledger(load_config(path).ledger.url)
    try:
        rows = {(r["channel"], r["recipient"]): r["state"] for r in ledger.deliveries("weekly", "2026-W48")}
    finally:
        ledger.close()
    assert rows[("alarm:alarms", "failed")] == "sent" and rows[("alarm:alarms", "late")] == "sent"
    assert rows[("mail", "cto@example.com")] == "failed"


def test_the_alarm_goes_by_email_when_the_reports_webhook_is_dead(tmp_path, events, smtp_server, tls_cert):
    server = smtp_server()
    channels = {
        "hook": {"type": "webhook", "url": f"http://127.0.0.1:{free_port()}/in", "retry_budget": 0, "timeout": 5},
        "oncall": {"type": "email", "to": ["oncall@example.com"], "from": "agentdigest@example.com",
                   "smtp_url": server.url(), "ca_file": str(tls_cert[0])},
    }
    path = write_config(tmp_path, events=events, channels=channels, alarms={"channel": "oncall", "grace_minutes": 30},
                        reports=[{**NY_WEEKLY, "channels": ["hook"]}])
    assert due_run(path, "2026-11-30T14:05:00Z")[0] == 1  # failed, not late yet (grace 30 min)
    assert due_run(path, "2026-11-30T14:45:00Z")[0] == 1  # failed again, now late
    subjects = sorted(message_from_bytes(raw)["Subject"] for _, _, raw in server.messages)
    assert subjects == ["[agentdigest] weekly 2026-W48 could not be delivered", "[agentdigest] weekly 2026-W48 is late"]
    assert {tuple(rcpts) for _, rcpts, _ in server.messages} == {("oncall@example.com",)}


def test_no_alarm_when_everything_went(tmp_path, events):
    channels = {**outbox(path=str(tmp_path / "outbox")), **outbox("alarms", path=str(tmp_path / "alarm-box"))}
    path = write_config(tmp_path, events=events, channels=channels, alarms={"channel": "alarms"}, reports=[NY_WEEKLY])
    assert due_run(path, "2026-11-30T17:00:00Z")[0] == 0
    assert not (tmp_path / "alarm-box").exists()


# -- decisions are logged ---------------------------------------------------------------------

def test_json_log_lines_name_each_decision(tmp_path, events):
    path = write_config(tmp_path, events=events, reports=[NY_WEEKLY], channels=outbox(path=str(tmp_path / "outbox")))
    stream = io.StringIO()
    root, saved = logging.getLogger(), (logging.getLogger().handlers[:], logging.getLogger().level)
    configure_logging("json", stream)
    try:
        due_run(path, "2026-11-30T14:01:00Z")
        due_run(path, "2026-11-30T14:02:00Z")
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
        logging.captureWarnings(False)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    decisions = [(e["event"], e.get("period"), e.get("channel")) for e in entries
                 if e.get("logger") == "agentdigest.schedule"]
    assert decisions == [("due", "2026-W48", None), ("sent", "2026-W48", "box"), ("skipped_sent", "2026-W48", None)]


def test_an_alarm_never_counts_as_its_periods_delivery(tmp_path, events):
    """Found by a new user: an alarm was recorded like a delivery of its period, so after a source outage
    (alarm "failed" sent, nothing archived) every later pass found the period "partly sent", looked for
    its archive and failed; the report was never sent. A late alarm did the same in the scheduler."""
    import shutil

    source = tmp_path / "events.duckdb"
    channels = {**outbox(path=str(tmp_path / "outbox")), **outbox("alarms", path=str(tmp_path / "alarm-box"))}
    path = write_config(tmp_path, events=source, channels=channels, alarms={"channel": "alarms"}, reports=[NY_WEEKLY])
    code, out = due_run(path, "2026-11-30T17:00:00Z")  # the source is gone, past the grace time
    assert code != 0 and "DuckDB file not found" in out
    assert sorted(p.parent.name for p in (tmp_path / "alarm-box" / "_alarms").rglob("*.eml")) == [
        "weekly.2026-W48.failed", "weekly.2026-W48.late"]
    shutil.copyfile(events, source)
    code, out = due_run(path, "2026-11-30T17:05:00Z")
    assert code == 0, out
    assert sent_files(tmp_path / "outbox") == {("weekly", "2026-W48"): 1}
    config = load_config(path)
    con, buffer = console()
    assert check_missed(config, now=utc("2026-11-30T17:10:00Z"), console=con) == 0, buffer.getvalue()


def test_text_and_json_log_lines_carry_the_same_utc_time():
    """The text log's time was the machine's local time with no offset ("2026-11-30 09:01:00,250" on a New York
    host), where the JSON log says UTC: lines of two hosts, or of one across a DST change, could not be put in
    order. Both now say the instant in ISO 8601 UTC with its offset."""
    from zoneinfo import ZoneInfo

    lines = {}
    for log_format in ("text", "json"):
        stream = io.StringIO()
        root, saved = logging.getLogger(), (logging.getLogger().handlers[:], logging.getLogger().level)
        configure_logging(log_format, stream)
        try:  # time_machine sets the machine's zone (TZ) to the destination's: New York
            with time_machine.travel(datetime(2026, 11, 30, 9, 1, 0, 250000, tzinfo=ZoneInfo("America/New_York")),
                                     tick=False):
                logging.getLogger("agentdigest.schedule").info("weekly 2026-W48: due")
        finally:
            root.handlers[:], _ = saved[0], root.setLevel(saved[1])
            logging.captureWarnings(False)
        lines[log_format] = stream.getvalue()
    assert lines["text"] == "2026-11-30T14:01:00.250+00:00 INFO agentdigest.schedule: weekly 2026-W48: due\n"
    assert json.loads(lines["json"])["ts"] == "2026-11-30T14:01:00.250+00:00"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_scheduler_log_lines_mask_url_passwords(log_format):
    """Found in a security audit: the scheduler logs an unexpected error's first line and, for --verbose and
    the daemon's logs, its traceback, as they were; a library's exception may quote a URL with its password."""
    stream = io.StringIO()
    root, saved = logging.getLogger(), (logging.getLogger().handlers[:], logging.getLogger().level)
    configure_logging(log_format, stream)
    try:
        try:
            raise ValueError("cannot connect to postgresql://reports:Zq9Daemon-s3cret@db.example/events")
        except ValueError as exc:
            logging.getLogger("agentdigest.schedule").error("weekly 2026-W48: %s", exc, exc_info=True)
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
        logging.captureWarnings(False)
    out = stream.getvalue()
    assert "Zq9Daemon" not in out and "Traceback" in out and "reports:***@db.example" in out, out



def test_a_source_down_is_connected_to_once_per_pass_not_once_per_period(tmp_path, events):
    """Found reviewing source outages: a pass opened the source again for every period it ran, of every report,
    after it had failed for the first, so `run --due` with a server that hangs (10 s connect_timeout each) took
    reports x (catch_up + 1) of them, minutes, from cron every 5 minutes. Now the first failure is the pass's:
    one connection, and every period is still recorded failed (so it stays due) and said, exit 3. The server is a
    real TCP listener on loopback that closes each connection at once; it counts them."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port, accepted = listener.getsockname()[1], []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    daily = {"id": "daily", "period": "day", "timezone": "UTC", "schedule": "0 6 * * *", "channels": ["box"],
             "catch_up": 1}
    path = write_config(tmp_path, events=events, channels=outbox(path=str(tmp_path / "outbox")),
                        reports=[{**NY_WEEKLY, "catch_up": 2}, daily])
    text = path.read_text().replace(f'"duckdb://{events}"', f'"postgresql://u@127.0.0.1:{port}/events"')
    path.write_text(text)
    try:
        code, out = due_run(path, "2026-11-30T14:01:00Z")
    finally:
        listener.close()
    assert code == 3, out
    assert len(accepted) == 1, (accepted, out)
    ledger = Ledger(load_config(path).ledger.url)
    try:
        failed = {(r["report_id"], r["period_key"]) for r in ledger.history(limit=20) if r["state"] == "failed"}
    finally:
        ledger.close()
    assert failed == {("weekly", "2026-W46"), ("weekly", "2026-W47"), ("weekly", "2026-W48"),
                      ("daily", "2026-11-28"), ("daily", "2026-11-29")}, failed
    for key in ("2026-W46", "2026-W47", "2026-W48", "2026-11-28", "2026-11-29"):
        assert key in out, out


def test_the_lock_files_of_periods_sent_are_removed_and_a_failed_periods_kept(tmp_path, events):
    """Found in an operations review: <archive>/.locks grew by one empty file per report and period, for ever (301
    after 300 runs). A period's file is now removed by the run that finishes it, while it holds it; a failed period's
    stays until the run that sends it."""
    box = tmp_path / "outbox"
    path = write_config(tmp_path, events=events, channels=outbox(path=str(box)), reports=[{**NY_WEEKLY, "catch_up": 2}])
    locks = tmp_path / "reports" / ".locks" / "weekly"
    box.write_text("a file where the outbox folder should be")  # the outbox cannot write: every period fails
    code, out = due_run(path, "2026-11-30T14:01:00Z")
    assert code == 1, out
    assert sorted(p.name for p in locks.iterdir()) == ["2026-W46.lock", "2026-W47.lock", "2026-W48.lock"]
    box.unlink()
    code, out = due_run(path, "2026-12-07T14:01:00Z")
    assert code == 0, out
    assert sent_files(box) == {("weekly", key): 1 for key in ("2026-W46", "2026-W47", "2026-W48", "2026-W49")}
    assert list(locks.iterdir()) == []
