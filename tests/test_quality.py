"""Quality: completeness against the baseline, gaps, warning, metrics left out with a note."""

import json
import re
from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from agentdigest.compute import compute_report
from agentdigest.config import ReportConfig, SourceConfig
from agentdigest.periods import parse_period
from agentdigest.quality import assess
from agentdigest.render import render_artifacts
from agentdigest.sources import open_source

TZ = "Europe/Berlin"
WEEK = parse_period("week", "2026-W48", TZ)  # Mon 23 Nov 2026; it and its 4 previous weeks have 168 h
NOW = datetime(2026, 12, 5, 12, tzinfo=timezone.utc)


def _steady(hours_per_period: int, rate: int = 10) -> dict[int, int]:
    return {h: rate for h in range(hours_per_period)}


def test_complete_week_has_no_warning_and_no_gaps():
    hourly = {h: 10 for h in range(168 * 5)}
    q = assess({}, hourly, WEEK, NOW, threshold=95, expected_per_day=None)
    assert q.completeness_pct == pytest.approx(100.0)
    assert q.expected_events == 1680 and q.received_events == 1680
    assert not q.warning and q.gaps == ()


def test_missing_two_days_is_a_warning_with_one_gap():
    hourly = {h: 10 for h in range(168 * 4)}
    cur0 = 168 * 4
    for h in range(168):
        if not (72 <= h < 120):  # Thursday and Friday missing
            hourly[cur0 + h] = 10
    q = assess({}, hourly, WEEK, NOW, threshold=95, expected_per_day=None)
    assert q.completeness_pct == pytest.approx(120 / 168 * 100)
    assert q.warning
    assert len(q.gaps) == 1
    gap = q.gaps[0]
    assert gap.start == WEEK.start + timedelta(hours=72) and gap.hours == 48


def test_a_quiet_hour_is_not_a_gap_but_an_outage_is():
    hourly = {}
    for p in range(5):
        for h in range(168):
            hourly[p * 168 + h] = 1 if h % 24 < 6 else 20  # nights are quiet
    cur0 = 168 * 4
    hourly[cur0 + 2] = 0           # one quiet night hour: expected 1, silence is plausible
    hourly[cur0 + 30] = 0          # one busy hour silent: expected 20 (>= 8 conversations of 1 event)
    q = assess({}, hourly, WEEK, NOW, threshold=95, expected_per_day=None)
    assert [g.start for g in q.gaps] == [WEEK.start + timedelta(hours=30)]
    assert not q.warning


def test_one_outage_across_hours_that_expected_nothing_is_one_gap():
    """Found in a rendering audit: silence from Wednesday to the week's end was listed as three gaps, split
    by night hours whose baseline was zero, as if events had come in between."""
    hourly = {}
    for p in range(5):
        for h in range(168):
            hourly[p * 168 + h] = 0 if h % 24 < 4 else 20  # nothing ever arrives from 00:00 to 04:00
    cur0 = 168 * 4
    for h in range(50, 168):
        hourly[cur0 + h] = 0  # the outage: Wednesday 02:00 to the end
    q = assess({}, hourly, WEEK, NOW, threshold=95, expected_per_day=None)
    assert [(g.start, g.hours) for g in q.gaps] == [(WEEK.start + timedelta(hours=52), 116)]


def test_a_gap_does_not_span_the_quiet_hours_around_it():
    """Found in a re-check: with events on weekdays 09:00-19:00 only, a silent Wednesday was reported
    from Tuesday 19:00 to Thursday 09:00 (38 h); it is Wednesday 09:00-19:00."""
    hourly = {}
    for p in range(5):
        for h in range(168):
            hourly[p * 168 + h] = 20 if h // 24 < 5 and 9 <= h % 24 < 19 else 0
    cur0 = 168 * 4
    for h in range(48 + 9, 48 + 19):
        hourly[cur0 + h] = 0
    q = assess({}, hourly, WEEK, NOW, threshold=95, expected_per_day=None)
    assert [(g.start, g.hours) for g in q.gaps] == [(WEEK.start + timedelta(hours=57), 10)]


def test_explicit_expected_events_per_day():
    hourly = {168 * 4 + h: 5 for h in range(168)}
    q = assess({}, hourly, WEEK, NOW, threshold=95, expected_per_day=240)
    assert q.expected_events == 240 * 7 and q.baseline == "expected_events_per_day"
    assert q.completeness_pct == pytest.approx(5 * 168 / (240 * 7) * 100)
    assert q.warning


def test_no_history_means_unknown_completeness_not_a_warning():
    hourly = {168 * 4 + h: 5 for h in range(168)}
    q = assess({}, hourly, WEEK, NOW, threshold=95, expected_per_day=None)
    assert q.completeness_pct is None and q.baseline is None and not q.warning


def test_no_event_and_nothing_to_compare_with_is_a_warning_of_unknown_completeness():
    """Found in an audit: a new or wrongly mapped source sent a report of zeros without the banner, its
    completeness being unknown. No event and no baseline is a warning; an explicit expectation of none is not,
    nor a period not one hour old."""
    q = assess({}, {}, WEEK, NOW, threshold=95, expected_per_day=None)
    assert (q.received_events, q.expected_events, q.completeness_pct, q.baseline) == (0, None, None, None)
    assert q.warning
    assert not assess({}, {}, WEEK, NOW, threshold=95, expected_per_day=0).warning
    started = WEEK.start_utc + timedelta(minutes=40)
    assert not assess({}, {}, WEEK, started, threshold=95, expected_per_day=None).warning
    assert assess({}, {}, WEEK, started + timedelta(minutes=20), threshold=95, expected_per_day=None).warning


