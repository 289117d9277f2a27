"""The PostgreSQL and Spark sources: URLs, session settings, clear errors, and Postgres's plans."""

from __future__ import annotations

import builtins
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from agentdigest import cohort, spark, spark_url
from agentdigest.compute import compute_report
from agentdigest.config import ReportConfig, SourceConfig
from agentdigest.errors import ConfigError, InputError, SourceError
from agentdigest.ledger_schema import engine_url
from agentdigest.periods import parse_period
from agentdigest.sources import open_source, scheme_of
from backend_loaders import load_duckdb, load_postgres, postgres_setting
from conftest import checked_source_line
from compare import compare_report
from reference import Reference
from trapdata import SCENARIOS, now_for, trap_rows


@pytest.mark.parametrize("url,scheme", [
    ("duckdb:///var/lib/events.duckdb", "duckdb"), ("postgresql://u@h:5432/db", "postgresql"),
    ("postgres://u@h/db", "postgres"), ("postgresql+psycopg://u@h/db", "postgresql"),
    ("pyspark://local[2]", "pyspark"), ("pyspark://spark://host:7077", "pyspark"), ("bigquery://p/d", "bigquery"),
])
def test_scheme_of(url, scheme):
    assert scheme_of(url) == scheme


@pytest.mark.parametrize("url,master,cores", [
    ("pyspark://local[2]", "local[2]", 2), ("pyspark://local", "local", 1), ("pyspark://", "local[*]", None),
    ("pyspark://spark://host:7077", "spark://host:7077", None), ("pyspark://yarn", "yarn", None),
    ("pyspark://local[3, 2]", "local[3, 2]", 3),
])
def test_spark_master_and_local_cores(url, master, cores):
    assert spark.spark_master(url) == master
    if cores is not None:
        assert spark_url._local_cores(master) == cores
    elif master.startswith(("spark://", "yarn")):
        assert spark_url._local_cores(master) is None


