"""When a report period is due, which periods a scheduler must still send, and which are late.

A period is *due* once the first cron fire at or after its end (evaluated in the report's
timezone) has passed: a week ending Monday 00:00 Berlin with ``0 9 * * mon`` is due Monday
09:00 Berlin, 08:00Z in winter and 07:00Z in summer.

A period is *done* when every channel of the report has it ``sent`` in the ledger. A report
without channels has nothing to deliver, so it is done once its ``report.json`` is archived.

What a scheduler runs (:func:`due_periods`): the latest due period, plus up to ``catch_up``
periods before it, each only when not done, and none a pass left out as ending before the report's
first event (a ``before_data`` run in the ledger: schedule.py). With ``catch_up = 0`` (the default) an empty or
stale ledger never causes a backfill of history: only the latest due period is sent. A period
whose delivery was tried and never sent stays among them (for a year), so a failed week is tried
again at the next fires and stays late until it goes out.

A period is *late* (:func:`late_periods`) when it is one of those, is not done, and its due time
is more than ``grace`` ago (the report's ``grace_minutes``, else ``[alarms] grace_minutes``).

A report paused (``enabled = false``) is never late. Resumed, it is as a scheduler back from downtime: its
candidates are the latest due period and its ``catch_up`` window (and a period that failed before the pause),
so the periods that came due while it was paused are neither sent nor late, only said (:func:`passed_over`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from .archive import report_dir
from .config import Config, ReportConfig
from .cron import crontab_trigger
from .errors import InputError
from .periods import Period, last_complete, parse_period

# How far back to look for the last cron fire; a crontab fires at least once in four years (Feb 29).
_LOOKBACK = (timedelta(days=2), timedelta(days=32), timedelta(days=367), timedelta(days=4 * 366 + 1))


@lru_cache(maxsize=256)
def trigger(schedule: str, tz: str) -> BaseTrigger:
    """The (cached) APScheduler trigger of a crontab ``schedule`` in timezone ``tz``."""
    return crontab_trigger(schedule, tz)


def _utc(instant: datetime) -> datetime:
    # Arithmetic on zoneinfo datetimes is wall-clock arithmetic; only UTC is safe across DST.
    return (instant if instant.tzinfo else instant.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def next_fire(report: ReportConfig, at: datetime) -> datetime | None:
    """The first fire time of ``report``'s cron at or after ``at`` (UTC), or None if it never fires."""
    fire = trigger(report.schedule, report.timezone).get_next_fire_time(None, _utc(at))
    return None if fire is None else _utc(fire)


def previous_fire(report: ReportConfig, now: datetime) -> datetime | None:
    """The last fire time of ``report``'s cron at or before ``now`` (UTC), or None within four years."""
    now = _utc(now)
    for window in _LOOKBACK:
        lo = now - window
        fire = next_fire(report, lo)
        if fire is not None and fire <= now:
            break
    else:
        return None
    # Bisect on the start instant: cron fires are whole minutes apart, so one second is exact.
    hi = now
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        fire_mid = next_fire(report, mid)
        if fire_mid is not None and fire_mid <= now:
            lo = mid
        else:
            hi = mid
    return next_fire(report, lo)


def due_at(report: ReportConfig, period: Period) -> datetime | None:
    """When ``period`` of ``report`` becomes due: the first cron fire at or after its end (UTC)."""
    return next_fire(report, period.end_utc)


def latest_due(report: ReportConfig, now: datetime) -> Period | None:
    """The most recent period of ``report`` that is due at ``now``."""
    fire = previous_fire(report, now)
    return None if fire is None else last_complete(report.period, fire, report.timezone)


