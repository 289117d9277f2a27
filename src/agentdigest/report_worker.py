"""One report's worker in ``agentdigest schedule``: it runs the report's passes one at a time on its own thread,
when asked (a fire, the start's catch-up, a reload) or when it planned to look again: after a failure, with a
wait that doubles, and once another process's claim has run out. The scheduler process itself is in
:mod:`agentdigest.daemon`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .config import Config, command
from .errors import first_line
from .schedule import decision, run_pass

if TYPE_CHECKING:
    from .daemon import Daemon

#: After a failed pass (the source down, a channel failing) the worker tries again after this many
#: seconds, doubling up to RETRY_MAX_SECONDS, until a pass succeeds: a report that failed at 09:00
#: went out at the next fire, a week later. A pass whose every failure is permanent (a recipient refused
#: with 550) is not retried (Worker._no_retry); the retries of a pass with a transient failure skip the targets
#: it refused for good. ``$AGENTDIGEST_RETRY_SECONDS`` overrides the first wait (tests).
RETRY_SECONDS = 300.0
RETRY_MAX_SECONDS = 3600.0


def _first_retry() -> float:
    try:
        return max(float(os.environ.get("AGENTDIGEST_RETRY_SECONDS", RETRY_SECONDS)), 0.5)
    except ValueError:
        return RETRY_SECONDS


class Worker:
    """Runs one report's passes, one at a time, on its own thread."""

    def __init__(self, daemon: "Daemon", report_id: str):
        self.daemon, self.report_id = daemon, report_id
        self.pending = threading.Event()
        self.busy = False
        self.retired = False
        self.recheck_at: float | None = None  # monotonic time to look again (a claim elsewhere, a failure)
        self.recheck_why = ""
        self.failing = False  # the last pass failed: an unchanged reload does not run it again (Daemon.reload)
        self.retries = 0  # retries planned in a row: the retry wait doubles with each
        self.thread = threading.Thread(target=self._loop, name=f"report-{report_id}", daemon=True)

    def request(self) -> None:
        self.pending.set()

    def look_again(self) -> None:
        """Make the retry planned now (the heartbeat found the ledger back): a retry, not a pass asked for."""
        self.recheck_at = time.monotonic()

    def _loop(self) -> None:
        stop = self.daemon.stop
        while not stop.is_set() and not self.retired:
            timeout = None if self.recheck_at is None else max(self.recheck_at - time.monotonic(), 0)
            if not self.pending.wait(timeout=min(timeout, 1.0) if timeout is not None else 1.0):
                if self.recheck_at is None or time.monotonic() < self.recheck_at:
                    continue
                decision("recheck", "%s: looking again (%s)", self.report_id, self.recheck_why, report=self.report_id)
            self.busy = True  # before the request is cleared: the alarm check never sees neither
            # A pass asked for (the start's catch-up, a fire, a reload, a reopened ledger) tries every target; the
            # scheduler's own retry or recheck of a pass does not try again those refused for good (see _no_retry)
            retry = not self.pending.is_set()
            self.pending.clear()
            self.recheck_at = None
            if stop.is_set() or self.retired:
                self.busy = False
                break
            try:
                self._pass(retry)
            except Exception as exc:  # noqa: BLE001 - the scheduler outlives any one failure
                decision("error", "%s: %s", self.report_id, exc, level=logging.ERROR, report=self.report_id,
                         error=first_line(exc))
                self._plan_retry()
            finally:
                self.busy = False

    def _plan(self, wait: float, why: str) -> None:
        at = time.monotonic() + wait
        if self.recheck_at is None or at < self.recheck_at:
            self.recheck_at, self.recheck_why = at, why

    def _plan_retry(self) -> None:
        self.failing = True
        self.retries += 1
        first = _first_retry()
        wait = min(first * 2 ** (self.retries - 1), max(RETRY_MAX_SECONDS, first))
        self._plan(wait, "retrying after a failure")
        decision("retry_planned", "%s: the pass failed; trying again in %.0f s", self.report_id, wait,
                 report=self.report_id)

    def _pass(self, retry: bool = False) -> None:
        config = self.daemon.config
        report = _report(config, self.report_id)
        if report is None:
            return
        with self.daemon.ledger_in_use() as ledger:
            result = run_pass(config, [report], datetime.now(timezone.utc), ledger=ledger, stop=self.daemon.stop,
                              owner=self.daemon.owner, skip_refused=retry, said=self.daemon.passed_over_said,
                              alarms_said=self.daemon.not_tried_said)
        if any(run.claimed_elsewhere for run in result.runs):
            wait = self.daemon.lease_of(report) + 1
            self._plan(wait, "a period another process had claimed")
            decision("recheck_planned", "%s: another process holds a claim; looking again in %.0f s",
                     report.id, wait, report=report.id)
        failed = [run for run in result.runs if run.failed]
        if failed and all(run.failed_for_good for run in failed):
            self._no_retry(config, report, failed)
        elif failed:
            self._plan_retry()
        else:
            self.failing, self.retries = False, 0

    def _no_retry(self, config: Config, report: Any, failed: list[Any]) -> None:
        """A pass whose every failure is permanent is not retried: found in a delivery audit, a recipient refused
        with 550 (or Slack's channel_not_found) was tried every hour for the rest of the period, the same error
        each time, while the others had it. A failure all the same, so an unchanged reload (SIGHUP) does not run
        it again (see :meth:`Daemon.reload`); a changed one does. It ends the backoff: the next transient failure
        waits the first wait again (found in a review: each such pass doubled it)."""
        self.failing, self.retries = True, 0
        refused = ", ".join(f"{d.channel}{' ' + d.recipient if d.recipient else ''}"
                            for run in failed for d in run.deliveries if d.state == "failed")
        keys = ", ".join(run.period.key for run in failed)
        # `run --period`, not `resend`: resend sends to every target again, those that got it included
        again = command(config, f"run {report.id} --period {failed[0].period.key}")
        decision("retry_not_planned", "%s %s: not retried: every failed delivery was refused for good (%s), and "
                 "trying again would fail the same way; a changed config (SIGHUP), a restart or the next scheduled "
                 "run tries again, as does `%s` (to the targets still without it)", report.id, keys, refused, again,
                 level=logging.WARNING, report=report.id, period=keys)


def _report(config: Any, report_id: str) -> Any:
    """The report of that id, or None once a reload removed it."""
    return next((r for r in config.reports if r.id == report_id), None)
