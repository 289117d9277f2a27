"""``agentdigest schedule``: the long-running scheduler.

- One APScheduler ``CronTrigger`` per report, in the report's timezone. A fire does not run the
  report itself: it wakes that report's worker thread, which runs what ``run --due`` would for
  that report. One worker per report, so a report never runs twice at once in one process,
  while a slow report does not hold up the others. Fires that pile up (a suspended machine)
  coalesce into one pass, and a pass never sends what the ledger says is sent.
- At start every worker makes one pass: the catch-up of ``run --due``.
- A period found *claimed elsewhere* is looked at again once that claim's lease has run out,
  so a crashed sender's delivery is taken over without waiting for the next cron fire.
- Every ``HEARTBEAT_SECONDS`` it writes a heartbeat to the ledger and checks for late periods,
  which it reports to ``[alarms] channel`` (:mod:`agentdigest.heartbeat`).
- A SQLite ledger deleted or replaced under it is opened again at its path (see :meth:`Daemon.use_ledger`).
- A report paused (``enabled = false``) has neither a cron job nor a worker: it is said once at start and at each
  reload (``paused``). A reload that resumes it gives it both, and its worker makes the catch-up pass at once.
- SIGHUP reloads the config (a bad file is logged and the old config kept); SIGTERM and SIGINT
  let the delivery in flight finish, start nothing new, and exit 0 within ``STOP_SECONDS``, and the process is gone
  within 10 s whatever still runs (:mod:`agentdigest.stop_deadline`). A delivery waiting
  to retry, or for another process's delivery of its period, stops waiting at once and records its targets failed, as `run` does on Ctrl-C: the next start (or
  `run --due`) sends them without waiting for their claims to expire.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler

from . import due
from .config import Config, command, config_path, load_config
from .interrupts import StopRequest
from .preflight import report_lease
from .owners import owner_id
from .refusals import settings_view
from .render.pdf import forget_fonts
from .heartbeat import Heartbeat
from .ledger_schema import LedgerError, foreign_ledger
from .logs import configure_logging
from .run_records import open_ledger
from .report_worker import Worker
from .schedule import decision
from .stop_deadline import EXIT_SECONDS, exit_by

STOP_SECONDS = 8.0  # in-flight work may take this long after SIGTERM; the process is gone before 10 s
CLOCK_JUMP_SECONDS = 60.0  # the wall clock moved this much more (or less) than the monotonic one: a jump or a sleep
log = logging.getLogger("agentdigest.schedule")


def _changed(old: Any, new: Any, report_id: str) -> bool:
    """Whether a report's own settings, its channels', the source or the archive differ between configs (what
    `run --due` tells by the fingerprint of the same view, refusals.py)."""
    return settings_view(old, report_id) != settings_view(new, report_id)


class Daemon:
    """The scheduler process: cron jobs, per-report workers, heartbeat, signals."""

    def __init__(self, config_path: Any):
        self.config_path = config_path
        self._config_read = _digest(config_path)  # the file's content as last read (before a load): _watch_config
        self._config_said: str | None = None  # the content config_changed (or reload_failed) last spoke of
        self.config: Config = load_config(config_path)
        self.ledger = self._open_ledger(self.config)
        self._ledger_lock = threading.RLock()
        self._ledger_users: dict[int, int] = {}  # id(ledger) -> passes and ticks using it now
        self._retired: list[Any] = []  # ledgers replaced while in use: their last user closes them
        self.owner = owner_id()
        self.started_at = datetime.now(timezone.utc)
        self.stop = StopRequest()
        self.wake = threading.Event()
        self.reload_requested = False
        self.abandoned = False  # a worker was still busy when the stop deadline passed
        self.workers: dict[str, Worker] = {}
        self.heartbeat = Heartbeat(self)
        self._clock = (_wall(), time.monotonic())  # the last reading of both clocks (_watch_clock)
        self._clock_lock = threading.Lock()
        self.passed_over_said: set[tuple[str, str, str, int]] = set()  # logged once per process (schedule.run_pass)
        self.not_tried_said: set[tuple[str, ...]] = set()  # alarm targets not tried again, logged once (alarms.notify)
        self.scheduler = BackgroundScheduler(timezone=timezone.utc, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": None})

    def lease_of(self, report: Any) -> float:
        return report_lease(self.config, report)

    # -- the ledger ---------------------------------------------------------------------------

    @staticmethod
    def _open_ledger(config: Config) -> Any:
        ledger = open_ledger(config)
        ledger.when_replaced = "the scheduler opens the one now at its path"
        return ledger

    def use_ledger(self) -> Any:
        """The ledger, opened again at its configured path when its SQLite file was deleted or replaced.

        Found in a crash audit: the scheduler then failed every use of it until someone restarted it, and
        missed every report meanwhile. It now goes on as a fresh start would: a missing file is created,
        and every report makes its catch-up pass, which learns what the archive's send logs record as sent
        before sending anything (an alarm learns what the archive's alarm log records). A file with records
        from before its own went (a restored backup, another deployment's ledger) or that is no ledger is not
        taken over: its records would decide what is sent without anyone having chosen it; every use fails,
        saying so, until it is moved away or the scheduler restarted."""
        with self._ledger_lock:
            old = self.ledger
            if old.replaced():
                if problem := foreign_ledger(old.file, old.checked_at):
                    raise LedgerError(f"the ledger {old.file} was replaced while the scheduler ran, by {problem}; "
                                      "it is not taken over: restart `agentdigest schedule` to use it, or move it "
                                      "away and a new ledger is created")
                existed = old.file.exists()
                self.ledger = self._open_ledger(self.config)
                self._retire(old)
                decision("ledger_reopened", "the ledger %s was %s while the scheduler ran; it now uses %s. Every "
                         "report makes its catch-up pass: what the archive's send logs and alarm logs record as "
                         "sent is restored from them and not sent again; failed periods older than the latest due one "
                         "(and its catch_up) that the old ledger remembered are forgotten and not retried "
                         "(`agentdigest run REPORT --period KEY` sends one)", old.file, "replaced" if existed else "deleted",
                         "the new ledger another process made there" if existed else "a new one",
                         level=logging.WARNING, owner=self.owner)
                for worker in self.workers.values():
                    worker.request()
            return self.ledger

    @contextmanager
    def ledger_in_use(self) -> Iterator[Any]:
        """The ledger (:meth:`use_ledger`) for one pass or tick. One that a reload or a reopening replaces
        meanwhile is closed when its last user is done with it: not under a pass still recording in it."""
        with self._ledger_lock:
            ledger = self.use_ledger()
            self._ledger_users[id(ledger)] = self._ledger_users.get(id(ledger), 0) + 1
        try:
            yield ledger
        finally:
            with self._ledger_lock:
                self._ledger_users[id(ledger)] -= 1
                if not self._ledger_users[id(ledger)]:
                    del self._ledger_users[id(ledger)]
                    if any(old is ledger for old in self._retired):
                        self._retired = [old for old in self._retired if old is not ledger]
                        ledger.close()

    def _retire(self, old: Any) -> None:
        """Close a ledger the scheduler no longer uses, now or when the last pass using it ends (lock held).

        Found in a review: a reload that changed [ledger] url left the old one open, its connections (a
        server's, or a SQLite file's handles) kept for as long as the scheduler ran."""
        if self._ledger_users.get(id(old)):
            self._retired.append(old)
        else:
            old.close()

    # -- lifecycle ----------------------------------------------------------------------------

    def run(self) -> int:
        """Start, follow the crons until SIGTERM/SIGINT, stop; returns the exit code (0)."""
        self._install_signals()
        decision("start", "scheduler %s starting with %s (%d report(s))", self.owner, self.config.path,
                 len(self.config.reports), owner=self.owner)
        self._sync_jobs()
        self.scheduler.start()
        for worker in self.workers.values():
            worker.request()  # the catch-up: what `run --due` would do now (before the first alarm check)
        # Heartbeats and alarms on a daemon thread, not a scheduler job: a hung alarm channel
        # must not keep the process alive past SIGTERM.
        threading.Thread(target=self.heartbeat.loop, name="heartbeat", daemon=True).start()
        while not self.stop.is_set():
            self.wake.wait(timeout=1.0)
            self.wake.clear()
            self._watch_clock()
            if self.reload_requested and not self.stop.is_set():
                self.reload_requested = False
                self.reload()
        return self._shutdown()

    def _watch_clock(self) -> None:
        """Look at the crons again when the wall clock jumped, or the machine slept (each second, and before alarms).

        Found in a long-run review: APScheduler sleeps until the next fire on the monotonic clock, which neither
        a clock set forward (NTP fixing a slow clock, an operator's `date -s`) nor a suspended machine advances.
        A fire the new time had passed came only when that sleep ended, up to a day late, and the period due
        meanwhile was then passed over for the next one. Set forward, every report makes a pass at once (before the
        alarm check calls its period late); set back, none: fires follow the wall clock, and nothing goes twice."""
        with self._clock_lock:
            wall, mono = _wall(), time.monotonic()
            jump = (wall - self._clock[0]) - (mono - self._clock[1])
            self._clock = (wall, mono)
        if abs(jump) < CLOCK_JUMP_SECONDS:
            return
        decision("clock_jumped", "the system clock moved %s by %.0f s (set, or the machine slept); the schedules "
                 "are looked at again by the new time", "forward" if jump > 0 else "back", abs(jump),
                 level=logging.WARNING, owner=self.owner)
        if jump > 0:
            for worker in list(self.workers.values()):
                worker.request()
        if self.scheduler.running:
            self.scheduler.wakeup()

    def _install_signals(self) -> None:
        def on_stop(signum: int, _frame: Any) -> None:
            if not self.stop.is_set():  # the first stop signal: gone within 10 s, whatever still runs
                exit_by(EXIT_SECONDS, lambda where: decision(
                    "stop_overdue", "still running %.1f s after the stop; exiting now (threads: %s)", EXIT_SECONDS,
                    where, level=logging.WARNING, owner=self.owner))
            self.stop.request(signal.Signals(signum).name)
            self.wake.set()

        def on_hup(_signum: int, _frame: Any) -> None:
            self.reload_requested = True
            self.wake.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, on_hup)

    def _shutdown(self) -> int:
        deadline = time.monotonic() + STOP_SECONDS
        busy = [w.report_id for w in self.workers.values() if w.busy]
        decision("stopping", "stopping%s", f"; waiting for {', '.join(busy)} to finish" if busy else "",
                 owner=self.owner)
        self.scheduler.shutdown(wait=False)
        for worker in self.workers.values():
            worker.pending.set()
            worker.thread.join(timeout=max(deadline - time.monotonic(), 0))
        left = [w.report_id for w in self.workers.values() if w.thread.is_alive()]
        self.abandoned = bool(left)
        if left:
            decision("abandoned", "gave up waiting for %s; its claims expire and another run takes over",
                     ", ".join(left), level=logging.WARNING, owner=self.owner)
        try:
            with self.ledger_in_use() as ledger:
                ledger.heartbeat(self.owner, self.info("stopped"))
        except Exception as exc:  # noqa: BLE001 - stopping must not fail on a ledger hiccup
            log.warning("last heartbeat failed: %s", exc)
        decision("stopped", "scheduler %s stopped", self.owner, owner=self.owner)
        return 0

    # -- jobs ---------------------------------------------------------------------------------

    def _sync_jobs(self) -> set[str]:
        """One cron job and one worker per configured report not paused; workers of removed or paused reports retire
        (after their current pass, as a removed report's). Returns the ids of the new workers; while the scheduler
        runs (a reload) each is asked for its catch-up before its thread starts, so the alarm check does not find a
        new or resumed report idle, its latest period late, while its catch-up is about to send it."""
        ids, new = {r.id for r in self.config.reports if r.enabled}, set()
        for job in self.scheduler.get_jobs():
            if job.id.startswith("report:"):
                job.remove()
        for report_id, worker in list(self.workers.items()):
            if report_id not in ids:
                worker.retired = True
                worker.pending.set()
                del self.workers[report_id]
        for report in self.config.reports:
            if not report.enabled:
                decision("paused", "%s: paused (enabled = false): not scheduled, and not late while paused; "
                         "`%s` still sends it", report.id, command(self.config, f"run {report.id}"), report=report.id)
                continue
            self.scheduler.add_job(self.fire, due.trigger(report.schedule, report.timezone), args=[report.id],
                                   id=f"report:{report.id}", name=report.id)
            if report.id not in self.workers:
                worker = self.workers[report.id] = Worker(self, report.id)
                new.add(report.id)
                if self.scheduler.running:
                    worker.request()
                worker.thread.start()
            fire = due.next_fire(report, datetime.now(timezone.utc))
            decision("scheduled", "%s: %r in %s, next run %s", report.id, report.schedule, report.timezone,
                     fire.astimezone(ZoneInfo(report.timezone)).isoformat() if fire else "never",
                     report=report.id, next_run=fire.isoformat() if fire else None)
        return new

    def fire(self, report_id: str) -> None:
        """A report's cron fired: wake its worker (a pass already running picks it up after)."""
        decision("fired", "%s: cron fired", report_id, report=report_id)
        worker = self.workers.get(report_id)
        if worker is not None:
            worker.request()

    def tick(self) -> None:
        """Heartbeat, then alarms for late periods (:meth:`Heartbeat.beat`), then a look at the config file."""
        self._watch_clock()  # a clock set forward puts the reports to work before they are found late
        self.heartbeat.beat()
        self._watch_config()

    def _watch_config(self) -> None:
        """Say once when the config file no longer holds what the scheduler runs (at a heartbeat). Found in a long-run
        review: an edit is used only from the next SIGHUP, while `check` and `history --next` read the file as edited,
        and a forgotten SIGHUP went unsaid. Not reloaded by itself: a file caught half-saved would be read."""
        content = _digest(self.config_path)
        if content in (self._config_read, self._config_said):
            return
        self._config_said = content
        decision("config_changed", "the config file %s %s since the scheduler read it; it still runs the config it "
                 "read: send SIGHUP to use the file (`kill -HUP %d`, or `systemctl reload` of its unit), after `%s`",
                 self.config.path, "was removed" if content is None else "changed", os.getpid(),
                 command(self.config, "check"), level=logging.WARNING, owner=self.owner)

    def working(self, report_id: str) -> bool:
        worker = self.workers.get(report_id)
        return worker is not None and (worker.busy or worker.pending.is_set())

    def reload(self) -> None:
        """SIGHUP: read the config again; keep the old one when the new one is invalid."""
        content = _digest(self.config_path)
        try:
            config = load_config(self.config_path)
        except Exception as exc:  # noqa: BLE001
            self._config_said = content  # said: not said again as config_changed
            decision("reload_failed", "config not reloaded, keeping the running one: %s", exc,
                     level=logging.ERROR, error=str(exc))
            return
        if config.ledger.url != self.config.ledger.url:
            try:
                ledger = self._open_ledger(config)
            except Exception as exc:  # noqa: BLE001 - found in a review: the scheduler exited 1 on such a reload
                self._config_said = content
                decision("reload_failed", "config not reloaded, keeping the running one: the new [ledger] url "
                         "cannot be opened: %s", exc, level=logging.ERROR, error=str(exc))
                return
            with self._ledger_lock:
                old, self.ledger = self.ledger, ledger
                self._retire(old)
        old, self.config, self._config_read = self.config, config, content
        forget_fonts()  # a font installed since is used from the next PDF
        new = self._sync_jobs()
        decision("reloaded", "config reloaded (%d report(s))", len(config.reports))
        for report_id, worker in self.workers.items():
            # A report waiting to retry a failure keeps its backoff unless what it depends on changed (an
            # unchanged config on every logrotate HUP hit a failing channel with no wait; an audit). A new worker
            # was asked already (a second request could run a second pass).
            if report_id in new or (worker.failing and not _changed(old, config, report_id)):
                continue
            worker.request()

    def info(self, state: str) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        return {
            "state": state, "pid": os.getpid(), "host": socket.gethostname(), "config": str(self.config.path),
            "started_at": self.started_at.isoformat(),
            "busy": sorted(w.report_id for w in self.workers.values() if w.busy),
            "next_runs": {r.id: (f.isoformat() if r.enabled and (f := due.next_fire(r, now)) else None)
                          for r in self.config.reports},
        }


def _digest(path: Any) -> str | None:
    """A hash of the config file's bytes, or None when it cannot be read."""
    try:
        return hashlib.sha256(config_path(path).read_bytes()).hexdigest()
    except (OSError, ValueError):
        return None


def _wall() -> float:
    """The wall clock, in seconds since the epoch (apart, so a test can set it forward)."""
    return time.time()


def serve(config_path: Any, *, log_format: str = "text", verbose: bool = False) -> int:
    """Run the scheduler until SIGTERM/SIGINT; 0 on a clean stop."""
    configure_logging(log_format, verbose=verbose)
    daemon = Daemon(config_path)
    code = daemon.run()
    if daemon.abandoned:
        # A worker is stuck in a database or network call; interpreter shutdown could wait on it
        # or crash under it. Its claims expire and are taken over, so leave now, cleanly logged.
        logging.shutdown()
        os._exit(code)
    return code
