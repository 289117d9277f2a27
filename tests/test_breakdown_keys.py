"""Breakdown keys: events without an agent_id, model or error_type are a row of their own, keyed null,
never merged with (or duplicating the key of) a real value that happens to be called "unknown"."""

import re
from datetime import datetime, timedelta, timezone

import duckdb
import pytest

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
    # separate rows, each with its own count: the null key reads "(none)", the real "unknown" keeps its name
    # (error types: b1 and b2 have none, a1 is "unknown"; agents and models: one conversation each)
    assert _table(text, "ERRORS BY TYPE") == [["(none)", "2"], ["unknown", "1"]]
    assert _table(text, "BY AGENT") == [["unknown", "1"], ["zeta", "1"], ["(none)", "1"]]
    assert _table(text, "TOKENS BY MODEL") == [["(none)", "1"], ["unknown", "1"], ["zeta-model", "1"]]


def _table(text: str, title: str) -> list[list[str]]:
    """The first two cells (key and first figure) of each row of the text report's table under ``title``:
    the title, its underline, the column header and its rule, then rows up to a blank line."""
    lines = text.splitlines()
    at = lines.index(title)
    assert set(lines[at + 1]) == {"-"} and set(lines[at + 3].replace(" ", "")) == {"-"}
    rows = []
    for line in lines[at + 4:]:
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip())[:2])
    return rows


def _big_week(con: duckdb.DuckDBPyConnection) -> None:
    """120,000 message events of agent "big" and model "big-model" in 2026-W20, latencies i % 5000 ms."""
    con.execute("""CREATE TABLE agent_events AS
        SELECT 'b' || i AS event_id, 'cb' || (i // 4) AS conversation_id,
               TIMESTAMPTZ '2026-05-11 00:00:00+00' + to_microseconds(i * 5000000) AS event_ts,
               'message' AS event_type, 'big' AS agent_id, (i % 5000)::DOUBLE AS latency_ms, 'big-model' AS model
        FROM range(120000) t(i)""")


def test_approximate_quantiles_only_where_every_group_is_large(tmp_path):
    """An engine with approximate quantiles (Spark; here DuckDB told to use its own approx_quantile) keeps
    them for groups of >= 100,000 values only: a small agent's or model's p95 inside a busy week is exact
    (an approximate percentile is a data point: for latencies 100 and 1000 it gives 1000, not 955)."""
    from dataclasses import replace

    path = tmp_path / "events.duckdb"
    start = WEEK.start_utc
    with duckdb.connect(str(path)) as con:
        _big_week(con)
        con.execute("INSERT INTO agent_events VALUES ('s1', 'cs', ?, 'message', 'small', 100, 'small-model'), "
                    "('s2', 'cs', ?, 'message', 'small', 1000, 'small-model')",
                    [start + timedelta(days=2), start + timedelta(days=2, minutes=1)])
    exact = open_source(SourceConfig(url=f"duckdb://{path}", table="agent_events"))
    report = ReportConfig(id="r", period="week", timezone="UTC", audience="engineering")
    try:
        precise = compute_report(exact, report, WEEK, now=NOW)
        approx = compute_report(replace(exact, approximate_quantiles=True), report, WEEK, now=NOW)
    finally:
        exact.close()
    small = 100 + 0.95 * (1000 - 100)
    assert {r["agent_id"]: r["p95_latency_ms"] for r in approx.by_agent}["small"] == small
    assert {r["model"]: r["p95_latency_ms"] for r in approx.by_model}["small-model"] == small
    # The week itself has 120,002 values: approximate, within 1%, and the report says so.
    week_p95 = approx.metrics["p95_latency_ms"].value
    assert week_p95 != precise.metrics["p95_latency_ms"].value
    assert abs(week_p95 / precise.metrics["p95_latency_ms"].value - 1) < 0.01
    assert any("approximate" in n for n in approx.notes) and not any("approximate" in n for n in precise.notes)
    assert all("_latency_values" not in r for r in approx.by_model + approx.by_agent)


def test_every_error_type_is_in_report_json_and_the_formats_count_the_rest(tmp_path):
    """Found in a review: with 20 error types report.json kept 10 (98 of 153 errors) and the text and HTML
    said nothing of the others."""
    t = WEEK.start_utc + timedelta(days=1)
    rows = [(f"e{i}-{j}", f"c{i}-{j}", t, "error", "a", f"type-{i:02d}", "m") for i in range(20) for j in range(i + 1)]
    data = _report(tmp_path, rows)
    assert len(data.errors_by_type) == 20
    assert sum(r["count"] for r in data.errors_by_type) == data.metrics["errors"].value == len(rows)
    text = render_artifacts(data, {"txt"}, now=NOW)["report.txt"].decode()
    assert "type-19" in text and "10 more" in " ".join(text.split())

def _interpolated(values: list[float], q: float) -> float:
    """The linearly interpolated quantile (what the engines' exact quantile computes), by hand."""
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = int(pos)
    return s[lo] + (pos - lo) * (s[min(lo + 1, len(s) - 1)] - s[lo])


def test_approximate_quantiles_of_large_groups_reach_every_breakdown(tmp_path):
    """With approximate quantiles on groups that are all large, each query's one sketch gives the
    quantiles it reports (and brackets them): the week's p50/p95/p99, the agent's and the model's p95 are
    each within 1% of the exact value, and no internal column reaches the report."""
    from dataclasses import replace

    path = tmp_path / "events.duckdb"
    with duckdb.connect(str(path)) as con:
        _big_week(con)
    latencies = [float(i % 5000) for i in range(120000)]
    exact = open_source(SourceConfig(url=f"duckdb://{path}", table="agent_events"))
    report = ReportConfig(id="r", period="week", timezone="UTC", audience="engineering")
    try:
        data = compute_report(replace(exact, approximate_quantiles=True), report, WEEK, now=NOW)
    finally:
        exact.close()
    expected = {name: _interpolated(latencies, q) for name, q in
                (("p50_latency_ms", 0.5), ("p95_latency_ms", 0.95), ("p99_latency_ms", 0.99))}
    assert expected == pytest.approx({"p50_latency_ms": 2499.5, "p95_latency_ms": 4749.05, "p99_latency_ms": 4949.01})
    for name, value in expected.items():
        assert data.metrics[name].value == pytest.approx(value, rel=0.01), name
    assert any("approximate" in n for n in data.notes)
    [agent] = [r for r in data.by_agent if r["agent_id"] == "big"]
    [model] = [r for r in data.by_model if r["model"] == "big-model"]
    assert agent["p95_latency_ms"] == pytest.approx(expected["p95_latency_ms"], rel=0.01)
    assert model["p95_latency_ms"] == pytest.approx(expected["p95_latency_ms"], rel=0.01)
    assert not [k for r in data.by_model + data.by_agent for k in r if k.startswith("_latency")]
