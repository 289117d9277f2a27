"""A PostgreSQL source read by the roles production gives a reporting tool: read-only ones, on a replica."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from agentdigest.compute import compute_report
from agentdigest.config import ReportConfig, SourceConfig
from agentdigest.periods import parse_period
from agentdigest.sources import open_source
from backend_loaders import load_postgres, postgres_setting
from conftest import checked_source_line
from compare import compare_report
from reference import Reference
from trapdata import COLUMNS, SCENARIOS, now_for, trap_rows

SCENARIO = "berlin-fall-week"


def reader_url(pg_url: str, role: str) -> str:
    """``pg_url`` as ``role``, a login that may only read events.agent_events (the test server trusts it)."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        con.execute(f"GRANT USAGE ON SCHEMA events TO {role}")
        con.execute(f"GRANT SELECT ON events.agent_events TO {role}")
    user = pg_url.split("://", 1)[1].split("@", 1)[0]
    return pg_url.replace(f"://{user}@", f"://{role}@")


@pytest.mark.postgres
@pytest.mark.parametrize("restriction,says", [
    ("ALTER ROLE {role} IN DATABASE {db} SET default_transaction_read_only = on", "read-only"),  # as on a replica
    # It read "(read-only)" too, and the user looked for a read-only setting (found in a Postgres audit).
    ("REVOKE TEMPORARY ON DATABASE {db} FROM PUBLIC",
     "the role may not create them: GRANT TEMPORARY ON DATABASE {db} TO {role}"),
])
def test_a_read_only_role_gets_the_same_report_without_temporary_tables(pg_url, tmp_path, restriction, says):
    """Found in a PostgreSQL audit: a role that may not create temporary tables (read-only, or on the replica
    README advises) failed every run with "cannot execute CREATE TABLE in a read-only transaction" (exit 3),
    while check said ok. The report is now computed without them, with the same figures, and check says why."""
    import psycopg

    rows = trap_rows(SCENARIO)
    load_postgres(rows, pg_url)
    role, db = "agentdigest_readonly", pg_url.rsplit("/", 1)[1]
    url = reader_url(pg_url, role)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(restriction.format(role=role, db=db))
    tz, kind, key = SCENARIOS[SCENARIO]
    source = open_source(SourceConfig(url=url, table="events.agent_events"))
    try:
        assert not source.temp_tables
        # without a temp table's statistics, nested loops took 10x longer
        assert postgres_setting(source, "enable_nestloop") == "off"
        data = compute_report(source, ReportConfig(id="r", period=kind, timezone=tz), parse_period(kind, key, tz),
                              now=now_for(SCENARIO))
    finally:
        source.close()
    mismatches = compare_report(json.loads(data.to_json()), Reference(rows, tz, kind, key, now_for(SCENARIO)))
    assert not mismatches, "\n".join(mismatches)

    line = checked_source_line(tmp_path, url, "events.agent_events")
    assert f"no temporary tables ({says.format(role=role, db=db)}): reports compute more slowly" in line, line


@pytest.mark.postgres
def test_a_read_only_transaction_in_source_settings_keeps_the_steps_out_of_temporary_tables(pg_url):
    """Found in a production audit: `transaction_read_only = true` in [source.settings] (to be sure nothing is
    written to the events' database) passed check, and every run failed "cannot execute CREATE TABLE in a
    read-only transaction" (exit 3): whether temporary tables may be made was asked without the settings."""
    rows = trap_rows(SCENARIO)
    load_postgres(rows, pg_url)
    tz, kind, key = SCENARIOS[SCENARIO]
    source = open_source(SourceConfig(url=pg_url, table="events.agent_events",
                                      settings={"transaction_read_only": True}))
    try:
        assert not source.temp_tables
        data = compute_report(source, ReportConfig(id="r", period=kind, timezone=tz), parse_period(kind, key, tz),
                              now=now_for(SCENARIO))
    finally:
        source.close()
    mismatches = compare_report(json.loads(data.to_json()), Reference(rows, tz, kind, key, now_for(SCENARIO)))
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.postgres
def test_a_role_that_may_create_temporary_tables_keeps_using_them(pg_url):
    load_postgres(trap_rows(SCENARIO), pg_url)
    source = open_source(SourceConfig(url=reader_url(pg_url, "agentdigest_reader"), table="events.agent_events"))
    try:
        assert source.temp_tables
        assert postgres_setting(source, "enable_nestloop") == "on"
    finally:
        source.close()


