"""What a new user meets first, from the outside: the real `agentdigest` command on real files and a real
DuckDB. Each test is one finding of a new-user audit (2026-11-29)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from agentdigest.channel_settings import shown


def cli(home: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agentdigest.cli", *args], cwd=home, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def one_line(done: subprocess.CompletedProcess, code: int) -> str:
    """The one line on stderr of a command that exited with ``code``."""
    assert done.returncode == code, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def write_config(home: Path, source: str, reports: str | None = None) -> Path:
    path = home / "agentdigest.toml"
    path.write_text(source + (reports if reports is not None else """
[[reports]]
id = "monthly"
period = "month"
timezone = "UTC"
"""))
    return path


def conversations(home: Path, report: str, period: str) -> int:
    return json.loads((home / "reports" / report / period / "report.json").read_text())["metrics"]["conversations"]["value"]


# --- 1. recursive globs and folders ----------------------------------------------------------------

def _hive(folder: Path) -> None:
    """Parquet files in Hive layout: <folder>/month=MM/day=DD/part.parquet, one conversation each."""
    with duckdb.connect() as con:
        for month in ("10", "11"):
            for day in ("01", "02", "03"):
                part = folder / f"month={month}" / f"day={day}"
                part.mkdir(parents=True)
                con.execute(f"COPY (SELECT 'c{month}{day}' AS conversation_id, TIMESTAMPTZ '2026-{month}-{day} 10:00:00+00' "
                            f"AS event_ts, 'message' AS event_type) TO '{part / 'part.parquet'}'")
        (folder / "_SUCCESS").write_text("")  # a Spark job's marker, not events


@pytest.mark.parametrize("files", ["hive/**/*.parquet", "hive", "hive/", "flat/**/*.parquet"])
def test_recursive_globs_and_folders_read_every_file(tmp_path, files):
    """Found by a new user: `files = "hive/**/*.parquet"` said "no file matches" (exit 2), though DuckDB
    reads it; a flat folder with `flat/**/*.parquet` too."""
    _hive(tmp_path / "hive")
    (tmp_path / "flat").mkdir()
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * FROM read_parquet('{tmp_path}/hive/month=10/*/*.parquet')) "
                    f"TO '{tmp_path / 'flat' / 'october.parquet'}'")
    write_config(tmp_path, f'[source]\nurl = "duckdb://"\nfiles = "{files}"\n')
    done = cli(tmp_path, "run", "--period", "2026-10", "--dry-run", "--format", "json", "--now", "2026-11-28T00:00:00Z")
    assert done.returncode == 0, done.stderr
    assert conversations(tmp_path, "monthly", "2026-10") == 3


def test_a_folder_of_csv_files_is_read_as_csv(tmp_path):
    (tmp_path / "csv" / "2026-10").mkdir(parents=True)
    (tmp_path / "csv" / "2026-10" / "a.csv").write_text(
        "conversation_id,event_ts,event_type\nc1,2026-10-02 10:00:00,message\nc2,2026-10-03 10:00:00,message\n")
    write_config(tmp_path, '[source]\nurl = "duckdb://"\nfiles = "csv"\n')
    done = cli(tmp_path, "run", "--period", "2026-10", "--dry-run", "--format", "json", "--now", "2026-11-28T00:00:00Z")
    assert done.returncode == 0, done.stderr
    assert conversations(tmp_path, "monthly", "2026-10") == 2


@pytest.mark.parametrize("files", ['"export.csv"', '["good.csv", "export.csv"]'], ids=["one", "second-of-two"])
def test_a_csv_file_duckdb_cannot_sniff_is_named_with_the_reason(tmp_path, files):
    """Found in an audit: a workbook saved as export.csv said "cannot read [...] (Invalid Input Error: Error when
    sniffing file "".)": of two files, DuckDB names neither, and the reason was on its next line, cut off."""
    (tmp_path / "good.csv").write_text("conversation_id,event_ts,event_type\nc1,2026-10-02 10:00:00,message\n")
    (tmp_path / "export.csv").write_bytes(bytes(range(256)) * 8)  # (a workbook is named as such before reading)
    write_config(tmp_path, f'[source]\nurl = "duckdb://"\nfiles = {files}\n')
    line = one_line(cli(tmp_path, "run", "--period", "2026-10", "--dry-run", "--now", "2026-11-28T00:00:00Z"), 3)
    assert line == (f"agentdigest: error: source.files: DuckDB cannot read {tmp_path / 'export.csv'} as CSV (it was not "
                    "possible to automatically detect the CSV parsing dialect; its first bytes are not text); "
                    "expected UTF-8 text with a header line naming the columns")


@pytest.mark.parametrize("files,words", [("nothing/**/*.parquet", "no file matches"), ("empty", "no file in the folder")])
def test_files_that_match_nothing_are_one_line(tmp_path, files, words):
    (tmp_path / "empty").mkdir()
    write_config(tmp_path, f'[source]\nurl = "duckdb://"\nfiles = "{files}"\n')
    assert words in one_line(cli(tmp_path, "run", "--dry-run", "--format", "json"), 2)


def test_spark_refuses_a_recursive_glob_it_would_not_follow(tmp_path):
    """Spark's globs have no recursive `**` (it matches one folder: `hive/**/*.parquet` is PATH_NOT_FOUND
    for month=/day= folders, and uneven folders would be read in part). Refused before Spark starts."""
    _hive(tmp_path / "hive")
    write_config(tmp_path, '[source]\nurl = "pyspark://local[1]"\nfiles = "hive/**/*.parquet"\n')
    line = one_line(cli(tmp_path, "run", "--dry-run", "--format", "json"), 2)
    assert "no recursive '**'" in line and "name the folder" in line


@pytest.mark.parametrize("files, expected", [("out/*", 2), ("out/run[1]", 1), ("out/run[1]/part[1].parquet", 1)])
def test_folder_and_file_names_with_glob_characters_are_read(tmp_path, files, expected):
    """Found in a review: a folder a glob matches is read as a folder, but its name was then read as a pattern:
    out/* over run[1]/ and run2/ read run2 alone, without a word; the folder itself named said "no file in the
    folder" and a file named part[1].parquet "no file matches" (exit 2), though DuckDB reads both."""
    with duckdb.connect() as con:
        for run, name in (("run[1]", "part[1].parquet"), ("run2", "part.parquet")):
            (tmp_path / "out" / run).mkdir(parents=True)
            con.execute(f"COPY (SELECT '{run}' AS conversation_id, TIMESTAMPTZ '2026-10-02 10:00:00+00' AS event_ts, "
                        f"'message' AS event_type) TO '{tmp_path / 'out' / run / name}'")
    write_config(tmp_path, f'[source]\nurl = "duckdb://"\nfiles = "{files}"\n')
    done = cli(tmp_path, "run", "--period", "2026-10", "--dry-run", "--format", "json", "--now", "2026-11-28T00:00:00Z")
    assert done.returncode == 0, done.stderr
    assert conversations(tmp_path, "monthly", "2026-10") == expected


@pytest.mark.parametrize("files", ["events/*", "events", "out/*"])
def test_the_folders_spark_skips_are_skipped(tmp_path, files):
    """Found in a review: once a glob's folders were read as folders, events/* beside a Delta table's _delta_log/
    read its JSON as Parquet and failed (exit 3), where it read the parts before; a folder read the files of a
    write in progress (_temporary/) too. Spark leaves out _ and . folders (a partition folder _x=1 is data)."""
    with duckdb.connect() as con:
        for folder in ("events", "out/_part=1"):
            (tmp_path / folder).mkdir(parents=True)
            con.execute(f"COPY (SELECT 'c1' AS conversation_id, TIMESTAMPTZ '2026-10-02 10:00:00+00' AS event_ts, "
                        f"'message' AS event_type) TO '{tmp_path / folder / 'part-0.parquet'}'")
    (tmp_path / "events" / "_delta_log").mkdir()
    (tmp_path / "events" / "_delta_log" / "00000000000000000000.json").write_text('{"commitInfo": {}}\n')
    (tmp_path / "events" / "_temporary" / "0").mkdir(parents=True)
    (tmp_path / "events" / "_temporary" / "0" / "part-1.parquet").write_bytes(b"PAR1 half written")
    write_config(tmp_path, f'[source]\nurl = "duckdb://"\nfiles = "{files}"\n')
    done = cli(tmp_path, "run", "--period", "2026-10", "--dry-run", "--format", "json", "--now", "2026-11-28T00:00:00Z")
    assert done.returncode == 0, done.stderr
    assert conversations(tmp_path, "monthly", "2026-10") == 1


