"""Load canonical event rows into each engine the shared backend suite runs on.

Each loader returns the ``[source]`` settings (a dict for SourceConfig) that read the rows back.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from trapdata import COLUMNS, to_arrow

#: Text columns in a linguistic collation (ICU's root locale, as in a database created with en_US.UTF-8),
#: where "billing-bot" sorts before "Support-bot": the engines' byte order must not depend on it.
PG_DDL = """
CREATE SCHEMA IF NOT EXISTS events;
DROP TABLE IF EXISTS events.agent_events;
CREATE TABLE events.agent_events (
    event_id text COLLATE "und-x-icu", conversation_id text COLLATE "und-x-icu", event_ts timestamptz,
    event_type text COLLATE "und-x-icu", agent_id text COLLATE "und-x-icu", token_count bigint,
    latency_ms double precision, error_type text COLLATE "und-x-icu", error_message text COLLATE "und-x-icu",
    model text COLLATE "und-x-icu", cost_usd double precision);
CREATE INDEX ON events.agent_events (event_ts);
"""


def load_duckdb(rows: list[dict], folder: Path) -> dict:
    import duckdb

    path = folder / "events.duckdb"
    arrow = to_arrow(rows)  # noqa: F841  (read by DuckDB's replacement scan)
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE OR REPLACE TABLE agent_events AS SELECT * FROM arrow")
    return {"url": f"duckdb://{path}", "table": "agent_events"}


def write_parquet(rows: list[dict], folder: Path, parts: int = 2) -> str:
    """Rows split over ``parts`` files, so the source reads a glob."""
    folder.mkdir(parents=True, exist_ok=True)
    table = to_arrow(rows)
    step = -(-table.num_rows // parts)
    for i in range(parts):
        pq.write_table(table.slice(i * step, step), folder / f"part-{i}.parquet")
    return str(folder / "part-*.parquet")


def load_parquet(rows: list[dict], folder: Path) -> dict:
    return {"url": "duckdb://", "files": write_parquet(rows, folder / "parquet")}


def load_postgres(rows: list[dict], url: str) -> dict:
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        con.execute(PG_DDL)
        with con.cursor() as cur:
            cur.executemany(
                f"INSERT INTO events.agent_events ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})",
                [tuple(r.get(c) for c in COLUMNS) for r in rows])
        con.execute("ANALYZE events.agent_events")
    return {"url": url, "table": "events.agent_events"}


def load_spark(rows: list[dict], folder: Path) -> dict:
    return {"url": "pyspark://local[2]", "files": write_parquet(rows, folder / "spark")}


def write_csv(rows: list[dict], folder: Path) -> str:
    """Rows as a CSV file with a header (nulls empty, timestamps ISO 8601 with offset, NaN/inf spelled out)."""
    import pyarrow.csv as pacsv

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "events.csv"
    pacsv.write_csv(to_arrow(rows), path)
    return str(path)


def postgres_setting(source, name: str) -> str:
    """The value of PostgreSQL setting ``name`` as an open PostgreSQL source's report queries see it: in the
    report's transaction, where the source's settings apply (SET LOCAL)."""
    with source.transaction(), source.backend.con.cursor() as cur:
        cur.execute("SELECT current_setting(%s)", (name,))
        return cur.fetchone()[0]
