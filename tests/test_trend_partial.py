"""A trend's first period with data, when the data began partway through it: marked in report.json
(``data_from``, ``partial``) and drawn so in the sparklines of totals.

Found in a helper's review: a source whose first event fell on the Thursday of the trend's oldest week drew
every total's sparkline rising out of that 4-day week, read as growth; the volume line and the trend table
said so, the sparklines did not.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from agentdigest.compute import compute_report
from agentdigest.config import ReportConfig, SourceConfig
from agentdigest.periods import parse_period
from agentdigest.render.charts import draw_all
from agentdigest.render.context import build_context
from agentdigest.sources import open_source
from render_fixtures import make_report

UTC = timezone.utc
WEEK = ("week", "2026-W47")  # 16-22 Nov 2026: its trend's oldest week is 2026-W40, Mon 28 Sep - Sun 4 Oct
DAY = ("day", "2026-11-20")  # its trend's oldest day is Fri 13 Nov


def _report(tmp_path, first: datetime, kind_key: tuple[str, str] = WEEK, tz: str = "UTC",
            older: datetime | None = None):
    """The report of ``kind_key`` over a DuckDB table whose first conversation starts at ``first``, then one
    every day at noon UTC from the next day to the end of the report's period (and one at ``older``)."""
    starts = [first] + [datetime(first.year, first.month, first.day, 12, tzinfo=UTC) + timedelta(days=d)
                        for d in range(1, (datetime(2026, 11, 23, tzinfo=UTC) - first).days + 1)]
    return _report_of(tmp_path, starts + ([older] if older else []), kind_key, tz)


def _report_of(tmp_path, starts: list[datetime], kind_key: tuple[str, str] = WEEK, tz: str = "UTC"):
    """The report of ``kind_key`` over a DuckDB table of one conversation (a message and a resolution) at each
    of ``starts``."""
    import duckdb

    path = tmp_path / "events.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE ev (conversation_id TEXT, event_ts TIMESTAMPTZ, event_type TEXT)")
        con.executemany("INSERT INTO ev VALUES (?, ?, ?)",
                        [(f"c{i}", ts, t) for i, ts in enumerate(starts) for t in ("message", "resolution")])
    source = open_source(SourceConfig(url=f"duckdb://{path}", table="ev"))
    kind, key = kind_key
    try:
        return compute_report(source, ReportConfig(id="r", period=kind, timezone=tz),
                              parse_period(kind, key, tz), now=datetime(2026, 11, 24, 9, tzinfo=UTC))
    finally:
        source.close()


@pytest.mark.parametrize(("first", "kind_key", "tz", "row", "data_from", "partial"), [
    # Thursday of the oldest week: 3 of its 7 days missing
    (datetime(2026, 10, 1, 10, tzinfo=UTC), WEEK, "UTC", 0, "2026-10-01T10:00:00+00:00", True),
    # 07:00 on its Monday, after a quiet night: whole
    (datetime(2026, 9, 28, 7, tzinfo=UTC), WEEK, "UTC", 0, "2026-09-28T07:00:00+00:00", False),
    (datetime(2026, 9, 28, 23, 59, tzinfo=UTC), WEEK, "UTC", 0, "2026-09-28T23:59:00+00:00", False),
    # the first instant of its second day: partial
    (datetime(2026, 9, 29, 0, 0, tzinfo=UTC), WEEK, "UTC", 0, "2026-09-29T00:00:00+00:00", True),
    # the same Monday 23:30 UTC is Tuesday 01:30 in Berlin (CEST, +02:00): the local day decides
    (datetime(2026, 9, 28, 23, 30, tzinfo=UTC), WEEK, "Europe/Berlin", 0, "2026-09-29T01:30:00+02:00", True),
    # data that begin in the 4th week (2026-W43, Mon 19 Oct), on its Thursday, after three empty weeks
    (datetime(2026, 10, 22, 8, tzinfo=UTC), WEEK, "UTC", 3, "2026-10-22T08:00:00+00:00", True),
    # a day report: partial only from the day's second half on (its first day is the whole period)
    (datetime(2026, 11, 13, 11, 59, tzinfo=UTC), DAY, "UTC", 0, "2026-11-13T11:59:00+00:00", False),
    (datetime(2026, 11, 13, 12, 0, tzinfo=UTC), DAY, "UTC", 0, "2026-11-13T12:00:00+00:00", True),
], ids=["thursday", "monday-7am", "monday-late", "tuesday-midnight", "berlin-tuesday", "fourth-week",
        "day-morning", "day-noon"])
