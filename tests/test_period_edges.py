"""Reports at the edges of periods: a period that has not ended, data that begin inside the trend, a day report."""

from datetime import datetime, timezone

import pytest

from agentdigest.compute import compute_report
from agentdigest.config import ReportConfig, SourceConfig
from agentdigest.demo import setup
from agentdigest.periods import parse_period
from agentdigest.render import render_artifacts
from agentdigest.significance import notable_flags
from agentdigest.sources import open_source


def test_a_running_period_is_so_far_and_its_totals_are_not_judged(tmp_path):
    """Found in a new-user audit: a week previewed on Saturday evening read "Conversations fell 9.5% to 391
    [notable]; cost fell 8.7% [notable]" against a whole week, under "23 – 29 Nov 2026", with no sign it
    was partial."""
    now = datetime(2026, 11, 28, 18, tzinfo=timezone.utc)  # Saturday evening of 2026-W48
    setup(tmp_path, now=now, conversations=8_000)
    source = open_source(SourceConfig(url=f"duckdb://{tmp_path / 'events.duckdb'}", table="agent_events"))
    try:
        data = compute_report(source, ReportConfig(id="r", period="week", timezone="UTC", human_cost_per_conversation=4.5),
                              parse_period("week", "2026-W48", "UTC"), now=now, notable=notable_flags)
    finally:
        source.close()
    conversations = data.metrics["conversations"]
    assert conversations.value < conversations.previous  # six days of seven: a fall
    totals = [m for m in data.metrics.values() if m.is_total]
    assert totals and all(m.notable is None and not m.judged for m in totals)
    assert data.metrics["conversations"].good is False  # DESIGN rule 5: a fall of a higher-is-better figure
    assert data.metrics["resolution_rate"].notable is not None  # rates compare as usual
    assert any("has not ended" in note for note in data.notes)
    text = render_artifacts(data, formats={"txt"})["report.txt"].decode()
    assert "29 Nov 2026, so far (2026-W48)" in text and "[notable]" not in text.split("Resolution rate")[0]


def test_data_that_begin_in_the_trends_oldest_period_are_partial_there(tmp_path):
    """Found in a new-user audit: data beginning on Wednesday 30 Sep, in the oldest week of the 8-week trend,
    made "+91% over the last 8 weeks (226 → 432)", the 4.5-day week read as a level. Nothing older than the
    trend is known, so that week is the one the data begin in: left out of the volume line, marked in the
    table, and not a level for the notable test."""
    import duckdb

    from agentdigest.render.context import build_context

    now = datetime(2026, 11, 28, tzinfo=timezone.utc)
    setup(tmp_path, now=now, conversations=8_000)
    begin = datetime(2026, 9, 30, 12, tzinfo=timezone.utc)  # Wednesday of 2026-W40, the trend's oldest week
    with duckdb.connect(str(tmp_path / "events.duckdb")) as con:
        con.execute("DELETE FROM agent_events WHERE event_ts < ?", [begin])
        weekly = dict(con.execute("""
            WITH firsts AS (SELECT conversation_id, min(event_ts) AS start FROM agent_events
                            WHERE conversation_id IS NOT NULL GROUP BY 1)
            SELECT strftime(start, '%G-W%V'), count(*) FROM firsts GROUP BY 1""").fetchall())
    source = open_source(SourceConfig(url=f"duckdb://{tmp_path / 'events.duckdb'}", table="agent_events"))
    try:
        data = compute_report(source, ReportConfig(id="r", period="week", timezone="UTC"),
                              parse_period("week", "2026-W47", "UTC"), now=now, notable=notable_flags)
    finally:
        source.close()
    assert [row["key"] for row in data.trend][0] == "2026-W40" and data.trend[0].get("begins") is True
    assert [row["conversations"] for row in data.trend] == [weekly[f"2026-W{w}"] for w in range(40, 48)]
    context, _ = build_context(data)
    first, second, last = weekly["2026-W41"], weekly["2026-W47"], weekly["2026-W40"]
    assert context["volume"]["window"].endswith(f"over the last 7 weeks ({first:,} → {second:,})"), context["volume"]
    assert context["trend"][0]["period"].endswith("(data begin)") and last < first * 0.8  # a partial week
    older = tmp_path / "older"  # the same week, with data before it: no mark
    setup(older, now=now, conversations=8_000)
    source = open_source(SourceConfig(url=f"duckdb://{older / 'events.duckdb'}", table="agent_events"))
    try:
        full = compute_report(source, ReportConfig(id="r", period="week", timezone="UTC"),
                              parse_period("week", "2026-W47", "UTC"), now=now)
    finally:
        source.close()
    assert "begins" not in full.trend[0] and "over the last 8 weeks" in build_context(full)[0]["volume"]["window"]