def candidates(report: ReportConfig, now: datetime, ledger: Any = None) -> list[Period]:
    """The latest due period and the ``catch_up`` periods before it, oldest first; with a ledger, also
    the due periods of the last year whose delivery was tried and never sent (a failed week stays due
    at the next fires, and late, instead of dropping out of the window unsent and unflagged)."""
    latest = latest_due(report, now)
    if latest is None:
        return []
    # A day the zone skipped (Apia's 30 December 2011) has no hours: nothing to report, nothing to send.
    periods = {p for n in range(report.catch_up + 1) if (p := latest.previous(n)).hours}
    if ledger is not None:
        sent, unfinished = ledger.tried_periods(report.id)
        # A later period went out already (the schedule was changed, from Monday to Friday say): the latest
        # due one by the new schedule is history now, and history is not backfilled. A "later" period that
        # has not even ended is no history: a clock that was ahead sent it (run --due --now 2030-01-01, a
        # host booted with a wrong clock), and it silenced every real week until then (a scheduling audit).
        if report.catch_up == 0 and any(latest < p and p.end_utc <= _utc(now) for p in _parsed(report, sent)):
            periods.discard(latest)
        since = _utc(now) - timedelta(days=366)
        periods.update(p for p in _parsed(report, unfinished) if p <= latest and p.end_utc >= since)
        # Left out by a pass as ending before the report's first event (schedule.py): history, neither due nor late
        periods.difference_update(_parsed(report, sorted(ledger.before_data_periods(report.id))))
    return sorted(periods)


def later_sent(report: ReportConfig, latest: Period, now: datetime, ledger: Any) -> Period | None:
    """The newest ended period sent after ``latest``: why :func:`candidates` left ``latest`` out."""
    sent, _ = ledger.tried_periods(report.id)
    later = [p for p in _parsed(report, sent) if latest < p and p.end_utc <= _utc(now)]
    return max(later, default=None)


def passed_over(report: ReportConfig, latest: Period, now: datetime, ledger: Any) -> list[Period]:
    """The periods that came due while no pass ran and that no pass will send, oldest first: after the newest
    one sent, before the catch-up window, and never tried. History is not backfilled unless ``catch_up``
    says so, but it is said (a scheduling audit: a scheduler down for three weeks sent the latest week
    on restart, and nothing mentioned the two before it). ``latest`` is :func:`latest_due` at ``now``."""
    if ledger is None:
        return []
    sent, unfinished = ledger.tried_periods(report.id)
    ended = [p for p in _parsed(report, sent) if p.end_utc <= _utc(now)]  # not one sent by a clock that was ahead
    if not ended or max(ended) > latest:  # nothing sent yet (no history to speak of), or the schedule changed
        return []
    tried, oldest = {*sent, *unfinished, *ledger.before_data_periods(report.id)}, latest.previous(report.catch_up)
    out, period = [], max(ended).next()
    # The whole gap, however long ("--now 2099": 26,000 days take 0.15 s); it stopped at 366 periods, so the
    # line named 2026-W49 to 2033-W48 (366 weeks) for a gap of 3,700 (found in a new-user audit)
    while period < oldest:
        if period.hours and period.key not in tried:
            out.append(period)
        period = period.next()
    return out


def _parsed(report: ReportConfig, keys: list[str]) -> list[Period]:
    """The keys as periods of the report; a key of another kind (the report's period was changed) is left out."""
    out = []
    for key in keys:
        try:
            out.append(parse_period(report.period, key, report.timezone))
        except InputError:
            continue
    return out


IsDone = Callable[[ReportConfig, Period], bool]


def due_periods(report: ReportConfig, now: datetime, ledger: Any, *, archive: Path | None = None,
                is_done: IsDone | None = None) -> list[Period]:
    """The periods of ``report`` to run at ``now``: due and not done, oldest first."""
    done = is_done or done_checker(ledger, archive)
    return [p for p in candidates(report, now, ledger) if not done(report, p)]


