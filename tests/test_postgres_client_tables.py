"""PostgreSQL without temporary tables: the report's steps kept in an in-process DuckDB (client_tables).

Found in a Postgres audit: on a hot standby (which README advises) or a role without TEMPORARY, every query
computed the cohort again, and a weekly report over 3M events took 4 min 8 s against 23 s.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import pyarrow as pa
import pytest

from agentdigest import client_tables
from agentdigest.compute import compute_report
from agentdigest.config import ReportConfig, SourceConfig
from agentdigest.periods import parse_period
from agentdigest.sources import open_source
from backend_loaders import load_postgres
from compare import compare_report
from reference import Reference
from test_postgres_roles import reader_url
from trapdata import SCENARIOS, long_conversation_rows, now_for, trap_rows

pytestmark = pytest.mark.postgres


def _read_only_url(pg_url: str, role: str) -> str:
    import psycopg

    url = reader_url(pg_url, role)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"ALTER ROLE {role} IN DATABASE {pg_url.rsplit('/', 1)[1]} SET default_transaction_read_only = on")
    return url


def _report(url: str, scenario: str, **settings) -> tuple[dict, bool]:
    tz, kind, key = SCENARIOS[scenario]
    source = open_source(SourceConfig(url=url, table="events.agent_events"))
    try:
        report = ReportConfig(id="r", period=kind, timezone=tz, **settings)
        data = compute_report(source, report, parse_period(kind, key, tz), now=now_for(scenario))
        return json.loads(data.to_json()), source.temp_tables
    finally:
        source.close()


def _same(a: dict, b: dict) -> list[str]:
    """Where two report.json documents differ, but for when they were generated."""
    out: list[str] = []

    def walk(x, y, path):
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y)):
                if k != "generated_at":
                    walk(x.get(k), y.get(k), f"{path}.{k}")
        elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
            for i, (u, v) in enumerate(zip(x, y)):
                walk(u, v, f"{path}[{i}]")
        elif isinstance(x, float) and isinstance(y, float):
            if not (x == y or math.isclose(x, y, rel_tol=1e-12) or (math.isnan(x) and math.isnan(y))):
                out.append(f"{path}: {x!r} != {y!r}")
        elif x != y:
            out.append(f"{path}: {x!r} != {y!r}")
    walk(a, b, "")
    return out


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_without_temporary_tables_the_report_is_the_one_with_them(pg_url, scenario):
    """Every trap scenario (a DST week each way, a 25-hour day) plus a conversation longer than the window (the
    over-long conversations go back to PostgreSQL as a VALUES list): the report on a read-only role is the
    report with temporary tables, figure for figure, and matches the independent reference."""
    rows = trap_rows(scenario) + long_conversation_rows(scenario)
    load_postgres(rows, pg_url)
    with_temp, used = _report(pg_url, scenario)
    assert used
    without, used = _report(_read_only_url(pg_url, "agentdigest_standby"), scenario)
    assert not used
    assert not _same(with_temp, without), "\n".join(_same(with_temp, without))
    tz, kind, key = SCENARIOS[scenario]
    mismatches = compare_report(without, Reference(rows, tz, kind, key, now_for(scenario)))
    assert not mismatches, "\n".join(mismatches)
    # The traps are there: repeated event_ids were counted, and the over-long conversation was trimmed.
    assert without["quality"]["duplicate_events"] > 0


def test_a_report_of_some_agents_without_temporary_tables(pg_url):
    scenario = "berlin-fall-week"
    load_postgres(trap_rows(scenario), pg_url)
    with_temp, _ = _report(pg_url, scenario, agents=["billing-*"])
    without, used = _report(_read_only_url(pg_url, "agentdigest_standby_agents"), scenario, agents=["billing-*"])
    assert not used
    assert [r["agent_id"] for r in without["breakdowns"]["by_agent"]] == ["billing-bot"]
    assert not _same(with_temp, without), "\n".join(_same(with_temp, without))


def test_many_repeated_ids_are_computed_again_in_postgres(pg_url, monkeypatch):
    """More kept rows than a VALUES list should carry: PostgreSQL computes them again in each query instead."""
    scenario = "newyork-spring-week"
    rows = trap_rows(scenario) + long_conversation_rows(scenario)
    load_postgres(rows, pg_url)
    with_temp, _ = _report(pg_url, scenario)
    sent: list[int] = []
    values = client_tables.values
    monkeypatch.setattr(client_tables, "values", lambda b, r, s: sent.append(r.num_rows) or values(b, r, s))
    monkeypatch.setattr(client_tables, "MAX_VALUES_ROWS", 0)
    without, used = _report(_read_only_url(pg_url, "agentdigest_standby_many"), scenario)
    assert not used and sent == []
    assert not _same(with_temp, without), "\n".join(_same(with_temp, without))


TRICKY = ["plain", "", None, "comma, and \"quotes\"", "line\nbreak\r\nand\ttab", "back\\slash \\N", "NULL", "ünï 表 🤖",
          "'single'", " lead and trail "]


def _connect(pg_url: str):
    """A plain Ibis connection whose session prints timestamps at +05:30: COPY writes them with that offset."""
    import ibis

    backend = ibis.connect(pg_url)
    with backend.con.cursor() as cur:
        cur.execute("SET TimeZone = 'Asia/Kolkata'")
    backend.con.commit()
    return backend


def _tricky_table(pg_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("CREATE TABLE tricky (s text, ts timestamptz, f double precision, i bigint, b boolean, n integer)")
        with con.cursor() as cur:
            cur.executemany("INSERT INTO tricky VALUES (%s, %s, %s, %s, %s, %s)", [
                (s, datetime(2026, 3, 8, 6, 59, 59, 999_999, tzinfo=timezone.utc) if k % 3 else None,
                 [1.5, float("nan"), float("inf"), -float("inf"), 0.1 + 0.2, 1e308, 5e-324, -0.0, None, 2.0 ** 53][k],
                 [0, -1, 2 ** 62, None, 7, 8, 9, 10, 11, -(2 ** 63)][k], [True, False, None][k % 3], k)
                for k, s in enumerate(TRICKY)])


def _equal_rows(a: list[dict], b: list[dict]) -> bool:
    def norm(v):
        return "nan" if isinstance(v, float) and math.isnan(v) else (v, math.copysign(1, v)) if isinstance(v, float) else v
    return [{k: norm(v) for k, v in r.items()} for r in a] == [{k: norm(v) for k, v in r.items()} for r in b]


def test_copy_out_reads_what_a_cursor_reads(pg_url):
    """COPY's CSV read back by Arrow: NULL and the empty string apart, quotes, line breaks, backslashes, the
    text NULL, every float (NaN, infinities, the shortest round trip, -0.0), 64-bit integers and timestamps."""
    _tricky_table(pg_url)
    backend = _connect(pg_url)
    try:
        t = backend.table("tricky").order_by("n")
        copied = client_tables.copy_out(backend, t).to_pylist()
        fetched = t.to_pyarrow().to_pylist()
        assert [r["s"] for r in copied] == TRICKY
        assert _equal_rows(copied, fetched), (copied, fetched)
        assert copied[1]["ts"] == datetime(2026, 3, 8, 6, 59, 59, 999_999, tzinfo=timezone.utc)
        assert client_tables.copy_out(backend, t.filter(t.n < 0)).num_rows == 0
    finally:
        backend.disconnect()


def test_values_carry_the_rows_back_to_postgres(pg_url):
    _tricky_table(pg_url)
    backend = _connect(pg_url)
    try:
        t = backend.table("tricky").order_by("n")
        rows = t.to_pyarrow()
        back = client_tables.values(backend, rows, t.schema())
        assert _equal_rows(back.order_by("n").to_pyarrow().to_pylist(), rows.to_pylist())
        empty = client_tables.values(backend, rows.slice(0, 0), t.schema())
        assert empty.count().execute() == 0
        assert t.semi_join(back, "s").count().execute() == sum(s is not None for s in TRICKY)
    finally:
        backend.disconnect()


def test_a_text_latency_that_does_not_convert_still_names_the_value_without_temporary_tables(pg_url):
    """The copy runs in a savepoint: after it fails, the queries that find the failing column still run."""
    import psycopg

    from agentdigest.errors import InputError

    scenario = "berlin-fall-week"
    load_postgres(trap_rows(scenario), pg_url)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("ALTER TABLE events.agent_events ADD COLUMN latency_text text")
        con.execute("UPDATE events.agent_events SET latency_text = latency_ms::text")
        con.execute("UPDATE events.agent_events SET latency_text = 'fast' WHERE event_id = (SELECT min(event_id) "
                    "FROM events.agent_events WHERE latency_ms IS NOT NULL)")
    url = _read_only_url(pg_url, "agentdigest_standby_fast")
    tz, kind, key = SCENARIOS[scenario]
    source = open_source(SourceConfig(url=url, table="events.agent_events", columns={"latency_ms": "latency_text"}))
    try:
        assert not source.temp_tables
        with pytest.raises(InputError, match="'fast'"):
            compute_report(source, ReportConfig(id="r", period=kind, timezone=tz), parse_period(kind, key, tz),
                           now=now_for(scenario))
    finally:
        source.close()


def test_the_copy_is_arrow_of_the_expression_types(pg_url):
    _tricky_table(pg_url)
    backend = _connect(pg_url)
    try:
        t = backend.table("tricky")
        copied = client_tables.copy_out(backend, t)
        assert isinstance(copied, pa.Table) and copied.schema == t.schema().to_pyarrow()
    finally:
        backend.disconnect()


def _reads_of_events(pg_url: str) -> int:
    """How many scans PostgreSQL has started on events.agent_events (sequential and index)."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("SELECT pg_stat_force_next_flush()")
        con.execute("SELECT pg_stat_clear_snapshot()")
        return con.execute("SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables "
                           "WHERE relid = 'events.agent_events'::regclass").fetchone()[0]


