"""The conversation cohort of a report, as Ibis expressions (nothing runs here).

From the canonical events table this builds, for a span of consecutive periods:

* ``events``: valid events (conversation_id and event_ts set) in the look-back/ahead window,
  deduplicated by event_id (one whole copy: the earliest), with latency and tokens nulled where invalid;
* ``conversations``: one row per conversation that *starts* in the span, with its first and last event,
  outcome flags, error count and sums, and the index of the period (and local day) its start falls in;
* ``conversation_events``: the events of those conversations, carrying the conversation's start
  and period index, for event-level metrics (quantiles, by model, errors by type), and from them
  ``conversation_agents``: the agent of each conversation (the agent_id of its first event).
"""

from __future__ import annotations

import contextlib
import contextvars
import decimal
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

UTC_TS = dt.Timestamp(timezone="UTC")
MAX_DOUBLE = 1.7976931348623157e308
KNOWN_EVENT_TYPES = ("message", "tool_call", "resolution", "escalation", "error", "abandon")
#: The largest token count that is data: beyond it a float column's counts stop being whole numbers.
MAX_TOKENS = 2 ** 53


def ts_literal(value: datetime) -> ir.Value:
    """A timestamp literal typed ``timestamp('UTC')``, so it compares correctly with timestamptz."""
    return ibis.literal(value.astimezone(timezone.utc), type=UTC_TS)


def bucket(column: ir.Value, bounds: list[datetime]) -> ir.Value:
    """Index i of the half-open interval [bounds[i], bounds[i+1]) holding ``column``, else null."""
    cases = [(column < ts_literal(b), i - 1) for i, b in enumerate(bounds[1:], start=1)]
    return ibis.cases(*cases, else_=ibis.null("int64")).cast("int64")


def valid_latency(lat: ir.Value) -> ir.Value:
    """True for a finite latency >= 0; false for negative, NaN and infinite values; null for null.

    A range test instead of isinf: Ibis compiles that differently per engine (on Spark isinf is
    constant false), while NaN fails this test everywhere, whether the engine orders NaN above every
    number (DuckDB, Postgres, Spark) or not at all (IEEE). See :func:`_finite_between` for the NaN test.
    """
    return _finite_between(lat, ibis.literal(0.0, type="float64"))


def valid_tokens(tokens: ir.Value) -> ir.Value:
    """True for a token count from 0 to :data:`MAX_TOKENS`; false for a negative one and for one beyond, no
    real count: two of 2^62 overflowed their conversation's int64 sum, which failed the whole run (exit 2 on
    DuckDB, 3 on PostgreSQL; found in a dirty-data audit); null for null."""
    return (tokens >= 0) & (tokens <= MAX_TOKENS)


def valid_cost(cost: ir.Value) -> ir.Value:
    """True for a finite cost (a credit may be negative); false for NaN and infinite ones, which would make
    every sum they enter NaN; null for null. A range test, as in :func:`valid_latency`."""
    return _finite_between(cost, ibis.literal(-MAX_DOUBLE, type="float64"))


def _finite_between(value: ir.Value, low: ir.Value) -> ir.Value:
    """``low <= value <= MAX_DOUBLE``, and not NaN: the range test alone let NaN through on Parquet files.
    Their min/max statistics leave NaN out (the format's rule), and DuckDB folded ``value <= MAX_DOUBLE`` to
    true from a max of 305, so a NaN latency was valid, uncounted, and made the mean and p95 null (found in
    a dirty-data audit). isnan is null for null, as the range test is (false on Spark: the range decides)."""
    return (value >= low) & (value <= ibis.literal(MAX_DOUBLE, type="float64")) & ~value.isnan()


@dataclass
class Cohort:
    events: ir.Table
    conversations: ir.Table
    present: frozenset[str]
    #: what conversation_events needs to re-read a shorter stretch of the same deduplicated events
    source: ir.Table | None = None
    duplicates: ir.Table | None = None
    window_end: datetime | None = None
    #: per period index, the end of its conversations' look-ahead window (:func:`cutoff`)
    cutoffs: list[datetime] | None = None


@ibis.udf.scalar.builtin
def convert_to(text: str, encoding: str) -> dt.binary:  # type: ignore[empty-body]
    """PostgreSQL's ``convert_to``: the text's bytes in ``encoding`` (an Ibis builtin, nothing runs here)."""


def byte_order(value: ir.Value, engine: str) -> ir.Value:
    """``value`` as a sort key in byte (code point) order on every engine.

    DuckDB and Spark compare strings by their UTF-8 bytes; PostgreSQL by the column's collation, where
    en_US puts "billing-bot" before "Support-bot". Its UTF-8 bytes (bytea compares bytewise) restore
    the one order. A cast to bytea would read backslashes as escapes.
    """
    if engine == "postgres" and value.type().is_string():
        return convert_to(value, "UTF8")
    return value