@pytest.mark.parametrize("source,expected", [
    ('table = "agent_events"\n', "an existing database file"),
    ('files = "events.csv"\n', 'url = "duckdb://": files need no database'),
], ids=["table", "files"])
def test_a_missing_duckdb_file_is_refused_not_created(tmp_path, source, expected):
    """Found in an audit: with `files`, `url = "duckdb://missing.duckdb"` (a typo, or a file not made yet) created an
    empty database file and ran on, as if the path were right; with `table` it said "DuckDB file not found" without
    the path it had looked at. Then, trying agentdigest as a new user, the line said the path twice ("source
    duckdb:///x.duckdb: DuckDB file not found: no such database file /x.duckdb") and named neither the config
    file nor source.url. Still exit 3, as a source that cannot be read: a file on a mount may come back."""
    (tmp_path / "events.csv").write_text("conversation_id,event_ts,event_type\nc1,2026-10-02 10:00:00,message\n")
    write_config(tmp_path, f'[source]\nurl = "duckdb://missing.duckdb"\n{source}')
    for command in (["run", "--period", "2026-10", "--dry-run", "--now", "2026-11-28T00:00:00Z"], ["check"]):
        line = one_line(cli(tmp_path, *command), 3)
        assert line == (f"agentdigest: error: agentdigest.toml: source.url: DuckDB file not found: "
                        f"{shown(str(tmp_path / 'missing.duckdb'), path=True)} (expected {expected})"), line
        assert not (tmp_path / "missing.duckdb").exists() and not (tmp_path / "reports").exists()


@pytest.mark.parametrize("url,words", [
    ("", "agentdigest.toml: source.url: not set (expected the URL of the database with table 'events', "
         "e.g. duckdb://events.duckdb)"),
    ('url = "duckdb://"\n', "agentdigest.toml: source.url: duckdb:// alone is an empty in-memory database (expected "
                            "the database file, e.g. duckdb://events.duckdb, or files = [...] for Parquet or CSV)"),
], ids=["unset", "in-memory"])
def test_a_table_without_a_database_says_the_url_is_missing(tmp_path, url, words):
    """Found trying agentdigest as a new user: a [source] with `table` and no `url` read an in-memory DuckDB (the
    default, for `files`) and said "source.table: table 'events' not found in duckdb://", never that the url was
    missing. `files` without a url still read in memory."""
    with duckdb.connect(str(tmp_path / "events.duckdb")) as con:
        con.execute("CREATE TABLE events AS SELECT 'c1' AS conversation_id, TIMESTAMPTZ '2026-10-02 10:00:00+00' "
                    "AS event_ts, 'message' AS event_type")
        con.execute(f"COPY events TO '{tmp_path / 'events.parquet'}'")
    write_config(tmp_path, f'[source]\n{url}table = "events"\n')
    for command in (["check"], ["run", "--dry-run", "--format", "json", "--period", "2026-10"]):
        assert one_line(cli(tmp_path, *command), 2) == f"agentdigest: error: {words}"
    write_config(tmp_path, f'[source]\n{url}files = "events.parquet"\n')
    assert cli(tmp_path, "run", "--dry-run", "--format", "json", "--period", "2026-10").returncode == 0
    assert conversations(tmp_path, "monthly", "2026-10") == 1


# --- 2. text columns that do not convert ------------------------------------------------------------

CSV_SOURCE = """[source]
url = "duckdb://"
files = "events.csv"
[source.columns]
conversation_id = "Conversation"
event_ts = "Timestamp"
event_type = "Type"
"""


def test_text_timestamps_with_a_spaced_utc_offset_are_read_exactly(tmp_path):
    """Found by a new user: `2026-09-30 19:22:37.043000 -0500` (Python's %z, PostgreSQL's text form) was
    "not a timestamp": DuckDB's cast reads "-0500" after a space as a zone name. The offset counts: the
    first is 1 October in UTC, the second (+05:30) 30 September."""
    (tmp_path / "events.csv").write_text(
        "Conversation,Timestamp,Type\n"
        "c1,2026-09-30 19:22:37.043000 -0500,message\n"
        "c2,2026-10-01 03:00:00 +05:30,message\n"
        "c3,2026-10-02 10:00:00,message\n"
        "c4,2026-10-03T10:00:00.5Z,message\n")
    write_config(tmp_path, CSV_SOURCE)
    done = cli(tmp_path, "run", "--period", "2026-10", "--dry-run", "--format", "json", "--now", "2026-11-28T00:00:00Z")
    assert done.returncode == 0, done.stderr
    assert conversations(tmp_path, "monthly", "2026-10") == 3  # c1, c3, c4


@pytest.mark.parametrize("canon,value,shown,expected", [
    ("latency_ms", "n/a", "'n/a'", "milliseconds such as 830.5"),
    ("cost_usd", "free", "'free'", "dollars such as 0.042"),
    ("token_count", "many", "'many'", "whole numbers such as 1250"),
    # The value is event data: redacted as event text is, escaped (a line break cannot split the line) and clipped.
    ("latency_ms", "timeout for ann@example.com\nafter a long wait of many seconds",
     "'timeout for [email] after a long wait o…'", "milliseconds such as 830.5"),
], ids=["latency", "cost", "tokens", "redacted-escaped-clipped"])
def test_a_number_column_that_does_not_convert_is_one_short_line(tmp_path, canon, value, shown, expected):
    """Found trying agentdigest as a new user: a text latency_ms holding 'n/a' said "source.columns.latency_ms: the
    text column 'Latency' holds values that are not numbers, such as 'n/a' (expected numbers or nulls only; map
    latency_ms to another column, or leave it out)", about 150 characters after the file, where event_ts's line
    was cut to the form below. Still exit 2, the key, the value and what is expected, on run and check."""
    row = {"Conversation": "c1", "Timestamp": "2026-10-02 10:00:00", "Type": "message", "Value": "12"}
    rows = [dict(row), {**row, "Value": value}]
    (tmp_path / "events.csv").write_text("Conversation,Timestamp,Type,Value\n"
                                         + "".join(",".join(f'"{v}"' for v in r.values()) + "\n" for r in rows))
    write_config(tmp_path, CSV_SOURCE + f'{canon} = "Value"\n')
    key = f"agentdigest.toml: source.columns.{canon}: "
    for command in (["run", "--dry-run", "--format", "json", "--period", "2026-10"], ["check"]):
        line = one_line(cli(tmp_path, *command), 2).removeprefix("agentdigest: error: ")
        assert line == f"{key}text column 'Value' holds {shown} (expected {expected})", line
        assert len(line) - len(key) <= 120 and "ann@example.com" not in line, (len(line) - len(key), line)