def test_the_row_the_data_begin_in_says_when_and_whether_partway(tmp_path, first, kind_key, tz, row, data_from,
                                                                 partial):
    data = _report(tmp_path, first, kind_key, tz)
    marked = [i for i, r in enumerate(data.trend) if "data_from" in r]
    assert marked == [row]
    assert data.trend[row]["data_from"] == data_from and data.trend[row]["partial"] is partial
    assert bool(data.trend[0].get("begins")) is (row == 0)
    assert all(not r.get("conversations") for r in data.trend[:row])
    doc = data.as_dict()["breakdowns"]["trend"][row]  # report.json: additive keys
    assert doc["data_from"] == data_from and doc["partial"] is partial


def test_data_older_than_the_trend_with_no_silence_before_it_mark_no_row(tmp_path):
    """One conversation on the Sunday before the trend's oldest week: the data ran up to that week, so its
    Thursday start is a gap's end (its own report's gap), not data that began or resumed."""
    data = _report(tmp_path, datetime(2026, 10, 1, 10, tzinfo=UTC), older=datetime(2026, 9, 27, 9, tzinfo=UTC))
    assert not any("data_from" in r or "partial" in r or r.get("begins") for r in data.trend)


WEEK_STARTS = [datetime(2026, 9, 28, tzinfo=UTC) + timedelta(weeks=k) for k in range(8)]  # W40 .. W47, UTC


def _expected_marks(starts: list[datetime]) -> dict[int, tuple[str, bool]]:
    """Plain Python over the same rows: {trend row: (data_from, partial)} for each week with conversations after
    a whole week without any (the week before the trend included): the data began or resumed in it; partial
    when its first conversation is after its Monday (UTC, the report's time zone)."""
    weeks = [WEEK_STARTS[0] - timedelta(weeks=1)] + WEEK_STARTS
    in_week = [[s for s in starts if w <= s < w + timedelta(weeks=1)] for w in weeks]
    out = {}
    for i in range(1, len(weeks)):
        if in_week[i] and not in_week[i - 1]:
            first = min(in_week[i])
            out[i - 1] = (first.isoformat(), first >= weeks[i] + timedelta(days=1))
    return out


def _daily(first: datetime, last: datetime) -> list[datetime]:
    """One conversation a day at ``first``'s time of day, from ``first`` to ``last`` (inclusive)."""
    return [first + timedelta(days=d) for d in range((last - first).days + 1)]


