"""Breakdown keys: events without an agent_id, model or error_type are a row of their own, keyed null,
never merged with (or duplicating the key of) a real value that happens to be called "unknown"."""

from datetime import datetime, timedelta, timezone

import duckdb

from agentdigest.compute import compute_report
from agentdigest.config import ReportConfig, SourceConfig
from agentdigest.periods import parse_period
from agentdigest.render import render_artifacts
from agentdigest.sources import open_source

WEEK = parse_period("week", "2026-W20", "UTC")
NOW = datetime(2026, 5, 20, 9, tzinfo=timezone.utc)


def _report(tmp_path, rows):
    path = tmp_path / "events.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("""CREATE TABLE agent_events (event_id VARCHAR, conversation_id VARCHAR, event_ts TIMESTAMPTZ,
                       event_type VARCHAR, agent_id VARCHAR, token_count INTEGER, latency_ms DOUBLE,
                       error_type VARCHAR, error_message VARCHAR, model VARCHAR, cost_usd DOUBLE)""")
        con.executemany("INSERT INTO agent_events VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, NULL, ?, NULL)", rows)
    source = open_source(SourceConfig(url=f"duckdb://{path}", table="agent_events"))
    try:
        return compute_report(source, ReportConfig(id="r", period="week", timezone="UTC", audience="engineering"),
                              WEEK, now=NOW)
    finally:
        source.close()


def test_a_null_key_is_its_own_row_and_sorts_last(tmp_path):
    t = WEEK.start_utc + timedelta(days=1)
    data = _report(tmp_path, [
        # event_id, conversation_id, event_ts, event_type, agent_id, error_type, model
        ("a1", "c-named-unknown", t, "error", "unknown", "unknown", "unknown"),
        ("b1", "c-null", t, "error", None, None, None),
        ("b2", "c-null", t + timedelta(minutes=1), "error", None, None, None),
        ("z1", "c-zeta", t, "message", "zeta", None, "zeta-model"),
    ])
    assert [(r["agent_id"], r["conversations"]) for r in data.by_agent] == [
        ("unknown", 1), ("zeta", 1), (None, 1)]
    assert [(r["model"], r["events"]) for r in data.by_model] == [(None, 2), ("unknown", 1), ("zeta-model", 1)]
    assert [(r["error_type"], r["count"]) for r in data.errors_by_type] == [(None, 2), ("unknown", 1)]

    text = render_artifacts(data, now=NOW, formats={"txt"})["report.txt"].decode()
    assert "(none)" in text and "unknown" in text
