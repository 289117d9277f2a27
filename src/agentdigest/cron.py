"""Crontab expressions with standard (Vixie cron) meaning, as APScheduler 3 triggers.

APScheduler 3's ``CronTrigger.from_crontab`` departs from cron in two ways that would move a
report to another day without any error:

- it numbers weekdays from Monday = 0, so ``0 9 * * 1`` would fire on Tuesdays (APScheduler
  issue 286); here ``0``/``7`` is Sunday and ``1`` Monday, as in crontab(5);
- it fires only when day-of-month *and* day-of-week match, where cron fires when either does
  (when both are restricted): ``0 9 1 * mon`` is "the 1st and every Monday". A field that begins
  with ``*`` (``*/2``) counts as unrestricted there, as in cron: ``0 9 */2 * mon`` is the Mondays
  that fall on an odd day.

Fire times are computed in the given IANA timezone, so ``0 9 * * mon`` in Europe/Berlin is
08:00Z in winter and 07:00Z in summer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from zoneinfo import ZoneInfo

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
            raise ValueError(f"weekday {token!r} is not in 0-7 (0 and 7 are Sunday)")
        return number % 7
    if token in _NAMES:
        return _NAMES.index(token)
    raise ValueError(f"weekday {token!r} is not in 0-7 or sun, mon, ..., sat")


def _weekdays(field: str) -> str:
    """A crontab day-of-week field as an explicit list of names APScheduler reads correctly."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else 1 if not step_text else 0
        if step < 1:
            raise ValueError(f"weekday {field!r}: a step must be a number of at least 1")
        if span in ("*", "?"):
            first, last = 0, 6
        elif "-" in span:
            a, b = span.split("-", 1)
            first, last = _weekday(a), _weekday(b)
            if b.strip() == "7":
                last = 7  # 5-7 is Friday to Sunday
            if a.strip() == "7":
                first = 7  # 7-7 is Sunday (it read as 0-7, every day: found in an operator audit)
            if last < first:
                raise ValueError(f"weekday range {span!r} runs backwards")
        else:
            first = _weekday(span)
            last = 6 if step_text else first
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(_NAMES[d] for d in sorted(days))


class _WallClock(BaseTrigger):
    """Cron fire times in a timezone, computed as cron reads them: on the local wall clock.

    ``inner`` matches the fields on a wall clock without time zone (it runs in UTC, which has no DST);
    each matching wall-clock time is then placed in ``zone``:

    - a time that does not exist (02:30 on the night clocks go forward) fires at the instant that
      wall clock names with the offset before the change: 03:30 by the new clock;
    - a time that happens twice (the night clocks go back) fires at both instants.

    APScheduler 3's own zone arithmetic got three cases wrong (found in audits): asked at 03:29 on the
    spring night it found 02:30 past and answered the next day; a midnight that does not exist (Cairo,
    Havana) was skipped altogether; and a fire whose UTC offset differed from the asked instant's was
    skipped: ``0 0 * * *`` asked just after 00:00 CET on 29 March answered 31 March, and ``0 0 1 * *``
    asked on 1 March answered 1 May, so those reports were never sent.
    """

    _AROUND = timedelta(hours=3)  # longer than any DST shift: how far wall clock and instants can part

    def __init__(self, inner: BaseTrigger, zone: ZoneInfo) -> None:
        self.inner, self.zone = inner, zone

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        # As CronTrigger does: after a previous fire, from just after it (CronTrigger's min(now, previous
        # + 1 µs), bumped past previous when now is not later, is always previous + 1 µs).
        start = _utc(now) if previous_fire_time is None else _utc(previous_fire_time) + _TICK
        wall = start.astimezone(self.zone).replace(tzinfo=None)
        # Away from a change of offset the wall clock is the instant's: the first matching time is the fire.
        candidate = self._match(wall.replace(tzinfo=dt_timezone.utc))
        if candidate is None:
            return None
        fire = _instants(candidate.replace(tzinfo=None), self.zone)[0]
        if fire >= start and _steady(self.zone, start - self._AROUND, fire + self._AROUND):
            return fire.astimezone(self.zone)
        # Near one, every matching time from a little earlier is placed, and the earliest instant kept.
        best: datetime | None = None
        stop: datetime | None = None  # the wall clock past which no candidate can fire before ``best``
        candidate = self._match((wall - self._AROUND).replace(tzinfo=dt_timezone.utc))
        for _ in range(100_000):  # a whole-minute cron has at most 360 candidates in the window searched
            naive = None if candidate is None else candidate.replace(tzinfo=None)
            if naive is None or (stop is not None and naive > stop):
                break
            for instant in _instants(naive, self.zone):
                if instant >= start and (best is None or instant < best):
                    best, stop = instant, naive + self._AROUND
            candidate = self._match(candidate + _TICK)
        return None if best is None else best.astimezone(self.zone)

    def _match(self, wall: datetime) -> datetime | None:
        """The first wall-clock time at or after ``wall`` (a naive time dressed as UTC) the fields match.

        APScheduler's year field begins in 1970: asked earlier, it answered 1 January 1970, so `run --due --now`
        with a clock of 1900-1969 (which periods allow) said "nothing is due yet" (a scheduling audit). Such a
        time is matched 400 years later, where the Gregorian calendar, weekdays included, repeats exactly.
        """
        shift = _GREGORIAN_CYCLE if wall.year < 1971 else timedelta(0)
        found = self.inner.get_next_fire_time(None, wall + shift)
        return None if found is None else found - shift

    def __str__(self) -> str:
        return f"{self.inner} in {self.zone.key}"