SILENCES = {
    # W40-W42 daily, nothing in W43, back on Thursday of W44 (29 Oct): W44 is in W47's baseline
    "thursday": _daily(datetime(2026, 9, 28, 12, tzinfo=UTC), datetime(2026, 10, 18, 12, tzinfo=UTC))
    + _daily(datetime(2026, 10, 29, 10, tzinfo=UTC), datetime(2026, 11, 22, 10, tzinfo=UTC)),
    # the same, back on its Monday: a whole week, named but not partial
    "monday": _daily(datetime(2026, 9, 28, 12, tzinfo=UTC), datetime(2026, 10, 18, 12, tzinfo=UTC))
    + _daily(datetime(2026, 10, 26, 9, tzinfo=UTC), datetime(2026, 11, 22, 9, tzinfo=UTC)),
    # stopped on Wednesday of W42, back on Thursday of W43: no whole week silent, an outage (gaps), no mark
    "short": _daily(datetime(2026, 9, 28, 12, tzinfo=UTC), datetime(2026, 10, 14, 12, tzinfo=UTC))
    + _daily(datetime(2026, 10, 22, 10, tzinfo=UTC), datetime(2026, 11, 22, 10, tzinfo=UTC)),
    # one conversation in August, nothing in W39, back on Thursday of the trend's oldest week (W40)
    "before-the-trend": [datetime(2026, 8, 3, 9, tzinfo=UTC)]
    + _daily(datetime(2026, 10, 1, 10, tzinfo=UTC), datetime(2026, 11, 22, 10, tzinfo=UTC)),
    # two silences: back on Wednesday of W41 after W40, and on Saturday of W46 after W45 (W46 in the baseline)
    "twice": [datetime(2026, 9, 20, 9, tzinfo=UTC)]
    + _daily(datetime(2026, 10, 7, 15, tzinfo=UTC), datetime(2026, 11, 1, 15, tzinfo=UTC))
    + _daily(datetime(2026, 11, 14, 8, tzinfo=UTC), datetime(2026, 11, 22, 8, tzinfo=UTC)),
}


@pytest.mark.parametrize("name", list(SILENCES))
def test_a_week_the_data_resumed_in_after_a_silent_week_is_named_like_one_it_began_in(tmp_path, name):
    """A source that stopped for a week or more and resumed partway through a week: that week's first days are
    empty as a first week's are, so its total is low for that alone and, in the baseline, makes the expected
    volume low. Found in a data-quality review: a week back on its Thursday read as a whole week, and a
    completeness over 100% against it was not explained."""
    starts = SILENCES[name]
    expected = _expected_marks(starts)
    data = _report_of(tmp_path, starts)
    marks = {i: (r["data_from"], r["partial"]) for i, r in enumerate(data.trend) if "data_from" in r}
    assert marks == expected
    # "begins" is the first row's alone when no event is older than the trend (the data began there)
    began_there = 0 in expected and not any(s < WEEK_STARTS[0] for s in starts)
    assert [i for i, r in enumerate(data.trend) if r.get("begins")] == ([0] if began_there else [])
    doc = data.as_dict()
    assert {i: (r["data_from"], r["partial"]) for i, r in enumerate(doc["breakdowns"]["trend"])
            if "data_from" in r} == expected
    # the baseline's median (W43-W46, those with data) holds the partial week: named
    keys = [r["key"] for r in data.trend]
    partial_in_baseline = [keys[i] for i, (_, partial) in sorted(expected.items())
                           if partial and keys[i] in data.quality.baseline_periods]
    assert data.quality.baseline_partial == (partial_in_baseline[0] if partial_in_baseline else None)
    assert doc["quality"]["baseline_partial"] == data.quality.baseline_partial


def _partial_first_week(data):
    """make_report's trend (2026-W41 to W48, 1,840 conversations to 2,480) begun on Thursday 8 Oct."""
    first = {**data.trend[0], "begins": True, "data_from": "2026-10-08T10:00:00+02:00", "partial": True}
    return replace(data, trend=(first, *data.trend[1:]))


@pytest.mark.parametrize("audience", ["executive", "engineering"])
def test_sparklines_of_totals_mark_the_partial_first_week(audience: str) -> None:
    data = _partial_first_week(make_report(audience))
    ctx, charts = build_context(data)
    sparks = {c.name: c for c in charts if c.kind == "spark"}
    totals = {"spark-conversations", "spark-cost-usd"} | (
        {"spark-errors"} if audience == "engineering" else {"spark-estimated-savings-usd"})
    assert {name for name, c in sparks.items() if c.partial is not None} == totals
    assert all(sparks[name].partial == 0 for name in totals)
    conversations = sparks["spark-conversations"].alt
    # 8 weeks, 1,840 the first (partial), 2,480 the last, the lowest and highest of them
    assert conversations == ("Conversations over the last 8 weeks: from 1,840 (the data began on Thu 8 Oct 2026: "
                             "first week partial) to 2,480, between 1,840 and 2,480")
    for name, chart in sparks.items():  # a rate is not lowered by a short week: no mark
        assert ("partial" in chart.alt) is (name in totals), name