@pytest.mark.parametrize("value,shown", [
    ("yesterday at noon, roughly, I think", "'yesterday at noon, roughly, I think'"),
    # Event data: redacted as event text is, escaped (a line break cannot split the line) and clipped.
    ("noon\nfor ann@example.com, then a long wait of many minutes", "'noon for [email], then a long wait of m…'"),
], ids=["plain", "redacted-escaped-clipped"])
def test_a_timestamp_that_does_not_convert_is_one_short_line(tmp_path, value, shown):
    """Found trying agentdigest as a new user: one unreadable time among good ones in a text event_ts said
    "source.columns.event_ts: the text column 'ts' holds values that are not timestamps, such as '...' (expected
    timestamps or nulls only; convert the column, or map event_ts to another column; text is read as an ISO 8601
    time such as ... or 2026-11-23 14:05:09.123 -0500)", 310 characters after the file. Still exit 2: a time that
    cannot be read is refused, not counted (README, Times in text), and the line says which value and what reads."""
    with duckdb.connect(str(tmp_path / "events.duckdb")) as con:
        con.execute("CREATE TABLE events (conversation_id TEXT, ts TEXT, event_type TEXT)")
        con.executemany("INSERT INTO events VALUES (?, ?, 'message')",
                        [("c1", "2026-10-02 10:00:00"), ("c2", value), ("c3", "2026-10-03T10:00:00Z")])
    write_config(tmp_path, '[source]\nurl = "duckdb://events.duckdb"\ntable = "events"\n[source.columns]\nevent_ts = "ts"\n')
    key = "agentdigest.toml: source.columns.event_ts: "
    for command in (["run", "--dry-run", "--format", "json", "--period", "2026-10"], ["check"]):
        line = one_line(cli(tmp_path, *command), 2).removeprefix("agentdigest: error: ")
        assert line == f"{key}text column 'ts' holds {shown} (expected ISO 8601 times such as 2026-11-23 14:05:09)", line
        assert len(line) - len(key) <= 120 and "ann@example.com" not in line, (len(line) - len(key), line)


def test_a_csv_value_past_the_rows_its_type_was_read_from_names_its_column(tmp_path):
    """Found in a dirty-data audit: DuckDB types a CSV file's columns from its first 20,480 rows, so a latency
    of 'fast' on line 30,000 failed the run with "CSV Error on Line: 30002", naming neither column nor value."""
    good = "".join(f"c{i},2026-10-02 10:00:00,message,12.5\n" for i in range(30_000))
    (tmp_path / "events.csv").write_text("Conversation,Timestamp,Type,Latency\n" + good
                                         + "c1,2026-10-02 10:00:00,message,fast for ann@example.com\n")
    write_config(tmp_path, CSV_SOURCE + 'latency_ms = "Latency"\n')
    for command in (["run", "--dry-run", "--format", "json", "--period", "2026-10"], ["check"]):
        line = one_line(cli(tmp_path, *command), 2) if command[0] == "run" else cli(tmp_path, *command).stderr.strip()
        assert line.endswith("agentdigest.toml: source.columns.latency_ms: column 'Latency' holds 'fast for [email]', "
                             "after the rows its type was read from (expected milliseconds such as 830.5)"), line

def _csv_rows(n: int) -> list[bytes]:
    """``n`` events, one conversation each; every third is resolved."""
    return [f"c{i},2026-10-02 10:00:00,{'resolution' if i % 3 == 0 else 'message'},12.5\n".encode() for i in range(n)]


@pytest.mark.parametrize("rows_at,bad,cause", [
    ([0], "c0,2026-10-02 10:00:00,message by Bötchen for ann@example.com,1\n".encode("latin-1"),
     "Invalid unicode (byte sequence mismatch) detected. This file is not utf-8 encoded."),
    ([30_000], "c1,2026-10-02 10:00:00,message by Bötchen for ann@example.com,1\n".encode("latin-1"),
     "Invalid unicode (byte sequence mismatch) detected. This file is not utf-8 encoded."),
    ([30_000], b"c1,2026-10-02 10:00:00,message,1,ann@example.com\n", "Expected Number of Columns: 4 Found: 5"),
    # in the rows DuckDB reads the file's shape from: read strictly, the header was taken for a row
    ([99], b"c1,2026-10-02 10:00:00 ann@example.com\n", "Expected Number of Columns: 4 Found: 2"),
], ids=["latin-1-first-row", "latin-1-late-row", "extra-field", "short-row-among-the-sniffed"])
def test_csv_rows_duckdb_cannot_read_are_counted_and_left_out(tmp_path, rows_at, bad, cause):
    """Dirty events are counted and the report still goes out: one row of the wrong shape, or one Latin-1 byte
    (an agent called 'Bötchen'), failed the whole run with "CSV Error on Line: 30002" (exit 3), and a million
    good rows gave no report. The rows are left out and counted; the first is named by line, file and cause,
    never by its text (event data)."""
    rows = _csv_rows(30_001)
    for i in rows_at:
        rows[i] = bad
    good = [r.decode().split(",") for i, r in enumerate(rows) if i not in rows_at]
    (tmp_path / "events.csv").write_bytes(b"Conversation,Timestamp,Type,Latency\n" + b"".join(rows))
    write_config(tmp_path, CSV_SOURCE)
    done = cli(tmp_path, "run", "--dry-run", "--format", "json,txt", "--period", "2026-10", "--now", "2026-11-28T00:00:00Z")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "reports" / "monthly" / "2026-10" / "report.json").read_text())
    assert report["metrics"]["conversations"]["value"] == len({r[0] for r in good})
    resolved = len({r[0] for r in good if r[2] == "resolution"})
    assert report["metrics"]["resolution_rate"]["value"] == pytest.approx(100 * resolved / len({r[0] for r in good}))
    assert report["quality"]["unreadable_rows"] == len(rows_at)
    first = f"line {rows_at[0] + 2} of {tmp_path / 'events.csv'}: {cause}"
    assert report["quality"]["unreadable_first"] == first
    text = (tmp_path / "reports" / "monthly" / "2026-10" / "report.txt").read_text()
    many = "rows" if len(rows_at) > 1 else "row"
    assert f"Invalid data: {len(rows_at)} unreadable {many} in the files, left out (the first: " in text
    for name in ("report.json", "report.txt"):
        written = (tmp_path / "reports" / "monthly" / "2026-10" / name).read_text()
        assert "ann@example.com" not in written and "Bötchen" not in written
    checked = cli(tmp_path, "check")
    assert f"{len(rows_at)} unreadable {many} left out, the first: {first})" in checked.stdout, checked.stdout


@pytest.mark.parametrize("mapped", [True, False], ids=["a-number-the-report-reads", "a-column-it-does-not-read"])
def test_a_byte_not_in_utf8_in_a_number_leaves_its_row_out_as_in_text(tmp_path, mapped):
    """Found comparing engines: DuckDB checks UTF-8 only in text columns, so a Latin-1 byte in a latency ('12.5µ')
    was a value that does not convert, taken for a column of the wrong type, and the run failed (exit 3) where
    the same byte in a text column left the row out and counted it. Now it is the unreadable row it is. In a
    column the report does not read, the value is never converted and the row is read, as before."""
    rows = _csv_rows(30_001)
    rows[30] = b"c30,2026-10-02 10:00:00,resolution,12.5\xb5\n"
    rows[30_000] = b"c30000,2026-10-02 10:00:00,message,\xb512\n"
    bad = (30, 30_000) if mapped else ()
    good = [r.decode("latin-1").split(",") for i, r in enumerate(rows) if i not in bad]
    (tmp_path / "events.csv").write_bytes(b"Conversation,Timestamp,Type,Latency\n" + b"".join(rows))
    write_config(tmp_path, CSV_SOURCE + ('latency_ms = "Latency"\n' if mapped else ""))
    done = cli(tmp_path, "run", "--dry-run", "--format", "json", "--period", "2026-10", "--now", "2026-11-28T00:00:00Z")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "reports" / "monthly" / "2026-10" / "report.json").read_text())
    conversations = {r[0] for r in good}
    assert report["metrics"]["conversations"]["value"] == len(conversations)
    resolved = {r[0] for r in good if r[2] == "resolution"}
    assert report["metrics"]["resolution_rate"]["value"] == pytest.approx(100 * len(resolved) / len(conversations))
    if mapped:
        assert report["metrics"]["avg_latency_ms"]["value"] == pytest.approx(12.5)
        first = (f"line 32 of {tmp_path / 'events.csv'}: Invalid unicode (byte sequence mismatch) detected. "
                 "This file is not utf-8 encoded.")
        assert (report["quality"]["unreadable_rows"], report["quality"]["unreadable_first"]) == (2, first)
    else:
        assert (report["quality"]["unreadable_rows"], report["quality"]["unreadable_first"]) == (0, None)


