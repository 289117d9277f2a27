"""An independent, plain-Python implementation of DESIGN.md's metric definitions.

Written from DESIGN.md (and, where DESIGN.md is silent, from the core's documented decisions in
quality.py's docstrings), not from compute.py, so the shared backend suite compares every engine
with a second opinion. Slow on purpose: loops over rows, sorts for quantiles, no engine.

Decisions where DESIGN.md leaves room (noted for the lead):

* Outcome window: a conversation of period P counts its events with ``event_ts < P.end + H``
  (H = max_conversation_hours). The trap data keeps every conversation shorter than H, where
  "P.end + H", "start + H" and "all events" all agree; a longer one is a separate, marked test.
* Rows without an event_id (null or empty) are never duplicates of each other (only a shared event_id is). Of
  copies that differ, one whole row counts: the earliest (ties: smallest column by column).
* Quality counts are over raw rows (duplicates included), rows with conversation_id set and
  event_ts in P; a period's duplicate_events are its rows that are not the kept copy of their
  event_id, so a copy that arrives a period after its original is a duplicate where it arrived; rows with a null event_ts are missing_required in every report; future events
  are counted anywhere in the table; a null event_type is an unknown type.
* Completeness: received = rows with conversation_id in the elapsed hours of P; expected = median
  of the same hours of the previous 4 periods, leaving out periods with no rows at all or fewer than a
  tenth of the largest one's (README: a few stray events in an old period are no baseline).
* A conversation's agent (rule 4) is the agent_id of its first event; when several events share the
  first instant, the smallest of their agent_ids (cohort.conversation_agents' documented choice, "so
  every engine agrees"), null ones ignored as SQL's min() does; compared by code point (= UTF-8 bytes).
* Estimated savings (README "Metrics"): with ``human_cost`` (the report's human_cost_per_conversation),
  ``estimated_savings_usd`` = (conversations - escalated_conversations) x human_cost - cost_usd, for
  the period and the previous one; higher is better; absent from the report without a human cost.
  (The core also reads a period whose conversations have no cost value at all as null savings, a
  rule README does not state; the trap data has cost values in both periods, so it does not arise.)
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

KNOWN = {"message", "tool_call", "resolution", "escalation", "error", "abandon"}
HIGHER_IS_BETTER = {
    "conversations": True, "resolved_conversations": True, "escalated_conversations": False,
    "resolution_rate": True, "containment_rate": True, "errors": False, "error_conversations": False,
    "error_rate": False, "total_tokens": None, "tokens_per_conversation": False, "avg_latency_ms": False,
    "p50_latency_ms": False, "p95_latency_ms": False, "p99_latency_ms": False, "cost_usd": False,
}
RATES = {"resolution_rate", "containment_rate", "error_rate"}
CONVERSATION_METRICS = [m for m in HIGHER_IS_BETTER if not m.startswith(("p50", "p95", "p99"))]
#: Derived from other metrics and a report setting (README "Metrics"); only with human_cost_per_conversation.
SAVINGS = "estimated_savings_usd"
DERIVED_HIGHER_IS_BETTER = {SAVINGS: True}
TREND_PERIODS = 8
#: README "Notable changes": the sums over a period's events, which missing events lower.
TOTALS = {"conversations", "resolved_conversations", "escalated_conversations", "errors", "error_conversations",
          "total_tokens", "cost_usd", SAVINGS}
#: README: a period whose conversations carry no value of a summed column shows none of these figures.
SUMMED = {"cost_usd": ("cost_usd", SAVINGS), "token_count": ("total_tokens", "tokens_per_conversation")}


# -- periods (independent of agentdigest.periods) ----------------------------------------------

def _midnight(d: date, tz: str) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(tz)).astimezone(timezone.utc)


def first_day(kind: str, key: str) -> date:
    if kind == "day":
        return date.fromisoformat(key)
    if kind == "week":
        year, week = key.split("-W")
        return date.fromisocalendar(int(year), int(week), 1)
    year, month = key.split("-")
    return date(int(year), int(month), 1)


def shift(kind: str, first: date, n: int) -> date:
    """The first day of the period ``n`` periods after the one starting on ``first``."""
    if kind == "day":
        return first + timedelta(days=n)
    if kind == "week":
        return first + timedelta(weeks=n)
    months = first.year * 12 + first.month - 1 + n
    return date(months // 12, months % 12 + 1, 1)


def bounds(kind: str, first: date, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of the period starting on ``first``, as UTC instants."""
    return _midnight(first, tz), _midnight(shift(kind, first, 1), tz)


