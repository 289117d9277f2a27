"""Calendar periods in a timezone: day, ISO week and month, half-open and DST-correct.

A period is ``[start, end)`` between two local midnights of the report's IANA timezone, so a
DST week has 167 or 169 hours. Keys: ``2026-11-23`` (day), ``2026-W48`` (ISO week), ``2026-11`` (month).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo

from .errors import InputError

Kind = Literal["day", "week", "month"]
KINDS: tuple[Kind, ...] = ("day", "week", "month")
_KEY_RE = {
    "day": re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"),
    "week": re.compile(r"^(\d{4})-W(\d{2})$"),
    "month": re.compile(r"^(\d{4})-(\d{2})$"),
}
_EXAMPLE = {"day": "2026-11-23", "week": "2026-W48", "month": "2026-11"}


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    # fold=0 picks the first of two midnights, and a midnight skipped by DST maps to the switch instant.
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(timezone.utc).astimezone(tz)


def _exists(day: date, tz: ZoneInfo) -> bool:
    """Whether local ``day`` has any time in ``tz``: a zone that moved across the date line skipped one
    (Pacific/Apia went from 29 to 31 December 2011), a day of no hours that no report can be about."""
    return _local_midnight(day, tz) < _local_midnight(day + timedelta(days=1), tz)


def _first_day(kind: Kind, day: date) -> date:
    if kind == "day":
        return day
    if kind == "week":
        return day - timedelta(days=day.isoweekday() - 1)
    return day.replace(day=1)


def _next_first_day(kind: Kind, first: date) -> date:
    if kind == "day":
        return first + timedelta(days=1)
    if kind == "week":
        return first + timedelta(days=7)
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def _prev_first_day(kind: Kind, first: date) -> date:
    if kind == "month":
        return date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)
    return first - timedelta(days=1 if kind == "day" else 7)


@dataclass(frozen=True, order=True)
class Period:
    """One calendar period of a report: ``[start, end)`` in ``timezone``."""

    kind: Kind
    first_day: date
    timezone: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, instant: datetime) -> datetime:
        """An engine's timestamp (aware, or naive in UTC) in this period's timezone."""
        return (instant if instant.tzinfo else instant.replace(tzinfo=ZoneInfo("UTC"))).astimezone(self.tz)

    @property
    def start(self) -> datetime:
        return _local_midnight(self.first_day, self.tz)

    @property
    def end(self) -> datetime:
        return _local_midnight(_next_first_day(self.kind, self.first_day), self.tz)

    @property
    def start_utc(self) -> datetime:
        return self.start.astimezone(timezone.utc)

    @property
    def end_utc(self) -> datetime:
        return self.end.astimezone(timezone.utc)

    @property
    def hours(self) -> float:
        return (self.end_utc - self.start_utc).total_seconds() / 3600

    @property
    def days(self) -> list[date]:
        """The local calendar dates the period covers (a date the zone skipped is none of them)."""
        last, tz = _next_first_day(self.kind, self.first_day), self.tz
        return [d for i in range((last - self.first_day).days) if _exists(d := self.first_day + timedelta(days=i), tz)]

    @property
    def day_starts_utc(self) -> list[datetime]:
        """The UTC instant each local day of the period starts, then the period's end."""
        return [_local_midnight(d, self.tz).astimezone(timezone.utc) for d in self.days] + [self.end_utc]

    @property
    def key(self) -> str:
        if self.kind == "day":
            return self.first_day.isoformat()
        if self.kind == "week":
            year, week, _ = self.first_day.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{self.first_day.year:04d}-{self.first_day.month:02d}"

    def previous(self, n: int = 1) -> "Period":
        first = self.first_day
        for _ in range(n):
            first = _prev_first_day(self.kind, first)
        return Period(self.kind, first, self.timezone)

    def next(self, n: int = 1) -> "Period":
        first = self.first_day
        for _ in range(n):
            first = _next_first_day(self.kind, first)
        return Period(self.kind, first, self.timezone)

    def contains(self, instant: datetime) -> bool:
        return self.start_utc <= instant.astimezone(timezone.utc) < self.end_utc

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "start": self.start.isoformat(), "end": self.end.isoformat()}

    def label(self) -> str:
        """Human wording: 'week of 23 Nov 2026', '23 Nov 2026', 'November 2026'."""
        if self.kind == "week":
            return f"week of {self.first_day.day} {self.first_day:%b %Y}"
        if self.kind == "day":
            return f"{self.first_day.day} {self.first_day:%b %Y}"
        return f"{self.first_day:%B %Y}"


def period_containing(kind: Kind, instant: datetime, tz: str) -> Period:
    """The period of ``kind`` that contains ``instant`` (naive instants are UTC)."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=timezone.utc)
    local_day = instant.astimezone(ZoneInfo(tz)).date()
    return Period(kind, _first_day(kind, local_day), tz)


def last_complete(kind: Kind, now: datetime, tz: str) -> Period:
    """The most recent period that has fully ended at ``now``."""
    before = period_containing(kind, now, tz).previous()
    # The day before may be one the zone skipped: the day before that is the one that just ended, and taking
    # the empty one left it unsent (Apia's 29 December 2011 at the fire that followed it; a scheduling audit).
    return before if kind != "day" or _exists(before.first_day, before.tz) else before.previous()


def key_kind(key: str) -> Kind | None:
    """The kind of period ``key`` is written as (``2026-W48`` -> week), or None."""
    return next((kind for kind in KINDS if _KEY_RE[kind].match(key.strip())), None)


def parse_period(kind: Kind, key: str, tz: str) -> Period:
    """The period named by ``key``; an InputError says what a key of this kind looks like, or why a key of
    the right shape names no period (2025-W53, 2026-13, 2026-02-30, a day the zone skipped)."""
    m = _KEY_RE[kind].match(key.strip())
    if not m:
        raise InputError(f"--period {key!r} is not a {kind} key (expected e.g. {_EXAMPLE[kind]})")
    year, number = int(m[1]), int(m[2])
    if not YEARS[0] <= year <= YEARS[1]:  # the trend and the conversation window reach past the period
        raise InputError(f"--period {key!r} is out of range (years {YEARS[0]}-{YEARS[1]})")
    try:
        if kind == "day":
            first = date(year, number, int(m[3]))
        elif kind == "week":
            first = date.fromisocalendar(year, number, 1)
        else:
            first = date(year, number, 1)
    except ValueError:
        # Said, not "not a week key (expected e.g. 2026-W48)" for a key of that very shape (a scheduling audit).
        raise InputError(f"--period {key!r} names no {kind}: {_no_such(kind, year, number)}") from None
    if kind == "day" and not _exists(first, ZoneInfo(tz)):
        raise InputError(f"--period {key!r} names no day in {tz}: its clocks skipped that date")
    return Period(kind, first, tz)


def _no_such(kind: Kind, year: int, number: int) -> str:
    if kind == "week":
        return f"{year} has ISO weeks W01 to W{date(year, 12, 28).isocalendar()[1]}"
    if not 1 <= number <= 12:
        return "months are 01 to 12"
    return f"{date(year, number, 1):%B %Y} has {calendar.monthrange(year, number)[1]} days"


#: The years a period (or a pinned clock) may fall in: the report reaches back 8 periods and a window around
#: them, which past these ends leaves the calendar (found in a config audit: 9999-W52 ended "OverflowError").
YEARS = (1900, 9990)