def test_a_partial_first_week_is_drawn_hollow_and_a_whole_one_is_not() -> None:
    base = make_report("executive")
    marked = {c.name: c for c in build_context(_partial_first_week(base))[1]}["spark-conversations"]
    whole = {c.name: c for c in build_context(base)[1]}["spark-conversations"]
    assert whole.partial is None and marked.values == whole.values
    svg = {k: v.decode() for k, v in draw_all([marked, replace(marked, name="whole", partial=None)], "svg").items()}
    # the hollow point and the dotted segment from it, in grey (charts.MUTED); the dots: a dash array
    assert "#858fa1" in svg["spark-conversations"] and "stroke-dasharray" in svg["spark-conversations"]
    assert "#858fa1" not in svg["whole"] and "stroke-dasharray" not in svg["whole"]


def test_a_week_begun_on_its_first_day_is_not_marked() -> None:
    data = make_report("executive")
    first = {**data.trend[0], "begins": True, "data_from": "2026-10-05T07:00:00+02:00", "partial": False}
    _, charts = build_context(replace(data, trend=(first, *data.trend[1:])))
    assert all(c.partial is None and "partial" not in c.alt for c in charts if c.kind == "spark")


def test_the_sparklines_say_began_only_of_the_week_the_data_began_in(tmp_path):
    """The sparklines' words are "the data began on ...: first week partial": a week the data resumed in is
    not said so (the data began long before it), it has words of its own; a week they began in still is."""
    resumed = _report_of(tmp_path, SILENCES["before-the-trend"])
    assert resumed.trend[0]["partial"] is True
    assert all("began" not in c.alt and c.partial is None for c in build_context(resumed)[1] if c.kind == "spark")
    (tmp_path / "began").mkdir()
    began = _report(tmp_path / "began", datetime(2026, 10, 1, 10, tzinfo=UTC))
    alt = {c.name: c for c in build_context(began)[1]}["spark-conversations"].alt
    assert "(the data began on Thu 1 Oct 2026: first week partial)" in alt


def test_a_team_that_resumed_names_no_partial_baseline_when_the_source_did_not_stop(tmp_path):
    """A report of some agents: its trend is of their conversations, its baseline of the whole source's. The
    team is silent in 2026-W43 and back on Thursday of W44 while another agent goes on every day: the team's
    W44 row is partial (its totals are low for that), but the source's W44 was whole, so the baseline (W43-W46)
    holds no partial period."""
    import duckdb

    team = SILENCES["thursday"]
    others = _daily(datetime(2026, 9, 28, 9, tzinfo=UTC), datetime(2026, 11, 22, 9, tzinfo=UTC))
    path = tmp_path / "events.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE ev (conversation_id TEXT, event_ts TIMESTAMPTZ, event_type TEXT, agent_id TEXT)")
        con.executemany("INSERT INTO ev VALUES (?, ?, ?, ?)", [
            (f"{agent}{i}", ts, t, agent) for agent, starts in (("team", team), ("other", others))
            for i, ts in enumerate(starts) for t in ("message", "resolution")])
    source = open_source(SourceConfig(url=f"duckdb://{path}", table="ev"))
    try:
        data = compute_report(source, ReportConfig(id="r", period="week", timezone="UTC", agents=("team",)),
                              parse_period(*WEEK, "UTC"), now=datetime(2026, 11, 24, 9, tzinfo=UTC))
    finally:
        source.close()
    assert data.trend[4]["key"] == "2026-W44" and data.trend[4]["partial"] is True
    assert "2026-W44" in data.quality.baseline_periods and data.quality.baseline_partial is None