@pytest.mark.parametrize("name,newline", [("events.csv.gz", b"\n"), ("events.csv", b"\r\n"), ("events.csv.gz", b"\r")])
def test_bytes_not_in_utf8_in_many_numbers_read_each_file_once(tmp_path, monkeypatch, name, newline):
    """Found in an audit: each CAST reject's line was read by opening its file again and seeking to it, so a
    .csv.gz file was decompressed from its start once per reject (2,000 rejects in 300,000 lines: 54 s). Each
    file is opened once and read forward; two numbers of one line, and Windows line endings, count one row."""
    import gzip

    from agentdigest import unreadable

    rows = [line.replace(b"\n", newline) for line in _csv_rows(21_000)]
    bad = range(20_500, 21_000, 5)
    for i in bad:
        rows[i] = b"c%d,2026-10-02 10:00:00,message,12.5\xb5,\xb53%s" % (i, newline)
    data = b"Conversation,Timestamp,Type,Latency,Cost" + newline + b"".join(
        r if i in bad else r.rstrip() + b",0.5" + newline for i, r in enumerate(rows))
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    opened: list[str] = []

    def spy(opener):
        return lambda file, *args, **kwargs: opened.append(str(file)) or opener(file, *args, **kwargs)

    monkeypatch.setattr(unreadable.gzip, "open", spy(gzip.open))
    monkeypatch.setattr(unreadable, "open", spy(open), raising=False)
    found = unreadable.list_unreadable([str(path)], ["Conversation", "Latency", "Cost"], [])
    assert found is not None and (found.rows, found.read) == (len(bad), 21_000 - len(bad))
    assert found.first.startswith(f"line {bad[0] + 2} of {path}: Invalid unicode"), found.first
    assert opened == [str(path)]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_a_number_that_does_not_convert_on_a_utf8_line_stays_a_wrong_column_whatever_its_line_endings(
        tmp_path, newline):
    """Found in an audit: a reject's line was read to the next "\\n", so in a file of old Mac line endings ("\\r")
    it ran on through the lines after it, and a value of the wrong type ('fast') followed by a Latin-1 byte a
    few lines later was taken for bytes not in UTF-8: its row left out, where the column's type is wrong (the
    strict read's error, exit 2). A line ends at "\\r" too."""
    from agentdigest.unreadable import list_unreadable

    rows = [r.replace(b"\n", newline) for r in _csv_rows(21_000)]
    rows[20_500] = b"c1,2026-10-02 10:00:00,message,fast" + newline
    rows[20_600] = b"c2,2026-10-02 10:00:00,message,12.5\xb5" + newline
    path = tmp_path / "events.csv"
    path.write_bytes(b"Conversation,Timestamp,Type,Latency" + newline + b"".join(rows))
    assert list_unreadable([str(path)], ["Conversation", "Latency", "Timestamp", "Type"], []) is None
    rows[20_500] = rows[0]
    path.write_bytes(b"Conversation,Timestamp,Type,Latency" + newline + b"".join(rows))
    found = list_unreadable([str(path)], ["Conversation", "Latency", "Timestamp", "Type"], [])
    assert found is not None and found.rows == 1, found
    assert found.first == (f"line 20602 of {path}: Invalid unicode (byte sequence mismatch) detected. "
                           "This file is not utf-8 encoded.")


def test_csv_files_rows_are_counted_across_files_and_many_are_a_note(tmp_path):
    """Two files, the second with a column the first lacks (read by name) and 2 of its 50 rows short: 2 rows
    left out, the first named in the second file, and at 2% of the rows a note every reader sees."""
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "a.csv").write_bytes(b"Conversation,Timestamp,Type\n"
                                             + b"".join(r.rsplit(b",", 1)[0] + b"\n" for r in _csv_rows(50)))
    rows = [r.replace(b"c", b"d", 1) for r in _csv_rows(50)]
    rows[10] = rows[20] = b"d10,2026-10-02 10:00:00\n"
    (tmp_path / "csv" / "b.csv").write_bytes(b"Conversation,Timestamp,Type,Latency\n" + b"".join(rows))
    write_config(tmp_path, CSV_SOURCE.replace('files = "events.csv"', 'files = "csv"') + 'latency_ms = "Latency"\n')
    done = cli(tmp_path, "run", "--dry-run", "--format", "json", "--period", "2026-10", "--now", "2026-11-28T00:00:00Z")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "reports" / "monthly" / "2026-10" / "report.json").read_text())
    assert report["metrics"]["conversations"]["value"] == 50 + 48
    assert report["metrics"]["avg_latency_ms"]["value"] == pytest.approx(12.5)
    first = f"line 12 of {tmp_path / 'csv' / 'b.csv'}: Expected Number of Columns: 4 Found: 2"
    assert (report["quality"]["unreadable_rows"], report["quality"]["unreadable_first"]) == (2, first)
    assert (f"2% of the rows of the source's files cannot be read and are left out of every figure (the first: "
            f"{first}); check the files.") in report["notes"]


def test_a_csv_file_read_as_one_column_says_so(tmp_path):
    """Found in a dirty-data check: short rows among the first hundred kept DuckDB from telling the file's
    delimiter and header, and "required column 'Conversation' not found (columns: Conversation,Timestamp,Type,
    Latency)" read as if the column were there. Such rows are left out (see above) unless the file is read
    strictly, as here, where a time that does not convert makes skipping rows hide the column's problem."""
    rows = _csv_rows(30_001)
    for i in range(0, 200, 10):
        rows[i] = b"c1,2026-10-02 ann@example.com\n"
    rows[30_000] = b"c1,yesterday at noon,message,1\n"
    (tmp_path / "events.csv").write_bytes(b"Conversation,Timestamp,Type,Latency\n" + b"".join(rows))
    write_config(tmp_path, CSV_SOURCE)
    line = one_line(cli(tmp_path, "run", "--dry-run", "--format", "json", "--period", "2026-10"), 2)
    assert "required column 'Conversation' (mapped by source.columns.conversation_id) not found" in line, line
    assert line.endswith("; the file was read as one column: its delimiter or header could not be told from its "
                         "first rows (rows of another shape near the top?)"), line


def test_an_empty_csv_file_is_said_to_have_no_header(tmp_path):
    """Found in a new-user audit: an empty file read as "required column 'Conversation' not found (columns:
    column0)", and nothing said the file was empty."""
    (tmp_path / "events.csv").write_bytes(b"")
    write_config(tmp_path, CSV_SOURCE)
    line = one_line(cli(tmp_path, "run", "--dry-run", "--format", "json", "--period", "2026-10"), 2)
    assert line.endswith("(columns: column0); the file has no header line (DuckDB named its columns column0, "
                         "column1, ...): is it empty?"), line


def test_a_csv_file_of_which_no_row_can_be_read_is_an_error(tmp_path):
    """A file none of whose rows can be read is the wrong file, not a dirty one: no empty report (exit 3)."""
    rows = [f"c{i},2026-10-02 10:00:00,message by Bötchen,1\n".encode("latin-1") for i in range(100)]
    (tmp_path / "events.csv").write_bytes(b"Conversation,Timestamp,Type,Latency\n" + b"".join(rows))
    write_config(tmp_path, CSV_SOURCE)
    line = one_line(cli(tmp_path, "run", "--dry-run", "--format", "json", "--period", "2026-10"), 3)
    assert f"no row of ['{tmp_path / 'events.csv'}'] can be read (line 2 of {tmp_path / 'events.csv'}: Invalid unicode" in line