def test_an_empty_source_opens_every_format_with_a_banner_that_says_so(tmp_path):
    import email
    import email.policy
    db = tmp_path / "empty.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE ev (event_id VARCHAR, conversation_id VARCHAR, event_ts TIMESTAMPTZ, "
                    "event_type VARCHAR)")
    source = open_source(SourceConfig(url=f"duckdb://{db}", table="ev"))
    try:
        data = compute_report(source, ReportConfig(id="r", timezone=TZ), WEEK, now=NOW)
    finally:
        source.close()
    out = render_artifacts(data, formats={"json", "html", "txt", "eml", "slack"})
    quality = json.loads(out["report.json"])["quality"]
    assert quality["warning"] is True and quality["completeness_pct"] is None
    said = "No events arrived this week"
    html = out["report.html"].decode()
    assert said in html and html.index(said) < html.index("Conversations")
    text = out["report.txt"].decode()
    assert "!! NO EVENTS ARRIVED THIS WEEK" in text and "n/a of expected" not in text
    message = email.message_from_bytes(out["message.eml"], policy=email.policy.default)
    assert message["Subject"].startswith(f"⚠ {said}: ")
    slack = json.loads(out["slack.json"])
    assert slack["text"].startswith(f"⚠ {said}. ") and said in json.dumps(slack["blocks"][1], ensure_ascii=False)
    assert "n/a" not in json.dumps(slack["blocks"][1], ensure_ascii=False)


def test_running_period_compares_only_elapsed_hours():
    hourly = {h: 10 for h in range(168 * 4 + 30)}
    now = WEEK.start_utc + timedelta(hours=30, minutes=20)
    q = assess({}, hourly, WEEK, now, threshold=95, expected_per_day=None)
    assert q.expected_events == 300 and q.received_events == 300 and not q.warning


