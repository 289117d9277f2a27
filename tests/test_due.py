"""Due logic and the clock: cron in the report's timezone, DST weeks, catch-up, lateness.

Pure tests against the real APScheduler triggers; time-machine pins the wall clock where the
code reads it (the scheduler's own job times, ``datetime.now``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from apscheduler.schedulers.background import BackgroundScheduler

from agentdigest import due
from agentdigest.config import ReportConfig, parse_config
from agentdigest.cron import crontab_trigger
from agentdigest.errors import ConfigError
from agentdigest.ledger import Ledger
from agentdigest.periods import parse_period


def Z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def make_config(**report) -> object:
    spec = {"id": "weekly", "period": "week", "timezone": "Europe/Berlin", "schedule": "0 9 * * mon",
            "channels": ["box"], **report}
    return parse_config({"source": {"url": "duckdb://", "table": "agent_events"},
                         "channels": {"box": {"type": "outbox", "path": "/tmp/unused-outbox"}},
                         "reports": [spec]})


def report_of(**report):
    return make_config(**report).reports[0]


# -- cron in a timezone -----------------------------------------------------------------------

@pytest.mark.parametrize("pinned,expected", [
    ("2026-01-10T12:00:00Z", "2026-01-12T08:00:00Z"),  # winter: CET = UTC+1
    ("2026-07-08T12:00:00Z", "2026-07-13T07:00:00Z"),  # summer: CEST = UTC+2
    ("2026-03-27T12:00:00Z", "2026-03-30T07:00:00Z"),  # the Monday after the spring change
    ("2026-10-23T12:00:00Z", "2026-10-26T08:00:00Z"),  # the Monday after the autumn change
], ids=["winter", "summer", "after-spring-change", "after-autumn-change"])
def test_monday_nine_berlin_fires_at_the_right_utc_instant(pinned, expected):
    report = report_of()
    with time_machine.travel(Z(pinned), tick=False):
        assert due.next_fire(report, datetime.now(timezone.utc)) == Z(expected)
        # The scheduler itself, reading the pinned clock, plans the job for the same instant.
        scheduler = BackgroundScheduler(timezone=timezone.utc)
        scheduler.start(paused=True)
        try:
            job = scheduler.add_job(print, due.trigger(report.schedule, report.timezone))
            assert job.next_run_time == Z(expected)
        finally:
            scheduler.shutdown(wait=False)


@pytest.mark.parametrize("now,key,hours", [
    ("2026-03-30T06:59:59Z", "2026-W12", 168),  # 08:59:59 CEST on the Monday: not yet
    ("2026-03-30T07:00:00Z", "2026-W13", 167),  # 09:00 CEST: the week that lost an hour
    ("2026-10-26T07:59:59Z", "2026-W42", 168),
    ("2026-10-26T08:00:00Z", "2026-W43", 169),  # 09:00 CET: the week that gained an hour
    ("2026-11-02T08:00:00Z", "2026-W44", 168),
])
def test_the_right_week_is_picked_on_the_monday(now, key, hours):
    period = due.latest_due(report_of(), Z(now))  # latest_due takes the instant: no clock to pin
    assert (period.key, period.hours) == (key, hours)


@pytest.mark.parametrize("expr,weekday_names", [
    ("0 9 * * 1", "mon"),              # crontab numbers Sunday 0, Monday 1 (APScheduler 3 alone: Tuesday)
    ("0 9 * * 0", "sun"),
    ("0 9 * * 7", "sun"),
    ("0 9 * * 1-5", "mon,tue,wed,thu,fri"),
    ("0 9 * * */2", "sun,tue,thu,sat"),
    ("0 9 * * mon-fri", "mon,tue,wed,thu,fri"),
    ("0 9 * * 5-7", "sun,fri,sat"),
    ("0 9 * * 7-7", "sun"),            # was every day (read as 0-7)
])
def test_crontab_weekdays_mean_what_cron_means(expr, weekday_names):
    trigger = crontab_trigger(expr, "UTC")
    assert str(trigger.inner.fields[4]) == weekday_names


def test_day_of_month_or_weekday_as_in_cron():
    # "the 1st and every Monday": Tuesday 2026-12-01 is the 1st, then Monday 12-07.
    trigger = crontab_trigger("0 9 1 * mon", "UTC")
    first = trigger.get_next_fire_time(None, Z("2026-11-30T10:00:00Z"))
    second = trigger.get_next_fire_time(None, first + timedelta(seconds=1))
    assert (first, second) == (Z("2026-12-01T09:00:00Z"), Z("2026-12-07T09:00:00Z"))


@pytest.mark.parametrize("expr,fires", [
    # A field beginning with "*" counts as unrestricted (cron's DOM_STAR/DOW_STAR): both must match.
    ("0 9 */2 * mon", ["2026-12-07T09:00:00Z", "2026-12-21T09:00:00Z"]),  # Mondays on an odd day
    ("0 9 1 * */2", ["2026-12-01T09:00:00Z", "2027-04-01T09:00:00Z"]),    # the 1st when a Sun/Tue/Thu/Sat
    ("0 9 1-7 * mon", ["2026-12-01T09:00:00Z", "2026-12-02T09:00:00Z"]),  # no "*": either, as before
])
def test_a_starred_day_field_is_anded_as_in_cron(expr, fires):
    trigger = crontab_trigger(expr, "UTC")
    first = trigger.get_next_fire_time(None, Z("2026-11-30T10:00:00Z"))
    second = trigger.get_next_fire_time(None, first + timedelta(seconds=1))
    assert [first, second] == [Z(f) for f in fires]


@pytest.mark.parametrize("schedule", ["0 9 * * 8", "0 25 * * *", "0 9 * *", "every monday"])
def test_bad_cron_is_refused_with_the_key(schedule):
    with pytest.raises(ConfigError, match=r"reports\[0\]\.schedule"):
        make_config(schedule=schedule)


# -- due periods ------------------------------------------------------------------------------

@pytest.mark.parametrize("period,tz,schedule,now,key", [
    ("day", "America/New_York", "30 6 * * *", "2026-11-30T11:29:00Z", "2026-11-28"),
    ("day", "America/New_York", "30 6 * * *", "2026-11-30T11:30:00Z", "2026-11-29"),
    ("day", "UTC", "0 0 * * *", "2026-11-30T00:00:00Z", "2026-11-29"),  # a fire exactly at the end counts
    ("month", "Asia/Tokyo", "0 8 2 * *", "2026-12-01T23:00:00Z", "2026-11"),  # 08:00 JST on the 2nd
    ("month", "Asia/Tokyo", "0 8 2 * *", "2026-12-01T22:59:00Z", "2026-10"),
    ("week", "Europe/Berlin", "0 9 * * fri", "2026-12-04T08:00:00Z", "2026-W48"),  # due Friday after the week
    ("day", "UTC", "0 9 29 2 *", "2026-11-30T00:00:00Z", "2024-02-28"),  # fires every fourth year
])
def test_latest_due_period(period, tz, schedule, now, key):
    # The report alone: a whole config refuses a schedule that leaves periods unsent (the last case).
    report = ReportConfig(id="r", period=period, timezone=tz, schedule=schedule)
    assert due.latest_due(report, Z(now)).key == key


def test_previous_fire_across_the_autumn_repeat_hour():
    # 02:30 happens twice on 2026-10-25 in Berlin; both instants are fires, and nothing is skipped.
    report = report_of(period="day", schedule="30 2 * * *")
    assert due.previous_fire(report, Z("2026-10-25T01:00:00Z")) == Z("2026-10-25T00:30:00Z")
    assert due.previous_fire(report, Z("2026-10-25T01:45:00Z")) == Z("2026-10-25T01:30:00Z")
    assert due.latest_due(report, Z("2026-10-25T01:45:00Z")).key == "2026-10-24"


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield led
    led.close()


def send(ledger, report_id, key, channel="box"):
    claim = ledger.claim(report_id, key, channel, owner="test", lease_seconds=60)
    ledger.mark_sent(claim, "id")


@pytest.mark.parametrize("catch_up,sent,expected", [
    (0, [], ["2026-W48"]),                                   # empty ledger: no backfill
    (0, ["2026-W48"], []),
    (0, ["2026-W46"], ["2026-W48"]),                          # a gap is not filled without catch_up
    (2, [], ["2026-W46", "2026-W47", "2026-W48"]),           # oldest first
    (2, ["2026-W47"], ["2026-W46", "2026-W48"]),
    (2, ["2026-W46", "2026-W47", "2026-W48"], []),
])
def test_due_periods_with_catch_up(ledger, catch_up, sent, expected):
    report = report_of(catch_up=catch_up)
    for key in sent:
        send(ledger, report.id, key)
    assert [p.key for p in due.due_periods(report, Z("2026-11-30T08:30:00Z"), ledger)] == expected


def test_a_period_with_a_failed_channel_is_not_done(ledger):
    config = parse_config({"source": {"url": "duckdb://", "table": "t"},
                           "channels": {"a": {"type": "outbox", "path": "/tmp/a"}, "b": {"type": "outbox", "path": "/tmp/b"}},
                           "reports": [{"id": "r", "channels": ["a", "b"], "timezone": "Europe/Berlin"}]})
    report = config.reports[0]
    send(ledger, "r", "2026-W48", "a")
    claim = ledger.claim("r", "2026-W48", "b", owner="test", lease_seconds=60)
    ledger.mark_failed(claim, "boom", retryable=False)
    assert [p.key for p in due.due_periods(report, Z("2026-11-30T08:30:00Z"), ledger)] == ["2026-W48"]


def test_a_report_without_channels_is_done_once_archived(ledger, tmp_path):
    report = report_of(channels=[])
    now = Z("2026-11-30T08:30:00Z")
    assert [p.key for p in due.due_periods(report, now, ledger, archive=tmp_path)] == ["2026-W48"]
    (tmp_path / report.id / "2026-W48").mkdir(parents=True)
    (tmp_path / report.id / "2026-W48" / "report.json").write_text("{}")
    assert due.due_periods(report, now, ledger, archive=tmp_path) == []


# -- lateness ---------------------------------------------------------------------------------

@pytest.mark.parametrize("now,grace_minutes,sent,late", [
    ("2026-11-30T09:59:00Z", None, [], []),                    # due 08:00Z, default grace 2 h: not yet
    ("2026-11-30T10:00:00Z", None, [], ["2026-W48"]),
    ("2026-11-30T10:00:00Z", None, ["2026-W48"], []),
    ("2026-11-30T08:20:00Z", 15, [], ["2026-W48"]),             # the report's own grace wins
    ("2026-11-30T07:00:00Z", None, [], ["2026-W47"]),           # before Monday's fire last week's is what counts
])
def test_late_periods(ledger, now, grace_minutes, sent, late):
    config = make_config(grace_minutes=grace_minutes)
    report = config.reports[0]
    for key in sent:
        send(ledger, report.id, key)
    done = due.done_checker(ledger, None)
    assert [item.period.key for item in due.late_periods(config, report, Z(now), done)] == late


def test_alarms_grace_is_the_default(ledger):
    config = parse_config({"source": {"url": "duckdb://", "table": "t"}, "alarms": {"grace_minutes": 30},
                           "reports": [{"id": "r", "timezone": "Europe/Berlin"}]})
    assert due.grace(config, config.reports[0]) == timedelta(minutes=30)
    late = due.late_periods(config, config.reports[0], Z("2026-11-30T08:31:00Z"), lambda r, p: False)
    assert [item.deadline for item in late] == [Z("2026-11-30T08:30:00Z")]


def test_period_keys_round_trip_through_due():
    report = report_of()
    period = due.latest_due(report, Z("2026-11-30T08:00:00Z"))
    assert period == parse_period("week", "2026-W48", "Europe/Berlin")
    assert due.due_at(report, period) == Z("2026-11-30T08:00:00Z")


@pytest.mark.parametrize("asked,expected", [
    ("2026-03-29T00:29:45Z", "2026-03-29T01:30:00Z"),  # before the gap: 02:30 does not exist, so 03:30 CEST
    ("2026-03-29T01:29:45Z", "2026-03-29T01:30:00Z"),  # 03:29:45 CEST: APScheduler alone said the next day
    ("2026-03-29T01:30:00Z", "2026-03-29T01:30:00Z"),
    ("2026-03-29T01:30:01Z", "2026-03-30T00:30:00Z"),
    ("2026-10-25T00:31:00Z", "2026-10-25T01:30:00Z"),  # the repeated 02:30 (CET) after the one in CEST
])
def test_a_fire_moved_by_the_spring_gap_is_kept_whenever_the_scheduler_asks(asked, expected):
    """Found in a scheduling audit: a scheduler started at 03:29 CEST on the night clocks went forward
    scheduled the daily 02:30 report for the next day, and the day's report was never sent."""
    report = ReportConfig(id="d", period="day", timezone="Europe/Berlin", schedule="30 2 * * *")
    assert due.next_fire(report, Z(asked)) == Z(expected)
    # APScheduler asks with the previous fire too: never the same fire twice.
    trigger = crontab_trigger(report.schedule, report.timezone)
    assert trigger.get_next_fire_time(Z(expected), Z(expected)) > Z(expected)