def test_clean_csv_files_say_none_is_unreadable_and_other_sources_do_not_say_it(tmp_path):
    (tmp_path / "events.csv").write_bytes(b"Conversation,Timestamp,Type,Latency\n" + b"".join(_csv_rows(10)))
    write_config(tmp_path, CSV_SOURCE)
    assert cli(tmp_path, "run", "--dry-run", "--format", "json", "--period", "2026-10").returncode == 0
    quality = json.loads((tmp_path / "reports" / "monthly" / "2026-10" / "report.json").read_text())["quality"]
    assert (quality["unreadable_rows"], quality["unreadable_first"]) == (0, None)
    with duckdb.connect(str(tmp_path / "events.duckdb")) as con:
        con.execute(f"CREATE TABLE e AS SELECT * FROM read_csv('{tmp_path / 'events.csv'}')")
    write_config(tmp_path, CSV_SOURCE.replace('url = "duckdb://"\nfiles = "events.csv"', 'url = "duckdb://events.duckdb"\ntable = "e"'))
    assert cli(tmp_path, "run", "--dry-run", "--format", "json", "--period", "2026-10").returncode == 0
    quality = json.loads((tmp_path / "reports" / "monthly" / "2026-10" / "report.json").read_text())["quality"]
    assert quality["unreadable_rows"] is None


@pytest.mark.parametrize("table,code,words", [
    ("agent_view", 3, "cannot read table 'agent_view' (Catalog Error: Table with name raw_events does not exist!)"),
    ("main.agent_view", 3, "cannot read table 'main.agent_view' (Catalog Error: Table with name raw_events"),
    ("agent_veiw", 2, "source.table: table 'agent_veiw' not found in duckdb://"),
    ("nosuch.agent_view", 2, "source.table: table 'nosuch.agent_view' not found in duckdb://"),
], ids=["view", "schema-view", "missing-table", "missing-schema"])
def test_a_view_over_a_dropped_table_says_what_is_missing(tmp_path, table, code, words):
    """Found by a new user: a DuckDB view whose table had been dropped (renamed in a migration) read
    "table 'agent_view' not found" (exit 2) of a view the user could see. The view cannot be read: exit 3,
    naming the table it lacks. A table that is missing is still a config error."""
    with duckdb.connect(str(tmp_path / "events.duckdb")) as con:
        con.execute("CREATE TABLE raw_events (conversation_id TEXT, event_ts TIMESTAMPTZ, event_type TEXT)")
        con.execute("CREATE VIEW agent_view AS SELECT * FROM raw_events")
        con.execute("DROP TABLE raw_events")
    write_config(tmp_path, f'[source]\nurl = "duckdb://events.duckdb"\ntable = "{table}"\n')
    assert words in one_line(cli(tmp_path, "run", "--dry-run", "--format", "json", "--period", "2026-10"), code)

@pytest.mark.parametrize("table,meant", [("event", "events"), ("evnets", "events"), ("main.event", "main.events"),
                                         ("analytics.agent_evnts", "analytics.agent_events"),
                                         ("conversations", None), ("agent_evnts", "analytics.agent_events"),
                                         ("analytcs.agent_evnts", "analytics.agent_events"), ("Event", "events")],
                         ids=["prefix", "typo", "schema", "other-schema", "unlike", "unqualified-other-schema",
                              "schema-typo", "case"])
def test_a_mistyped_table_is_asked_did_you_mean(tmp_path, table, meant):
    """Found trying agentdigest as a new user: `table = "event"` for a table named events said only "table 'event'
    not found"; a table one typo away or begun by the name is offered, as a canonical column is. With the schema
    it was written with: `analytics.agent_evnts` was asked 'agent_events', which is in no schema on the path; and
    with the schema it is in when that is not the current one (`agent_evnts`, `analytcs.agent_evnts`: no hint)."""
    with duckdb.connect(str(tmp_path / "events.duckdb")) as con:
        con.execute("CREATE TABLE events (conversation_id TEXT, event_ts TIMESTAMPTZ, event_type TEXT)")
        con.execute("CREATE TABLE agents (agent_id TEXT)")
        con.execute("CREATE SCHEMA analytics")
        con.execute("CREATE TABLE analytics.agent_events (conversation_id TEXT, event_ts TIMESTAMPTZ, event_type TEXT)")
    write_config(tmp_path, f'[source]\nurl = "duckdb://events.duckdb"\ntable = "{table}"\n')
    for command in (["check"], ["run", "--dry-run", "--format", "json", "--period", "2026-10"]):
        line = one_line(cli(tmp_path, *command), 2)
        assert f"agentdigest.toml: source.table: table {table!r} not found in duckdb://" in line, line
        assert line.endswith(f" (did you mean {meant!r}?)" if meant else
                             f"{tmp_path / 'events.duckdb'}; tables and views there: agents, analytics.agent_events, "
                             "events"), line


@pytest.mark.parametrize("count,listed", [
    (0, "it holds no table or view"),
    (3, "tables and views there: ev_0, Ev_1, ev_2"),
    (10, "tables and views there: ev_0, Ev_1, ev_2, ev_3, ev_4, ev_5, ev_6, ev_7, ev_8, ev_9"),
    (13, "tables and views there: ev_0, Ev_1, ev_10, ev_11, ev_12, ev_2, ev_3, ev_4, ev_5, ev_6 and 3 more"),
], ids=["none", "three", "ten", "thirteen"])
def test_a_table_not_found_nor_meant_lists_the_tables_there(tmp_path, count, listed):
    """Found installing agentdigest as a new user with a DuckDB file of their own: `table = "support_log"` of a file
    whose table is named otherwise said only "not found", nothing of the tables it does hold. They are listed, sorted
    (case aside), ten at most and the rest counted; a view too (ev_2), never DuckDB's own. One line, exit 2."""
    with duckdb.connect(str(tmp_path / "events.duckdb")) as con:
        for i in range(count):
            name = "Ev_1" if i == 1 else f"ev_{i}"
            con.execute(f"CREATE VIEW {name} AS SELECT 1 AS x" if i == 2 else f"CREATE TABLE {name} (x INT)")
    write_config(tmp_path, '[source]\nurl = "duckdb://events.duckdb"\ntable = "support_log"\n')
    line = one_line(cli(tmp_path, "check"), 2)
    assert line == (f"agentdigest: error: agentdigest.toml: source.table: table 'support_log' not found in "
                    f"duckdb://{tmp_path / 'events.duckdb'}; {listed}"), line

@pytest.mark.parametrize("table", ["agent_events", "main.agent_events", '"agent_events"'])
def test_a_table_in_another_schema_is_named_with_it(tmp_path, table):
    """Found checking the engines: `table = "agent_events"` for analytics.agent_events said only "not found" on
    DuckDB, where PostgreSQL says which schema holds it; it names the schema now, in one line, exit 2."""
    with duckdb.connect(str(tmp_path / "events.duckdb")) as con:
        con.execute("CREATE TABLE events (conversation_id TEXT, event_ts TIMESTAMPTZ, event_type TEXT)")
        con.execute("CREATE SCHEMA analytics")
        con.execute("CREATE SCHEMA staging")
        con.execute("CREATE TABLE analytics.agent_events (conversation_id TEXT, event_ts TIMESTAMPTZ, event_type TEXT)")
        con.execute("CREATE VIEW staging.agent_events AS SELECT * FROM analytics.agent_events")
    write_config(tmp_path, f"[source]\nurl = \"duckdb://events.duckdb\"\ntable = '{table}'\n")
    for command in (["check"], ["run", "--dry-run", "--format", "json", "--period", "2026-10"]):
        line = one_line(cli(tmp_path, *command), 2)
        assert line.endswith(f"source.table: table {table!r} not found in duckdb://{tmp_path / 'events.duckdb'}; "
                             "it is in another schema: write analytics.agent_events or staging.agent_events"), line

# --- 3. and 5. --period ------------------------------------------------------------------------------