@pytest.mark.postgres
def test_a_role_statement_timeout_says_where_to_raise_it(pg_url, tmp_path):
    """Found in a PostgreSQL audit: a role's statement_timeout ended the run with "query failed: canceling
    statement due to statement timeout" and no word on where to change it. A lock held elsewhere makes the
    report's first query wait past the role's 300 ms, whatever the machine's speed."""
    import psycopg

    load_postgres(trap_rows(SCENARIO), pg_url)
    role, db = "agentdigest_hurried", pg_url.rsplit("/", 1)[1]
    url = reader_url(pg_url, role)
    tz, kind, key = SCENARIOS[SCENARIO]
    (tmp_path / "agentdigest.toml").write_text(
        f'[source]\nurl = "{url}"\ntable = "events.agent_events"\n'
        f'[[reports]]\nid = "r"\nperiod = "{kind}"\ntimezone = "{tz}"\n')
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"ALTER ROLE {role} IN DATABASE {db} SET statement_timeout = '300ms'")
    with psycopg.connect(pg_url) as lock:
        lock.execute("LOCK TABLE events.agent_events IN ACCESS EXCLUSIVE MODE")
        done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "run", "r", "--period", key, "--dry-run",
                               "--format", "json", "--config", "agentdigest.toml"],
                              capture_output=True, text=True, cwd=tmp_path, timeout=120,
                              env={**os.environ, "COLUMNS": "300"})
        lock.rollback()
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "statement timeout" in done.stderr and '[source.settings]: statement_timeout = "30min"' in done.stderr
    source = open_source(SourceConfig(url=url, table="events.agent_events", settings={"statement_timeout": "30min"}))
    try:
        assert postgres_setting(source, "statement_timeout") == "30min"
    finally:
        source.close()


@pytest.mark.postgres
def test_a_table_off_the_search_path_is_named_with_its_schema(pg_url):
    """Found in a PostgreSQL audit: table = "agent_events" for a table in a schema not on the role's search
    path said only "not found". The error now says which schema holds it, among those the role may read."""
    import psycopg

    from agentdigest.errors import InputError

    load_postgres(trap_rows(SCENARIO), pg_url)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute('CREATE SCHEMA "Team.Ops"')
        con.execute('CREATE VIEW "Team.Ops".agent_events AS SELECT * FROM events.agent_events')
        con.execute("CREATE SCHEMA hidden")
        con.execute("CREATE TABLE hidden.agent_events (LIKE events.agent_events)")
    url = reader_url(pg_url, "agentdigest_pathless")  # may read events.agent_events, not the others
    with pytest.raises(InputError, match=r"table 'agent_events' not found .*; it is in a schema not on the "
                                         r"role's search path: write events\.agent_events$"):
        open_source(SourceConfig(url=url, table="agent_events"))
    with pytest.raises(InputError, match=r'write "Team\.Ops"\.agent_events or events\.agent_events or '
                                         r'hidden\.agent_events$'):
        open_source(SourceConfig(url=pg_url, table="agent_events"))
    # Neither found nor meant: the tables the role may read, as source.table would name them (found installing
    # agentdigest as a new user: nothing said which there are)
    with pytest.raises(InputError, match=r"table 'no_such_table' not found in postgresql://[^;]*; tables and views "
                                         r'there: "Team\.Ops"\.agent_events, events\.agent_events, '
                                         r"hidden\.agent_events$"):
        open_source(SourceConfig(url=pg_url, table="no_such_table"))
    with pytest.raises(InputError, match=r"table 'no_such_table' not found in postgresql://[^;]*; tables and views "
                                         r"there: events\.agent_events$"):
        open_source(SourceConfig(url=url, table="no_such_table"))
    source = open_source(SourceConfig(url=url, table="events.agent_events"))
    source.close()


