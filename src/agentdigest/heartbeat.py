"""The scheduler's heartbeat: every ``HEARTBEAT_SECONDS`` a row in the ledger and the late-alarm check; at the
first and then daily, the pruning of old heartbeat rows and of the archive's lock files of periods sent. The
scheduler process is in :mod:`agentdigest.daemon`.

A heartbeat that fails (the ledger's server down, say) is said once as an ERROR, again every ``REMIND_SECONDS`` while
it keeps failing, and once as an INFO line when one works again. Found in an operator review: a PostgreSQL ledger
that was unreachable for an hour logged 120 identical ERROR lines, one per heartbeat, which buried everything else
and told nothing more than the first. Fifteen minutes: a log-based alert or a glance at the log's last screen still
finds the outage going on (most alert windows are 5 to 15 minutes), at 4 lines an hour instead of 120, and well
within the late alarm's default grace (2 hours), so a late report is never the first word of it.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import due
from .archive import LOCKS
from .archive_sweep import sweep_locks, sweep_removed
from .errors import InputError, first_line
from .ledger_runs import HEARTBEAT_KEEP
from .periods import parse_period
from .schedule import decision, send_alarms

if TYPE_CHECKING:
    from .daemon import Daemon

HEARTBEAT_SECONDS = 30.0
PRUNE_SECONDS = 86400.0  # heartbeat rows silent for HEARTBEAT_KEEP (30 days) are deleted at start, then daily
REMIND_SECONDS = 900.0  # a heartbeat failing since the last ERROR line this long is said again
log = logging.getLogger("agentdigest.schedule")


class Heartbeat:
    """The scheduler's heartbeats, and what it has said of their failures."""

    def __init__(self, daemon: "Daemon"):
        self.daemon = daemon
        self.pruned_at: float | None = None  # time.monotonic() of the last pruning of old heartbeat rows
        self.failing_since: datetime | None = None  # the first heartbeat of the failure going on (None: working)
        self.said_at = 0.0  # time.monotonic() of the last ERROR line about it
        self.failures = 0  # heartbeats failed since failing_since

    def loop(self) -> None:
        """Beat until the scheduler stops (its own daemon thread: a hung alarm channel must not keep it alive)."""
        stop = self.daemon.stop
        while not stop.is_set():
            self.daemon.tick()
            stop.wait(HEARTBEAT_SECONDS)

    def beat(self) -> None:
        """One heartbeat: the ledger's row, then alarms for late periods, then pruning (once a day)."""
        daemon = self.daemon
        try:
            with daemon.ledger_in_use() as ledger:  # before `idle`: a ledger opened again puts every report to work
                ledger.heartbeat(daemon.owner, daemon.info("running"))
                # A report whose pass is running or about to run (the catch-up at start) is not late yet: its
                # late alarm went out seconds before the catch-up delivered it (found in a regression check).
                idle = [r for r in daemon.config.reports if not daemon.working(r.id)]
                send_alarms(daemon.config, None, datetime.now(timezone.utc), ledger=ledger,
                            archive=daemon.config.archive.path, owner=daemon.owner, reports=idle,
                            said=daemon.not_tried_said)
                self._prune(ledger)
        except Exception as exc:  # noqa: BLE001 - the scheduler outlives its ledger's outages
            self._failed(exc)
            return
        self._worked()

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        self.failures += 1
        if self.failing_since is None:
            self.failing_since, self.said_at = datetime.now(timezone.utc), now
            decision("error", "heartbeat: %s (said again every %d min while it lasts)", exc, REMIND_SECONDS // 60,
                     level=logging.ERROR, error=first_line(exc))
        elif now - self.said_at >= REMIND_SECONDS:
            self.said_at = now
            decision("error", "heartbeat: still failing, since %s (%d heartbeats): %s",
                     self.failing_since.isoformat(timespec="seconds"), self.failures, exc,
                     level=logging.ERROR, error=first_line(exc))
        else:
            log.debug("heartbeat: %s", exc)

    def _worked(self) -> None:
        if self.failing_since is None:
            return
        since, failures = self.failing_since, self.failures
        self.failing_since, self.failures = None, 0
        seconds = (datetime.now(timezone.utc) - since).total_seconds()
        # Found in a review: a report whose pass failed on the ledger waited out its retry (up to an hour) after
        # the ledger was back; those waiting to retry a failure now look again at once, as a retry would
        waiting = [w for w in list(self.daemon.workers.values())
                   if w.failing and w.recheck_at is not None and not w.busy]
        for worker in waiting:
            worker.look_again()
        decision("heartbeat_ok", "heartbeat: working again, after failing for %s since %s (%d heartbeats)%s",
                 f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s",
                 since.isoformat(timespec="seconds"), failures,
                 f"; {len(waiting)} report(s) waiting to retry a failure try again now" if waiting else "")

    def _prune(self, ledger: Any) -> None:
        """At the first heartbeat, then once a day: delete the heartbeat rows of schedulers silent for 30 days, and
        tidy the archive (archive_sweep): the lock files of periods sent or no longer run by the scheduler, and the
        unheld lock files and empty folders of reports no longer in the config."""
        if self.pruned_at is not None and time.monotonic() - self.pruned_at < PRUNE_SECONDS:
            return
        self.pruned_at = time.monotonic()
        if gone := ledger.prune_heartbeats():
            log.info("deleted %d heartbeat row(s) of schedulers silent for %d days", gone, HEARTBEAT_KEEP.days)
        config = self.daemon.config
        archive = Path(config.archive.path)
        done = due.done_checker(ledger, archive, config)
        now = datetime.now(timezone.utc)
        removed = 0
        for report in config.reports:
            # What the scheduler still runs: the catch-up window and the periods tried and never sent in the last
            # year (due.candidates); a period before them that is not sent no pass will ever take up again
            latest, reach = due.latest_due(report, now), set()
            try:
                reach = set(due.candidates(report, now, ledger)) if latest is not None else set()
            except Exception:  # noqa: BLE001 - the ledger went away: only periods found sent go (none, then)
                latest = None

            def needless(key: str, report: Any = report, latest: Any = latest, reach: Any = reach) -> bool:
                try:
                    period = parse_period(report.period, key, report.timezone)
                except InputError:  # a key of another kind of period (the report's period changed): kept
                    return False
                return (latest is not None and period < latest and period not in reach) or done(report, period)

            removed += sweep_locks(archive, report.id, needless)
        if removed:
            log.info("removed %d lock file(s) of periods sent or no longer run from %s", removed, archive / LOCKS)
        locks, folders = sweep_removed(archive, {report.id for report in config.reports})
        if locks or folders:
            log.info("removed %d lock file(s) and %d empty folder(s) of reports no longer in the config from %s",
                     locks, folders, archive)