TWO_KINDS = """
[[reports]]
id = "weekly-exec"
period = "week"
timezone = "Europe/Berlin"

[[reports]]
id = "support-eng-daily"
period = "day"
timezone = "Europe/Berlin"
"""


@pytest.mark.parametrize("source,name", [
    ('url = "duckdb://events.duckdb"\ntable = "agent_events"', "agent_events"),
    ('url = "duckdb://"\nfiles = "events.parquet"', "events.parquet"),
    ('url = "duckdb://"\nfiles = "events.csv"', "events.csv"),
], ids=["table", "parquet", "csv-header-only"])
def test_check_warns_of_a_source_without_events(tmp_path, source, name):
    """Found in a production audit: an empty events table (or files of no rows) passed check as "ok (0 events,
    latest none)", and the run then warned "No events arrived". check now says so in a warning line naming the
    source; still exit 0, since the source is readable and the run succeeds (a new table may fill later)."""
    empty = ("SELECT 'c' AS conversation_id, TIMESTAMPTZ '2026-11-16 10:00:00+00' AS event_ts, 'message' AS event_type "
             "WHERE false")
    with duckdb.connect(str(tmp_path / "events.duckdb")) as con:
        con.execute(f"CREATE TABLE agent_events AS {empty}")
        con.execute(f"COPY ({empty}) TO '{tmp_path / 'events.parquet'}' (FORMAT parquet)")
    (tmp_path / "events.csv").write_text("conversation_id,event_ts,event_type\n")
    write_config(tmp_path, f"[source]\n{source}\n")
    done = cli(tmp_path, "check")
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("source "))
    assert line.startswith("source ") and name in line, line
    assert ': WARNING - no events: it holds no rows, so every report would say "No events arrived"' in line, line


