"""A trap-laden event dataset, as plain Python rows, laid out around one report period.

Every trap of the core issue's acceptance list is here: events exactly at the period's start and
end, conversations spanning both boundaries, a period with a DST change (the scenarios below),
repeated resolution events, escalated-then-resolved conversations, duplicate rows by event_id,
null, negative, NaN and infinite latencies, negative tokens, unknown and null event types, rows
missing conversation_id or event_ts, a future event, several agents, models and error types,
conversations whose agent changes after the first event, two agents at a conversation's first
instant, and rows without an event_id.

Every conversation lasts well under max_conversation_hours (24 h), so all readings of the
outcome window agree; ``long_conversation_rows`` adds one that does not, for a marked test.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pyarrow as pa

from reference import bounds, first_day, local_days, shift

COLUMNS = ("event_id", "conversation_id", "event_ts", "event_type", "agent_id", "token_count",
           "latency_ms", "error_type", "error_message", "model", "cost_usd")
SCHEMA = pa.schema([
    ("event_id", pa.string()), ("conversation_id", pa.string()), ("event_ts", pa.timestamp("us", tz="UTC")),
    ("event_type", pa.string()), ("agent_id", pa.string()), ("token_count", pa.int64()),
    ("latency_ms", pa.float64()), ("error_type", pa.string()), ("error_message", pa.string()),
    ("model", pa.string()), ("cost_usd", pa.float64()),
])

#: (timezone, period kind, period key): weeks with a DST change both ways, and a 25-hour day.
SCENARIOS = {
    "berlin-fall-week": ("Europe/Berlin", "week", "2026-W43"),    # 169 hours, Oct 25 falls back
    "newyork-spring-week": ("America/New_York", "week", "2026-W11"),  # 167 hours, Mar 8 springs forward
    "berlin-fall-day": ("Europe/Berlin", "day", "2026-10-25"),    # 25 hours
}
AGENTS = ("support-bot", "billing-bot", "returns-bot@2")
MODELS = ("gpt-4.1-mini", "claude-sonnet-4")
ERROR_TYPES = ("tool_timeout", "rate_limited", "upstream_5xx", "invalid_tool_args")


class _Rows:
    def __init__(self) -> None:
        self.rows: list[dict] = []
        self._n = 0

    def add(self, conv: str | None, ts: datetime | None, etype: str | None, *, eid: str | None = "auto",
            agent: str | None = AGENTS[0], model: str | None = MODELS[0], tokens: int | None = None,
            latency: float | None = None, error_type: str | None = None, message: str | None = None,
            cost: float | None = None, copies: int = 1) -> None:
        if eid == "auto":
            self._n += 1
            eid = f"e{self._n:04d}"
        row = dict(event_id=eid, conversation_id=conv, event_ts=ts, event_type=etype, agent_id=agent,
                   token_count=tokens, latency_ms=latency, error_type=error_type, error_message=message,
                   model=model, cost_usd=cost)
        self.rows.extend(dict(row) for _ in range(copies))

    def conversation(self, conv: str, t0: datetime, steps: list[tuple], *, agent: str, model: str) -> None:
        """steps: (minutes after t0, event_type, latency, tokens[, error_type])."""
        for i, (minutes, etype, latency, tokens, *err) in enumerate(steps):
            cost = None if tokens is None else round(abs(tokens) * 2e-6, 8)
            self.add(conv, t0 + timedelta(minutes=minutes), etype, agent=agent, model=model, tokens=tokens,
                     latency=latency, error_type=err[0] if err else None, cost=cost,
                     message=f"{etype} #{i} of {conv}" if etype in ("error", "escalation") else None)


def period_of(scenario: str) -> tuple[str, str, str]:
    return SCENARIOS[scenario]


def now_for(scenario: str) -> datetime:
    """The run's clock: 9 hours after the period ends (a Monday-morning run)."""
    tz, kind, key = SCENARIOS[scenario]
    return bounds(kind, first_day(kind, key), tz)[1] + timedelta(hours=9)


