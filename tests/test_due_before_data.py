"""`run --due` (one scheduler pass) whose catch_up window reaches before the data's start: the periods that end
before the report's first event are left out (not computed, sent or recorded as sent), said once, never late.

Found in an operator review: a new deployment, catch_up = 4 on a daily report whose data began two days before,
sent its readers three "No events arrived" reports of days before the data. From the outside: the real command on
a real DuckDB file, counting the messages in the outbox and the ledger's rows.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

NOW = "2026-12-01T12:00:00Z"  # Tuesday; the daily report at 09:00 Berlin: 2026-11-30 is the latest due day
WINDOW = ["2026-11-26", "2026-11-27", "2026-11-28", "2026-11-29", "2026-11-30"]  # catch_up = 4
#: The first valid event: 2026-11-28 07:00 UTC, 08:00 in Berlin (the row before it has no conversation_id).
#: 2026-11-29 has none: an outage between days with events, still sent.
EVENTS = [
    (None, "2026-11-20 08:00:00+00", "message", "bot-a"),
    ("c1", "2026-11-28 07:00:00+00", "message", "bot-a"),
    ("c1", "2026-11-28 07:01:00+00", "resolution", "bot-a"),
    ("c2", "2026-11-30 10:00:00+00", "message", "bot-a"),
]


def home_with(tmp_path: Path, events: list[tuple], agents: list[str] | None = None) -> Path:
    with duckdb.connect(str(tmp_path / "events.duckdb")) as con:
        con.execute("CREATE TABLE agent_events (conversation_id VARCHAR, event_ts TIMESTAMPTZ, event_type VARCHAR, "
                    "agent_id VARCHAR)")
        if events:
            con.executemany("INSERT INTO agent_events VALUES (?, ?::TIMESTAMPTZ, ?, ?)", events)
    scope = f"agents = [{', '.join(repr(a).replace(chr(39), chr(34)) for a in agents)}]\n" if agents else ""
    (tmp_path / "agentdigest.toml").write_text(f"""
[source]
url = "duckdb://events.duckdb"
table = "agent_events"

[ledger]
url = "sqlite:///ledger.db"

[channels.box]
type = "outbox"
path = "outbox"

[channels.ops]
type = "outbox"
path = "alarms"

[alarms]
channel = "ops"

[[reports]]
id = "daily"
period = "day"
timezone = "Europe/Berlin"
schedule = "0 9 * * *"
catch_up = 4
channels = ["box"]
{scope}""")
    return tmp_path


def cli(home: Path, *args: str, now: str = NOW) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agentdigest.cli", *args, "--now", now], cwd=home,
                          capture_output=True, text=True, timeout=300)


def run_due(home: Path, now: str = NOW) -> subprocess.CompletedProcess:
    return cli(home, "run", "--due", "--format", "json,eml", now=now)


def delivered(home: Path) -> list[str]:
    """The periods whose message reached the outbox, one entry per message."""
    return sorted(p.parent.name for p in (home / "outbox").glob("daily/*/*.eml"))


def ledger_rows(home: Path) -> tuple[list[str], list[str]]:
    """(periods recorded sent, periods recorded left out before the data) in the ledger's tables."""
    with sqlite3.connect(home / "ledger.db") as con:
        sent = [k for (k,) in con.execute("SELECT period_key FROM deliveries WHERE kind = 'period' AND sent_at "
                                          "IS NOT NULL ORDER BY period_key")]
        left = [k for (k,) in con.execute("SELECT period_key FROM runs WHERE state = 'before_data' "
                                          "ORDER BY period_key")]
    return sent, left


