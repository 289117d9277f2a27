"""Periods: calendar alignment, DST, keys, tiling (hypothesis)."""

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentdigest.errors import InputError
from agentdigest.periods import KINDS, Period, last_complete, parse_period, period_containing

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata",
         "America/Santiago", "Pacific/Chatham", "Australia/Lord_Howe", "America/Sao_Paulo", "Asia/Tehran"]
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31)).map(
    lambda d: d.replace(tzinfo=timezone.utc))


@settings(max_examples=300)
@given(kind=st.sampled_from(KINDS), tz=st.sampled_from(ZONES), instant=instants)
def test_consecutive_periods_tile_time(kind, tz, instant):
    p = period_containing(kind, instant, tz)
    assert p.start_utc <= instant < p.end_utc
    assert p.next().start_utc == p.end_utc
    assert p.previous().end_utc == p.start_utc
    assert p.next().previous() == p
    # the instant just before the end belongs to p, the end itself to the next one
    assert period_containing(kind, p.end_utc - timedelta(microseconds=1), tz) == p
    assert period_containing(kind, p.end_utc, tz) == p.next()


@settings(max_examples=300)
@given(kind=st.sampled_from(KINDS), tz=st.sampled_from(ZONES), instant=instants)
def test_keys_round_trip(kind, tz, instant):
    p = period_containing(kind, instant, tz)
    assert parse_period(kind, p.key, tz) == p


@settings(max_examples=200)
@given(kind=st.sampled_from(KINDS), tz=st.sampled_from(ZONES), instant=instants)
def test_periods_start_at_local_midnight_on_their_first_day(kind, tz, instant):
    p = period_containing(kind, instant, tz)
    local = p.start
    assert local.date() == p.first_day or local.time() != datetime.min.time()  # midnight skipped by DST
    if kind == "week":
        assert p.first_day.isoweekday() == 1
    if kind == "month":
        assert p.first_day.day == 1


@pytest.mark.parametrize("tz,key,hours", [
    ("Europe/Berlin", "2026-W13", 167),     # spring forward 29 Mar 2026
    ("Europe/Berlin", "2026-W43", 169),     # fall back 25 Oct 2026
    ("Europe/Berlin", "2026-W48", 168),
    ("America/New_York", "2026-W10", 167),  # Sunday 8 Mar 2026
    ("America/New_York", "2026-W44", 169),  # Sunday 1 Nov 2026
    ("UTC", "2026-W48", 168),
])
def test_dst_weeks_have_167_or_169_hours(tz, key, hours):
    assert parse_period("week", key, tz).hours == hours


def test_iso_week_keys_and_bounds():
    p = parse_period("week", "2026-W48", "Europe/Berlin")
    assert p.first_day == date(2026, 11, 23)
    assert p.start == datetime(2026, 11, 23, tzinfo=ZoneInfo("Europe/Berlin"))
    assert p.start_utc == datetime(2026, 11, 22, 23, tzinfo=timezone.utc)
    assert p.key == "2026-W48"
    # ISO week 1 of 2027 starts on Monday 4 Jan 2027; 2026-12-31 is in 2026-W53
    assert period_containing("week", datetime(2026, 12, 31, 12, tzinfo=timezone.utc), "UTC").key == "2026-W53"
    assert parse_period("week", "2027-W01", "UTC").first_day == date(2027, 1, 4)


def test_month_and_day_keys():
    assert parse_period("month", "2026-11", "UTC").end_utc == datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert parse_period("month", "2026-12", "UTC").next().key == "2027-01"
    assert parse_period("month", "2026-01", "UTC").previous().key == "2025-12"
    assert parse_period("day", "2026-03-29", "Europe/Berlin").hours == 23


def test_last_complete_is_the_period_before_now():
    now = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)  # Monday 09:00 Berlin
    assert last_complete("week", now, "Europe/Berlin").key == "2026-W48"
    # Sunday 23:30 in New York is Monday 04:30 UTC: the New York week is not over yet
    now = datetime(2026, 11, 30, 4, 30, tzinfo=timezone.utc)
    assert last_complete("week", now, "America/New_York").key == "2026-W47"
    assert last_complete("day", now, "America/New_York").key == "2026-11-28"
    assert last_complete("month", now, "UTC").key == "2026-10"