def trap_rows(scenario: str) -> list[dict]:
    """The trap rows for one scenario (deterministic)."""
    tz, kind, key = SCENARIOS[scenario]
    first = first_day(kind, key)
    S, E = bounds(kind, first, tz)
    PS, _ = bounds(kind, shift(kind, first, -1), tz)
    PPS, _ = bounds(kind, shift(kind, first, -2), tz)
    D = E - S
    at = lambda f: S + D * f  # noqa: E731  (a point inside the period, as a fraction of it)
    us = timedelta(microseconds=1)
    r = _Rows()
    A, B, C = AGENTS
    M1, M2 = MODELS

    # Boundaries: an event exactly at the start belongs to P, exactly at the end to the next period.
    r.conversation("c-start", S, [(0, "message", 800.0, 100), (5, "tool_call", 1500.5, 250), (10, "resolution", None, None)],
                   agent=A, model=M1)
    r.add("c-start", None, "message", agent=A)                          # no event_ts: missing_required
    r.conversation("c-last-micro", E - us, [(0, "message", 2000.0, 50), (120, "resolution", None, None)],
                   agent=B, model=M2)                                    # resolved after P.end, inside the window
    r.conversation("c-at-end", E, [(0, "message", 640.0, 70), (3, "escalation", None, None)], agent=A, model=M1)
    r.conversation("c-span-prev", S - timedelta(minutes=30),             # previous period's, escalated inside P
                   [(0, "message", 1100.0, 90), (50, "escalation", None, None)], agent=B, model=M2)
    # Outcomes: repeated resolutions, escalated then resolved, errors of several types (and none).
    r.conversation("c-repeat-res", at(0.15), [(0, "message", 450.0, 120), (1, "resolution", None, None),
                                              (2, "resolution", None, None), (9, "resolution", None, None)], agent=A, model=M1)
    r.conversation("c-esc-res", at(0.17), [(0, "message", 980.0, 300), (4, "escalation", None, None),
                                           (30, "message", 1210.0, 80), (31, "resolution", None, None)], agent=C, model=M2)
    r.conversation("c-errors", at(0.33), [(0, "message", 700.0, 60), (1, "error", None, None, "tool_timeout"),
                                          (2, "error", None, None, "tool_timeout"), (3, "error", None, None, "rate_limited"),
                                          (4, "error", None, None, None), (5, "escalation", None, None)], agent=B, model=M1)
    # Duplicates: at-least-once ingestion repeats whole rows.
    t = at(0.30)
    r.add("c-dupes", t, "message", eid="dup-1", tokens=500, latency=900.0, cost=0.001, copies=3)
    r.add("c-dupes", t + timedelta(minutes=1), "error", eid="dup-2", error_type="tool_timeout", message="boom", copies=2)
    r.add("c-dupes", t + timedelta(minutes=2), "resolution", eid="dup-3", copies=2)
    # A re-sent event whose copies differ: one whole copy counts (the earliest; on a tie the smallest
    # column by column), never a row merged from several (an error with the message copy's tokens).
    t = at(0.35)
    r.add("c-dupe-edit", t + timedelta(seconds=5), "error", eid="dup-4", agent=C, model=M2, tokens=40, latency=1900.0,
          error_type="tool_timeout", message="late copy", cost=0.0004)
    r.add("c-dupe-edit", t, "message", eid="dup-4", agent=A, model=M1, tokens=10, latency=100.0, cost=0.0001)
    r.add("c-dupe-edit", t + timedelta(minutes=1), "resolution", eid="dup-5", agent=A, model=M1)
    r.add("c-dupe-edit", t + timedelta(minutes=1), "escalation", eid="dup-5", agent=A, model=M1)
    # Copies at one instant that differ in case only: byte order keeps "Support-bot" (S < b), a
    # linguistic collation (ICU, en_US) would keep "billing-bot" on PostgreSQL (found in an engines audit).
    t = at(0.36)
    r.add("c-dupe-case", t, "message", eid="dup-7", agent=B, model=M1, tokens=12, latency=120.0, cost=0.0001)
    r.add("c-dupe-case", t, "message", eid="dup-7", agent="Support-bot", model=M1, tokens=12, latency=120.0,
          cost=0.0001)
    # A copy re-sent a period later (a retry after an outage, re-stamped): the previous period's row counts,
    # and the copy is a duplicate of this period, where it arrived (found in a contract audit: it was in none).
    r.add("c-late-copy", PS + (S - PS) * 0.5, "message", eid="dup-6", agent=A, model=M1, tokens=15, latency=300.0,
          cost=0.0001)
    r.add("c-late-copy", at(0.05), "message", eid="dup-6", agent=A, model=M1, tokens=15, latency=300.0, cost=0.0001)
    # Rows without an event_id are not duplicates of each other: both count.
    t = at(0.62)
    for _ in range(2):
        r.add("c-noid", t, "message", eid=None, agent=C, model=M2, tokens=10, latency=100.0, cost=0.0001)
    r.add("c-noid", t + timedelta(minutes=3), "resolution", agent=C, model=M2)
    # Bad values: null, negative, NaN and infinite latencies; negative and null tokens; NaN and infinite costs
    # (one NaN made the whole period's cost null, uncounted: found in a metrics audit); a credit is a valid cost.
    t = at(0.31)
    for i, (lat, tok, cost) in enumerate([(None, None, 0.0002), (-5.0, -10, math.nan), (math.nan, 20, 0.0002),
                                          (math.inf, 30, math.inf), (-math.inf, 5, -math.inf), (0.001, 0, -0.0001),
                                          (0.0, 7, 0.0002)]):
        r.add("c-badvals", t + timedelta(seconds=i), "message", agent=A, model=M2, tokens=tok, latency=lat, cost=cost)
    r.add("c-badvals", t + timedelta(minutes=1), "abandon", agent=A, model=M2)
    # Unknown and null event types are still valid events of their conversation.
    t = at(0.45)
    r.add("c-unknown", t, "handoff_v2", agent=B, model=M1, latency=333.0, tokens=33)
    r.add("c-unknown", t + timedelta(minutes=1), None, agent=B, model=M1)
    r.add("c-unknown", t + timedelta(minutes=2), "message", agent=B, model=M1, latency=444.0, tokens=44)
    r.add("c-unknown-only", at(0.46), "feedback", agent=C, model=None)
    # The agent of a conversation is its first event's; later events come from another agent.
    r.conversation("c-agent-switch", at(0.55), [(0, "message", 1300.0, 140)], agent=B, model=M2)
    r.conversation("c-agent-switch", at(0.55) + timedelta(minutes=1),
                   [(0, "tool_call", 2600.0, 200), (1, "resolution", None, None)], agent=A, model=M1)
    # Two first events at one instant from two agents: the smallest agent_id is the conversation's (the row
    # of "b-bot" comes first in the table, so "the first row read" is not the rule either).
    t = at(0.40)
    r.add("c-agent-tie", t, "message", agent="b-bot", model=M1, tokens=21, latency=410.0, cost=0.00005)
    r.add("c-agent-tie", t, "tool_call", agent="a-bot", model=M2, tokens=31, latency=1400.0, cost=0.00007)
    r.add("c-agent-tie", t + timedelta(minutes=2), "resolution", agent="b-bot", model=M1)
    r.conversation("c-no-agent", at(0.57), [(0, "message", 520.0, 15), (2, "abandon", None, None)], agent=None, model=M1)
    # Rows that cannot be placed: no conversation_id (in P and in the previous period), a future event.
    r.add(None, at(0.05), "resolution", agent=A)
    r.add(None, PS + timedelta(hours=3), "message", agent=A, latency=-1.0)
    r.add("c-future", datetime(2099, 1, 1, tzinfo=timezone.utc), "message", agent=A, latency=10.0)
    r.add(None, datetime(2099, 1, 1, tzinfo=timezone.utc), "message", agent=A)  # missing_required only, when its time comes

    # Local days: a conversation at each local midnight and one a second before the next.
    zone = ZoneInfo(tz)
    for i, d in enumerate(local_days(kind, first)):
        midnight = datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(timezone.utc)
        nxt = d + timedelta(days=1)
        before_next = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone).astimezone(timezone.utc) - timedelta(seconds=1)
        for j, t0 in enumerate((midnight + timedelta(seconds=1), before_next - timedelta(minutes=20))):
            k = 2 * i + j
            outcome = ("resolution", "escalation", "abandon")[k % 3]
            steps = [(0, "message", 300.0 + 97.0 * k, 40 + 13 * k), (2, "tool_call", 1800.0 + 211.0 * (k % 5), 90)]
            if k % 4 == 1:
                steps.append((5, "error", None, None, ERROR_TYPES[k % len(ERROR_TYPES)]))
            steps.append((8, outcome, None, None))
            r.conversation(f"c-day{i}-{j}", t0, steps, agent=AGENTS[k % 3], model=MODELS[k % 2])
    # The DST change (if the period has one): conversations 30 minutes either side of it.
    for n, moment in enumerate(_offset_changes(zone, S, E)):
        for side, delta in (("before", -30), ("after", 30)):
            r.conversation(f"c-dst{n}-{side}", moment + timedelta(minutes=delta),
                           [(0, "message", 750.0 + delta, 55), (1, "resolution", None, None)], agent=C, model=M1)

    # The previous period, so changes have something to compare with; and two periods back.
    r.conversation("p-start", PS, [(0, "message", 700.0, 80), (1, "resolution", None, None)], agent=A, model=M1)
    prev = [("p-esc", B, M2, [(0, "message", 1900.0, 400), (3, "escalation", None, None)]),
            ("p-err-res", A, M1, [(0, "message", 610.0, 75), (1, "error", None, None, "tool_timeout"), (2, "resolution", None, None)]),
            ("p-abandon", C, M2, [(0, "tool_call", 2500.0, 150), (6, "abandon", None, None)]),
            ("p-slow", A, M1, [(0, "message", 3000.0, 60), (1, "tool_call", 4100.0, 220), (9, "resolution", None, None)]),
            ("p-rate", B, M1, [(0, "message", 520.0, 35), (1, "error", None, None, "rate_limited"), (3, "abandon", None, None)])]
    for i, (conv, agent, model, steps) in enumerate(prev):
        r.conversation(conv, PS + (S - PS) * (0.1 + 0.15 * i), steps, agent=agent, model=model)
    r.conversation("pp-1", PPS + timedelta(hours=5), [(0, "message", 810.0, 64), (1, "resolution", None, None)],
                   agent=A, model=M1)
    return r.rows


