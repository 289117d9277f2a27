"""Data quality of a period: invalid-data counts, completeness against a baseline, hourly gaps.

Two queries: one pass of conditional counts over the raw rows, and one count of valid events
per hour over the period and the four before it (the baseline). Everything else is arithmetic
on at most a few thousand hourly numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
import statistics
from datetime import datetime, timedelta, timezone

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from .cohort import count_if, ts_literal, unknown_type, valid_cost, valid_in, valid_latency, valid_tokens
from .periods import Period
from .report import Gap, Quality

BASELINE_PERIODS = 4
GAP_MIN_EXPECTED = 8.0
#: the least share of the largest baseline period's events a baseline period holds (see assess)
BASELINE_MIN_SHARE = 0.1


def invalid_counts(events: ir.Table, present: frozenset[str], period: Period, now: datetime,
                   duplicates: ir.Table | None) -> ir.Table:
    """One-row expression of the invalid-data counts for ``period`` (README, Data quality).

    Rows are attributed by event_ts; rows without an event_ts cannot be placed in any period and
    are counted in every report as missing a required field. Future events are those after
    ``now`` anywhere in the table. ``duplicates`` is :func:`cohort.duplicate_ids` over a window holding
    the period (None when the source has no event_id: no duplicate count); the count reads only the
    rows whose id is repeated. A period's extra copies are its rows of a repeated id that are not the copy
    the metrics keep (the earliest of the window), so a copy that arrives a period after its original
    is counted in the period it arrived in.
    """
    def in_period(ts: ir.Value) -> ir.Value:
        return (ts >= ts_literal(period.start_utc)) & (ts < ts_literal(period.end_utc))

    # Two filtered passes in one query, not one pass with an OR: the period's range prunes storage
    # (DuckDB zone maps, a Postgres index), and the rest of the table is read for event_ts alone.
    t = events.filter(in_period(events.event_ts))
    valid = t.conversation_id.notnull()
    aggs: dict[str, ir.Value] = {
        "rows": t.count(),
        "missing_in_period": count_if(t.conversation_id.isnull()),
        "unknown_event_types": count_if(valid & unknown_type(t.event_type)),
        # how far the data reaches: a reader of an incomplete report sees where it stopped
        "latest_event": t.event_ts.max(where=valid & (t.event_ts <= ts_literal(now))),
    }
    if "latency_ms" in present:
        # Null stays null through ~valid_latency (not counted): a null latency is absent, not invalid.
        aggs["invalid_latency"] = count_if(valid & ~valid_latency(t.latency_ms))
    if "token_count" in present:
        aggs["invalid_tokens"] = count_if(valid & ~valid_tokens(t.token_count))
    if "cost_usd" in present:
        aggs["invalid_cost"] = count_if(valid & ~valid_cost(t.cost_usd))
    o = events.filter(events.event_ts.isnull() | (events.event_ts > ts_literal(now)))
    # A row without a conversation_id is missing_required, and only that (its other values are not judged).
    counts = t.agg(**aggs).cross_join(o.agg(no_event_ts=count_if(o.event_ts.isnull()), future_events=count_if(
        o.conversation_id.notnull() & (o.event_ts > ts_literal(now)))))
    counts = counts.mutate(missing_required=counts.missing_in_period.fill_null(0) + counts.no_event_ts.fill_null(0))
    counts = counts.drop("missing_in_period", "no_event_ts")
    if duplicates is None:
        return counts
    # Extra copies = the period's rows of repeated ids - the kept copies (the earliest of each id) among them.
    r = valid_in(events, period.start_utc, period.end_utc)
    r = r.filter(r.event_id.notnull()).semi_join(duplicates, "event_id")
    return counts.cross_join(r.agg(keyed_events=r.count())).cross_join(
        duplicates.agg(kept_copies=count_if(in_period(duplicates.first))))


@ibis.udf.scalar.builtin(name="epoch_us", signature=((dt.Timestamp(timezone="UTC"),), dt.int64))
def _duckdb_epoch_us(ts):  # type: ignore[no-untyped-def]
    """DuckDB's epoch_us(TIMESTAMPTZ): Ibis's epoch_seconds() casts to a naive TIMESTAMP first, through
    the ICU time zone code, which made this query 6x slower."""


@ibis.udf.scalar.builtin(name="date_part", signature=((dt.string, dt.Timestamp(timezone="UTC")), dt.float64))
def _postgres_date_part(field, ts):  # type: ignore[no-untyped-def]
    """Postgres's date_part() returns a double; EXTRACT (Ibis's epoch_seconds) returns numeric since
    Postgres 14, and numeric arithmetic doubled this query's time."""