@pytest.mark.postgres
@pytest.mark.parametrize("role,table,meant", [
    (None, "evnts", "events"),  # on the search path: the name alone
    (None, "analytics.agent_evnts", "analytics.agent_events"),  # was asked 'agent_events', which is not found either
    (None, "analytcs.agent_events", "analytics.agent_events"),  # a typo in the schema
    (None, "bot_evnts", "other.bot_events"),  # off the search path: with its schema (was no hint)
    (None, "agent_evnts", "analytics.agent_events"),  # in two schemas off the path: the first
    ("agentdigest_meant", "agent_evnts", "events.agent_events"),  # the one the role may read
    (None, "daily_totl", "daily_total"),  # a materialized view (was no hint)
    (None, "agent_log_2026_1", None),  # a partition holds one month: not offered (was 'agent_log_2026_10')
    (None, "agent_lg", "agent_log"),  # its partitioned table is
    (None, "no_such_table", None),
    ("agentdigest_meant", "no_such_table", None),  # the tables listed are those the role may read
    (None, "analytics.no_such_table", None),  # qualified as the name was
], ids=["search-path", "qualified", "schema-typo", "other-schema", "first-schema", "readable", "materialized-view",
        "partition", "partitioned", "unlike", "unlike-readable", "unlike-qualified"])
def test_a_mistyped_table_is_asked_did_you_mean_on_postgres(pg_url, tmp_path, role, table, meant):
    """`table = "event"` is asked "did you mean 'events'?" on DuckDB; on PostgreSQL Ibis's list of tables named the
    table alone for `analytics.agent_evnts` and left out other schemas and materialized views. The name offered is
    one the role may read, written as source.table reads it; check says it in one line, exit 2."""
    import psycopg

    load_postgres(trap_rows(SCENARIO), pg_url)  # events.agent_events: a schema off the search path
    like = "(LIKE events.agent_events)"
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("CREATE SCHEMA analytics")
        con.execute(f"CREATE TABLE analytics.agent_events {like}")
        con.execute("CREATE SCHEMA other")
        con.execute(f"CREATE TABLE other.bot_events {like}")
        con.execute(f"CREATE TABLE public.events {like}")
        con.execute("CREATE MATERIALIZED VIEW public.daily_total AS SELECT count(*) AS n FROM events.agent_events")
        con.execute("CREATE TABLE public.agent_log (LIKE events.agent_events) PARTITION BY RANGE (event_ts)")
        con.execute("CREATE TABLE public.agent_log_2026_10 PARTITION OF public.agent_log "
                    "FOR VALUES FROM ('2026-10-01') TO ('2026-11-01')")
    url = reader_url(pg_url, role) if role else pg_url
    (tmp_path / "agentdigest.toml").write_text(f'[source]\nurl = "{url}"\ntable = "{table}"\n[[reports]]\nid = "r"\n')
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", "agentdigest.toml"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120, env={**os.environ, "COLUMNS": "300"})
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert f"agentdigest.toml: source.table: table {table!r} not found in postgresql://" in line, line
    # Neither found nor meant: the relations the role may read, sorted, as source.table names them; never the
    # partition agent_log_2026_10 (found installing agentdigest as a new user: nothing said which there are)
    listed = ("events.agent_events" if role else
              "agent_log, analytics.agent_events, daily_total, events, events.agent_events, other.bot_events")
    if "." in table:
        listed = ("analytics.agent_events, events.agent_events, other.bot_events, public.agent_log, "
                  "public.daily_total, public.events")
    assert line.endswith(f"/{pg_url.rsplit('/', 1)[1]}" + (f" (did you mean {meant!r}?)" if meant else
                                                           f"; tables and views there: {listed}")), line


@pytest.mark.postgres
@pytest.mark.parametrize("table,said", [("evnts", " (did you mean 'events'?)"),
                                        ("no_such_table", "; tables and views there: events, events.agent_events")],
                         ids=["meant", "listed"])
