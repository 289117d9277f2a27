"""One run of one or more reports: compute -> render -> archive -> deliver.

The state machine of a report run: computed, rendered, archived, then each channel delivered
or failed. Artifacts are on disk before any channel is tried, so nothing is lost to a failed
delivery (``agentdigest resend`` re-delivers from the archive).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .archive import artifact_names, period_lock, preview_root, report_dir, write_artifacts
from .compute import compute_report
from .config import Config, EmailChannel, ReportConfig, command
from .errors import InputError, first_line
from .owners import owner_id
from .periods import Period
from .report import ReportData
from .run_records import (existing_ledger, failed_archived, note_failed, open_ledger, partly_sent, record_stop,
                          restore_sends, stopped_run, was_delivered)
from .run_request import before_data, data_begins_after, given_period, refuse_unbegun, refuse_unfinished
from .run_source import RunSource, note_unread
from .sources import Source

log = logging.getLogger("agentdigest")


@dataclass
class RunOutcome:
    """What happened to one report for one period."""

    report_id: str
    period_key: str
    archive_dir: Path | None = None
    data: ReportData | None = None
    files: list[str] = field(default_factory=list)
    deliveries: list[Any] = field(default_factory=list)  # delivery.DeliveryResult
    error: str | None = None
    #: why nothing was computed (the period was already sent to every channel)
    skipped: str | None = None
    #: why nothing was computed but the archive was delivered (the period was sent to some channels)
    resumed: str | None = None
    #: why this dry run or test was archived apart (the period's archive keeps what was sent)
    preview: str | None = None
    #: computed, then neither archived nor delivered: the scheduler was stopping (the next start runs it)
    stopped: bool = False
    exception: Exception | None = field(default=None, repr=False)  # what ended it (run_reports' keep_going)

    @property
    def failed(self) -> bool:
        return self.error is not None or any(getattr(d, "state", "") == "failed" for d in self.deliveries)

    @property
    def exit_code(self) -> int:
        """0 done, 1 a delivery failed, else the exit code of the error that ended the report's run."""
        if self.exception is not None:
            return getattr(self.exception, "exit_code", 1)
        return 1 if self.failed else 0


def _addressing(config: Config, report: ReportConfig) -> Any:
    from .render.email import EmailAddressing

    for name in report.channels:
        ch = config.channels[name]
        if isinstance(ch, EmailChannel):
            domain = ch.from_.rsplit("@", 1)[-1].rstrip(">")
            return EmailAddressing(sender=ch.from_, to=list(ch.to), cc=list(ch.cc), bcc=list(ch.bcc),
                                   reply_to=ch.reply_to, message_id_domain=domain)
    return None


def compute(source: Source, config: Config, report: ReportConfig, period: Period, now: datetime) -> ReportData:
    """Compute the ReportData of ``report`` for ``period`` (rendering redacts its event text)."""
    from .significance import notable_flags

    return compute_report(source, report, period, now=now,
                          max_conversation_hours=config.source.max_conversation_hours, notable=notable_flags)


def render_and_archive(config: Config, report: ReportConfig, data: ReportData, archive: Path,
                       formats: set[str] | None, now: datetime) -> tuple[Path, list[str]]:
    from .render import render_artifacts

    files = render_artifacts(data, formats, email=_addressing(config, report), now=now)
    folder = write_artifacts(archive, report.id, data.period.key, files)
    return folder, sorted(files)