def test_missing_pyspark_says_how_to_install_it(monkeypatch):
    real_import = builtins.__import__

    def no_pyspark(name, *args, **kwargs):
        if name.startswith("pyspark"):
            raise ImportError("No module named 'pyspark'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyspark)
    # agentdigest is not on PyPI: the hint is the clone's install, as README gives it
    with pytest.raises(SourceError, match=r"pip install -e '\.\[spark\]' in its clone"):
        open_source(SourceConfig(url="pyspark://local[2]", files="/nowhere/*.parquet"))


def test_missing_psycopg_says_how_to_install_it(monkeypatch):
    real_import = builtins.__import__

    def no_psycopg(name, *args, **kwargs):
        if name.startswith("psycopg"):
            raise ImportError("No module named 'psycopg'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_psycopg)
    with pytest.raises(SourceError, match=r"pip install -e '\.\[postgres\]' in its clone"):
        open_source(SourceConfig(url="postgresql://u@127.0.0.1:1/db", table="agent_events"))
    with pytest.raises(ConfigError, match=r"ledger needs a driver; .*pip install -e '\.\[postgres\]'"):
        engine_url("postgresql://u@127.0.0.1:1/db")


def test_another_ibis_backend_without_its_driver_says_how_to_install_it():
    """Found in a new-user audit: mysql:// said "cannot connect (Failed to import the mysql backend due to missing
    dependencies.)", and Ibis's install hint was cut off with the rest of its message."""
    import importlib.util
    if importlib.util.find_spec("MySQLdb") is not None:
        pytest.skip("the mysql driver is installed here, so Ibis's mysql backend imports")
    with pytest.raises(SourceError) as err:
        open_source(SourceConfig(url="mysql://reports:s3cret@127.0.0.1:1/events", table="agent_events"))
    assert str(err.value) == (
        "source mysql://reports:***@127.0.0.1:1/events: Ibis's mysql backend is not installed; install it into "
        "agentdigest's environment with pip install 'ibis-framework[mysql]' (untested here: agentdigest is tested "
        "on DuckDB, PostgreSQL and Spark)")


def test_missing_java_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SourceError, match="Spark needs Java 17 and none was found"):
        spark_url.check_java()


@pytest.mark.parametrize("java_on_path", [True, False])
@pytest.mark.parametrize("home,what", [("no-jdk", "a folder that does not exist"), ("empty", "a folder without bin/java")])
def test_a_java_home_without_java_is_named(monkeypatch, tmp_path, home, what, java_on_path):
    """Found in a new-user audit: "none was found (... or set JAVA_HOME)" though JAVA_HOME was set, to a
    JDK since removed, and a java was on PATH. Without a java on PATH either, "unset it to use the java on
    PATH" pointed at nothing (found checking a missing Java)."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "bin").mkdir()
    if java_on_path:
        (tmp_path / "bin" / "java").write_text("#!/bin/sh\n")
        (tmp_path / "bin" / "java").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / home))
    with pytest.raises(SourceError) as err:
        spark_url.check_java()
    assert str(err.value) == (
        f"source: Spark needs Java 17 and JAVA_HOME is {tmp_path / home}, {what}; point JAVA_HOME at a Java 17 "
        "installation, or unset it to use the java on PATH" if java_on_path else
        f"source: Spark needs Java 17 and JAVA_HOME is {tmp_path / home}, {what}, and no java is on PATH either; "
        "install openjdk-17-jre-headless, or point JAVA_HOME at a Java 17 installation")


def test_old_java_is_refused(monkeypatch, tmp_path):
    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    with pytest.raises(SourceError, match="Java 17 or later.*Java 11"):
        spark_url.check_java()


def test_unreachable_postgres_is_a_source_error_without_the_password():
    with pytest.raises(SourceError) as err:
        open_source(SourceConfig(url="postgresql://reports:s3cret@127.0.0.1:9/events", table="agent_events"))
    assert "s3cret" not in str(err.value) and "cannot connect" in str(err.value)


@pytest.mark.parametrize("where,why", [
    ("127.0.0.1:99999/events", "port '99999' is not a number from 1 to 65535"),
    ("127.0.0.1:54x/events", "port '54x' is not a number"),
    ("127.0.0.1:9,127.0.0.1:0/events", "port '0' is not a number"),  # one host's port is enough
    ("127.0.0.1:9/events?sslmod=require", 'invalid URI query parameter: "sslmod"'),
    ("127.0.0.1:9/events?sslmode=yes", "invalid sslmode value"),
    # Ibis's own /database/schema form, which libpq would read as a database named "events/analytics"
    ("127.0.0.1:9/events/analytics", "a schema in the URL's path is not read; write table = \"analytics.<table>\""),
])
def test_a_postgres_url_that_cannot_work_is_a_config_error(where, why):
    """Found in a PostgreSQL audit: these exited 3 ("the source could not be read") as if the server were
    down; the URL is wrong, whatever the server (exit 2, named source.url, the password masked)."""
    with pytest.raises(InputError, match=r"^source\.url: postgresql://reports:\*\*\*@") as err:
        open_source(SourceConfig(url=f"postgresql://reports:s3cret@{where}", table="agent_events"))
    assert why in str(err.value) and "s3cret" not in str(err.value)


@pytest.mark.postgres
def test_postgres_session_settings_and_missing_table(pg_url):
    load_postgres(trap_rows("berlin-fall-week"), pg_url)
    source = open_source(SourceConfig(url=pg_url, table="events.agent_events",
                                      settings={"work_mem": "64MB", "statement_timeout": "60s"}))
    try:
        with source.transaction(), source.backend.con.cursor() as cur:  # a report's transaction (SET LOCAL)
            cur.execute("SELECT current_setting('work_mem'), current_setting('TimeZone'), current_setting('jit')")
            assert cur.fetchone() == ("64MB", "UTC", "off")
    finally:
        source.close()
    with pytest.raises(InputError, match="not found"):
        open_source(SourceConfig(url=pg_url, table="events.no_such_table"))
    with pytest.raises(InputError, match="work_mem"):
        open_source(SourceConfig(url=pg_url, table="events.agent_events", settings={"work_mem": "lots"}))
    # Setting names are case-insensitive in PostgreSQL ("Work_Mem" was refused as "not a setting name").
    source = open_source(SourceConfig(url=pg_url, table="events.agent_events", settings={"Work_Mem": "32MB"}))
    try:
        assert postgres_setting(source, "work_mem") == "32MB"
    finally:
        source.close()
    # A DateStyle made every run fail to read timestamps (found in a re-check): refused up front.
    with pytest.raises(InputError, match=r"source.settings.DateStyle: .* would make them unreadable"):
        open_source(SourceConfig(url=pg_url, table="events.agent_events", settings={"DateStyle": "German, DMY"}))
    # A session timezone would shift naive timestamps (applied after UTC, it did: 2,406 conversations for 2,421).
    for name in ("timezone", "TimeZone"):
        with pytest.raises(InputError, match=rf"source.settings.{name}: event times are read in UTC"):
            open_source(SourceConfig(url=pg_url, table="events.agent_events", settings={name: "America/New_York"}))


def _report(settings: dict) -> dict:
    tz, kind, key = SCENARIOS["berlin-fall-week"]
    source = open_source(SourceConfig(**settings))
    try:
        data = compute_report(source, ReportConfig(id="r", period=kind, timezone=tz), parse_period(kind, key, tz),
                              now=now_for("berlin-fall-week"))
    finally:
        source.close()
    return json.loads(data.to_json())


@pytest.mark.postgres
def test_an_enum_column_under_quoted_names_reads_as_text(pg_url):
    """Production tables: an enum event_type (read as an unknown type, it was refused with Ibis's
    internals in the message) in a schema and table whose names need SQL's double quotes."""
    import psycopg

    rows = trap_rows("berlin-fall-week")
    load_postgres(rows, pg_url)
    with psycopg.connect(pg_url, autocommit=True) as con:
        kinds = [k for (k,) in con.execute("SELECT DISTINCT event_type FROM events.agent_events "
                                           "WHERE event_type IS NOT NULL ORDER BY 1")]
        con.execute('CREATE SCHEMA "My-Schema"')
        labels = ", ".join("'" + k.replace("'", "''") + "'" for k in kinds)
        con.execute(f'CREATE TYPE "My-Schema".kind AS ENUM ({labels})')
        con.execute('CREATE TABLE "My-Schema"."Agent Log" (LIKE events.agent_events)')
        con.execute('INSERT INTO "My-Schema"."Agent Log" SELECT * FROM events.agent_events')
        con.execute('ALTER TABLE "My-Schema"."Agent Log" ALTER COLUMN event_type TYPE "My-Schema".kind '
                    'USING event_type::"My-Schema".kind')
    doc = _report({"url": pg_url, "table": '"My-Schema"."Agent Log"'})
    tz, kind, key = SCENARIOS["berlin-fall-week"]
    mismatches = compare_report(doc, Reference(rows, tz, kind, key, now_for("berlin-fall-week")))
    assert not mismatches, "\n".join(mismatches)
    assert doc["metrics"]["conversations"]["value"] > 0 and doc["quality"]["unknown_event_types"] > 0
    with pytest.raises(InputError, match="is not a table name"):
        open_source(SourceConfig(url=pg_url, table='"My-Schema"x."Agent Log"'))
    # An enum of the search path is typed as text by Ibis, so no cast was written: the duplicate tie-break's
    # convert_to(evtype, ...) did not exist (found in a re-check), nor would a literal that is no label.
    agents = sorted({r["agent_id"] for r in rows if r["agent_id"] is not None})
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"CREATE TYPE evtype AS ENUM ({labels})")
        con.execute("CREATE TYPE agenttype AS ENUM (" + ", ".join("'" + a.replace("'", "''") + "'" for a in agents) + ")")
        con.execute("CREATE TABLE agent_log (LIKE events.agent_events)")
        con.execute("INSERT INTO agent_log SELECT * FROM events.agent_events")
        con.execute("ALTER TABLE agent_log ALTER COLUMN event_type TYPE evtype USING event_type::evtype, "
                    "ALTER COLUMN agent_id TYPE agenttype USING agent_id::agenttype")
    doc = _report({"url": pg_url, "table": "agent_log"})
    mismatches = compare_report(doc, Reference(rows, tz, kind, key, now_for("berlin-fall-week")))
    assert not mismatches, "\n".join(mismatches)
    assert doc["quality"]["duplicate_events"] > 0  # the tie-break ran over the enum columns