def local_days(kind: str, first: date) -> list[date]:
    last = shift(kind, first, 1)
    return [first + timedelta(days=i) for i in range((last - first).days)]


# -- numbers ------------------------------------------------------------------------------------

def cost_of(e: dict) -> float:
    """An event's cost for the sums: NaN and infinite costs are invalid, read as absent."""
    c = e.get("cost_usd")
    return c if c is not None and math.isfinite(c) else 0.0


def valid_tokens(t: Any) -> bool:
    """A token count that is data: 0 to 2^53 (README: beyond, no real count)."""
    return t is not None and 0 <= t <= 2 ** 53


def finite_nonneg(x: Any) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x) and x >= 0


def quantile(values: list[float], q: float) -> float | None:
    """Continuous quantile, linear interpolation between closest ranks (R type 7)."""
    if not values:
        return None
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def pct(num: float, den: float) -> float | None:
    return None if den == 0 else num * 100.0 / den


def change(name: str, cur: Any, prev: Any) -> dict[str, Any]:
    """DESIGN.md rule 5."""
    hib = {**HIGHER_IS_BETTER, **DERIVED_HIGHER_IS_BETTER}[name]
    out: dict[str, Any] = {"change_pct": None, "change_pp": None, "direction": None, "good": None}
    if cur is None:
        return out
    if name in RATES:
        out["change_pp"] = None if prev is None else cur - prev
    elif prev not in (None, 0):
        out["change_pct"] = (cur - prev) / abs(prev) * 100.0  # README: of a negative previous (a credit) too
    if prev is None or prev == 0:
        out["direction"] = "new" if cur != 0 else ("flat" if prev == 0 else None)
    else:
        out["direction"] = "up" if cur > prev else "down" if cur < prev else "flat"
    if hib is not None and prev is not None and cur != prev:
        out["good"] = (cur > prev) == hib
    return out


# -- the definitions ------------------------------------------------------------------------------

def valid_events(rows: list[dict]) -> list[dict]:
    """Rule 1: conversation_id and event_ts set; rows sharing an event_id count once.

    Which copy, when the copies differ: the earliest, and on a tie the smallest column by column with
    invalid latency and tokens read as absent and absent values last (the core's documented choice).
    """
    valid = [r for r in rows if r["conversation_id"] not in (None, "") and r["event_ts"] is not None]
    copies: dict[str, list[dict]] = defaultdict(list)
    for r in valid:
        if r.get("event_id"):  # an empty id is no id (README)
            copies[r["event_id"]].append(r)
    kept = {eid: min(group, key=_copy_order) for eid, group in copies.items()}
    return [r for r in valid if not r.get("event_id") or kept[r["event_id"]] is r]


def _copy_order(r: dict) -> tuple:
    tokens = r.get("token_count")
    latency = r.get("latency_ms")
    values = (r["conversation_id"], r.get("event_type"), r.get("agent_id"), r.get("model"), r.get("error_type"),
              r.get("error_message"), r["cost_usd"] if r.get("cost_usd") is not None and math.isfinite(r["cost_usd"])
              else None, tokens if valid_tokens(tokens) else None,
              latency if latency is not None and finite_nonneg(latency) else None)
    return (r["event_ts"],) + tuple((v is None, v if v is not None else 0) for v in values)


def first_agent(evs: list[dict]) -> str | None:
    """Rule 4: the agent_id of the conversation's first event (``evs`` sorted by time); on a tie at the first
    instant, the smallest non-null agent_id of the tied events."""
    tied = [e.get("agent_id") for e in evs if e["event_ts"] == evs[0]["event_ts"]]
    named = [a for a in tied if a is not None]
    return min(named) if named else None


