"""Scheduled runs: ``run --due`` (and ``schedule``, in daemon.py; ``check --missed`` and ``history --next`` are in
schedule_status.py).

``run --due`` runs, for every report, the periods :func:`agentdigest.due.due_periods` names (the
latest due period and up to ``catch_up`` before it, each unless already sent) and exits. Like the
scheduler's retries it does not try again a target refused for good in the period under the same
settings (refusals.py): it says so, naming ``run REPORT --period KEY``, which tries every target. It is
safe to repeat and to race: a period already sent is not even recomputed, and the ledger's claims
let exactly one of several racing processes send each (report, period, channel, recipient).

Every decision is logged on the ``agentdigest.schedule`` logger with structured fields
(``event`` = due, skipped_sent, sent, claimed_elsewhere, failed, error, ...), which the daemon's
``--log-format json`` turns into one JSON object per line.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from . import due
from .alarm_resolved import resolve_pending
from .alarms import Alarm, notify, span
from .config import Config, ReportConfig, command
from .errors import AgentDigestError, first_line, interruption
from .logs import IN_OUTCOME
from .periods import Period

if TYPE_CHECKING:  # imported when a pass runs: sources (Ibis) doubled the import time of every command
    from .pass_source import PassSource

log = logging.getLogger("agentdigest.schedule")


class _AsDebug:
    """A logger whose every line is DEBUG: the pass logs each delivery as a decision (below), so the
    delivery's own lines would print every error twice; they stay for --verbose debugging."""

    def __init__(self, logger: logging.Logger):
        self._logger = logger

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._logger.debug(msg, *args, **kwargs)

    info = warning = error = debug


_DELIVERY_DETAIL = _AsDebug(logging.getLogger("agentdigest.delivery"))


def decision(event: str, message: str, *args: Any, level: int = logging.INFO, **fields: Any) -> None:
    """Log one scheduling decision with its structured fields."""
    log.log(level, message, *args, extra={"event": event, **{k: v for k, v in fields.items() if v is not None}})


@dataclass
class PeriodRun:
    """What one due period of one report came to."""

    report_id: str
    period: Period
    deliveries: list[Any] = field(default_factory=list)  # delivery.DeliveryResult
    error: AgentDigestError | Exception | None = None
    skipped: str | None = None  # why nothing was done (sent meanwhile by another machine)

    @property
    def failed(self) -> bool:
        return self.error is not None or any(d.state == "failed" for d in self.deliveries)

    @property
    def claimed_elsewhere(self) -> bool:
        return any(d.state == "claimed_elsewhere" for d in self.deliveries)

    @property
    def failed_for_good(self) -> bool:
        """It failed, and only by permanent delivery failures (a 550 recipient, Slack's channel_not_found):
        trying again before something changes would fail the same way."""
        return (self.failed and self.error is None and not self.claimed_elsewhere
                and not any(d.state == "failed" and d.retryable for d in self.deliveries))