@pytest.mark.postgres
def test_a_money_cost_column_is_read_as_its_amounts(pg_url):
    """Found in a PostgreSQL audit: Ibis types money as a decimal, but PostgreSQL casts money to numeric
    only, so a money cost_usd failed every run with "query failed: cannot cast type money to double
    precision" (exit 3, naming no column). Money holds cents: the reference reads the same rounded amounts."""
    import math

    import psycopg

    rows = [dict(r, cost_usd=round(r["cost_usd"] * 1000, 2)
                 if r["cost_usd"] is not None and math.isfinite(r["cost_usd"]) else None)
            for r in trap_rows("berlin-fall-week")]
    load_postgres(rows, pg_url)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("ALTER TABLE events.agent_events ALTER COLUMN cost_usd TYPE money USING cost_usd::numeric::money")
    doc = _report({"url": pg_url, "table": "events.agent_events"})
    tz, kind, key = SCENARIOS["berlin-fall-week"]
    mismatches = compare_report(doc, Reference(rows, tz, kind, key, now_for("berlin-fall-week")))
    assert not mismatches, "\n".join(mismatches)
    assert doc["metrics"]["cost_usd"]["value"] > 0


@pytest.mark.postgres
def test_a_refused_query_names_its_source(pg_url):
    """"query failed: permission denied for table agent_events" did not say which connection failed. A role that
    may not read the table at all is now told so before any query, naming the source and the GRANT it needs."""
    import psycopg

    load_postgres(trap_rows("berlin-fall-week"), pg_url)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("DO $$ BEGIN CREATE ROLE agentdigest_noread LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        con.execute("GRANT USAGE ON SCHEMA events TO agentdigest_noread")
    user = pg_url.split("://", 1)[1].split("@", 1)[0]
    url = pg_url.replace(f"://{user}@", "://agentdigest_noread@")
    with pytest.raises(SourceError, match=r"^source postgresql://agentdigest_noread@\S+: the role may not read table "
                                          r"'events.agent_events' \(expected GRANT SELECT ON events.agent_events TO "
                                          r"agentdigest_noread\)$"):
        _report({"url": url, "table": "events.agent_events"})


@pytest.mark.postgres
def test_a_raw_password_from_the_environment_fits_the_url(pg_url, tmp_path):
    """PGPASSWORD holds a raw password. With "/" or "@" in it, ``postgresql://u:${PW}@host/db`` was cut at
    the "/" ("Port could not be cast to integer value as 'ab'"), showing the password in the error, and the
    ledger failed with an unexpected ValueError. A variable inside user:password@ is now URL-encoded."""
    load_postgres(trap_rows("berlin-fall-week"), pg_url)
    user, rest = pg_url.split("://", 1)[1].split("@", 1)
    secret = "ab/cd@ef:gh#1%?&=x"

    def check(where: str) -> subprocess.CompletedProcess:
        url = f"postgresql://{user}:${{PW}}@{where}"
        (tmp_path / "agentdigest.toml").write_text(f'[source]\nurl = "{url}"\ntable = "events.agent_events"\n'
                                                   f'[ledger]\nurl = "{url}"\n[[reports]]\nid = "r"\n')
        return subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", "agentdigest.toml"],
                              capture_output=True, text=True, cwd=tmp_path, timeout=120,
                              env={**os.environ, "COLUMNS": "300", "PW": secret})

    done = check(rest)  # the test server trusts its clients: any password is accepted, if it arrives whole
    # ... and as a query value (found in a re-check: "&" or "#" in it ended the value, and the ledger failed
    # with an unexpected ValueError)
    user_only = f"{user}@{rest}?password=${{PW}}"
    (tmp_path / "agentdigest.toml").write_text(f'[source]\nurl = "postgresql://{user_only}"\ntable = "events.agent_events"\n'
                                               f'[ledger]\nurl = "postgresql://{user_only}"\n[[reports]]\nid = "r"\n')
    query = subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", "agentdigest.toml"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=120,
                           env={**os.environ, "COLUMNS": "300", "PW": secret})
    assert query.returncode == 0, query.stdout + query.stderr
    assert "ab/cd" not in query.stdout + query.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    down = check(rest.replace(rest.split("/", 1)[0], "127.0.0.1:9"))
    assert down.returncode == 3 and "cannot connect" in down.stdout + down.stderr
    for out in (done, down):
        text = out.stdout + out.stderr
        assert "ab/cd" not in text and "ef:gh" not in text and "ab%2Fcd" not in text, text