def long_conversation_rows(scenario: str) -> list[dict]:
    """A previous-period conversation escalated 30 hours after the previous period ended (> 24 h)."""
    tz, kind, key = SCENARIOS[scenario]
    first = first_day(kind, key)
    S, _ = bounds(kind, first, tz)
    r = _Rows()
    r.conversation("p-long", S - timedelta(hours=2), [(0, "message", 500.0, 10), (32 * 60, "escalation", None, None)],
                   agent=AGENTS[0], model=MODELS[0])
    for row in r.rows:
        row["event_id"] = "long-" + row["event_id"]
    return r.rows


def _offset_changes(zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """UTC instants in [start, end) where the zone's UTC offset changes (to the hour)."""
    out, t = [], start
    while t < end:
        nxt = t + timedelta(hours=1)
        if t.astimezone(zone).utcoffset() != nxt.astimezone(zone).utcoffset():
            out.append(nxt)
        t = nxt
    return out


def to_arrow(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist([{c: r.get(c) for c in COLUMNS} for r in rows], schema=SCHEMA)


def unvalued_rows() -> list[dict]:
    """2026-W47 (UTC): Monday's conversations (priced-bot) carry tokens and cost, Tuesday's (silent-bot) neither,
    Wednesday's (tokens-bot) tokens only; Thursday to Sunday have none; one conversation the week before."""
    monday = datetime(2026, 11, 16, 9, tzinfo=timezone.utc)
    plan = [(0, "priced-bot", 100, 0.25), (0, "priced-bot", 140, 0.5), (1, "silent-bot", None, None),
            (1, "silent-bot", None, None), (2, "tokens-bot", 70, None), (-7, "priced-bot", 50, 0.125)]
    rows = []
    for i, (day, agent, tokens, cost) in enumerate(plan):
        at = monday + timedelta(days=day, hours=i)
        rows += [{"event_id": f"m{i}", "conversation_id": f"c{i}", "event_ts": at, "event_type": "message",
                  "agent_id": agent, "token_count": tokens, "latency_ms": 400.0 + i, "cost_usd": cost, "model": "m"},
                 {"event_id": f"r{i}", "conversation_id": f"c{i}", "event_ts": at + timedelta(minutes=1),
                  "event_type": "resolution", "agent_id": agent, "model": "m"}]
    return rows
