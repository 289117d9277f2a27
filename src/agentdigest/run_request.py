"""What a run is asked for: the reports, their periods and the formats, and the periods refused before
anything is computed (one that has not begun; one that has not ended, for a delivery; one that ends before
the source's first event, for a delivery).
"""

from __future__ import annotations

from datetime import datetime, timezone

from .archive import ARTIFACTS
from .cohort import agent_matches, ts_literal
from .config import Config, ReportConfig, command
from .errors import InputError
from .periods import Period, key_kind, last_complete, parse_period
from .queries import rows
from .sources import ConversionError, QueryFailed, Source

FORMATS = tuple(ARTIFACTS)  # json, html, pdf, txt, eml, slack


def parse_formats(value: str | None) -> set[str] | None:
    """``"json,html"`` -> {"json", "html"}; None means every format (an empty list is refused)."""
    if value is None:
        return None
    formats = {f.strip().lower() for f in value.split(",") if f.strip()}
    unknown = formats - set(FORMATS)
    if not formats:  # found in a config audit: --format "," rendered nothing and said so with exit 0
        raise InputError(f"--format {value!r} names no format (expected a list of {', '.join(FORMATS)})")
    if unknown:
        raise InputError(f"--format: unknown format(s) {', '.join(sorted(unknown))} (expected a list of {', '.join(FORMATS)})")
    return formats


def select_reports(config: Config, report_ids: list[str] | None) -> list[ReportConfig]:
    if not report_ids:
        return list(config.reports)
    return [config.report(rid) for rid in dict.fromkeys(report_ids)]  # a report named twice runs once


def period_for(report: ReportConfig, key: str | None, now: datetime) -> Period:
    """The period named by ``key``, or the last complete one at ``now``."""
    if key:
        return parse_period(report.period, key, report.timezone)
    return last_complete(report.period, now, report.timezone)


def given_period(config: Config, reports: list[ReportConfig], report: ReportConfig, key: str | None,
                  now: datetime) -> Period:
    """:func:`period_for`, naming the report when ``key`` is another kind's (found by a new user: with a
    week and a day report, `run --period 2026-W47` said only "not a day key")."""
    try:
        return period_for(report, key, now)
    except InputError as exc:
        kind = key_kind(key or "")
        if kind is None or kind == report.period:
            raise
        if not any(r.period == kind for r in config.reports):
            # Found by a user with weekly reports only: `--period 2026-10` sent them to "name the month
            # reports", of which the config has none. Said before the key is read as that kind: `2026-48`
            # for week 48 was "names no month: months are 01 to 12" (a new user), never naming 2026-W48.
            raise InputError(f"{exc}; it is written as a {kind} key, and no report in "
                             f"{config.path or 'the config'} is a {kind} report") from None
        # A key of that shape that names no period (2026-13) is said so: the hint below sent the user to
        # run the month reports with it, which then failed (a scheduling audit).
        parse_period(kind, key or "", "UTC")
        # Those of the run, else the config's: `run weekly-exec --period 2026-10` was told "run REPORT_ID"
        # though the config names the month reports (found by a helper's review).
        fitting = ([r.id for r in reports if r.period == kind]
                   or [r.id for r in config.reports if r.period == kind])
        example = command(config, f"run {' '.join(fitting)} --period {key}")
        raise InputError(f"report {report.id!r} is a {report.period} report: {exc}; --period applies to every "
                         f"report run, so name the {kind} reports to run: {example}") from None


def refuse_unbegun(report: ReportConfig, period: Period, now: datetime) -> None:
    """A period that has not begun has no events: its "report" said "data completeness unknown" and
    "-100% over the last 8 weeks" (found by a new user). Refused for previews too; one that has begun
    may be previewed (:func:`refuse_unfinished`)."""
    if period.start_utc > now:
        raise InputError(f"{report.id} {period.key} has not ended yet, nor even begun: it starts "
                         f"{period.start:%Y-%m-%d %H:%M} {report.timezone}; there is nothing to report before "
                         f"then, not even with --dry-run (without --period a run takes the last complete "
                         f"{report.period})")