@pytest.mark.parametrize("logger,level,shown", [
    ("sqlglot", "INFO", False), ("weasyprint.progress", "INFO", False), ("py4j.java_gateway", "INFO", False),
    ("urllib3.connectionpool", "INFO", False), ("asyncio", "INFO", False),
    ("sqlglot", "WARNING", True), ("weasyprint", "ERROR", True), ("agentdigest", "INFO", True),
    ("agentdigest.delivery", "INFO", True),
])
def test_verbose_shows_agentdigest_progress_and_only_libraries_warnings(tmp_path, logger, level, shown):
    """Found in a production audit: --verbose showed a library's INFO chatter (sqlglot's "Applying array index
    offset", WeasyPrint's seven steps of every PDF) among agentdigest's progress lines. A library that sets its
    own logger to INFO is held back too; its warnings still show."""
    code = ("import logging; from agentdigest.logs import configure_command_logging; configure_command_logging(True); "
            f"logging.getLogger({logger!r}).setLevel(logging.DEBUG); "
            f"logging.getLogger({logger!r}).log(logging.{level}, 'the line')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (done.stderr == f"{level} {logger}: the line\n") if shown else (done.stderr == ""), done.stderr


def test_a_verbose_run_logs_no_library_info(small_db):
    """The same on a real run: agentdigest's progress, and no line of WeasyPrint's (the PDF) or sqlglot's."""
    write_config(small_db, '[source]\nurl = "duckdb://events.duckdb"\ntable = "agent_events"\n')
    done = cli(small_db, "run", "--period", "2026-11", "--dry-run", "--verbose")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "INFO agentdigest: computed monthly 2026-11" in done.stderr, done.stderr
    assert all(line.startswith("INFO agentdigest") for line in done.stderr.splitlines()), done.stderr


@pytest.fixture()
def small_db(tmp_path: Path) -> Path:
    with duckdb.connect(str(tmp_path / "events.duckdb")) as con:
        con.execute("""CREATE TABLE agent_events AS SELECT 'c' || i AS conversation_id, 'message' AS event_type,
                       TIMESTAMPTZ '2026-11-16 10:00:00+00' + to_hours(i) AS event_ts FROM range(300) r(i)""")
    return tmp_path


def test_a_period_key_of_another_kind_names_the_report_and_the_way_out(small_db):
    """Found by a new user: with a week and a day report, `run --period 2026-W47` said only "'2026-W47' is
    not a day key", as if the key were wrong; --period applies to every report run."""
    write_config(small_db, '[source]\nurl = "duckdb://events.duckdb"\ntable = "agent_events"\n', TWO_KINDS)
    line = one_line(cli(small_db, "run", "--period", "2026-W47", "--dry-run", "--now", "2026-11-29T01:00:00Z"), 2)
    assert "report 'support-eng-daily' is a day report: --period '2026-W47' is not a day key" in line
    assert "--period applies to every report run" in line and "agentdigest run weekly-exec --period 2026-W47" in line
    done = cli(small_db, "run", "weekly-exec", "--period", "2026-W47", "--dry-run", "--format", "json",
               "--now", "2026-11-29T01:00:00Z")
    assert done.returncode == 0, done.stderr
    # The week report named, with a day key: the way out names the config's day report (it said "run REPORT_ID")
    line = one_line(cli(small_db, "run", "weekly-exec", "--period", "2026-11-20", "--dry-run",
                        "--now", "2026-11-29T01:00:00Z"), 2)
    assert line.startswith("agentdigest: error: report 'weekly-exec' is a week report: --period '2026-11-20' is "
                           "not a week key"), line
    assert line.endswith("so name the day reports to run: agentdigest run support-eng-daily --period 2026-11-20"), line


@pytest.mark.parametrize("key", ["2026-10", "2026-48"])
def test_a_period_key_of_a_kind_no_report_has_says_so(small_db, key):
    """Found by a user with weekly reports only: `run --period 2026-10` told them to "name the month reports
    to run", and there are none; the line names the config file that has none. `2026-48` (week 48 without its
    W, a new user) said only "names no month: months are 01 to 12"."""
    (small_db / "weekly.toml").write_text('[source]\nurl = "duckdb://events.duckdb"\ntable = "agent_events"\n'
                                          '[[reports]]\nid = "weekly-exec"\nperiod = "week"\ntimezone = "UTC"\n'
                                          '[[reports]]\nid = "weekly-eng"\nperiod = "week"\ntimezone = "UTC"\n')
    line = one_line(cli(small_db, "run", "--config", "weekly.toml", "--period", key, "--dry-run",
                        "--now", "2026-11-29T01:00:00Z"), 2)
    assert line == (f"agentdigest: error: --period '{key}' is not a week key (expected e.g. 2026-W48); it is "
                    "written as a month key, and no report in weekly.toml is a month report")
    assert not (small_db / "reports").exists()


@pytest.mark.parametrize("key,line", [
    ("2025-W53", "--period '2025-W53' names no week: 2025 has ISO weeks W01 to W52"),
    ("2026-02-30", "--period '2026-02-30' names no day: February 2026 has 28 days"),
])
def test_a_key_that_names_no_period_is_said_so_not_sent_to_the_other_kind(small_db, key, line):
    """Found in a scheduling audit: with a week and a day report, `run --period 2026-02-30` told the user to
    name the day reports to run with it, and that run then failed: the key names no day at all."""
    write_config(small_db, '[source]\nurl = "duckdb://events.duckdb"\ntable = "agent_events"\n', TWO_KINDS)
    assert one_line(cli(small_db, "run", "--period", key, "--dry-run", "--now", "2026-11-29T01:00:00Z"), 2) == \
        f"agentdigest: error: {line}"


@pytest.mark.parametrize("args", [["--dry-run"], ["--test-to", "me@example.com"], []], ids=["dry-run", "test", "send"])
def test_a_period_that_has_not_begun_is_refused(small_db, args):
    """Found by a new user: `run --period 2026-W50 --dry-run` on 29 November printed "data completeness
    unknown (no history)" and "-100% over the last 8 weeks (446 → 0)". A period that has begun can still
    be previewed (tests/test_delivery_cli.py)."""
    write_config(small_db, '[source]\nurl = "duckdb://events.duckdb"\ntable = "agent_events"\n'
                           '[channels.box]\ntype = "outbox"\npath = "outbox"\n',
                 TWO_KINDS.replace('timezone = "Europe/Berlin"\n\n', 'timezone = "Europe/Berlin"\nchannels = ["box"]\n\n', 1))
    line = one_line(cli(small_db, "run", "weekly-exec", "--period", "2026-W50", "--now", "2026-11-29T01:00:00Z", *args), 2)
    assert "weekly-exec 2026-W50 has not ended yet, nor even begun: it starts 2026-12-07 00:00 Europe/Berlin" in line
    assert not (small_db / "reports").exists() and not (small_db / "outbox").exists()
    running = cli(small_db, "run", "weekly-exec", "--period", "2026-W48", "--dry-run", "--format", "json",
                  "--now", "2026-11-29T01:00:00Z")
    assert running.returncode == 0, running.stderr


@pytest.mark.parametrize("args,line", [
    (["--period", "2026-W47", "--test-to", ""], "--test-to needs an email address or a channel name (it was empty)"),
    (["--period", "", "--force"], "--period needs a key (it was empty; expected e.g. 2026-W48)"),
    (["--due", "--now", ""], "--now '' is not an ISO 8601 time"),
    (["--format", ""], "--format '' names no format"),
], ids=["test-to", "period", "now", "format"])
def test_an_empty_option_is_refused_not_read_as_left_out(small_db, args, line):
    """Found in a new-user audit: an empty value (a script's "$VAR" unset) was read as the option left out:
    `--test-to ""` delivered the period to its channels for real, `--period "" --force` sent the latest period
    again, `--now ""` ran on the real clock."""
    write_config(small_db, '[source]\nurl = "duckdb://events.duckdb"\ntable = "agent_events"\n'
                           '[channels.box]\ntype = "outbox"\npath = "outbox"\n',
                 '[[reports]]\nid = "weekly-exec"\nperiod = "week"\ntimezone = "Europe/Berlin"\nchannels = ["box"]\n')
    assert line in one_line(cli(small_db, "run", *args), 2)
    assert not (small_db / "reports").exists() and not (small_db / "outbox").exists()


# --- 7. history -------------------------------------------------------------------------------------

def test_history_tells_a_test_run_from_a_run_of_the_period(small_db):
    """Found by a new user: a `run --test-to` showed in `history` as "run (manual)", like a real send."""
    write_config(small_db, '[source]\nurl = "duckdb://events.duckdb"\ntable = "agent_events"\n'
                           '[channels.box]\ntype = "outbox"\npath = "outbox"\n',
                 '[[reports]]\nid = "weekly-exec"\nperiod = "week"\ntimezone = "Europe/Berlin"\nchannels = ["box"]\n')
    now = ["--now", "2026-11-29T01:00:00Z"]
    assert cli(small_db, "run", "--period", "2026-W47", "--test-to", "box", *now).returncode == 0
    shown = cli(small_db, "history", env={"COLUMNS": "200"}).stdout
    assert "run (test)" in shown and "run (manual)" not in shown, shown
    assert cli(small_db, "run", "--period", "2026-W47", *now).returncode == 0
    shown = cli(small_db, "history", env={"COLUMNS": "200"}).stdout
    assert shown.count("run (test)") == 1 and shown.count("run (manual)") == 1, shown


# --- 8. check --missed --------------------------------------------------------------------------------

def test_check_missed_shows_both_times_in_the_report_s_zone(small_db):
    """Found by a new user: "due at" was Berlin time and "late since" UTC in one table. Due Monday 09:00
    Berlin (08:00 UTC), late after the default 120 minutes' grace: 11:00 Berlin (10:00 UTC)."""
    write_config(small_db, '[source]\nurl = "duckdb://events.duckdb"\ntable = "agent_events"\n'
                           '[channels.box]\ntype = "outbox"\npath = "outbox"\n',
                 '[[reports]]\nid = "weekly-exec"\nperiod = "week"\ntimezone = "Europe/Berlin"\nchannels = ["box"]\n')
    done = cli(small_db, "check", "--missed", "--now", "2026-11-30T12:00:00Z", env={"COLUMNS": "200"})
    assert done.returncode == 1, done.stdout + done.stderr
    row = next(line for line in done.stdout.splitlines() if "weekly-exec" in line)
    assert "2026-11-30 09:00 CET (Europe/Berlin)" in row and "2026-11-30 11:00 CET (Europe/Berlin)" in row, done.stdout
    assert "10:00" not in row and "(UTC)" not in done.stdout


def test_python_dash_m_runs_the_command_line(tmp_path: Path) -> None:
    # a virtualenv whose scripts folder is not on PATH: "No module named agentdigest.__main__" before
    done = subprocess.run([sys.executable, "-m", "agentdigest", "check", "--config", str(tmp_path / "none.toml")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    line = one_line(done, 2)
    assert "none.toml" in line


@pytest.mark.parametrize("command, usage, argument", [
    ("run", "Usage: agentdigest run [OPTIONS] [REPORT_ID]...", "REPORT_ID  Reports to run"),
    ("resend", "Usage: agentdigest resend [OPTIONS] REPORT_ID PERIOD", "PERIOD     Period key"),
])
def test_help_shows_arguments_without_python_types(tmp_path: Path, command: str, usage: str, argument: str) -> None:
    # Typer's own display read "REPORT_ID <list[str]>" and "{REPORT_ID} {PERIOD}": a Python type and braces
    # that mean nothing to a reader of the help
    done = cli(tmp_path, command, "--help", env={"COLUMNS": "100"})
    assert done.returncode == 0, done.stderr
    lines = [line.strip() for line in done.stdout.splitlines()]
    assert lines[0] == usage, done.stdout
    assert any(line.startswith(argument) for line in lines), done.stdout
    assert "<" not in done.stdout and "{" not in done.stdout, done.stdout


@pytest.mark.parametrize("mapped", ["", 'event_ts = "ts"\nevent_type = "kind"\n'], ids=["nothing-mapped", "one-left-out"])
def test_a_required_column_of_another_name_says_how_to_map_it(tmp_path, mapped):
    """Found installing agentdigest as a new user with a CSV export of their own (columns conv, ts, kind): check
    said "required column 'conversation_id' not found (columns: conv, kind, ts)" and no more, though the answer
    is one line of [source.columns], which the message never named."""
    (tmp_path / "events.csv").write_text("conv,ts,kind\n42,2026-10-02T10:00:00+02:00,message\n")
    write_config(tmp_path, f'[source]\nfiles = "events.csv"\n[source.columns]\n{mapped}')
    line = one_line(cli(tmp_path, "check"), 2)
    assert line == (f"agentdigest: error: agentdigest.toml: source {str(tmp_path / 'events.csv')!r}: required column "
                    "'conversation_id' not found (columns: conv, kind, ts); expected a column of that name, or yours "
                    "mapped to it in [source.columns]: conversation_id = \"<your column>\""), line


@pytest.mark.parametrize("mapping,kind,said", [
    ('event_ts = "ts "', "required column 'ts '", "event_ts has a space at its end, and the table has 'ts' "
                                                  '(expected event_ts = "ts")'),
    ('event_ts = " ts"', "required column ' ts'", "event_ts has a space at its start, and the table has 'ts' "
                                                  '(expected event_ts = "ts")'),
    ('event_ts = "ts"\nlatency_ms = "\\tlat "', "column '\\tlat '",
     "latency_ms has a blank (a tab or another space) at both ends, and the table has 'lat' "
     '(expected latency_ms = "lat")'),
], ids=["end", "start", "tab-optional"])
@pytest.mark.parametrize("source", ["table", "csv"])
def test_a_mapped_name_with_a_space_around_it_says_so(tmp_path, mapping, kind, said, source):
    """Found installing agentdigest as a new user: `event_ts = "ts "` (a space copied with the name) for a table
    with ts said "required column 'ts ' ... not found (columns: ..., ts)", the column seemingly there and the space
    unseen. One line, exit 2 as for any column not found."""
    with duckdb.connect(str(tmp_path / "events.duckdb")) as con:
        con.execute("CREATE TABLE ev AS SELECT 'c1' AS conversation_id, TIMESTAMPTZ '2026-10-02 10:00:00+00' AS ts, "
                    "'message' AS event_type, 1.5 AS lat")
        con.execute(f"COPY ev TO '{tmp_path / 'events.csv'}'")
    where = 'url = "duckdb://events.duckdb"\ntable = "ev"' if source == "table" else 'files = "events.csv"'
    write_config(tmp_path, f"[source]\n{where}\n[source.columns]\n{mapping}\n")
    name = "ev" if source == "table" else str(tmp_path / "events.csv")
    mapped = mapping.rsplit("\n", 1)[-1].split(" =")[0]
    assert one_line(cli(tmp_path, "check"), 2) == (
        f"agentdigest: error: agentdigest.toml: source {name!r}: {kind} (mapped by source.columns.{mapped}) not found "
        f"(columns: conversation_id, event_type, lat, ts); the name in source.columns.{said}")


def test_a_json_lines_file_says_json_is_not_read_and_how_to_convert_it(tmp_path):
    """Found installing agentdigest as a new user with a JSON lines export (events.jsonl): the line said it "looks
    like JSON text; expected Parquet" and README said nothing of JSON, so whether another setting would read it
    (it would not) was left to guess. The conversion README gives is run here, and the file it writes is read."""
    rows = [{"conversation_id": f"c{i}", "event_ts": f"2026-10-0{1 + i}T10:00:00+02:00", "event_type": "message"}
            for i in range(3)]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_config(tmp_path, '[source]\nfiles = "events.jsonl"\n')
    line = one_line(cli(tmp_path, "check"), 3)
    assert line == (f"agentdigest: error: source.files: {tmp_path / 'events.jsonl'} is not a Parquet file (it looks "
                    "like JSON text); JSON is not read: convert it to Parquet once (README, Events: Files); files are "
                    "read as CSV only when every file ends in .csv, .csv.gz or .tsv"), line
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    convert = "python -c " + readme.split("`python -c ", 1)[1].split("`", 1)[0]  # as a shell reads it
    assert "events.jsonl" in convert, convert
    subprocess.run(["sh", "-c", convert.replace("python", sys.executable, 1)], cwd=tmp_path, check=True, timeout=60)
    write_config(tmp_path, '[source]\nfiles = "events.parquet"\n')
    done = cli(tmp_path, "run", "--dry-run", "--format", "json", "--period", "2026-10")
    assert done.returncode == 0, done.stdout + done.stderr
    assert conversations(tmp_path, "monthly", "2026-10") == 3


# --- a dry run before delivery is set up ----------------------------------------------------------------

UNSET_CHANNELS = """
[channels.leadership]
type = "email"
to = ["cto@example.com"]
from = "agent-reports@example.com"
smtp_url = "smtp+starttls://reports:${AD_UNSET_SMTP_PASSWORD}@mail.example.com:587"

[channels.team]
type = "slack"
bot_token = "${AD_UNSET_SLACK_TOKEN}"
channel = "#agents"

[channels.hook]
type = "slack"
webhook_url = "${AD_UNSET_SLACK_TOKEN}"
"""
UNSET_REFUSED = ("agentdigest: error: agentdigest.toml: channels.leadership.smtp_url: environment variable "
                 "AD_UNSET_SMTP_PASSWORD is not set (expected it to hold this value)")


@pytest.mark.parametrize("args", [["check"], ["run", "--period", "2026-W47"], ["schedule"],
                                  ["run", "--period", "2026-W47", "--test-to", "me@example.com"]],
                         ids=["check", "run", "schedule", "test-to"])
def test_channel_secrets_not_set_are_refused_but_by_a_dry_run(small_db, args):
    """Found installing agentdigest as a new user: `run --dry-run`, which sends nothing, was refused (exit 2) for an
    SMTP password not yet in the environment, so a preview needed delivery set up first. It now runs, saying once
    which secrets are not set; everything that may send (and check) still refuses, in the same line as before."""
    write_config(small_db, '[source]\nurl = "duckdb://events.duckdb"\ntable = "agent_events"\n' + UNSET_CHANNELS,
                 '[[reports]]\nid = "weekly-exec"\nperiod = "week"\ntimezone = "Europe/Berlin"\n'
                 'channels = ["leadership", "team", "hook"]\n')
    now = ["--now", "2026-11-29T01:00:00Z"]
    assert one_line(cli(small_db, *args, *now if args[0] == "run" else []), 2) == UNSET_REFUSED
    assert not (small_db / "reports").exists()
    done = cli(small_db, "run", "--period", "2026-W47", "--dry-run", *now)
    assert done.returncode == 0, done.stdout + done.stderr
    notes = [line for line in done.stdout.splitlines() if line.startswith("note: ")]
    assert notes == ["note: dry run without channel secrets not set in the environment: AD_UNSET_SMTP_PASSWORD "
                     "(channels.leadership.smtp_url); AD_UNSET_SLACK_TOKEN (channels.team.bot_token, "
                     "channels.hook.webhook_url); run, run --test-to, check and schedule need them"], done.stdout
    assert done.stderr == "", done.stderr
    folder = small_db / "reports" / "weekly-exec" / "2026-W47"
    # one conversation an hour from Mon 16 Nov 10:00 UTC to the week's end, Sun 22 Nov 23:00 UTC (Berlin's midnight)
    assert json.loads((folder / "report.json").read_text())["metrics"]["conversations"]["value"] == 6 * 24 + 13
    eml = (folder / "message.eml").read_text()
    assert "To: cto@example.com" in eml and "From: agent-reports@example.com" in eml
    assert not any("unset" in p.read_text(errors="replace") for p in folder.iterdir())  # no stand-in in the archive
    assert not (small_db / "agentdigest.db").exists()  # nothing recorded
    due = cli(small_db, "run", "--due", "--dry-run", *now)
    assert due.returncode == 0 and due.stdout.count("note: dry run without channel secrets") == 1, due.stdout


@pytest.mark.parametrize("env,line", [
    ({"AD_UNSET_SMTP_PASSWORD": "", "AD_UNSET_SLACK_TOKEN": "xoxb-1"},
     "channels.leadership.smtp_url: environment variable AD_UNSET_SMTP_PASSWORD is empty"),
    ({}, "channels.leadership.smtp_url: environment variable AD_UNSET_SMTP_PASSWORD is not set"),
], ids=["empty", "refused-with-a-stand-in"])
def test_a_dry_run_still_refuses_an_empty_secret_and_a_channel_it_cannot_read(small_db, env, line):
    """Only a variable not set at all is gone without: an empty one is a deploy's mistake (refused as before), and a
    channel refused with the stand-in (smtp:// with a password, to another host) is refused as its variable not set
    (what `run` says), never as what the stand-in would make of it."""
    written = "smtp+starttls://reports:${AD_UNSET_SMTP_PASSWORD}@mail.example.com:587"
    channels = UNSET_CHANNELS.replace(written, "${AD_UNSET_SMTP_PASSWORD}" if env else
                                      "smtp://reports:${AD_UNSET_SMTP_PASSWORD}@mail.example.com:587")
    write_config(small_db, '[source]\nurl = "duckdb://events.duckdb"\ntable = "agent_events"\n' + channels,
                 '[[reports]]\nid = "weekly-exec"\nperiod = "week"\ntimezone = "Europe/Berlin"\n'
                 'channels = ["leadership"]\n')
    got = one_line(cli(small_db, "run", "--period", "2026-W47", "--dry-run", "--now", "2026-11-29T01:00:00Z", env=env), 2)
    assert got.startswith(f"agentdigest: error: agentdigest.toml: {line} (expected it to hold this value)"), got
    assert not (small_db / "reports").exists()