def test_a_table_neither_found_nor_meant_reads_the_catalog_once(pg_url, monkeypatch, table, said):
    """The "did you mean" and the tables listed come from one read of the catalog: a name neither found nor meant
    read it twice, once for each (found in a review). Counted by a spy on the read, which still runs."""
    import psycopg

    from agentdigest import pg_tables
    from agentdigest.errors import InputError

    load_postgres(trap_rows(SCENARIO), pg_url)  # events.agent_events: a schema off the search path
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("CREATE TABLE public.events (LIKE events.agent_events)")
    reads = []
    readable = pg_tables._readable
    monkeypatch.setattr(pg_tables, "_readable", lambda *args: reads.append(args) or readable(*args))
    with pytest.raises(InputError) as caught:
        open_source(SourceConfig(url=pg_url, table=table))
    assert str(caught.value).endswith(f"/{pg_url.rsplit('/', 1)[1]}{said}"), str(caught.value)
    assert len(reads) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("table", ["Events.Agent_Events", "EVENTS.agent_events", "Agent_Events"])
def test_a_table_named_in_another_case_is_named_as_written_in_the_catalog(pg_url, table):
    """Found in a Postgres audit: table = "Analytics.Agent_Log", as SQL would fold it to analytics.agent_log,
    said only "not found". Names are read with their case as written (README); the error now says which
    readable table differs only in case."""
    from agentdigest.errors import InputError

    load_postgres(trap_rows(SCENARIO), pg_url)
    with pytest.raises(InputError, match=rf"table '{table}' not found .*; names are read with their case as "
                                         r"written: write events\.agent_events$"):
        open_source(SourceConfig(url=reader_url(pg_url, "agentdigest_cased"), table=table))


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize("role,revoke,says", [
    ("agentdigest_schemaless", "REVOKE USAGE ON SCHEMA events FROM {role}",
     "cannot read table 'events.agent_events' (permission denied for schema events)"),
    # Found in a production audit: USAGE on the schema but no SELECT on the table said only that it cannot be
    # read ("permission denied for table agent_events"), where a column privilege's error names its GRANT.
    ("agentdigest_selectless", "REVOKE SELECT ON events.agent_events FROM {role}",
     "the role may not read table 'events.agent_events' (expected GRANT SELECT ON events.agent_events "
     "TO agentdigest_selectless)"),
])
def test_a_role_that_may_not_read_the_table_is_one_line_exit_3(pg_url, tmp_path, command, role, revoke, says):
    """Found in a PostgreSQL audit: a role granted SELECT on the table but not USAGE on its schema ended every
    run and check with "unexpected error: InsufficientPrivilege: permission denied for schema events" (exit 1):
    Ibis reads the columns from the catalog, then agentdigest's own catalog query refused the name."""
    import psycopg

    load_postgres(trap_rows(SCENARIO), pg_url)
    url = reader_url(pg_url, role)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(revoke.format(role=role))
    tz, kind, key = SCENARIOS[SCENARIO]
    (tmp_path / "agentdigest.toml").write_text(
        f'[source]\nurl = "{url}"\ntable = "events.agent_events"\n'
        f'[[reports]]\nid = "r"\nperiod = "{kind}"\ntimezone = "{tz}"\n')
    args = ["run", "r", "--period", key, "--dry-run", "--format", "json"] if command == "run" else ["check"]
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", *args, "--config", "agentdigest.toml"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120, env={**os.environ, "COLUMNS": "300"})
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert says in done.stderr, done.stderr


