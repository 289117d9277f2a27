"""The report's breakdown rows (report.json's ``breakdowns`` and failure examples), shaped from the rows
the engine returned for the current and previous periods; nothing here queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from . import coverage
from .periods import Period

TREND_PERIODS = 8
CUR, PREV = TREND_PERIODS - 1, TREND_PERIODS - 2


def blank(defs: list) -> dict[str, Any]:
    return {m.name: m.empty for m in defs}


def trend_row(p: Period, row: dict[str, Any] | None, defs: list) -> dict[str, Any]:
    values = {**blank(defs), **(row or {})}
    # A period whose conversations have no cost (or token) value at all has none, not $0: the trend showed
    # "$0.00" for the weeks before a cost column was filled (a new-user audit)
    unknown = {name for col in coverage.unvalued(row) for name in coverage.SUMMED[col][2]}
    return {"key": p.key, "start": p.start.isoformat(), "end": p.end.isoformat(),
            **{m.name: None if m.name in unknown else values.get(m.name) for m in defs}}


def daily_row(day: Any, row: dict[str, Any] | None, defs: list) -> dict[str, Any]:
    values = {**blank(defs), **(row or {})}
    return {"date": day.isoformat(), **{m.name: values.get(m.name) for m in defs}}


def failure_row(r: dict[str, Any], period: Period) -> dict[str, Any]:
    ts = r["event_ts"]
    if isinstance(ts, datetime):
        ts = period.local(ts).isoformat()
    return {
        "conversation_id": r["conversation_id"],
        "agent_id": r.get("event_agent_id"),
        "event_ts": ts,
        "event_type": r["event_type"],
        "error_type": r.get("error_type"),
        "error_message": r.get("error_message"),
    }


def by_agent(rows: list[dict], latency: list[dict], defs: list) -> tuple[dict, ...]:
    lat = {(r["period"], r["agent_id"]): r["p95_latency_ms"] for r in latency}
    prev = {r["agent_id"]: r for r in rows if r["period"] == PREV}
    out = []
    for r in (r for r in rows if r["period"] == CUR):
        agent = r["agent_id"]
        p = prev.get(agent) or {}
        row = {"agent_id": agent, **{m.name: r.get(m.name) for m in defs}}
        if lat:
            row["p95_latency_ms"] = lat.get((CUR, agent))
            row["previous_p95_latency_ms"] = lat.get((PREV, agent))
        row["previous_conversations"] = p.get("conversations", 0)
        row["previous_resolution_rate"] = p.get("resolution_rate")
        row["previous_error_rate"] = p.get("error_rate")
        # the counts behind the rates, so a reader (and the report's badges) can test one agent's move
        row["previous_resolved_conversations"] = p.get("resolved_conversations", 0)
        row["previous_error_conversations"] = p.get("error_conversations", 0)
        out.append(row)
    out.sort(key=lambda r: (-(r["conversations"] or 0), *name_order(r["agent_id"])))
    return tuple(out)


def by_model(rows: list[dict]) -> tuple[dict, ...]:
    prev = {r["model"]: r for r in rows if r["period"] == PREV}
    out = []
    for r in (r for r in rows if r["period"] == CUR):
        row = {k: v for k, v in r.items() if k != "period"}
        before = prev.get(r["model"])
        row["previous_events"] = before["events"] if before else 0
        if "total_tokens" in r:  # a model the previous period did not use had 0 tokens, as it had 0 events
            row["previous_total_tokens"] = before["total_tokens"] if before else 0
        out.append(row)
    out.sort(key=lambda r: (-(r["events"] or 0), *name_order(r["model"])))
    return tuple(out)


def errors_by_type(rows: list[dict]) -> tuple[dict, ...]:
    prev = {r["error_type"]: r["count"] for r in rows if r["period"] == PREV}
    cur = sorted((r for r in rows if r["period"] == CUR), key=lambda r: (-r["count"], *name_order(r["error_type"])))
    # Every type: report.json sums to the period's errors; each format shortens the list with "N more".
    return tuple({"error_type": r["error_type"], "count": r["count"], "previous": prev.get(r["error_type"], 0)}
                 for r in cur)


def name_order(name: str | None) -> tuple[bool, str]:
    """Ties in a breakdown by name, the events without one (a null key, kept as null) last."""
    return name is None, name or ""