def test_a_day_report_has_no_day_by_day_section(tmp_path):
    """Found in a new-user audit: a day report's engineering HTML had a "Day by day" chart of one bar and a
    table of one row, its headline figures again. A week report keeps them."""
    from agentdigest.render import render_artifacts

    now = datetime(2026, 11, 28, tzinfo=timezone.utc)
    setup(tmp_path, now=now, conversations=4_000)
    source = open_source(SourceConfig(url=f"duckdb://{tmp_path / 'events.duckdb'}", table="agent_events"))
    try:
        reports = {kind: compute_report(source, ReportConfig(id="r", period=kind, timezone="UTC", audience="engineering"),
                                        parse_period(kind, key, "UTC"), now=now)
                   for kind, key in (("day", "2026-11-26"), ("week", "2026-W47"))}
    finally:
        source.close()
    for kind, data in reports.items():
        files = render_artifacts(data, formats={"txt", "html"})
        shown = [("day by day" in files[name].decode().lower()) for name in ("report.txt", "report.html")]
        assert shown == ([False, False] if kind == "day" else [True, True]), kind


def _duckdb_table(tmp_path, request, columns: str, rows: list[tuple]) -> dict:
    """A DuckDB file with table ``ev`` (``columns``: its SQL column list, event_ts a TIMESTAMPTZ) holding ``rows``."""
    import duckdb

    path = tmp_path / "events.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(f"CREATE TABLE ev ({columns})")
        con.executemany(f"INSERT INTO ev VALUES ({', '.join('?' * len(rows[0]))})", rows)
    return {"url": f"duckdb://{path}", "table": "ev"}


def _postgres_table(tmp_path, request, columns: str, rows: list[tuple]) -> dict:
    """The same table in the test PostgreSQL."""
    import psycopg

    url = request.getfixturevalue("pg_url")
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f"CREATE TABLE ev ({columns})")
        con.cursor().executemany(f"INSERT INTO ev VALUES ({', '.join(['%s'] * len(rows[0]))})", rows)
    return {"url": url, "table": "ev"}


ENGINES = [pytest.param(_duckdb_table, id="duckdb"),
           pytest.param(_postgres_table, id="postgres", marks=pytest.mark.postgres)]


def _week_48(source_args: dict):
    """The UTC report of 2026-W48, run on 1 December."""
    source = open_source(SourceConfig(**source_args))
    try:
        return compute_report(source, ReportConfig(id="r", period="week", timezone="UTC"),
                              parse_period("week", "2026-W48", "UTC"), now=datetime(2026, 12, 1, 9, tzinfo=timezone.utc))
    finally:
        source.close()


_INFINITE_TIMES = [("c1", "2026-11-24 10:00:00+00", "message"), ("c1", "2026-11-24 10:01:00+00", "resolution"),
                   ("old", "-infinity", "message"), ("far", "infinity", "message")]


@pytest.mark.parametrize("load", ENGINES)
def test_an_infinite_event_time_is_counted_not_a_failed_run(load, tmp_path, request):
    """Found in a dirty-data audit: a -infinity event_ts (valid in DuckDB's and PostgreSQL's timestamptz)
    older than the trend failed the run with "query failed: date value out of range" (exit 3, no report):
    the query that asks whether any event is older than the trend fetched that time into Python."""
    data = _week_48(load(tmp_path, request, "conversation_id TEXT, event_ts TIMESTAMPTZ, event_type TEXT",
                         _INFINITE_TIMES))
    assert data.metrics["conversations"].value == 1
    assert data.quality.future_events == 1  # +infinity is after the run
    assert not data.trend[0].get("begins")  # an event is older than the trend: it does not begin there


_BLANK_IDS = [("", "c1", "2026-11-24 10:00:00+00", "message"), ("", "c2", "2026-11-24 11:00:00+00", "message"),
              ("", "c3", "2026-11-24 12:00:00+00", "resolution"), ("e1", "c4", "2026-11-24 13:00:00+00", "message"),
              ("e1", "c4", "2026-11-24 13:00:00+00", "message")]


@pytest.mark.parametrize("load", ENGINES)
def test_an_empty_event_id_is_no_id_and_never_merges_rows(load, tmp_path, request):
    """Found in a dirty-data audit: rows whose producer left event_id empty ("") counted as one event, as
    copies of each other, so three conversations read as one. An empty id is no id, as a null one is (and
    as a CSV file reads it); a real repeated id still counts once."""
    data = _week_48(load(tmp_path, request, "event_id TEXT, conversation_id TEXT, event_ts TIMESTAMPTZ, event_type TEXT",
                         _BLANK_IDS))
    assert data.metrics["conversations"].value == 4
    assert data.metrics["resolved_conversations"].value == 1
    assert data.quality.duplicate_events == 1