@pytest.mark.parametrize("period,schedule,catch_up,missed", [
    ("day", "0 9 * * mon", 0, "2026-01-02"),      # a daily report sent on Mondays: six days in seven never sent
    ("month", "0 9 31 * *", 0, "2026-01"),        # months without a 31st: the month before is never sent
    ("week", "0 9 1 * *", 0, "2026-W01"),         # monthly fires for a weekly report
    ("day", "0 9 * * mon", 6, None),              # unless catch_up sends the days in between
    ("day", "0 9 * * 1-5", 0, "2026-01-02"),      # weekdays only: Friday's and Saturday's days are skipped
])
def test_a_schedule_that_leaves_periods_unsent_is_refused(period, schedule, catch_up, missed):
    """Found in a scheduling audit: such schedules sent the latest period at each fire and dropped the
    others without a word (check said ok, check --missed exited 0)."""
    if missed is None:
        assert make_config(period=period, schedule=schedule, catch_up=catch_up).reports[0].schedule == schedule
        return
    with pytest.raises(ConfigError, match=rf"reports\[0\]\.schedule: .*{missed} would never be sent"):
        make_config(period=period, schedule=schedule, catch_up=catch_up)


def test_a_daily_report_without_a_schedule_runs_every_day():
    spec = {"id": "daily", "period": "day", "channels": []}
    config = parse_config({"source": {"url": "duckdb://", "table": "agent_events"}, "reports": [spec]})
    assert config.reports[0].schedule == "0 9 * * *"
    assert parse_config({"source": {"url": "duckdb://", "table": "t"},
                         "reports": [{"id": "w"}]}).reports[0].schedule == "0 9 * * mon"


