"""Crontab expressions with standard (Vixie cron) meaning, as APScheduler 3 triggers.

APScheduler 3's ``CronTrigger.from_crontab`` departs from cron in two ways that would move a
report to another day without any error:

- it numbers weekdays from Monday = 0, so ``0 9 * * 1`` would fire on Tuesdays (APScheduler
  issue 286); here ``0``/``7`` is Sunday and ``1`` Monday, as in crontab(5);
- it fires only when day-of-month *and* day-of-week match, where cron fires when either does
  (when both are restricted): ``0 9 1 * mon`` is "the 1st and every Monday".

Fire times are computed in the given IANA timezone, so ``0 9 * * mon`` in Europe/Berlin is
08:00Z in winter and 07:00Z in summer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_ALIASES = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}


def _weekday(token: str) -> int:
    token = token.strip().lower()
    if token.isdigit():
        number = int(token)
        if not 0 <= number <= 7:
            raise ValueError(f"day of week {token!r} is out of range (0-7, 0 and 7 are Sunday)")
        return number % 7
    if token in _NAMES:
        return _NAMES.index(token)
    raise ValueError(f"unknown day of week {token!r} (expected 0-7 or sun, mon, ..., sat)")


def _weekdays(field: str) -> str:
    """A crontab day-of-week field as an explicit list of names APScheduler reads correctly."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step {step_text!r} must be at least 1")
        if span in ("*", "?"):
            first, last = 0, 6
        elif "-" in span:
            a, b = span.split("-", 1)
            first, last = _weekday(a), _weekday(b)
            if b.strip() == "7":
                last = 7  # 5-7 is Friday to Sunday
            if last < first:
                raise ValueError(f"day-of-week range {span!r} runs backwards")
        else:
            first = _weekday(span)
            last = 6 if step_text else first
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(_NAMES[d] for d in sorted(days))


class _GapSafe(BaseTrigger):
    """A trigger that keeps a fire moved by a spring-forward gap, whenever it is asked.

    A local time that does not exist (02:30 on the night clocks go forward) fires an hour later
    (03:30). APScheduler 3 moves it so only when asked before the gap: asked at 03:29 it compares
    wall clocks, finds 02:30 already past and answers the next day, so a scheduler started in that
    half hour skipped the day's report. Here the fires are searched from a few hours earlier and the
    first one at or after the asked instant is kept.
    """

    _LOOKBACK = timedelta(hours=3)  # longer than any DST shift

    def __init__(self, inner: BaseTrigger) -> None:
        self.inner = inner

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        # As CronTrigger does: after a previous fire, from just after it (CronTrigger's min(now, previous
        # + 1 µs), bumped past previous when now is not later, is always previous + 1 µs).
        start = _utc(now) if previous_fire_time is None else _utc(previous_fire_time) + _TICK
        fire = self.inner.get_next_fire_time(None, start - self._LOOKBACK)
        for _ in range(10_000):  # a whole-minute cron has at most 180 fires in the look-back
            if fire is None or _utc(fire) >= start:
                return fire
            fire = self.inner.get_next_fire_time(None, _utc(fire) + _TICK)
        return None

    def __str__(self) -> str:
        return str(self.inner)


_TICK = timedelta(microseconds=1)


def _utc(instant: datetime) -> datetime:
    # Compared in UTC: two datetimes sharing a zone compare by wall clock, wrong across a fall-back fold.
    return instant.astimezone(dt_timezone.utc)


def crontab_trigger(expr: str, timezone: str) -> BaseTrigger:
    """An APScheduler trigger for a five-field crontab ``expr`` in ``timezone``; ValueError when invalid."""
    expr = _ALIASES.get(expr.strip().lower(), expr)
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(fields)}")
    minute, hour, day, month, weekday = fields
    weekday = _weekdays(weekday)
    common = dict(minute=minute, hour=hour, month=month, second=0, timezone=timezone)
    if day not in ("*", "?") and weekday != "*":
        return _GapSafe(OrTrigger([CronTrigger(day=day, **common), CronTrigger(day_of_week=weekday, **common)]))
    return _GapSafe(CronTrigger(day=day if day != "?" else "*", day_of_week=weekday, **common))
