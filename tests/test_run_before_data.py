"""`run --period` of a period that ends before the source's first event: nothing to report, so nothing is sent.

Found in an operator review: `run --period 2025-W48` (for 2026-W48) rendered a report of zeros, "No events
arrived", sent it to the executives and exited 0. From the outside: the real command on a real DuckDB file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

NOW = "2026-12-01T12:00:00Z"  # the last complete week is 2026-W48
#: The first valid event: Tuesday of 2026-W45, 10:00 UTC, 11:00 in Berlin. The row before it has no
#: conversation_id, so it is no event of any report (missing_required) and not the data's start.
EVENTS = [
    (None, "2026-10-01 08:00:00+00", "message"),
    ("c1", "2026-11-03 10:00:00+00", "message"),
    ("c1", "2026-11-03 10:01:00+00", "resolution"),
    # 2026-W46 has no event: an outage between data before and after it
    ("c2", "2026-11-17 10:00:00+00", "message"),
    ("c3", "2026-11-24 10:00:00+00", "message"),
]
FIRST = "2026-11-03 11:00 Europe/Berlin"


def home_with(tmp_path: Path, events: list[tuple]) -> Path:
    with duckdb.connect(str(tmp_path / "events.duckdb")) as con:
        con.execute("CREATE TABLE agent_events (conversation_id VARCHAR, event_ts TIMESTAMPTZ, event_type VARCHAR)")
        if events:
            con.executemany("INSERT INTO agent_events VALUES (?, ?::TIMESTAMPTZ, ?)", events)
    (tmp_path / "agentdigest.toml").write_text("""
[source]
url = "duckdb://events.duckdb"
table = "agent_events"

[ledger]
url = "sqlite:///ledger.db"

[channels.box]
type = "outbox"
path = "outbox"

[[reports]]
id = "weekly-exec"
period = "week"
timezone = "Europe/Berlin"
channels = ["box"]
""")
    return tmp_path


def run(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agentdigest.cli", "run", "--now", NOW, "--format", "json,eml", *args],
                          cwd=home, capture_output=True, text=True, timeout=300)


def sent(home: Path) -> list[str]:
    return sorted(p.parent.name for p in (home / "outbox").glob("weekly-exec/*/*.eml"))


@pytest.mark.parametrize("period", ["2025-W48", "2026-W44"])  # a mistyped year; the week just before the data
def test_a_period_before_the_first_event_is_refused_and_nothing_is_sent(tmp_path, period):
    home = home_with(tmp_path, EVENTS)
    done = run(home, "--period", period)
    assert done.returncode == 2, done.stdout + done.stderr  # bad input, as a period that has not begun
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"weekly-exec {period} ends before the source's first event ({FIRST})" in lines[0], lines[0]
    assert "the last complete week, 2026-W48" in lines[0] and "Traceback" not in done.stderr
    # nothing sent, archived or recorded
    assert not (home / "outbox").exists() and not (home / "reports").exists() and not (home / "ledger.db").exists()


def test_a_dry_run_of_it_renders_the_report_and_says_so(tmp_path):
    home = home_with(tmp_path, EVENTS)
    done = run(home, "--period", "2025-W48", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert f"weekly-exec 2025-W48: ends before the source's first event ({FIRST})" in done.stdout, done.stdout
    report = json.loads((home / "reports" / "weekly-exec" / "2025-W48" / "report.json").read_text())
    assert report["metrics"]["conversations"]["value"] == 0
    assert not (home / "outbox").exists() and not (home / "ledger.db").exists()


def test_a_test_send_of_it_goes_with_the_same_note(tmp_path):
    home = home_with(tmp_path, EVENTS)
    done = run(home, "--period", "2025-W48", "--test-to", "box")
    assert done.returncode == 0, done.stderr
    assert f"weekly-exec 2025-W48: ends before the source's first event ({FIRST})" in done.stdout, done.stdout


def test_an_outage_with_data_before_and_after_still_sends_its_warning(tmp_path):
    """2026-W46 has no event, but the weeks around it have: a real outage, sent with its completeness warning."""
    home = home_with(tmp_path, EVENTS)
    done = run(home, "--period", "2026-W46")
    assert done.returncode == 0, done.stderr
    assert sent(home) == ["2026-W46"] and "first event" not in done.stdout + done.stderr
    report = json.loads((home / "reports" / "weekly-exec" / "2026-W46" / "report.json").read_text())
    assert report["metrics"]["conversations"]["value"] == 0 and report["quality"]["warning"] is True
    # and the week the data begins in is a week with data
    assert run(home, "--period", "2026-W45").returncode == 0 and sent(home) == ["2026-W45", "2026-W46"]


def test_a_source_without_any_event_still_sends_its_no_events_report(tmp_path):
    """No first event to be before: the report says "No events arrived", as `check` warns (unchanged)."""
    home = home_with(tmp_path, [])
    done = run(home, "--period", "2026-W48")
    assert done.returncode == 0, done.stderr
    assert sent(home) == ["2026-W48"] and "no events arrived" in done.stdout
