"""The column types of tables people already have, on DuckDB and PostgreSQL (a column-types audit).

Each case loads the trap rows, makes a table whose columns have another type (``CREATE TABLE ... AS SELECT``
with a cast), and reads that table's rows back in the canonical types by plain SQL: the reference report is
computed from those rows (a NUMERIC(10, 2) latency is rounded in the table, so in the reference too). A type
that is read must give exactly the reference's report.json; one that is refused must stop the run with one
line naming the column, its type and what is expected (InputError, exit 2), never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from agentdigest.compute import compute_report
from agentdigest.config import ReportConfig, SourceConfig
from agentdigest.errors import InputError
from agentdigest.periods import parse_period
from agentdigest.sources import open_source
from backend_loaders import load_duckdb, load_postgres
from compare import compare_report
from reference import Reference
from trapdata import COLUMNS, SCENARIOS, now_for, trap_rows

SCENARIO = "berlin-fall-week"
ROWS = trap_rows(SCENARIO)


def _labels(column: str) -> str:
    """The column's values as enum labels, in reverse byte order: an enum compares by its labels' order, which
    must not decide a tie the report breaks by text (a conversation's agent, the copy of a duplicate kept)."""
    values = sorted({r[column] for r in ROWS if r[column] is not None}, reverse=True)
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


#: Non-finite values made null, for types that hold none.
FINITE = {"pg": "CASE WHEN {c} IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE {c} END",
          "duckdb": "CASE WHEN isfinite({c}) THEN {c} END"}
#: How each engine reads a column back as text, a double and a bigint.
TEXT = {"pg": "{c}::text", "duckdb": "{c}::VARCHAR"}
DOUBLE = {"pg": "{c}::float8", "duckdb": "{c}::DOUBLE"}
BIGINT = {"pg": "{c}::bigint", "duckdb": "{c}::BIGINT"}


def _case(backend: str, name: str, made: dict[str, str], back: dict[str, str] | None = None, setup: str = "",
          **source) -> pytest.param:
    """A table whose columns are ``made`` (canonical column -> SQL over the canonical table, ``{c}`` the
    column), read back to canonical types by ``back``; ``source``: more [source] settings."""
    marks = [pytest.mark.postgres] if backend == "pg" else []
    return pytest.param(backend, made, back or {}, setup, source, id=f"{backend}-{name}", marks=marks)


def _both(name: str, made: dict[str, dict[str, str]], back: dict[str, dict[str, str]] | None = None,
          setup: dict[str, str] | None = None, **source) -> list:
    """The case on both engines: each dict is engine -> SQL (``{c}`` is the column)."""
    out = []
    for backend in ("duckdb", "pg"):
        if all(backend in sql for sql in made.values()):
            out.append(_case(backend, name, {c: sql[backend] for c, sql in made.items()},
                             {c: sql[backend] for c, sql in (back or {}).items()}, (setup or {}).get(backend, ""),
                             **source))
    return out


both = lambda sql: {"pg": sql, "duckdb": sql}  # noqa: E731  (the same SQL on both engines)

READ = [
    *_both("uuid-ids", {"event_id": {"pg": "md5({c})::uuid", "duckdb": "md5({c})::UUID"},
                        "conversation_id": {"pg": "md5({c})::uuid", "duckdb": "md5({c})::UUID"}},
           {"event_id": TEXT, "conversation_id": TEXT}),
    *_both("bigint-conversation-id",
           {"conversation_id": both("CASE WHEN {c} IS NOT NULL THEN dense_rank() OVER (ORDER BY {c}) END::BIGINT")},
           {"conversation_id": TEXT}),
    *_both("enum-agent-id", {"agent_id": both("{c}::agent_enum")}, {"agent_id": TEXT},
           both(f"CREATE TYPE agent_enum AS ENUM ({_labels('agent_id')})")),
    *_both("enum-event-type", {"event_type": both("{c}::type_enum")}, {"event_type": TEXT},
           both(f"CREATE TYPE type_enum AS ENUM ({_labels('event_type')})")),
    *_both("enum-ids", {"event_id": both("{c}::id_enum"), "conversation_id": both("{c}::conv_enum")},
           {"event_id": TEXT, "conversation_id": TEXT},
           both(f"CREATE TYPE id_enum AS ENUM ({_labels('event_id')}); "
                f"CREATE TYPE conv_enum AS ENUM ({_labels('conversation_id')})")),
    _case("pg", "enum-agent-id-of-another-schema", {"agent_id": "{c}::kinds.agent_enum"}, {"agent_id": "{c}::text"},
          f"CREATE SCHEMA kinds; CREATE TYPE kinds.agent_enum AS ENUM ({_labels('agent_id')})"),
    *_both("char-n", {"conversation_id": both("{c}::CHAR(40)"), "event_type": both("{c}::CHAR(20)"),
                      "agent_id": both("{c}::CHAR(40)"), "model": both("{c}::CHAR(40)")},
           {"conversation_id": TEXT, "event_type": TEXT, "agent_id": TEXT, "model": TEXT}),
    _case("duckdb", "timestamp-ns", {"event_ts": "{c}::TIMESTAMP_NS"}, {"event_ts": "{c}::TIMESTAMPTZ"}),
    _case("duckdb", "timestamp-s", {"event_ts": "{c}::TIMESTAMP_S"}, {"event_ts": "{c}::TIMESTAMPTZ"}),
    _case("pg", "timestamp-0", {"event_ts": "({c} AT TIME ZONE 'UTC')::timestamp(0)"},
          {"event_ts": "{c} AT TIME ZONE 'UTC'"}),
    *_both("varchar-n", {"conversation_id": both("{c}::VARCHAR(40)"), "event_type": both("{c}::VARCHAR(20)"),
                         "agent_id": both("{c}::VARCHAR(40)")},
           {"conversation_id": TEXT, "event_type": TEXT, "agent_id": TEXT}),
    _case("pg", "citext", {c: "{c}::citext" for c in ("event_id", "conversation_id", "event_type", "agent_id")},
          {c: "{c}::text" for c in ("event_id", "conversation_id", "event_type", "agent_id")},
          "CREATE EXTENSION IF NOT EXISTS citext"),
    *_both("integer-latency", {"latency_ms": {b: "round(" + FINITE[b] + ")::INTEGER" for b in FINITE}},
           {"latency_ms": DOUBLE}),
    *_both("decimal-latency", {"latency_ms": {b: "(" + FINITE[b] + ")::DECIMAL(10, 2)" for b in FINITE}},
           {"latency_ms": DOUBLE}),
    _case("pg", "numeric-latency-with-nan", {"latency_ms": "{c}::numeric"}, {"latency_ms": "{c}::float8"}),
    *_both("real-latency", {"latency_ms": {"pg": "{c}::real", "duckdb": "{c}::FLOAT"}}, {"latency_ms": DOUBLE}),
    *_both("decimal-tokens", {"token_count": {"pg": "{c}::numeric", "duckdb": "{c}::DECIMAL(18, 0)"}},
           {"token_count": BIGINT}),
    *_both("smallint-tokens", {"token_count": both("{c}::SMALLINT")}, {"token_count": BIGINT}),
    _case("duckdb", "hugeint-tokens", {"token_count": "{c}::HUGEINT"}, {"token_count": "{c}::BIGINT"}),
    *_both("decimal-cost", {"cost_usd": {b: "(" + FINITE[b] + ")::DECIMAL(12, 6)" for b in FINITE}},
           {"cost_usd": DOUBLE}),
    _case("pg", "money-cost", {"cost_usd": "(" + FINITE["pg"] + ")::numeric::money"}, {"cost_usd": "{c}::numeric::float8"}),
    *_both("naive-event-ts", {"event_ts": {"pg": "{c} AT TIME ZONE 'UTC'", "duckdb": "{c}::TIMESTAMP"}},
           {"event_ts": {"pg": "{c} AT TIME ZONE 'UTC'", "duckdb": "{c}::TIMESTAMPTZ"}}),
    *_both("date-event-ts", {"event_ts": {"pg": "({c} AT TIME ZONE 'UTC')::date", "duckdb": "{c}::DATE"}},
           {"event_ts": {"pg": "{c}::timestamp AT TIME ZONE 'UTC'", "duckdb": "{c}::TIMESTAMPTZ"}}),
    *_both("epoch-ms-event-ts", {"event_ts": {"pg": "(extract(epoch FROM {c}) * 1000)::bigint", "duckdb": "epoch_ms({c})"}},
           {"event_ts": {"pg": "to_timestamp({c} / 1000.0)", "duckdb": "make_timestamptz({c} * 1000)"}}, epoch_unit="ms"),
    *_both("epoch-s-event-ts", {"event_ts": {"pg": "floor(extract(epoch FROM {c}))::bigint",
                                             "duckdb": "epoch({c})::BIGINT"}},
           {"event_ts": {"pg": "to_timestamp({c})", "duckdb": "make_timestamptz({c} * 1000000)"}}, epoch_unit="s"),
    *_both("iso-text-event-ts",
           {"event_ts": {"pg": "to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
                         "duckdb": "strftime({c}, '%Y-%m-%dT%H:%M:%S.%fZ')"}},
           {"event_ts": {"pg": "{c}::timestamptz", "duckdb": "{c}::TIMESTAMPTZ"}}),
]


def _typed_table(backend: str, made: dict[str, str], back: dict[str, str], setup: str, tmp_path, request,
                 names: dict[str, str] | None = None, view: bool = False,
                 read_back: bool = True) -> tuple[dict, list[dict]]:
    """(source settings of the typed table, its rows read back as canonical rows, unless not ``read_back``).
    ``names``: canonical column -> the table's name for it; ``view``: the table is a view."""
    names = names or {}
    if backend == "pg":
        import psycopg

        settings = load_postgres(ROWS, request.getfixturevalue("pg_url"))
        con, source, schema = psycopg.connect(settings["url"], autocommit=True), "events.agent_events", "public."
    else:
        import duckdb

        settings = load_duckdb(ROWS, tmp_path)
        con, source, schema = duckdb.connect(settings["url"][len("duckdb://"):]), "agent_events", ""
    try:
        con.execute("SET TimeZone = 'UTC'")
        if setup:
            con.execute(setup)
        made_sql = ", ".join(f'{made.get(c, "{c}").format(c=c)} AS "{names.get(c, c)}"' for c in COLUMNS)
        con.execute(f"CREATE {'VIEW' if view else 'TABLE'} typed_events AS SELECT {made_sql} FROM {source}")
        back_sql = ", ".join(f'{back.get(c, "{c}").format(c=chr(34) + names.get(c, c) + chr(34))} AS {c}'
                             for c in COLUMNS)
        rows = [dict(zip(COLUMNS, row)) for row in con.execute(f"SELECT {back_sql} FROM typed_events").fetchall()] \
            if read_back else []
    finally:
        con.close()
    for row in rows:  # the engines' numbers as the reference's Python ones
        for column, kind in (("latency_ms", float), ("cost_usd", float), ("token_count", int)):
            row[column] = None if row[column] is None else kind(row[column])
    return {"url": settings["url"], "table": schema + "typed_events"}, rows


def _report(settings: dict, **source) -> dict:
    tz, kind, key = SCENARIOS[SCENARIO]
    opened = open_source(SourceConfig(**settings, **source))
    try:
        data = compute_report(opened, ReportConfig(id="types", period=kind, timezone=tz), parse_period(kind, key, tz),
                              now=now_for(SCENARIO))
    finally:
        opened.close()
    return json.loads(data.to_json())


def _mismatches(doc: dict, rows: list[dict]) -> list[str]:
    tz, kind, key = SCENARIOS[SCENARIO]
    return compare_report(doc, Reference(rows, tz, kind, key, now_for(SCENARIO)))


@pytest.mark.parametrize("backend, made, back, setup, source", READ)
def test_a_column_of_another_type_gives_the_reference_report(backend, made, back, setup, source, tmp_path, request):
    settings, rows = _typed_table(backend, made, back, setup, tmp_path, request)
    mismatches = _mismatches(_report(settings, **source), rows)
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("backend", [pytest.param("duckdb", id="duckdb"),
                                     pytest.param("pg", id="pg", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("view", [False, True], ids=["table", "view"])
def test_mapped_column_names_with_upper_case_and_spaces(backend, view, tmp_path, request):
    """A view instead of a table, and names that need quoting ("Event Time") mapped in [source.columns]."""
    names = {"event_ts": "Event Time", "agent_id": "AgentID", "latency_ms": "Latency MS", "event_type": "Type"}
    settings, rows = _typed_table(backend, {}, {}, "", tmp_path, request, names=names, view=view)
    mismatches = _mismatches(_report(settings, columns=names), rows)
    assert not mismatches, "\n".join(mismatches)


REFUSED = [
    *_both("interval-latency", {"latency_ms": {"pg": "(" + FINITE["pg"] + ") * interval '1 millisecond'",
                                               "duckdb": "to_microseconds((" + FINITE["duckdb"] + " * 1000)::BIGINT)"}},
           message=r"column 'latency_ms' \(latency_ms\) has type interval, expected a number; convert the interval to "
                   r"a number of milliseconds in a view; a column named latency_ms is read as latency_ms unless"),
    *_both("epoch-ms-event-ts-without-epoch-unit",
           {"event_ts": {"pg": "(extract(epoch FROM {c}) * 1000)::bigint", "duckdb": "epoch_ms({c})"}},
           message=r"column 'event_ts' \(event_ts\) has type int64, expected a timestamp; numbers are read as epoch time "
                   r"when \[source\] sets epoch_unit = \"s\", \"ms\" or \"us\"$"),
    _case("pg", "jsonb-error-message", {"error_message": "to_jsonb({c})"},
          message=r"column 'error_message' \(error_message\) has type jsonb, expected text; a column "
                  r"named error_message is read as error_message unless \[source.columns\] maps error_message to "
                  r"another column: map it, or read the table through a view that casts or renames 'error_message'$"),
    *_both("json-error-message", {"error_message": both("to_json({c})")},
           message=r"column 'error_message' \(error_message\) has type json, expected text; a column "
                   r"named error_message is read as"),
    *_both("array-model", {"model": {"pg": "ARRAY[{c}]", "duckdb": "[{c}]"}},
           message=r"column 'model' \(model\) has type array<string>, expected text; a column named "
                   r"model is read as model unless"),
    *_both("enum-latency", {"latency_ms": both("CASE WHEN {c} > 1000 THEN 'slow' ELSE 'fast' END::speed")},
           setup=both("CREATE TYPE speed AS ENUM ('fast', 'slow')"),
           # PostgreSQL's enums are read as text (they may be numbers), refused when the values are converted
           message=r"(column 'latency_ms' \(latency_ms\) has type a user-defined type \(cast it in a view\), expected a "
                   r"number|source.columns.latency_ms: text column 'latency_ms' holds '(fast|slow)' \(expected milliseconds "
                   r"such as 830\.5\)$)"),
]


@pytest.mark.parametrize("backend, made, back, setup, source", REFUSED)
def test_a_column_of_a_type_that_cannot_work_is_one_line(backend, made, back, setup, source, tmp_path, request):
    """Refused (InputError, exit 2), naming the column, its type and what is expected: when the source opens, or
    for an enum's text that is no number, when the values are converted."""
    settings, _ = _typed_table(backend, made, back, setup, tmp_path, request, read_back=False)
    with pytest.raises(InputError, match=source["message"]):
        _report(settings)


def test_check_refuses_an_interval_latency_in_one_line(tmp_path):
    """The refusal as the command line gives it: exit 2, one line on stderr, no traceback."""
    import duckdb

    with duckdb.connect(str(tmp_path / "events.duckdb")) as con:
        con.execute("CREATE TABLE agent_events AS SELECT 'c1' AS conversation_id, TIMESTAMPTZ '2026-10-20 12:00:00+00' "
                    "AS event_ts, 'message' AS event_type, INTERVAL 1500 MILLISECONDS AS took")
    (tmp_path / "agentdigest.toml").write_text('[source]\nurl = "duckdb://events.duckdb"\ntable = "agent_events"\n'
                                               '[source.columns]\nlatency_ms = "took"\n[[reports]]\nid = "r"\n')
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", "agentdigest.toml"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert ("column 'took' (latency_ms) has type interval, expected a number; convert the interval to a number of "
            "milliseconds in a view") in done.stderr, done.stderr
