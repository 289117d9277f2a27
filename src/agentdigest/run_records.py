"""What the ledger and the archive record of a report's runs and of a period's sends.

A run that ends before it has a ledger row (its source could not be opened, a signal) is still recorded
(:func:`note_failed`, :func:`record_stop`), and when the ledger cannot record it either the run's own error says
so (:func:`unrecorded`). Whether a period went out somewhere is asked of both the ledger and the archive, and a new
or reset ledger learns the archive's sends before anything is sent again (:func:`restore_sends`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .archive import artifact_names, is_delivered, recorded_sends, report_dir
from .config import Config, ReportConfig, command
from .errors import first_line, interruption
from .interrupts import shielded
from .masking import mask_text
from .owners import has_exited, owner_id
from .periods import Period

log = logging.getLogger("agentdigest")


def open_ledger(config: Config) -> Any:
    """The configured ledger (imported late: a dry run never needs SQLAlchemy)."""
    from .ledger import Ledger

    return Ledger(config.ledger.url)


def existing_ledger(config: Config, *, read_only: bool = False) -> Any:
    """The ledger when it exists and can be read, else None (a dry run, or `history --next`, never fails on the
    ledger); ``read_only``: opened so in any case (a dry run's, which must not write it)."""
    from .ledger import open_existing
    from .ledger_schema import LedgerError

    try:
        return open_existing(config.ledger.url, read_only=read_only)
    except LedgerError:
        return None


def note_failed(ledger: Any, report_id: str, period_key: str, exc: BaseException, trigger: str = "due") -> bool:
    """Record a run that ``exc`` ended before it had a run in the ledger (its source could not be opened, or a
    report without channels failed); False when the ledger could not (``exc`` then says so). A scheduled
    one keeps its period due (retried and late) after the next one comes due, as one whose delivery failed."""
    return record_stop(exc, lambda: ledger.finish_run(ledger.start_run(report_id, period_key, trigger, owner_id()),
                                                      *stopped_run(exc)))


def record_stop(exc: BaseException, write: Any) -> bool:
    """Record the run that ``exc`` ended with ``write()``, stop signals held back; False when the ledger failed."""
    try:
        with shielded():
            write()
        return True
    except Exception as failed:
        unrecorded(exc, failed)
        return False


def unrecorded(exc: BaseException, failed: Exception) -> None:
    """Say in ``exc`` that the ledger could not record its run (``failed``), rather than raise the ledger's error:
    the source's error is the cause to show, and its exit code (3) the one to exit with."""
    from .ledger_schema import LedgerError

    note = (f"the ledger could not record this {'failed' if isinstance(exc, Exception) else 'interrupted'} run "
            f"({mask_text(first_line(failed))})")
    if not isinstance(exc, Exception):  # an interruption is said as such (the CLI names the signal)
        log.warning("%s", note)
    elif not isinstance(exc, LedgerError):  # else the ledger's own failure is the error shown already
        head, newline, rest = str(exc).partition("\n")
        exc.args = (f"{head}; {note}{newline}{rest}",)


def stopped_run(exc: BaseException) -> tuple[str, str]:
    """The run state and error for a run that ``exc`` ended before it finished."""
    if isinstance(exc, Exception):
        return "failed", first_line(exc)
    return "interrupted", interruption(exc)


def sent_somewhere(ledger: Any, report_id: str, period_key: str) -> bool:
    """The ledger says some channel got this period (test sends do not count)."""
    return any(row["kind"] == "delivery" and row["sent_at"] for row in ledger.deliveries(report_id, period_key))


def was_delivered(archive: Path, report_id: str, period_key: str, ledger: Any) -> bool:
    """Some channel got this period (the archive's marker, or the ledger when this run has one)."""
    return is_delivered(archive, report_id, period_key) or (
        ledger is not None and sent_somewhere(ledger, report_id, period_key))


def partly_sent(ledger: Any, archive: Path, report_id: str, period_key: str) -> bool:
    """Some channel already got this period, and the archive holds what it got (whatever --format kept)."""
    return (sent_somewhere(ledger, report_id, period_key)
            and bool(artifact_names(report_dir(archive, report_id, period_key))))


def failed_archived(config: Config, report: ReportConfig, period: Period, archive: Path, ledger: Any) -> bool:
    """Whether a scheduled retry of ``period`` may deliver its archived report rather than compute it again: every
    target of it tried so far failed (none got it: a partly sent period is :func:`partly_sent`'s), each under the
    settings the report has now (the fingerprint kept with the failure, refusals.py), and the archive holds the
    whole period's report (not a preview made before it ended) with every file its channels send.

    Found in an operator review: while a relay was down, each `run --due` from cron (every 5 minutes) queried the
    source and rendered every failed period again, only to fail to send it again. A period is computed when it
    comes due, as a report without channels is (archived once) and a partly sent one (the others get the archive);
    a changed config, or a failure from before fingerprints were kept, still recomputes it, and so does
    ``run REPORT --period KEY``, which is not scheduled."""
    from .due import archived_whole
    from .preflight import lacking
    from .refusals import settings_fingerprint

    rows = [row for row in ledger.deliveries(report.id, period.key) if row["kind"] == "delivery"]
    failed = [row for row in rows if row["state"] == "failed"]
    if not failed or any(row["sent_at"] for row in rows):
        return False
    under = settings_fingerprint(config, report)
    if any(row.get("failed_under") != under for row in failed):
        return False
    folder = report_dir(archive, report.id, period.key)
    return (lacking(config, report.channels, artifact_names(folder)) is None
            and archived_whole(folder / "report.json", period))


def restore_sends(config: Config, report: ReportConfig, period: Period, archive: Path, ledger: Any) -> str | None:
    """Teach the ledger the sends of this period that the archive records and it does not know (a new or
    reset ledger, or a renamed report whose archive folder was renamed with it), so they are not sent
    again. A reason to send nothing when the archive marks the period delivered without saying to whom
    (a marker from before it kept sends) and the ledger knows no send of it either."""
    sends = recorded_sends(archive, report.id, period.key)
    if sends is None:
        return None
    rows = ledger.deliveries(report.id, period.key)
    known = {(row["channel"], row["recipient"]) for row in rows if row["kind"] == "delivery" and row["sent_at"]}
    if not sends:
        if known:
            return None
        again = command(config, f"resend {report.id} {period.key}")
        return (f"the archive marks it delivered, but the ledger has no record of it (a new or reset ledger?) and "
                f"the archive does not say to whom; nothing was sent (`{again}` sends the archived report again, "
                f"`--force` recomputes and sends)")
    missing = {(s["channel"], s["recipient"]): s for s in sends if (s["channel"], s["recipient"]) not in known}
    if missing:
        for row in rows:  # sent, but its sender could not record it, and exited
            unfinished = row["state"] == "sending" and (row["channel"], row["recipient"]) in missing
            if unfinished and has_exited(row["owner"]):
                ledger.expire_lease(row["id"], row["owner"])
        ledger.restore_sent(report.id, period.key, list(missing.values()),
                            note="restored from the archive (the ledger had no record of this send)")
        log.warning("%s %s: the ledger had no record of %d send%s that the archive records (a new or reset "
                    "ledger, or a send it failed to record?); recorded %s from the archive, and %s not sent again",
                    report.id, period.key, len(missing), "" if len(missing) == 1 else "s",
                    "it" if len(missing) == 1 else "them", "it is" if len(missing) == 1 else "they are")
    return None