def engine_name(table: ir.Table) -> str:
    try:
        return table._find_backend().name
    except Exception:  # an unbound expression
        return ""


def unknown_type(event_type: ir.StringValue) -> ir.BooleanValue:
    """Whether an event's type is none of :data:`KNOWN_EVENT_TYPES` (a null type included), matched exactly."""
    return event_type.isnull() | ~event_type.isin(KNOWN_EVENT_TYPES)


#: Whether sums of doubles on PostgreSQL run in ``numeric`` (see :func:`float_sum`): set for the report's second
#: computation after PostgreSQL refused a sum (compute.compute_report), never on a first one (numeric is slower).
_WIDE_SUMS: contextvars.ContextVar[bool] = contextvars.ContextVar("wide_sums", default=False)
#: At or below the largest double (1.7976931348623157081e308): a numeric sum above it is infinity.
_NUMERIC_MAX = decimal.Decimal("1.7976931348623157e308")


@contextlib.contextmanager
def wide_sums() -> Iterator[None]:
    """Sums of doubles on PostgreSQL in ``numeric`` while the block runs (:func:`float_sum`)."""
    token = _WIDE_SUMS.set(True)
    try:
        yield
    finally:
        _WIDE_SUMS.reset(token)


def float_sum(table: ir.Table, value: ir.FloatingValue) -> ir.FloatingValue:
    """The sum of ``value`` (a double column of ``table``) over the group.

    A sum beyond the largest double is infinity on DuckDB and Spark, which the report shows as unknown with a
    note (compute._notes); PostgreSQL raises "value out of range: overflow" instead, and the run failed with
    exit 3 (found in a differential audit: two valid costs of 1e308). Under :func:`wide_sums` PostgreSQL sums in
    ``numeric`` and turns a sum beyond a double into infinity too.
    """
    if not _WIDE_SUMS.get() or engine_name(table) != "postgres":
        return value.sum()
    wide = dt.Decimal(None, None)  # PostgreSQL's unbounded numeric
    total = value.cast(wide).sum()
    limit = ibis.literal(_NUMERIC_MAX, type=wide)
    return ibis.cases((total > limit, ibis.literal(math.inf)), (total < -limit, ibis.literal(-math.inf)),
                      else_=total.cast("float64"))


def count_if(cond: ir.Value) -> ir.Value:
    """How many rows of the group meet ``cond`` (null counts as false).

    CASE WHEN, not a boolean cast: Postgres cannot cast boolean to bigint.
    """
    return ibis.ifelse(cond, 1, 0).sum()


def valid_in(events: ir.Table, lo: datetime, hi: datetime) -> ir.Table:
    """Rows with conversation_id and event_ts set and event_ts in [lo, hi) (rule 1's valid rows)."""
    return events.filter(
        events.conversation_id.notnull(),
        events.event_ts.notnull(),
        events.event_ts >= ts_literal(lo),
        events.event_ts < ts_literal(hi),
    )


def duplicate_ids(events: ir.Table, present: frozenset[str], lo: datetime, hi: datetime,
                  unique: bool = False) -> ir.Table | None:
    """The event_ids carried by more than one valid row with event_ts in [lo, hi) (usually few or none),
    with the ``first`` (earliest) event_ts of each: the copy the metrics keep is there.

    Finding them costs one group-by on the id alone; the events are then deduplicated by an anti-join
    against this small table plus a group-by of the repeated rows only, instead of a group-by of every
    event carrying all its columns (that was 4x the cost of the whole report on DuckDB). ``unique``: the
    engine enforces one row per id (a primary key or unique index on the column alone), so none repeats
    and the search is skipped: the table is empty by a constant filter, which engines plan without reading
    the events (PostgreSQL, 10M events: the search took 10 s, the longest query of the report).
    """
    if "event_id" not in present:
        return None
    t = valid_in(events, lo, hi)
    if unique:
        t = t.filter(ibis.literal(False))
    # An empty id is no id, as a null one: producers that leave it blank made every such row one event
    # (found in a dirty-data audit; a CSV file reads it as null already).
    t = t.filter(t.event_id.notnull() & (t.event_id != ""))
    return (t.group_by("event_id").agg(copies=t.count(), first=t.event_ts.min())
            .filter(lambda g: g.copies > 1).select("event_id", "first"))


