"""Random event tables (hypothesis) against the plain-Python reference, on DuckDB, Parquet, PostgreSQL and Spark.

The shared backend suite checks one hand-made dataset on every engine; this one lets hypothesis
build the tables: conversations anywhere in the trend window and around it (at period bounds to the
microsecond), duplicate event_ids whose copies differ, null, empty and repeated ids, invalid and
missing values of every kind, unknown event types, rows without a conversation or a time, future
events, conversations longer than ``max_conversation_hours`` (1.5, 6 or 24), ids reused weeks apart, and
each completeness baseline (the previous periods, ``expected_events_per_day``, ``same_weekday``), reports
of some agents only (exact names and ``prefix*``), and day, week and month reports in zones whose clocks
change in, just before or just after the period (New York, Berlin, Sydney, Lord Howe's 30 minutes,
Kathmandu's +05:45), run after the period or while it runs. Each report.json must match the reference's definitions exactly.

Runs a fixed set of examples (``derandomize``), so a run of the suite never depends on luck; set
``AGENTDIGEST_HYPOTHESIS_EXAMPLES`` for a longer, random search.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from agentdigest.compute import compute_report
from agentdigest.config import ReportConfig, SourceConfig
from agentdigest.periods import parse_period
from agentdigest.sources import open_source
from backend_loaders import load_duckdb, load_parquet, load_postgres, load_spark
from compare import compare_report
from reference import Reference, bounds, first_day, shift

EXAMPLES = int(os.environ.get("AGENTDIGEST_HYPOTHESIS_EXAMPLES", "0"))
EVENT_TYPES = ("message", "message", "tool_call", "resolution", "escalation", "error", "abandon", "handoff",
               "Resolution", "escalation ", "", None)
#: Code point order differs from UTF-16's between the last two (a surrogate pair sorts below U+FF41 there).
AGENTS = ("support-bot", "billing-bot", "Billing-bot", "support-bot ", "é-bot", "bot_1", "", None, "🤖-bot", "ａ-bot")
MODELS = ("gpt-4.1-mini", "claude-sonnet-4", None)
ERROR_TYPES = ("tool_timeout", "rate_limited", "", None)
LATENCIES = st.one_of(st.none(), st.floats(0, 20_000, allow_nan=False), st.sampled_from(
    [0.0, -1.0, math.nan, math.inf, -math.inf, 1e12]))
TOKENS = st.one_of(st.none(), st.integers(0, 5_000), st.sampled_from([-1, 2**53, 2**53 + 1, 2**62]))
#: Multiples of 1/1024 (credits too), which every order of summing adds exactly: a sum that cancels to 0 in
#: one order and to 1e-17 in another would make change_pct null in one and huge in the other.
COSTS = st.one_of(st.none(), st.integers(-512, 2048).map(lambda n: n / 1024), st.sampled_from([math.nan, math.inf]))


@st.composite
def events(draw, kind: str, tz: str, key: str, now: datetime) -> list[dict]:
    """Rows for one report: conversations of up to 40 hours (longer than short outcome windows), some
    ids used again weeks apart, starting from 9 periods before the report's to 1 after it."""
    first = first_day(kind, key)
    oldest, _ = bounds(kind, shift(kind, first, -8), tz)
    _, end = bounds(kind, first, tz)
    span = int((end - oldest).total_seconds()) + 2 * 86_400
    starts = [oldest - timedelta(days=1) + timedelta(seconds=s) for s in draw(st.lists(
        st.integers(0, span), min_size=1, max_size=25))]
    # Period bounds exactly, and a microsecond either side.
    edges = [bounds(kind, shift(kind, first, -k), tz)[0] for k in range(-1, 9)]
    starts += [draw(st.sampled_from(edges)) + timedelta(microseconds=draw(st.sampled_from([-1, 0, 1])))
               for _ in range(draw(st.integers(0, 4)))]
    rows: list[dict] = []
    n = 0
    for c, start in enumerate(starts):
        t = start
        # Now and then an id used again, weeks later or before, as a producer reusing ids does.
        c = draw(st.sampled_from([c] * 9 + list(range(c + 1))))
        for _ in range(draw(st.integers(1, 6))):
            n += 1
            etype = draw(st.sampled_from(EVENT_TYPES))
            rows.append(dict(
                event_id=draw(st.sampled_from([f"e{n}", f"e{n}", f"e{n}", "", None])),
                conversation_id=f"c{c}", event_ts=t, event_type=etype,
                agent_id=draw(st.sampled_from(AGENTS)), token_count=draw(TOKENS), latency_ms=draw(LATENCIES),
                error_type=draw(st.sampled_from(ERROR_TYPES)) if etype == "error" else None,
                error_message=None, model=draw(st.sampled_from(MODELS)), cost_usd=draw(COSTS)))
            t += timedelta(seconds=draw(st.integers(0, 8 * 3600)))
    # Copies of some events: identical, or differing in a value, a time or even a conversation.
    for _ in range(draw(st.integers(0, 6))):
        row = dict(draw(st.sampled_from(rows)))
        if not row["event_id"]:
            continue
        change = draw(st.sampled_from(["same", "latency", "time", "agent", "conversation", "type"]))
        if change == "latency":
            row["latency_ms"] = draw(LATENCIES)
        elif change == "time":
            row["event_ts"] += timedelta(seconds=draw(st.integers(-3600, 3600)))
        elif change == "agent":
            row["agent_id"] = draw(st.sampled_from(AGENTS))
        elif change == "conversation":
            near = [r["conversation_id"] for r in rows if abs(r["event_ts"] - row["event_ts"]) < timedelta(hours=2)]
            row["conversation_id"] = draw(st.sampled_from(near))
        elif change == "type":
            row["event_type"] = draw(st.sampled_from(EVENT_TYPES))
        rows.append(row)
    # Rows missing a required field, and events after the run.
    for _ in range(draw(st.integers(0, 2))):
        row = dict(draw(st.sampled_from(rows)), event_id=None)
        row[draw(st.sampled_from(["conversation_id", "event_ts"]))] = None
        rows.append(row)
    for _ in range(draw(st.integers(0, 2))):
        # An event at the run's instant is not in the future; one a microsecond later is.
        after = draw(st.sampled_from([timedelta(0), timedelta(microseconds=1), timedelta(hours=draw(st.integers(1, 500)))]))
        rows.append(dict(draw(st.sampled_from(rows)), event_id=None, event_ts=now + after))
    return draw(st.permutations(rows))