@pytest.mark.postgres
def test_postgres_period_filter_can_use_the_event_ts_index(pg_url):
    """The window filter is a plain range on the timestamptz column (typed literals, no cast on the
    column), so Postgres can answer it from an index on event_ts. With sequential scans priced out,
    the plan of the events query must show that index."""
    load_postgres(trap_rows("berlin-fall-week"), pg_url)
    tz, kind, key = SCENARIOS["berlin-fall-week"]
    period = parse_period(kind, key, tz)
    source = open_source(SourceConfig(url=pg_url, table="events.agent_events"))
    try:
        events = cohort.valid_events(source.events, source.present, period.start_utc,
                                     period.end_utc + timedelta(hours=24))
        sql = str(source.backend.compile(events))
        with source.backend.con.cursor() as cur:
            cur.execute("SET enable_seqscan = off")
            cur.execute("EXPLAIN (FORMAT JSON) " + sql)
            plan = json.dumps(cur.fetchone()[0])
    finally:
        source.close()
    assert "agent_events_event_ts_idx" in plan and "event_ts >=" in plan, plan


@pytest.mark.postgres
def test_the_readme_index_for_a_partitioned_table_serves_the_period_filter(pg_url):
    """Found trying README's PostgreSQL instructions as a new user on a table partitioned by month: its
    CREATE INDEX CONCURRENTLY fails there ("cannot create index on partitioned table ... concurrently"), and the
    README said nothing else. The statement it now gives for a partitioned table runs, and the period filter
    reads the partitions through their indexes."""
    import re

    import psycopg

    index = (Path(__file__).parent.parent / "README.md").read_text().split("**Index.**", 1)[1].split("\n**", 1)[0]
    plain, partitioned = re.findall(r"```sql\n(.*?)```", index, re.S)
    load_postgres(trap_rows("berlin-fall-week"), pg_url)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("CREATE SCHEMA analytics")
        con.execute("CREATE TABLE analytics.agent_events (LIKE events.agent_events) PARTITION BY RANGE (event_ts)")
        for month, end in (("2026_09", "2026-10-01"), ("2026_10", "2026-11-01"), ("2026_11", "2026-12-01")):
            con.execute(f"CREATE TABLE analytics.agent_events_{month} PARTITION OF analytics.agent_events "
                        f"FOR VALUES FROM ('{month.replace('_', '-')}-01') TO ('{end}')")
        con.execute("CREATE TABLE analytics.agent_events_rest PARTITION OF analytics.agent_events DEFAULT")
        con.execute("INSERT INTO analytics.agent_events SELECT * FROM events.agent_events")
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="concurrently"):
            con.execute(plain)
        con.execute(partitioned)
        con.execute("ANALYZE analytics.agent_events")
    tz, kind, key = SCENARIOS["berlin-fall-week"]
    period = parse_period(kind, key, tz)
    source = open_source(SourceConfig(url=pg_url, table="analytics.agent_events"))
    try:
        events = cohort.valid_events(source.events, source.present, period.start_utc,
                                     period.end_utc + timedelta(hours=24))
        with source.backend.con.cursor() as cur:
            cur.execute("SET enable_seqscan = off")
            cur.execute("EXPLAIN (FORMAT JSON) " + str(source.backend.compile(events)))
            plan = json.dumps(cur.fetchone()[0])
    finally:
        source.close()
    assert "agent_events_2026_10_event_ts_idx" in plan and "agent_events_2026_11" not in plan, plan


PARTITIONED = ["CREATE TABLE analytics.agent_events (LIKE events.agent_events) PARTITION BY RANGE (event_ts)",
               *(f"CREATE TABLE analytics.agent_events_{m} PARTITION OF analytics.agent_events "
                 f"FOR VALUES FROM ('2026-{m}-01') TO ('2026-{m + 1}-01')" for m in (9, 10, 11)),
               "CREATE TABLE analytics.agent_events_rest PARTITION OF analytics.agent_events DEFAULT"]
PARTITIONS_NOTE = "; no index on event_ts in 3 of its 4 partitions: each report reads them whole (README, Index))"