def refuse_unfinished(report: ReportConfig, period: Period, now: datetime) -> None:
    """A period that has not ended cannot be delivered as that period's report: its partial figures
    would be recorded as sent, and the real report, due after the period, would never go out."""
    if report.channels and period.end_utc > now:
        raise InputError(f"{report.id} {period.key} has not ended yet (it ends {period.end:%Y-%m-%d %H:%M} "
                         f"{report.timezone}); its report would be sent as the period's and the complete one "
                         f"never: use --dry-run to preview it, or --test-to to send yourself a test")


def data_begins_after(source: Source, end: datetime, agents: tuple[str, ...] | list[str] = ()) -> datetime | None:
    """The source's first valid event (UTC) when none is before ``end``; None when one is, or when the source
    has none at all (an empty source's report says "No events arrived", as `check` warns). Valid as the report
    counts events: a conversation_id and an event_ts. The first query stops at the first event before ``end``
    (the usual answer, read at once); only a period before the data reads the whole column for its minimum.

    ``agents`` (a report's): the first event of those agents, an event whose agent_id is one of them. A report of
    some agents counts the conversations whose first event is theirs, so no period it counts anything in ends
    before it (found in a scheduling review: a report of an agent deployed in November was sent "No events
    arrived" for every week since the source began). Agents matching no event: None, as an empty source."""
    ev = source.events
    valid = ev.filter(ev.conversation_id.notnull() & ev.event_ts.notnull())
    if agents and "agent_id" in ev.columns:
        valid = valid.filter(agent_matches(valid.agent_id, list(agents)))
    try:
        with source.transaction():
            if rows(valid.filter(valid.event_ts < ts_literal(end)).select("event_ts").limit(1)):
                return None
            first = rows(valid.agg(first=valid.event_ts.min()))[0]["first"]
    except ConversionError as exc:
        raise source.conversion_error(exc) from None
    except QueryFailed as exc:
        raise source.query_failed(exc) from exc
    if not isinstance(first, datetime):
        return None
    return first.replace(tzinfo=timezone.utc) if first.tzinfo is None else first.astimezone(timezone.utc)


def before_data(report: ReportConfig, period: Period, first: datetime, now: datetime, *, preview: bool) -> str:
    """What is said of an explicit ``--period`` that ends before the source's ``first`` event: refused for a
    delivery (an InputError's text, naming the report), a note on a dry run or a test (after the report's id
    and period). Found in an operator review: `--period 2025-W48` for 2026-W48 sent executives a report of
    zeros ("No events arrived") and exited 0."""
    said = (f"ends before {first_event_of(report)} ({period.local(first):%Y-%m-%d %H:%M} {report.timezone}), so "
            f"it has no events to report")
    if preview:
        return f"{said}; a run that delivers refuses it and sends nothing"
    latest = last_complete(report.period, now, report.timezone)
    return (f"{report.id} {period.key} {said}: nothing was run (a mistyped key? without --period the run takes "
            f"the last complete {report.period}, {latest.key})")


def first_event_of(report: ReportConfig) -> str:
    """What :func:`data_begins_after` finds for ``report``: the source's first event, or its agents' first."""
    if not report.agents:
        return "the source's first event"
    return f"the first event of its agents ({', '.join(report.agents)})"


def left_before_data(config: Config, report: ReportConfig, periods: list[Period], first: datetime,
                     latest: Period) -> str:
    """The scheduler's line for the due ``periods`` (oldest first) it leaves out, ending before the report's
    ``first`` event (UTC); ``latest``, the latest due period, is said to be history when among them."""
    keys = [p.key for p in periods]
    whole = all(a.next() == b for a, b in zip(periods, periods[1:]))
    named = keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}" if whole else ", ".join(keys)
    said = (f"{report.id}: {named} {'ends' if len(keys) == 1 else 'end'} before {first_event_of(report)} "
            f"({periods[0].local(first):%Y-%m-%d %H:%M} {report.timezone}); not sent, now or by a later pass")
    if latest in periods:
        said += f" (the data begins after the latest due {report.period}, {latest.key}: the next one due is sent)"
    return said + (f"; `{command(config, f'run {report.id} --period {keys[-1]}')}` checks again and sends it if its "
                   f"events arrived since")
