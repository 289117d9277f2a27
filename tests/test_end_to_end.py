"""End to end through the CLI: computed (not fabricated) data with hostile rows, planted PII and an
incomplete week; every artifact of both audiences is parsed and checked."""

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from agentdigest.synthetic import generate
from render_fixtures import readable

NOW = datetime(2026, 11, 28, 12, tzinfo=timezone.utc)  # a Saturday, in week 2026-W48 (Mon 23 Nov - Mon 30 Nov)
# The run's default period, the last complete week, written out by hand rather than asked of the code under test:
# 1 Jan 2026 is a Thursday, so ISO week 1 starts Mon 29 Dec 2025 and 23 Nov (329 days later, 47 weeks) starts
# W48; W47 is Mon 16 Nov 00:00 to Mon 23 Nov 00:00 in Berlin, which is UTC+1 in November (CET).
WEEK_KEY = "2026-W47"
WEEK_START = datetime(2026, 11, 15, 23, tzinfo=timezone.utc)
WEEK_END = datetime(2026, 11, 22, 23, tzinfo=timezone.utc)
PII = ["jane.doe@example.com", "+1 415 555 0142", "4111 1111 1111 1111", "078-05-1120"]
HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>"]

CONFIG = """
[source]
url = "duckdb://events.duckdb"
table = "agent_events"
[channels.box]
type = "outbox"
path = "outbox"
[[reports]]
id = "exec"
audience = "executive"
timezone = "Europe/Berlin"
channels = ["box"]
human_cost_per_conversation = 4.0
[[reports]]
id = "eng"
audience = "engineering"
timezone = "Europe/Berlin"
channels = ["box"]
"""


def _world(folder: Path, *, incomplete: bool) -> Path:
    con = duckdb.connect(str(folder / "events.duckdb"))
    generate(con, conversations=6000, end=NOW, days=56, latest=WEEK_START)
    at = WEEK_END - timedelta(days=4, minutes=30)  # the latest failures of the week: they are shown
    for i, (agent, etype, msg) in enumerate([
        (HOSTILE[0], HOSTILE[1], f"user {PII[0]} called from {PII[1]}"),
        (HOSTILE[1], "tool_timeout", f"card {PII[2]} ssn {PII[3]} {HOSTILE[0]}"),
    ]):
        for kind in ("message", "error"):
            con.execute("INSERT INTO agent_events VALUES (?, ?, ?, ?, ?, 10, 100.0, ?, ?, 'm', 0.001)",
                        [f"hostile_{i}_{kind}", f"conv_hostile_{i}", at + timedelta(days=4, minutes=i, seconds=kind == "error"),
                         kind, agent, etype if kind == "error" else None, msg if kind == "error" else None])
    if incomplete:  # Tuesday and Wednesday lost
        con.execute("DELETE FROM agent_events WHERE event_ts >= ? AND event_ts < ?",
                    [WEEK_START + timedelta(days=1), WEEK_START + timedelta(days=3)])
    con.close()
    (folder / "agentdigest.toml").write_text(CONFIG)
    return folder / "agentdigest.toml"


@pytest.mark.parametrize("incomplete", [True, False], ids=["incomplete-week", "complete-week"])
def test_both_audiences_from_computed_hostile_data(tmp_path, incomplete):
    config = _world(tmp_path, incomplete=incomplete)
    result = subprocess.run(
        [sys.executable, "-m", "agentdigest.cli", "run", "--config", str(config), "--now", NOW.isoformat()],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for report in ("exec", "eng"):
        folder = tmp_path / "reports" / report / WEEK_KEY
        files = {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith(".")}
        assert set(files) == {"report.json", "report.html", "report.pdf", "report.txt", "message.eml", "slack.json"}
        assert (folder / ".delivered").is_file()  # delivered: the folder is kept as sent
        texts = readable(files)
        report_json = json.loads(files["report.json"])
        # the period the run chose by itself (no --period): W47, local midnights in Berlin (UTC+1)
        assert report_json["period"] == {"key": WEEK_KEY, "start": "2026-11-16T00:00:00+01:00",
                                         "end": "2026-11-23T00:00:00+01:00"}
        quality = report_json["quality"]
        assert quality["warning"] is incomplete
        assert (quality["completeness_pct"] < 80) is incomplete
        if incomplete:
            assert any(g["hours"] >= 24 for g in quality["gaps"])
        for name, text in texts.items():
            for secret in PII:
                assert secret not in text, f"{secret!r} leaked into {report}/{name}"
            # Markup is data: escaped where a client interprets it (HTML, Slack mrkdwn); plain text and
            # the PDF's extracted text show it verbatim, which is what escaping is for.
            if name in ("report.html", "message.eml text/html", "slack.json"):
                for bad in ("<script>", "<img src=x"):
                    assert bad not in text, f"unescaped {bad!r} in {report}/{name}"
        for name in ("report.html", "report.txt", "report.pdf", "slack.json"):
            assert ("DATA INCOMPLETE" in texts[name].upper() or "INCOMPLETE DATA" in texts[name].upper()) is incomplete, \
                f"banner in {report}/{name}"
        # the hostile agent is in the data and shows up escaped in the engineering HTML
        if report == "eng":
            assert "&lt;script&gt;" in texts["report.html"] or "&lt;img" in texts["report.html"]
        # delivered once to the outbox
        assert len(list((tmp_path / "outbox" / report / WEEK_KEY).glob("*.eml"))) == 1


def test_a_second_demo_keeps_the_users_edits_to_its_config(tmp_path):
    from agentdigest.demo import setup

    config = setup(tmp_path, conversations=200)
    edited = config.read_text().replace('title = "Agent Performance - Executive"', 'title = "Our Agents"')
    assert edited != config.read_text()
    config.write_text(edited)
    assert setup(tmp_path, conversations=200) == config
    assert config.read_text() == edited and (tmp_path / "events.duckdb").is_file()


# What a message must say to be an example of its error type: written here, not taken from the generator's table.
MESSAGE_FITS = {
    "tool_timeout": r"\btim(ed|es)? ?out\b",
    "rate_limited": r"\brate.limit|\b429\b",
    "invalid_tool_args": r"\b(argument|arg|parameter)s?\b.*\b(missing|invalid|rejected)\b"
                         r"|\b(missing|invalid|rejected)\b.*\b(argument|arg|parameter)s?\b",
    "upstream_5xx": r"\bupstream\b.*\b5\d\d\b",
}


def test_the_demos_error_messages_fit_their_error_types(tmp_path):
    """Found in a reader review of the demo's engineering report: every failure example read "Tool call failed
    after N ms", under rate_limited, upstream_5xx and invalid_tool_args as under tool_timeout. Each error event's
    message must now say what its type names, and nothing another type names."""
    import re

    from agentdigest.demo import setup

    setup(tmp_path, now=NOW, conversations=3000)
    con = duckdb.connect(str(tmp_path / "events.duckdb"), read_only=True)
    try:
        errors = con.execute("SELECT error_type, error_message FROM agent_events WHERE event_type = 'error'").fetchall()
    finally:
        con.close()
    assert {t for t, _ in errors} == set(MESSAGE_FITS) and len(errors) > 50
    for error_type, message in errors:
        fits = {t for t, pattern in MESSAGE_FITS.items() if re.search(pattern, message, re.IGNORECASE)}
        assert fits == {error_type}, (error_type, message)