_TICK = timedelta(microseconds=1)
_GREGORIAN_CYCLE = timedelta(days=146_097)  # 400 years: 20,871 weeks exactly


def _instants(naive: datetime, zone: ZoneInfo) -> list[datetime]:
    """The instants (UTC) a local wall-clock time names: one, two in a fold, and for a time in a gap the
    one its wall clock names with the offset before the change (fold 0 means that for a gap time)."""
    out = []
    for fold in (0, 1):
        instant = naive.replace(tzinfo=zone, fold=fold).astimezone(dt_timezone.utc)
        exists = instant.astimezone(zone).replace(tzinfo=None) == naive
        if (exists or fold == 0) and instant not in out:
            out.append(instant)
    return out


def _steady(zone: ZoneInfo, lo: datetime, hi: datetime) -> bool:
    """Whether ``zone``'s UTC offset is the same from ``lo`` to ``hi`` (offsets change at most a few times
    a year, never twice in a day, so days are stepped)."""
    offset, at = lo.astimezone(zone).utcoffset(), lo
    while at < hi:
        at = min(at + timedelta(days=1), hi)
        if at.astimezone(zone).utcoffset() != offset:
            return False
    return True


def _utc(instant: datetime) -> datetime:
    # Compared in UTC: two datetimes sharing a zone compare by wall clock, wrong across a fall-back fold.
    return instant.astimezone(dt_timezone.utc)


def crontab_trigger(expr: str, timezone: str) -> BaseTrigger:
    """An APScheduler trigger for a five-field crontab ``expr`` in ``timezone``; ValueError when invalid."""
    expr = _ALIASES.get(expr.strip().lower(), expr)
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"it has {len(fields)} field(s), not 5 (minute hour day month weekday)")
    minute, hour, day, month, weekday_field = fields
    for name, text, allowed in (("minute", minute, "0-59"), ("hour", hour, "0-23"), ("day", day, "1-31"),
                                ("month", month, "1-12 or jan-dec")):
        try:
            CronTrigger(**{name: "*" + text[1:] if name == "day" and text.startswith("?") else text}, timezone="UTC")
        except ValueError as exc:
            # APScheduler's words named no field: "Error validating expression '25': the last value (25) is
            # higher than the maximum value (23)" (found by a new user)
            step = "ncrement" in str(exc)
            raise ValueError(f"{name} {text!r}: a step must be at least 1" if step
                             else f"{name} {text!r} is not in {allowed}") from None
    weekday = _weekdays(weekday_field)
    zone = ZoneInfo(timezone)
    common = dict(minute=minute, hour=hour, month=month, second=0, timezone="UTC")  # the wall clock, see _WallClock
    # Either, as cron does, only when neither field begins with "*" (cron's DOM_STAR/DOW_STAR): "*/2" is a
    # restriction cron still ANDs (found in an operator audit: `0 9 */2 * mon` fired every odd day too).
    if not day.startswith(("*", "?")) and not weekday_field.startswith(("*", "?")):
        return _WallClock(OrTrigger([CronTrigger(day=day, **common), CronTrigger(day_of_week=weekday, **common)]), zone)
    return _WallClock(CronTrigger(day="*" + day[1:] if day.startswith("?") else day, day_of_week=weekday, **common),
                      zone)
