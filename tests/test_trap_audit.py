"""An independent audit of the acceptance criterion "on trap data with a DST week, loaded into PostgreSQL
and into Parquet for Spark, report.json matches the DESIGN.md definitions".

Its own events (tests/trap_audit_data.py: DST weeks and a 25-hour day, events on the period's edges and
in the repeated hour, duplicates that agree and that differ, missing fields, unknown and mis-cased types,
invalid and huge values, unicode and HTML-ish names, future rows, timestamps with and without a time zone)
and its own plain-Python reading of DESIGN.md (tests/trap_audit_expect.py), compared with the report of
every engine: a DuckDB file (once through the command line, `agentdigest run --dry-run --format json`, the
archive's report.json), Parquet files through DuckDB, PostgreSQL (timestamptz, or timestamp without time
zone read as UTC), and Spark local reading the Parquet files. Counts are identical, every other figure agrees
to 1e-6 (relative 1e-9), Spark's quantiles within 1%.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trap_audit_data import COLUMNS, HUMAN_COST, SCENARIOS, build, key_of, now_for, period
from trap_audit_expect import Expected

BACKENDS = [
    pytest.param("duckdb", id="duckdb"),
    pytest.param("parquet", id="parquet"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("spark", id="spark", marks=pytest.mark.spark),
]
TOTALS = {"conversations", "resolved_conversations", "escalated_conversations", "errors", "error_conversations",
          "total_tokens", "cost_usd", "estimated_savings_usd"}
QUANTILES = {"p50_latency_ms", "p95_latency_ms", "p99_latency_ms", "previous_p95_latency_ms"}


def _arrow(rows: list[dict], naive: bool) -> pa.Table:
    ts = pa.timestamp("us") if naive else pa.timestamp("us", tz="UTC")
    types = {"event_ts": ts, "token_count": pa.int64(), "latency_ms": pa.float64(), "cost_usd": pa.float64()}
    schema = pa.schema([(c, types.get(c, pa.string())) for c in COLUMNS])
    fix = (lambda t: t and t.replace(tzinfo=None)) if naive else (lambda t: t)
    return pa.Table.from_pylist([{c: fix(r[c]) if c == "event_ts" else r[c] for c in COLUMNS} for r in rows],
                                schema=schema)


def _parquet(rows, naive, folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    table = _arrow(rows, naive)
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), folder / "part-0.parquet")
    pq.write_table(table.slice(half), folder / "part-1.parquet")
    return str(folder / "part-*.parquet")


def _duckdb(rows, naive, folder: Path) -> dict:
    import duckdb

    path = folder / "audit.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("audit_rows", _arrow(rows, naive))
        con.execute("CREATE TABLE agent_events AS SELECT * FROM audit_rows")
    return {"url": f"duckdb://{path}", "table": "agent_events"}


def _postgres(rows, naive, url: str) -> dict:
    import psycopg

    ts = "timestamp" if naive else "timestamptz"
    with psycopg.connect(url, autocommit=True) as con:
        # The database's sessions default to a zone neither UTC nor the report's: a timestamp without time
        # zone is still UTC (DESIGN: naive = UTC), a local date still the report zone's.
        con.execute(f"ALTER DATABASE \"{url.rsplit('/', 1)[1]}\" SET TimeZone = 'America/Los_Angeles'")
        con.execute("SET TimeZone = 'America/Los_Angeles'")
        con.execute(f"""CREATE TABLE audit_events (event_id text, conversation_id text, event_ts {ts},
            event_type text, agent_id text, token_count bigint, latency_ms double precision, error_type text,
            error_message text, model text, cost_usd double precision)""")
        with con.cursor() as cur:
            cur.executemany(f"INSERT INTO audit_events ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})",
                            [tuple((r[c].replace(tzinfo=None) if naive and r[c] else r[c]) if c == "event_ts" else r[c]
                                   for c in COLUMNS) for r in rows])
    return {"url": url, "table": "audit_events"}


def _report_doc(backend: str, scenario: str, rows: list[dict], tmp_path: Path, request) -> dict:
    tz, kind, key, naive = SCENARIOS[scenario]
    if backend == "duckdb" and scenario == CLI_SCENARIO:
        return _run_cli(_duckdb(rows, naive, tmp_path), scenario, tmp_path)
    if backend == "duckdb":
        settings = _duckdb(rows, naive, tmp_path)
    elif backend == "parquet":
        settings = {"url": "duckdb://", "files": _parquet(rows, naive, tmp_path / "parquet")}
    elif backend == "postgres":
        settings = _postgres(rows, naive, request.getfixturevalue("pg_url"))
    else:
        request.getfixturevalue("spark")
        settings = {"url": "pyspark://local[2]", "files": _parquet(rows, naive, tmp_path / "spark")}
    from agentdigest.compute import compute_report
    from agentdigest.config import ReportConfig, SourceConfig
    from agentdigest.periods import parse_period
    from agentdigest.sources import open_source

    source = open_source(SourceConfig(**settings))
    try:
        report = ReportConfig(id="audit", period=kind, timezone=tz, human_cost_per_conversation=HUMAN_COST)
        data = compute_report(source, report, parse_period(kind, key, tz), now=now_for(scenario))
    finally:
        source.close()
    return json.loads(data.to_json())


def _run_cli(settings: dict, scenario: str, tmp_path: Path) -> dict:
    tz, kind, key, _ = SCENARIOS[scenario]
    config = tmp_path / "agentdigest.toml"
    config.write_text(f'[source]\nurl = "{settings["url"]}"\ntable = "{settings["table"]}"\n\n'
                      f'[archive]\npath = "{tmp_path / "archive"}"\n\n[ledger]\nurl = "sqlite:///{tmp_path / "l.db"}"\n\n'
                      f'[[reports]]\nid = "audit"\nperiod = "{kind}"\ntimezone = "{tz}"\n'
                      f'human_cost_per_conversation = {HUMAN_COST}\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "agentdigest", "run", "audit", "--config", str(config), "--period", key,
                           "--dry-run", "--format", "json", "--now", now_for(scenario).isoformat()],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return json.loads((tmp_path / "archive" / "audit" / key / "report.json").read_text(encoding="utf-8"))


def _same(got, exp, rel: float) -> bool:
    if exp is None or got is None:
        return got is None and exp is None
    if isinstance(exp, (bool, str, list, datetime)):
        return got == exp
    if isinstance(exp, int):
        return isinstance(got, int) and not isinstance(got, bool) and got == exp
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        return False
    if not (math.isfinite(got) and math.isfinite(exp)):
        return got == exp
    return math.isclose(got, exp, rel_tol=rel, abs_tol=1e-6 if rel < 1e-3 else 1e-9)


def compare(doc: dict, exp: Expected, spark: bool) -> list[str]:
    out: list[str] = []
    zone = ZoneInfo(exp.tz)
    for field, back in (("period", 0), ("previous_period", 1)):
        s, e, first = period(exp.scenario, back)
        # ISO 8601 with the zone's offset at each instant (+02:00 before the change, +01:00 after it)
        want = {"key": key_of(exp.kind, first), "start": s.astimezone(zone).isoformat(), "end": e.astimezone(zone).isoformat()}
        if {k: doc[field][k] for k in want} != want:
            out.append(f"{field}: got {doc[field]}, expected {want}")
    if (doc["schema_version"], doc["timezone"]) != (1, exp.tz):
        out.append(f"schema_version/timezone: got {doc['schema_version']}, {doc['timezone']}")

    def check(where: str, got, want, name: str = "") -> None:
        rel = 0.01 if spark and name in QUANTILES else 1e-9
        if not _same(got, want, rel):
            out.append(f"{where}: got {got!r}, expected {want!r}")

    for name, want in exp.metrics().items():
        got = doc["metrics"].get(name) or {}
        for field, value in want.items():
            quantile_pct = spark and name in QUANTILES and field == "change_pct"
            if not quantile_pct:
                check(f"metrics.{name}.{field}", got.get(field), value, name if field in ("value", "previous") else "")
        # Data begun long before, the period over, every column valued: every move is judged but a total's on
        # incomplete data (README, Metrics: "judged").
        judged = not (exp.quality()["warning"] and name in TOTALS)
        if got.get("judged") is not judged:
            out.append(f"metrics.{name}.judged: got {got.get('judged')!r}, expected {judged}")
    tables = {
        "daily": ("date", exp.daily()), "by_agent": ("agent_id", exp.by_agent()), "by_model": ("model", exp.by_model()),
        "trend": ("key", {r["key"]: r for r in exp.trend()}),
    }
    for table, (key, want) in tables.items():
        got = {r[key]: r for r in doc["breakdowns"].get(table) or []}
        if set(got) != set(want):
            out.append(f"{table} keys: got {sorted(got, key=str)}, expected {sorted(want, key=str)}")
        for k, row in want.items():
            for name, value in row.items():
                if name != "key":
                    check(f"{table}[{k!r}].{name}", got.get(k, {}).get(name), value, name)
    errors = doc["breakdowns"]["errors_by_type"]
    got_errors = {r["error_type"]: (r["count"], r["previous"]) for r in errors}
    if got_errors != exp.errors_by_type():
        out.append(f"errors_by_type: got {got_errors}, expected {exp.errors_by_type()}")
    if [r["count"] for r in errors] != sorted((r["count"] for r in errors), reverse=True):
        out.append(f"errors_by_type not most frequent first: {errors}")
    for name, value in exp.quality().items():
        got = doc["quality"].get(name)
        if name == "latest_event":
            got = got and datetime.fromisoformat(got)
        if name == "gaps":
            got = [{k: datetime.fromisoformat(v) if k != "hours" else v for k, v in g.items()} for g in got]
        check(f"quality.{name}", got, value)
    return out


#: Spark runs one scenario (a DST week, naive timestamps), the DuckDB file one through the command line
#: (`agentdigest run --dry-run`, the archive's report.json): the file's runtime stays near a minute.
SPARK_SCENARIO, CLI_SCENARIO = "newyork-week-fallback", "berlin-week-2027"
CASES = [pytest.param(b.values[0], s, id=f"{b.id}-{s}", marks=b.marks) for b in BACKENDS for s in SCENARIOS
         if b.id != "spark" or s == SPARK_SCENARIO]


@pytest.mark.parametrize(("backend", "scenario"), CASES)
def test_report_json_matches_the_design(backend, scenario, tmp_path, request):
    rows = build(scenario)
    doc = _report_doc(backend, scenario, rows, tmp_path, request)
    mismatches = compare(doc, Expected(rows, scenario), spark=backend == "spark")
    assert not mismatches, f"{backend}/{scenario}: {len(mismatches)} mismatches:\n" + "\n".join(mismatches)


def test_the_data_holds_its_traps():
    """The expectation itself, checked by hand on the traps it must see (so agreement means something)."""
    scenario = "berlin-week-2027"
    exp = Expected(build(scenario), scenario)
    s, e, first = period(scenario)
    assert (e - s).total_seconds() == 169 * 3600 and key_of("week", first) == "2027-W43"
    assert (lambda s, e: (e - s).total_seconds())(*period("newyork-day-fallback")[:2]) == 25 * 3600
    cur, prev = exp.conversations(0), exp.conversations(1)
    assert "t-at-start" in cur and "t-last" in cur and "t-at-end" not in cur and "t-span-prev" in prev
    assert "t-dupe-other" not in cur and "t-dst-0-0" in cur and "t-dst-0-1" in cur
    assert cur["t-agent-tie"]["agent"] == "Zeta" and cur["t-agent-null"]["agent"] is None
    assert cur["t-at-start"]["agent"] == "Zeta" and cur["t-agent-switch"]["agent"] == "<b>billing</b>"
    dupe = cur["t-dupe"]["events"]
    assert [x["event_type"] for x in dupe] == ["message", "resolution"]  # the later "escalation" copy is not counted
    assert [x["latency_ms"] for x in cur["t-tie"]["events"]] == [7.0]
    assert len(cur["t-noid"]["events"]) == 4  # rows without an id are never merged
    assert not any(x["event_type"] == "resolution" for x in cur["t-types"]["events"])
    assert "T-tie-conv" in cur and "t-tie-conv" not in cur and cur[" t-empty-names"]["agent"] == "HELPDESK"
    assert cur["t-empty-names"]["agent"] == "" and exp.errors_by_type()[""] == (1, 0)
    q = exp.quality()
    # By hand: dup-same 2 extra + 1 other-conversation copy, dup-edit 1, dup-late 1 (arrived in P), dup-tie 1,
    # dup-conv-tie 1.
    assert q["duplicate_events"] == 7
    assert q["missing_required"] == 4  # null and empty conversation_id in P, two rows without event_ts
    # -3 (span-prev), NaN (dup-edit), -5 (dup-tie), inf and -inf (t-types)
    assert q["invalid_latency"] == 5
    assert q["invalid_tokens"] == 3  # -4 (span-prev), -1 (dup-edit), 4 x 2^53 (t-agent-null)
    assert q["invalid_cost"] == 2  # NaN and inf
    assert q["unknown_event_types"] == 6  # Resolution, null, "", handoff, ESCALATION, "message "
    assert q["future_events"] == 1
    assert q["latest_event"] == e - timedelta(microseconds=1)
    quiet = exp.daily()[(first + timedelta(days=1)).isoformat()]
    assert (quiet["conversations"], quiet["resolution_rate"], quiet["total_tokens"], quiet["cost_usd"]) == (0, None, 0, 0)
    m = exp.metrics()
    assert m["avg_latency_ms"]["value"] > 1e11 and m["cost_usd"]["value"] is not None  # the 1e15 ms counts
    # The outage: Tuesday 08:00 (the first hour its baseline Tuesdays had events) to Thursday 11:00 local (the traps
    # begin at 12:30, and the baseline's hour 11 is mostly empty), under 95% complete: the totals' moves are not judged.
    local = [(g["start"].astimezone(ZoneInfo("Europe/Berlin")).isoformat(), g["hours"]) for g in q["gaps"]]
    assert local == [("2027-10-26T08:00:00+02:00", 51)] and q["warning"]


@pytest.mark.spark
def test_spark_approximate_quantiles_stay_within_one_percent_at_a_step(tmp_path, request, monkeypatch):
    """DESIGN: Spark's quantiles are within 1%. An approximate percentile is a data point: where the values step
    at the quantile (99% of latencies at 1 s, 1% at 1000 s) it read 1 s for the exact, interpolated p99 of
    10.99 s (found in this audit, on 200,000 values; here with the approximation's threshold lowered to 1,000
    values so the test stays short). By hand: 2,000 values a week, index 0.99 x 1,999 = 1,979.01 lies between
    the last 1 s (index 1,979) and the first 1000 s, so p99 = 1000 + 0.01 x 999,000 = 10,990 ms; p50 and p95
    are 1000 ms."""
    import agentdigest.queries as queries
    from agentdigest.compute import compute_report
    from agentdigest.config import ReportConfig, SourceConfig
    from agentdigest.periods import parse_period
    from agentdigest.sources import open_source

    monkeypatch.setattr(queries, "APPROX_QUANTILE_MIN_VALUES", 1_000)
    week = parse_period("week", "2026-W47", "UTC")
    rows = []
    for back, prefix in ((0, "c"), (1, "p")):  # both weeks large enough for the approximation
        for i in range(2_000):
            rows.append({c: None for c in COLUMNS} | {
                "event_id": f"{prefix}{i}", "conversation_id": f"{prefix}{i // 10}", "event_type": "message",
                "event_ts": week.start_utc - timedelta(days=7 * back) + timedelta(seconds=250 * i),
                "agent_id": "a", "model": "m", "latency_ms": 1000.0 if i < 1_980 else 1e6})
    request.getfixturevalue("spark")
    source = open_source(SourceConfig(url="pyspark://local[2]", files=_parquet(rows, False, tmp_path / "step")))
    try:
        doc = json.loads(compute_report(source, ReportConfig(id="r", timezone="UTC"), week,
                                        now=week.end_utc + timedelta(hours=9)).to_json())
    finally:
        source.close()
    m = doc["metrics"]
    assert m["p99_latency_ms"]["value"] == pytest.approx(10_990, rel=0.01)
    assert m["p99_latency_ms"]["previous"] == pytest.approx(10_990, rel=0.01)
    assert (m["p50_latency_ms"]["value"], m["p95_latency_ms"]["value"]) == (pytest.approx(1000, rel=0.01),) * 2