#: Zones and local dates their clocks change on (or, for Kathmandu, +05:45 all year): a report's period, its
#: previous one or the next (its conversations' look-ahead) holds the change. Lord Howe moves by 30 minutes.
TRANSITIONS = {
    "America/New_York": (date(2026, 11, 1), date(2026, 3, 8)),     # fall back, spring forward
    "Europe/Berlin": (date(2026, 10, 25), date(2026, 3, 29)),
    "Australia/Sydney": (date(2026, 10, 4), date(2026, 4, 5)),     # spring forward, fall back
    "Australia/Lord_Howe": (date(2026, 10, 4), date(2026, 4, 5)),  # +10:30 <-> +11
    "Asia/Kathmandu": (date(2026, 1, 5), date(2026, 10, 25)),      # no DST
}


def period_key(kind: str, first: date) -> str:
    if kind == "day":
        return first.isoformat()
    if kind == "week":
        year, week, _ = first.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{first.year:04d}-{first.month:02d}"


@st.composite
def scenarios(draw) -> tuple[str, str, str, datetime]:
    """A zone, a kind of period, the report's period (holding a clock change, or just before or after one)
    and the run's clock: mostly 9 hours after the period ends, sometimes at its very end or inside it."""
    tz = draw(st.sampled_from(sorted(TRANSITIONS)))
    kind = draw(st.sampled_from(["day", "week", "month"]))
    day = draw(st.sampled_from(TRANSITIONS[tz]))
    first = {"day": day, "week": day - timedelta(days=day.isoweekday() - 1), "month": day.replace(day=1)}[kind]
    first = shift(kind, first, draw(st.sampled_from([0, 0, 0, 1, -1])))
    start, end = bounds(kind, first, tz)
    now = draw(st.sampled_from([end + timedelta(hours=9)] * 4 + [end, start + (end - start) * 0.6]))
    return tz, kind, period_key(kind, first), now


@st.composite
def cases(draw) -> tuple[tuple[str, str, str, datetime], dict, list[dict]]:
    """A scenario, the report's settings (the outcome window, the completeness baseline, the agents) and its rows."""
    scenario = draw(scenarios())
    tz, kind, key, now = scenario
    baselines = [{}, {}, {"expected_events_per_day": 3.5}] + (
        [{"completeness_baseline": "same_weekday"}] if kind == "day" else [])
    setup = {"max_conversation_hours": draw(st.sampled_from([24.0, 24.0, 6.0, 1.5])), **draw(st.sampled_from(baselines))}
    scope = draw(st.sampled_from([None, None, ["billing-bot"], ["support-*"], ["é-bot", "Billing-*"], ["nobody"],
                                  ["support-bot "], ["bill*"], ["billing-bot", "support-*"], ["bot_*", "🤖*"], ["ａ-bot"]]))
    if scope:
        setup["agents"] = scope
    return scenario, setup, draw(events(kind, tz, key, now))


def _examples(n: int) -> settings:
    """``n`` fixed examples (or the environment's number, random); no shrinking, which took minutes a case."""
    return settings(max_examples=EXAMPLES or n, derandomize=not EXAMPLES, deadline=None, database=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


def _check(case: tuple[tuple[str, str, str, datetime], dict, list[dict]], load: Callable[[list[dict], Path], dict]) -> None:
    scenario, setup, rows = case
    hours = setup["max_conversation_hours"]
    tz, kind, key, now = scenario
    with tempfile.TemporaryDirectory() as folder:
        source = open_source(SourceConfig(**load(rows, Path(folder))))
        try:
            report = ReportConfig(id="random", period=kind, timezone=tz, human_cost_per_conversation=3.0,
                                  **{k: v for k, v in setup.items() if k != "max_conversation_hours"})
            doc = json.loads(compute_report(source, report, parse_period(kind, key, tz), now=now,
                                            max_conversation_hours=hours).to_json())
        finally:
            source.close()
    mismatches = compare_report(doc, Reference(
        rows, tz, kind, key, now, hours, human_cost=3.0, expected_per_day=setup.get("expected_events_per_day"),
        baseline=setup.get("completeness_baseline", "previous_periods"), agents=setup.get("agents")))
    assert not mismatches, f"{scenario}, {setup}, {len(rows)} rows: " + "\n".join(mismatches[:60])


@_examples(40)
@given(cases())
def test_random_event_tables_match_the_reference_on_duckdb(case):
    _check(case, load_duckdb)


@_examples(10)
@given(cases())
def test_random_event_tables_match_the_reference_on_parquet(case):
    _check(case, load_parquet)


@pytest.mark.postgres
@_examples(40)
@given(cases())
def test_random_event_tables_match_the_reference_on_postgres(pg_url, case):
    _check(case, lambda rows, folder: load_postgres(rows, pg_url))


@pytest.mark.spark
@_examples(6)
@given(cases())
def test_random_event_tables_match_the_reference_on_spark(spark, case):
    _check(case, load_spark)