def valid_events(events: ir.Table, present: frozenset[str], lo: datetime, hi: datetime,
                 duplicates: ir.Table | None = None) -> ir.Table:
    """Valid events with event_ts in [lo, hi), deduplicated by event_id, invalid values nulled.

    ``duplicates`` is :func:`duplicate_ids` over [lo, hi) or a wider window (computed here if not given).
    """
    t = valid_in(events, lo, hi)
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
        cols["cost"] = ibis.ifelse(valid_cost(t.cost_usd), t.cost_usd, ibis.null("float64"))
    if "token_count" in present:
        cols["tokens"] = ibis.ifelse(valid_tokens(t.token_count), t.token_count, ibis.null("int64"))
    if "latency_ms" in present:
        cols["latency"] = ibis.ifelse(valid_latency(t.latency_ms), t.latency_ms, ibis.null("float64"))
    t = t.select(**cols)
    if "event_id" not in present:
        return t
    if duplicates is None:
        duplicates = duplicate_ids(events, present, lo, hi)
    # At-least-once ingestion repeats rows: one row per event_id. Rows whose id is not repeated (and rows
    # without an id: a null key never matches) pass the anti-join untouched; the repeated ones collapse.
    once = t.anti_join(duplicates, "event_id")
    # The kept copy is among those at the id's first event_ts: joining on it too lets Postgres find them
    # through an index on event_ts instead of scanning the window a second time.
    repeated = t.semi_join(duplicates, [t.event_id == duplicates.event_id, t.event_ts == duplicates["first"]])
    # One whole copy, never a row merged column by column from several: the earliest, and on a tie the
    # smallest column by column (nulls last, spelled out: engines differ in their default; text in byte
    # order), so every engine keeps the same one.
    engine = engine_name(events)
    order = [repeated.event_ts.asc(nulls_first=False)] + [
        byte_order(repeated[c], engine).asc(nulls_first=False) for c in t.columns if c not in ("event_id", "event_ts")]
    ranked = repeated.mutate(_copy=ibis.row_number().over(group_by="event_id", order_by=order))
    kept = ranked.filter(ranked._copy == 0).select(*t.columns)
    return once.union(kept, distinct=False)


def _outcomes(ev: ir.Table) -> dict[str, ir.Value]:
    """Per-conversation reductions over its (valid, deduplicated) events."""
    # CASE WHEN, not a boolean cast: Postgres cannot cast boolean to bigint.
    is_type = lambda name: ibis.ifelse(ev.event_type == name, 1, 0)  # noqa: E731
    aggs: dict[str, ir.Value] = {
        "start": ev.event_ts.min(),
        "last": ev.event_ts.max(),
        "resolved": is_type("resolution").max(),
        "escalated": is_type("escalation").max(),
        "errors": count_if(ev.event_type == "error"),
    }
    # Tokens and cost stay null for a conversation without any value: the period's figures sum them as 0
    # (metrics.py), and the count of conversations that have some says whether the period has any at all.
    if "tokens" in ev.columns:
        aggs["tokens"] = ev.tokens.sum()
    if "cost" in ev.columns:
        aggs["cost"] = float_sum(ev, ev.cost)
    if "latency" in ev.columns:
        aggs["latency_sum"] = float_sum(ev, ev.latency).fill_null(0.0)
        aggs["latency_n"] = ev.latency.count()
    return aggs


def cutoff(period: ir.Value, cutoffs: list[datetime]) -> ir.Value:
    """The end of the look-ahead window of a conversation of period index ``period``: its period's end
    + max_conversation_hours (rule 2); events at or after it are not part of its outcome."""
    return ibis.cases(*[(period == i, ts_literal(c)) for i, c in enumerate(cutoffs)])


def build(events: ir.Table, present: frozenset[str], period_bounds: list[datetime],
          day_bounds: list[datetime], lookaround: timedelta, duplicates: ir.Table | None = None) -> Cohort:
    """The cohort of conversations starting in [period_bounds[0], period_bounds[-1]).

    ``period_bounds`` are the UTC starts of consecutive periods plus the last end; the
    conversation's ``period`` is its index. ``day_bounds`` split the *last* period into local
    days (``day`` is the index, null for other periods). ``duplicates`` is :func:`duplicate_ids`
    over the look-around window (pass it cached; computed inline otherwise).
    """
    lo, hi = period_bounds[0], period_bounds[-1]
    if duplicates is None:
        duplicates = duplicate_ids(events, present, lo - lookaround, hi + lookaround)
    ev = valid_events(events, present, lo - lookaround, hi + lookaround, duplicates)
    conv = ev.group_by("conversation_id").agg(**_outcomes(ev))
    conv = conv.filter(conv.start >= ts_literal(lo), conv.start < ts_literal(hi))
    conv = conv.mutate(period=bucket(conv.start, period_bounds), day=bucket(conv.start, day_bounds))
    return Cohort(events=ev, conversations=conv, present=present, source=events, duplicates=duplicates,
                  window_end=hi + lookaround, cutoffs=[b + lookaround for b in period_bounds[1:]])


def overlong(cohort: Cohort, conversations: ir.Table) -> ir.Table:
    """The conversations (of ``conversations``, the materialized cohort) with events past their own
    window: one scan reads every period's conversations up to the *last* period's end + the window,
    so a conversation of an earlier period that lasts longer than the window has events to drop."""
    c = conversations
    return c.filter(c["last"] >= cutoff(c.period, cohort.cutoffs))


