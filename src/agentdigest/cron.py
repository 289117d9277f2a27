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
        return OrTrigger([CronTrigger(day=day, **common), CronTrigger(day_of_week=weekday, **common)])
    return CronTrigger(day=day if day != "?" else "*", day_of_week=weekday, **common)
