"""Compute one report: run the cohort's queries in the engine and assemble the frozen ReportData.

Queries per report (any engine): the event_ids repeated in the look-around window (1) and the
conversation cohort (2) are materialized once; a count of the conversations that outlast their own
window (3; if there are any, one more query recomputes them); then period totals and trend (4), daily
series (5); the events of the current and previous periods' conversations (6) and each conversation's
agent (7) are materialized once, then per-agent outcomes (8), latency quantiles (9), per-agent
latency (10), per-model (11), errors by type (12), failure examples (13); quality counts (14), the
latest event older than the trend (15) and hourly volumes (16). A fixed 16 (17 with an overlong
conversation; 2 more for a report of some agents: the cohort's size, then its conversations of those
agents are materialized; 1 more for a day report that warns, its same weekday's hourly volumes; on an
engine with approximate quantiles,
one more per quantile query that has a small group), whatever the number of metrics or events.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from . import breakdowns
from . import cohort as cohort_mod
from . import coverage
from . import quality as quality_mod
from .breakdowns import CUR, PREV, TREND_PERIODS
from .changes import compute_change
from .config import ReportConfig
from .errors import InputError
from .metrics import ESTIMATED_SAVINGS, METRICS, aggregations, available, unpack
from .periods import Period
from .report import MetricValue, PeriodInfo, Quality, ReportData
from .cohort import count_if
from .significance import begins_within, first_with_data
from .sources import ConversionError, QueryFailed, Source, query_error

#: Engines with approximate quantiles (Spark) compute them exactly below this many latency values per group.
APPROX_QUANTILE_MIN_VALUES = 100_000
LATENCY_VALUES = "_latency_values"


def _rows(expr: ir.Table) -> list[dict[str, Any]]:
    try:
        return expr.to_pyarrow().to_pylist()
    except Exception as exc:
        raise query_error(exc) from exc


def _cache(stack: ExitStack, table: ir.Table, temp_tables: bool) -> ir.Table:
    """``table`` materialized for the report's later queries, or as it is where the engine may not
    create temporary tables (a read-only PostgreSQL role or a replica): each query then computes it."""
    if not temp_tables:
        return table
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


def _info(p: Period) -> PeriodInfo:
    return PeriodInfo(p.key, p.start, p.end)


Notable = Callable[[dict[str, MetricValue], tuple[dict, ...]], dict[str, bool | None]]


def compute_report(source: Source, report: ReportConfig, period: Period, *, now: datetime,
                   max_conversation_hours: float = 24.0, notable: Notable | None = None) -> ReportData:
    """Compute ``report`` for ``period`` from ``source``; all aggregation runs in the engine.

    Event text (agent ids, error messages, ...) is carried as found: rendering redacts it
    (``render.prepare``) before any artifact, report.json included, is written. A value that does not
    convert to its column's type is an InputError naming the ``[source.columns]`` key.
    """
    try:
        return _compute_report(source, report, period, now=now, max_conversation_hours=max_conversation_hours,
                               notable=notable)
    except ConversionError as exc:
        raise source.conversion_error(exc) from None
    except QueryFailed as exc:
        raise source.query_failed(exc) from exc


def _compute_report(source: Source, report: ReportConfig, period: Period, *, now: datetime,
                    max_conversation_hours: float, notable: Notable | None) -> ReportData:
    present = source.present
    approx = source.approximate_quantiles
    periods = [period.previous(k) for k in range(TREND_PERIODS - 1, 0, -1)] + [period]
    bounds = [p.start_utc for p in periods] + [period.end_utc]
    day_bounds = period.day_starts_utc
    conv_defs = available(present, "conversation")
    event_defs = available(present, "event")
    has_agent, has_model = "agent_id" in present, "model" in present
    has_error_type = "error_type" in present

    with ExitStack() as stack:
        def keep(table: ir.Table) -> ir.Table:
            return _cache(stack, table, source.temp_tables)

        around = timedelta(hours=max_conversation_hours)
        dups = cohort_mod.duplicate_ids(source.events, present, bounds[0] - around, bounds[-1] + around)
        if dups is not None:
            with source.many_groups():
                dups = keep(dups)
        c = cohort_mod.build(source.events, present, bounds, day_bounds, around, duplicates=dups)
        conv = keep(c.conversations)
        long = cohort_mod.overlong(c, conv)
        if _rows(long.agg(n=long.count()))[0]["n"]:
            conv = keep(cohort_mod.trimmed(c, conv, long))
        # A report of some agents: their conversations only; the data quality (completeness, gaps,
        # invalid rows) stays the whole source's, judged by all its conversations.
        everyone: dict[int, int] | None = None
        if report.agents:
            if not has_agent:
                raise InputError(f"report {report.id!r} sets agents, but the events have no agent_id column "
                                 "(map yours in [source.columns])")
            everyone = {r["period"]: r["n"] for r in _rows(conv.group_by("period").agg(n=conv.count()))}
            conv = keep(cohort_mod.of_agents(c, conv, report.agents))
        counts = {"latency_values": conv.latency_n.sum()} if "latency_n" in conv.columns else {}
        counts |= {f"{col}_values": conv[c].count() for col, (c, _, _) in coverage.SUMMED.items() if c in conv.columns}
        period_rows = {r["period"]: r for r in _rows(conv.group_by("period").agg(**aggregations(conv, conv_defs), **counts))}
        if approx:
            # Approximate only where some group can have enough values (see _quantile_rows): the largest
            # group of a query is at most its period.
            approx = max((r.get("latency_values") or 0 for k, r in period_rows.items() if k in (CUR, PREV)),
                         default=0) >= APPROX_QUANTILE_MIN_VALUES
        cur = conv.filter(conv.period == CUR)
        daily_rows = {r["day"]: r for r in _rows(cur.group_by("day").agg(**aggregations(cur, conv_defs)))}

        ev = keep(cohort_mod.conversation_events(c, conv.filter(conv.period >= PREV), since=bounds[PREV]))
        agent_rows: list[dict[str, Any]] = []
        if has_agent:
            agents = keep(cohort_mod.conversation_agents(ev))
            recent = conv.filter(conv.period >= PREV).inner_join(agents, "conversation_id")
            agent_rows = _rows(recent.group_by(["period", "agent_id"]).agg(**aggregations(recent, conv_defs)))
        used_approx: list[bool] = []
        has_latency = "latency" in ev.columns
        event_rows = {r["period"]: unpack(r, event_defs) for r in _quantile_rows(
            lambda a: ev.group_by("period").agg(**aggregations(ev, event_defs, a), **_values(ev, a)),
            approx and has_latency, used_approx)} if event_defs else {}
        agent_latency: list[dict[str, Any]] = []
        if has_agent and has_latency:
            by_agent = ev.inner_join(agents, "conversation_id")
            agent_latency = _quantile_rows(lambda a: by_agent.group_by(["period", "agent_id"]).agg(
                p95_latency_ms=METRICS["p95_latency_ms"].expr(by_agent, a), **_values(by_agent, a)), approx, used_approx)
        model_rows: list[dict[str, Any]] = []
        if has_model:
            model_rows = _quantile_rows(lambda a: _model_query(ev, a), approx and has_latency, used_approx)
        error_rows: list[dict[str, Any]] = []
        if has_error_type:
            errs = ev.filter(ev.event_type == "error")
            error_rows = _rows(errs.group_by(["period", "error_type"]).agg(count=errs.count()))
        failures = _rows(_failures(ev, report.failure_examples)) if report.failure_examples else []

        q_counts = _rows(quality_mod.invalid_counts(source.events, present, period, now, dups))[0]
        # Whether any event is older than the trend: if none, its first period is the one the data begin
        # in, and may be partial. A max below a bound reads one index entry on PostgreSQL.
        # Only whether: the time itself may not be one Python can hold (-infinity, a year before 1), and fetching
        # it failed the run with exit 3 (found in a dirty-data audit).
        before = source.events.filter(source.events.event_ts < bounds[0])
        older = _rows(before.agg(any=before.event_ts.max().notnull()))[0]["any"]
        volumes = everyone if everyone is not None else {
            k: r.get("conversations") or 0 for k, r in period_rows.items()}
        back = [] if report.expected_events_per_day is not None else quality_mod.baseline_periods(
            report.completeness_baseline, lambda k: bool(volumes.get(CUR - k)), TREND_PERIODS - 1)
        origin = quality_mod.baseline_origin(period, max(back, default=quality_mod.BASELINE_PERIODS))
        hourly = {r["hour"]: r["n"] for r in _rows(quality_mod.hourly_counts(source.events, origin, period.end_utc, source.kind))}

    trend = tuple(breakdowns.trend_row(p, period_rows.get(i), conv_defs) for i, p in enumerate(periods))
    if not older and trend[0].get("conversations"):  # the data begin in the trend's first period
        trend = ({**trend[0], "begins": True}, *trend[1:])
    rows = [{**breakdowns.blank(conv_defs), **(period_rows.get(p) or {}), **(event_rows.get(p) or {})} for p in (CUR, PREV)]
    # A sum that overflowed (invalid values are left out before any sum) is unknown, said in a note below.
    overflowed = [m.label for m in conv_defs + event_defs
                  if any(_finite(row.get(m.name)) is None and row.get(m.name) is not None for row in rows)]
    metrics = _metrics(conv_defs + event_defs, *rows)
    unvalued = {which: coverage.unvalued(period_rows.get(which)) for which in (CUR, PREV)}
    savings = _savings(metrics, report.human_cost_per_conversation,
                       cost_unknown={w: "cost_usd" in cols for w, cols in unvalued.items()})
    if savings is not None:
        metrics[savings.name] = savings
    if notable is not None:
        flags = notable(metrics, trend)
        metrics = {k: replace(m, notable=flags.get(k)) for k, m in metrics.items()}

    quality = quality_mod.assess(q_counts, hourly, period, now, threshold=report.completeness_threshold,
                                 expected_per_day=report.expected_events_per_day,
                                 events_per_conversation=_events_per_conversation(hourly, volumes, origin, period),
                                 back=back)
    if quality.warning and period.kind == "day" and not back and report.expected_events_per_day is None:
        quality = _same_weekday(source, quality, q_counts, period, now, report.completeness_threshold)
    # A total that moved because events are missing is not news: neither judged notable nor coloured good
    # or bad (a cost "drop" would read as a saving) on incomplete data. Nor a total in or against the first
    # period with data, which may hold only part of it (a reader review: "+165%" against a month begun on
    # the 19th, "rose from 0" on the first day; said in a note below, in report.json too).
    first = begins_within(trend, 2)
    # Nor the totals of a period that has not ended (a preview, run --dry-run): a week to Saturday evening
    # read "Conversations fell 9.5%, notable" against a whole one (a new-user audit).
    running = now < period.end_utc
    # Nor a figure whose column has no value in one of the two periods (found in a re-check: a cost column
    # that emptied this week read "Agent cost $0.00, -100%, notable" in green).
    unjudged = {name for col in {*unvalued[CUR], *unvalued[PREV]} for name in coverage.SUMMED[col][2]}
    metrics = {k: replace(m, notable=None, judged=False) if k in unjudged or (m.is_total and (quality.warning or first
                                                                                           or running))
               else m for k, m in metrics.items()}
    # Nor notable when only part of one period's conversations have a value (a cost column filled from the
    # middle of last week read "Cost rose 827%, notable": a new-user audit); the metric's good direction stays as defined.
    partly = coverage.partly_valued(period_rows.get(CUR), period_rows.get(PREV))
    unnoted = {name for col in partly for name in coverage.SUMMED[col][2]}
    metrics = {k: replace(m, notable=None) if k in unnoted else m for k, m in metrics.items()}
    notes = coverage.absence_notes(present, savings_asked=report.human_cost_per_conversation is not None)
    if report.agents:
        notes.insert(0, f"Only the conversations of {', '.join(report.agents)} (a conversation's agent is that of its "
                        f"first event); the data quality is of all the events.")
        if everyone and not any((r.get("conversations") or 0) for r in period_rows.values()):
            # a misspelt agent id would otherwise send an empty report every period, and nothing would say why
            notes.insert(1, f"None of the {sum(everyone.values())} conversations of the last {TREND_PERIODS} "
                            f"{period.kind}s is of these agents: check the report's agents setting.")
    if overflowed:
        # Found in a dirty-data check: costs near 1e308, each valid, summed to infinity; the CLI printed "$inf",
        # the other formats a bare "n/a", and nothing said why.
        notes.append(f"{', '.join(overflowed)}: the sum of the events' values is beyond what a number can hold "
                     f"(values near 1e308?), so it is not shown; check the source's values.")
    if running:
        notes.append(f"This {period.kind} has not ended: its figures are so far, and its totals are compared with "
                     f"a whole {period.kind} but not judged.")
    if first:
        which = "this" if first_with_data(trend) == len(trend) - 1 else "the previous"
        notes.append(f"The events begin in {which} {period.kind}, which may hold only part of its data: totals "
                     f"are compared but not judged.")
    notes += coverage.notes(period.kind, unvalued[CUR], partly, savings_shown=savings is not None)
    if any(used_approx):
        notes.append("Latency percentiles are approximate on this engine (within 1%).")

    return ReportData(
        report_id=report.id, title=report.title, audience=report.audience,
        generated_at=now.astimezone(period.tz), timezone=report.timezone, period_kind=period.kind,
        period=_info(period), previous_period=_info(period.previous()),
        metrics=metrics,
        daily=tuple(breakdowns.daily_row(d, daily_rows.get(i), conv_defs) for i, d in enumerate(period.days)),
        by_agent=breakdowns.by_agent(agent_rows, agent_latency, conv_defs) if has_agent else None,
        by_model=breakdowns.by_model(model_rows) if has_model else None,
        errors_by_type=breakdowns.errors_by_type(error_rows) if has_error_type else None,
        trend=trend,
        failure_examples=tuple(breakdowns.failure_row(r, period) for r in failures),
        quality=quality,
        notes=tuple(notes),
        settings={
            "audience": report.audience, "human_cost_per_conversation": report.human_cost_per_conversation,
            "locale": report.locale, "page_size": report.page_size, "subject": report.subject,
            "redact": report.redact, "redact_patterns": dict(report.redact_patterns),
            "completeness_threshold": report.completeness_threshold, "period_label": period.label(),
            "agents": list(report.agents) if report.agents else None,
        },
    )


def _same_weekday(source: Source, quality: Quality, counts: dict[str, Any], period: Period, now: datetime,
                  threshold: float) -> Quality:
    """A day report that warns against the previous days: its completeness against the same weekday of the
    4 previous weeks too, kept when that one does not warn, so the banner can say the week's rhythm may
    explain it. Found by a daily report's first weekend: a quiet Saturday read "DATA INCOMPLETE: 62%"
    against the weekdays before it, and nothing said that completeness_baseline = "same_weekday" exists.
    One more query, only on such a day."""
    origin = quality_mod.baseline_origin(period, max(quality_mod.SAME_WEEKDAY))
    hourly = {r["hour"]: r["n"] for r in _rows(quality_mod.hourly_counts(source.events, origin, period.end_utc, source.kind))}
    weekly = quality_mod.assess(counts, hourly, period, now, threshold=threshold, expected_per_day=None,
                                back=quality_mod.SAME_WEEKDAY)
    if weekly.baseline != "same_weekday" or weekly.warning:
        return quality
    return replace(quality, same_weekday_pct=weekly.completeness_pct)


def _events_per_conversation(hourly: dict[int, int], conversations: dict[int, int],
                             origin: datetime, period: Period) -> float:
    """Valid events per conversation over the trend's periods the hourly counts cover (a gap-rule scale; 1
    when unknown), so no per-conversation event count is needed."""
    depth = CUR
    while depth and period.previous(depth).start_utc < origin:
        depth -= 1
    first = int((period.previous(depth).start_utc - origin).total_seconds() // 3600)
    total = sum(conversations.get(i) or 0 for i in range(CUR - depth, CUR + 1))
    events = sum(n for hour, n in hourly.items() if hour >= first)
    return events / total if total else 1.0


def _metrics(defs: list, cur: dict[str, Any], prev: dict[str, Any]) -> dict[str, MetricValue]:
    out: dict[str, MetricValue] = {}
    for m in defs:
        value, previous = _finite(cur.get(m.name, m.empty)), _finite(prev.get(m.name, m.empty))
        ch = compute_change(value, previous, is_rate=m.is_rate, higher_is_better=m.higher_is_better)
        out[m.name] = MetricValue(m.name, m.label, m.unit, value, previous, ch.change_pct, ch.change_pp,
                                  ch.direction, ch.good, m.higher_is_better, m.description)
    return out


def _finite(value: Any) -> Any:
    """``value``, or None where it is a number that is not finite (a sum that overflowed)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _savings(metrics: dict[str, MetricValue], human_cost: float | None,
             cost_unknown: dict[int, bool] | None = None) -> MetricValue | None:
    """Contained conversations x human cost - agent cost; null for a period whose conversations have no
    cost value at all (its agent cost reads 0, and the savings would be the whole human cost)."""
    if human_cost is None or "cost_usd" not in metrics:
        return None
    unknown = cost_unknown or {}

    def value(which: str, period: int) -> float | None:
        conv = getattr(metrics["conversations"], which)
        esc = getattr(metrics["escalated_conversations"], which)
        cost = getattr(metrics["cost_usd"], which)
        if conv is None or esc is None or cost is None or unknown.get(period):
            return None
        return (conv - esc) * human_cost - cost

    m = ESTIMATED_SAVINGS
    cur, prev = value("value", CUR), value("previous", PREV)
    ch = compute_change(cur, prev, is_rate=False, higher_is_better=True)
    return MetricValue(m.name, m.label, m.unit, cur, prev, ch.change_pct, ch.change_pp, ch.direction, ch.good,
                       True, m.description)