class Reference:
    """Expected report values for one report over ``rows`` (the canonical event rows)."""

    def __init__(self, rows: list[dict], tz: str, kind: str, key: str, now: datetime,
                 max_conversation_hours: float = 24.0, human_cost: float | None = None,
                 expected_per_day: float | None = None, baseline: str = "previous_periods",
                 agents: list[str] | None = None):
        # An empty conversation_id is none (README), as a CSV file's empty field is read.
        rows = [{**r, "conversation_id": None} if r["conversation_id"] == "" else r for r in rows]
        self.rows, self.tz, self.kind, self.now = rows, tz, kind, now
        self.expected_per_day, self.baseline, self.agents = expected_per_day, baseline, agents
        self.human_cost = human_cost
        self.first = first_day(kind, key)
        self.window = timedelta(hours=max_conversation_hours)
        # README "Metrics": conversations are read from max_conversation_hours before the oldest trend period
        # (8 periods) to as long after the period: an id reused for months starts at its earliest event in there.
        reach = (self.period(TREND_PERIODS - 1)[0] - self.window, self.period(0)[1] + self.window)
        self.events = valid_events([r for r in rows if r["event_ts"] is None or reach[0] <= r["event_ts"] < reach[1]])
        by_conv: dict[str, list[dict]] = defaultdict(list)
        for e in self.events:
            by_conv[e["conversation_id"]].append(e)
        self.by_conv = {c: sorted(evs, key=lambda e: e["event_ts"]) for c, evs in by_conv.items()}

    def period(self, back: int = 0) -> tuple[datetime, datetime]:
        return bounds(self.kind, shift(self.kind, self.first, -back), self.tz)

    def conversations(self, back: int = 0, *, everyone: bool = False) -> dict[str, dict]:
        """Rule 2: conversations starting in the period, each with its outcome events; of the report's
        ``agents`` only (README: a conversation's agent is its first event's), unless ``everyone``."""
        start, end = self.period(back)
        out = {}
        for cid, evs in self.by_conv.items():
            first = evs[0]
            if start <= first["event_ts"] < end:
                outcome = [e for e in evs if e["event_ts"] < end + self.window]
                out[cid] = {"start": first["event_ts"], "agent_id": first_agent(evs), "events": outcome}
        if self.agents and not everyone:
            exact = {a for a in self.agents if not a.endswith("*")}
            prefixes = tuple(a[:-1] for a in self.agents if a.endswith("*"))
            out = {cid: c for cid, c in out.items()
                   if c["agent_id"] is not None and (c["agent_id"] in exact or c["agent_id"].startswith(prefixes))}
        return out

    @staticmethod
    def conversation_metrics(convs: dict[str, dict]) -> dict[str, Any]:
        """Rule 3 over a set of conversations (the conversation-level metrics)."""
        n = len(convs)
        has = lambda c, t: any(e["event_type"] == t for e in c["events"])  # noqa: E731
        resolved = sum(has(c, "resolution") for c in convs.values())
        escalated = sum(has(c, "escalation") for c in convs.values())
        errors = sum(e["event_type"] == "error" for c in convs.values() for e in c["events"])
        error_convs = sum(has(c, "error") for c in convs.values())
        events = [e for c in convs.values() for e in c["events"]]
        tokens = sum(e["token_count"] for e in events if valid_tokens(e.get("token_count")))
        lat = [e["latency_ms"] for e in events if finite_nonneg(e.get("latency_ms"))]
        return {
            "conversations": n, "resolved_conversations": resolved, "escalated_conversations": escalated,
            "resolution_rate": pct(resolved, n), "containment_rate": pct(n - escalated, n),
            "errors": errors, "error_conversations": error_convs, "error_rate": pct(error_convs, n),
            "total_tokens": tokens, "tokens_per_conversation": None if n == 0 else tokens / n,
            "avg_latency_ms": statistics.fmean(lat) if lat else None,
            "cost_usd": sum((cost_of(e) for e in events), 0.0),
        }

    @classmethod
    def all_metrics(cls, convs: dict[str, dict]) -> dict[str, Any]:
        out = cls.conversation_metrics(convs)
        lat = [e["latency_ms"] for c in convs.values() for e in c["events"] if finite_nonneg(e.get("latency_ms"))]
        out.update(p50_latency_ms=quantile(lat, 0.50), p95_latency_ms=quantile(lat, 0.95),
                   p99_latency_ms=quantile(lat, 0.99))
        return out

    def savings(self, m: dict[str, Any]) -> float:
        """README: (conversations - escalated) x human cost - cost_usd, of one period's metrics ``m``."""
        return (m["conversations"] - m["escalated_conversations"]) * self.human_cost - m["cost_usd"]

    @staticmethod
    def unvalued(convs: dict[str, dict]) -> set[str]:
        """README: the summed columns of which a period's conversations (some) carry no valid value at all."""
        valid = {"cost_usd": lambda e: e.get("cost_usd") is not None and math.isfinite(e["cost_usd"]),
                 "token_count": lambda e: valid_tokens(e.get("token_count"))}
        events = [e for c in convs.values() for e in c["events"]]
        return {col for col, ok in valid.items() if convs and not any(ok(e) for e in events)}

    def begins_within(self, last: int, n: int = 8) -> bool:
        """README "Notable changes": whether the data begin in one of the trend's ``last`` periods (the
        first with conversations; the oldest one only when no row of the table is older than it)."""
        first = next((i for i, back in enumerate(range(n - 1, -1, -1)) if self.conversations(back)), n)
        if first == n or (first == 0 and any(r["event_ts"] is not None and r["event_ts"] < self.period(n - 1)[0]
                                             for r in self.rows)):
            return False
        return first >= n - last

    def metrics(self) -> dict[str, dict[str, Any]]:
        convs = {0: self.conversations(0), 1: self.conversations(1)}
        cur, prev = self.all_metrics(convs[0]), self.all_metrics(convs[1])
        unvalued = {back: self.unvalued(c) for back, c in convs.items()}
        if self.human_cost is not None:
            cur[SAVINGS], prev[SAVINGS] = (None if "cost_usd" in unvalued[back] else self.savings(m)
                                           for back, m in ((0, cur), (1, prev)))
        # README: a change is not judged (judged false; good still says which way is desirable, DESIGN rule 5)
        # for a figure whose column has no value in either period, nor for the totals on incomplete data, in
        # the period the data begin in or against it, or in a period that has not ended.
        unjudged = {name for col in unvalued[0] | unvalued[1] for name in SUMMED[col]}
        totals_unjudged = self.quality()["warning"] or self.begins_within(2) or self.now < self.period(0)[1]
        out = {}
        for name in cur:
            if name in HIGHER_IS_BETTER or name in DERIVED_HIGHER_IS_BETTER:
                out[name] = {"value": cur[name], "previous": prev[name], **change(name, cur[name], prev[name]),
                             "judged": not (name in unjudged or (name in TOTALS and totals_unjudged))}
        return out

    def trend(self, n: int = 8) -> list[dict[str, Any]]:
        out = []
        for back in range(n - 1, -1, -1):
            convs = self.conversations(back)
            row = self.conversation_metrics(convs)
            out.append(self.valued(row, convs))
        return out

    @classmethod
    def valued(cls, row: dict[str, Any], convs: dict[str, dict]) -> dict[str, Any]:
        """A trend period's, a day's or an agent's ``row`` with its sums over no value at all null, not 0 (README)."""
        return {**row, **{name: None for col in cls.unvalued(convs) for name in SUMMED[col] if name in row}}

    def daily(self) -> list[dict[str, Any]]:
        """Rule 4: a day of the series is the local date of the conversation's start."""
        convs = self.conversations(0)
        zone = ZoneInfo(self.tz)
        out = []
        for d in local_days(self.kind, self.first):
            day = {c: v for c, v in convs.items() if v["start"].astimezone(zone).date() == d}
            out.append({"date": d.isoformat(), **self.valued(self.conversation_metrics(day), day)})
        return out

    def by_agent(self) -> dict[str, dict[str, Any]]:
        """Rule 4: a conversation's agent is the agent_id of its first event."""
        cur, prev = self.conversations(0), self.conversations(1)

        def split(convs: dict[str, dict]) -> dict[str, dict[str, dict]]:
            groups: dict[str, dict[str, dict]] = defaultdict(dict)
            for cid, c in convs.items():
                groups[c["agent_id"]][cid] = c
            return groups

        cur_g, prev_g = split(cur), split(prev)
        out = {}
        for agent, convs in cur_g.items():
            row = self.valued(self.conversation_metrics(convs), convs)
            p = prev_g.get(agent, {})
            row["p95_latency_ms"] = self.all_metrics(convs)["p95_latency_ms"]
            row["previous_p95_latency_ms"] = self.all_metrics(p)["p95_latency_ms"] if p else None
            row["previous_conversations"] = len(p)
            before = self.conversation_metrics(p) if p else {}
            row["previous_resolution_rate"] = before.get("resolution_rate")
            row["previous_error_rate"] = before.get("error_rate")
            row["previous_resolved_conversations"] = before.get("resolved_conversations", 0)
            row["previous_error_conversations"] = before.get("error_conversations", 0)
            out[agent] = row
        return out

    def by_model(self) -> dict[str, dict[str, Any]]:
        """Events of the period's conversations by the model that served each event."""
        def group(convs: dict[str, dict]) -> dict[str, dict[str, Any]]:
            rows: dict[str, list[dict]] = defaultdict(list)
            for c in convs.values():
                for e in c["events"]:
                    rows[e.get("model")].append(e)
            out = {}
            for model, evs in rows.items():
                lat = [e["latency_ms"] for e in evs if finite_nonneg(e.get("latency_ms"))]
                out[model] = {
                    "events": len(evs), "conversations": len({e["conversation_id"] for e in evs}),
                    "errors": sum(e["event_type"] == "error" for e in evs),
                    # a sum over no values is none (null), not 0
                    "total_tokens": sum(tokens) if (tokens := [e["token_count"] for e in evs
                                                               if valid_tokens(e.get("token_count"))]) else None,
                    "cost_usd": sum(costs, 0.0) if (costs := [cost_of(e) for e in evs if e.get("cost_usd") is not None
                                                              and math.isfinite(e["cost_usd"])]) else None,
                    "avg_latency_ms": statistics.fmean(lat) if lat else None,
                    "p95_latency_ms": quantile(lat, 0.95),
                }
            return out

        cur, prev = group(self.conversations(0)), group(self.conversations(1))
        for model, row in cur.items():
            row["previous_events"] = prev.get(model, {}).get("events", 0)
            row["previous_total_tokens"] = prev.get(model, {}).get("total_tokens", 0)  # unused then: 0 tokens
        return cur

    def errors_by_type(self, top: int = 10) -> list[dict[str, Any]]:
        def count(convs: dict[str, dict]) -> dict[str, int]:
            out: dict[str, int] = defaultdict(int)
            for c in convs.values():
                for e in c["events"]:
                    if e["event_type"] == "error":
                        out[e.get("error_type")] += 1
            return out

        cur, prev = count(self.conversations(0)), count(self.conversations(1))
        ranked = sorted(cur.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))[:top]  # no type (null) last
        return [{"error_type": t, "count": n, "previous": prev.get(t, 0)} for t, n in ranked]

    def quality(self) -> dict[str, Any]:
        """Rule 6 counts, and completeness against the previous 4 periods."""
        start, end = self.period(0)
        in_p = [r for r in self.rows if r["event_ts"] is not None and start <= r["event_ts"] < end]
        placed = [r for r in in_p if r["conversation_id"] is not None]
        # Extra copies: the period's rows of an event_id that are not the copy the metrics keep, wherever
        # (in whichever period) the kept one is.
        kept = {id(r) for r in self.events}
        out: dict[str, Any] = {
            "duplicate_events": sum(bool(r.get("event_id")) and id(r) not in kept for r in placed),
            "missing_required": sum(r["event_ts"] is None for r in self.rows)
            + sum(r["conversation_id"] is None for r in in_p),
            "invalid_latency": sum(r.get("latency_ms") is not None and not finite_nonneg(r["latency_ms"])
                                   for r in placed),
            "invalid_tokens": sum(r.get("token_count") is not None and not valid_tokens(r["token_count"]) for r in placed),
            "unknown_event_types": sum(r["event_type"] not in KNOWN for r in placed),
            "invalid_cost": sum(r.get("cost_usd") is not None and not math.isfinite(r["cost_usd"]) for r in placed),
            # A row without a conversation_id is missing_required only.
            "future_events": sum(r["event_ts"] is not None and r["conversation_id"] is not None and r["event_ts"] > self.now
                                 for r in self.rows),
        }
        # README: a running period compares its whole hours elapsed; a complete one all its hours, the last one
        # partial where the period is not a whole number of hours (a half-hour DST shift).
        elapsed = (min(end, max(self.now, start)) - start).total_seconds() / 3600
        hours = timedelta(hours=math.ceil(elapsed) if self.now >= end else math.floor(elapsed))

        def received(lo: datetime, hi: datetime) -> int:
            """Events in the first elapsed hours of [lo, hi): a baseline's "same hours" end with it (its last
            hour partial). README: hours are the report period's whole hours, so a baseline that starts off
            them (a half-hour DST shift between) is read from the hour before its start."""
            length = timedelta(hours=math.ceil((hi - lo).total_seconds() / 3600))
            lo = start - timedelta(hours=math.ceil((start - lo).total_seconds() / 3600))
            stop = min(lo + min(hours, length), end)
            return sum(1 for r in self.rows if r["conversation_id"] is not None and r["event_ts"] is not None
                       and lo <= r["event_ts"] < stop)

        # README: the previous 4 periods; when none of them has data but some of the 7 before the period had
        # (a source that stopped), the last (up to 4) of those.
        # A day report with completeness_baseline = "same_weekday": the same weekday of the 4 previous weeks.
        backs = list(range(1, 5))
        if self.baseline == "same_weekday":
            backs = [7, 14, 21, 28]
        elif not any(self.conversations(back, everyone=True) for back in backs):
            backs = [back for back in range(5, 8) if self.conversations(back, everyone=True)][:4] or backs
        baseline = [received(*self.period(back)) for back in backs]
        baseline = [b for b in baseline if b > 0 and b >= 0.1 * max(baseline)]
        expected = float(statistics.median(baseline)) if baseline else None
        if self.expected_per_day is not None:  # README: pro rata by the hours compared
            expected = self.expected_per_day * hours.total_seconds() / 3600 / 24
        latest = [r["event_ts"] for r in placed if r["event_ts"] <= self.now]
        out["latest_event"] = max(latest) if latest else None
        out["received_events"] = received(start, end)
        out["expected_events"] = expected
        out["completeness_pct"] = out["received_events"] / expected * 100.0 if expected else None
        # README: under 95%; or no event and nothing to compare with (an explicit expectation of none aside)
        out["warning"] = ((out["completeness_pct"] is not None and out["completeness_pct"] < 95.0)
                          or (out["received_events"] == 0 and expected is None and hours > timedelta(0)))
        # README: a day report that warns against the previous days says what the same weekday of the 4
        # previous weeks reads, when that one would not warn (95%, the default threshold).
        out["same_weekday_pct"] = None
        if (self.kind == "day" and self.baseline != "same_weekday" and self.expected_per_day is None
                and backs == [1, 2, 3, 4] and out["completeness_pct"] is not None and out["completeness_pct"] < 95):
            weekly = [received(*self.period(back)) for back in (7, 14, 21, 28)]
            weekly = [b for b in weekly if b > 0 and b >= 0.1 * max(weekly)]
            pct = out["received_events"] / statistics.median(weekly) * 100.0 if weekly else None
            out["same_weekday_pct"] = pct if pct is not None and pct >= 95 else None
        return out
