"""Benchmark data: canonical agent events in a DuckDB file, in Parquet, and in PostgreSQL.

Events come from agentdigest's own synthetic generator (seasonality, four agents, errors,
escalations, duplicates and dirty rows), generated one week at a time and appended in time
order, as an event log grows. The weekly volume is fixed by the 10M dataset (10M events over
10 weeks); larger datasets are longer histories at that volume (100M = 100 weeks).
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import duckdb

from agentdigest import synthetic

END = datetime(2026, 11, 30, tzinfo=timezone.utc)       # a Monday 00:00 UTC: the report week is 2026-W48
EVENTS_PER_WEEK = 1_000_000
EVENTS_PER_CONVERSATION = 5.6                             # what the generator yields on average
COLUMNS = ("event_id", "conversation_id", "event_ts", "event_type", "agent_id", "token_count", "latency_ms",
           "error_type", "error_message", "model", "cost_usd")
Progress = Callable[[float, str], None]


def paths(folder: Path, events: int) -> tuple[Path, Path]:
    tag = f"{events // 1_000_000}M" if events % 1_000_000 == 0 else str(events)
    return folder / f"events-{tag}.duckdb", folder / f"events-{tag}.parquet"


def generate(folder: Path, events: int, progress: Progress) -> tuple[Path, Path, int]:
    """Create (or reuse) the DuckDB file and the Parquet file of about ``events`` events."""
    db, parquet = paths(folder, events)
    if db.exists() and parquet.exists():
        with duckdb.connect(str(db), read_only=True) as con:
            n = con.execute("SELECT count(*) FROM agent_events").fetchone()[0]
        progress(1.0, f"reusing {db.name} ({n:,} events)")
        return db, parquet, n
    folder.mkdir(parents=True, exist_ok=True)
    tmp = db.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    weeks = max(1, math.ceil(events / EVENTS_PER_WEEK))
    per_week = events / weeks
    start = END - timedelta(weeks=weeks)
    with duckdb.connect(str(tmp)) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")  # ours is drawn by rich
        for w in range(weeks):
            week_end = start + timedelta(weeks=w + 1)
            last = w == weeks - 1
            # The demo generator's regression week and dirty rows (duplicates, nulls, NaN, a future event) land in the last week.
            synthetic.generate(con, table="_week", conversations=int(per_week / EVENTS_PER_CONVERSATION), end=week_end,
                               days=7, seed=(w + 1) / (weeks + 1), dirty=last, latest=END - timedelta(days=7))
            ids = f"replace(event_id, 'evt_', 'evt_{w}_') AS event_id, replace(conversation_id, 'conv_', 'conv_{w}_') AS conversation_id"
            rest = ", ".join(COLUMNS[2:])
            source = f"SELECT {ids}, {rest} FROM _week ORDER BY event_ts NULLS LAST"
            con.execute(f"CREATE TABLE agent_events AS {source}" if w == 0 else f"INSERT INTO agent_events {source}")
            progress((w + 1) / weeks * 0.85, f"week {w + 1}/{weeks}")
        con.execute("DROP TABLE _week")
        n = con.execute("SELECT count(*) FROM agent_events").fetchone()[0]
        progress(0.9, "writing Parquet")
        con.execute(f"COPY agent_events TO '{parquet}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)")
    tmp.rename(db)
    progress(1.0, f"{n:,} events")
    return db, parquet, n


PG_DDL = """
CREATE TABLE agent_events (
    event_id text, conversation_id text, event_ts timestamptz, event_type text, agent_id text,
    token_count integer, latency_ms double precision, error_type text, error_message text, model text,
    cost_usd double precision)
"""


def load_postgres(url: str, db: Path, n: int, folder: Path, progress: Progress) -> None:
    """Load the DuckDB table into PostgreSQL (COPY), index event_ts and ANALYZE; skipped if already there."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        have = pg.execute("SELECT to_regclass('bench_meta') IS NOT NULL").fetchone()[0] and \
            pg.execute("SELECT events FROM bench_meta").fetchone()[0]
        if have == n:
            progress(1.0, f"reusing the PostgreSQL table ({n:,} events)")
            return
        pg.execute("DROP TABLE IF EXISTS agent_events, bench_meta")
        pg.execute(PG_DDL)
        csv = folder / f"{db.stem}.csv"
        with duckdb.connect(str(db), read_only=True) as con:
            con.execute("SET TimeZone = 'UTC'")
            con.execute(f"COPY (SELECT * FROM agent_events) TO '{csv}' (HEADER false)")
        size, done = csv.stat().st_size, 0
        with pg.cursor() as cur, cur.copy("COPY agent_events FROM STDIN (FORMAT csv)") as copy, csv.open("rb") as f:
            while chunk := f.read(8 << 20):
                copy.write(chunk)
                done += len(chunk)
                progress(0.8 * done / size, "COPY")
        csv.unlink()
        progress(0.85, "CREATE INDEX ON agent_events (event_ts)")
        pg.execute("CREATE INDEX agent_events_event_ts ON agent_events (event_ts)")
        pg.execute("VACUUM ANALYZE agent_events")
        pg.execute("CREATE TABLE bench_meta AS SELECT %s::bigint AS events", (n,))
        progress(1.0, f"{n:,} events loaded")


def now_for_report() -> datetime:
    return END + timedelta(hours=9)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out