@pytest.mark.parametrize("now,catch_up,expected", [
    # 09:00 on 29 Dec 2011 in Apia was 19:00Z (UTC-10); the next 09:00 was on the 31st, UTC+14: 19:00Z on the 30th.
    ("2011-12-29T19:00:00Z", 0, ["2011-12-28"]),
    ("2011-12-30T19:00:00Z", 0, ["2011-12-29"]),                # the day before the skipped date, not the empty one
    ("2011-12-30T19:00:00Z", 1, ["2011-12-28", "2011-12-29"]),
    ("2011-12-31T19:00:00Z", 1, ["2011-12-31"]),                # the catch-up window holds no day of 0 hours
])
def test_a_day_report_across_a_day_the_zone_skipped(ledger, now, catch_up, expected):
    """Found in a scheduling audit: in Pacific/Apia (30 Dec 2011 skipped) the fire after 29 December sent the
    empty 30th, so the 29th was never sent and nothing said so."""
    report = report_of(period="day", timezone="Pacific/Apia", schedule="0 9 * * *", catch_up=catch_up)
    assert [p.key for p in due.due_periods(report, Z(now), ledger)] == expected


def test_loading_a_day_report_evaluates_its_cron_about_once_a_day(monkeypatch):
    """Found in a scheduling audit: the check that every period is sent evaluated the cron 21 times for each
    day of a year, so every command spent 0.5-1.5 s per day report loading the config."""
    calls = []
    real = due.next_fire
    monkeypatch.setattr(due, "next_fire", lambda report, at: calls.append(at) or real(report, at))  # a counting spy
    make_config(period="day", schedule="0 9 * * *")
    assert 366 <= len(calls) <= 2 * 366


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Australia/Lord_Howe", "America/Havana", "Pacific/Apia", "UTC"])
@pytest.mark.parametrize("period,schedule", [("day", "30 2 * * *"), ("day", "0 0 * * *"), ("week", "0 0 * * mon"),
                                             ("month", "30 0 1 * *")])