def hourly_counts(events: ir.Table, origin: datetime, end: datetime, engine: str = "") -> ir.Table:
    """Valid events per hour since ``origin`` (hour index -> count), for [origin, end)."""
    t = valid_in(events, origin, end)
    if engine == "duckdb":
        hour = ((_duckdb_epoch_us(t.event_ts) - int(origin.timestamp()) * 1_000_000) // 3_600_000_000).cast("int64")
    elif engine in ("postgres", "postgresql"):
        hour = ((_postgres_date_part("epoch", t.event_ts) - int(origin.timestamp())) / 3600).floor().cast("int64")
    else:
        hour = ((t.event_ts.epoch_seconds() - int(origin.timestamp())) / 3600).floor().cast("int64")
    return t.group_by(hour=hour).agg(n=t.count())


def baseline_origin(period: Period, back: int = BASELINE_PERIODS) -> datetime:
    """Where the hourly volumes start: at or before the start of the period ``back`` periods before, a whole
    number of hours before ``period``'s start, so the period's hours are the query's hours even where a DST
    shift is not a whole hour (then a baseline's "same hours" are read to the hour below)."""
    span = (period.start_utc - period.previous(back).start_utc).total_seconds() / 3600
    return period.start_utc - timedelta(hours=math.ceil(span))


#: A day report's baseline with ``completeness_baseline = "same_weekday"``: the same weekday 1 to 4 weeks back.
SAME_WEEKDAY = (7, 14, 21, 28)


def baseline_periods(setting: str, has_data: Callable[[int], bool], reach: int) -> list[int]:
    """The baseline periods, as how many periods back each is, when they are not the 4 previous ones (then
    empty): a day report's same weekday (``completeness_baseline = "same_weekday"``), or, when none of the 4
    previous periods has data but some of the ``reach`` before them had, the (up to 4) most recent of those.
    Found in a scale audit: a source silent for more than 4 periods read as "no history yet", with no
    warning, while its own trend showed the weeks it stopped after."""
    if setting == "same_weekday":
        return list(SAME_WEEKDAY)
    if any(has_data(k) for k in range(1, BASELINE_PERIODS + 1)):
        return []
    return [k for k in range(BASELINE_PERIODS + 1, reach + 1) if has_data(k)][:BASELINE_PERIODS]


def assess(counts: dict[str, int | None], hourly: dict[int, int], period: Period, now: datetime,
           *, threshold: float, expected_per_day: float | None, events_per_conversation: float = 1.0,
           back: Sequence[int] = ()) -> Quality:
    """Completeness, gaps and the warning flag from the two queries' results.

    ``events_per_conversation`` scales the gap rule: events arrive in clumps (a conversation's),
    so silence is judged by the conversations that were expected, not by the events. ``back`` names the
    baseline periods (how many periods back) when they are not the 4 previous ones (:func:`baseline_periods`);
    ``hourly`` then starts at ``baseline_origin(period, max(back))``.
    """
    origin = baseline_origin(period, max(back, default=BASELINE_PERIODS))
    elapsed_end = min(period.end_utc, max(now.astimezone(timezone.utc), period.start_utc))
    elapsed = (elapsed_end - period.start_utc).total_seconds() / 3600
    # A running period compares its whole elapsed hours; a complete one all of its hours, the last one
    # partial when the period is not a whole number of hours (Lord Howe's half-hour DST shift).
    n_hours = math.ceil(elapsed) if elapsed_end == period.end_utc else int(elapsed)

    def hour_index(p: Period) -> int:
        return int((p.start_utc - origin).total_seconds() // 3600)

    current = [hourly.get(hour_index(period) + h, 0) for h in range(n_hours)]
    received = sum(current)
    baseline_keys: tuple[str, ...] = ()
    if expected_per_day is not None:
        basis: str | None = "expected_events_per_day"
        expected: float | None = expected_per_day * n_hours / 24.0
        per_hour_expected = [expected_per_day / 24.0] * n_hours
    else:
        basis = ("same_weekday" if tuple(back) == SAME_WEEKDAY else "earlier_periods") if back else "previous_periods"
        baselines = [period.previous(k) for k in (back or range(1, BASELINE_PERIODS + 1))]
        history = [[hourly.get(hour_index(b) + h, 0) for h in range(min(n_hours, _hours(b)))] for b in baselines]
        used = _usable(history)
        expected, per_hour_expected = _baseline([history[i] for i in used], n_hours)
        basis = basis if expected is not None else None
        baseline_keys = tuple(baselines[i].key for i in sorted(used, key=lambda i: baselines[i].start_utc))
    completeness = received / expected * 100.0 if expected else None
    # No event at all and nothing to compare with (a new source, a wrong table or column mapping): a report
    # of zeros is no less partial for its completeness being unknown (found in an audit: it went out without
    # the banner). An explicit expected_events_per_day of 0 says that none were expected.
    empty = received == 0 and n_hours > 0 and expected is None
    gaps = _gaps(current, per_hour_expected, GAP_MIN_EXPECTED * max(1.0, events_per_conversation), period, elapsed_end)

    keyed, kept = counts.get("keyed_events"), counts.get("kept_copies")
    return Quality(
        completeness_pct=completeness,
        warning=(completeness is not None and completeness < threshold) or empty,
        threshold=threshold,
        received_events=received,
        expected_events=expected,
        baseline=basis,
        duplicate_events=(keyed or 0) - (kept or 0) if "keyed_events" in counts else None,
        missing_required=int(counts.get("missing_required") or 0),
        # A count over no rows is NULL in SQL: 0 when the column exists, None only when it is absent.
        invalid_latency=int(counts["invalid_latency"] or 0) if "invalid_latency" in counts else None,
        invalid_tokens=int(counts["invalid_tokens"] or 0) if "invalid_tokens" in counts else None,
        invalid_cost=int(counts["invalid_cost"] or 0) if "invalid_cost" in counts else None,
        unknown_event_types=int(counts.get("unknown_event_types") or 0),
        future_events=int(counts.get("future_events") or 0),
        gaps=gaps,
        latest_event=period.local(latest) if isinstance(latest := counts.get("latest_event"), datetime) else None,
        baseline_periods=baseline_keys if expected is not None else (),
    )


def _usable(history: list[list[int]]) -> list[int]:
    """Which baseline periods the median is taken over (their indexes). A period before the data began is no
    baseline, nor one with a few stray events (one event in an old week of a young source made the median of
    its baseline half its usual volume: 189% complete, found in a dirty-data audit): a baseline period holds a
    tenth of the largest one's events or more. The period the data began (or, after a silent period, resumed)
    partway through stays in the median, as the design defines it; compute names it (``baseline_partial``)."""
    totals = [sum(h) for h in history]
    largest = max(totals, default=0)
    return [i for i, n in enumerate(totals) if n > 0 and n >= BASELINE_MIN_SHARE * largest]


def _baseline(history: list[list[int]], n_hours: int) -> tuple[float | None, list[float]]:
    """The expected events and the expected events of each hour, the median of the baseline periods' (each
    a list of its hourly counts, stopping at its own end: the 169th hour of a week that ends daylight saving
    time has no "same hour" in a 168-hour week). (None, zeros) when there is no baseline period."""
    if not history:
        return None, [0.0] * n_hours
    return (float(statistics.median(sum(h) for h in history)),
            [float(statistics.median(col)) if (col := [h[i] for h in history if i < len(h)]) else 0.0
             for i in range(n_hours)])


def _gaps(current: list[int], per_hour_expected: list[float], min_expected: float, period: Period,
          elapsed_end: datetime) -> tuple[Gap, ...]:
    """The period's gaps: runs of empty hours over which at least ``min_expected`` events were expected.

    That much silence would be very unlikely by chance (GAP_MIN_EXPECTED conversations' worth of events:
    Poisson P(0) <= e^-8, 0.03%), so a quiet night is not a gap but an outage is. A run is every hour
    without events between two with some: an hour that expected none (a quiet night) does not split an
    outage into several gaps (found in a rendering audit: one outage from Wednesday to the week's end was
    listed as three gaps, as if events had come in between). Its ends are trimmed to the hours that
    expected events: a weekday outage is not said to span the quiet nights around it (found in a re-check).
    """
    gaps: list[Gap] = []
    run_start: int | None = None
    run_expected = 0.0
    run_end = 0
    for h in range(len(current) + 1):
        if h < len(current) and current[h] == 0:
            if per_hour_expected[h] > 0:
                if run_start is None:
                    run_start, run_expected = h, 0.0
                run_expected += per_hour_expected[h]
                run_end = h + 1
            continue
        if run_start is not None and run_expected >= min_expected:
            gaps.append(Gap(_at(period, run_start), min(_at(period, run_end), elapsed_end.astimezone(period.tz))))
        run_start = None
    return tuple(gaps)


def _hours(period: Period) -> int:
    """The hours a period has (the last one partial where a DST shift is not a whole hour)."""
    return math.ceil((period.end_utc - period.start_utc).total_seconds() / 3600)


def _at(period: Period, hour: int) -> datetime:
    return (period.start_utc + timedelta(hours=hour)).astimezone(period.tz)