def done_checker(ledger: Any, archive: Path | None, config: Config | None = None, *,
                 renamed: bool = False) -> IsDone:
    """A function telling whether a report period needs nothing more (see the module docstring). With the
    ``config``, a target it no longer has (a refused recipient taken out) does not keep a period undone.
    ``renamed`` (for lateness: ``check --missed``, the late alarm): a target that a channel no longer in the
    config sent the period to, at the same address or place, counts as sent, as the next pass only records it
    (renames.sent_before_renaming); a pass still runs such a period, to record it."""

    def done(report: ReportConfig, period: Period) -> bool:
        if not report.channels:
            return archive is not None and archived_whole(report_dir(archive, report.id, period.key) / "report.json",
                                                          period)
        targets = None
        if config is not None and archive is not None:
            from .period_targets import current_targets

            targets = current_targets(config, report, period.key, archive)
        if ledger.is_period_sent(report.id, period.key, list(report.channels), targets):
            return True
        if not renamed or config is None or targets is None:
            return False
        from .renames import sent_before_renaming

        return sent_before_renaming(config, ledger, report, period.key, targets)

    return done


def archived_whole(path: Path, period: Period) -> bool:
    """Whether ``path`` (a period's report.json) is archived and of the whole period. A preview made before the
    period ended (``run --dry-run --period`` of this week) holds its figures so far: found in an operator audit, a
    report without channels was then "already sent" when its week came due, and the complete week was never
    computed. Its ``generated_at`` (the run's clock) tells: before the period's end, it is such a preview."""
    try:
        generated = datetime.fromisoformat(json.loads(path.read_text(encoding="utf-8"))["generated_at"])
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, TypeError):
        return path.is_file()  # archived, but unreadable here: as before, it counts
    return _utc(generated) >= period.end_utc


def grace(config: Config, report: ReportConfig) -> timedelta:
    minutes = report.grace_minutes if report.grace_minutes is not None else config.alarms.grace_minutes
    return timedelta(minutes=minutes)


@dataclass(frozen=True)
class Late:
    """A due period not delivered within its grace."""

    report_id: str
    period: Period
    due_at: datetime
    deadline: datetime


def late_periods(config: Config, report: ReportConfig, now: datetime, is_done: IsDone,
                 ledger: Any = None) -> list[Late]:
    """The periods of ``report`` that should have been delivered by ``now`` and were not; none while it is paused."""
    if not report.enabled:
        return []
    now = _utc(now)
    out, allowed = [], grace(config, report)
    for period in candidates(report, now, ledger):
        when = due_at(report, period)
        if when is None or now < when + allowed or is_done(report, period):
            continue
        out.append(Late(report.id, period, when, when + allowed))
    return out


def never_sent(report: ReportConfig) -> tuple[Period, datetime | None, Period | None] | None:
    """A period the schedule would never send, with the fire after it and the period that fire sends;
    None when every period of a year (2026, DST changes included) is sent by some fire.

    A fire sends the latest period complete at that moment (plus ``catch_up`` before it), so a cron
    that fires less often than the period (a daily report on Mondays, a monthly one on the 31st) leaves
    periods that no fire ever sends.
    """
    period = last_complete(report.period, datetime(2026, 1, 2, tzinfo=timezone.utc), report.timezone)
    for _ in range({"day": 366, "week": 53, "month": 12}[report.period]):
        period = period.next()
        fire = due_at(report, period)
        # The latest period due at a fire is the last complete one then (latest_due's search for the fire at or
        # before it finds this very fire): asking latest_due cost 20 cron evaluations a period, 0.5-1.5 s for
        # each day report every time a config was loaded (found in a scheduling audit).
        latest = None if fire is None else last_complete(report.period, fire, report.timezone)
        # sent when it lies in [latest - catch_up, latest]: one step back, not a list of every period in
        # between for each of a year's periods (found in a config audit: catch_up = 1000 took 20 s to load)
        if latest is None or not (latest.previous(report.catch_up).first_day <= period.first_day <= latest.first_day):
            return period, fire, latest
    return None