def _values(t: ir.Table, approx: bool) -> dict[str, ir.Value]:
    """With approximate quantiles, the count of latency values of each group, for :func:`_quantile_rows`
    (not reported)."""
    return {LATENCY_VALUES: t.latency.count()} if approx and "latency" in t.columns else {}


def _quantile_rows(query: Callable[[bool], ir.Table], approx: bool, used: list[bool]) -> list[dict[str, Any]]:
    """The rows of a per-group query with latency quantiles: approximate only when every group with
    latency values has at least APPROX_QUANTILE_MIN_VALUES of them. An approximate percentile is a data
    point, not an interpolation, so it is within 1% only on many values; when a group is smaller (an
    agent with a few conversations in a busy week), the query runs again exactly. ``used`` records
    whether approximate quantiles reached the report."""
    rows = _rows(query(approx))
    if approx and any(0 < (r.get(LATENCY_VALUES) or 0) < APPROX_QUANTILE_MIN_VALUES for r in rows):
        rows, approx = _rows(query(False)), False
    used.append(approx)
    return [{k: v for k, v in r.items() if k != LATENCY_VALUES} for r in rows]


def _model_query(ev: ir.Table, approx: bool) -> ir.Table:
    """Per (period, model): events, conversations, errors, tokens, cost, mean and p95 latency.

    Distinct conversations come from their own distinct-then-count, joined on the (few) model rows:
    Spark plans a count(DISTINCT) next to a percentile by expanding every row, which made this one
    query 40x slower than all the others together.
    """
    keys = ["period", "model"]
    aggs: dict[str, ir.Value] = {"events": ev.count(), "errors": count_if(ev.event_type == "error")}
    if "tokens" in ev.columns:
        aggs["total_tokens"] = ev.tokens.sum().fill_null(0)
    if "cost" in ev.columns:
        aggs["cost_usd"] = ev.cost.sum().fill_null(0.0)
    if "latency" in ev.columns:
        aggs["avg_latency_ms"] = ev.latency.mean()
        aggs["p95_latency_ms"] = METRICS["p95_latency_ms"].expr(ev, approx)
        aggs.update(_values(ev, approx))
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
