"""The conversation cohort of a report, as Ibis expressions (nothing runs here).

From the canonical events table this builds, for a span of consecutive periods:

* ``events``: valid events (conversation_id and event_ts set) in the look-back/ahead window,
  deduplicated by event_id, with latency and tokens nulled where invalid;
* ``conversations``: one row per conversation that *starts* in the span, with its start, its
  agent (the agent_id of its first event), outcome flags, error count and sums, and the index
  of the period (and local day) its start falls in;
* ``conversation_events``: the events of those conversations, carrying the conversation's agent
  and period index, for event-level metrics (quantiles, by model, errors by type).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

UTC_TS = dt.Timestamp(timezone="UTC")
KNOWN_EVENT_TYPES = ("message", "tool_call", "resolution", "escalation", "error", "abandon")


def ts_literal(value: datetime) -> ir.Value:
    """A timestamp literal typed ``timestamp('UTC')``, so it compares correctly with timestamptz."""
    return ibis.literal(value.astimezone(timezone.utc), type=UTC_TS)


def bucket(column: ir.Value, bounds: list[datetime]) -> ir.Value:
    """Index i of the half-open interval [bounds[i], bounds[i+1]) holding ``column``, else null."""
    cases = [(column < ts_literal(b), i - 1) for i, b in enumerate(bounds[1:], start=1)]
    return ibis.cases(*cases, else_=ibis.null("int64")).cast("int64")


@dataclass
class Cohort:
    events: ir.Table
    conversations: ir.Table
    present: frozenset[str]


def valid_events(events: ir.Table, present: frozenset[str], lo: datetime, hi: datetime) -> ir.Table:
    """Valid events with event_ts in [lo, hi), deduplicated by event_id, invalid values nulled."""
    t = events.filter(
        events.conversation_id.notnull(),
        events.event_ts.notnull(),
        events.event_ts >= ts_literal(lo),
        events.event_ts < ts_literal(hi),
    )
    cols: dict[str, ir.Value] = {
        "conversation_id": t.conversation_id,
        "event_ts": t.event_ts,
        "event_type": t.event_type,
    }
    if "event_id" in present:
        cols["event_id"] = t.event_id
    if "agent_id" in present:
        cols["agent_id"] = t.agent_id
    if "model" in present:
        cols["model"] = t.model
    if "error_type" in present:
        cols["error_type"] = t.error_type
    if "error_message" in present:
        cols["error_message"] = t.error_message
    if "cost_usd" in present:
        cols["cost"] = t.cost_usd
    if "token_count" in present:
        cols["tokens"] = ibis.ifelse(t.token_count >= 0, t.token_count, ibis.null("int64"))
    if "latency_ms" in present:
        lat = t.latency_ms
        ok = lat.notnull() & (lat >= 0) & ~lat.isnan() & ~lat.isinf()
        cols["latency"] = ibis.ifelse(ok, lat, ibis.null("float64"))
    t = t.select(**cols)
    if "event_id" not in present:
        return t
    # At-least-once ingestion repeats rows: one row per event_id; rows without an id are kept as they are.
    keyed = t.filter(t.event_id.notnull())
    others = [c for c in t.columns if c != "event_id"]
    once = keyed.group_by("event_id").agg(**{c: keyed[c].arbitrary() for c in others})
    return once.select(*t.columns).union(t.filter(t.event_id.isnull()), distinct=False)


def build(events: ir.Table, present: frozenset[str], period_bounds: list[datetime],
          day_bounds: list[datetime], lookaround: timedelta) -> Cohort:
    """The cohort of conversations starting in [period_bounds[0], period_bounds[-1]).

    ``period_bounds`` are the UTC starts of consecutive periods plus the last end; the
    conversation's ``period`` is its index. ``day_bounds`` split the *last* period into local
    days (``day`` is the index, null for other periods).
    """
    lo, hi = period_bounds[0], period_bounds[-1]
    ev = valid_events(events, present, lo - lookaround, hi + lookaround)
    is_type = lambda name: (ev.event_type == name).fill_null(False).cast("int64")  # noqa: E731
    aggs: dict[str, ir.Value] = {
        "start": ev.event_ts.min(),
        "resolved": is_type("resolution").max(),
        "escalated": is_type("escalation").max(),
        "errors": is_type("error").sum(),
        "n_events": ev.count(),
    }
    if "agent_id" in present:
        aggs["agent_id"] = ev.agent_id.argmin(ev.event_ts)
    if "tokens" in ev.columns:
        aggs["tokens"] = ev.tokens.sum().fill_null(0)
    if "cost" in ev.columns:
        aggs["cost"] = ev.cost.sum().fill_null(0.0)
    if "latency" in ev.columns:
        aggs["latency_sum"] = ev.latency.sum().fill_null(0.0)
        aggs["latency_n"] = ev.latency.count()
    conv = ev.group_by("conversation_id").agg(**aggs)
    conv = conv.filter(conv.start >= ts_literal(lo), conv.start < ts_literal(hi))
    conv = conv.mutate(period=bucket(conv.start, period_bounds), day=bucket(conv.start, day_bounds))
    return Cohort(events=ev, conversations=conv, present=present)


def conversation_events(cohort: Cohort, conversations: ir.Table) -> ir.Table:
    """Events of the given conversations, with the conversation's agent, period and day."""
    keep = ["conversation_id", "period", "day"] + (["agent_id"] if "agent_id" in conversations.columns else [])
    conv = conversations.select(*keep)
    ev = cohort.events
    if "agent_id" in ev.columns:
        ev = ev.rename(event_agent_id="agent_id")
    return ev.inner_join(conv, "conversation_id")
