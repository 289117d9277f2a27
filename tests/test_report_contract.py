"""report.json's contract (DESIGN.md "report.json"): the keys and types other programs read.

A small real DuckDB dataset in Berlin's DST week 2026-W43 (169 hours, 25 October falls back), so the
period's start and end carry different UTC offsets. The report.json checked is the archive's artifact,
rendered by ``render_artifacts``. Extra keys the project adds are allowed; DESIGN's must be present
with the documented types. Expected values below are worked out by hand from the rows.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, timedelta, timezone

import pytest

from agentdigest.compute import compute_report
from agentdigest.config import ReportConfig, SourceConfig
from agentdigest.periods import parse_period
from agentdigest.render import render_artifacts
from agentdigest.sources import open_source
from backend_loaders import load_duckdb

TZ = "Europe/Berlin"
KEY = "2026-W43"
NOW = datetime(2026, 10, 26, 8, 0, tzinfo=timezone.utc)  # Monday 09:00 CET, the week's run
UTC = timezone.utc


def _row(eid, conv, ts, etype, *, agent="support-bot", model="m-1", tokens=None, latency=None,
         error_type=None, cost=None):
    return dict(event_id=eid, conversation_id=conv, event_ts=ts, event_type=etype, agent_id=agent,
                token_count=tokens, latency_ms=latency, error_type=error_type, error_message=None,
                model=model, cost_usd=cost)


def _rows() -> list[dict]:
    t = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731
    return [
        # this week (2026-10-18T22:00Z to 2026-10-25T23:00Z)
        _row("e1", "c1", t(2026, 10, 20, 10, 0), "message", tokens=100, latency=800.0, cost=0.002),
        _row("e2", "c1", t(2026, 10, 20, 10, 1), "resolution"),
        _row("e3", "c2", t(2026, 10, 21, 12, 0), "message", agent="billing-bot", tokens=50, latency=1200.0, cost=0.001),
        _row("e4", "c2", t(2026, 10, 21, 12, 1), "error", agent="billing-bot", error_type="tool_timeout"),
        _row("e5", "c2", t(2026, 10, 21, 12, 2), "escalation", agent="billing-bot"),
        _row("e6", "c3", t(2026, 10, 25, 1, 30), "message", tokens=20, latency=500.0, cost=0.0005),  # 02:30+01:00
        _row("e7", "c3", t(2026, 10, 25, 1, 31), "error", error_type="rate_limited"),
        _row("e8", "c3", t(2026, 10, 25, 1, 32), "error", error_type="tool_timeout"),
        # the week before
        _row("p1", "p1", t(2026, 10, 14, 9, 0), "message", tokens=80, latency=900.0, cost=0.001),
        _row("p2", "p1", t(2026, 10, 14, 9, 1), "error", error_type="tool_timeout"),
        _row("p3", "p1", t(2026, 10, 14, 9, 2), "resolution"),
    ]


@pytest.fixture(scope="module")
def doc(tmp_path_factory) -> dict:
    source = open_source(SourceConfig(**load_duckdb(_rows(), tmp_path_factory.mktemp("contract"))))
    try:
        data = compute_report(source, ReportConfig(id="weekly-exec", title="Agent Performance", audience="executive",
                                                   period="week", timezone=TZ, human_cost_per_conversation=4.5),
                              parse_period("week", KEY, TZ), now=NOW)
    finally:
        source.close()
    raw = render_artifacts(data, {"json"})["report.json"].decode("utf-8")

    def no_constant(name: str):  # NaN / Infinity are not JSON
        raise AssertionError(f"report.json holds {name}")

    return json.loads(raw, parse_constant=no_constant)


OPT_NUMBER = (int, float, type(None))
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?[+-]\d{2}:\d{2}$")


def _is(value, types) -> bool:
    """isinstance, but a bool is not a number."""
    types = types if isinstance(types, tuple) else (types,)
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def test_top_level_keys_and_types(doc):
    expected = {"schema_version": int, "report_id": str, "title": str, "audience": str, "generated_at": str,
                "timezone": str, "period": dict, "previous_period": dict, "metrics": dict, "breakdowns": dict,
                "quality": dict}
    assert set(expected) <= set(doc), sorted(set(expected) - set(doc))
    for key, typ in expected.items():
        assert _is(doc[key], typ), (key, doc[key])
    assert doc["schema_version"] == 1
    assert (doc["report_id"], doc["title"], doc["audience"], doc["timezone"]) == \
        ("weekly-exec", "Agent Performance", "executive", TZ)


def test_times_are_iso_8601_with_the_offset_of_the_report_timezone(doc):
    """By hand: W43 runs from Monday 19 October 00:00 CEST (+02:00) to Monday 26 October 00:00 CET (+01:00);
    W42 from 12 October 00:00 CEST; the run at 08:00 UTC on the 26th is 09:00 CET."""
    assert doc["generated_at"] == "2026-10-26T09:00:00+01:00"
    assert {k: doc["period"][k] for k in ("key", "start", "end")} == \
        {"key": "2026-W43", "start": "2026-10-19T00:00:00+02:00", "end": "2026-10-26T00:00:00+01:00"}
    assert {k: doc["previous_period"][k] for k in ("key", "start", "end")} == \
        {"key": "2026-W42", "start": "2026-10-12T00:00:00+02:00", "end": "2026-10-19T00:00:00+02:00"}
    for stamp in (doc["generated_at"], doc["period"]["start"], doc["period"]["end"]):
        assert ISO_WITH_OFFSET.match(stamp), stamp


RATES = ("resolution_rate", "containment_rate", "error_rate")
#: DESIGN's metrics (rule 3, and README's estimated savings with a human cost) and the unit each must carry.
METRIC_UNITS = {
    "conversations": "count", "resolved_conversations": "count", "escalated_conversations": "count",
    "resolution_rate": "percent", "containment_rate": "percent", "errors": "count", "error_conversations": "count",
    "error_rate": "percent", "total_tokens": None, "tokens_per_conversation": None, "avg_latency_ms": "ms",
    "p50_latency_ms": "ms", "p95_latency_ms": "ms", "p99_latency_ms": "ms", "cost_usd": "usd",
    "estimated_savings_usd": "usd",
}
UNITS = {"count", "percent", "tokens", "ms", "usd"}


@pytest.mark.parametrize("name", list(METRIC_UNITS))
def test_every_metric_carries_value_previous_unit_and_change(doc, name):
    m = doc["metrics"].get(name)
    assert m is not None, f"metrics.{name} missing"
    assert {"value", "previous", "unit", "change_pct", "change_pp", "direction", "good"} <= set(m)
    assert _is(m["value"], OPT_NUMBER) and _is(m["previous"], OPT_NUMBER)
    assert m["unit"] in UNITS and (METRIC_UNITS[name] is None or m["unit"] == METRIC_UNITS[name])
    assert m["direction"] in ("up", "down", "flat", "new", None)
    assert m["good"] in (True, False, None)
    if name in RATES:  # rates change in percentage points, never a percent of a percent
        assert m["change_pct"] is None and _is(m["change_pp"], OPT_NUMBER)
    else:  # null when the previous value is 0 (escalated: 1 against 0)
        assert m["change_pp"] is None and _is(m["change_pct"], OPT_NUMBER)


def test_metric_values_by_hand(doc):
    """The fields carry the right figures: 3 conversations against 1; c2 escalated; 2 of 3 contained at 4.5 less
    $0.0035 of agent cost, against 1 at 4.5 less $0.001; resolution 1/3 against 1/1 (-66.67 points)."""
    m = doc["metrics"]
    assert (m["conversations"]["value"], m["conversations"]["previous"], m["conversations"]["change_pct"]) == (3, 1, 200.0)
    assert m["conversations"]["direction"] == "up"
    assert m["estimated_savings_usd"]["value"] == pytest.approx(2 * 4.5 - 0.0035, abs=1e-12)
    assert m["estimated_savings_usd"]["previous"] == pytest.approx(4.5 - 0.001, abs=1e-12)
    assert m["resolution_rate"]["change_pp"] == pytest.approx(100 / 3 - 100)
    assert m["resolution_rate"]["direction"] == "down" and m["resolution_rate"]["good"] is False
    assert m["errors"]["value"] == 3 and isinstance(m["errors"]["value"], int)  # counts stay integers
    assert (m["escalated_conversations"]["change_pct"], m["escalated_conversations"]["direction"]) == (None, "new")


def test_breakdown_shapes(doc):
    b = doc["breakdowns"]
    assert {"daily", "by_agent", "errors_by_type"} <= set(b)
    assert all(isinstance(b[k], list) for k in ("daily", "by_agent", "errors_by_type"))

    # daily: one row per local date of the week (7, the 25-hour Sunday included), in order
    assert [r["date"] for r in b["daily"]] == [(date(2026, 10, 19) + timedelta(days=i)).isoformat() for i in range(7)]
    for r in b["daily"]:
        assert _is(r["conversations"], int)
    assert [r["conversations"] for r in b["daily"]] == [0, 1, 1, 0, 0, 0, 1]  # c1 Tue, c2 Wed, c3 Sun 02:30 CET

    agents = {r["agent_id"]: r for r in b["by_agent"]}
    for r in b["by_agent"]:
        assert _is(r["agent_id"], (str, type(None))) and _is(r["conversations"], int)
        assert _is(r["resolution_rate"], OPT_NUMBER)
    assert {a: (r["conversations"], r["resolution_rate"]) for a, r in agents.items()} == \
        {"support-bot": (2, 50.0), "billing-bot": (1, 0.0)}

    for r in b["errors_by_type"]:
        assert {"error_type", "count", "previous"} <= set(r)
        assert _is(r["error_type"], (str, type(None))) and _is(r["count"], int) and _is(r["previous"], int)
    assert [(r["error_type"], r["count"], r["previous"]) for r in b["errors_by_type"]] == \
        [("tool_timeout", 2, 1), ("rate_limited", 1, 0)]  # most frequent first, with last week's count


QUALITY_TYPES = {
    "completeness_pct": OPT_NUMBER, "warning": bool, "duplicate_events": int, "missing_required": int,
    "invalid_latency": int, "invalid_tokens": int, "unknown_event_types": int, "future_events": int, "gaps": list,
}


def test_quality_keys_and_types(doc):
    q = doc["quality"]
    assert set(QUALITY_TYPES) <= set(q), sorted(set(QUALITY_TYPES) - set(q))
    for key, typ in QUALITY_TYPES.items():
        assert _is(q[key], typ), (key, q[key])
    # a clean dataset: nothing invalid, no duplicates
    assert [q[k] for k in ("duplicate_events", "missing_required", "invalid_latency", "invalid_tokens",
                           "unknown_event_types", "future_events")] == [0] * 6


def test_values_are_unrounded(doc):
    """DESIGN: values in JSON are unrounded; rounding is presentation."""
    rate = doc["metrics"]["resolution_rate"]["value"]
    assert math.isclose(rate, 100 / 3, rel_tol=1e-12)
