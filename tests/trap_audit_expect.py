"""The report tests/trap_audit_data.py's events should give, computed in plain Python from DESIGN.md.

Loops and sorts over rows on purpose; no agentdigest import. See trap_audit_data's docstring for the
readings where DESIGN.md leaves room.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from datetime import timedelta

from trap_audit_data import (H, HIGHER_IS_BETTER, HUMAN_COST, KNOWN_TYPES, RATES, SCENARIOS, SERIES, UTC, _has_conv,
                             kept_rows, key_of, now_for, period, period_days, valid_cost, valid_latency, valid_tokens)


def quantile(values: list[float], q: float):
    """Continuous, linearly interpolated quantile (numpy's default, R type 7)."""
    if not values:
        return None
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def rate(num: int, den: int):
    return None if den == 0 else num / den * 100


def _sum(values: list, n: int, zero=0):
    """A sum over n conversations: 0 over none, null when none of their events has a value (README)."""
    if n == 0:
        return zero
    return sum(values) if values else None


class Expected:
    def __init__(self, rows: list[dict], scenario: str):
        self.rows, self.scenario = rows, scenario
        self.tz, self.kind, self.key, _ = SCENARIOS[scenario]
        self.now = now_for(scenario)
        events = [r for r in kept_rows(rows) if r["event_ts"] <= self.now]
        search_from = period(scenario, 7)[0] - H
        self.by_conv: dict[str, list[dict]] = defaultdict(list)
        for r in sorted(events, key=lambda r: r["event_ts"]):
            if r["event_ts"] >= search_from:
                self.by_conv[r["conversation_id"]].append(r)

    # conversations of a period, each with its outcome events (start .. period end + H)
    def conversations(self, back: int = 0) -> dict[str, dict]:
        s, e, _ = period(self.scenario, back)
        out = {}
        for cid, evs in self.by_conv.items():
            start = evs[0]["event_ts"]
            if s <= start < e:
                firsts = [x["agent_id"] for x in evs if x["event_ts"] == start]
                named = [a for a in firsts if a is not None]
                out[cid] = {"start": start, "events": [x for x in evs if x["event_ts"] < e + H],
                            "agent": min(named) if named else None}
        return out

    @staticmethod
    def figures(convs: dict[str, dict]) -> dict:
        n = len(convs)
        evs = [x for c in convs.values() for x in c["events"]]
        has = lambda c, t: any(x["event_type"] == t for x in c["events"])  # noqa: E731
        resolved = sum(has(c, "resolution") for c in convs.values())
        escalated = sum(has(c, "escalation") for c in convs.values())
        err_convs = sum(has(c, "error") for c in convs.values())
        tokens = _sum([x["token_count"] for x in evs if valid_tokens(x["token_count"])], n)
        lat = [x["latency_ms"] for x in evs if valid_latency(x["latency_ms"])]
        cost = _sum([x["cost_usd"] for x in evs if valid_cost(x["cost_usd"])], n, 0.0)  # an amount: a float
        return {
            "conversations": n, "resolved_conversations": resolved, "escalated_conversations": escalated,
            "resolution_rate": rate(resolved, n), "containment_rate": rate(n - escalated, n),
            "errors": sum(x["event_type"] == "error" for x in evs), "error_conversations": err_convs,
            "error_rate": rate(err_convs, n), "total_tokens": tokens,
            "tokens_per_conversation": None if not n or tokens is None else tokens / n,
            "avg_latency_ms": statistics.fmean(lat) if lat else None,
            "p50_latency_ms": quantile(lat, 0.5), "p95_latency_ms": quantile(lat, 0.95),
            "p99_latency_ms": quantile(lat, 0.99), "cost_usd": cost,
            "estimated_savings_usd": None if cost is None else (n - escalated) * HUMAN_COST - cost,
        }

    def metrics(self) -> dict[str, dict]:
        cur, prev = self.figures(self.conversations(0)), self.figures(self.conversations(1))
        return {name: change(name, cur[name], prev[name]) for name in HIGHER_IS_BETTER}

    def series_row(self, convs: dict) -> dict:
        f = self.figures(convs)
        return {k: f[k] for k in SERIES}

    def trend(self) -> list[dict]:
        rows = []
        for back in range(7, -1, -1):
            first = period(self.scenario, back)[2]
            rows.append({"key": key_of(self.kind, first), **self.series_row(self.conversations(back))})
        return rows

    def daily(self) -> dict[str, dict]:
        _, _, first = period(self.scenario)
        days = period_days(self.kind, self.key)[1]
        from zoneinfo import ZoneInfo

        convs = self.conversations(0)
        out = {}
        for i in range(days):
            d = first + timedelta(days=i)
            mine = {k: c for k, c in convs.items() if c["start"].astimezone(ZoneInfo(self.tz)).date() == d}
            out[d.isoformat()] = self.series_row(mine)
        return out

    def by_agent(self) -> dict:
        cur, prev = self.conversations(0), self.conversations(1)
        out = {}
        for agent in {c["agent"] for c in cur.values()}:
            mine = {k: c for k, c in cur.items() if c["agent"] == agent}
            theirs = {k: c for k, c in prev.items() if c["agent"] == agent}
            f, p = self.figures(mine), self.figures(theirs)
            row = {k: f[k] for k in SERIES} | {"p95_latency_ms": f["p95_latency_ms"]}
            for k in ("conversations", "resolution_rate", "error_rate", "resolved_conversations",
                      "error_conversations", "p95_latency_ms"):
                row[f"previous_{k}"] = p[k]
            out[agent] = row
        return out

    def by_model(self) -> dict:
        def group(convs):
            g = defaultdict(list)
            for cid, c in convs.items():
                for x in c["events"]:
                    g[x["model"]].append((cid, x))
            return g

        cur, prev = group(self.conversations(0)), group(self.conversations(1))
        out = {}
        for model, items in cur.items():
            evs = [x for _, x in items]
            lat = [x["latency_ms"] for x in evs if valid_latency(x["latency_ms"])]
            tok = [x["token_count"] for x in evs if valid_tokens(x["token_count"])]
            cost = [x["cost_usd"] for x in evs if valid_cost(x["cost_usd"])]
            ptok = [x["token_count"] for _, x in prev.get(model, []) if valid_tokens(x["token_count"])]
            out[model] = {
                "events": len(evs), "errors": sum(x["event_type"] == "error" for x in evs),
                "conversations": len({cid for cid, _ in items}),
                "total_tokens": sum(tok) if tok else None, "cost_usd": sum(cost) if cost else None,
                "avg_latency_ms": statistics.fmean(lat) if lat else None, "p95_latency_ms": quantile(lat, 0.95),
                "previous_events": len(prev.get(model, [])), "previous_total_tokens": _sum(ptok, len(prev.get(model, []))),
            }
        return out

    def errors_by_type(self) -> dict:
        def count(convs):
            c = defaultdict(int)
            for conv in convs.values():
                for x in conv["events"]:
                    if x["event_type"] == "error":
                        c[x["error_type"]] += 1
            return c

        cur, prev = count(self.conversations(0)), count(self.conversations(1))
        return {t: (n, prev.get(t, 0)) for t, n in cur.items()}

    def quality(self) -> dict:
        s, e, _ = period(self.scenario)
        kept = {id(r) for r in kept_rows(self.rows)}
        in_p = [r for r in self.rows if r["event_ts"] is not None and s <= r["event_ts"] < e]
        judged = [r for r in in_p if _has_conv(r)]
        latest = max(r["event_ts"] for r in judged if r["event_ts"] <= self.now)
        received, expected = len(judged), self.expected_events()
        return {
            "missing_required": sum(not _has_conv(r) for r in in_p) + sum(r["event_ts"] is None for r in self.rows),
            "duplicate_events": sum(id(r) not in kept for r in judged),
            "invalid_latency": sum(r["latency_ms"] is not None and not valid_latency(r["latency_ms"]) for r in judged),
            "invalid_tokens": sum(r["token_count"] is not None and not valid_tokens(r["token_count"]) for r in judged),
            "invalid_cost": sum(r["cost_usd"] is not None and not valid_cost(r["cost_usd"]) for r in judged),
            "unknown_event_types": sum(r["event_type"] not in KNOWN_TYPES for r in judged),
            "future_events": sum(_has_conv(r) and r["event_ts"] is not None and r["event_ts"] > self.now
                                 for r in self.rows),
            "received_events": received, "expected_events": expected, "completeness_pct": received / expected * 100,
            "warning": received / expected * 100 < 95,
            "latest_event": latest, "gaps": self.gaps(),
        }

    def _hourly(self, back: int) -> list[int]:
        """Rows with a conversation_id per hour from the start of the period ``back`` periods before P."""
        s, e, _ = period(self.scenario, back)
        hours = [0] * math.ceil((e - s).total_seconds() / 3600)
        for r in self.rows:
            if _has_conv(r) and r["event_ts"] is not None and s <= r["event_ts"] < e:
                hours[int((r["event_ts"] - s).total_seconds() // 3600)] += 1
        return hours

    def gaps(self) -> list[dict]:
        """Runs of empty hours of P over which the baseline's same hours (median) held 8 conversations' worth
        of events, a conversation's worth being the rows per conversation over the baseline and P; the run's ends
        trimmed to hours that expected events (README, Data quality)."""
        s, _, _ = period(self.scenario)
        current, history = self._hourly(0), [self._hourly(b) for b in range(1, 5)]
        top = max(sum(h) for h in history)
        history = [h for h in history if sum(h) and sum(h) * 10 >= top]
        expected = [statistics.median(col) if (col := [h[i] for h in history if i < len(h)]) else 0
                    for i in range(len(current))]
        convs = sum(len(self.conversations(b)) for b in range(5))
        worth = 8 * max(1.0, (sum(current) + sum(sum(self._hourly(b)) for b in range(1, 5))) / convs)
        out, run, total = [], [], 0.0
        for h in range(len(current) + 1):
            if h < len(current) and current[h] == 0:
                if expected[h] > 0:
                    run.append(h)
                    total += expected[h]
                continue
            if run and total >= worth:
                start, end = s + timedelta(hours=run[0]), s + timedelta(hours=run[-1] + 1)
                out.append({"start": start, "end": end, "hours": (end - start).total_seconds() / 3600})
            run, total = [], 0.0
        return out

    def expected_events(self) -> float:
        """Median over the previous 4 periods of each one's rows with a conversation_id and event_ts, over the
        same hours from its start as the report's period has (no more than its own)."""
        s, e, _ = period(self.scenario)
        totals = []
        for back in range(1, 5):
            bs, be, _ = period(self.scenario, back)
            hi = min(be, bs + (e - s))
            totals.append(sum(1 for r in self.rows if _has_conv(r) and r["event_ts"] is not None
                              and bs <= r["event_ts"] < hi))
        top = max(totals)
        return statistics.median([t for t in totals if t * 10 >= top])


def change(name: str, cur, prev) -> dict:
    hib = HIGHER_IS_BETTER[name]
    pct = pp = None
    if name in RATES:
        pp = None if cur is None or prev is None else cur - prev
        delta = pp
    else:
        pct = None if cur is None or not prev else (cur - prev) / abs(prev) * 100
        delta = None if cur is None or prev is None else cur - prev
    if cur is None or (cur == 0 and prev is None):
        direction = None
    elif prev is None or (prev == 0 and name not in RATES):
        direction = "new"
    else:
        direction = "flat" if delta == 0 else ("up" if delta > 0 else "down")
    # "new" from a previous 0 is still a known move (DESIGN: good is null for flat; README: and an unknown previous)
    good = None if hib is None or prev is None or direction in (None, "flat") else (cur > prev) == hib
    return {"value": cur, "previous": prev, "change_pct": pct, "change_pp": pp, "direction": direction, "good": good}


__all__ = ["Expected", "UTC", "change", "quantile"]