@pytest.mark.parametrize(("back", "judged"), [(datetime(2026, 11, 12, 10, tzinfo=UTC), False),
                                              (datetime(2026, 11, 9, 10, tzinfo=UTC), True)],
                         ids=["thursday", "monday"])
def test_totals_against_a_week_the_data_resumed_in_partway_are_not_judged(tmp_path, back, judged):
    """Silent in 2026-W45, back in W46 (the previous week): against its Thursday start the week's totals are
    low for that alone, as against a first week begun on a Thursday (README, Notable changes): shown, not
    judged, and a note says why. Back on its Monday, the previous week is whole and the totals are judged."""
    starts = _daily(datetime(2026, 9, 28, 12, tzinfo=UTC), datetime(2026, 11, 1, 12, tzinfo=UTC)) + _daily(
        back, datetime(2026, 11, 22, 10, tzinfo=UTC))
    data = _report_of(tmp_path, starts)
    # plain Python over the same rows: the conversations of W47 (16-22 Nov) and W46 (9-15 Nov)
    count = [sum(datetime(2026, 11, d, tzinfo=UTC) <= s < datetime(2026, 11, d + 7, tzinfo=UTC) for s in starts)
             for d in (16, 9)]
    conversations = data.metrics["conversations"]
    assert (conversations.value, conversations.previous) == (count[0], count[1]) == (7, 7 if judged else 4)
    assert not data.quality.warning
    assert conversations.judged is judged
    assert judged or conversations.notable is None
    resumed = [n for n in data.notes if "resumed" in n]
    assert resumed == ([] if judged else ["The events resumed partway through the previous week, after a week "
                                          "without any: totals are compared but not judged."])


@pytest.mark.parametrize(("starts", "verb"), [
    (SILENCES["thursday"], "resumed"),  # silent in W43, back on the Thursday of W44, which the baseline holds
    # the data began on the Thursday of W44 (nothing older): the same week, the other word
    (_daily(datetime(2026, 10, 29, 10, tzinfo=UTC), datetime(2026, 11, 22, 10, tzinfo=UTC)), "began"),
], ids=["resumed", "began"])
def test_the_quality_section_says_whether_the_data_began_or_resumed_in_the_partial_week(tmp_path, starts, verb):
    """The quality table named the baseline's partial week "the data began partway through 2026-W44" of a
    source that had data for weeks before it and only came back there (found reviewing the resumed marks)."""
    from agentdigest.render.format import Formatter
    from agentdigest.render.limits import Limits
    from agentdigest.render.sections import quality_section

    data = _report_of(tmp_path, starts)
    assert data.quality.baseline_partial == "2026-W44"
    section = quality_section(data, Formatter("en"), Limits())
    rows = {r["label"]: r["value"] for r in section["rows"]}
    assert rows["Expected from"].endswith(f"; the data {verb} partway through 2026-W44")


def _pixels_near(png: bytes, colour: str, tolerance: int = 6) -> int:
    """How many pixels of a PNG are within ``tolerance`` of ``colour`` (#rrggbb) in every channel."""
    import io

    from PIL import Image

    want = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    raw = Image.open(io.BytesIO(png)).convert("RGB").tobytes()
    return sum(all(abs(a - b) <= tolerance for a, b in zip(raw[i:i + 3], want)) for i in range(0, len(raw), 3))