def run_reports(config: Config, reports: list[ReportConfig], *, now: datetime | None = None,
                period_key: str | None = None, periods: dict[str, list[Period]] | None = None,
                dry_run: bool = False, force: bool = False, formats: set[str] | None = None,
                archive: Path | None = None, test_to: str | None = None, trigger: str = "manual",
                ledger: Any = None, source: Source | None = None, delivery_log: Any = None,
                stop: threading.Event | None = None, skip_refused: bool = False,
                keep_going: bool = False) -> list[RunOutcome]:
    """Run each report for its period(s): the given key, the given periods, or the last complete one.

    ``stop`` (the scheduler's): set while a report computes, it is neither archived nor delivered; set while a
    channel waits to retry, the delivery stops there as on Ctrl-C (Interrupted: its claims recorded failed).
    ``skip_refused`` (the scheduler's retry of a failed pass, ``run --due``): a target refused for good in the
    period is not tried again (see :func:`agentdigest.delivery.deliver_report`).

    ``delivery_log`` gets the per-target delivery lines (default: this module's logger); a caller that
    reports each delivery itself (the scheduler's decision log) passes a quieter one. ``keep_going`` (`run` of
    several reports): one report's error ends its outcome (``exception``), not the run, as with ``run --due``."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    archive = Path(archive or config.archive.path)
    todo = [(r, p) for r in reports
            for p in (periods[r.id] if periods is not None else [given_period(config, reports, r, period_key, now)])]
    if not todo:
        return []
    if period_key:
        for report, period in todo:
            refuse_unbegun(report, period, now)
    if not dry_run:
        from .preflight import check_formats

        # A bad --test-to, or a --format list a channel cannot send, is refused before computing anything.
        for report in {r.id: r for r, _ in todo}.values():
            if report.channels or test_to:
                check_formats(config, report, formats, test_to)
        if not test_to:
            for report, period in todo:
                refuse_unfinished(report, period, now)
    sources: RunSource | None = None
    try:
        sources = RunSource(config, source)
        # An explicit --period wholly before the data (a mistyped year) is refused for a delivery, said on a preview
        # (of the report's agents: a report of some agents has no events before theirs)
        begins = {(end, agents): data_begins_after(sources.get(), end, agents)
                  for end, agents in {(p.end_utc, tuple(r.agents or ())) for r, p in todo}} if period_key else {}
    except Exception as exc:
        if sources is not None:
            sources.close()
        if not dry_run:
            note_unread(config, todo, exc, ledger=ledger, trigger="test" if test_to else trigger, test_to=test_to)
        raise
    early = {(r.id, p.key): before_data(r, p, first, now, preview=dry_run or bool(test_to))
             for r, p in todo if (first := begins.get((p.end_utc, tuple(r.agents or ())))) is not None}
    # One ledger for the whole run, and only when something may be delivered.
    own_ledger = ledger is None and not dry_run and any(r.channels or test_to for r, _ in todo)
    outcomes: list[RunOutcome] = []
    read_only = None
    try:
        if not dry_run and not test_to:
            for report, period in todo:
                if (report.id, period.key) in early:  # before the ledger is opened: nothing is recorded
                    raise InputError(early[report.id, period.key])
        if own_ledger:
            ledger = open_ledger(config)
        elif ledger is None and dry_run:
            # A dry run sends nothing, but must know which periods were delivered (an archive from
            # before the .delivered marker has none): read the ledger if it exists.
            ledger = read_only = existing_ledger(config, read_only=True)
        # history shows a test run as "run (test)": it was shown as a manual run of the period (a new user)
        trigger = "test" if test_to else trigger
        for report, period in todo:
            try:
                outcomes.append(_run_one(config, report, period, sources=sources, now=now, dry_run=dry_run,
                                         force=force, formats=formats, archive=archive, test_to=test_to,
                                         trigger=trigger, ledger=ledger, delivery_log=delivery_log or log,
                                         stop=stop, skip_refused=skip_refused))
            except Exception as exc:  # noqa: BLE001 - its run (if started) is closed failed; the caller says it
                if not keep_going:
                    raise
                outcomes.append(RunOutcome(report.id, period.key, error=first_line(exc), exception=exc))
                continue
            if (note := early.get((report.id, period.key))) and outcomes[-1].data is not None:
                outcomes[-1].preview = "; ".join(filter(None, (note, outcomes[-1].preview)))
            # (not while the scheduler stops: its next start's alarm check sends the notice)
            if not dry_run and not test_to and not (stop is not None and stop.is_set()) and any(
                    getattr(d, "state", "") == "sent" for d in outcomes[-1].deliveries):
                _resolved(config, ledger, report, period, archive)
    finally:
        sources.close()
        if (own_ledger or read_only is not None) and ledger is not None:
            ledger.close()
    return outcomes


def _resolved(config: Config, ledger: Any, report: ReportConfig, period: Period, archive: Path) -> None:
    """A run that delivered the period (a scheduled one, or the operator's `run --period` that fixes a failure)
    tells the alarm channel when that was the last target missing and the period had been alarmed (never raises)."""
    if config.alarms.channel:
        from .alarm_resolved import resolve_periods

        resolve_periods(config, ledger, report, [period], owner=owner_id(), archive=archive)


def _run_one(config: Config, report: ReportConfig, period: Period, *, sources: RunSource, now: datetime,
             dry_run: bool, force: bool, formats: set[str] | None, archive: Path, test_to: str | None,
             trigger: str, ledger: Any, delivery_log: Any, stop: threading.Event | None = None,
             skip_refused: bool = False) -> RunOutcome:
    outcome = RunOutcome(report.id, period.key)
    deliver = not dry_run and (report.channels or test_to)
    run_id, owner = None, owner_id()
    if deliver:
        from .period_targets import current_targets, refused_only

        if not force and not test_to and (unknown := restore_sends(config, report, period, archive, ledger)):
            outcome.skipped = unknown
            log.warning("skipped %s %s: %s", report.id, period.key, unknown)
            return outcome
        if not force and not test_to and ledger.is_period_sent(report.id, period.key, list(report.channels),
                                                       current_targets(config, report, period.key, archive)):
            # The archive holds what was sent (message.eml "as sent"): recomputing would overwrite it
            # with today's data while every channel keeps what it got.
            outcome.skipped = (f"already sent to every channel; the archive keeps what was sent "
                               f"(`{command(config, f'resend {report.id} {period.key}')}` sends it again, "
                               f"`--force` recomputes and sends again)")
            if not artifact_names(report_dir(archive, report.id, period.key)):  # not a circle back to resend
                outcome.skipped = ("already sent to every channel; its archive folder is gone (moved or removed? "
                                   "check [archive] path), so there is nothing to resend (`--force` recomputes, "
                                   "archives and sends it to every channel again)")
            log.info("skipped %s %s: already sent", report.id, period.key)
            return outcome
        if skip_refused and not force and not test_to and (
                refused := refused_only(config, report, period.key, ledger=ledger, archive=archive)) is not None:
            # Nothing to try: recomputing would rewrite the archive and record a run, to send nothing.
            outcome.deliveries = refused
            log.info("%s %s: every target without it was refused for good before; not tried again",
                     report.id, period.key)
            return outcome
        if not force and not test_to and partly_sent(ledger, archive, report.id, period.key):
            return _deliver_archived(config, report, period, outcome, archive=archive, trigger=trigger, ledger=ledger,
                                     delivery_log=delivery_log, skip_refused=skip_refused, stop=stop)
        if not force and not test_to and trigger == "due" and failed_archived(config, report, period, archive, ledger):
            # A scheduled retry during an outage: the report archived when it came due, not a new query each time.
            return _deliver_archived(config, report, period, outcome, archive=archive, trigger=trigger, ledger=ledger,
                                     delivery_log=delivery_log, skip_refused=skip_refused, stop=stop, resumed=(
                                         "its delivery failed before; the channels get the report archived then "
                                         f"(`{command(config, f'run {report.id} --period {period.key}')}` "
                                         "recomputes it)"))
        run_id = ledger.start_run(report.id, period.key, trigger, owner)
    # Only a real delivery with --force rewrites what was sent; a dry run or a test never does.
    if (dry_run or test_to) and was_delivered(archive, report.id, period.key, ledger):
        archive = preview_root(archive)
        outcome.preview = ("delivered before; its archive keeps what was sent, so this "
                           f"{'dry run' if dry_run else 'test'} is archived apart")
    try:
        try:
            outcome.data = compute(sources.get(), config, report, period, now)
        finally:
            sources.rest()
        log.info("computed %s %s", report.id, period.key)
        if stop is not None and stop.is_set() and run_id is not None:
            # Found in an operations audit: a stop (SIGTERM: docker stop) that came while the report computed
            # still started its delivery, which could outlast the stop deadline: the process then ended mid-send,
            # its claim left "sending" for the next start to wait out, the relay perhaps holding the message.
            # Nothing is started once the scheduler is stopping; the next start runs the period (still due).
            ledger.finish_run(run_id, "interrupted", "stopped before delivering: the scheduler was shutting down")
            outcome.stopped = True
            return outcome
        if not deliver:
            outcome.archive_dir, outcome.files = render_and_archive(config, report, outcome.data, archive, formats, now)
            log.info("archived %s %s in %s", report.id, period.key, outcome.archive_dir)
            return outcome
    except BaseException as exc:
        if run_id is not None:
            record_stop(exc, lambda stopped=exc: ledger.finish_run(run_id, *stopped_run(stopped)))
        elif trigger == "due" and not dry_run and ledger is not None:
            # A report without channels records no run (it is done once archived); a failed scheduled one must
            # still keep its period due, as a source that cannot be opened does (see note_failed).
            note_failed(ledger, report.id, period.key, exc)
        raise
    # From the decision to write the archive to the end of the delivery, the period is this process's: a
    # concurrent run of it waits, then finds it sent (it must not rewrite the archive under this delivery
    # and send its own, newer figures to a channel this one has not reached yet).
    try:
        with holding(config, archive, report, period, ledger, stop):
            if not force and not test_to and (unknown := restore_sends(config, report, period, archive, ledger)):
                outcome.skipped = unknown
                ledger.finish_run(run_id, "done")
                return outcome
            delivered = not force and not test_to and was_delivered(archive, report.id, period.key, ledger)
            if delivered and not artifact_names(report_dir(archive, report.id, period.key)):
                # Delivered meanwhile from another machine's archive (one ledger, two archives).
                if ledger.is_period_sent(report.id, period.key, list(report.channels)):
                    outcome.skipped = ("sent to every channel meanwhile by another machine; its archive keeps "
                                       "what was sent")
                    log.info("skipped %s %s: sent by another machine", report.id, period.key)
                    ledger.finish_run(run_id, "done")
                    return outcome
                delivered = False  # the channels still to get it get this run's figures, archived here
            if delivered:
                # Delivered (to some channels) while this one computed: keep what was sent; the rest get it too.
                outcome.archive_dir = report_dir(archive, report.id, period.key)
                outcome.files = artifact_names(outcome.archive_dir)
                log.info("%s %s was delivered meanwhile; its archive is kept", report.id, period.key)
            else:
                outcome.archive_dir, outcome.files = render_and_archive(config, report, outcome.data, archive,
                                                                        formats, now)
                log.info("archived %s %s in %s", report.id, period.key, outcome.archive_dir)
            _deliver(config, report, period, outcome, run_id, archive=archive, ledger=ledger, force=force,
                     test_to=test_to, owner=owner, delivery_log=delivery_log, skip_refused=skip_refused, stop=stop)
    except BaseException as exc:  # closes the run if _deliver did not (a run is closed once)
        # A ledger that fails here too must not replace the error: "... was sent but could not be recorded" was
        # shown as the closing write's "Connection refused" (found with a ledger server stopped during SMTP DATA)
        record_stop(exc, lambda stopped=exc: ledger.finish_run(run_id, *stopped_run(stopped)))
        raise
    return outcome


@contextmanager
def holding(config: Config, archive: Path, report: ReportConfig, period: Period, ledger: Any,
            stop: threading.Event | None = None) -> Iterator[None]:
    """Hold the period for a delivering run, saying so when another process holds it: the archive's
    lock (:func:`archive.period_lock`, this machine) and the ledger's (every machine sharing it).

    A holder is waited for as long as its slowest channel's claim can last (the lease): one that takes
    longer has hung, and its claims are taken over from then on (found in a re-check: a stopped
    process blocked the period on every machine for as long as it stayed stopped).

    Its callers then learn again what the archive's send log records (``restore_sends``): the holder
    waited for may have sent the period and recorded it in a ledger that has since been replaced (found
    in a ledger audit: the new, empty one would have had it sent again).

    ``stop`` (the scheduler's) ends the wait at once, raising Interrupted. Found in a CI run: a scheduler stopped
    while it waited for another process's delivery of the period waited on, its SIGTERM unheeded, until it gave up
    on the worker (8 s); the run is now recorded ``interrupted`` and the next start or ``run --due`` decides it."""
    from .interrupts import pausing
    from .preflight import report_lease

    longest = report_lease(config, report) or 60.0

    def waiting() -> None:
        log.warning("%s %s is being delivered by another process; waiting for it to finish", report.id, period.key)

    def giving_up() -> None:
        log.warning("%s %s has been held by another process for longer than its delivery can take (%.0f s); "
                    "going on without waiting for it", report.id, period.key, longest)

    def finished() -> bool:  # its lock file is then removed (archive.period_lock)
        from .due import done_checker

        return done_checker(ledger, archive, config)(report, period)

    sleep = pausing(stop, "the wait for another process's delivery of the period")
    with period_lock(archive, report.id, period.key, on_wait=waiting, max_wait=longest, on_give_up=giving_up,
                     finished=finished, sleep=sleep), \
            ledger.hold_period(report.id, period.key, on_wait=waiting, max_wait=longest, on_give_up=giving_up,
                               sleep=sleep):
        yield


def _deliver(config: Config, report: ReportConfig, period: Period, outcome: RunOutcome, run_id: Any, *,
             archive: Path, ledger: Any, owner: str, delivery_log: Any, force: bool = False,
             test_to: str | None = None, skip_refused: bool = False, stop: threading.Event | None = None) -> None:
    """Deliver the archived period to the report's channels and close the run in the ledger (a delivery
    that raises leaves that to the caller). ``stop``: the scheduler's (see :func:`deliver_report`)."""
    from .delivery import deliver_report
    from .preflight import refuse_half_made

    if not test_to:
        refuse_half_made(config, report, period.key, archive, ledger)
    outcome.deliveries = deliver_report(config, report, period.key, ledger=ledger, archive=archive,
                                        force=force, test_to=test_to, owner=owner, log=delivery_log,
                                        skip_refused=skip_refused, stop=stop)
    ledger.finish_run(run_id, "failed" if outcome.failed else "done",
                      "; ".join(f"{d.channel}: {d.error}" for d in outcome.deliveries if d.state == "failed") or None)


def _deliver_archived(config: Config, report: ReportConfig, period: Period, outcome: RunOutcome, *,
                      archive: Path, trigger: str, ledger: Any, delivery_log: Any,
                      skip_refused: bool = False, stop: threading.Event | None = None,
                      resumed: str | None = None) -> RunOutcome:
    """A period some channels already have: the others get the archived artifacts, the same figures,
    never a recomputation (which would also overwrite the archive's as-sent copy). ``resumed``: why else the
    archive is delivered (a scheduled retry of a period whose every target failed: run_records.failed_archived)."""
    owner = owner_id()
    run_id = ledger.start_run(report.id, period.key, trigger, owner)
    outcome.resumed = resumed or ("already sent to some channels; the others get the archived report they got "
                                  "(`--force` recomputes and sends to every channel)")
    outcome.archive_dir = report_dir(archive, report.id, period.key)
    outcome.files = artifact_names(outcome.archive_dir)
    log.info("%s %s: delivering the archived report to the channels that do not have it", report.id, period.key)
    try:
        with holding(config, archive, report, period, ledger, stop):
            restore_sends(config, report, period, archive, ledger)  # sent by the holder waited for
            _deliver(config, report, period, outcome, run_id, archive=archive, ledger=ledger, owner=owner,
                     delivery_log=delivery_log, skip_refused=skip_refused, stop=stop)
    except BaseException as exc:  # the lock's ledger failed, or a signal while waiting for it
        record_stop(exc, lambda stopped=exc: ledger.finish_run(run_id, *stopped_run(stopped)))
        raise
    return outcome