def test_the_latest_period_at_a_fire_is_the_last_complete_one(zone, period, schedule):
    """What the check above relies on: at each fire of a year (DST nights included) latest_due is last_complete."""
    report = ReportConfig(id="r", period=period, timezone=zone, schedule=schedule)
    fire = Z("2026-01-01T00:00:00Z")
    while (fire := due.next_fire(report, fire + timedelta(microseconds=1))) < Z("2027-01-01T00:00:00Z"):
        assert due.latest_due(report, fire) == due.last_complete(period, fire, zone)


def test_a_gap_longer_than_a_year_is_said_whole():
    """Found in a new-user audit: the periods passed over stopped at 366, so `run --due` said "2026-W49 to 2033-W48
    (366 weeks) came due" for a scheduler down 20 years. Counted by hand: W49 2026 to the week before the latest."""
    class Tried:  # only W48 2026 was ever sent
        def tried_periods(self, report_id):
            return ["2026-W48"], []

        def before_data_periods(self, report_id):
            return set()

    report = report_of(period="week", timezone="UTC", schedule="0 9 * * mon", catch_up=0)
    latest = parse_period("week", "2046-W48", "UTC")
    passed = due.passed_over(report, latest, Z("2046-11-26T10:00:00Z"), Tried())
    weeks = (latest.start_utc - parse_period("week", "2026-W49", "UTC").start_utc).days // 7
    assert (passed[0].key, passed[-1].key, len(passed)) == ("2026-W49", "2046-W47", weeks)
    assert weeks > 1000
