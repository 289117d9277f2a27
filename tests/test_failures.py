"""Which failure examples a report shows."""

from datetime import timedelta

import duckdb

from agentdigest.compute import compute_report
from agentdigest.config import ReportConfig, SourceConfig
from agentdigest.periods import parse_period
from agentdigest.sources import open_source


def test_the_latest_of_each_kind_of_failure_comes_before_more_of_one_kind(tmp_path):
    """Found in a reader review: the 5 most recent failures were 4 escalations from one Sunday evening and
    one error; an engineer wants an example of each error type, errors before escalations."""
    week = parse_period("week", "2026-W47", "UTC")
    rows = [(f"esc{i}", "escalation", None, week.end_utc - timedelta(minutes=10 + i)) for i in range(6)]
    rows += [(f"to{i}", "error", "tool_timeout", week.start_utc + timedelta(days=2, hours=i)) for i in range(3)]
    rows += [("rl0", "error", "rate_limited", week.start_utc + timedelta(days=1))]
    path = tmp_path / "events.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE agent_events (event_id TEXT, conversation_id TEXT, event_ts TIMESTAMPTZ, "
                    "event_type TEXT, error_type TEXT)")
        con.executemany("INSERT INTO agent_events VALUES (?, ?, ?, ?, ?)",
                        [(cid, cid, ts, kind, etype) for cid, kind, etype, ts in rows])
    source = open_source(SourceConfig(url=f"duckdb://{path}", table="agent_events"))
    try:
        data = compute_report(source, ReportConfig(id="r", timezone="UTC", failure_examples=4), week,
                              now=week.end_utc + timedelta(hours=9))
    finally:
        source.close()
    shown = [r["conversation_id"] for r in data.failure_examples]
    # The latest of each kind first, errors before escalations (README, failure_examples), each latest first:
    # to2 (Wed 18 Nov 02:00) and rl0 (Tue 17 Nov 00:00) are the latest error of their types, then esc0 (Sun 22 Nov
    # 23:50, the latest failure of all, yet an escalation); then the next latest of each kind, errors first: to1
    # (Wed 01:00) before esc1 (Sun 23:49), which the limit of 4 leaves out.
    assert shown == ["to2", "rl0", "esc0", "to1"]
