"""Compute one report: run its queries in the engine (``queries``) and assemble the frozen ReportData.

Queries per report (any engine): the event_ids repeated in the look-around window (1) and the
conversation cohort (2) are materialized once; a count of the conversations that outlast their own
window (3; if there are any, one more query recomputes them); then period totals and trend (4), daily
series (5); the events of the current and previous periods' conversations (6) and each conversation's
agent (7) are materialized once, then per-agent outcomes (8), latency quantiles (9), per-agent
latency (10), per-model (11), errors by type (12), failure examples (13); quality counts (14), the
latest event older than the trend (15) and hourly volumes (16). A fixed 16 (17 with an overlong
conversation; 2 more for a report of some agents: the cohort's size, then its conversations of those
agents are materialized; 1 more for a day report that warns, its same weekday's hourly volumes; 1 more when
5% of the period's events have an unknown type, their most frequent types; on an
engine with approximate quantiles,
one more per quantile query that has a small group), whatever the number of metrics or events.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from . import breakdowns
from . import coverage
from . import queries
from . import quality as quality_mod
from .breakdowns import CUR, PREV, TREND_PERIODS
from .changes import compute_change, finite_number
from .cohort import KNOWN_EVENT_TYPES, wide_sums
from .config import ReportConfig
from .metrics import ESTIMATED_SAVINGS, available
from .periods import Period
from .report import SCOPE_NOTE, MetricValue, PeriodInfo, Quality, ReportData
from .significance import begins_within, first_with_data
from .sources import ConversionError, QueryFailed, Source
from .unreadable import Unreadable


def _info(p: Period) -> PeriodInfo:
    return PeriodInfo(p.key, p.start, p.end)


#: The share of a period's events with an unknown event type from which a note says so (and what counts).
UNKNOWN_TYPES_NOTE = 0.05
#: The share of the source files' rows that cannot be read from which a note says so (see .unreadable).
UNREADABLE_NOTE = 0.01

Notable = Callable[[dict[str, MetricValue], tuple[dict, ...]], dict[str, bool | None]]


def compute_report(source: Source, report: ReportConfig, period: Period, *, now: datetime,
                   max_conversation_hours: float = 24.0, notable: Notable | None = None) -> ReportData:
    """Compute ``report`` for ``period`` from ``source``; all aggregation runs in the engine.

    Event text (agent ids, error messages, ...) is carried as found: rendering redacts it
    (``render.prepare``) before any artifact, report.json included, is written. A value that does not
    convert to its column's type is an InputError naming the ``[source.columns]`` key.
    """
    def compute() -> ReportData:
        with source.transaction():  # PostgreSQL: one transaction, so it works through PgBouncer's transaction mode
            return _compute_report(source, report, period, now=now, max_conversation_hours=max_conversation_hours,
                                   notable=notable)

    try:
        try:
            return compute()
        except QueryFailed as exc:
            if not _sum_overflowed(exc):
                raise
        # A sum beyond a double (valid costs near 1e308): again with PostgreSQL's sums in numeric, which then
        # show it as unknown with a note, as DuckDB and Spark do (cohort.float_sum)
        with wide_sums():
            return compute()
    except ConversionError as exc:
        raise source.conversion_error(exc) from None
    except QueryFailed as exc:
        raise source.query_failed(exc) from exc


def _sum_overflowed(exc: BaseException) -> bool:
    """Whether the engine refused a query because a number went beyond its type (PostgreSQL's SQLSTATE 22003,
    "value out of range: overflow"), as the cause of ``exc``."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if getattr(cause, "sqlstate", None) == "22003":
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _compute_report(source: Source, report: ReportConfig, period: Period, *, now: datetime,
                    max_conversation_hours: float, notable: Notable | None) -> ReportData:
    conv_defs = available(source.present, "conversation")
    event_defs = available(source.present, "event")
    periods = [period.previous(k) for k in range(TREND_PERIODS - 1, 0, -1)] + [period]
    found = queries.run_queries(source, report, period, periods, timedelta(hours=max_conversation_hours), now)
    trend = _trend(source, periods, found.period_rows, conv_defs)
    quality = _quality(source, report, period, now, found)
    # the period the data began or resumed partway through (a trend's partial row), named when the baseline holds
    # it: it makes the expected volume low (found in a report-reading audit: a monthly report read 152.9%
    # complete). A report of some agents has their trend, but the baseline is of every agent: a row after one of
    # theirs without conversations, when the source had some then, is no partial period of the source's.
    volumes = found.volumes()
    partial = next((row["key"] for i, row in enumerate(trend) if row.get("partial") and row["key"] in
                    quality.baseline_periods and (i == 0 or not volumes.get(i - 1))), None)
    if partial is not None:
        quality = replace(quality, baseline_partial=partial)

    rows = [{**breakdowns.blank(conv_defs), **(found.period_rows.get(p) or {}), **(found.event_rows.get(p) or {})}
            for p in (CUR, PREV)]
    # A sum that overflowed (invalid values are left out before any sum) is unknown, said in a note below.
    overflowed = [m.label for m in conv_defs + event_defs
                  if any(_finite(row.get(m.name)) is None and row.get(m.name) is not None for row in rows)]
    metrics = _metrics(conv_defs + event_defs, *rows)
    unvalued = {which: coverage.unvalued(found.period_rows.get(which)) for which in (CUR, PREV)}
    savings = _savings(metrics, report.human_cost_per_conversation,
                       cost_unknown={w: "cost_usd" in cols for w, cols in unvalued.items()})
    if savings is not None:
        metrics[savings.name] = savings
    if notable is not None:
        flags = notable(metrics, trend)
        metrics = {k: replace(m, notable=flags.get(k)) for k, m in metrics.items()}
    first = begins_within(trend, 2)
    # or resumed partway through one of the two after a silent period, as low for that (_trend marks it partial)
    resumed = None if first else next((i for i in (CUR, PREV) if trend[i].get("partial")), None)
    running = now < period.end_utc
    partly = coverage.partly_valued(found.period_rows.get(CUR), found.period_rows.get(PREV))
    unreliable = quality.warning or first or running or resumed is not None
    metrics = _judged(metrics, unvalued, partly, unreliable=unreliable)

    notes = _notes(report, period, found, trend, present=source.present, overflowed=overflowed, running=running,
                   first=first, resumed=resumed, unvalued=unvalued[CUR], partly=partly,
                   savings_shown=savings is not None, quality=quality, unreadable=source.unreadable,
                   withheld=source.withheld)

    has = source.present
    return ReportData(
        report_id=report.id, title=report.title, audience=report.audience,
        generated_at=now.astimezone(period.tz), timezone=report.timezone, period_kind=period.kind,
        period=_info(period), previous_period=_info(period.previous()),
        metrics=metrics,
        daily=tuple(breakdowns.daily_row(d, found.daily_rows.get(i), conv_defs) for i, d in enumerate(period.days)),
        by_agent=breakdowns.by_agent(found.agent_rows, found.agent_latency, conv_defs) if "agent_id" in has else None,
        by_model=breakdowns.by_model(found.model_rows) if "model" in has else None,
        errors_by_type=breakdowns.errors_by_type(found.error_rows) if "error_type" in has else None,
        trend=trend,
        failure_examples=tuple(breakdowns.failure_row(r, period) for r in found.failures),
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


def _notes(report: ReportConfig, period: Period, found: queries.Found, trend: tuple[dict[str, Any], ...], *,
           present: frozenset[str], overflowed: list[str], running: bool, first: bool, resumed: int | None,
           unvalued: list[str], partly: dict[str, Any], savings_shown: bool, quality: Quality,
           unreadable: Unreadable | None, withheld: frozenset[str] = frozenset()) -> list[str]:
    """What the report says about its own figures: what they cover, what is missing and why some are not judged."""
    notes = coverage.absence_notes(present, withheld, savings_asked=report.human_cost_per_conversation is not None)
    if report.agents:
        notes.insert(0, f"{SCOPE_NOTE}{', '.join(report.agents)} (a conversation's agent is that of its "
                        f"first event); the data quality is of all the events.")
        if found.everyone and not any((r.get("conversations") or 0) for r in found.period_rows.values()):
            # a misspelt agent id would otherwise send an empty report every period, and nothing would say why
            notes.insert(1, f"None of the {sum(found.everyone.values())} conversations of the last {TREND_PERIODS} "
                            f"{period.kind}s is of these agents: check the report's agents setting.")
    if unreadable is not None and unreadable.share >= UNREADABLE_NOTE:
        # Said where every reader sees it when they are many (a file in Latin-1: every row with an accent);
        # a few stray rows are in the quality section only.
        notes.append(f"{100 * unreadable.share:.0f}% of the rows of the source's files cannot be read and are left "
                     f"out of every figure (the first: {unreadable.first}); check the files.")
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
    if resumed is not None:
        notes.append(f"The events resumed partway through {'this' if resumed == CUR else 'the previous'} "
                     f"{period.kind}, after a {period.kind} without any: totals are compared but not judged.")
    notes += coverage.notes(period.kind, unvalued, partly, savings_shown=savings_shown)
    if _many_unknown(quality):
        # Found in a new-user audit: a producer writing "Resolution" and "MESSAGE" had 75% of its events
        # unknown, and its resolution rate read 0% with only a count in the quality table to say why.
        share = 100.0 * quality.unknown_event_types / quality.received_events
        notes.append(f"{share:.0f}% of this {period.kind}'s events have an event type that is none of "
                     f"{', '.join(KNOWN_EVENT_TYPES)}, written exactly so (\"Resolution\" is not resolution): they "
                     f"count in their conversations but never as a resolution, escalation or error; check the "
                     f"source's event_type values.")
    if found.approximate:
        notes.append("Latency percentiles are approximate on this engine (within 1%).")
    return notes


def _trend(source: Source, periods: list[Period], period_rows: dict[int, dict[str, Any]],
           conv_defs: list) -> tuple[dict[str, Any], ...]:
    """The trend's rows, oldest first. A row with conversations after a whole period without any (the period
    before the trend's first one included) gets ``data_from`` and ``partial`` (:func:`_data_from`): the data
    began in it, or resumed after a silence, and it may hold only part of a period's. When no event is older
    than the trend, the first such row is the one the data begin in, marked ``begins`` when it is the first
    row (it may be partial: significance.data_begin).

    Found in a data-quality review: a source that stopped for weeks and came back on a Thursday had that
    week's first days empty as a new source's first week has, but only the first was named (``partial``,
    and ``baseline_partial`` when the baseline holds it); a silence shorter than a whole period is an outage
    within the data, which that period's own report gives as gaps."""
    trend = tuple(breakdowns.trend_row(p, period_rows.get(i), conv_defs) for i, p in enumerate(periods))
    # Only whether an event is older, and whether one is in the period before the trend: the time itself may
    # not be one Python can hold (-infinity, a year before 1), and fetching it failed the run with exit 3 (found
    # in a dirty-data audit). A max below a bound reads one index entry on PostgreSQL.
    before = source.events.filter(source.events.event_ts < periods[0].start_utc)
    latest = before.event_ts.max()
    found = queries.rows(before.agg(any=latest.notnull(), just_before=latest >= periods[0].previous().start_utc))[0]
    older, just_before = found["any"], bool(found["just_before"])
    began = first_with_data(trend)

    def has(i: int) -> bool:
        return just_before if i < 0 else bool(finite_number(trend[i].get("conversations")))

    for i in [i for i in range(len(trend)) if has(i) and not has(i - 1)]:
        marks = {"begins": True} if i == began == 0 and not older else {}
        marks |= _data_from(periods[i], period_rows.get(i) or {})
        trend = (*trend[:i], {**trend[i], **marks}, *trend[i + 1:])
    return trend


def _data_from(period: Period, row: dict[str, Any]) -> dict[str, Any]:
    """``data_from``, when the data began (the earliest conversation start, local time), and ``partial``:
    whether it began partway through ``period``, so that a total of it is low only for that (a new source's
    first week, begun on a Thursday, drew a sparkline rising from it). Not for data that began on the
    period's first local day, or in the first half of a day report's day: a quiet night before the first
    event at 07:00 is no missing data."""
    first = row.get(queries.FIRST_START)
    if not isinstance(first, datetime):
        return {}
    first = period.local(first)
    grace = min(period.day_starts_utc[1], period.start_utc + (period.end_utc - period.start_utc) / 2)
    return {"data_from": first.isoformat(), "partial": first >= grace}


def _quality(source: Source, report: ReportConfig, period: Period, now: datetime, found: queries.Found) -> Quality:
    """Completeness against the report's baseline (one hourly-volume query), gaps and the invalid-data counts."""
    volumes = found.volumes()
    back = [] if report.expected_events_per_day is not None else quality_mod.baseline_periods(
        report.completeness_baseline, lambda k: bool(volumes.get(CUR - k)), TREND_PERIODS - 1)
    origin = quality_mod.baseline_origin(period, max(back, default=quality_mod.BASELINE_PERIODS))
    hourly = queries.hourly(source, origin, period)
    quality = quality_mod.assess(found.quality_counts, hourly, period, now, threshold=report.completeness_threshold,
                                 expected_per_day=report.expected_events_per_day,
                                 events_per_conversation=_events_per_conversation(hourly, volumes, origin, period),
                                 back=back)
    if quality.warning and period.kind == "day" and not back and report.expected_events_per_day is None:
        quality = _same_weekday(source, quality, found.quality_counts, period, now, report.completeness_threshold)
    if _many_unknown(quality):  # which ones, so the reader can look for them (one more query, on such data only)
        quality = replace(quality, unknown_event_type_examples=tuple(queries.unknown_types(source, period)))
    if source.unreadable is not None:  # the files' rows left out, found when the source was opened
        quality = replace(quality, unreadable_rows=source.unreadable.rows, unreadable_first=source.unreadable.first or None)
    return quality


def _many_unknown(quality: Quality) -> bool:
    return bool(quality.received_events) and quality.unknown_event_types >= UNKNOWN_TYPES_NOTE * quality.received_events


def _judged(metrics: dict[str, MetricValue], unvalued: dict[int, Any], partly: Any, *,
            unreliable: bool) -> dict[str, MetricValue]:
    """``metrics`` with the moves that are not news unjudged (neither notable nor coloured good or bad).

    - The totals, when the data are ``unreliable``: incomplete (a cost "drop" would read as a saving); in or
      against the first period with data, which may hold only part of it (a reader review: "+165%" against
      a month begun on the 19th); or a period that has not ended (a preview: a week to Saturday evening read
      "Conversations fell 9.5%, notable" against a whole one).
    - A figure whose column has no value in one of the two periods (a cost column that emptied this week
      read "Agent cost $0.00, -100%, notable" in green).
    - Not notable, but judged, when only part of one period's conversations have a value (a cost column
      filled from the middle of last week read "Cost rose 827%, notable").
    """
    unjudged = {name for col in {*unvalued[CUR], *unvalued[PREV]} for name in coverage.SUMMED[col][2]}
    unnoted = {name for col in partly for name in coverage.SUMMED[col][2]}
    out = {}
    for k, m in metrics.items():
        if k in unjudged or (m.is_total and unreliable):
            m = replace(m, notable=None, judged=False)
        elif k in unnoted:
            m = replace(m, notable=None)
        out[k] = m
    return out


def _same_weekday(source: Source, quality: Quality, counts: dict[str, Any], period: Period, now: datetime,
                  threshold: float) -> Quality:
    """A day report that warns against the previous days: its completeness against the same weekday of the
    4 previous weeks too, kept when that one does not warn, so the banner can say the week's rhythm may
    explain it. Found by a daily report's first weekend: a quiet Saturday read "DATA INCOMPLETE: 62%"
    against the weekdays before it, and nothing said that completeness_baseline = "same_weekday" exists.
    One more query, only on such a day."""
    origin = quality_mod.baseline_origin(period, max(quality_mod.SAME_WEEKDAY))
    hourly = queries.hourly(source, origin, period)
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