def test_without_temporary_tables_postgres_reads_the_events_as_often_as_with_them(pg_url):
    """What made the report 10x slower: each query computed the cohort again, reading the events once more
    for each. Counted by PostgreSQL's own statistics, a report reads the table no more often than with
    temporary tables."""
    scenario = "berlin-fall-week"
    load_postgres(trap_rows(scenario) + long_conversation_rows(scenario), pg_url)
    url = _read_only_url(pg_url, "agentdigest_standby_reads")
    counts = []
    for target in (pg_url, url):
        before = _reads_of_events(pg_url)
        _report(target, scenario)
        counts.append(_reads_of_events(pg_url) - before)
    with_temp, without = counts
    assert 0 < without <= with_temp, counts


def test_a_type_csv_cannot_carry_is_read_through_a_cursor(pg_url):
    """A decimal has no Arrow CSV reading here: such a step is fetched as Ibis fetches it."""
    from decimal import Decimal

    _tricky_table(pg_url)
    backend = _connect(pg_url)
    try:
        t = backend.table("tricky")
        t = t.select("n", d=(t.n.cast("decimal(10, 2)") / 4).cast("decimal(10, 2)")).order_by("n")
        assert [r["d"] for r in client_tables.copy_out(backend, t).to_pylist()] == [
            Decimal(n) / 4 for n in range(len(TRICKY))]
    finally:
        backend.disconnect()