@pytest.mark.parametrize("kind,key", [("week", "2026-48"), ("month", "2026-W48"), ("day", "yesterday"),
                                      ("day", "2026-2-3"), ("week", "2026-W5")])
def test_bad_keys_are_input_errors(kind, key):
    with pytest.raises(InputError, match="expected e.g."):
        parse_period(kind, key, "UTC")


@pytest.mark.parametrize("kind,key,why", [
    ("week", "2025-W53", "2025 has ISO weeks W01 to W52"),
    ("week", "2026-W54", "2026 has ISO weeks W01 to W53"),
    ("week", "2026-W00", "2026 has ISO weeks W01 to W53"),
    ("month", "2026-13", "months are 01 to 12"),
    ("month", "2026-00", "months are 01 to 12"),
    ("day", "2026-02-30", "February 2026 has 28 days"),
    ("day", "2028-02-30", "February 2028 has 29 days"),
    ("day", "2026-04-31", "April 2026 has 30 days"),
    ("day", "2026-13-01", "months are 01 to 12"),
])
def test_a_key_of_the_right_shape_that_names_no_period_says_why(kind, key, why):
    """Found in a scheduling audit: '2025-W53' was 'not a week key (expected e.g. 2026-W48)', though it is
    written as one; the user could not tell what was wrong with it."""
    with pytest.raises(InputError, match=rf"^--period '{key}' names no {kind}: {why}$"):
        parse_period(kind, key, "UTC")


@settings(max_examples=200)
@given(year=st.integers(1901, 9989))
def test_week_53_exists_exactly_in_long_iso_years(year):
    # The rule as ISO 8601 states it, not as the calendar module computes it: a year has 53 weeks when it
    # begins on a Thursday, or is a leap year beginning on a Wednesday.
    jan1 = date(year, 1, 1).isoweekday()
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    long_year = jan1 == 4 or (leap and jan1 == 3)
    if long_year:
        assert parse_period("week", f"{year}-W53", "UTC").first_day.isoweekday() == 1
    else:
        with pytest.raises(InputError, match=f"{year} has ISO weeks W01 to W52$"):
            parse_period("week", f"{year}-W53", "UTC")


@pytest.mark.parametrize("tz,key,hours_of_week,week", [
    # Zones that crossed the date line skipped a whole local day (tz database; 24 hours less in that week).
    ("Pacific/Apia", "2011-12-30", 144, "2011-W52"),
    ("Pacific/Fakaofo", "2011-12-30", 144, "2011-W52"),
    ("Pacific/Kiritimati", "1994-12-31", 144, "1994-W52"),
    ("Pacific/Kwajalein", "1993-08-21", 144, "1993-W33"),
])
def test_a_day_the_zone_skipped_is_no_period(tz, key, hours_of_week, week):
    """Found in a scheduling audit: `run --period 2011-12-30` in Pacific/Apia reported on a day of 0 hours,
    and the week's daily series listed that date."""
    with pytest.raises(InputError, match=rf"^--period '{key}' names no day in {tz}: its clocks skipped that date$"):
        parse_period("day", key, tz)
    skipped = date.fromisoformat(key)
    weekly = parse_period("week", week, tz)
    assert weekly.hours == hours_of_week
    assert skipped not in weekly.days and len(weekly.days) == 6
    assert len(weekly.day_starts_utc) == 7  # six days' starts and the week's end, each day one bucket
    before = parse_period("day", (skipped - timedelta(days=1)).isoformat(), tz)
    after = parse_period("day", (skipped + timedelta(days=1)).isoformat(), tz)
    assert before.end_utc == after.start_utc  # nothing between them: the two days tile time
    # the day that ended last is the one before the skipped date, not the empty one
    assert last_complete("day", after.start_utc + timedelta(hours=9), tz) == before


def test_period_is_hashable_and_ordered():
    a = parse_period("week", "2026-W47", "UTC")
    assert a < a.next() and len({a, a.next().previous()}) == 1
    assert isinstance(a, Period)