@dataclass
class PassResult:
    """One pass over the reports: every period run, and what was already done."""

    runs: list[PeriodRun] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (report_id, period_key) already sent
    #: (report_id, period_key, later key) due but older than the later period already sent, so not backfilled
    #: (catch_up = 0)
    older: list[tuple[str, str, str]] = field(default_factory=list)
    #: (report, periods) that came due while no pass ran, before the catch-up window: not sent (due.passed_over)
    passed_over: list[tuple[ReportConfig, list[Period]]] = field(default_factory=list)
    paused: list[str] = field(default_factory=list)  # report ids paused with enabled = false: not run
    #: (report_id, the line said) due periods left out, ending before the report's first event (_before_data)
    before_data: list[tuple[str, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        codes = [getattr(r.error, "exit_code", 1) if r.error is not None else 1 for r in self.runs if r.failed]
        return max(codes, default=0)


def run_pass(config: Config, reports: Iterable[ReportConfig], now: datetime, *, ledger: Any,
             archive: Path | None = None, formats: set[str] | None = None, dry_run: bool = False,
             stop: threading.Event | None = None, owner: str | None = None, skip_refused: bool = False,
             said: set[tuple[str, str, str, int]] | None = None,
             alarms_said: set[tuple[str, ...]] | None = None, quiet: bool = False) -> PassResult:
    """Run every due, unsent period of ``reports`` at ``now``, oldest first; one report's error spares the others.

    ``skip_refused``: the pass is the scheduler's retry of a failed one, or ``run --due``; a target refused for
    good in a period (its last failure there permanent, under the same settings) is not tried again, only the
    others (see Worker in report_worker.py, and refusals.py). A report paused (``enabled = false``) is not run.

    ``said`` (the scheduler's, for the life of its process): the sets of passed-over periods already logged, each
    (report, first key, last key, count); one in it is not logged again, one logged is added. ``alarms_said``: the
    same for alarm targets not tried again (alarms.notify). ``quiet`` (``run --due --quiet``): a target not tried again,
    refused for good before, is an INFO line, not an ERROR one: the run that was refused said it."""
    from .runner import run_reports

    reports = list(reports)
    archive = Path(archive or config.archive.path)
    done = due.done_checker(ledger, archive, config)
    result = PassResult()
    from .pass_source import PassSource

    pass_source = PassSource(config)
    try:
        for report in reports:
            if not report.enabled:
                result.paused.append(report.id)
                decision("paused", "%s: paused (enabled = false); not run", report.id, report=report.id)
                continue
            latest = due.latest_due(report, now)
            if latest is None:
                decision("not_due", "%s: its schedule %r has not fired yet", report.id, report.schedule, report=report.id)
                continue
            todo = due.due_periods(report, now, ledger, archive=archive, is_done=done)
            early = _before_data(config, report, todo, latest, result, pass_source, ledger, archive=archive,
                                 dry_run=dry_run, owner=owner)
            todo = [p for p in todo if p not in early]
            undone = latest not in todo and not done(report, latest)
            if undone and (latest in early or latest.key in ledger.before_data_periods(report.id)):
                pass  # left out as ending before the report's first event: said when it was (_before_data)
            elif undone:
                # Found in a README audit: a run of this week before its schedule, then run --due, read "was
                # the schedule changed?", naming neither the cause nor the period sent.
                later = due.later_sent(report, latest, now, ledger)
                later_key = later.key if later else "?"
                result.older.append((report.id, latest.key, later_key))
                decision("skipped_older", "%s %s: a later period (%s) was sent already, by a run before its "
                         "schedule or under another schedule; not backfilled (catch_up = 0)", report.id, latest.key,
                         later_key, report=report.id, period=latest.key)
            elif latest not in todo:
                result.skipped.append((report.id, latest.key))
                decision("skipped_sent", "%s %s: %s, skipped", report.id, latest.key, _done_word(report),
                         report=report.id, period=latest.key)
            if passed := due.passed_over(report, latest, now, ledger):
                result.passed_over.append((report, passed))
                # Found in an operator audit: while every channel failed the latest week, the line came again at
                # every pass (the retries' and each fire's), until the week went out
                told = (report.id, passed[0].key, passed[-1].key, len(passed))
                if said is None or told not in said:
                    decision("passed_over", "%s: %s came due while no pass ran; not sent (catch_up = %d)", report.id,
                             span(passed), report.catch_up, level=logging.WARNING, report=report.id,
                             periods=[p.key for p in passed[:366]])  # the log line names a year at most
                if said is not None:
                    said.add(told)
            for period in todo:
                if stop is not None and stop.is_set():
                    decision("stopping", "%s %s: not started, shutting down", report.id, period.key,
                             report=report.id, period=period.key)
                    return result
                decision("due", "%s %s: due since %s, running", report.id, period.key,
                         due.due_at(report, period), report=report.id, period=period.key)
                run = PeriodRun(report.id, period)
                result.runs.append(run)
                try:
                    try:
                        source = pass_source.shared()
                    except Exception as exc:
                        if not dry_run:
                            from .run_records import note_failed

                            note_failed(ledger, report.id, period.key, exc)
                        raise
                    outcome = run_reports(config, [report], now=now, periods={report.id: [period]}, dry_run=dry_run,
                                          formats=formats, archive=archive, trigger="due", ledger=ledger,
                                          source=source, delivery_log=_DELIVERY_DETAIL, stop=stop,
                                          skip_refused=skip_refused)[0]
                    if outcome.stopped:
                        decision("stopping", "%s %s: computed, not sent: shutting down; the next start sends it",
                                 report.id, period.key, report=report.id, period=period.key)
                        run.skipped = "computed, not sent: the scheduler was shutting down"
                        return result
                    run.deliveries, run.skipped = list(outcome.deliveries), outcome.skipped
                    if run.skipped:
                        decision("skipped_sent", "%s %s: %s", report.id, period.key, run.skipped,
                                 report=report.id, period=period.key)
                except KeyboardInterrupt as exc:  # the stop ended a wait (interrupts.pausing): a retry's, a lock's
                    if stop is None or not stop.is_set():
                        raise
                    run.skipped = "interrupted while waiting: the scheduler was shutting down"
                    decision("stopping", "%s %s: %s during %s; the targets not sent are recorded failed, and the "
                             "next start (or `run --due`) sends them", report.id, period.key, interruption(exc),
                             getattr(exc, "during", None) or "a wait", report=report.id, period=period.key)
                    return result
                except Exception as exc:  # noqa: BLE001 - logged, counted, and the next report still runs
                    run.error = exc
                    decision("error", "%s %s: %s", report.id, period.key, first_line(exc), level=logging.ERROR,
                             report=report.id, period=period.key, error=first_line(exc), **IN_OUTCOME)
                    if not isinstance(exc, AgentDigestError):  # a bug: keep its traceback for --verbose and the daemon
                        log.info("traceback of the error above", exc_info=True)
                    continue
                for d in run.deliveries:
                    level = logging.ERROR if d.state == "failed" and not (quiet and d.refused_before) else logging.INFO
                    decision(d.state, "%s %s -> %s%s: %s", report.id, period.key, d.channel,
                             f" {d.recipient}" if d.recipient else "", d.error or d.state, level=level,
                             report=report.id, period=period.key, channel=d.channel,
                             recipient=d.recipient or None, error=d.error, **IN_OUTCOME)
    finally:
        pass_source.close()
    if not dry_run:
        try:
            send_alarms(config, result, now, ledger=ledger, archive=archive, owner=owner, reports=reports,
                        said=alarms_said)
        except Exception as exc:  # noqa: BLE001 - the deliveries stand; the alarm's failure is logged
            decision("alarm_failed", "alarms: %s", first_line(exc), level=logging.ERROR, error=first_line(exc))
    return result


def _before_data(config: Config, report: ReportConfig, todo: list[Period], latest: Period, result: PassResult,
                 pass_source: PassSource, ledger: Any, *, archive: Path, dry_run: bool,
                 owner: str | None) -> list[Period]:
    """The periods of ``todo`` (due, oldest first) that end at or before the report's first event, left out: not
    computed, not sent; said in one line, and recorded in the ledger (a ``before_data`` run) so that no later pass,
    late alarm or ``check --missed`` takes them up again. Found in an operator review: a new deployment with
    catch_up = 4 sent its readers three "No events arrived" reports of the days before its data began.

    One query per report (PassSource.first_event), asked with the oldest period's end: an event before it (the
    usual answer, read at once) leaves nothing out. A source without any event (of the report's agents) leaves
    nothing out: its "No events arrived" says a pipeline is broken. A source that cannot be read leaves nothing out
    either: the periods' runs then fail and are recorded as they were before this check.

    A period whose archived report the pass delivers is not asked about: it was computed, its delivery failed or
    went to some channels, and a relay's outage costs each `run --due` a connection attempt, no query of the
    source (runner._run_one; not a mere archived report: a `--dry-run` preview of the period is computed again)."""
    from .run_records import failed_archived, partly_sent

    fresh = [p for p in todo if not partly_sent(ledger, archive, report.id, p.key)
             and not failed_archived(config, report, p, archive, ledger)]
    if not fresh:
        return []
    try:
        first = pass_source.first_event(report, fresh[0].end_utc)
    except Exception as exc:  # noqa: BLE001 - said by the periods' runs, which fail the same way
        log.debug("%s: where the data begins is unknown (%s); no period left out", report.id, first_line(exc))
        return []
    early = [p for p in fresh if first is not None and p.end_utc <= first]
    if not early:
        return []
    from .run_request import left_before_data

    said = left_before_data(config, report, early, first, latest)
    result.before_data.append((report.id, said))
    decision("before_data", "%s", said, report=report.id, periods=[p.key for p in early])
    if not dry_run:
        from .owners import owner_id

        for period in early:
            ledger.record_before_data(report.id, period.key, owner or owner_id(), said)
    return early


def send_alarms(config: Config, result: PassResult | None, now: datetime, *, ledger: Any, archive: Path,
                owner: str | None, reports: Iterable[ReportConfig], said: set[tuple[str, ...]] | None = None) -> None:
    """Tell ``[alarms] channel`` about failed deliveries of this pass, the periods it found passed over, and late
    periods of ``reports``; ``said``: the scheduler's alarm targets not tried again that it logged (alarms.notify)."""
    if not config.alarms.channel:
        return
    from .owners import owner_id

    owner = owner or owner_id()
    for run in result.runs if result else []:
        if run.failed:
            failures = tuple((d.channel, d.recipient, d.error or "failed") for d in run.deliveries if d.state == "failed")
            if run.error is not None:
                failures += (("(run)", "", first_line(run.error)),)
            notify(config, ledger, Alarm("failed", run.report_id, run.period, failures=failures), owner=owner,
                   archive=archive, said=said)
    for report, passed in result.passed_over if result else []:
        # Said once, to the operator who watches only the alarm channel (an operator audit: they were in the log and
        # run --due's output only); its ledger rows, under the newest period passed over, keep it from going again
        notify(config, ledger, Alarm("passed_over", report.id, passed[-1], passed=tuple(passed),
                                     catch_up=report.catch_up), owner=owner, archive=archive, said=said)
    done = due.done_checker(ledger, archive, config, renamed=True)
    reports = list(reports)
    for report in reports:
        for late in due.late_periods(config, report, now, done, ledger):
            notify(config, ledger, Alarm("late", report.id, late.period, late.due_at, late.deadline), owner=owner,
                   archive=archive, said=said)
    # periods alarmed and delivered since, whenever (by another path, or their notice failed; not one this pass ran:
    # its run sent the notice, or just failed to), found from the ledger's alarm rows: alarm_resolved.py
    ran = {(run.report_id, run.period.key) for run in (result.runs if result else [])}
    resolve_pending(config, ledger, reports, now=now, owner=owner, archive=archive, is_done=done, skip=ran)


def run_due(config: Config, reports: list[ReportConfig], *, now: datetime | None = None, dry_run: bool = False,
            formats: set[str] | None = None, archive: Path | None = None, console: Console | None = None,
            ledger: Any = None, quiet: bool = False) -> int:
    """``agentdigest run --due``: one pass over the due periods; 0 done, 1 a delivery failed. ``quiet`` leaves out the
    lines that say nothing was to be done (already sent, paused, not yet due, an older period not backfilled), and a
    period's targets sent before or refused for good before (not tried again; the exit code still says the period is
    not delivered): cron mails any output, so every 5 minutes "already sent" was a mail (an operator review)."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    console = console or Console(highlight=False)
    if not dry_run:  # a --format a channel cannot send is refused before any report is computed
        from .preflight import check_formats

        for report in reports:
            if report.channels and report.enabled:  # a paused report is not run: its channels ask nothing of --format
                check_formats(config, report, formats)
    own = ledger is None
    if ledger is None and dry_run:
        from .ledger import Ledger, open_existing

        # A dry run writes nothing: the ledger is read if it exists (a ledger that cannot be read fails as for a
        # run: the periods due depend on it), else an empty one in memory says nothing was sent (found in a
        # review: `run --due --dry-run` created the ledger's file, where `run --dry-run` only read one).
        ledger = open_existing(config.ledger.url, read_only=True) or Ledger("sqlite://")
    elif ledger is None:
        from .run_records import open_ledger

        ledger = open_ledger(config)
    try:
        # Like the scheduler's retry: cron runs it again and again, and a target refused for good (a 550 recipient)
        # would be refused the same way each time (a delivery audit); a changed config tries it again (refusals.py)
        result = run_pass(config, reports, now, ledger=ledger, archive=archive, formats=formats, dry_run=dry_run,
                          skip_refused=True, quiet=quiet)
    finally:
        if own:
            ledger.close()
    for report_id in [] if quiet else result.paused:
        console.print(f"{report_id}: paused (enabled = false); not run", markup=False)
    by_id = {report.id: report for report in reports}
    for report_id, key in [] if quiet else result.skipped:
        console.print(f"{report_id} {key}: {_done_word(by_id[report_id])}", markup=False)
    for report, passed in result.passed_over:
        console.print(f"{report.id}: {span(passed)} came due while no pass ran and {'is' if len(passed) == 1 else 'are'} "
                      f"not sent (catch_up = {report.catch_up}); to send one: "
                      f"{command(config, f'run {report.id} --period {passed[0].key}')}", markup=False, soft_wrap=True)
    for _, said in result.before_data:  # said once: a later pass does not take these periods up again
        console.print(said, markup=False, soft_wrap=True)
    for report_id, key, later in [] if quiet else result.older:  # said, not "nothing is due yet" (a scheduling audit)
        console.print(f"{report_id} {key}: not sent, a later period ({later}) went out already, by a run before "
                      f"its schedule or under another schedule; catch_up = 1 would send it", markup=False,
                      soft_wrap=True)
    for run in result.runs:
        if run.error is not None:
            console.print(f"{run.report_id} {run.period.key}: error: {first_line(run.error)}", markup=False,
                          soft_wrap=True)
        elif run.skipped and not quiet:  # "archived" said nothing was kept here (found in a re-check)
            console.print(f"{run.report_id} {run.period.key}: {run.skipped}", markup=False, soft_wrap=True)
        elif not run.deliveries and not run.skipped:
            console.print(f"{run.report_id} {run.period.key}: {'archived (dry run)' if dry_run else 'archived'}",
                          markup=False)
        for d in run.deliveries:
            if quiet and (d.refused_before is not None or d.state == "skipped_sent"):
                continue  # said by the run that sent it or was refused (an operator review: cron mailed it each time)
            where = d.channel + (f" {d.recipient}" if d.recipient else "")
            if d.refused_before is not None:
                again = command(config, f"run {run.report_id} --period {run.period.key}")
                console.print(f"{run.report_id} {run.period.key} -> {where}: not tried again, refused for good before "
                              f"({d.refused_before}); `{again}` tries it again", markup=False, soft_wrap=True)
                continue
            console.print(f"{run.report_id} {run.period.key} -> {where}: {d.state}"
                          f"{': ' + d.error if d.error else ''}", markup=False)
    if not quiet and not result.runs and not result.skipped and not result.older and not result.paused \
            and not result.before_data:
        console.print("nothing is due yet", markup=False)
    return result.exit_code


def _done_word(report: ReportConfig) -> str:
    """What a period done already is: sent, or for a report without channels (found in an operator audit: it read
    "already sent", with nothing to send it to) archived."""
    return "already sent" if report.channels else "already archived (the report has no channels)"
