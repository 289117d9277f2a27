"""Cron fire times against a brute force written from crontab(5) and the README's DST rules.

The brute force lists, for every local date the expression matches, the instants its wall-clock time
names: none is skipped; a time that does not exist (the spring-forward gap) fires as the same wall
clock read with the offset before the change (02:30 -> 03:30 CEST), a time that occurs twice (the
autumn fold) fires at both. The trigger's next fire after a previous fire must be the first of those
instants after it.
"""

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentdigest.cron import crontab_trigger

UTC = timezone.utc
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Africa/Cairo",
         "America/Havana", "Asia/Kathmandu", "UTC"]


def _instants(day: date, hour: int, minute: int, zone: ZoneInfo) -> list[datetime]:
    naive = datetime(day.year, day.month, day.day, hour, minute)
    out = []
    for fold in (0, 1):
        instant = naive.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == naive or fold == 0:  # fold 0 stands for a gap time
            out.append(instant)
    return sorted(set(out))


def brute_force_next(after: datetime, hour: int, minute: int, zone: ZoneInfo, matches) -> datetime:
    day = after.astimezone(zone).date() - timedelta(days=2)
    for _ in range(800):
        if matches(day):
            for instant in _instants(day, hour, minute, zone):
                if instant > after:
                    return instant
        day += timedelta(days=1)
    raise AssertionError("no fire within 800 days")


def _changes(zone: str) -> list[datetime]:
    """The days (UTC midnights) before each change of the zone's offset in 2025-2027."""
    tz, out = ZoneInfo(zone), []
    day = datetime(2025, 1, 1, tzinfo=UTC)
    while day.year < 2028:
        if (day + timedelta(days=1)).astimezone(tz).utcoffset() != day.astimezone(tz).utcoffset():
            out.append(day)
        day += timedelta(days=1)
    return out or [datetime(2026, 3, 28, tzinfo=UTC)]


CHANGES = {zone: _changes(zone) for zone in ZONES}

KINDS = {
    "daily": ("{m} {h} * * *", lambda d: True),
    "monday": ("{m} {h} * * mon", lambda d: d.weekday() == 0),
    "first": ("{m} {h} 1 * *", lambda d: d.day == 1),
}


@pytest.mark.parametrize(("expr", "zone", "previous", "expected"), [
    # Found in a scheduling audit: APScheduler 3 skipped a fire whose UTC offset differed from the asked
    # instant's, so these reports were never sent.
    ("0 0 * * *", "Europe/Berlin", "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"),
    ("30 0 * * *", "Europe/Berlin", "2026-03-29T00:30:00+01:00", "2026-03-30T00:30:00+02:00"),
    ("@monthly", "Europe/Berlin", "2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00"),
    ("0 0 * * *", "America/New_York", "2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00"),
    ("0 0 * * *", "Australia/Lord_Howe", "2026-10-04T00:00:00+10:30", "2026-10-05T00:00:00+11:00"),
    ("0 0 * * mon", "Europe/Berlin", "2026-03-23T00:00:00+01:00", "2026-03-30T00:00:00+02:00"),
    # and what already held: the gap's 02:30 fires at 03:30 CEST, autumn days are not skipped
    ("30 2 * * *", "Europe/Berlin", "2026-03-28T02:30:00+01:00", "2026-03-29T03:30:00+02:00"),
    ("0 0 * * *", "Europe/Berlin", "2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00"),
])
def test_the_next_fire_across_a_change_of_offset(expr, zone, previous, expected):
    prev = datetime.fromisoformat(previous)
    fire = crontab_trigger(expr, zone).get_next_fire_time(prev, prev)
    assert fire.astimezone(UTC) == datetime.fromisoformat(expected).astimezone(UTC)


@settings(max_examples=200, deadline=None)
@given(zone=st.sampled_from(ZONES), kind=st.sampled_from(sorted(KINDS)),
       hour=st.integers(0, 23), minute=st.sampled_from([0, 15, 30, 45]), data=st.data(),
       shift=st.integers(-40 * 24 * 60, 3 * 24 * 60))
def test_fires_match_the_brute_force(zone, kind, hour, minute, data, shift):
    """Started anywhere from 40 days before a change of offset to 3 days after it."""
    template, matches = KINDS[kind]
    tz = ZoneInfo(zone)
    trigger = crontab_trigger(template.format(m=minute, h=hour), zone)
    previous = data.draw(st.sampled_from(CHANGES[zone])) + timedelta(minutes=shift)
    for _ in range(6):  # a run of successive fires, each asked after the one before
        fire = trigger.get_next_fire_time(previous, previous)
        expected = brute_force_next(previous, hour, minute, tz, matches)
        assert fire is not None and fire.astimezone(UTC) == expected, (template, zone, previous, fire, expected)
        previous = fire


@settings(max_examples=60, deadline=None)
@given(zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"]),
       kind=st.sampled_from(sorted(KINDS)), hour=st.integers(0, 23), minute=st.sampled_from([0, 30]),
       start=st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(1970, 1, 20)))
def test_fires_before_1970_match_the_brute_force(zone, kind, hour, minute, start):
    """Found in a scheduling audit: APScheduler's year field begins in 1970, so every fire asked before it was
    1 January 1970 and `run --due --now 1965-...` (a clock periods allow) said "nothing is due yet"."""
    template, matches = KINDS[kind]
    trigger = crontab_trigger(template.format(m=minute, h=hour), zone)
    previous = start.replace(tzinfo=UTC)
    for _ in range(3):
        fire = trigger.get_next_fire_time(previous, previous)
        expected = brute_force_next(previous, hour, minute, ZoneInfo(zone), matches)
        assert fire is not None and fire.astimezone(UTC) == expected, (template, zone, previous, fire, expected)
        previous = fire