def test_a_naive_event_ts_without_temporary_tables(pg_url):
    """Found in a production audit: a ``timestamp without time zone`` event_ts (read as UTC) on a read-only role
    failed every run, exit 2: "CSV conversion error to timestamp[us, tz=UTC]: expected a zone offset": COPY
    wrote the naive times without one. The report is the one with temporary tables, and the reference's."""
    import psycopg

    scenario = "berlin-fall-week"
    rows = trap_rows(scenario) + long_conversation_rows(scenario)
    load_postgres(rows, pg_url)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("ALTER TABLE events.agent_events ALTER COLUMN event_ts TYPE timestamp "
                    "USING event_ts AT TIME ZONE 'UTC'")
    with_temp, used = _report(pg_url, scenario)
    assert used
    without, used = _report(_read_only_url(pg_url, "agentdigest_standby_naive"), scenario)
    assert not used
    assert not _same(with_temp, without), "\n".join(_same(with_temp, without))
    tz, kind, key = SCENARIOS[scenario]
    mismatches = compare_report(without, Reference(rows, tz, kind, key, now_for(scenario)))
    assert not mismatches, "\n".join(mismatches)


def test_the_kept_steps_spill_to_disk_past_their_memory_limit(pg_url):
    """Found in a production review: the in-process DuckDB had DuckDB's default limit (80% of RAM), so the process
    grew with the steps (1.17 GB at its peak for a weekly report over 3M events). Past its limit it now writes them
    to a folder of its own, removed when the report is done, and reads them back whole."""
    import os
    import tempfile
    from contextlib import ExitStack

    import ibis

    backend = ibis.connect(pg_url)
    try:
        wide = backend.sql("SELECT i, repeat(md5(i::text), 4) AS s FROM generate_series(1, 400000) AS i")  # ~60 MB
        with ExitStack() as stack:
            client = client_tables.ClientTables(stack, backend, "24MB")
            assert client.local.raw_sql("SELECT current_setting('memory_limit')").fetchone()[0] in ("22.8 MiB", "24.0 MiB")
            assert os.path.dirname(client.spill) == tempfile.gettempdir()
            kept = client.keep(wide)
            spilled = client.local.raw_sql("SELECT coalesce(sum(size), 0) FROM duckdb_temporary_files()").fetchone()[0]
            assert spilled > 10 << 20, spilled
            got = kept.agg(n=kept.count(), total=kept.i.sum(), chars=kept.s.length().sum()).to_pyarrow().to_pylist()
            assert got == [{"n": 400_000, "total": 400_000 * 400_001 // 2, "chars": 400_000 * 128}]
            spill = client.spill
        assert not os.path.exists(spill)
    finally:
        backend.disconnect()


@pytest.mark.parametrize("value,ok", [("256MB", True), ("2GB", True), (" 1.5 GiB ", True), ("512mb", True),
                                      ("lots", False), ("256", False), ("-1GB", False)])
def test_client_memory_limit_is_a_size(value, ok):
    from pydantic import ValidationError

    if ok:
        assert SourceConfig(url="postgresql://h/db", table="t", client_memory_limit=value).client_memory_limit
    else:
        with pytest.raises(ValidationError, match="is not a size"):
            SourceConfig(url="postgresql://h/db", table="t", client_memory_limit=value)


def test_a_failed_kept_step_says_its_cause_once(pg_url):
    """Found in a production review: a step that failed in the in-process DuckDB read "query failed: query failed:
    Out of Memory Error ...", its error wrapped a second time on its way out."""
    from contextlib import ExitStack

    import ibis

    from agentdigest.errors import AgentDigestError

    backend = ibis.connect(pg_url)
    try:
        text = backend.sql("SELECT 'fast' AS s FROM generate_series(1, 3)")
        with ExitStack() as stack, pytest.raises(AgentDigestError) as failed:
            client_tables.ClientTables(stack, backend).keep_joined(text, lambda t: t.mutate(n=t.s.cast("int64")))
        message = str(failed.value)
        assert message.count("source: a column") == 1 and "INT64" in message, message
    finally:
        backend.disconnect()


@pytest.mark.parametrize("broken", ["missing", "a file"])
def test_a_spill_folder_that_cannot_be_made_is_one_line(tmp_path, monkeypatch, broken):
    """Found trying agentdigest as a new user with TMPDIR naming a folder that was gone (Python keeps the temporary
    folder it found first; a cleaner had removed it) or a file: the run said "unexpected error: FileNotFoundError:
    [Errno 2] No such file or directory: '/.../agentdigest-steps-...'" (exit 1), as a bug would. It is one line
    naming the folder and TMPDIR, exit 3 as a source that cannot be read, and nothing is left behind."""
    import tempfile
    from contextlib import ExitStack

    from agentdigest.errors import SourceError

    where = tmp_path / "gone"
    if broken == "a file":
        where.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    with pytest.raises(SourceError) as failed, ExitStack() as stack:
        client_tables.ClientTables(stack, backend=None)
    line = str(failed.value)
    assert failed.value.exit_code == 3 and "\n" not in line, line
    assert line.startswith(f"source: cannot make DuckDB's spill folder in {str(where)!r} ("), line
    assert line.endswith("; expected TMPDIR naming a writable folder)"), line
    assert len(line) - len(str(where)) <= 120 and sorted(p.name for p in tmp_path.iterdir()) == (["gone"] if broken == "a file" else [])