@pytest.mark.postgres
@pytest.mark.parametrize("made,table,note", [
    (["CREATE TABLE analytics.agent_events (LIKE events.agent_events)"], "analytics.agent_events",
     "; no index on event_ts: each report reads the whole table (README, Index))"),
    (["CREATE TABLE analytics.agent_events (LIKE events.agent_events)",
      "CREATE INDEX agent_events_event_ts_idx ON analytics.agent_events (event_ts)"], "analytics.agent_events", ")"),
    (PARTITIONED, "analytics.agent_events", "; no index on event_ts: each report reads the whole table (README, Index))"),
    ([*PARTITIONED, "CREATE INDEX ON analytics.agent_events_10 (event_ts)"], "analytics.agent_events", PARTITIONS_NOTE),
    ([*PARTITIONED, "CREATE INDEX agent_events_event_ts_idx ON analytics.agent_events (event_ts)"],
     "analytics.agent_events", ")"),
    (["CREATE VIEW analytics.agent_events AS SELECT * FROM events.agent_events"], "analytics.agent_events", ")"),
    (["CREATE MATERIALIZED VIEW analytics.agent_events AS SELECT * FROM events.agent_events"], "analytics.agent_events",
     "; no index on event_ts: each report reads the whole table (README, Index))"),
], ids=["table", "table-indexed", "partitioned", "some-partitions", "partitioned-indexed", "view", "materialized-view"])
def test_check_says_when_no_index_serves_the_period_filter(pg_url, tmp_path, made, table, note):
    """Found trying README's PostgreSQL instructions as a new user: its CREATE INDEX CONCURRENTLY fails on a table
    partitioned by month, and check said "ok" of the table without the index README recommends, where each report
    then reads the whole table. check now says so, for a table, a partitioned table (or some of its partitions) and
    a materialized view; a view's index is its table's, so nothing is said of a view."""
    import psycopg

    load_postgres(trap_rows("berlin-fall-week"), pg_url)  # events.agent_events, with an index on event_ts
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("CREATE SCHEMA analytics")
        for statement in made:
            con.execute(statement)
        if "VIEW" not in made[0]:
            con.execute("INSERT INTO analytics.agent_events SELECT * FROM events.agent_events")
    line = checked_source_line(tmp_path, pg_url, table)
    assert line.startswith(f"source {table}: ok (") and line.endswith("not counted" + note), line


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["check", "run"])
def test_a_materialized_view_not_yet_refreshed_says_to_refresh_it(pg_url, tmp_path, command):
    """Found trying a materialized view as the table, as a new user would make one (WITH NO DATA, to refresh it
    at night): check and run said only "query failed: materialized view "agent_events" has not been populated"
    (exit 3); PostgreSQL's hint to refresh it was on a line agentdigest does not show."""
    import psycopg

    load_postgres(trap_rows("berlin-fall-week"), pg_url)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("CREATE SCHEMA analytics")
        con.execute("CREATE MATERIALIZED VIEW analytics.agent_events AS SELECT * FROM events.agent_events WITH NO DATA")
    (tmp_path / "agentdigest.toml").write_text(f'[source]\nurl = "{pg_url}"\ntable = "analytics.agent_events"\n'
                                               '[[reports]]\nid = "r"\n')
    args = ["run", "--dry-run", "--format", "json", "--period", "2026-W43"] if command == "run" else ["check"]
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", *args, "--config", "agentdigest.toml"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120, env={**os.environ, "COLUMNS": "300"})
    assert done.returncode == 3, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.endswith('query failed: materialized view "agent_events" has not been populated; expected it '
                         'refreshed first (REFRESH MATERIALIZED VIEW, as its owner)'), line


@pytest.mark.postgres
def test_a_naive_event_ts_is_read_as_utc_and_its_index_is_used(pg_url):
    """Found in a PostgreSQL audit: a ``timestamp without time zone`` event_ts was cast to timestamptz in the
    query, so no period filter could use an index on it and each report read the whole table several times
    (10M events: 52 s against 16 s for timestamptz). Compared as it is, the index serves the filter; the
    database's TimeZone is not UTC, so a value read in any zone but UTC would move events between periods."""
    import psycopg

    rows = trap_rows("berlin-fall-week")
    load_postgres(rows, pg_url)
    db = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("ALTER TABLE events.agent_events ALTER COLUMN event_ts TYPE timestamp "
                    "USING event_ts AT TIME ZONE 'UTC'")
        con.execute(f"ALTER DATABASE {db} SET TimeZone = 'America/Los_Angeles'")
        con.execute("ANALYZE events.agent_events")
    tz, kind, key = SCENARIOS["berlin-fall-week"]
    doc = _report({"url": pg_url, "table": "events.agent_events"})
    mismatches = compare_report(doc, Reference(rows, tz, kind, key, now_for("berlin-fall-week")))
    assert not mismatches, "\n".join(mismatches)
    # An event's own time is read back too (failure examples): the row's UTC instant, not a shifted one.
    times = {(r["conversation_id"], r["event_ts"]) for r in rows if r["event_ts"] is not None}
    examples = [(e["conversation_id"], datetime.fromisoformat(e["event_ts"])) for e in doc["failure_examples"]]
    assert examples and all(example in times for example in examples), examples

    period = parse_period(kind, key, tz)
    source = open_source(SourceConfig(url=pg_url, table="events.agent_events"))
    try:
        events = cohort.valid_events(source.events, source.present, period.start_utc,
                                     period.end_utc + timedelta(hours=24))
        with source.backend.con.cursor() as cur:
            cur.execute("SET enable_seqscan = off")
            cur.execute("EXPLAIN (FORMAT JSON) " + str(source.backend.compile(events)))
            plan = json.dumps(cur.fetchone()[0])
    finally:
        source.close()
    assert "agent_events_event_ts_idx" in plan and "Index Cond" in plan, plan


def test_cached_tables_are_released_after_a_report(tmp_path):
    """A long-running scheduler reuses its source: the report's temporary tables must not pile up
    (sqlglot 30.18+ rendered Ibis's DROP TABLE without a name, so none was ever dropped)."""
    from agentdigest.compute import compute_report
    from agentdigest.config import ReportConfig
    from backend_loaders import load_duckdb
    from trapdata import now_for

    tz, kind, key = SCENARIOS["berlin-fall-week"]
    source = open_source(SourceConfig(**load_duckdb(trap_rows("berlin-fall-week"), tmp_path)))
    try:
        compute_report(source, ReportConfig(id="t", period=kind, timezone=tz), parse_period(kind, key, tz),
                       now=now_for("berlin-fall-week"))
        leftovers = [t for t in source.backend.list_tables() if t.startswith("ibis_cached")]
    finally:
        source.close()
    assert leftovers == []


