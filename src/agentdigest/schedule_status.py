"""What the schedule's state is, as two commands show it: ``check --missed`` (the late reports, read from the ledger
and the archive; 3 when the ledger cannot be read) and ``history --next`` (each report's next run, and the period it
delivers). Both only read; sending is ``run --due``'s and the scheduler's (schedule.py, daemon.py).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from . import due
from .config import Config, ReportConfig
from .errors import AgentDigestError, InputError
from .periods import Period, last_complete


def check_missed(config: Config, *, now: datetime | None = None, console: Console | None = None,
                 ledger: Any = None) -> int:
    """``agentdigest check --missed``: exit 1 and list the reports whose due period is late, else 0; 3 when the
    ledger cannot be reached or read (:class:`LedgerUnread`)."""
    from .ledger_schema import LedgerError

    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    console = console or Console(highlight=False)
    own = ledger is None
    try:
        if ledger is None:
            from .ledger import Ledger, open_existing

            # No ledger yet means nothing was sent; an empty in-memory one says so without creating a file.
            ledger = open_existing(config.ledger.url) or Ledger("sqlite://")
        try:
            done = due.done_checker(ledger, Path(config.archive.path), config, renamed=True)
            late = [item for report in config.reports for item in due.late_periods(config, report, now, done, ledger)]
        finally:
            if own:
                ledger.close()
    except LedgerError as exc:
        if exc.exit_code != 1:  # a ledger URL the driver refuses is a config error (2)
            raise
        raise LedgerUnread(str(exc)) from exc
    if not late:
        console.print(f"no report is late at {now:%Y-%m-%d %H:%M:%SZ}", markup=False)
        return 0
    table = Table(title=f"Late reports at {now:%Y-%m-%d %H:%M:%SZ}", title_justify="left")
    # Both times in the report's time zone, named: "due at" was local and "late since" UTC in one table
    # (found by a new user).
    for column in ("report", "period", "due at (report's time)", "late since (report's time)"):
        table.add_column(column)
    for item in late:
        tz = item.period.tz
        table.add_row(item.report_id, item.period.key, _local(item.due_at, tz), _local(item.deadline, tz))
    console.print(table)
    return 1


class LedgerUnread(AgentDigestError):
    """``check --missed`` could not read the ledger, so it cannot tell whether a report is late: exit 3, as for an
    input that could not be read, not 1, which says a report is late (found in an operator review: a monitoring
    script could not tell the two apart)."""

    exit_code = 3


def _local(instant: datetime, tz: ZoneInfo) -> str:
    """``2026-11-30 09:00 CET (Europe/Berlin)``: the zone's abbreviation alone can be ambiguous (CST)."""
    local = instant.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M %Z} ({tz.key})"


def show_next(config: Config, *, report_id: str | None = None, now: datetime | None = None,
              console: Console | None = None) -> int:
    """``agentdigest history --next [--report ID]``: each report's next run, in its timezone and in UTC. Found in
    an exit-code audit: --report was ignored with --next (every report listed, an unknown one exit 0)."""
    reports = [r for r in config.reports if report_id is None or r.id == report_id]
    if not reports:
        known = ", ".join(r.id for r in config.reports) or "none"
        raise InputError(f"--report: no report {report_id!r} in the config (reports: {known})")
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    console = console or Console(highlight=False)
    table = Table(title="Next runs", title_justify="left")
    for column in ("report", "schedule", "timezone", "next run (local)", "next run (UTC)", "delivers"):
        table.add_column(column)
    from .run_records import existing_ledger

    ledger = existing_ledger(config)
    done = due.done_checker(ledger, config.archive.path, config) if ledger is not None else None
    for report in reports:
        if not report.enabled:
            table.add_row(report.id, report.schedule, report.timezone, "paused (enabled = false)", "paused", "")
            continue
        fire = due.next_fire(report, now)
        if fire is None:
            table.add_row(report.id, report.schedule, report.timezone, "never", "never", "")
            continue
        local = fire.astimezone(ZoneInfo(report.timezone))
        period = last_complete(report.period, fire, report.timezone)
        # Found in a README audit: a period a manual run sent already was said to be the one the run delivers.
        sent = " (sent already: the run skips it)" if done is not None and _safely(done, report, period) else ""
        if ledger is not None and not sent and _safely(lambda r, p: p.key in ledger.before_data_periods(r.id),
                                                       report, period):
            # a cron firing more often than the period (a week report every day): a pass left the week out
            sent = " (ends before the report's first event: the run skips it)"
        table.add_row(report.id, report.schedule, report.timezone, f"{local:%a %Y-%m-%d %H:%M %Z}",
                      f"{fire:%Y-%m-%d %H:%MZ}", period.key + sent)
    if ledger is not None:
        ledger.close()
    console.print(table)
    return 0


def _safely(done: Any, report: ReportConfig, period: Period) -> bool:
    try:
        return bool(done(report, period))
    except Exception:  # noqa: BLE001 - a ledger that fails midway: said nothing of, as without one
        return False