def test_dst_week_uses_its_own_hours():
    fall = parse_period("week", "2026-W43", TZ)  # 169 hours
    base = fall.previous(4).start_utc
    hourly = {h: 1 for h in range(int((fall.end_utc - base).total_seconds() // 3600))}
    q = assess({}, hourly, fall, NOW, threshold=95, expected_per_day=None)
    assert q.received_events == 169


@pytest.fixture()
def tiny_source(tmp_path):
    """Two conversations, no optional columns except agent_id."""
    db = tmp_path / "e.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE ev (conversation_id VARCHAR, event_ts TIMESTAMP, event_type VARCHAR, agent_id VARCHAR)")
    start = WEEK.start_utc.replace(tzinfo=None)
    con.execute("INSERT INTO ev VALUES (?, ?, 'message', 'a'), (?, ?, 'resolution', 'a'), (?, ?, 'message', 'b')",
                ["c1", start, "c1", start + timedelta(minutes=1), "c2", start + timedelta(days=1)])
    con.close()
    src = open_source(SourceConfig(url=f"duckdb://{db}", table="ev"))
    yield src
    src.close()


def test_absent_columns_leave_metrics_out_with_a_note(tiny_source):
    data = compute_report(tiny_source, ReportConfig(id="r", timezone=TZ), WEEK, now=NOW)
    assert data.metrics["conversations"].value == 2
    assert data.metrics["resolution_rate"].value == pytest.approx(50.0)
    for absent in ("p95_latency_ms", "avg_latency_ms", "total_tokens", "cost_usd"):
        assert absent not in data.metrics
    notes = " ".join(data.notes)
    assert "latency_ms" in notes and "token_count" in notes and "cost_usd" in notes and "event_id" in notes
    assert data.by_model is None and data.errors_by_type is None and data.by_agent is not None
    assert "estimated savings" not in notes  # no human cost configured: no savings were asked for
    priced = compute_report(tiny_source, ReportConfig(id="r", timezone=TZ, human_cost_per_conversation=4.5), WEEK, now=NOW)
    assert "estimated_savings_usd" not in priced.metrics
    assert "The events have no cost_usd column: agent cost is not shown (estimated savings need it too)." \
        in priced.notes
    # In the reader's words, one sentence per absent column (it was one per metric, in metric names).
    assert data.notes == (
        "The events have no cost_usd column: agent cost is not shown.",
        "The events have no error_type column: errors by type are not shown.",
        "The events have no event_id column: repeated events cannot be detected, so a re-sent event counts twice.",
        "The events have no latency_ms column: latency figures are not shown.",
        "The events have no model column: the by-model table is not shown.",
        "The events have no token_count column: tokens and tokens per conversation are not shown.",
        # the source's first week: its totals are compared with nothing before (a reader review)
        "The events begin in this week, which may hold only part of its data: totals are compared but not judged.",
    )
    doc = data.as_dict()
    assert "by_model" not in doc["breakdowns"] and doc["quality"]["duplicate_events"] is None
    # naive timestamps are UTC: the event exactly at the period's start belongs to it
    assert data.daily[0]["conversations"] == 1 and data.daily[1]["conversations"] == 1


def test_empty_period_has_null_rates_and_zero_counts(tiny_source):
    empty = WEEK.next()
    data = compute_report(tiny_source, ReportConfig(id="r", timezone=TZ), empty, now=NOW + timedelta(days=30))
    assert data.metrics["conversations"].value == 0
    assert data.metrics["resolution_rate"].value is None
    assert data.metrics["conversations"].previous == 2
    assert data.metrics["conversations"].direction == "down"
    assert data.metrics["resolution_rate"].direction is None


def test_clumped_events_need_more_silence_to_be_a_gap():
    hourly = {h: 20 for h in range(168 * 5)}
    cur0 = 168 * 4
    hourly[cur0 + 30] = 0  # 20 events expected, but only ~3 conversations of 6.5 events: plausible
    hourly.update({cur0 + 50: 0, cur0 + 51: 0, cur0 + 52: 0})  # 60 events, ~9 conversations: an outage
    q = assess({}, hourly, WEEK, NOW, threshold=95, expected_per_day=None, events_per_conversation=6.5)
    assert [(g.start, g.hours) for g in q.gaps] == [(WEEK.start + timedelta(hours=50), 3)]


def test_a_gap_across_a_dst_change_lasts_its_elapsed_hours():
    """Berlin, 25 Oct 2026 (25 h): silence from 01:00+02:00 to 04:00+01:00 is 4 hours, not the 3 of the clock."""
    day = parse_period("day", "2026-10-25", TZ)
    hourly = {h: 20 for h in range(24 * 4 + 25)}
    cur0 = 24 * 4
    for h in (1, 2, 3, 4):
        hourly[cur0 + h] = 0
    q = assess({}, hourly, day, NOW, threshold=95, expected_per_day=None)
    [gap] = q.gaps
    assert (gap.start.isoformat(), gap.end.isoformat()) == ("2026-10-25T01:00:00+02:00", "2026-10-25T04:00:00+01:00")
    assert gap.hours == 4 and gap.as_dict()["hours"] == 4
    assert q.received_events == 21 * 20


def test_a_day_that_is_not_a_whole_number_of_hours_receives_all_its_events(tmp_path):
    """Lord Howe Island shifts its clocks by 30 minutes: 4 Oct 2026 lasts 23.5 h. Every event of the day is
    received, also those of its last half hour, and none of the day before (computed here from the rows)."""
    tz = "Australia/Lord_Howe"
    day = parse_period("day", "2026-10-04", tz)
    first = day.previous(4).start_utc
    stamps = [first + timedelta(minutes=20 * i) for i in range(int((day.end_utc - first).total_seconds() // 1200))]
    stamps.append(day.end_utc - timedelta(minutes=10))  # 23:50 local, inside the day's last half hour
    db = tmp_path / "e.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE ev (conversation_id VARCHAR, event_ts TIMESTAMPTZ, event_type VARCHAR)")
        con.executemany("INSERT INTO ev VALUES (?, ?, 'message')", [(f"c{i}", ts) for i, ts in enumerate(stamps)])
    src = open_source(SourceConfig(url=f"duckdb://{db}", table="ev"))
    try:
        data = compute_report(src, ReportConfig(id="r", period="day", timezone=tz), day, now=day.end_utc + timedelta(hours=9))
    finally:
        src.close()
    in_day = sum(day.start_utc <= ts < day.end_utc for ts in stamps)
    assert day.hours == 23.5 and in_day == 71
    assert data.quality.received_events == in_day == data.metrics["conversations"].value
    assert data.quality.gaps == ()


def test_on_incomplete_data_totals_are_not_judged_notable(tmp_path):
    """Found by a new user: with 36 hours of events missing, cost fell 24% and was shown as a notable
    saving. On incomplete data a total cannot be judged; rates still are."""
    from agentdigest.significance import notable_flags
    from agentdigest.synthetic import generate

    path = tmp_path / "events.duckdb"
    week = parse_period("week", "2026-W47", "Europe/Berlin")
    with duckdb.connect(str(path)) as con:
        generate(con, conversations=6000, end=week.end_utc, days=70)
        con.execute("DELETE FROM agent_events WHERE event_ts >= ? AND event_ts < ?",
                    [week.start_utc + timedelta(days=2), week.start_utc + timedelta(days=3, hours=12)])
    source = open_source(SourceConfig(url=f"duckdb://{path}", table="agent_events"))
    try:
        data = compute_report(source, ReportConfig(id="r", timezone="Europe/Berlin"), week,
                              now=week.end_utc + timedelta(hours=9), notable=notable_flags)
    finally:
        source.close()
    assert data.quality.warning and data.quality.completeness_pct < 90
    totals = ["conversations", "errors", "total_tokens", "cost_usd"]
    assert all(data.metrics[name].notable is None for name in totals), {n: data.metrics[n].notable for n in totals}
    assert all(not data.metrics[name].judged for name in totals)  # a drop is not shown as good news
    assert data.metrics["cost_usd"].direction == "down"  # the change itself is still reported
    assert data.metrics["resolution_rate"].notable is not None  # rates are still tested


def test_an_empty_period_counts_zero_invalid_values_in_columns_that_exist(tmp_path, tiny_source):
    """Found in a review: a week without events said the latency and token columns were absent."""
    db = tmp_path / "full.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE ev (conversation_id VARCHAR, event_ts TIMESTAMP, event_type VARCHAR, "
                    "latency_ms DOUBLE, token_count INTEGER)")
        con.execute("INSERT INTO ev VALUES ('c1', ?, 'message', -5, -1)", [WEEK.start_utc.replace(tzinfo=None)])
    empty = WEEK.next()
    source = open_source(SourceConfig(url=f"duckdb://{db}", table="ev"))
    try:
        full = compute_report(source, ReportConfig(id="r", timezone=TZ), WEEK, now=NOW + timedelta(days=30))
        none = compute_report(source, ReportConfig(id="r", timezone=TZ), empty, now=NOW + timedelta(days=30))
    finally:
        source.close()
    assert (full.quality.invalid_latency, full.quality.invalid_tokens) == (1, 1)
    assert (none.quality.invalid_latency, none.quality.invalid_tokens) == (0, 0)
    absent = compute_report(tiny_source, ReportConfig(id="r", timezone=TZ), empty, now=NOW + timedelta(days=30))
    assert (absent.quality.invalid_latency, absent.quality.invalid_tokens) == (None, None)


def test_a_source_silent_for_five_weeks_is_incomplete_not_without_history(tmp_path):
    """Found in a scale audit: a source that stopped five weeks ago read "no history yet" (completeness null,
    no warning, "no conversations this week") although its own trend showed the weeks before it stopped."""
    path = tmp_path / "events.duckdb"
    week = parse_period("week", "2026-W47", "UTC")
    start, stop = parse_period("week", "2026-W40", "UTC").start_utc, parse_period("week", "2026-W42", "UTC").start_utc
    with duckdb.connect(str(path)) as con:  # one conversation of two events each hour of W40 and W41, then nothing
        con.execute("""CREATE TABLE agent_events AS
            SELECT 'e' || i || '-' || k AS event_id, 'c' || i AS conversation_id,
                   ?::TIMESTAMPTZ + INTERVAL (i) HOUR + INTERVAL (k) MINUTE AS event_ts,
                   CASE k WHEN 0 THEN 'message' ELSE 'resolution' END AS event_type
            FROM range(0, ?) t(i), range(0, 2) u(k)""", [start, int((stop - start).total_seconds() // 3600)])
    source = open_source(SourceConfig(url=f"duckdb://{path}", table="agent_events"))
    try:
        data = compute_report(source, ReportConfig(id="r", timezone="UTC"), week, now=week.end_utc + timedelta(hours=9))
    finally:
        source.close()
    q = data.quality
    assert q.baseline == "earlier_periods" and q.expected_events == 168 * 2  # a week of W40 or W41, same hours
    assert q.received_events == 0 and q.completeness_pct == 0 and q.warning and q.latest_event is None
    assert data.metrics["conversations"].value == 0


def _weekday_rhythm(tmp_path, last_saturday: int = 10):
    """A real DuckDB source from 1 Oct to Saturday 21 Nov 2026: 40 one-event conversations on weekdays, 10 on
    weekends (``last_saturday`` on 21 Nov), at noon UTC."""
    path = tmp_path / "events.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(f"""CREATE TABLE agent_events AS
            SELECT 'e' || d || '-' || i AS event_id, 'c' || d || '-' || i AS conversation_id,
                   DATE '2026-10-01' + INTERVAL (d) DAY + INTERVAL 12 HOUR AS event_ts, 'message' AS event_type
            FROM range(0, 52) t(d), range(0, 40) u(i)
            WHERE i < CASE WHEN d = 51 THEN {last_saturday}
                           WHEN dayofweek(DATE '2026-10-01' + INTERVAL (d) DAY) IN (0, 6) THEN 10 ELSE 40 END""")
    return open_source(SourceConfig(url=f"duckdb://{path}", table="agent_events"))


def test_a_day_report_can_compare_with_the_same_weekday(tmp_path):
    """Found in a reader review: a day report's baseline, the 4 previous days, read every Saturday as incomplete
    (58%) and every Monday as 130%. completeness_baseline = "same_weekday" compares with the same weekday."""
    day = parse_period("day", "2026-11-21", "UTC")  # a Saturday
    source = _weekday_rhythm(tmp_path)
    try:
        by_days = compute_report(source, ReportConfig(id="r", period="day", timezone="UTC"), day,
                                 now=day.end_utc + timedelta(hours=9))
        by_weekday = compute_report(source, ReportConfig(id="r", period="day", timezone="UTC",
                                                         completeness_baseline="same_weekday"), day,
                                    now=day.end_utc + timedelta(hours=9))
    finally:
        source.close()
    # the 4 days before: Tue-Fri, 40 each; the 4 Saturdays before: 10 each
    assert by_days.quality.expected_events == 40 and by_days.quality.completeness_pct == 25 and by_days.quality.warning
    assert by_weekday.quality.baseline == "same_weekday" and by_weekday.quality.expected_events == 10
    assert by_weekday.quality.completeness_pct == 100 and not by_weekday.quality.warning
    assert by_days.quality.latest_event == datetime(2026, 11, 21, 12, tzinfo=timezone.utc)  # Saturday noon
    # the warning says what the same weekday would read, and which setting compares with it
    assert by_days.quality.same_weekday_pct == 100 and by_days.as_dict()["quality"]["same_weekday_pct"] == 100
    assert by_weekday.quality.same_weekday_pct is None


@pytest.mark.parametrize("saturday, expected", [(10, 100.0), (9, None), (4, None)])
def test_a_warning_on_a_quiet_weekend_day_names_the_same_weekday_baseline(tmp_path, saturday, expected):
    """Found on a daily report's first weekend: every Saturday and Sunday opened with "DATA INCOMPLETE" against
    the weekdays before, and nothing said that completeness_baseline = "same_weekday" exists. The banner now
    says so when the same weekday of the previous 4 weeks would not warn: 10 of 10 (100%) does; 9 (90%, under
    the 95% threshold) and 4 (an outage, 40%) do not, and the warning reads as before."""
    from agentdigest.render.context import banner
    from agentdigest.render.limits import Limits
    from agentdigest.render.format import Formatter

    day = parse_period("day", "2026-11-21", "UTC")
    source = _weekday_rhythm(tmp_path, saturday)
    try:
        data = compute_report(source, ReportConfig(id="r", period="day", timezone="UTC"), day,
                              now=day.end_utc + timedelta(hours=9))
    finally:
        source.close()
    assert data.quality.warning and data.quality.completeness_pct == saturday / 40 * 100
    assert data.quality.same_weekday_pct == expected
    text = banner(data, Formatter("en"), Limits())["text"]
    assert ('completeness_baseline = "same_weekday"' in text) is (expected is not None)
    if expected is not None:
        assert "against the same weekday of the previous 4 weeks, 100.0% arrived" in text


def test_same_weekday_is_for_day_reports_only():
    with pytest.raises(ValueError, match="same_weekday.*day reports"):
        ReportConfig(id="r", period="week", completeness_baseline="same_weekday")


def test_totals_against_the_first_period_with_data_are_not_judged(tmp_path):
    """Found in a reader review: a week whose data began on its Saturday made the next one "+395%", notable and
    green; in report.json too the totals are left unjudged, and a note says why."""
    path = tmp_path / "events.duckdb"
    week = parse_period("week", "2026-W47", "UTC")
    with duckdb.connect(str(path)) as con:  # from Saturday of W46: 10 conversations a day
        con.execute("""CREATE TABLE agent_events AS
            SELECT 'e' || d || '-' || i AS event_id, 'c' || d || '-' || i AS conversation_id,
                   TIMESTAMPTZ '2026-11-14 12:00:00+00' + INTERVAL (d) DAY AS event_ts, 'message' AS event_type
            FROM range(0, 9) t(d), range(0, 10) u(i)""")
    source = open_source(SourceConfig(url=f"duckdb://{path}", table="agent_events"))
    try:
        data = compute_report(source, ReportConfig(id="r", timezone="UTC"), week, now=week.end_utc + timedelta(hours=9))
    finally:
        source.close()
    conversations = data.metrics["conversations"]
    assert (conversations.value, conversations.previous) == (70, 20)  # Mon-Sun against Sat-Sun
    assert not conversations.judged and conversations.notable is None and conversations.direction == "up"
    assert conversations.good is True  # DESIGN rule 5 in report.json; judged false keeps every format from colouring it
    assert any("begin in the previous week" in note for note in data.notes)


def _one_event_conversations(tmp_path, stamps: list[datetime]):
    """A real DuckDB source of one-event conversations (one "message" each) at the given UTC instants."""
    import pyarrow as pa

    rows = pa.table({  # noqa: F841  (read by DuckDB's replacement scan)
        "event_id": [f"e{i}" for i in range(len(stamps))],
        "conversation_id": [f"c{i}" for i in range(len(stamps))],
        "event_ts": pa.array(stamps, type=pa.timestamp("us", tz="UTC")),
        "event_type": ["message"] * len(stamps),
    })
    db = tmp_path / "hourly.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE ev AS SELECT * FROM rows")
    return open_source(SourceConfig(url=f"duckdb://{db}", table="ev"))


def _per_hour(period, per_hour) -> list[datetime]:
    """``per_hour(h)`` events in hour h of ``period``, a minute apart from the start of the hour."""
    return [period.start_utc + timedelta(hours=h, minutes=i) for h in range(int(period.hours)) for i in range(per_hour(h))]


def test_completeness_baseline_is_the_median_of_the_previous_four_periods_not_their_mean(tmp_path):
    """DESIGN: expected volume is the median of the previous 4 periods. With three weeks of 10 events an hour and
    one of 40, and this week at 10 an hour: expected = median(1680, 1680, 1680, 6720) = 1680, completeness 100%;
    a mean would expect 2940 and read 57% with a warning. (Two baseline periods, as in the trap data, cannot tell
    a median from a mean.)"""
    rates = {4: 10, 3: 10, 2: 40, 1: 10, 0: 10}  # periods back -> events per hour
    stamps = [ts for back, rate in rates.items()
              for ts in _per_hour(WEEK.previous(back) if back else WEEK, lambda h, r=rate: r)]
    assert all(WEEK.previous(k).hours == 168 for k in range(1, 5)) and len(stamps) == 1680 * 4 + 6720
    source = _one_event_conversations(tmp_path, stamps)
    try:
        q = compute_report(source, ReportConfig(id="r", timezone=TZ), WEEK, now=WEEK.end_utc + timedelta(hours=9)).quality
    finally:
        source.close()
    assert q.baseline == "previous_periods"
    assert (q.received_events, q.expected_events) == (1680, 1680.0)
    assert q.completeness_pct == 100.0 and not q.warning and q.gaps == ()


def test_a_few_stray_events_in_an_old_period_are_no_completeness_baseline(tmp_path):
    """Found in a dirty-data audit: one stray event in an old week of a young source made that week a baseline
    period, and the median of (1, 1680) expected 840.5 events: this week read 200% complete. A baseline period
    holds at least a tenth of the largest one's events; one that holds exactly a tenth counts."""
    def report(rates: dict[int, int], stray: int):
        stamps = [ts for back, rate in rates.items()
                  for ts in _per_hour(WEEK.previous(back) if back else WEEK, lambda h, r=rate: r)]
        stamps += [WEEK.previous(4).start_utc + timedelta(hours=30, minutes=i) for i in range(stray)]
        (tmp_path / "hourly.duckdb").unlink(missing_ok=True)
        source = _one_event_conversations(tmp_path, stamps)
        try:
            return compute_report(source, ReportConfig(id="r", timezone=TZ), WEEK,
                                  now=WEEK.end_utc + timedelta(hours=9)).quality
        finally:
            source.close()

    q = report({1: 10, 0: 10}, stray=1)
    assert (q.received_events, q.expected_events, q.completeness_pct) == (1680, 1680.0, 100.0)
    q = report({1: 10, 0: 10}, stray=168)  # exactly a tenth of 1680: a baseline period, median (168 + 1680) / 2
    assert (q.received_events, q.expected_events) == (1680, 924.0)


def _spread(total: int, hours: int = 168) -> list[int]:
    """``total`` events over ``hours`` hours, as evenly as can be."""
    return [total // hours + (1 if h < total % hours else 0) for h in range(hours)]


@pytest.mark.parametrize(("threshold", "received", "completeness", "warning"), [
    (95, 1596, 95.0, False),  # exactly at the threshold: not below it, no warning
    (95, 1595, 1595 / 1680 * 100, True),
    (90, 1512, 90.0, False),
    (90, 1511, 1511 / 1680 * 100, True),
])
def test_warning_is_raised_only_below_the_threshold(threshold, received, completeness, warning):
    """README: ``warning`` is true *below* completeness_threshold. expected_events_per_day = 240 over a 168-hour
    week expects 240 x 7 = 1680 events; 1596 of them is exactly 95%."""
    cur0 = 168 * 4
    hourly = {cur0 + h: n for h, n in enumerate(_spread(received))}
    assert sum(hourly.values()) == received
    q = assess({}, hourly, WEEK, NOW, threshold=threshold, expected_per_day=240)
    assert (q.received_events, q.expected_events) == (received, 1680.0)
    assert q.completeness_pct == pytest.approx(completeness, rel=1e-12)
    assert q.warning is warning


@pytest.mark.parametrize(("silent", "usual", "per_conversation", "gap_hours"), [
    # One silent hour between busy ones (20 events each) that usually gets `usual` events.
    ((30,), 6, 1.0, None),        # 6 conversations' worth < 8: plausible silence
    ((30,), 7, 1.0, None),
    ((30,), 8, 1.0, 1),           # 8 conversations' worth: at least 8, a gap
    ((30, 31), 4, 1.0, 2),        # a run of two hours: 4 + 4 = 8 conversations' worth, one 2-hour gap
    ((30, 31), 3, 1.0, None),     # 3 + 3 = 6
    ((30,), 8, 2.0, None),        # 8 events of 2 per conversation = 4 conversations' worth
    ((30, 31), 8, 2.0, 2),        # 16 events = 8 conversations' worth
])
def test_a_gap_needs_eight_conversations_worth_of_expected_events(silent, usual, per_conversation, gap_hours):
    """README's gap rule: a run of empty hours is a gap when at least 8 conversations' worth of events were
    expected over it (by the baseline, hour by hour; a conversation's worth = events per conversation)."""
    hourly = {}
    for p in range(5):
        for h in range(168):
            hourly[p * 168 + h] = usual if h in silent else 20
    for h in silent:
        hourly[168 * 4 + h] = 0
    q = assess({}, hourly, WEEK, NOW, threshold=95, expected_per_day=None, events_per_conversation=per_conversation)
    expected = [] if gap_hours is None else [(WEEK.start + timedelta(hours=silent[0]), gap_hours)]
    assert [(g.start, g.hours) for g in q.gaps] == expected


@pytest.mark.parametrize(("usual", "gap"), [(6, False), (8, True)])
def test_gap_rule_on_a_real_source_with_one_event_per_conversation(tmp_path, usual, gap):
    """The same rule end to end: one event per conversation makes a conversation's worth 1 event, so a busy hour
    (Tuesday 06:00) that usually gets 6 events may be silent, one that usually gets 8 may not."""
    silent = 30

    def rate(back: int):
        return lambda h: (0 if back == 0 else usual) if h == silent else 20

    stamps = [ts for back in range(5) for ts in _per_hour(WEEK.previous(back) if back else WEEK, rate(back))]
    source = _one_event_conversations(tmp_path, stamps)
    try:
        q = compute_report(source, ReportConfig(id="r", timezone=TZ), WEEK, now=WEEK.end_utc + timedelta(hours=9)).quality
    finally:
        source.close()
    assert q.received_events == 167 * 20 and q.expected_events == 167 * 20 + usual
    assert [(g.start, g.hours) for g in q.gaps] == ([(WEEK.start + timedelta(hours=silent), 1)] if gap else [])


@pytest.mark.parametrize(("kind", "key", "hours"), [
    ("day", "2026-10-25", 25),    # DST ends: README's own example, 250 for a 25-hour day
    ("day", "2026-03-29", 23),    # DST begins
    ("day", "2026-11-24", 24),
    ("week", "2026-W43", 169),    # the week holding 25 October
    ("week", "2026-W48", 168),
])
def test_expected_events_per_day_is_pro_rata_by_hours(tmp_path, kind, key, hours):
    """README: ``expected_events_per_day`` pro rata by hours. 240 a day is 10 an hour: 250 for a 25-hour day,
    1690 for a 169-hour week. One event in each hour of the period: completeness 10%."""
    period = parse_period(kind, key, TZ)
    assert period.hours == hours
    source = _one_event_conversations(tmp_path, _per_hour(period, lambda h: 1))
    try:
        q = compute_report(source, ReportConfig(id="r", period=kind, timezone=TZ, expected_events_per_day=240),
                           period, now=period.end_utc + timedelta(hours=9)).quality
    finally:
        source.close()
    assert q.baseline == "expected_events_per_day"
    assert q.expected_events == 10.0 * hours and q.received_events == hours
    assert q.completeness_pct == pytest.approx(10.0) and q.warning


def test_nan_latency_and_cost_in_a_parquet_file_are_invalid(tmp_path):
    """Found in a dirty-data audit: Parquet's min/max statistics leave NaN out, and DuckDB folded the range
    test ``latency <= MAX_DOUBLE`` to true from a max of 300, so a NaN latency (and cost) counted as valid:
    invalid_latency read 0 and the NaN made the mean, the p95 and the cost null."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = WEEK.start_utc + timedelta(hours=10)
    pq.write_table(pa.table({
        "conversation_id": ["c1", "c1", "c2", "c2"],
        "event_ts": pa.array([t0 + timedelta(minutes=m) for m in range(4)], pa.timestamp("us", tz="UTC")),
        "event_type": ["message", "message", "message", "resolution"],
        "latency_ms": [100.0, float("nan"), 300.0, None],
        "cost_usd": [0.25, 0.5, float("nan"), None],
    }), tmp_path / "events.parquet")
    source = open_source(SourceConfig(url="duckdb://", files=str(tmp_path / "events.parquet")))
    try:
        data = compute_report(source, ReportConfig(id="r", timezone=TZ), WEEK, now=NOW)
    finally:
        source.close()
    assert (data.quality.invalid_latency, data.quality.invalid_cost) == (1, 1)
    assert data.metrics["avg_latency_ms"].value == 200.0
    assert data.metrics["p95_latency_ms"].value == pytest.approx(290.0)
    assert data.metrics["cost_usd"].value == 0.75


def _huge_tokens_duckdb(tmp_path, request, rows) -> dict:
    db = tmp_path / "tokens.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE ev (conversation_id VARCHAR, event_ts TIMESTAMPTZ, event_type VARCHAR, token_count BIGINT)")
        con.executemany("INSERT INTO ev VALUES (?, ?, ?, ?)", rows)
    return {"url": f"duckdb://{db}", "table": "ev"}


def _huge_tokens_postgres(tmp_path, request, rows) -> dict:
    import psycopg

    url = request.getfixturevalue("pg_url")
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("CREATE TABLE ev (conversation_id TEXT, event_ts TIMESTAMPTZ, event_type TEXT, token_count BIGINT)")
        con.cursor().executemany("INSERT INTO ev VALUES (%s, %s, %s, %s)", rows)
    return {"url": url, "table": "ev"}


@pytest.mark.parametrize("load", [pytest.param(_huge_tokens_duckdb, id="duckdb"),
                                  pytest.param(_huge_tokens_postgres, id="postgres", marks=pytest.mark.postgres)])
def test_a_token_count_beyond_2_to_the_53_is_invalid_not_an_overflow(load, tmp_path, request):
    """Found in a dirty-data audit: two counts of 2^62 in one conversation overflowed its int64 token sum, and
    the run failed: exit 2 on DuckDB ("cannot be converted to the canonical type"), exit 3 on PostgreSQL
    ("bigint out of range"). Beyond 2^53 a count is no real one (nor whole in a float column): invalid_tokens."""
    t0 = WEEK.start_utc + timedelta(hours=10)
    rows = [("c1", t0, "message", 5), ("c1", t0 + timedelta(minutes=1), "message", 2 ** 62),
            ("c1", t0 + timedelta(minutes=2), "resolution", 2 ** 62), ("c2", t0, "message", 2 ** 53)]
    source = open_source(SourceConfig(**load(tmp_path, request, rows)))
    try:
        data = compute_report(source, ReportConfig(id="r", timezone=TZ), WEEK, now=NOW)
    finally:
        source.close()
    assert data.metrics["total_tokens"].value == 5 + 2 ** 53
    assert data.quality.invalid_tokens == 2


def _costs_and_latencies(tmp_path, request) -> dict:
    """W47: 100 conversations of 2 events hourly from Mon 16 Nov 10:00 (79 start in W47), the first two events $1e308 each (valid), the others $0.01; W46: 75
    conversations at $0.01 an event. Every event's latency is 5 ms but one of W47's, 1e200 ms (valid too); one model."""
    rows = [(f"e{i}", f"c{i // 2}", datetime(2026, 11, 16, 10, tzinfo=timezone.utc) + timedelta(hours=i), "message",
             1e308 if i < 2 else 0.01, 1e200 if i == 5 else 5.0, "m1") for i in range(200)]
    rows += [(f"p{i}", f"p{i // 2}", datetime(2026, 11, 9, 10, tzinfo=timezone.utc) + timedelta(hours=i), "message",
              0.01, 5.0, "m1") for i in range(150)]
    create = ("CREATE TABLE agent_events (event_id TEXT, conversation_id TEXT, event_ts TIMESTAMPTZ, event_type TEXT, "
              "cost_usd DOUBLE PRECISION, latency_ms DOUBLE PRECISION, model TEXT)")
    if request.param == "postgres":
        import psycopg

        url = request.getfixturevalue("pg_url")
        with psycopg.connect(url, autocommit=True) as con:
            con.execute(create)
            con.cursor().executemany("INSERT INTO agent_events VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
        return {"url": url, "table": "agent_events"}
    path = tmp_path / "events.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(create)
        con.executemany("INSERT INTO agent_events VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return {"url": f"duckdb://{path}", "table": "agent_events"}


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_sum_beyond_a_double_is_unknown_with_a_note_not_infinity(tmp_path, request, engine):
    """Found in a dirty-data check: two costs of 1e308, each a valid (finite) value, summed to infinity; the CLI
    printed "Agent cost $inf" and "Estimated savings $-inf", the other formats a bare "n/a", and no note said
    why. The overflowed figure is now unknown, its change too, and a note names it.

    On PostgreSQL the same sum failed the run with exit 3 ("value out of range: overflow"), and so did a single
    valid latency of 1e200 ms (its avg() also sums squares); found in a differential audit."""
    request.param = engine
    source = open_source(SourceConfig(**_costs_and_latencies(tmp_path, request)))
    week = parse_period("week", "2026-W47", "UTC")
    try:
        data = compute_report(source, ReportConfig(id="r", timezone="UTC", human_cost_per_conversation=4.5), week,
                              now=week.end_utc + timedelta(hours=9))
    finally:
        source.close()
    cost, savings = data.metrics["cost_usd"], data.metrics["estimated_savings_usd"]
    assert cost.value is None and cost.previous == pytest.approx(150 * 0.01)
    assert cost.change_pct is None and cost.direction is None and cost.good is None
    assert savings.value is None and savings.previous == pytest.approx(75 * 4.5 - 1.5)
    assert [n for n in data.notes if n.startswith("Agent cost: the sum")]
    assert data.quality.invalid_cost == 0  # each value is valid; only their sum is beyond a double
    assert '"value": null' in data.to_json()
    # The latency of 1e200 ms is a value like the others: the mean of W47's latencies, by hand (events 0 to 157,
    # hourly from Mon 16 Nov 10:00, are in W47; the rest are in W48)
    assert data.metrics["avg_latency_ms"].value == pytest.approx((1e200 + 157 * 5.0) / 158)
    assert data.metrics["avg_latency_ms"].previous == pytest.approx(5.0)
    (model,) = data.by_model
    assert model["events"] == 158 and model["avg_latency_ms"] == pytest.approx((1e200 + 157 * 5.0) / 158)
    assert model["cost_usd"] is None or model["cost_usd"] == float("inf")


@pytest.mark.parametrize("unknown, note", [(20, "10% of this week's events"), (5, None)])
def test_a_large_share_of_unknown_event_types_is_said_in_a_note(tmp_path, unknown, note):
    """Found in a new-user audit: a producer writing "Resolution" had most of its events unknown, and the
    resolution rate read low with only a count in the quality table to say why. From 5% of the period's
    events, a note says what share and what it means; below, the quality count is enough."""
    path = tmp_path / "events.duckdb"
    with duckdb.connect(str(path)) as con:  # W47: 100 conversations, a message then a resolution each
        con.execute("""CREATE TABLE agent_events AS
            SELECT 'e' || i AS event_id, 'c' || (i // 2) AS conversation_id,
                   TIMESTAMPTZ '2026-11-16 10:00:00+00' + INTERVAL (i) MINUTE AS event_ts,
                   CASE WHEN i % 2 = 0 THEN 'message' WHEN i // 2 < ? THEN 'Resolution'
                        WHEN i // 2 < ? THEN 'closed by ann@example.com' ELSE 'resolution' END
                   AS event_type FROM range(0, 200) t(i)""", [unknown * 3 // 5, unknown])
    source = open_source(SourceConfig(url=f"duckdb://{path}", table="agent_events"))
    week = parse_period("week", "2026-W47", "UTC")
    try:
        data = compute_report(source, ReportConfig(id="r", timezone="UTC"), week, now=week.end_utc + timedelta(hours=9))
    finally:
        source.close()
    assert data.quality.unknown_event_types == unknown and data.quality.received_events == 200
    assert data.metrics["resolution_rate"].value == pytest.approx(100 - unknown)  # of 100 conversations
    said = [n for n in data.notes if "event type that is none of" in n]
    if note is None:
        assert not said and data.quality.unknown_event_type_examples == ()
    else:
        assert len(said) == 1 and said[0].startswith(note) and '"Resolution" is not resolution' in said[0]
        # the most frequent first (12 then 8), shown redacted: event text
        assert data.quality.unknown_event_type_examples == ("Resolution", "closed by ann@example.com")
        out = render_artifacts(data, formats={"json", "txt"})
        assert json.loads(out["report.json"])["quality"]["unknown_event_type_examples"] == [
            "Resolution", "closed by [email]"]
        assert "(such as 'Resolution', 'closed by [email]')" in out["report.txt"].decode()
        assert "ann@example.com" not in out["report.txt"].decode()


def test_the_baseline_names_its_periods_and_the_one_the_data_began_partway_through(tmp_path):
    """Found in a report-reading audit: a monthly report read 152.9% complete against "previous 4 periods" when
    the median was of two months, one of them the half month the data began in. Here the data begin on the
    Thursday of W46 (hour 72 of 168), 10 events an hour since: the median of W46's 96 hours and W47's 168 is
    (960 + 1680) / 2 = 1320 (DESIGN's median, kept), so W48's 1680 read 127.3%; the report now says which
    weeks that is and that the data began partway through W46."""
    from agentdigest.render.format import Formatter
    from agentdigest.render.limits import Limits
    from agentdigest.render.sections import quality_section

    stamps = [ts for back in (2, 1, 0) for ts in _per_hour(WEEK.previous(back) if back else WEEK, lambda h: 10)
              if back != 2 or ts >= WEEK.previous(2).start_utc + timedelta(hours=72)]
    assert len(stamps) == 960 + 1680 + 1680
    source = _one_event_conversations(tmp_path, stamps)
    try:
        data = compute_report(source, ReportConfig(id="r", timezone=TZ), WEEK, now=WEEK.end_utc + timedelta(hours=9))
    finally:
        source.close()
    q = data.quality
    assert (q.received_events, q.expected_events) == (1680, 1320.0)
    assert q.completeness_pct == pytest.approx(1680 / 1320 * 100)
    assert q.baseline_periods == ("2026-W46", "2026-W47") and q.baseline_partial == "2026-W46"
    assert q.as_dict()["baseline_periods"] == ["2026-W46", "2026-W47"] and q.as_dict()["baseline_partial"] == "2026-W46"
    section = quality_section(data, Formatter("en"), Limits())
    rows = {r["label"]: r["value"] for r in section["rows"]}
    assert rows["Expected from"] == ("2 of the previous 4 weeks (2026-W46, 2026-W47), same hours (median); "
                                     "the data began partway through 2026-W46")
    assert "which holds 2026-W46, whose data began partway through it" in section["summary"]["completeness"]


@pytest.mark.parametrize(("weeks", "label"), [
    (4, "the previous 4 weeks, same hours (median)"),
    (1, "1 of the previous 4 weeks (2026-W47), same hours"),
])
def test_the_baseline_label_names_its_periods_when_they_are_fewer_than_four(weeks, label):
    """10 events an hour by day (07:00-24:00), 17 x 7 x 10 = 1190 a week, from ``weeks`` weeks back."""
    from agentdigest.render.sections import _baseline_label

    hourly = {p * 168 + h: 0 if h % 24 < 7 else 10 for p in range(4 - weeks, 5) for h in range(168)}
    q = assess({}, hourly, WEEK, NOW, threshold=95, expected_per_day=None)
    assert (q.received_events, q.expected_events, q.completeness_pct) == (1190, 1190.0, 100.0)
    assert q.baseline_partial is None and len(q.baseline_periods) == weeks
    assert _baseline_label(q, "week") == label


def _latencies_with(tmp_path, huge: float | None) -> tuple[str, list[float]]:
    """W47 (UTC): 60 conversations of a message (latency 800 + 10 x (i % 9) ms) and a resolution (no latency),
    every 2 hours from Mon 16 Nov 01:00; conversation 30's message has ``huge`` ms when given."""
    latencies = [huge if huge is not None and i == 30 else 800.0 + 10 * (i % 9) for i in range(60)]
    path = tmp_path / "events.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE ev (event_id TEXT, conversation_id TEXT, event_ts TIMESTAMPTZ, event_type TEXT, "
                    "latency_ms DOUBLE)")
        start = datetime(2026, 11, 16, 1, tzinfo=timezone.utc)
        con.executemany("INSERT INTO ev VALUES (?, ?, ?, ?, ?)", [
            row for i, lat in enumerate(latencies) for row in (
                (f"m{i}", f"c{i}", start + timedelta(hours=2 * i), "message", lat),
                (f"r{i}", f"c{i}", start + timedelta(hours=2 * i, minutes=1), "resolution", None))])
    return f"duckdb://{path}", latencies


def _quantile(values: list[float], q: float) -> float:
    """Continuous (linearly interpolated) quantile, in plain Python."""
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = int(pos)
    return xs[lo] if lo + 1 >= len(xs) else xs[lo] + (pos - lo) * (xs[lo + 1] - xs[lo])


@pytest.mark.parametrize("huge", [1e300, 86_400_001.0, None], ids=["1e300", "a-day-and-a-ms", "none"])
def test_a_valid_latency_beyond_a_day_is_counted_and_flagged_in_the_quality_section(tmp_path, huge):
    """Found in a review: one latency of 1e300 ms, valid by the definition (finite, not negative), made the mean
    1.8E298 ms and the p99 4.5E299 ms, while the quality table said "Invalid latency values: 0" and nothing
    else. It stays valid and counted (the metric definitions); the quality section now names the latency
    figures over a day, in every format that has the section, and each still renders."""
    from render_fixtures import pdf_text

    url, latencies = _latencies_with(tmp_path, huge)
    week = parse_period("week", "2026-W47", "UTC")
    texts = {}
    for audience in ("engineering", "executive"):
        source = open_source(SourceConfig(url=url, table="ev"))
        try:
            data = compute_report(source, ReportConfig(id="r", timezone="UTC", audience=audience), week,
                                  now=week.end_utc + timedelta(hours=9))
        finally:
            source.close()
        # plain Python over the same rows: every latency counts, the huge one too
        assert data.quality.invalid_latency == 0
        assert data.metrics["avg_latency_ms"].value == pytest.approx(sum(latencies) / len(latencies))
        for key, q in (("p50_latency_ms", 0.5), ("p95_latency_ms", 0.95), ("p99_latency_ms", 0.99)):
            assert data.metrics[key].value == pytest.approx(_quantile(latencies, q)), key
        files = render_artifacts(data)
        html = files["report.html"].decode()
        texts[audience] = {"txt": files["report.txt"].decode(), "html": re.sub(r"<[^>]+>", " ", html),
                           "pdf": " ".join(" ".join(pdf_text(files["report.pdf"])).split())}
        if audience == "engineering":  # Slack's engineering message shows the latency figures: it says so too
            texts[audience]["slack"] = files["slack.json"].decode()
    flagged = [f"{name}" for name, value in (("mean", sum(latencies) / len(latencies)),
                                             ("p99", _quantile(latencies, 0.99))) if value > 86_400_000]
    for audience, formats in texts.items():
        for fmt, text in formats.items():
            said = "Latency over a day" in text
            assert said is bool(flagged), (audience, fmt)
            if said:
                assert all(f"{name} " in text.split("Latency over a day", 1)[1][:200] for name in flagged)
    if huge == 1e300:
        assert "mean 1.7E298 ms, p99 4.1E299 ms" in texts["engineering"]["txt"]