@pytest.mark.parametrize("pinned", [None, 1])
def test_duckdb_thread_tuning_is_undone_and_never_overrides_a_pinned_setting(tmp_path, pinned):
    """The repeated-id search runs with one DuckDB thread more than 2 cores (sources.Source.many_groups);
    afterwards the session has its own thread count again, and a configured ``threads`` is never touched."""
    from agentdigest.compute import compute_report
    from agentdigest.config import ReportConfig
    from backend_loaders import load_duckdb
    from trapdata import now_for

    tz, kind, key = SCENARIOS["berlin-fall-week"]
    settings = load_duckdb(trap_rows("berlin-fall-week"), tmp_path)
    if pinned is not None:
        settings["settings"] = {"threads": pinned}
    source = open_source(SourceConfig(**settings))

    def threads() -> int:
        return int(source.backend.raw_sql("SELECT current_setting('threads')").fetchone()[0])

    seen: list[int] = []
    try:
        if pinned is None:
            source.backend.raw_sql("SET threads = 2")  # as on the 2-core machine it was measured on
        before = threads()
        with source.many_groups():
            seen.append(threads())
        compute_report(source, ReportConfig(id="t", period=kind, timezone=tz), parse_period(kind, key, tz),
                       now=now_for("berlin-fall-week"))
        after = threads()
    finally:
        source.close()
    assert after == before
    assert seen == ([3] if pinned is None else [pinned])


@pytest.mark.parametrize(("configured", "expected"), [(None, 2_000_000_000), ("0B", 0), ("512MB", 512_000_000)])
def test_duckdb_keeps_its_buffer_memory_unless_configured_otherwise(tmp_path, configured, expected):
    """block_allocator_memory defaults to 2GB (duckdb_source.DUCKDB_DEFAULTS); [source.settings] overrides it."""
    from backend_loaders import load_duckdb

    settings = load_duckdb(trap_rows("berlin-fall-week"), tmp_path)
    if configured is not None:
        settings["settings"] = {"block_allocator_memory": configured}
    source = open_source(SourceConfig(**settings))
    try:
        shown = source.backend.raw_sql("SELECT current_setting('block_allocator_memory')").fetchone()[0]
    finally:
        source.close()
    number, unit = shown.split() if " " in shown else (shown, "bytes")
    scale = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]
    assert float(number) * scale == pytest.approx(expected, rel=0.05)  # shown rounded: "1.8 GiB"


@pytest.mark.parametrize("overlong", [False, True])
def test_a_report_runs_the_documented_number_of_queries(tmp_path, monkeypatch, overlong):
    """README "Queries": a fixed 16 per report, one more when a conversation outlasts its window;
    every query goes through the queries module's two entry points (materialize, or fetch rows)."""
    from agentdigest import compute, queries
    from agentdigest.config import ReportConfig
    from backend_loaders import load_duckdb
    from trapdata import long_conversation_rows, now_for

    scenario = "berlin-fall-week"
    tz, kind, key = SCENARIOS[scenario]
    rows = trap_rows(scenario) + (long_conversation_rows(scenario) if overlong else [])
    calls: list[str] = []
    rows_fn, cache_fn = queries.rows, queries.cache
    monkeypatch.setattr(queries, "rows", lambda expr: calls.append("rows") or rows_fn(expr))
    monkeypatch.setattr(queries, "cache", lambda stack, expr, *temp: calls.append("cache") or cache_fn(stack, expr, *temp))
    source = open_source(SourceConfig(**load_duckdb(rows, tmp_path)))
    try:
        compute.compute_report(source, ReportConfig(id="t", period=kind, timezone=tz), parse_period(kind, key, tz),
                               now=now_for(scenario))
    finally:
        source.close()
    assert len(calls) == (17 if overlong else 16), calls


@pytest.mark.postgres
def test_check_reads_a_postgres_source(pg_url, tmp_path):
    rows = trap_rows("berlin-fall-week")
    load_postgres(rows, pg_url)
    line = checked_source_line(tmp_path, pg_url, "events.agent_events")
    now = datetime.now(timezone.utc)
    past = [r["event_ts"] for r in rows if r["event_ts"] is not None and r["event_ts"] <= now]
    assert f"{len(rows):,} events, latest {max(past).astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC" in line, line


@pytest.mark.postgres
def test_check_warns_of_an_empty_postgres_table(pg_url, tmp_path):
    """Found in a production audit: an empty table passed check as "ok (0 events, latest none)"."""
    load_postgres([], pg_url)
    line = checked_source_line(tmp_path, pg_url, "events.agent_events")  # exit 0: readable, the run succeeds
    assert line.startswith('source events.agent_events: WARNING - no events: it holds no rows, so every report '
                           'would say "No events arrived"'), line