@pytest.mark.postgres
def test_a_column_the_role_may_not_read_is_absent_unless_the_report_needs_it(pg_url):
    """Found in a PostgreSQL audit: column privileges that keep a reporting role from error_message (user content,
    may hold PII) failed every run with "permission denied for table agent_events" (exit 3), naming no column, and
    no setting could leave a column read by its name out. It is now absent, as a column the table lacks; a required
    or mapped one the role may not read is an error naming it and the grant."""
    import psycopg

    from agentdigest.errors import SourceError

    rows = trap_rows(SCENARIO)
    load_postgres(rows, pg_url)
    url = reader_url(pg_url, "agentdigest_columns")
    readable = [c for c in COLUMNS if c != "error_message"]
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("REVOKE SELECT ON events.agent_events FROM agentdigest_columns")
        con.execute(f"GRANT SELECT ({', '.join(readable)}) ON events.agent_events TO agentdigest_columns")
    tz, kind, key = SCENARIOS[SCENARIO]
    source = open_source(SourceConfig(url=url, table="events.agent_events"))
    try:
        assert "error_message" not in source.present and "error_type" in source.present
        data = compute_report(source, ReportConfig(id="r", period=kind, timezone=tz), parse_period(kind, key, tz),
                              now=now_for(SCENARIO))
    finally:
        source.close()
    without = [{**r, "error_message": None} for r in rows]
    mismatches = compare_report(json.loads(data.to_json()), Reference(without, tz, kind, key, now_for(SCENARIO)))
    assert not mismatches, "\n".join(mismatches)

    def refused(columns: dict, missing: str) -> None:
        with pytest.raises(SourceError, match=rf"the role may not read column\(s\) {missing} of table "
                                              rf"'events.agent_events', which the report needs \(expected GRANT "
                                              rf"SELECT \({missing}\) ON events.agent_events to the role\)$"):
            open_source(SourceConfig(url=url, table="events.agent_events", columns=columns))

    refused({"error_message": "error_message"}, "error_message")  # mapped: the user asked for it
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("REVOKE SELECT (event_type) ON events.agent_events FROM agentdigest_columns")
    refused({}, "event_type")  # required


@pytest.mark.postgres
def test_a_column_the_role_may_not_read_is_named_so_in_the_notes(pg_url):
    """"The events have no model column" sent the reader of a report whose role may not read the table's model
    column looking for a column the table has: the note says the role may not read it."""
    import psycopg

    load_postgres(trap_rows(SCENARIO), pg_url)
    url = reader_url(pg_url, "agentdigest_notes")
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("REVOKE SELECT ON events.agent_events FROM agentdigest_notes")
        con.execute(f"GRANT SELECT ({', '.join(c for c in COLUMNS if c != 'model')}) ON events.agent_events "
                    "TO agentdigest_notes")
    tz, kind, key = SCENARIOS[SCENARIO]
    source = open_source(SourceConfig(url=url, table="events.agent_events"))
    try:
        assert source.withheld == {"model"} and "model" not in source.present
        data = compute_report(source, ReportConfig(id="r", period=kind, timezone=tz), parse_period(kind, key, tz),
                              now=now_for(SCENARIO))
    finally:
        source.close()
    assert "The source's role may not read the model column: the by-model table is not shown." in data.notes
    assert not [n for n in data.notes if "no model column" in n] and data.by_model is None
    full = open_source(SourceConfig(url=pg_url, table="events.agent_events"))  # the owner reads every column
    try:
        assert full.withheld == frozenset() and "model" in full.present
    finally:
        full.close()


@pytest.mark.postgres
def test_a_table_in_a_later_schema_of_the_search_path_is_found(pg_url):
    """Found in a PostgreSQL audit: with search_path = "$user", public, events, table = "agent_events" (which
    PostgreSQL finds in events) was "not found ...; it is in a schema not on the role's search path": Ibis looked
    in the first schema only. A name PostgreSQL resolves is read as PostgreSQL resolves it."""
    import psycopg

    rows = trap_rows(SCENARIO)
    load_postgres(rows, pg_url)
    url = reader_url(pg_url, "agentdigest_searcher")
    db = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f'ALTER ROLE agentdigest_searcher IN DATABASE {db} SET search_path = "$user", public, events')
    source = open_source(SourceConfig(url=url, table="agent_events"))
    try:
        assert source.name == "agent_events"
        assert source.events.count().to_pyarrow().as_py() == len(rows)
    finally:
        source.close()


@pytest.mark.postgres
@pytest.mark.parametrize("role, command", [("agentdigest_readonly_conv", "run"), ("agentdigest_conv", "check"),
                                           ("agentdigest_conv", "run")])