def trimmed(cohort: Cohort, conversations: ir.Table, long: ir.Table, fixed: ir.Table | None = None) -> ir.Table:
    """``conversations`` with the rows of ``long`` (see :func:`overlong`, usually none) recomputed from
    their events before their own cutoff only (``fixed``: :func:`recomputed`, kept elsewhere; computed here
    when not given)."""
    keys = long.select("conversation_id", "period", "day")
    if fixed is None:
        fixed = recomputed(cohort, keys)
    kept = conversations.anti_join(keys, "conversation_id")
    # Cast to the materialized table's types: an engine may read its own table back with other ones
    # (Spark: timestamp without zone, int for the 0/1 flags).
    schema = kept.schema()
    return kept.union(fixed.select(*[fixed[c].cast(schema[c]).name(c) for c in kept.columns]), distinct=False)


def recomputed(cohort: Cohort, keys: ir.Table) -> ir.Table:
    """The conversations of ``keys`` (conversation_id, period, day) from their events before their own cutoff."""
    ev = cohort.events.inner_join(keys, "conversation_id")
    ev = ev.filter(ev.event_ts < cutoff(ev.period, cohort.cutoffs))
    return ev.group_by(["conversation_id", "period", "day"]).agg(**_outcomes(ev))


def recent_events(cohort: Cohort, since: datetime) -> ir.Table:
    """The cohort's events from ``since`` on, to the end of its window (what :func:`conversation_events`
    reads with ``since``)."""
    if cohort.source is None or cohort.window_end is None:
        ev = cohort.events.filter(cohort.events.event_ts >= ts_literal(since))
    else:
        ev = valid_events(cohort.source, cohort.present, since, cohort.window_end, cohort.duplicates)
    return ev.drop("event_id") if "event_id" in ev.columns else ev


def conversation_events(cohort: Cohort, conversations: ir.Table, since: datetime | None = None) -> ir.Table:
    """Events of the given conversations, with the conversation's start and period.

    The event's own agent is ``event_agent_id``. ``since``: none of these conversations starts
    before it, so only events from then on are read (the events of the last two periods'
    conversations, not of the whole trend window).
    """
    conv = conversations.select("conversation_id", "start", "period")
    ev = cohort.events if since is None else recent_events(cohort, since)
    if "agent_id" in ev.columns:
        ev = ev.rename(event_agent_id="agent_id")
    if "event_id" in ev.columns:
        ev = ev.drop("event_id")  # deduplicated already; not carrying it makes the materialized table smaller
    ev = ev.inner_join(conv, "conversation_id")
    if cohort.cutoffs:
        ev = ev.filter(ev.event_ts < cutoff(ev.period, cohort.cutoffs))
    return ev


def conversation_agents(conversation_events: ir.Table) -> ir.Table:
    """The agent of each conversation: the agent_id of its first event (rule 4); if several events
    share the first instant, the smallest of their agent_ids, so every engine agrees.

    A filter on the start plus a plain min(), not argmin() over every event: Ibis compiles argmin to an
    ordered ARRAY_AGG on Postgres, which sorted every event of the trend window and tripled the run time.
    On Postgres min() follows the collation, which for these (materialized) rows is the database's default
    (en_US puts "billing-bot" before "Support-bot"): there the first-instant rows (about one per
    conversation) are ordered by their UTF-8 bytes instead; PostgreSQL has no min(bytea).
    """
    ev = conversation_events
    first = ev.filter(ev.event_ts == ev.start)
    agent = first.event_agent_id
    if engine_name(ev) == "postgres":
        smallest = agent.argmin(byte_order(agent, "postgres"), where=agent.notnull())
    else:
        smallest = agent.min()
    return first.group_by("conversation_id").agg(agent_id=smallest)


def agent_matches(agent: ir.Value, entries: list[str]) -> ir.Value:
    """Whether ``agent`` is one of ``entries``, or begins with an entry that ends in ``*``. A prefix is
    compared as a substring, not with LIKE, where ``_`` and ``%`` in an agent id would be wildcards."""
    exact = [e for e in entries if not e.endswith("*")]
    conds = [agent.isin(exact)] if exact else []
    conds += [agent.substr(0, len(e) - 1) == e[:-1] for e in entries if e.endswith("*")]
    out = conds[0]
    for cond in conds[1:]:
        out = out | cond
    return out.fill_null(False)


def of_agents(conversations: ir.Table, agents: ir.Table, entries: list[str]) -> ir.Table:
    """The ``conversations`` whose agent (``agents``: :func:`conversation_agents`) matches ``entries``."""
    return conversations.semi_join(agents.filter(agent_matches(agents.agent_id, entries)), "conversation_id")