def test_the_window_before_the_first_event_is_left_out_said_once_and_never_late(tmp_path):
    home = home_with(tmp_path, EVENTS)
    done = run_due(home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert delivered(home) == WINDOW[2:]  # 11-28 (the data begins), 11-29 (an outage), 11-30
    assert ledger_rows(home) == (WINDOW[2:], WINDOW[:2])
    line = ("daily: 2026-11-26..2026-11-27 end before the source's first event (2026-11-28 08:00 Europe/Berlin); "
            "not sent")
    assert done.stdout.count(line) == 1, done.stdout
    assert "daily 2026-11-26" not in done.stdout and "daily 2026-11-27" not in done.stdout
    # the outage day went with its warning
    report = json.loads((home / "reports" / "daily" / "2026-11-29" / "report.json").read_text())
    assert report["metrics"]["conversations"]["value"] == 0 and report["quality"]["warning"] is True
    # nothing is late, not the days left out (due 08:00Z the day after each, grace 120 min): no alarm, and for
    # check --missed (which reads the ledger only)
    assert not (home / "alarms").exists(), sorted(p.name for p in (home / "alarms").rglob("*"))
    missed = cli(home, "check", "--missed")
    assert missed.returncode == 0 and "no report is late" in missed.stdout, missed.stdout
    # a later pass (the same clock, then the next day's) neither sends nor says them again
    again = run_due(home)
    assert again.returncode == 0 and "before the source's first event" not in again.stdout + again.stderr
    nxt = run_due(home, "2026-12-02T12:00:00Z")
    assert nxt.returncode == 0 and "first event" not in nxt.stdout + nxt.stderr, nxt.stdout
    assert delivered(home) == WINDOW[2:] + ["2026-12-01"]
    missed = cli(home, "check", "--missed", now="2026-12-02T12:00:00Z")
    assert missed.returncode == 0 and "no report is late" in missed.stdout, missed.stdout
    assert not (home / "alarms").exists(), sorted(p.name for p in (home / "alarms").rglob("*"))


def test_data_beginning_in_the_running_day_leaves_the_whole_window_out_and_sends_that_day_next(tmp_path):
    """The latest due day ends before the first event too (the data began this morning): nothing to report; it is
    history, and the next pass sends the first day with data only."""
    home = home_with(tmp_path, [("c1", "2026-12-01 08:00:00+00", "message", "bot-a")])
    done = run_due(home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert delivered(home) == [] and ledger_rows(home) == ([], WINDOW)
    assert ("daily: 2026-11-26..2026-11-30 end before the source's first event (2026-12-01 09:00 Europe/Berlin); "
            "not sent, now or by a later pass (the data begins after the latest due day, 2026-11-30") in done.stdout
    assert "nothing is due yet" not in done.stdout
    nxt = run_due(home, "2026-12-02T12:00:00Z")
    assert nxt.returncode == 0, nxt.stdout + nxt.stderr
    assert delivered(home) == ["2026-12-01"] and "came due while no pass ran" not in nxt.stdout


@pytest.mark.parametrize("agents", [None, ["nobody"]])  # no event at all; none of the report's agents
def test_a_source_without_any_event_of_the_report_still_sends_no_events_arrived(tmp_path, agents):
    """Unchanged (a guard, it passes on the code before): "No events arrived" says a pipeline is broken."""
    events = [] if agents is None else EVENTS
    home = home_with(tmp_path, events, agents)
    done = run_due(home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert delivered(home) == WINDOW and ledger_rows(home) == (WINDOW, [])
    assert "first event" not in done.stdout + done.stderr


def test_run_period_of_a_report_whose_agents_have_no_event_sends_it_as_an_empty_source(tmp_path):
    """Agents matching no event: as an empty source, the day is sent (the report's note names its agents setting),
    though the source's events begin after it; it was refused as before the source's first event."""
    home = home_with(tmp_path, EVENTS, ["nobody"])
    done = cli(home, "run", "--period", "2026-11-26", "--format", "json,eml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert delivered(home) == ["2026-11-26"] and "first event" not in done.stdout + done.stderr


#: bot-a since 2026-11-20; bot-b, the report's agent, from 2026-11-28 07:00 UTC only
AGENTS = [
    ("c0", "2026-11-20 08:00:00+00", "message", "bot-a"),
    ("c0", "2026-11-26 08:00:00+00", "message", "bot-a"),
    ("c1", "2026-11-28 07:00:00+00", "message", "bot-b"),
    ("c2", "2026-11-30 10:00:00+00", "message", "bot-b"),
]


def test_the_first_event_is_that_of_the_report_agents_for_run_due(tmp_path):
    home = home_with(tmp_path, AGENTS, ["bot-b"])
    done = run_due(home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert delivered(home) == WINDOW[2:] and ledger_rows(home) == (WINDOW[2:], WINDOW[:2])
    assert ("daily: 2026-11-26..2026-11-27 end before the first event of its agents (bot-b) (2026-11-28 08:00 "
            "Europe/Berlin)") in done.stdout, done.stdout


def test_the_first_event_is_that_of_the_report_agents_for_run_period(tmp_path):
    home = home_with(tmp_path, AGENTS, ["bot-b"])
    done = cli(home, "run", "--period", "2026-11-26", "--format", "json,eml")
    assert done.returncode == 2, done.stdout + done.stderr
    assert ("daily 2026-11-26 ends before the first event of its agents (bot-b) (2026-11-28 08:00 Europe/Berlin)"
            in done.stderr), done.stderr
    assert not (home / "outbox").exists() and not (home / "ledger.db").exists()
    # the day its events begin is sent
    assert cli(home, "run", "--period", "2026-11-28", "--format", "json,eml").returncode == 0
    assert delivered(home) == ["2026-11-28"]


def test_the_pass_logs_one_structured_info_line_and_a_later_pass_none(tmp_path, caplog):
    """The scheduler's pass (run_pass, as `schedule` runs it): one INFO decision, event before_data, naming the
    days; the next pass, as the scheduler's next fire, says nothing of them."""
    from agentdigest.config import load_config
    from agentdigest.ledger import Ledger
    from agentdigest.logs import JsonFormatter
    from agentdigest.schedule import run_pass

    home = home_with(tmp_path, EVENTS)
    config = load_config(home / "agentdigest.toml")
    ledger = Ledger(f"sqlite:///{home / 'ledger.db'}")
    try:
        with caplog.at_level(logging.INFO, logger="agentdigest.schedule"):
            first = run_pass(config, config.reports, datetime(2026, 12, 1, 12, tzinfo=timezone.utc), ledger=ledger,
                             archive=home / "reports", formats={"json", "eml"})
            said = [r for r in caplog.records if getattr(r, "event", None) == "before_data"]
            caplog.clear()
            later = run_pass(config, config.reports, datetime(2026, 12, 1, 12, 5, tzinfo=timezone.utc), ledger=ledger,
                             archive=home / "reports", formats={"json", "eml"})
            again = [r for r in caplog.records if getattr(r, "event", None) == "before_data"]
    finally:
        ledger.close()
    assert [(r.levelno, r.report, r.periods) for r in said] == [(logging.INFO, "daily", WINDOW[:2])]
    # as `schedule --log-format json` writes it: the periods a field of its own (they were left out of the JSON)
    line = json.loads(JsonFormatter().format(said[0]))
    assert (line["event"], line["level"], line["report"], line["periods"]) == ("before_data", "info", "daily",
                                                                                WINDOW[:2])
    assert line["message"].startswith("daily: 2026-11-26..2026-11-27 end before the source's first event")
    assert [r.period.key for r in first.runs] == WINDOW[2:] and first.exit_code == 0
    assert again == [] and later.runs == [] and delivered(home) == WINDOW[2:]


def test_history_next_says_a_week_left_out_is_skipped(tmp_path):
    """A week report sent by a daily cron: the week the data began after was left out (the latest due one), and the
    next fire's period is that same week; `history --next` said it delivers it."""
    import io

    from rich.console import Console

    from agentdigest.config import load_config
    from agentdigest.schedule_status import show_next

    home = home_with(tmp_path, [("c1", "2026-11-30 07:00:00+00", "message", "bot-a")])
    toml = home / "agentdigest.toml"
    toml.write_text(toml.read_text().replace('id = "daily"\nperiod = "day"', 'id = "daily"\nperiod = "week"'))
    done = run_due(home)  # Tuesday 2026-12-01: the latest due week is 2026-W48, the data begins Monday of W49
    assert done.returncode == 0 and delivered(home) == [], done.stdout + done.stderr
    assert "the data begins after the latest due week, 2026-W48" in done.stdout, done.stdout
    out = io.StringIO()
    show_next(load_config(toml), now=datetime(2026, 12, 1, 12, tzinfo=timezone.utc),
              console=Console(file=out, width=400))
    assert "2026-W48 (ends before the report's first event: the run skips it)" in out.getvalue(), out.getvalue()
