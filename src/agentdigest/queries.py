"""The report's queries: what runs in the engine for one report, and the plain rows it returns.

The event_ids repeated in the look-around window and the conversation cohort are materialized once
(temporary tables, released when the queries are done; where the engine may not create them, copies in an
in-process DuckDB: client_tables); every later query reads them. Every query goes through :func:`rows` (fetch),
:func:`cache` or :class:`ClientTables` (materialize), so the count stays the fixed one compute's docstring names.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from . import cohort as cohort_mod
from . import coverage
from . import quality as quality_mod
from .breakdowns import CUR, PREV
from .client_tables import ClientTables
from .cohort import count_if, float_sum
from .config import ReportConfig
from .errors import InputError
from .metrics import METRICS, QUANTILES, aggregations, available, unpack
from .periods import Period
from .sources import Source, query_error

#: Engines with approximate quantiles (Spark) compute them exactly below this many latency values per group.
APPROX_QUANTILE_MIN_VALUES = 100_000
LATENCY_VALUES = "_latency_values"
#: With approximate quantiles, each reported quantile q is bracketed by approximate ones at q -/+ BRACKET, twice
#: Spark's rank error at its default accuracy (1/10,000): the exact interpolated quantile and the approximate one lie
#: between them, so when they are within 1% of the lower (latencies are not negative), so is the approximation.
BRACKET = 2e-4
#: One approximate percentile per group holding every reported quantile between its brackets (see :func:`_values`)
LATENCY_SKETCH = "_latency_sketch"
#: A period row's earliest conversation start: where in its period the data begin (compute._trend)
FIRST_START = "_first_start"


def rows(expr: ir.Table) -> list[dict[str, Any]]:
    try:
        return expr.to_pyarrow().to_pylist()
    except Exception as exc:
        raise query_error(exc) from exc


def cache(stack: ExitStack, table: ir.Table) -> ir.Table:
    """``table`` materialized (a temporary table) for the report's later queries, released when ``stack`` closes.
    Where the engine may not create temporary tables, :class:`ClientTables` keeps the steps instead."""
    try:
        cached = table.cache()
        stack.callback(_release, cached)
        _analyze(cached)
    except Exception as exc:
        raise query_error(exc) from exc
    return cached


def _analyze(table: ir.Table) -> None:
    """Give Postgres statistics on a cached (temp) table. Without them it planned the events-to-
    conversations join for 4 billion rows and chose a merge join that spilled 220 MB (10M events)."""
    op = table.op()
    backend = getattr(op, "source", None)
    if getattr(backend, "name", "") == "postgres":
        with backend.con.cursor() as cur:
            cur.execute(f'ANALYZE "{op.name}"')


def _release(table: ir.Table) -> None:
    try:
        table.release()
    except Exception:
        pass


@dataclass(frozen=True)
class Found:
    """What the engine returned for one report: plain rows, keyed by period index (CUR, PREV, ...)."""

    period_rows: dict[int, dict[str, Any]]
    daily_rows: dict[int, dict[str, Any]]
    event_rows: dict[int, dict[str, Any]]
    agent_rows: list[dict[str, Any]]
    agent_latency: list[dict[str, Any]]
    model_rows: list[dict[str, Any]]
    error_rows: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    quality_counts: dict[str, Any]
    # A report of some agents: the conversations of every agent per period (the data quality is judged by them)
    everyone: dict[int, int] | None
    approximate: bool  # whether approximate quantiles reached the report

    def volumes(self) -> dict[int, int]:
        """Conversations per period, of every agent: what the data quality is judged by."""
        if self.everyone is not None:
            return self.everyone
        return {k: r.get("conversations") or 0 for k, r in self.period_rows.items()}


def run_queries(source: Source, report: ReportConfig, period: Period, periods: list[Period], around: timedelta,
                now: datetime) -> Found:
    """Every query that reads the cohort: the repeated ids and the conversations are materialized once
    (temporary tables, or :class:`ClientTables`; released on return), then the period totals, the breakdowns and the quality counts."""
    present = source.present
    approx = source.approximate_quantiles
    bounds = [p.start_utc for p in periods] + [period.end_utc]
    conv_defs = available(present, "conversation")
    event_defs = available(present, "event")
    has_agent = "agent_id" in present

    with ExitStack() as stack:
        client = None if source.temp_tables else ClientTables(stack, source.backend, source.client_memory_limit)

        def keep(table: ir.Table) -> ir.Table:
            return client.keep(table) if client else cache(stack, table)

        dups = cohort_mod.duplicate_ids(source.events, present, bounds[0] - around, bounds[-1] + around,
                                        unique=source.unique_ids)
        if dups is not None and not source.unique_ids:
            with source.many_groups():
                dups = client.on_engine(keep(dups), dups) if client else keep(dups)
        c = cohort_mod.build(source.events, present, bounds, period.day_starts_utc, around, duplicates=dups)
        conv = keep(c.conversations)
        long = cohort_mod.overlong(c, conv)
        if rows(long.agg(n=long.count()))[0]["n"]:
            fixed = None
            if client:  # recomputed in the engine, which joins their keys
                keys = long.select("conversation_id", "period", "day")
                again = cohort_mod.overlong(c, c.conversations).select(*keys.columns)
                fixed = keep(cohort_mod.recomputed(c, client.on_engine(keys, again)))
            conv = keep(cohort_mod.trimmed(c, conv, long, fixed))
        # A report of some agents: their conversations only; the data quality (completeness, gaps,
        # invalid rows) stays the whole source's, judged by all its conversations.
        everyone: dict[int, int] | None = None
        if report.agents:
            if not has_agent:
                raise InputError(f"report {report.id!r} sets agents, but the events have no agent_id column "
                                 "(map yours in [source.columns])")
            everyone = {r["period"]: r["n"] for r in rows(conv.group_by("period").agg(n=conv.count()))}
            # The agent is the first event's: the conversations as the engine computes them suffice.
            of_all = c.conversations if client else conv
            agents = cohort_mod.conversation_agents(cohort_mod.conversation_events(c, of_all))
            conv = keep(cohort_mod.of_agents(conv, keep(agents) if client else agents, report.agents))
        counts = {"latency_values": conv.latency_n.sum()} if "latency_n" in conv.columns else {}
        counts[FIRST_START] = conv.start.min()
        counts |= {f"{col}_values": conv[c].count() for col, (c, _, _) in coverage.SUMMED.items() if c in conv.columns}
        period_rows = {r["period"]: r for r in rows(conv.group_by("period").agg(**aggregations(conv, conv_defs), **counts))}
        if approx:
            # Approximate only where some group can have enough values (see _quantile_rows): the largest
            # group of a query is at most its period.
            approx = max((r.get("latency_values") or 0 for k, r in period_rows.items() if k in (CUR, PREV)),
                         default=0) >= APPROX_QUANTILE_MIN_VALUES
        cur = conv.filter(conv.period == CUR)
        daily_rows = {r["day"]: r for r in rows(cur.group_by("day").agg(**aggregations(cur, conv_defs, rows=True)))}

        last_two = conv.filter(conv.period >= PREV)
        if client:  # the last two periods' events copied, then joined to their conversations here
            ev = client.keep_joined(cohort_mod.recent_events(c, bounds[PREV]), lambda arriving: (
                cohort_mod.conversation_events(replace(c, events=arriving, source=None), last_two)))
        else:
            ev = keep(cohort_mod.conversation_events(c, last_two, since=bounds[PREV]))
        agent_rows: list[dict[str, Any]] = []
        if has_agent:
            agents = keep(cohort_mod.conversation_agents(ev))
            recent = conv.filter(conv.period >= PREV).inner_join(agents, "conversation_id")
            agent_rows = rows(recent.group_by(["period", "agent_id"]).agg(**aggregations(recent, conv_defs, rows=True)))
        used_approx: list[bool] = []
        has_latency = "latency" in ev.columns
        # Approximate quantiles come from the sketch that also brackets them: the query leaves out its own.
        exact_defs = [m for m in event_defs if m.quantile is None]
        event_qs = tuple(m.quantile for m in event_defs if m.quantile is not None)
        event_rows = {r["period"]: unpack(r, event_defs) for r in _quantile_rows(
            lambda a: ev.group_by("period").agg(**aggregations(ev, exact_defs if a else event_defs, a),
                                                **_values(ev, a, event_qs)),
            approx and has_latency, used_approx, QUANTILES)} if event_defs else {}
        agent_latency: list[dict[str, Any]] = []
        if has_agent and has_latency:
            by_agent = ev.inner_join(agents, "conversation_id")
            agent_latency = _quantile_rows(lambda a: by_agent.group_by(["period", "agent_id"]).agg(
                **_values(by_agent, a, (0.95,)) or {"p95_latency_ms": METRICS["p95_latency_ms"].expr(by_agent, a)}),
                approx, used_approx, "p95_latency_ms")
        model_rows: list[dict[str, Any]] = []
        if "model" in present:
            model_rows = _quantile_rows(lambda a: _model_query(ev, a), approx and has_latency, used_approx,
                                        "p95_latency_ms")
        error_rows: list[dict[str, Any]] = []
        if "error_type" in present:
            errs = ev.filter(ev.event_type == "error")
            error_rows = rows(errs.group_by(["period", "error_type"]).agg(count=errs.count()))
        failures = rows(_failures(ev, report.failure_examples)) if report.failure_examples else []
        quality_counts = rows(quality_mod.invalid_counts(source.events, present, period, now, dups))[0]

    return Found(period_rows, daily_rows, event_rows, agent_rows, agent_latency, model_rows, error_rows, failures,
                 quality_counts, everyone, any(used_approx))


def unknown_types(source: Source, period: Period, limit: int = 3) -> list[str | None]:
    """The period's most frequent event types that are none of the known ones (None for a null type), most
    frequent first, then in byte order."""
    t = cohort_mod.valid_in(source.events, period.start_utc, period.end_utc)
    u = t.filter(cohort_mod.unknown_type(t.event_type))
    g = u.group_by("event_type").agg(n=u.count())
    in_bytes = cohort_mod.byte_order(g.event_type, cohort_mod.engine_name(source.events))
    order = [g.n.desc(), in_bytes.asc(nulls_first=False)]
    return [r["event_type"] for r in rows(g.order_by(order).limit(limit))]


def hourly(source: Source, origin: datetime, period: Period) -> dict[int, int]:
    return {r["hour"]: r["n"] for r in rows(quality_mod.hourly_counts(source.events, origin, period.end_utc, source.kind))}


def _values(t: ir.Table, approx: bool, quantiles: tuple[float, ...]) -> dict[str, ir.Value]:
    """With approximate quantiles, the count of latency values of each group and one sketch of each of its
    ``quantiles`` between its brackets (q - BRACKET, q, q + BRACKET), for :func:`_quantile_rows`. One
    approximate percentile, so Spark builds one sketch per group, not one for the quantiles and one for their
    brackets (at 10M events the difference was within the benchmark's noise: 97-102 s against 99-107 s)."""
    if not approx or "latency" not in t.columns or not quantiles:
        return {}
    qs = [x for q in quantiles for x in (max(q - BRACKET, 0.0), q, min(q + BRACKET, 1.0))]
    return {LATENCY_VALUES: t.latency.count(), LATENCY_SKETCH: t.latency.approx_quantile(qs)}


def _too_wide(sketch: Any) -> bool:
    """Whether some quantile's bracket is wider than 1% of its lower end: the values around that quantile step (a
    few very slow events), and a data point can be far from the interpolation between them."""
    ends = list(sketch or [])
    return any(lo is not None and hi is not None and hi - lo > 0.01 * lo for lo, hi in zip(ends[::3], ends[2::3]))


def _quantile_rows(query: Callable[[bool], ir.Table], approx: bool, used: list[bool],
                   into: str) -> list[dict[str, Any]]:
    """The rows of a per-group query with latency quantiles: approximate only when every group with
    latency values has at least APPROX_QUANTILE_MIN_VALUES of them. An approximate percentile is a data
    point, not an interpolation, so it is within 1% only on many values; when a group is smaller (an
    agent with a few conversations in a busy week), the query runs again exactly. So it does when the values
    around a quantile step, however many there are (a p99 between 99,000 values of 1 s and 1,000 of 1000 s
    read 1 s for the exact 11 s, found in the trap audit). ``used`` records whether approximate quantiles
    reached the report. Approximate ones go from the sketch into ``into``: the quantile list
    (:data:`~agentdigest.metrics.QUANTILES`) or the one quantile's metric."""
    found = rows(query(approx))
    if approx and any(0 < (r.get(LATENCY_VALUES) or 0) < APPROX_QUANTILE_MIN_VALUES or _too_wide(r.get(LATENCY_SKETCH))
                      for r in found):
        found, approx = rows(query(False)), False
    used.append(approx)
    for r in found:
        r.pop(LATENCY_VALUES, None)
        sketch = r.pop(LATENCY_SKETCH, None)
        if approx:
            qs = list(sketch or [])[1::3]
            r[into] = qs if into == QUANTILES else (qs[0] if qs else None)
    return found


def _model_query(ev: ir.Table, approx: bool) -> ir.Table:
    """Per (period, model): events, conversations, errors, tokens, cost, mean and p95 latency.

    Distinct conversations come from their own distinct-then-count, joined on the (few) model rows:
    Spark plans a count(DISTINCT) next to a percentile by expanding every row, which made this one
    query 40x slower than all the others together.
    """
    keys = ["period", "model"]
    aggs: dict[str, ir.Value] = {"events": ev.count(), "errors": count_if(ev.event_type == "error")}
    # A model none of whose events has a token (or cost) value has none: null, not 0 (the "(none)" row of the
    # resolution and escalation events, which carry neither, read "0" tokens and "$0.00"), as the trend's periods
    if "tokens" in ev.columns:
        aggs["total_tokens"] = ev.tokens.sum()
    if "cost" in ev.columns:
        aggs["cost_usd"] = float_sum(ev, ev.cost)
    if "latency" in ev.columns:
        # A sum over a count, not mean(): PostgreSQL's avg() of doubles also sums their squares, and a single valid
        # latency from about 1.3e154 ms overflowed that and failed the run (exit 3)
        aggs["avg_latency_ms"] = float_sum(ev, ev.latency) / ev.latency.count().cast("float64").nullif(0.0)
        aggs.update(_values(ev, approx, (0.95,)) or {"p95_latency_ms": METRICS["p95_latency_ms"].expr(ev, approx)})
    out = ev.group_by(keys).agg(**aggs)
    convs = ev.select(*keys, "conversation_id").distinct()
    convs = convs.group_by(keys).agg(conversations=convs.count()).rename(c_period="period", c_model="model")
    # Null-safe on model: events without a model are a row of their own (model null).
    joined = out.inner_join(convs, [out.period == convs.c_period, out.model.identical_to(convs.c_model)])
    return joined.drop("c_period", "c_model")


def _failures(ev: ir.Table, limit: int) -> ir.Table:
    """The period's failure examples: the latest of each kind first (each error type, then escalations),
    then the next latest of each, and so on. Found in a reader review: the 5 most recent were 4 escalations
    ("Customer asked for a human") from one Sunday evening, and no error an engineer could act on."""
    f = ev.filter(ev.period == CUR, ev.event_type.isin(["error", "escalation"]))
    cols = ["conversation_id", "event_ts", "event_type"] + [
        c for c in ("event_agent_id", "error_type", "error_message") if c in f.columns]
    f = f.select(*cols)
    kind = [f.event_type] + ([f.error_type] if "error_type" in f.columns else [])
    f = f.mutate(_nth=ibis.row_number().over(group_by=kind, order_by=[f.event_ts.desc(), f.conversation_id]),
                 _escalation=ibis.ifelse(f.event_type == "error", 0, 1))
    return f.order_by([f._nth, f._escalation, f.event_ts.desc(), f.conversation_id]).limit(limit).drop("_nth", "_escalation")