def test_a_week_the_data_resumed_in_is_drawn_hollow_with_its_own_words(tmp_path):
    """Silent in 2026-W43, back on Thursday 29 Oct (W44): W44's totals are low for its three empty days alone, as
    a first week begun on a Thursday is. Found in a review: the sparklines drew a week the data began in hollow
    but one they resumed in as a whole week (a dip, then growth), because their words said "the data began".
    Now it is drawn hollow (its point, the dotted segments to and from it) with its own words, in the charts'
    alt text (HTML, the email's HTML beside its PNG, the PDF), and the trend table (every format with one)
    names the row."""
    from agentdigest.render import render_artifacts
    from agentdigest.render.charts import MUTED
    from render_fixtures import eml_texts, parse_eml, pdf_text

    starts = SILENCES["thursday"]
    marks = _expected_marks(starts)  # plain Python: {trend row: (data_from, partial)}
    back = [i for i, (_, partial) in marks.items() if partial and i != 0]
    assert back == [4]
    data = _report_of(tmp_path, starts)
    words = "the data resumed on Thu 29 Oct 2026, after a week without any: that week partial"
    sparks = {c.name: c for c in build_context(data)[1] if c.kind == "spark"}
    assert sparks["spark-conversations"].resumed == (4,) and sparks["spark-conversations"].partial is None
    assert words in sparks["spark-conversations"].alt and "began" not in sparks["spark-conversations"].alt
    for name in ("spark-resolution-rate", "spark-containment-rate", "spark-error-rate"):  # a rate: no mark
        assert sparks[name].resumed == () and "resumed" not in sparks[name].alt, name
    conversations = sparks["spark-conversations"]
    whole = replace(conversations, name="whole", resumed=())
    svg = {k: v.decode() for k, v in draw_all([conversations, whole], "svg").items()}
    assert MUTED in svg["spark-conversations"] and "stroke-dasharray" in svg["spark-conversations"]
    assert MUTED not in svg["whole"] and "stroke-dasharray" not in svg["whole"]
    png = draw_all([conversations, whole], "png")
    assert _pixels_near(png["spark-conversations"], MUTED) > 10 and _pixels_near(png["whole"], MUTED) == 0
    files = render_artifacts(data)
    html = eml_texts(files["message.eml"])["text/html"]
    assert f'{words}"' in html and f'{words}"' in files["report.html"].decode()
    cid = html.split(f'{words}"')[0].rsplit('src="cid:', 1)[1].split('"')[0]
    (image,) = [p.get_content() for p in parse_eml(files["message.eml"]).walk() if p.get("Content-ID") == f"<{cid}>"]
    assert _pixels_near(image, MUTED) > 10  # the email's PNG is the hollow one
    assert "26 Oct – 1 Nov (data resumed)" in files["report.txt"].decode().replace("\u2009", " ")
    pdf = " ".join(" ".join(pdf_text(files["report.pdf"])).split())
    assert "(data resumed)" in pdf and "(data begin)" in pdf


@pytest.mark.parametrize(("name", "window"), [
    # one conversation in August, nothing in W39, back on Thursday 1 Oct of the trend's oldest week (W40, 4 days):
    # the window starts at W41 (7 conversations), not at W40's 4 ("+75% over the last 8 weeks (4 → 7)" before)
    ("before-the-trend", "no change over the last 7 weeks (7 → 7)"),
    # silent in W43, back on Thursday of W44: not the window's start (W40, the data's first week, is left out as
    # before: nothing is older than the trend)
    ("thursday", "no change over the last 7 weeks (7 → 7)"),
])
def test_the_volume_window_does_not_start_at_a_week_the_data_resumed_in_partway(tmp_path, name, window):
    """Found with the resumed sparklines: the executive volume line read a week back on its Thursday as the
    starting level, as it already refuses to for a week the data began in."""
    starts = SILENCES[name]
    data = _report_of(tmp_path, starts)
    # plain Python: each trend week's conversations (UTC weeks from Mon 28 Sep)
    counts = [sum(w <= s < w + timedelta(weeks=1) for s in starts) for w in WEEK_STARTS]
    assert [r["conversations"] for r in data.trend] == counts
    assert build_context(data)[0]["volume"]["window"] == window
