"""The shared backend suite (Ibis style): one trap-laden dataset, one plain-Python reference,
every engine. A known difference of an engine is declared here, per backend, never skipped.

Backends: a DuckDB file, Parquet files read by DuckDB, PostgreSQL (pytest-postgresql; table in a
schema, timestamptz, an index on event_ts) and Spark local[2] reading Parquet. PostgreSQL and
Spark skip locally when their server or Java is missing, and fail instead under CI=true.
"""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from agentdigest.compute import compute_report
from agentdigest.config import ReportConfig, SourceConfig
from agentdigest.periods import parse_period
from agentdigest.sources import open_source
from backend_loaders import load_duckdb, load_parquet, load_postgres, load_spark
from compare import compare_report
from reference import Reference
from trapdata import SCENARIOS, long_conversation_rows, now_for, trap_rows, unvalued_rows

#: Spark's approximate percentile is documented to agree within 1% (README "Scaling up").
SPARK_QUANTILE_TOLERANCE = 0.01


def _postgres(rows, tmp_path, request):
    return load_postgres(rows, request.getfixturevalue("pg_url"))


def _spark(rows, tmp_path, request):
    request.getfixturevalue("spark")
    return load_spark(rows, tmp_path)


LOADERS = {
    "duckdb": lambda rows, tmp_path, request: load_duckdb(rows, tmp_path),
    "parquet": lambda rows, tmp_path, request: load_parquet(rows, tmp_path),
    "postgres": _postgres,
    "spark": _spark,
}
BACKENDS = [
    pytest.param("duckdb", id="duckdb"),
    pytest.param("parquet", id="parquet"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("spark", id="spark", marks=pytest.mark.spark),
]
QUANTILE_TOLERANCE = {"spark": SPARK_QUANTILE_TOLERANCE}
#: human_cost_per_conversation per scenario: priced weeks check estimated savings against the reference on
#: every backend; the unpriced day checks that no savings appear without a human cost.
HUMAN_COST = {"berlin-fall-week": 4.5, "newyork-spring-week": 4.5, "berlin-fall-day": None}


def _report(scenario: str) -> ReportConfig:
    tz, kind, _ = SCENARIOS[scenario]
    return ReportConfig(id="trap", period=kind, timezone=tz, human_cost_per_conversation=HUMAN_COST[scenario])


def _compute(source_settings: dict, scenario: str) -> dict:
    tz, kind, key = SCENARIOS[scenario]
    source = open_source(SourceConfig(**source_settings))
    try:
        data = compute_report(source, _report(scenario), parse_period(kind, key, tz), now=now_for(scenario))
    finally:
        source.close()
    return json.loads(data.to_json())


def _reference(rows: list[dict], scenario: str) -> Reference:
    tz, kind, key = SCENARIOS[scenario]
    return Reference(rows, tz, kind, key, now_for(scenario), human_cost=HUMAN_COST[scenario])


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_report_matches_reference(backend, scenario, tmp_path, request):
    rows = trap_rows(scenario)
    settings = LOADERS[backend](rows, tmp_path, request)
    doc = _compute(settings, scenario)
    mismatches = compare_report(doc, _reference(rows, scenario), quantile_rel=QUANTILE_TOLERANCE.get(backend))
    assert not mismatches, f"{backend}/{scenario}: {len(mismatches)} mismatches:\n" + "\n".join(mismatches)


def test_reference_sees_the_traps():
    """The dataset really carries its traps (so a backend agreeing with the reference means something)."""
    scenario = "berlin-fall-week"
    ref = _reference(trap_rows(scenario), scenario)
    q, m = ref.quality(), ref.metrics()
    assert (q["duplicate_events"], q["missing_required"], q["invalid_latency"], q["invalid_tokens"], q["invalid_cost"],
            q["unknown_event_types"], q["future_events"]) == (8, 2, 4, 1, 3, 3, 1)  # 7 copies in P, 1 of P-1's
    assert math.isfinite(m["cost_usd"]["value"])  # NaN and infinite costs are left out of the sum
    cur = ref.conversations(0)
    assert "c-late-copy" in ref.conversations(1) and "c-late-copy" not in cur
    assert "c-start" in cur and "c-last-micro" in cur and "c-at-end" not in cur and "c-span-prev" not in cur
    assert "c-span-prev" in ref.conversations(1)
    assert cur["c-agent-switch"]["agent_id"] == "billing-bot"
    assert cur["c-agent-tie"]["agent_id"] == "a-bot"  # a tie at the first instant: the smallest agent_id
    assert "a-bot" in ref.by_agent() and "b-bot" not in ref.by_agent()
    # Savings by hand: 31 conversations (15 trap ones + 2 a local day x 7 + 2 at the DST change), 8 escalated
    # (c-esc-res, c-errors, c-dupe-edit, 5 of the 14 daily ones); 23 contained at 4.5, less the agent cost, which is
    # large enough that its sign moves the savings far beyond the comparison's 1e-6 tolerance.
    assert (m["conversations"]["value"], m["escalated_conversations"]["value"]) == (31, 8)
    assert m["estimated_savings_usd"]["value"] == pytest.approx(23 * 4.5 - m["cost_usd"]["value"], abs=1e-12)
    assert m["cost_usd"]["value"] > 1e-3
    assert cur["c-dupe-case"]["agent_id"] == "Support-bot"  # byte order, whatever the database's collation
    assert len(ref.daily()) == 7 and m["resolution_rate"]["change_pp"] is not None
    start, end = ref.period(0)
    assert (end - start).total_seconds() == 169 * 3600


def test_cli_dry_run_json_end_to_end(tmp_path):
    """``agentdigest run ID --config F --period KEY --dry-run --format json`` on a DuckDB file."""
    scenario = "berlin-fall-week"
    tz, kind, key = SCENARIOS[scenario]
    rows = trap_rows(scenario)
    source = load_duckdb(rows, tmp_path)
    config = tmp_path / "agentdigest.toml"
    config.write_text(f'''
[source]
url = "{source["url"]}"
table = "{source["table"]}"

[archive]
path = "archive"

[[reports]]
id = "trap-weekly"
period = "{kind}"
timezone = "{tz}"
human_cost_per_conversation = {HUMAN_COST[scenario]}
''', encoding="utf-8")
    cli = Path(sys.executable).with_name("agentdigest")
    done = subprocess.run([str(cli), "run", "trap-weekly", "--config", str(config), "--period", key, "--dry-run",
                           "--format", "json", "--now", now_for(scenario).isoformat()],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    written = list((tmp_path / "archive" / "trap-weekly" / key).iterdir())
    assert [p.name for p in written] == ["report.json"]
    doc = json.loads(written[0].read_text(encoding="utf-8"))
    mismatches = compare_report(doc, _reference(rows, scenario))
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("backend", BACKENDS)
def test_conversation_longer_than_the_window(backend, tmp_path, request):
    """A conversation longer than max_conversation_hours: each period's conversations count their events up
    to their own period's end + the window (rule 2), so "previous" matches last period's own report."""
    scenario = "berlin-fall-week"
    rows = trap_rows(scenario) + long_conversation_rows(scenario)
    doc = _compute(LOADERS[backend](rows, tmp_path, request), scenario)
    mismatches = compare_report(doc, _reference(rows, scenario), quantile_rel=QUANTILE_TOLERANCE.get(backend))
    assert not mismatches, f"{backend}: " + "\n".join(mismatches)
    # By hand: the long conversation is one more previous-period conversation, and its escalation, 30 h
    # after that period ended, is not part of its outcome.
    without = _reference(trap_rows(scenario), scenario).metrics()
    assert doc["metrics"]["conversations"]["previous"] == without["conversations"]["previous"] + 1
    assert doc["metrics"]["escalated_conversations"]["previous"] == without["escalated_conversations"]["previous"]


@pytest.mark.parametrize("backend", [pytest.param("duckdb", id="duckdb"),
                                     pytest.param("spark", id="spark", marks=pytest.mark.spark)])
def test_csv_files_match_reference(backend, tmp_path, request):
    """CSV sources: every column arrives as text (Spark) or as DuckDB's guess, and is cast to its canonical type."""
    from backend_loaders import write_csv

    scenario = "newyork-spring-week"
    rows = trap_rows(scenario)
    settings = {"url": "duckdb://", "files": write_csv(rows, tmp_path)}
    if backend == "spark":
        request.getfixturevalue("spark")
        settings["url"] = "pyspark://local[2]"
    doc = _compute(settings, scenario)
    mismatches = compare_report(doc, _reference(rows, scenario), quantile_rel=QUANTILE_TOLERANCE.get(backend))
    assert not mismatches, f"{backend} csv: " + "\n".join(mismatches)


def test_a_report_of_some_agents_is_their_rows_of_the_whole_report(tmp_path):
    """``agents``: the headline figures are the by-agent rows of the whole report (an independent reading of the
    same rule: a conversation's agent is its first event's), the quality stays the whole source's, and a note says so."""
    scenario = "berlin-fall-week"
    tz, kind, key = SCENARIOS[scenario]
    rows = trap_rows(scenario)
    source = open_source(SourceConfig(**load_duckdb(rows, tmp_path)))
    try:
        def run(**settings):
            report = ReportConfig(id="trap", period=kind, timezone=tz, **settings)
            return json.loads(compute_report(source, report, parse_period(kind, key, tz), now=now_for(scenario)).to_json())

        whole, billing, typo = run(), run(agents=["billing-*"]), run(agents=["biling-bot"])
    finally:
        source.close()
    row = next(r for r in whole["breakdowns"]["by_agent"] if r["agent_id"] == "billing-bot")
    assert [r["agent_id"] for r in billing["breakdowns"]["by_agent"]] == ["billing-bot"]
    for name in ("conversations", "resolution_rate", "error_rate", "p95_latency_ms"):
        assert billing["metrics"][name]["value"] == pytest.approx(row[name], rel=1e-12), name
    assert billing["metrics"]["conversations"]["previous"] == row["previous_conversations"]
    assert 0 < billing["metrics"]["conversations"]["value"] < whole["metrics"]["conversations"]["value"]
    assert billing["quality"] == whole["quality"]
    assert billing["notes"][0].startswith("Only the conversations of billing-*")
    assert not any("check the report's agents" in n for n in billing["notes"])
    total = sum(row["conversations"] or 0 for row in whole["breakdowns"]["trend"])
    assert f"None of the {total} conversations of the last 8 weeks is of these agents" in " ".join(typo["notes"])
    assert typo["metrics"]["conversations"]["value"] == 0


def test_agents_without_an_agent_id_column_is_an_input_error(tmp_path):
    import duckdb

    from agentdigest.errors import InputError

    scenario = "berlin-fall-week"
    tz, kind, key = SCENARIOS[scenario]
    settings = load_duckdb(trap_rows(scenario), tmp_path)
    with duckdb.connect(settings["url"].removeprefix("duckdb://")) as con:
        con.execute("ALTER TABLE agent_events DROP COLUMN agent_id")
    source = open_source(SourceConfig(**settings))
    try:
        with pytest.raises(InputError, match="sets agents, but the events have no agent_id column"):
            compute_report(source, ReportConfig(id="trap", period=kind, timezone=tz, agents=["billing-bot"]),
                           parse_period(kind, key, tz), now=now_for(scenario))
    finally:
        source.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_most_frequent_unknown_event_types_on_every_engine(backend, tmp_path, request):
    """When 5% or more of the period's events have an unknown type, the three most frequent are named: by count,
    then in byte order ("Support" before "billing", whatever the column's collation), a null type too."""
    start = datetime(2026, 11, 16, 10, tzinfo=timezone.utc)  # 2026-W47
    unknown = ["Support"] * 6 + ["billing"] * 6 + [None] * 4 + ["Zebra"] * 2  # 18 of 200 events: 9%
    rows = []
    for i in range(100):
        second = unknown[i] if i < len(unknown) else "resolution"
        for j, kind in enumerate(("message", second)):
            rows.append({"event_id": f"e{i}-{j}", "conversation_id": f"c{i}", "event_type": kind,
                         "event_ts": start + timedelta(minutes=10 * i + j)})
    source = open_source(SourceConfig(**LOADERS[backend](rows, tmp_path, request)))
    try:
        week = parse_period("week", "2026-W47", "UTC")
        data = compute_report(source, ReportConfig(id="r", timezone="UTC"), week, now=week.end_utc + timedelta(hours=9))
    finally:
        source.close()
    assert data.quality.unknown_event_types == 18
    assert data.quality.unknown_event_type_examples == ("Support", "billing", None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_first_instant_tie_picks_the_same_agent_on_every_engine(backend, tmp_path, request):
    """Two events at a conversation's first instant with agents "billing-bot" and "Support-bot": the agent is the
    smallest in byte order ("Support-bot"), as conversation_agents documents, whatever the column's collation
    (PostgreSQL's ICU collation puts "billing-bot" first). A null agent at that instant is not chosen over a named one."""
    start = datetime(2026, 11, 16, 10, tzinfo=timezone.utc)  # 2026-W47
    rows = [
        {"event_id": "t1", "conversation_id": "c-tie", "event_ts": start, "event_type": "message", "agent_id": "billing-bot"},
        {"event_id": "t2", "conversation_id": "c-tie", "event_ts": start, "event_type": "message", "agent_id": "Support-bot"},
        {"event_id": "t3", "conversation_id": "c-tie", "event_ts": start + timedelta(minutes=1), "event_type": "resolution",
         "agent_id": "billing-bot"},
        {"event_id": "n1", "conversation_id": "c-null", "event_ts": start, "event_type": "message", "agent_id": None},
        {"event_id": "n2", "conversation_id": "c-null", "event_ts": start, "event_type": "message", "agent_id": "zeta-bot"},
    ]
    week = parse_period("week", "2026-W47", "UTC")
    with contextlib.ExitStack() as stack:
        if backend == "postgres":
            # The report's temporary tables take the database's default collation, not the source column's:
            # a database created with a linguistic one (ICU's root locale, like en_US.UTF-8) is the case to test.
            settings = load_postgres(rows, stack.enter_context(_linguistic_database(request.getfixturevalue("pg_url"))))
        else:
            settings = LOADERS[backend](rows, tmp_path, request)
        source = open_source(SourceConfig(**settings))
        stack.callback(source.close)
        data = json.loads(compute_report(source, ReportConfig(id="r", timezone="UTC"), week,
                                         now=week.end_utc + timedelta(hours=9)).to_json())
    agents = {r["agent_id"]: r["conversations"] for r in data["breakdowns"]["by_agent"]}
    assert agents == {"Support-bot": 1, "zeta-bot": 1}
    ref = Reference(rows, "UTC", "week", "2026-W47", week.end_utc + timedelta(hours=9))
    assert ref.conversations(0)["c-tie"]["agent_id"] == "Support-bot"


@pytest.mark.parametrize("backend", BACKENDS)
def test_where_the_data_begin_is_found_on_every_engine(backend, tmp_path, request):
    """The first conversation on Monday 28 Sep 23:30 UTC, Tuesday 01:30 in Berlin (+02:00), in the oldest week
    of 2026-W47's trend: the week began without its first local day, so the row is partial (README, report.json)."""
    first = datetime(2026, 9, 28, 23, 30, tzinfo=timezone.utc)
    rows = [{"event_id": f"e{i}{t}", "conversation_id": f"c{i}", "event_ts": first + timedelta(days=i, minutes=t),
             "event_type": "message" if t == 0 else "resolution"} for i in range(0, 56, 3) for t in (0, 1)]
    week = parse_period("week", "2026-W47", "Europe/Berlin")
    source = open_source(SourceConfig(**LOADERS[backend](rows, tmp_path, request)))
    try:
        data = compute_report(source, ReportConfig(id="r", timezone="Europe/Berlin"), week,
                              now=week.end_utc + timedelta(hours=9))
    finally:
        source.close()
    assert [i for i, r in enumerate(data.trend) if "data_from" in r] == [0] and data.trend[0]["begins"] is True
    assert data.trend[0]["data_from"] == "2026-09-29T01:30:00+02:00" and data.trend[0]["partial"] is True


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("just_before", [False, True], ids=["silent-before", "data-before"])
def test_where_the_data_resume_after_a_silent_week_is_found_on_every_engine(backend, just_before, tmp_path, request):
    """One conversation on Mon 3 Aug (or Sun 27 Sep, the week before the trend), one a day from Thu 1 Oct (the
    trend's oldest week, 2026-W40) to Sun 18 Oct, nothing in 2026-W43, one a day from Wed 28 Oct (2026-W44) on:
    the weeks the data resumed in after a silent week, W44 and (after a silent W39) W40, are partial, W44 is
    in 2026-W47's baseline (W44-W46, W43 has no data). Found in a data-quality review (README, Data quality)."""
    utc = timezone.utc
    starts = [datetime(2026, 9, 27, 9, tzinfo=utc) if just_before else datetime(2026, 8, 3, 9, tzinfo=utc)]
    starts += [datetime(2026, 10, 1, 10, tzinfo=utc) + timedelta(days=d) for d in range(18)]
    starts += [datetime(2026, 10, 28, 14, tzinfo=utc) + timedelta(days=d) for d in range(26)]
    rows = [{"event_id": f"e{i}{t}", "conversation_id": f"c{i}", "event_ts": start + timedelta(minutes=t),
             "event_type": "message" if t == 0 else "resolution"} for i, start in enumerate(starts) for t in (0, 1)]
    week = parse_period("week", "2026-W47", "UTC")
    source = open_source(SourceConfig(**LOADERS[backend](rows, tmp_path, request)))
    try:
        data = compute_report(source, ReportConfig(id="r", timezone="UTC"), week, now=week.end_utc + timedelta(hours=9))
    finally:
        source.close()
    marks = {i: (r["data_from"], r["partial"]) for i, r in enumerate(data.trend) if "data_from" in r}
    expected = {4: ("2026-10-28T14:00:00+00:00", True)}
    assert marks == ({} if just_before else {0: ("2026-10-01T10:00:00+00:00", True)}) | expected
    assert not any(r.get("begins") for r in data.trend)
    assert data.quality.baseline_periods == ("2026-W44", "2026-W45", "2026-W46")
    assert data.quality.baseline_partial == "2026-W44"


@contextlib.contextmanager
def _linguistic_database(pg_url: str):
    """A database beside ``pg_url``'s whose default collation is ICU's root locale; dropped afterwards."""
    import psycopg

    base, name = pg_url.rsplit("/", 1)
    name += "_icu"
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE \'und\' LOCALE \'C.UTF-8\'')
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_day_or_agent_without_any_token_or_cost_value_has_none_on_every_engine(backend, tmp_path, request):
    """Found in a rendering review: a day or an agent none of whose conversations has a token_count (or cost_usd)
    value read "0" tokens and "$0.00", as if measured, where a by_model row reads n/a. Its sums are null now
    (one Ibis expression, every engine), a day without conversations keeps 0, the headline still sums what
    there is. Compared with plain Python over the same rows, and with the reference."""
    rows = unvalued_rows()
    week = parse_period("week", "2026-W47", "UTC")
    now = week.end_utc + timedelta(hours=9)
    source = open_source(SourceConfig(**LOADERS[backend](rows, tmp_path, request)))
    try:
        doc = json.loads(compute_report(source, ReportConfig(id="r", timezone="UTC"), week, now=now).to_json())
    finally:
        source.close()

    def sums(key: str, col: str) -> dict:
        """{day or agent: sum of the week's values of col, None where it has conversations but no value}."""
        out: dict = {}
        for r in rows:
            if r["event_type"] == "message" and r["event_ts"] >= week.start_utc:
                k = r["event_ts"].date().isoformat() if key == "date" else r["agent_id"]
                out[k] = out.get(k) if r[col] is None else (out.get(k) or 0) + r[col]
        return out

    quiet = {f"2026-11-{d}": 0 for d in range(19, 23)}  # no conversations: 0, as ever
    daily = {r["date"]: r for r in doc["breakdowns"]["daily"]}
    agents = {r["agent_id"]: r for r in doc["breakdowns"]["by_agent"]}
    assert {d: r["total_tokens"] for d, r in daily.items()} == sums("date", "token_count") | quiet \
        == {"2026-11-16": 240, "2026-11-17": None, "2026-11-18": 70} | quiet
    assert {d: r["cost_usd"] for d, r in daily.items()} == sums("date", "cost_usd") | quiet \
        == {"2026-11-16": 0.75, "2026-11-17": None, "2026-11-18": None} | quiet
    assert daily["2026-11-17"]["tokens_per_conversation"] is None and daily["2026-11-16"]["tokens_per_conversation"] == 120
    assert {a: r["total_tokens"] for a, r in agents.items()} == sums("agent_id", "token_count")
    assert {a: r["cost_usd"] for a, r in agents.items()} == sums("agent_id", "cost_usd") \
        == {"priced-bot": 0.75, "silent-bot": None, "tokens-bot": None}
    assert agents["silent-bot"]["tokens_per_conversation"] is None and agents["silent-bot"]["conversations"] == 2
    # the headline figures are unchanged: the sum of the values there are
    assert (doc["metrics"]["total_tokens"]["value"], doc["metrics"]["cost_usd"]["value"]) == (310, 0.75)
    mismatches = compare_report(doc, Reference(rows, "UTC", "week", "2026-W47", now))
    assert not mismatches, f"{backend}: " + "\n".join(mismatches)