@pytest.mark.postgres
def test_a_verbose_run_on_postgres_logs_agentdigest_progress_and_no_library_info(pg_url, tmp_path):
    """Found in a production audit: `run --verbose` on PostgreSQL showed "INFO sqlglot...: Applying array index
    offset", a library's chatter among agentdigest's own progress lines."""
    load_postgres(trap_rows("berlin-fall-week"), pg_url)
    tz, kind, key = SCENARIOS["berlin-fall-week"]
    (tmp_path / "agentdigest.toml").write_text(
        f'[source]\nurl = "{pg_url}"\ntable = "events.agent_events"\n'
        f'[[reports]]\nid = "r"\nperiod = "{kind}"\ntimezone = "{tz}"\n')
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "run", "r", "--period", key, "--dry-run",
                           "--verbose", "--config", "agentdigest.toml"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300, env={**os.environ, "COLUMNS": "300"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"INFO agentdigest: computed r {key}" in done.stderr, done.stderr
    assert not [line for line in done.stderr.splitlines() if "sqlglot" in line or "weasyprint" in line], done.stderr


@pytest.mark.spark
def test_spark_errors_are_one_line_and_a_refused_setting_names_its_key(spark, tmp_path):
    """Found in an engines audit: Spark's JVM (log4j start-up lines, executor stack traces) and PySpark's
    query-context logger wrote dozens of lines above the CLI's one-line error, and a bad
    [source.spark_conf] value was "unexpected error", exit 1. The JVM of a CLI run now writes to a log
    file, and a refused setting is a config error naming the key."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [r for r in trap_rows("berlin-fall-week") if r["event_ts"] is not None]
    table = pa.table({"conversation_id": [r["conversation_id"] for r in rows], "event_ts": [r["event_ts"] for r in rows],
                      "event_type": [r["event_type"] for r in rows],
                      "latency_ms": ["fast" if i == 3 else "12.5" for i in range(len(rows))]})
    pq.write_table(table, tmp_path / "events.parquet")
    tz, kind, key = SCENARIOS["berlin-fall-week"]
    base = (f'[source]\nurl = "pyspark://local[1]"\nfiles = ["events.parquet"]\n'
            f'[[reports]]\nid = "r"\nperiod = "{kind}"\ntimezone = "{tz}"\n')

    def run(config: str, *args: str) -> subprocess.CompletedProcess:
        (tmp_path / "agentdigest.toml").write_text(config)
        return subprocess.run([sys.executable, "-m", "agentdigest.cli", *args, "--config", "agentdigest.toml"],
                              capture_output=True, text=True, cwd=tmp_path, timeout=300)

    bad_value = run(base, "run", "--dry-run", "--period", key)
    assert bad_value.returncode == 2, bad_value.stderr  # one value, redacted as event text (tests/test_columns.py)
    assert ("agentdigest.toml: source.columns.latency_ms: text column 'latency_ms' holds 'fast' (expected milliseconds "
            "such as 830.5)") in bad_value.stderr, bad_value.stderr
    assert len(bad_value.stderr.strip().splitlines()) == 1, bad_value.stderr
    refused = run(base.replace('files = ["events.parquet"]\n', 'files = ["events.parquet"]\n[source.spark_conf]\n'
                                                               '"spark.sql.shuffle.partitions" = "abc"\n'), "check")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert "source.spark_conf.spark.sql.shuffle.partitions" in line and "should be int, but was abc" in line


@pytest.mark.postgres
def test_an_event_id_the_table_keeps_unique_skips_the_search_for_repeats(pg_url):
    """Production tables often have a primary key or unique index on event_id; then no id repeats, and the
    search for repeated ids (a group-by of every id in the window, 10 s of a 38 s report on 10M events) is
    skipped. The report must still match the definitions, with no duplicates counted; an index that does not
    make the column alone unique (two columns, partial, an expression) must leave the search in place."""
    import psycopg

    seen: set[str] = set()
    rows = []
    for row in trap_rows("berlin-fall-week"):  # the trap data repeats ids by design: one row per id here
        row = {**row, "event_id": row["event_id"] or None}
        if row["event_id"] is not None and row["event_id"] in seen:
            continue
        seen.add(row["event_id"])
        rows.append(row)
    assert len(rows) < len(trap_rows("berlin-fall-week"))
    settings = load_postgres(rows, pg_url)
    tz, kind, key = SCENARIOS["berlin-fall-week"]
    period = parse_period(kind, key, tz)

    def unique_ids() -> bool:
        source = open_source(SourceConfig(**settings))
        try:
            return source.unique_ids
        finally:
            source.close()

    with psycopg.connect(pg_url, autocommit=True) as con:
        for index in ("CREATE UNIQUE INDEX two ON events.agent_events (event_id, event_ts)",
                      "CREATE UNIQUE INDEX part ON events.agent_events (event_id) WHERE event_type = 'error'",
                      "CREATE UNIQUE INDEX expr ON events.agent_events (lower(event_id))",
                      "CREATE INDEX plain ON events.agent_events (event_id)"):
            con.execute(index)
            assert not unique_ids(), index
        con.execute("CREATE VIEW events.v AS SELECT * FROM events.agent_events")
        con.execute("ALTER TABLE events.agent_events ADD CONSTRAINT one_row_per_id UNIQUE (event_id)")
    assert unique_ids()
    source = open_source(SourceConfig(url=pg_url, table="events.v"))
    try:
        assert not source.unique_ids  # a view has no index of its own
    finally:
        source.close()

    doc = _report(settings)
    mismatches = compare_report(doc, Reference(rows, tz, kind, key, now_for("berlin-fall-week")))
    assert not mismatches, "\n".join(mismatches)
    assert doc["quality"]["duplicate_events"] == 0
    source = open_source(SourceConfig(**settings))
    plans = {}
    try:
        for unique in (source.unique_ids, False):
            search = cohort.duplicate_ids(source.events, source.present, period.start_utc, period.end_utc,
                                          unique=unique)
            with source.backend.con.cursor() as cur:
                cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + str(source.backend.compile(search)))
                plans[unique] = cur.fetchone()[0][0]["Plan"]
    finally:
        source.close()

    def rows_read(node: dict) -> int:
        own = node["Actual Rows"] * node["Actual Loops"] if "Relation Name" in node else 0
        return own + sum(rows_read(child) for child in node.get("Plans", []))

    # The engine plans the empty search without reading a row of the events (the search itself reads them all).
    assert rows_read(plans[True]) == 0 and plans[True]["Actual Rows"] == 0, plans[True]
    assert rows_read(plans[False]) > 0, plans[False]


@pytest.mark.postgres
def test_a_key_on_a_parent_table_does_not_skip_the_search_for_its_childrens_repeats(pg_url):
    """Found in a column-types audit: a table with children (INHERITS, as partitioning was done before PostgreSQL
    10 and still is by some tools) is read with its children's rows, but its primary key holds in its own rows
    only. Read as unique, the report skipped the search for repeats: an event ingested twice, once in each
    table, counted twice (errors, tokens and cost doubled, duplicate_events 0). A declaratively partitioned
    table's key holds across its partitions: that search is still skipped."""
    import psycopg

    seen: set[str] = set()
    rows = []
    for row in trap_rows("berlin-fall-week"):  # one row per id, as the key wants
        if row["event_id"] and row["event_id"] not in seen:
            seen.add(row["event_id"])
            rows.append(row)
    settings = load_postgres(rows, pg_url)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("ALTER TABLE events.agent_events ADD PRIMARY KEY (event_id)")
        con.execute("CREATE TABLE events.agent_events_late () INHERITS (events.agent_events)")
        con.execute("INSERT INTO events.agent_events_late SELECT * FROM ONLY events.agent_events")  # at least once
        con.execute("CREATE TABLE events.parts (LIKE events.agent_events) PARTITION BY HASH (event_id)")
        for rest in (0, 1):
            con.execute(f"CREATE TABLE events.parts_{rest} PARTITION OF events.parts "
                        f"FOR VALUES WITH (MODULUS 2, REMAINDER {rest})")
        con.execute("ALTER TABLE events.parts ADD PRIMARY KEY (event_id)")
    source = open_source(SourceConfig(**settings))
    try:
        assert not source.unique_ids
    finally:
        source.close()
    source = open_source(SourceConfig(url=pg_url, table="events.parts"))
    try:
        assert source.unique_ids
    finally:
        source.close()
    doc = _report(settings)
    tz, kind, key = SCENARIOS["berlin-fall-week"]
    twice = rows + [dict(r) for r in rows]  # copies, not the same rows: the reference keeps one of each id
    mismatches = compare_report(doc, Reference(twice, tz, kind, key, now_for("berlin-fall-week")))
    assert not mismatches, "\n".join(mismatches)
    assert doc["quality"]["duplicate_events"] > 0


def test_a_duckdb_table_whose_key_is_event_id_skips_the_search_for_repeats(tmp_path):
    """As in PostgreSQL: a DuckDB table with a primary key or UNIQUE constraint on event_id alone can hold no
    repeated id, so the report skips the search for them (the longest of its hash aggregations). The report
    still matches the definitions; a key on two columns, on another column, or a view keeps the search."""
    import duckdb

    seen: set[str] = set()
    rows = []
    for row in trap_rows("berlin-fall-week"):  # the trap data repeats ids by design: one row per id here
        if row["event_id"] and row["event_id"] in seen:
            continue
        seen.add(row["event_id"])
        rows.append(row)
    settings = load_duckdb(rows, tmp_path)
    path = settings["url"].removeprefix("duckdb://")

    def unique_ids(table: str) -> bool:
        source = open_source(SourceConfig(url=settings["url"], table=table))
        try:
            return source.unique_ids
        finally:
            source.close()

    assert not unique_ids("agent_events")
    with duckdb.connect(path) as con:
        con.execute("CREATE TABLE two (event_id TEXT, event_ts TIMESTAMPTZ, conversation_id TEXT, event_type TEXT, "
                    "PRIMARY KEY (event_id, event_ts))")
        con.execute("CREATE TABLE other (event_id TEXT, event_ts TIMESTAMPTZ, conversation_id TEXT PRIMARY KEY, "
                    "event_type TEXT)")
        con.execute("CREATE SCHEMA ev")
        con.execute("CREATE TABLE ev.Keyed AS SELECT * FROM agent_events WHERE false")
        con.execute("CREATE TABLE keyed (event_id TEXT UNIQUE, conversation_id TEXT, event_ts TIMESTAMPTZ, "
                    "event_type TEXT, agent_id TEXT, token_count BIGINT, latency_ms DOUBLE, error_type TEXT, "
                    "error_message TEXT, model TEXT, cost_usd DOUBLE)")
        con.execute("INSERT INTO keyed SELECT event_id, conversation_id, event_ts, event_type, agent_id, token_count, "
                    "latency_ms, error_type, error_message, model, cost_usd FROM agent_events")
        con.execute("CREATE VIEW v AS SELECT * FROM keyed")
    assert not unique_ids("two")
    assert not unique_ids("other")
    assert not unique_ids("ev.keyed")  # the same name in another schema, without the key
    assert not unique_ids("v")  # a view has no constraint of its own
    assert unique_ids("keyed") and unique_ids("main.KEYED") and unique_ids("events.main.keyed")

    doc = _report({**settings, "table": "keyed"})
    tz, kind, key = SCENARIOS["berlin-fall-week"]
    mismatches = compare_report(doc, Reference(rows, tz, kind, key, now_for("berlin-fall-week")))
    assert not mismatches, "\n".join(mismatches)
    assert doc["quality"]["duplicate_events"] == 0
    # the same report with the search (floats to the order of their sums: DuckDB adds in parallel)
    assert _same(doc, _report({**settings, "table": "v"}) | {"generated_at": doc["generated_at"]})


def _same(a: object, b: object) -> bool:
    """``a`` and ``b`` equal, their floats to a relative 1e-12."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-12, abs=1e-15)
    return a == b and type(a) is type(b)