def test_a_text_column_that_does_not_convert_is_a_config_error_in_the_report_transaction(pg_url, tmp_path, role,
                                                                                          command):
    """Found in a review: since a report runs in one transaction, a query Ibis reads through its named cursor
    (every query without temporary tables, and check's) lost its error when closing the cursor ("cursor ... does
    not exist", rolled back with the failed savepoint): 'fast' in a text latency_ms exited 3 as an unreadable
    source instead of 2 naming the [source.columns] key."""
    import psycopg

    load_postgres(trap_rows(SCENARIO), pg_url)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("ALTER TABLE events.agent_events ADD COLUMN latency_text text")
        con.execute("UPDATE events.agent_events SET latency_text = latency_ms::text")
        con.execute("UPDATE events.agent_events SET latency_text = 'fast' WHERE event_id = (SELECT min(event_id) "
                    "FROM events.agent_events WHERE latency_ms IS NOT NULL)")
    url = reader_url(pg_url, role)
    if "readonly" in role:
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute(f"ALTER ROLE {role} IN DATABASE {pg_url.rsplit('/', 1)[1]} SET default_transaction_read_only = on")
    tz, kind, key = SCENARIOS[SCENARIO]
    (tmp_path / "agentdigest.toml").write_text(
        f'[source]\nurl = "{url}"\ntable = "events.agent_events"\n[source.columns]\nlatency_ms = "latency_text"\n'
        f'[[reports]]\nid = "r"\nperiod = "{kind}"\ntimezone = "{tz}"\n')
    args = ["run", "r", "--period", key, "--dry-run", "--format", "json"] if command == "run" else ["check"]
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", *args, "--config", "agentdigest.toml"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120, env={**os.environ, "COLUMNS": "300"})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.strip() == ("agentdigest: error: agentdigest.toml: source.columns.latency_ms: text column "
                                   "'latency_text' holds 'fast' (expected milliseconds such as 830.5)"), done.stderr


@pytest.mark.postgres
def test_ctrl_c_during_a_query_without_temporary_tables_is_an_interruption(pg_url, tmp_path):
    """Found in a review: Ctrl-C during a report's query on a read-only role (its queries read through Ibis's
    named cursor inside the report's transaction) ended "query failed: cursor ... does not exist", exit 3 and
    the run recorded failed, not interrupted (130). A view that sleeps per row holds the query while it is hit."""
    import signal
    import time

    import psycopg

    load_postgres(trap_rows(SCENARIO), pg_url)
    role = "agentdigest_readonly_stopped"
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("CREATE VIEW events.slow_events AS SELECT e.* FROM events.agent_events e "
                    "WHERE pg_sleep(0.2) IS NOT NULL")
    url = reader_url(pg_url, role)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"GRANT SELECT ON events.slow_events TO {role}")
        con.execute(f"ALTER ROLE {role} IN DATABASE {pg_url.rsplit('/', 1)[1]} SET default_transaction_read_only = on")
    tz, kind, key = SCENARIOS[SCENARIO]
    (tmp_path / "agentdigest.toml").write_text(
        f'[source]\nurl = "{url}"\ntable = "events.slow_events"\n[ledger]\nurl = "sqlite:///{tmp_path}/ledger.db"\n'
        f'[[reports]]\nid = "r"\nperiod = "{kind}"\ntimezone = "{tz}"\n')
    proc = subprocess.Popen([sys.executable, "-m", "agentdigest.cli", "run", "r", "--period", key, "--format", "json",
                             "--config", "agentdigest.toml"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, env={**os.environ, "COLUMNS": "300"})
    try:
        deadline = time.monotonic() + 60
        with psycopg.connect(pg_url, autocommit=True) as con:
            while not con.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND wait_event = 'PgSleep'",
                                  (role,)).fetchone()[0]:
                assert time.monotonic() < deadline and proc.poll() is None, "the report's query never ran"
                time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert "interrupted by SIGINT" in err and "Traceback" not in err, err
