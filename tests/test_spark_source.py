"""The Spark source's files, settings and errors, after an audit of it (DuckDB too where the defect was shared).

Found in a Spark audit: a file URL's credentials in Spark's errors; PySpark's "An error occurred while calling
o74.collectToPython." instead of the cause; a column only later files have dropped; [source.spark_conf] keys
that silently change a report accepted; an empty ./spark-warehouse left behind by a catalog lookup.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agentdigest.compute import compute_report
from agentdigest.config import ReportConfig, SourceConfig
from agentdigest.errors import InputError, SourceError
from agentdigest.masking import mask_text, mask_url, secret_query
from agentdigest.periods import parse_period
from agentdigest.sources import QueryFailed, Source, open_source, query_error
from backend_loaders import write_csv, write_parquet
from compare import compare_report
from conftest import skip_or_fail
from reference import Reference
from trapdata import SCENARIOS, now_for, to_arrow, trap_rows

SPARK = "pyspark://local[2]"
ENGINES = [pytest.param("duckdb://", id="duckdb"), pytest.param(SPARK, id="spark", marks=pytest.mark.spark)]
T0 = datetime(2026, 10, 20, 12, tzinfo=timezone.utc)
# AWS's documented example keys: the shape of a real pair, valid nowhere.
KEY_ID, SECRET_KEY = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY"
PRESIGNED = ("s3://bucket/x.parquet?X-Amz-Algorithm=AWS4-HMAC-SHA256"
             "&X-Amz-Credential=AKIAPLANTED%2F20261020%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261020T120000Z"
             "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Security-Token=PLANTEDsession"
             "&X-Amz-Signature=PLANTEDsignature")


def _events(conversations: list[str], **extra: pa.Array) -> pa.Table:
    n = len(conversations)
    return pa.table({"conversation_id": conversations, "event_ts": pa.array([T0] * n, pa.timestamp("us", tz="UTC")),
                     "event_type": ["message"] * n, **extra})


def _open(url: str, files: str, request: pytest.FixtureRequest, **settings) -> Source:
    if url.startswith("pyspark"):
        request.getfixturevalue("spark")
    return open_source(SourceConfig(url=url, files=files, **settings))


def _one_line(exc: BaseException) -> str:
    (line,) = str(exc).strip().splitlines()
    return line


# -- 1. credentials in file URLs ---------------------------------------------------------------

def test_presigned_url_signatures_and_credentials_are_masked():
    """S3's and GCS's presigned query values were shown as written (found in a Spark audit); the other
    parameters still read as they were, and a parameter merely ending in "key" is no credential."""
    masked = mask_text(f"source.files: cannot read ['{PRESIGNED}'] (boom)")
    assert "PLANTED" not in masked, masked
    assert "X-Amz-Signature=***" in masked and "X-Amz-Credential=***" in masked and "X-Amz-Security-Token=***" in masked
    assert "X-Amz-Date=20261020T120000Z" in masked and "X-Amz-Expires=3600" in masked
    assert mask_url("gs://b/x.parquet?X-Goog-Credential=svc%40p.iam&X-Goog-Signature=PLANTED") == \
        "gs://b/x.parquet?X-Goog-Credential=***&X-Goog-Signature=***"
    assert mask_url("s3://b/x.parquet?sort-key=day") == "s3://b/x.parquet?sort-key=day"
    # The same names make a presigned URL written into the config file a credential written there.
    assert secret_query(PRESIGNED) == "X-Amz-Credential" and secret_query("s3://b/x?sort-key=day") is None


@pytest.mark.spark
@pytest.mark.parametrize("files", [f"s3a://{KEY_ID}:{SECRET_KEY}@bucket/x.parquet", PRESIGNED])
def test_spark_file_errors_never_show_credentials(spark, files):
    """Spark's read errors printed the files as written (DuckDB's were masked)."""
    with pytest.raises(SourceError) as err:
        open_source(SourceConfig(url=SPARK, files=files))
    line = _one_line(err.value)
    assert line.startswith("source.files: cannot read ['s3"), line
    assert SECRET_KEY not in line and "PLANTED" not in line, line
    assert "An error occurred while calling" not in line, line  # the cause, not PySpark's wrapper


@pytest.mark.spark
def test_s3a_without_hadoop_aws_says_what_to_add(spark):
    """s3a:// without the hadoop-aws jar (pyspark ships none) read 'ClassNotFoundException: Class org.apache.hadoop.
    fs.s3a.S3AFileSystem not found': what Java lacks, not what to add (found in a Spark audit). The line now names
    the jar and the setting, with the version of Spark's own Hadoop (a jar of another version fails to load)."""
    with pytest.raises(SourceError) as err:
        open_source(SourceConfig(url=SPARK, files="s3a://bucket/events/*.parquet"))
    line = _one_line(err.value)
    version = spark.sparkContext._jvm.org.apache.hadoop.util.VersionInfo.getVersion()
    assert f'"spark.jars.packages" = "org.apache.hadoop:hadoop-aws:{version}" in [source.spark_conf]' in line, line
    assert line.startswith("source.files: cannot read ['s3a://bucket/events/*.parquet'] (s3a:// needs the hadoop-aws jar"), line


def test_query_errors_never_show_file_credentials():
    """A failed query names its source (for files, their URLs) and the engine's cause, which may name a file."""
    cause = query_error(RuntimeError(f"IO Error: cannot open s3a://{KEY_ID}:{SECRET_KEY}@bucket/x.parquet"))
    assert isinstance(cause, QueryFailed) and SECRET_KEY not in str(cause) and "cannot open s3a://" in str(cause)
    source = Source(backend=None, events=None, present=frozenset(), kind="pyspark",
                    name=f"events/*.parquet, s3a://{KEY_ID}:{SECRET_KEY}@bucket/x.parquet")
    named = source.query_failed(QueryFailed("query failed: permission denied"))
    assert SECRET_KEY not in str(named) and "events/*.parquet" in str(named) and "permission denied" in str(named)


# -- 2. root causes ------------------------------------------------------------------------------

@pytest.mark.spark
def test_spark_query_failures_give_the_java_cause(spark, tmp_path):
    """PySpark's first line is "An error occurred while calling o74.collectToPython."; the cause names the
    file and the column (found in a Spark audit: only --verbose showed it)."""
    pq.write_table(_events(["a"], token_count=pa.array([1], pa.int32())), tmp_path / "a.parquet")
    pq.write_table(_events(["b"], token_count=pa.array([2], pa.int64())), tmp_path / "b.parquet")
    # Read without agentdigest's schema merging, so the mismatch fails the query rather than the read.
    with pytest.raises(Exception) as raised:
        spark.read.parquet(str(tmp_path / "*.parquet")).collect()
    line = _one_line(query_error(raised.value))
    assert line.startswith("query failed: [FAILED_READ_FILE.PARQUET_COLUMN_DATA_TYPE_MISMATCH]"), line
    assert "b.parquet" in line and "token_count" in line, line


@pytest.mark.parametrize("url", ENGINES)
def test_csv_files_whose_columns_differ_are_read_by_header(url, tmp_path, request):
    """Spark read every CSV file but one by position: a file with its columns in another order had its values
    swapped, silently (event types read as conversation ids). Then it failed, exit 3, naming whichever file was
    not the one Spark took the columns from: with the odd file first, a right one (found in a schema-drift
    audit). DuckDB reads each file's columns by name; now Spark does too, a column only one file has included,
    and a row of the wrong shape in the odd file is counted against that file's own header. On Spark that row is
    named by its row after the header, a quoted line break inside a field starting no row, as DuckDB counts its
    "lines" (line 3: the header is its line 1)."""
    (tmp_path / "a.csv").write_text('event_type,conversation_id,event_ts,error_message\n'
                                    'message,a1,2026-10-20T12:00:00Z,"Traceback:\n  File ""x.py"", line 2"\n'
                                    'resolution,a1,2026-10-20T12:01:00Z,"boom,\nagain",x\n')
    (tmp_path / "b.csv").write_text("conversation_id,event_ts,event_type\nb1,2026-10-20T13:00:00Z,resolution\n")
    (tmp_path / "c.csv").write_text("conversation_id,event_ts,event_type,cost_usd\nc1,2026-10-20T14:00:00Z,message,0.5\n")
    (tmp_path / "d.csv").write_text("conversation_id,event_ts,event_type\nd1,2026-10-20T15:00:00Z,escalation\n")
    # a header after blank lines (Spark skips them), and a file with no line at all
    (tmp_path / "e.csv").write_text("\n\nevent_ts,event_type,conversation_id\n2026-10-20T16:00:00Z,message,e1\n")
    (tmp_path / "f.csv").write_text("")
    source = _open(url, str(tmp_path / "*.csv"), request)
    try:
        got = source.events.order_by("conversation_id").select("conversation_id", "event_type", "cost_usd")
        rows, unreadable = got.to_pyarrow().to_pylist(), source.unreadable
    finally:
        source.close()
    assert [tuple(r.values()) for r in rows] == [("a1", "message", None), ("b1", "resolution", None),
                                                 ("c1", "message", 0.5), ("d1", "escalation", None),
                                                 ("e1", "message", None)]
    assert unreadable is not None and unreadable.rows == 1
    if url == SPARK:
        assert unreadable.first == f"row 2 of {tmp_path / 'a.csv'} after its header: 5 fields, expected 4"
    else:
        assert unreadable.first.startswith(f"line 3 of {tmp_path / 'a.csv'}: "), unreadable.first


@pytest.mark.parametrize("url", ENGINES)
@pytest.mark.parametrize("names", [["a.csv", "b.csv"], ["a.csv"]])
def test_csv_files_written_with_another_delimiter_are_read(url, names, tmp_path, request):
    """A file exported with ';' (a spreadsheet in a European locale) beside files written with ',': DuckDB
    detects each file's delimiter; Spark read it as one column and failed the run (exit 2) naming no file
    (found in a schema-drift audit). Now Spark takes each file's delimiter from its header, as DuckDB does."""
    (tmp_path / "a.csv").write_text('conversation_id;event_ts;event_type;error_message\n'
                                    'a1;2026-10-20T12:00:00Z;error;"timeout, retried"\n')
    (tmp_path / "b.csv").write_text("conversation_id,event_ts,event_type\nb1,2026-10-20T13:00:00Z,resolution\n")
    source = _open(url, [str(tmp_path / name) for name in names], request)
    try:
        got = source.events.order_by("conversation_id").select("conversation_id", "event_type", "error_message")
        rows = [tuple(r.values()) for r in got.to_pyarrow().to_pylist()]
    finally:
        source.close()
    assert rows == [("a1", "error", "timeout, retried"), ("b1", "resolution", None)][:len(names)]


@pytest.mark.parametrize("url", ENGINES)
@pytest.mark.parametrize("header,row,read", [
    # a name with commas inside quotes split into as many columns by commas as by the file's own ';' or '|': a comma won
    # the tie, and every row of the file was left out as unreadable (found in a review)
    ('conversation_id;event_ts;event_type;"note, with, some, commas"', "a1;2026-10-20T12:00:00Z;error;x",
     ("a1", "error")),
    ('conversation_id|event_ts|event_type|"note, with, some, commas"', "a1|2026-10-20T12:00:00Z|error|x", ("a1", "error")),
    ('"x, y"\tconversation_id\tevent_ts\tevent_type', "z\ta1\t2026-10-20T12:00:00Z\terror", ("a1", "error")),
    # one column, no delimiter at all, its values with commas (quoted) or semicolons (not all rows)
    ("conversation_id", "a1", ("a1", None)),
    ("conversation_id", '"a1, a2"\nb1;b2\nc1', ("a1, a2", None)),
], ids=["semicolon", "pipe", "tab", "one-column", "one-column-commas"])
def test_a_csv_header_alone_does_not_decide_the_delimiter(url, header, row, read, tmp_path, request):
    """Spark took a CSV file's delimiter from its header alone; now from the rows after it as well, as DuckDB's sniffer
    does: both engines read these files alike, beside a file written with commas."""
    (tmp_path / "a.csv").write_text(f"{header}\n{row}\n")
    (tmp_path / "b.csv").write_text("conversation_id,event_ts,event_type\nb0,2026-10-20T13:00:00Z,resolution\n")
    source = _open(url, str(tmp_path / "*.csv"), request)
    try:
        got = source.events.order_by("conversation_id").select("conversation_id", "event_type")
        rows = [tuple(r.values()) for r in got.to_pyarrow().to_pylist()]
        unreadable = source.unreadable
    finally:
        source.close()
    assert rows[0] == read and ("b0", "resolution") in rows, rows
    assert unreadable is not None and unreadable.rows == 0, unreadable


def _rows_and_unreadable(url: str, files: str, request: pytest.FixtureRequest) -> tuple[list[tuple], int | None]:
    source = _open(url, files, request)
    try:
        got = source.events.select("conversation_id", "event_type").to_pyarrow().to_pylist()
        return sorted((tuple(r.values()) for r in got), key=repr), source.unreadable and source.unreadable.rows
    finally:
        source.close()


@pytest.mark.spark
@pytest.mark.parametrize("header,sep,odd", [
    # a header that splits as many ways by ',' as by ';' (a name with commas inside quotes): DuckDB reads the odd
    # file's rows by their own delimiter, its columns named as that delimiter splits the header (none is
    # conversation_id: two rows counted as missing_required)
    ('conversation_id;event_ts;event_type;"note, x, y, z"', ";", ","),
    # a header that splits by ';' alone: the odd file's rows are one field each, left out and counted
    ("conversation_id;event_ts;event_type;note", ";", ","),
    ("conversation_id,event_ts,event_type,note", ",", ";"),
], ids=["tie", "semicolon-header", "comma-header"])
@pytest.mark.parametrize("odd_first", [False, True], ids=["odd-second", "odd-first"])
def test_csv_files_with_one_header_and_rows_of_other_delimiters_are_read_as_by_duckdb(
        spark, header, sep, odd, odd_first, tmp_path, request):
    """Two files with the same header, the rows of one written with another delimiter: Spark took the delimiter of
    every file with that header from the first one's rows, where DuckDB sniffs each file's; with the odd file second
    its rows were left out as unreadable where DuckDB reads them, and with it first the run failed, "required column
    'conversation_id' not found" (exit 2), naming no file (found in a review). Now each file's delimiter is its own,
    and Spark reads what DuckDB reads."""
    rows = [["a1", "2026-10-20T12:00:00Z", "message", "n"], ["a2", "2026-10-20T12:01:00Z", "error", "n"]]
    usual, other = ("b.csv", "a.csv") if odd_first else ("a.csv", "b.csv")
    (tmp_path / usual).write_text(header + "\n" + "".join(sep.join(r) + "\n" for r in rows))
    (tmp_path / other).write_text(header + "\n" + "".join(odd.join(["b" + r[0][1:], *r[1:]]) + "\n" for r in rows))
    files = str(tmp_path / "*.csv")
    duckdb, spark = _rows_and_unreadable("duckdb://", files, request), _rows_and_unreadable(SPARK, files, request)
    assert spark == duckdb
    tie = header.startswith("conversation_id;") and "," in header
    assert duckdb == ([("a1", "message"), ("a2", "error")] + [(None, None)] * 2 * tie, 0 if tie else 2), duckdb


@pytest.mark.spark
def test_a_one_column_header_over_rows_of_more_fields_is_refused_by_spark(spark, tmp_path, request):
    """A header of one column whose rows all split into two fields by ';': DuckDB's sniffer reads the first row as the
    header and leaves the real one out (below), where Spark read one column; the file is wrong, and Spark says so."""
    (tmp_path / "a.csv").write_text("error_message\ntimeout; retried\nx;y\n")
    import duckdb

    assert duckdb.sql(f"select * from read_csv('{tmp_path / 'a.csv'}')").columns == ["timeout", "retried"]
    with pytest.raises(InputError) as err:
        _open(SPARK, str(tmp_path / "a.csv"), request)
    assert _one_line(err.value) == (
        f"source.files: the header of {tmp_path / 'a.csv'} names one column but its rows have 2 fields split by ';'; "
        f"expected a header naming every column (DuckDB would read the first row as the header)")


@pytest.mark.parametrize("url", ENGINES)
@pytest.mark.parametrize("files", ["events", "events/*", "events/*.csv"])
def test_a_folder_of_csv_files_is_read_as_csv(url, files, tmp_path, request):
    """CSV is told by the files an entry lists, as DuckDB's source lists them first: a folder, or a glob such as
    events/*, holding only CSV files (a Spark-written folder of part files and _SUCCESS among them) was read as Parquet
    by Spark and failed (exit 3), "Could not read footer", where DuckDB reads them (found in a review)."""
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "a.csv").write_text("conversation_id,event_ts,event_type\na1,2026-10-20T12:00:00Z,message\n")
    (tmp_path / "events" / "_SUCCESS").write_text("")
    (tmp_path / "events" / "b.tsv").write_text("conversation_id\tevent_ts\tevent_type\nb1\t2026-10-20T13:00:00Z\tresolution\n")
    source = _open(url, str(tmp_path / files), request)
    try:
        got = source.events.order_by("conversation_id").select("conversation_id", "event_type")
        rows, unreadable = [tuple(r.values()) for r in got.to_pyarrow().to_pylist()], source.unreadable
    finally:
        source.close()
    assert rows == [("a1", "message"), ("b1", "resolution")][:1 if files == "events/*.csv" else 2], rows
    assert unreadable is not None and unreadable.rows == 0, unreadable


@pytest.mark.parametrize("url", ENGINES)
@pytest.mark.parametrize("files", ["events", "events/*"])
def test_a_folder_of_csv_and_parquet_files_is_refused(url, files, tmp_path, request):
    """CSV and Parquet files in one folder: DuckDB's source reads them all as Parquet and fails (exit 3) naming the
    CSV file; Spark refuses them too, saying which file is CSV and which is not (PySpark said "An error occurred
    while calling o53.parquet." before)."""
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "a.csv").write_text("conversation_id,event_ts,event_type\nc1,2026-10-20T12:00:00Z,message\n")
    pq.write_table(_events(["b1"]), tmp_path / "events" / "b.parquet")
    with pytest.raises(SourceError) as err:
        _open(url, str(tmp_path / files), request)
    line = _one_line(err.value)
    assert str(tmp_path / "events" / "a.csv") in line, line
    if url == SPARK:  # said before Spark starts (see test_local_files_spark_cannot_read_are_said_before_spark_starts)
        assert f"{tmp_path / 'events' / 'a.csv'} is CSV but {tmp_path / 'events' / 'b.parquet'} is not" in line, line


@pytest.mark.parametrize("url", ENGINES)
@pytest.mark.parametrize("names", [["a.tsv"], ["a.tsv", "b.csv"], ["c.tsv.gz"]])
def test_tsv_files_are_read_as_by_duckdb(url, names, tmp_path, request):
    """DuckDB reads .tsv files as CSV (its delimiter sniffed); Spark read them as Parquet and failed every run,
    "Could not read footer" (exit 3) (found in a review). Now Spark tells CSV by the same endings DuckDB's source
    does (unreadable.CSV_SUFFIXES), a tab-delimited file beside comma-delimited ones included; a .tsv.gz, which
    DuckDB's source reads as Parquet, fails on both, saying which endings are CSV."""
    import gzip

    from agentdigest.unreadable import CSV_SUFFIXES

    (tmp_path / "a.tsv").write_text("conversation_id\tevent_ts\tevent_type\terror_message\n"
                                    "a1\t2026-10-20T12:00:00Z\terror\ttimeout, retried\n")
    (tmp_path / "b.csv").write_text("conversation_id,event_ts,event_type\nb1,2026-10-20T13:00:00Z,resolution\n")
    with gzip.open(tmp_path / "c.tsv.gz", "wt") as f:
        f.write("conversation_id\tevent_ts\tevent_type\terror_message\nc1\t2026-10-20T14:00:00Z\tmessage\t\n")
    files = [str(tmp_path / name) for name in names]
    if names == ["c.tsv.gz"] and ".tsv.gz" not in CSV_SUFFIXES:
        with pytest.raises(SourceError) as err:
            _open(url, files, request)
        line = _one_line(err.value)
        assert "c.tsv.gz" in line, line
        if url == SPARK:
            assert line.endswith("files are read as CSV only when every file ends in .csv, .csv.gz or .tsv"), line
        return
    source = _open(url, files, request)
    try:
        got = source.events.order_by("conversation_id").select("conversation_id", "event_type", "error_message")
        rows = [tuple(r.values()) for r in got.to_pyarrow().to_pylist()]
    finally:
        source.close()
    expected = {"a.tsv": [("a1", "error", "timeout, retried")], "b.csv": [("b1", "resolution", None)],
                "c.tsv.gz": [("c1", "message", None)]}
    assert rows == [row for name in names for row in expected[name]]


@pytest.mark.parametrize("url,name,content,looks", [
    pytest.param("duckdb://", "events.parquet", b"conversation_id,event_ts,event_type\nc1,2026-10-20T12:00:00Z,message\n",
                 "it looks like CSV text", id="duckdb-csv"),
    pytest.param(SPARK, "events.parquet", b"conversation_id,event_ts,event_type\nc1,2026-10-20T12:00:00Z,message\n",
                 "it looks like CSV text", marks=pytest.mark.spark, id="spark-csv"),
    pytest.param("duckdb://", "events.parquet", b"", "it is empty", id="duckdb-empty"),
    pytest.param("duckdb://", "events.parquet", b'{"conversation_id": "c1"}\n', "it looks like JSON text",
                 id="duckdb-json"),
    pytest.param("duckdb://", "part-0.parquet", b"PAR1" + b"\x15" * 40, "it starts as Parquet but has no footer",
                 id="duckdb-truncated"),
])
def test_a_file_read_as_parquet_that_is_not_parquet_is_named(url, name, content, looks, tmp_path, request):
    """Found by a user whose events.parquet held CSV text: DuckDB's line was "No magic bytes found at end of file",
    Spark's "Could not read footer ... ORC or Parquet format"; now both name the file and say what it looks like."""
    pq.write_table(_events(["a1"]), tmp_path / "good.parquet")
    (tmp_path / name).write_bytes(content)
    with pytest.raises(SourceError) as err:
        _open(url, str(tmp_path / "*.parquet"), request)
    line = _one_line(err.value)
    assert line.startswith(f"source.files: {tmp_path / name} is not a Parquet file ({looks}"), line
    assert line.endswith("files are read as CSV only when every file ends in .csv, .csv.gz or .tsv"), line


@pytest.mark.parametrize("url", [pytest.param("duckdb://", id="duckdb"),
                                 pytest.param(SPARK, marks=pytest.mark.spark, id="spark")])
@pytest.mark.parametrize("content,says", [
    pytest.param("utf-16", "is UTF-16 text; expected UTF-8: save it as CSV UTF-8, or convert it, e.g. iconv -f UTF-16 "
                 "-t UTF-8", id="utf16-bom"),
    pytest.param("utf-16-le", "is UTF-16 text; expected UTF-8: save it as CSV UTF-8, or convert it, e.g. iconv -f "
                 "UTF-16 -t UTF-8", id="utf16-no-bom"),
    pytest.param(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 8, "is not CSV text (it is a ZIP archive, such "
                 "as an Excel workbook); expected UTF-8 text with a header line naming the columns", id="workbook"),
    pytest.param(b"\x1f\x8b\x08\x00" + bytes(64), "is not CSV text (it is gzip-compressed); expected UTF-8 text with a "
                 "header line naming the columns", id="gzip-without-gz"),
])
def test_a_csv_file_that_is_not_utf8_text_is_named_with_what_it_is(url, content, says, tmp_path, request):
    """Found in an audit: a CSV file saved as UTF-16 read as UTF-8, and the run said "required column
    'conversation_id' not found (columns:  ,  0 . 0 0 3 2 ...)", exit 2, its header spaced out by NULs; a
    workbook renamed .csv read as rows of garbage on Spark. Text in another 8-bit encoding is not refused
    (test_csv_rows_not_in_utf8_are_counted_and_left_out_by_spark_as_by_duckdb)."""
    text = "conversation_id,event_ts,event_type\nc1,2026-10-20T12:00:00Z,message\n"
    (tmp_path / "a.csv").write_text(text, encoding="utf-8")
    (tmp_path / "b.csv").write_bytes(text.encode(content) if isinstance(content, str) else content)
    with pytest.raises(SourceError) as err:
        _open(url, str(tmp_path / "*.csv"), request)
    assert _one_line(err.value) == f"source.files: {tmp_path / 'b.csv'} {says}"


# -- 3. columns of every file ---------------------------------------------------------------------

@pytest.mark.parametrize("url,fmt", [
    pytest.param("duckdb://", "parquet", id="duckdb-parquet"), pytest.param("duckdb://", "csv", id="duckdb-csv"),
    pytest.param(SPARK, "parquet", id="spark-parquet", marks=pytest.mark.spark),
    # Spark read CSV files with one header: see test_csv_files_whose_columns_differ_are_read_by_header.
    pytest.param(SPARK, "csv", id="spark-csv", marks=pytest.mark.spark),
])
def test_a_column_only_later_files_have_is_read(url, fmt, tmp_path, request):
    """A column added later (cost_usd, only in b) was dropped: the engines took the columns from one file
    and the report said the column does not exist. Now every file's columns are read, null where absent."""
    old, new = _events(["a1", "a2"]), _events(["b1"], cost_usd=pa.array([1.25]))
    if fmt == "parquet":
        pq.write_table(old, tmp_path / "a.parquet")
        pq.write_table(new, tmp_path / "b.parquet")
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(old, tmp_path / "a.csv")
        pacsv.write_csv(new, tmp_path / "b.csv")
    source = _open(url, str(tmp_path / f"*.{fmt}"), request)
    try:
        assert "cost_usd" in source.present
        events = source.events
        got = events.agg(rows=events.count(), costs=events.cost_usd.count(), cost=events.cost_usd.sum()).to_pyarrow()
    finally:
        source.close()
    assert got.to_pylist() == [{"rows": 3, "costs": 1, "cost": 1.25}]


@pytest.mark.parametrize("url", ENGINES)
@pytest.mark.parametrize("first,second", [(pa.int32(), pa.int64()), (pa.int64(), pa.int32())])
def test_int_and_bigint_across_parquet_files(url, first, second, tmp_path, request):
    """DuckDB reads a column that is int in one file and bigint in another. Spark merges no such schemas:
    without merging, the query failed with "An error occurred while calling o106.collectToPython." (int
    first) or worked (bigint first), by which file Spark took the columns from; then it was refused, naming the
    files, and the user had to rewrite files DuckDB reads (found in a schema-drift audit). Now Spark reads them
    as DuckDB does, in either order: each set of files alike on its own, the ints cast to bigint."""
    most = {pa.int32(): 2 ** 31 - 1, pa.int64(): 2 ** 40}  # each type's own: none lost in the other
    pq.write_table(_events(["a"], token_count=pa.array([most[first]], first)), tmp_path / "a.parquet")
    pq.write_table(_events(["b"], token_count=pa.array([most[second]], second)), tmp_path / "b.parquet")
    pq.write_table(_events(["c"], token_count=pa.array([1], second)), tmp_path / "c.parquet")
    source = _open(url, str(tmp_path / "*.parquet"), request)
    try:
        assert source.events.token_count.sum().to_pyarrow().as_py() == 2 ** 40 + 2 ** 31
    finally:
        source.close()


@pytest.mark.parametrize("url", ENGINES)
@pytest.mark.parametrize("first,second,read", [
    # int32 beside float32 is a float32, as DuckDB reads it: 2^31 - 1 is rounded to 2^31
    (pa.array([2 ** 31 - 1], pa.int32()), pa.float32(), [2.0 ** 31, 1.5, 1.0]),
    # int64 beside a double is a double, as DuckDB reads it: 2^53 + 1 is rounded to 2^53
    (pa.array([2 ** 53 + 1], pa.int64()), pa.float64(), [2.0 ** 53, 1.5, 1.0]),
    (pa.array([0.1], pa.float32()), pa.float64(), [0.10000000149011612, 1.5, 1.0]),
], ids=["int-float", "bigint-double", "float-double"])
def test_integers_and_floats_across_parquet_files(url, first, second, read, tmp_path, request):
    """Numbers of another type in some files: Spark refused them (exit 2), and now reads each as DuckDB's
    union_by_name does, by the same type, whose rounding the report then shows on both engines."""
    pq.write_table(_events(["a"], cost_usd=first), tmp_path / "a.parquet")
    pq.write_table(_events(["b"], cost_usd=pa.array([1.5], second)), tmp_path / "b.parquet")
    pq.write_table(_events(["c"], cost_usd=pa.array([1.0], second)), tmp_path / "c.parquet")
    source = _open(url, str(tmp_path / "*.parquet"), request)
    try:
        got = source.events.order_by("conversation_id").cost_usd.to_pyarrow().to_pylist()
    finally:
        source.close()
    assert got == read


@pytest.mark.spark
@pytest.mark.parametrize("values", [pa.array(["2"]), pa.array([True])], ids=["text", "boolean"])
@pytest.mark.parametrize("layout", ["glob", "entries", "partitioned"])
def test_text_and_numbers_across_parquet_files_are_refused_by_spark(spark, values, layout, tmp_path, request):
    """A column that is a number in some files and text (or a boolean) in others: DuckDB reads it as text (or the
    booleans as 0 and 1), which no widening of a number is. Spark refuses it when it opens the files, with one line
    saying what to change and in which files: Spark's own error named the two types but no file, so in a folder of
    hundreds the odd one could not be found (found in a schema-drift audit). The files' shape is wrong: exit 2.
    A list Spark reads entry by entry (a file two entries name; a partitioned folder and files elsewhere) fell to
    Spark's own union of the types, read without a word (found in a review): refused the same way."""
    first = tmp_path / "a" / "date=1" / "a.parquet" if layout == "partitioned" else tmp_path / "a.parquet"
    first.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(_events(["a"], token_count=pa.array([1], pa.int32())), first)
    pq.write_table(_events(["b"], token_count=values), tmp_path / "b.parquet")
    pq.write_table(_events(["c"], token_count=pa.array([3], pa.int64())), tmp_path / "c.parquet")
    files = {"glob": str(tmp_path / "*.parquet"),
             "entries": [str(tmp_path / name) for name in ("a.parquet", "b.parquet", "c.parquet", "*.parquet")],
             "partitioned": [str(tmp_path / "a"), str(tmp_path / "b.parquet"), str(tmp_path / "c.parquet")]}[layout]
    with pytest.raises(InputError) as err:
        _open(SPARK, files, request)
    odd = "STRING" if values.type == pa.string() else "BOOLEAN"
    assert _one_line(err.value) == (
        f"source.files: column 'token_count' is {odd} in {tmp_path / 'b.parquet'} but INT or BIGINT in "
        f"{first} (and 1 more file); expected one type per column in every file (Spark cannot "
        f"read it as two types): rewrite the odd files with the others' type")


@pytest.mark.parametrize("url", ENGINES)
def test_a_parquet_file_without_rows_of_other_types_is_skipped(url, tmp_path, request):
    """A quiet day's export: no row, its columns written with other types (token_count int32, latency_ms as text)
    than the other files'. DuckDB reads the files; Spark failed every run, "the files give column 'token_count'
    different types" (exit 3) (found in a schema-drift audit). Now Spark skips such a file: it holds no event.
    A file with rows and another type is still refused, naming it."""
    pq.write_table(_events(["a1", "a2"], token_count=pa.array([1, 2], pa.int64()), latency_ms=pa.array([1.0, 3.0])),
                   tmp_path / "a.parquet")
    empty = pa.table({"conversation_id": pa.array([], pa.string()), "event_ts": pa.array([], pa.timestamp("us")),
                      "event_type": pa.array([], pa.string()), "token_count": pa.array([], pa.int32()),
                      "latency_ms": pa.array([], pa.string())})
    pq.write_table(empty, tmp_path / "b.parquet")
    source = _open(url, str(tmp_path / "*.parquet"), request)
    try:
        events = source.events
        got = events.agg(rows=events.count(), tokens=events.token_count.sum(), latency=events.latency_ms.mean())
        assert got.to_pyarrow().to_pylist() == [{"rows": 2, "tokens": 3, "latency": 2.0}]
    finally:
        source.close()
    if url == SPARK:
        pq.write_table(_events(["c1"], token_count=pa.array(["5"])), tmp_path / "c.parquet")
        pq.write_table(_events(["d1"], token_count=pa.array([6], pa.int64())), tmp_path / "d.parquet")
        with pytest.raises(InputError) as err:
            _open(url, str(tmp_path / "*.parquet"), request)
        assert _one_line(err.value).startswith(f"source.files: column 'token_count' is STRING in {tmp_path / 'c.parquet'} "
                                               f"but BIGINT in {tmp_path / 'a.parquet'} (and 1 more file);"), \
            _one_line(err.value)


@pytest.mark.parametrize("url", ENGINES)
def test_a_quiet_days_partition_folder_of_other_types_is_skipped_not_refused(url, tmp_path, request):
    """A partitioned export whose quiet day is a folder of its own holding one file without rows, of other types:
    Spark skips that file (it holds no event), so no file of its folder is read; the check for files in folders
    Spark never reads must not refuse it (a review of that check)."""
    (tmp_path / "date=2026-10-20").mkdir()
    (tmp_path / "date=2026-10-21").mkdir()
    pq.write_table(_events(["a1", "a2"], token_count=pa.array([1, 2], pa.int64())),
                   tmp_path / "date=2026-10-20" / "part-0.parquet")
    empty = pa.table({"conversation_id": pa.array([], pa.string()), "event_ts": pa.array([], pa.timestamp("us")),
                      "event_type": pa.array([], pa.string()), "token_count": pa.array([], pa.int32())})
    pq.write_table(empty, tmp_path / "date=2026-10-21" / "part-0.parquet")
    source = _open(url, str(tmp_path), request)
    try:
        events = source.events
        assert events.agg(rows=events.count(), tokens=events.token_count.sum()).to_pyarrow().to_pylist() == [
            {"rows": 2, "tokens": 3}]
    finally:
        source.close()


@pytest.mark.parametrize("url", ENGINES)
@pytest.mark.parametrize("layout", ["glob", "entries"])
def test_a_column_only_a_skipped_file_without_rows_has_is_there(url, layout, tmp_path, request):
    """A file without rows that Spark skips (its token_count of another type: see the test above) and the only one
    with cost_usd and model: DuckDB reads the columns, null, and the report gives the cost (none); on Spark they were
    absent and the report left the cost out with a note (found in a review). Now they are there, null, on both."""
    pq.write_table(_events(["a1", "a2"], token_count=pa.array([1, 2], pa.int64())), tmp_path / "a.parquet")
    empty = pa.table({"conversation_id": pa.array([], pa.string()), "event_ts": pa.array([], pa.timestamp("us")),
                      "event_type": pa.array([], pa.string()), "token_count": pa.array([], pa.int32()),
                      "cost_usd": pa.array([], pa.float64()), "model": pa.array([], pa.string())})
    pq.write_table(empty, tmp_path / "b.parquet")
    files = str(tmp_path / "*.parquet") if layout == "glob" else [str(tmp_path / "a.parquet"), str(tmp_path / "*")]
    source = _open(url, files, request)
    try:
        assert {"cost_usd", "model", "token_count"} <= source.present
        events = source.events
        got = events.agg(rows=events.count(), tokens=events.token_count.sum(), costs=events.cost_usd.count(),
                         models=events.model.count()).to_pyarrow().to_pylist()
    finally:
        source.close()
    assert got == [{"rows": 2, "tokens": 3, "costs": 0, "models": 0}]


def _column_read(url: str, files: str, column: str, request: pytest.FixtureRequest) -> tuple[str, object]:
    """How a source reads ``column``: its canonical type and its values' count, or the error refusing it."""
    try:
        source = _open(url, files, request)
    except InputError as exc:
        return "refused", _one_line(exc)
    try:
        events = source.events
        return str(events.schema()[column]), events.agg(n=events[column].count()).to_pyarrow().to_pylist()
    finally:
        source.close()


@pytest.mark.spark
@pytest.mark.parametrize("column,types,read", [
    ("cost_usd", (pa.bool_(), pa.float64()), "float64"),  # a boolean cost was refused (exit 2) on Spark
    ("cost_usd", (pa.float64(), pa.bool_()), "float64"),
    ("cost_usd", (pa.int64(), pa.string()), "float64"),  # text, cast as CSV's is
    # DuckDB read BLOB and refused it, Spark text; now both read binary without the UTF8 annotation as text
    ("agent_id", (pa.string(), pa.binary()), "string"),
    ("latency_ms", (pa.float64(), pa.date32()), None),  # a date, refused
    ("cost_usd", (pa.int32(), pa.decimal128(10, 2)), "float64"),
], ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v)) if isinstance(v, tuple) else None)
def test_a_column_only_skipped_files_without_rows_have_is_of_duckdbs_type(spark, column, types, read, tmp_path,
                                                                          request):
    """Two files without rows that Spark skips (see test_a_parquet_file_without_rows_of_other_types_is_skipped), the
    only ones with a column, of other types in each: Spark gave the column the first file's type, where DuckDB's
    union_by_name widens (a boolean beside a double is a double). Its values are null either way, but the type
    decides whether a report reads the column: Spark refused a boolean cost_usd (exit 2) where DuckDB reads it, and
    read a text agent_id DuckDB refuses as binary (found in a review). Now Spark reads it as DuckDB does."""
    pq.write_table(_events(["a1", "a2"], token_count=pa.array([1, 2], pa.int64())), tmp_path / "a.parquet")
    for name, kind in zip(("b", "c"), types):
        pq.write_table(pa.table({"conversation_id": pa.array([], pa.string()), "token_count": pa.array([], pa.int32()),
                                 column: pa.array([], kind)}), tmp_path / f"{name}.parquet")
    files = str(tmp_path / "*.parquet")
    duckdb, spark = _column_read("duckdb://", files, column, request), _column_read(SPARK, files, column, request)
    assert spark == duckdb
    assert duckdb == ((read, [{"n": 0}]) if read else ("refused", duckdb[1])), duckdb
    assert read or duckdb[1].startswith(f"column {column!r} ({column}) has type "), duckdb


@pytest.mark.parametrize("url", ENGINES)
def test_naive_and_utc_timestamps_across_parquet_files(url, tmp_path, request):
    """event_ts written with a time zone in some files (isAdjustedToUTC=true) and without in others (a writer
    that changed, a backfill from another tool): DuckDB reads both, naive as UTC (the event contract). Spark
    4 reads the naive one as TIMESTAMP_NTZ, which mergeSchema refuses beside TIMESTAMP: every run failed,
    'the files give column 'event_ts' different types' (exit 3), though each file was right (found in a Spark
    audit). Now both engines read the same instants, the naive ones as UTC."""
    utc = [datetime(2026, 10, 25, 23, 30, tzinfo=timezone.utc), datetime(2026, 10, 26, 0, 15, tzinfo=timezone.utc)]
    naive = [datetime(2026, 10, 25, 23, 45), datetime(2026, 10, 26, 0, 0, 0, 1)]
    for name, times, kind in (("a", utc, pa.timestamp("us", tz="UTC")), ("b", naive, pa.timestamp("us"))):
        pq.write_table(pa.table({"conversation_id": [f"{name}1", f"{name}2"], "event_ts": pa.array(times, kind),
                                 "event_type": ["message"] * 2}), tmp_path / f"{name}.parquet")
    source = _open(url, str(tmp_path / "*.parquet"), request)
    try:
        got = source.events.order_by("event_ts").to_pyarrow()
    finally:
        source.close()
    expected = sorted(zip([*utc, *(t.replace(tzinfo=timezone.utc) for t in naive)], ["a1", "a2", "b1", "b2"]))
    assert list(zip(got["event_ts"].to_pylist(), got["conversation_id"].to_pylist())) == expected


@pytest.mark.spark
def test_a_file_beside_partition_folders_is_not_left_out_silently(spark, tmp_path):
    """Spark reads a folder of date=…/ folders without the files beside them: a backfill dropped into
    events/ had its rows left out of every figure, silently (found in a Spark audit). Now it fails, naming it."""
    (tmp_path / "date=2026-10-20").mkdir()
    pq.write_table(_events(["a"]), tmp_path / "date=2026-10-20" / "part-0.parquet")
    pq.write_table(_events(["b"]), tmp_path / "backfill.parquet")
    (tmp_path / "_SUCCESS").touch()
    with pytest.raises(SourceError) as err:
        open_source(SourceConfig(url=SPARK, files=str(tmp_path)))
    line = _one_line(err.value)
    assert line.startswith("source.files: file:") and "backfill.parquet is beside the partition folders" in line, line
    source = open_source(SourceConfig(url=SPARK, files=str(tmp_path / "*")))  # a glob reads both
    try:
        assert source.events.count().to_pyarrow().as_py() == 2
    finally:
        source.close()


@pytest.mark.spark
def test_a_file_in_a_subfolder_that_is_no_partition_is_not_left_out_silently(spark, tmp_path):
    """Spark reads a folder's files and its partition folders' (name=value) only: events/2026/11/a.parquet beside
    events/b.parquet was left out, silently, where DuckDB reads both (5 events of 12; found in a review). Now it
    fails, naming it; a glob of each level reads it."""
    (tmp_path / "2026" / "11").mkdir(parents=True)
    pq.write_table(_events(["a1", "a2"]), tmp_path / "2026" / "11" / "a.parquet")
    pq.write_table(_events(["b1"]), tmp_path / "b.parquet")
    duck = open_source(SourceConfig(url="duckdb://", files=str(tmp_path)))
    try:
        assert duck.events.count().to_pyarrow().as_py() == 3
    finally:
        duck.close()
    with pytest.raises(SourceError) as err:
        open_source(SourceConfig(url=SPARK, files=str(tmp_path)))
    line = _one_line(err.value)
    assert "2026/11/a.parquet would be left out without a word" in line, line
    source = open_source(SourceConfig(url=SPARK, files=[str(tmp_path / "*.parquet"), str(tmp_path / "*" / "*" / "*.parquet")]))
    try:
        assert source.events.count().to_pyarrow().as_py() == 3
    finally:
        source.close()


@pytest.mark.parametrize("url", ENGINES)
def test_a_partitioned_folder_listed_with_a_file_elsewhere(url, tmp_path, request):
    """files = ["events", "backfill/x.parquet"]: a folder of date=…/ folders and a file outside it, a list as README
    allows. DuckDB reads both; Spark read the list as one table with one root and failed every run with
    [CONFLICTING_DIRECTORY_STRUCTURES] (exit 3) (found in a Spark audit). Now each entry is read on its own."""
    for day, ids in (("2026-10-20", ["a1", "a2"]), ("2026-10-21", ["b1"])):
        (tmp_path / "events" / f"date={day}").mkdir(parents=True)
        pq.write_table(_events(ids), tmp_path / "events" / f"date={day}" / "part-0.parquet")
    (tmp_path / "backfill").mkdir()
    pq.write_table(_events(["c1", "c2"], cost_usd=pa.array([0.5, 0.25])), tmp_path / "backfill" / "x.parquet")
    if url.startswith("pyspark"):
        request.getfixturevalue("spark")
    source = open_source(SourceConfig(url=url, files=[str(tmp_path / "events"), str(tmp_path / "backfill" / "x.parquet")]))
    try:
        got = source.events.to_pyarrow()
    finally:
        source.close()
    assert sorted(got["conversation_id"].to_pylist()) == ["a1", "a2", "b1", "c1", "c2"]
    assert sum(c for c in got["cost_usd"].to_pylist() if c is not None) == 0.75


@pytest.mark.parametrize("url", ENGINES)
@pytest.mark.parametrize("files", ["events/*", "out/*.parquet", "out/*/*"])
def test_a_glob_that_matches_folders_reads_their_files(url, files, tmp_path, request):
    """A glob matching folders: events/* over date=…/ folders and a backfill beside them (as README advises for
    Spark), or out/*.parquet over the folders Spark itself writes (events.parquet/part-0….parquet, _SUCCESS,
    .crc). Spark reads every file under a matched folder; DuckDB kept the glob's files only, so it read the
    backfill alone, without a word, or found no file (exit 2) (found in a Spark audit). Now both read the same
    events, and a glob's _SUCCESS is skipped as Spark skips it (out/*/*: it failed, 'too small to be a Parquet
    file', exit 3)."""
    if files == "events/*":
        for day, ids in (("2026-10-20", ["a1", "a2"]), ("2026-10-21", ["b1"])):
            (tmp_path / "events" / f"date={day}").mkdir(parents=True)
            pq.write_table(_events(ids), tmp_path / "events" / f"date={day}" / "part-0.parquet")
        pq.write_table(_events(["c1", "c2"]), tmp_path / "events" / "backfill.parquet")
    else:
        for name, ids in (("old.parquet", ["a1", "a2", "b1"]), ("new.parquet", ["c1", "c2"])):
            folder = tmp_path / "out" / name
            folder.mkdir(parents=True)
            pq.write_table(_events(ids), folder / "part-00000-1f2e.snappy.parquet")
            (folder / "_SUCCESS").touch()
            (folder / ".part-00000-1f2e.snappy.parquet.crc").write_bytes(b"crc")
    source = _open(url, str(tmp_path / files), request)
    try:
        got = source.events.to_pyarrow()
    finally:
        source.close()
    assert sorted(got["conversation_id"].to_pylist()) == ["a1", "a2", "b1", "c1", "c2"]


SCENARIO = "berlin-fall-week"


def _trap_report(url: str, files: list[str], request: pytest.FixtureRequest) -> list[str]:
    """The trap scenario's report read from ``files`` by ``url``'s engine, against the plain-Python reference:
    the mismatches (Spark's quantiles within its documented 1%)."""
    tz, kind, key = SCENARIOS[SCENARIO]
    source = _open(url, files, request)
    try:
        data = compute_report(source, ReportConfig(id="trap", period=kind, timezone=tz),
                              parse_period(kind, key, tz), now=now_for(SCENARIO))
    finally:
        source.close()
    reference = Reference(trap_rows(SCENARIO), tz, kind, key, now_for(SCENARIO))
    return compare_report(json.loads(data.to_json()), reference, quantile_rel=0.01 if url == SPARK else None)


@pytest.mark.parametrize("url", ENGINES)
@pytest.mark.parametrize("files", [
    ["events/*", "events/part-0.parquet"],  # a glob and a file it matches
    ["events", "events/part-1.parquet", "events/../events/part-0.parquet"],  # a folder, a file in it, the same file
    ["csv/*.csv", "csv/events.csv"],
])
def test_a_file_named_by_two_entries_is_read_once(url, files, tmp_path, request):
    """files = ["events/*", "events/part-0.parquet"] (or a folder and a file in it): both engines read the file once
    per entry, its events doubled in every figure without a word (found in a review). Now a file is read once,
    known by its real path, and the report is the reference's."""
    write_parquet(trap_rows(SCENARIO), tmp_path / "events")
    write_csv(trap_rows(SCENARIO), tmp_path / "csv")
    mismatches = _trap_report(url, [str(tmp_path / f) for f in files], request)
    assert not mismatches, "\n".join(mismatches)


def _report_doc(url: str, files: list[str], request: pytest.FixtureRequest) -> dict:
    """The trap scenario's report.json read from ``files`` by ``url``'s engine, without when it was made."""
    tz, kind, key = SCENARIOS[SCENARIO]
    source = _open(url, files, request)
    try:
        data = compute_report(source, ReportConfig(id="trap", period=kind, timezone=tz),
                              parse_period(kind, key, tz), now=now_for(SCENARIO))
    finally:
        source.close()
    doc = json.loads(data.to_json())
    doc.pop("generated_at")
    return doc


def _differences(got: object, expected: object, where: str = "") -> list[str]:
    """Where two report.json documents differ: counts and text exactly, other numbers to 1e-12 of their value (the
    engines add floats in another order); a number read as a float where the other read a double differs by more."""
    if isinstance(got, dict) and isinstance(expected, dict) and got.keys() == expected.keys():
        return [d for key in got for d in _differences(got[key], expected[key], f"{where}.{key}")]
    if isinstance(got, list) and isinstance(expected, list) and len(got) == len(expected):
        return [d for i, pair in enumerate(zip(got, expected)) for d in _differences(*pair, f"{where}[{i}]")]
    if isinstance(got, float) and isinstance(expected, float) and math.isclose(got, expected, rel_tol=1e-12):
        return []
    return [] if got == expected and type(got) is type(expected) else [f"{where}: {got!r}, expected {expected!r}"]


@pytest.mark.spark
@pytest.mark.parametrize("column,types", [
    ("token_count", (pa.int32(), pa.int64(), pa.int16())),  # bigint
    ("token_count", (pa.int64(), pa.float64(), pa.int32())),  # double: a fraction would be an invalid count
    ("latency_ms", (pa.float32(), pa.float64(), pa.float32())),  # double
    ("latency_ms", (pa.int32(), pa.float32(), pa.int64())),  # float, as DuckDB reads them
    ("cost_usd", (pa.float32(), pa.int64(), pa.float64())),  # double
], ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v)))
def test_numbers_of_other_types_across_parquet_files_are_read_as_by_duckdb(spark, column, types, tmp_path, request):
    """A column written as int32 in some files and int64 in others (float and double, integers and doubles: a
    writer that changed, a backfill from another tool): DuckDB reads them as one type, the wider, and Spark failed
    every run (exit 2 naming the files; exit 3 before: found in a schema-drift audit). Now Spark reads each set of
    files alike on its own, casts its numbers to DuckDB's type and joins them by name: the reports are the same."""
    table = to_arrow(trap_rows(SCENARIO))
    step = -(-table.num_rows // len(types))
    (tmp_path / "events").mkdir()
    for i, kind in enumerate(types):
        part = table.slice(i * step, step)
        # unsafe: a NaN or a fraction of the trap data as an integer is some integer, the same for both engines
        part = part.set_column(part.schema.get_field_index(column), column, part[column].cast(kind, safe=False))
        pq.write_table(part, tmp_path / "events" / f"part-{i}.parquet")
    files = [str(tmp_path / "events")]
    duckdb, spark = _report_doc("duckdb://", files, request), _report_doc(SPARK, files, request)
    mismatches = _differences(spark, duckdb)
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("url", ENGINES)
@pytest.mark.parametrize("files", [["events"], ["events/*/*.parquet"], ["events/part=b/x.parquet", "events/part=a"]])
def test_an_all_null_column_beside_typed_ones_is_read(url, files, tmp_path, request):
    """pandas writes a column of None as Parquet's null type, which Spark 4.0 reads as INT: a day with no error and no
    latency (error_type and latency_ms all None) beside days where they are text and a double failed every Spark
    run, "the files give column 'error_type' different types" (exit 3), where DuckDB reads the nulls as nulls of the
    other files' type (found in a review). Now Spark reads them as DuckDB does; the partition folders still count."""
    rows = trap_rows(SCENARIO)
    empty = [r for r in rows if r["error_type"] is None and r["latency_ms"] is None]
    for part, some in (("a", [r for r in rows if r not in empty]), ("b", empty)):
        table = to_arrow(some)
        if part == "b":
            for column in ("error_type", "latency_ms"):
                table = table.set_column(table.schema.get_field_index(column), column, pa.nulls(len(some)))
        (tmp_path / "events" / f"part={part}").mkdir(parents=True)
        pq.write_table(table, tmp_path / "events" / f"part={part}" / "x.parquet")
    assert pq.read_schema(tmp_path / "events" / "part=b" / "x.parquet").field("error_type").type == pa.null()
    mismatches = _trap_report(url, [str(tmp_path / f) for f in files], request)
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("url", ENGINES)
@pytest.mark.parametrize("kinds", [("ns-utc", "ns-naive"), ("ns-utc", "us-utc"), ("ns-naive",)])
def test_nanosecond_timestamps_are_read(url, kinds, tmp_path, request):
    """pandas' datetime64[ns], written by pyarrow without coercion (Parquet 2.6), is TIMESTAMP(NANOS), which Spark 4
    refuses: every run failed "Illegal Parquet type: INT64 (TIMESTAMP(NANOS,true))" (exit 3), where DuckDB reads it
    (found in a review). Now Spark reads it as DuckDB does, with a time zone or naive (UTC), and beside microseconds."""
    table = to_arrow(trap_rows(SCENARIO))
    step = -(-table.num_rows // len(kinds))
    (tmp_path / "events").mkdir()
    for i, kind in enumerate(kinds):
        part = table.slice(i * step, step)
        unit, zone = kind.split("-")
        column = part.column("event_ts").cast(pa.timestamp(unit, tz="UTC" if zone == "utc" else None))
        part = part.set_column(part.schema.get_field_index("event_ts"), "event_ts", column)
        pq.write_table(part, tmp_path / "events" / f"part-{i}.parquet", version="2.6", coerce_timestamps=None)
    assert pq.read_schema(tmp_path / "events" / "part-0.parquet").field("event_ts").type.unit == "ns"
    mismatches = _trap_report(url, [str(tmp_path / "events")], request)
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("url", ENGINES)
def test_partition_folder_values_are_read_as_written(url, tmp_path, request):
    """Events partitioned by agent (events/agent_id=007/…): Spark typed the folder values it could as numbers, so
    agents 007 and 012 were '7' and '12' in every by-agent figure, where DuckDB reads '007' (found in a Spark
    audit). Now a partition value is text on both engines, cast like any column to its canonical type."""
    for agent, ids in (("007", ["a1", "a2"]), ("012", ["b1"])):
        (tmp_path / "events" / f"agent_id={agent}").mkdir(parents=True)
        pq.write_table(_events(ids), tmp_path / "events" / f"agent_id={agent}" / "part-0.parquet")
    source = _open(url, str(tmp_path / "events"), request)
    try:
        got = source.events.order_by("conversation_id").to_pyarrow()
    finally:
        source.close()
    assert list(zip(got["conversation_id"].to_pylist(), got["agent_id"].to_pylist())) == \
        [("a1", "007"), ("a2", "007"), ("b1", "012")]


@pytest.mark.parametrize("url,fmt", [
    pytest.param("duckdb://", "parquet", id="duckdb-parquet"), pytest.param("duckdb://", "csv", id="duckdb-csv"),
    pytest.param(SPARK, "parquet", id="spark-parquet", marks=pytest.mark.spark),
    # Spark read CSV files with one header: see test_csv_files_whose_columns_differ_are_read_by_header.
    pytest.param(SPARK, "csv", id="spark-csv", marks=pytest.mark.spark),
])
@pytest.mark.parametrize("canon,old", [("latency_ms", "latency"), ("event_ts", "created_at")])
def test_a_mapped_column_renamed_between_files_is_refused(url, fmt, canon, old, tmp_path, request):
    """Last year's files call a column ``latency`` (mapped: latency_ms = "latency"), this year's ``latency_ms``.
    Read by name, each name was null in the other files: the newer files' latencies left every latency figure
    (or, for event_ts, their every event was counted missing_required), without a word, on both engines (found
    in a schema-drift audit). Now the run stops with one line naming the mapping (exit 2)."""
    base = dict(latency_ms=pa.array([100.0, 200.0]))
    old_rows = _events(["a1", "a2"], **base).rename_columns(
        [old if c == canon else c for c in _events(["a1", "a2"], **base).column_names])
    new_rows = _events(["b1", "b2"], latency_ms=pa.array([300.0, 400.0]))
    if fmt == "parquet":
        pq.write_table(old_rows, tmp_path / "a.parquet")
        pq.write_table(new_rows, tmp_path / "b.parquet")
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(old_rows, tmp_path / "a.csv")
        pacsv.write_csv(new_rows, tmp_path / "b.csv")
    with pytest.raises(InputError) as err:
        _open(url, str(tmp_path / f"*.{fmt}"), request, columns={canon: old})
    assert _one_line(err.value) == (
        f"source.columns.{canon}: 2 rows of the files have a value in {canon!r} and none in {old!r}, the column "
        f"{canon} is mapped to, so the mapping would leave them out (a column renamed between files?); expected the "
        f"column under one name in every file: rewrite the files that use the other name")
    # Without the canonical name in any file, a mapped column only some files have is read, null in the others.
    (tmp_path / "only").mkdir()
    pq.write_table(old_rows, tmp_path / "only" / "a.parquet")
    newer = _events(["b1", "b2"])
    pq.write_table(newer.drop_columns([c for c in newer.column_names if c == canon]), tmp_path / "only" / "b.parquet")
    source = _open(url, str(tmp_path / "only"), request, columns={canon: old})
    try:
        assert source.events[canon].count().to_pyarrow().as_py() == 2
    finally:
        source.close()


# -- 4. settings that would change a report ---------------------------------------------------------

@pytest.mark.spark
@pytest.mark.parametrize("key,value,why", [
    ("spark.sql.ansi.enabled", False, "with ANSI SQL off"),
    ("SPARK.SQL.ANSI.ENABLED", "false", "with ANSI SQL off"),
    ("spark.master", "local[1]", "the master is the one in source.url"),
    ("Spark.Master", "local[1]", "the master is the one in source.url"),
    ("spark.sql.session.timeZone", "Europe/Berlin", "event times are read in UTC"),
    ("spark.sql.session.timezone", "Europe/Berlin", "event times are read in UTC"),
    ("spark.sql.csv.parser.columnPruning.enabled", True, "with CSV column pruning on"),
    ("spark.sql.sources.partitionColumnTypeInference.enabled", True, "with it on, Spark reads a partition folder's"),
    # With it on, a naive file beside one with a time zone was refused: "column 'event_ts' is TIMESTAMP in a.parquet
    # but TIMESTAMP_NTZ in b.parquet ... rewrite the odd files", where DuckDB reads both, the naive one as UTC (found
    # in a review; see test_naive_and_utc_timestamps_across_parquet_files).
    ("spark.sql.parquet.inferTimestampNTZ.enabled", True, "naive Parquet timestamps are read as UTC"),
])
def test_spark_settings_that_change_a_report_are_refused(spark, tmp_path, key, value, why):
    """As the PostgreSQL source refuses `timezone`: found in a Spark audit, ANSI off turned invalid values into
    nulls, spark.master overrode the URL's master, and a session time zone was silently reset to UTC."""
    pq.write_table(_events(["a"]), tmp_path / "a.parquet")
    with pytest.raises(InputError) as err:
        open_source(SourceConfig(url=SPARK, files=str(tmp_path / "a.parquet"), spark_conf={key: value}),
                    config_file="agentdigest.toml")
    line = _one_line(err.value)
    assert line.startswith(f"agentdigest.toml: source.spark_conf.{key}: agentdigest sets this itself ({why}"), line
    assert line.endswith("expected it left out"), line


@pytest.mark.spark
@pytest.mark.parametrize("key,expected", [
    ("spark.executor.memroy", "spark.executor.memory"),
    ("spark.sql.shufle.partitions", "spark.sql.shuffle.partitions"),
    ("spark.sql.Shuffle.Partitions", "spark.sql.shuffle.partitions"),  # Spark's names are case-sensitive
    ("spark.excutor.memroy", "spark.executor.memory"),  # a typo in each of two parts (was passed on: 3 edits)
    ("spark.sql.shuffle.partition", "spark.sql.shuffle.partitions"),
    ("executor.memory", "spark.executor.memory"),  # without "spark.": passed on, and ignored by Spark
    ("sql.Shuffle.Partitions", "spark.sql.shuffle.partitions"),
    ("hive.metastore.uris", None),  # not Spark's, passed on as written
    ("spark.python.worker.memory", None),  # registered by Spark only when its Python workers start
    ("spark.yarn.queue", None),
    ("spark.hadoop.fs.s3a.connection.maximum", None),  # passed to Hadoop as written: no registry to ask
    ("spark.my.own.setting", None),
    ("spark.sql.shuffle.partitions", None),
])
def test_a_misspelt_spark_setting_is_a_config_error(spark, tmp_path, key, expected):
    """Spark ignores a setting name it does not know: "spark.executor.memroy" = "8g" ran with the default memory
    and said nothing (found in a Spark audit). A near miss of a name Spark knows is refused, naming it; a name
    near none (a setting of Spark's own that its registry lacks, or a plugin's) is passed on as before."""
    pq.write_table(_events(["a"]), tmp_path / "a.parquet")
    cfg = SourceConfig(url=SPARK, files=str(tmp_path / "a.parquet"), spark_conf={key: "64"})
    if expected is None:
        open_source(cfg).close()
        return
    with pytest.raises(InputError) as err:
        open_source(cfg, config_file="agentdigest.toml")
    assert _one_line(err.value) == (f"agentdigest.toml: source.spark_conf.{key}: Spark has no setting of this name "
                                    f"and would ignore it (expected {expected})")


@pytest.mark.parametrize("files,error,expected", [
    ("nothere/*.parquet", InputError, "source.files: no file matches '{d}/nothere/*.parquet'"),
    ("empty", InputError, "source.files: no file in the folder '{d}/empty'"),
    ("mixed/*", SourceError, "source.files: cannot read ['{d}/mixed/*']: {d}/mixed/b.csv is CSV but {d}/mixed/a.parquet "
                             "is not, and files are read as CSV only when every file ends in .csv, .csv.gz or .tsv; "
                             "expected files of one kind (convert the odd ones)"),
])
def test_local_files_spark_cannot_read_are_said_before_spark_starts(tmp_path, monkeypatch, files, error, expected):
    """A glob matching nothing, an empty folder, CSV beside Parquet: Spark started (25 s on a busy machine) and said
    it with its own PATH_NOT_FOUND or "Could not read footer" first in the line (found trying the usual Spark-user
    paths). Said before Spark or Java is looked for: here without Java, which would otherwise be the error."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        skip_or_fail("pyspark is not installed (pip install -e '.[spark]')")
    (tmp_path / "empty").mkdir()
    (tmp_path / "mixed").mkdir()
    pq.write_table(_events(["a"]), tmp_path / "mixed" / "a.parquet")
    (tmp_path / "mixed" / "b.csv").write_text("event_id,conversation_id,event_ts,event_type\ne1,a,2026-10-19,message\n")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))
    with pytest.raises(error) as err:
        open_source(SourceConfig(url=SPARK, files=str(tmp_path / files)))
    assert type(err.value) is error and _one_line(err.value) == expected.format(d=tmp_path)


@pytest.mark.parametrize("entry", ["hdfs:/events/nothere.parquet", "s3a://bucket/nothere/*.parquet",
                                   "file:/nothere/x.parquet", "{d}/{{2025,2026}}/*.parquet", "{d}/[^a]*.parquet"])
def test_entries_spark_lists_itself_are_left_to_spark(tmp_path, entry):
    """A URL, or a glob in Hadoop's own syntax that Python's glob does not read, is not refused before Spark
    starts for matching no local file (see test_local_files_spark_cannot_read_are_said_before_spark_starts)."""
    from agentdigest.spark_file_errors import refuse_local_files

    refuse_local_files([entry.format(d=tmp_path)])


@pytest.mark.spark
def test_ansi_sql_turned_off_in_the_session_is_turned_back_on(spark, tmp_path):
    """A session (or spark-defaults.conf) with ANSI SQL off read a latency of 'fast' as null: a metric
    quietly computed from fewer values. agentdigest's session pins it on, so the value is an error."""
    pq.write_table(_events(["a", "b"], latency_ms=["12.5", "fast"]), tmp_path / "a.parquet")
    spark.conf.set("spark.sql.ansi.enabled", "false")
    try:
        source = open_source(SourceConfig(url=SPARK, files=str(tmp_path / "a.parquet")))
        try:
            assert spark.conf.get("spark.sql.ansi.enabled") == "true"
            with pytest.raises(InputError, match="cannot be converted to the canonical type"):
                try:
                    source.events.latency_ms.count().to_pyarrow()
                except Exception as exc:  # noqa: BLE001 - classified as a run would
                    raise query_error(exc) from exc
        finally:
            source.close()
    finally:
        spark.conf.set("spark.sql.ansi.enabled", "true")


def test_a_refused_spark_setting_is_exit_2_before_spark_starts(tmp_path):
    """Through the CLI: one line naming the key, exit 2 (no JVM is started for a config error)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        skip_or_fail("pyspark is not installed (pip install -e '.[spark]')")
    pq.write_table(_events(["a"]), tmp_path / "events.parquet")
    (tmp_path / "agentdigest.toml").write_text('[source]\nurl = "pyspark://local[1]"\nfiles = ["events.parquet"]\n'
                                               '[source.spark_conf]\n"spark.master" = "yarn"\n[[reports]]\nid = "r"\n')
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", "agentdigest.toml"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "source.spark_conf.spark.master: agentdigest sets this itself" in line, line
    assert "ok" not in done.stdout, done.stdout  # "config ...: ok" came first (found in a new-user audit)


@pytest.mark.spark
@pytest.mark.parametrize("key,value,said", [
    ("spark.driver.memory", "lots", "Invalid maximum heap size: -Xmxlots"),
    # spark-submit's own check names no key: was "cannot start Spark (Executor memory must be ...)", exit 3
    ("spark.executor.memory", "lots", 'Executor memory must be a positive number; expected a size such as "8g"'),
    ("spark.executor.cores", "0", "Executor cores must be a positive number; expected a whole number above 0"),
])
def test_a_setting_the_jvm_refuses_is_exit_2_naming_the_key(tmp_path, monkeypatch, key, value, said):
    """A [source.spark_conf] value the JVM itself refuses ("spark.driver.memory" = "lots": -Xmxlots) stopped Java
    before Spark could say anything: the run ended 'cannot start Spark ([JAVA_GATEWAY_EXITED] Java gateway process
    exited before sending its port number.)' (exit 3), naming neither the key nor the cause, which only the log
    held (found in a Spark audit). A value Spark refuses is a config error naming the key (README, Spark)."""
    pq.write_table(_events(["a"]), tmp_path / "events.parquet")
    (tmp_path / "agentdigest.toml").write_text('[source]\nurl = "pyspark://local[1]"\nfiles = ["events.parquet"]\n'
                                               f'[source.spark_conf]\n"{key}" = "{value}"\n[[reports]]\nid = "r"\n')
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the log of a Spark that failed to start is kept: not in /tmp
    done = _spark_cli(tmp_path, "check", "--config", "agentdigest.toml")
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert f"agentdigest.toml: source.spark_conf.{key}: Spark refused the setting (" in line, line
    assert said in line, line


# -- 6. no ./spark-warehouse ------------------------------------------------------------------------

def _check_table_source(tmp_path: Path, spark_conf: str = "") -> tuple[Path, Path]:
    """``agentdigest check`` of a catalog table source, in its own process: (working dir, TMPDIR)."""
    work, temp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    temp.mkdir()
    (work / "agentdigest.toml").write_text('[source]\nurl = "pyspark://local[1]"\ntable = "agent_events"\n'
                                           f'{spark_conf}[[reports]]\nid = "r"\n')
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", "agentdigest.toml"],
                          capture_output=True, text=True, cwd=work, timeout=300, env={**os.environ, "TMPDIR": str(temp)})
    assert done.returncode == 2 and "source.table: table 'agent_events' not found" in done.stderr, done.stderr
    return work, temp


@pytest.mark.spark
def test_a_catalog_lookup_leaves_no_spark_warehouse_behind(spark, tmp_path):
    """A `table` source's catalog lookup made an empty ./spark-warehouse in the working directory (found
    in a Spark audit). Spark's warehouse is now a temporary folder, removed when the process ends."""
    work, temp = _check_table_source(tmp_path)
    assert not (work / "spark-warehouse").exists()
    assert list(temp.glob("agentdigest-spark-warehouse-*")) == []  # removed at exit
    # The same for the sessions agentdigest makes in this process (the test suite's own).
    assert "agentdigest-spark-warehouse-" in spark.conf.get("spark.sql.warehouse.dir")


@pytest.mark.spark
def test_a_warehouse_the_user_sets_is_kept(spark, tmp_path):
    """The temporary warehouse is only a default: [source.spark_conf] "spark.sql.warehouse.dir" wins."""
    mine = tmp_path / "mine"
    work, _ = _check_table_source(tmp_path, f'[source.spark_conf]\n"spark.sql.warehouse.dir" = "{mine}"\n')
    assert mine.is_dir() and not (work / "spark-warehouse").exists()


@pytest.mark.spark
def test_spark_log_kept_after_a_failed_start_is_private(tmp_path):
    """Found in a security audit: the JVM's log, kept in $TMPDIR when Spark fails to start (its stack traces
    may quote event values and file URLs), was created world-readable (0644) under a predictable name."""
    work, temp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    temp.mkdir()
    pq.write_table(_events(["a"]), work / "x.parquet")  # a file to read: Spark's start is what fails
    # YARN without HADOOP_CONF_DIR: spark-submit stops at once (a master Spark cannot parse is now refused before
    # Spark starts, exit 2, and leaves no log: test_spark_url.py)
    (work / "agentdigest.toml").write_text('[source]\nurl = "pyspark://yarn"\nfiles = "x.parquet"\n'
                                           '[[reports]]\nid = "r"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("HADOOP_CONF_DIR", "YARN_CONF_DIR")}
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", "agentdigest.toml"],
                          capture_output=True, text=True, cwd=work, timeout=300, env={**env, "TMPDIR": str(temp)})
    logs = list(temp.glob("agentdigest-spark-*.log"))
    assert done.returncode == 3 and len(logs) == 1 and str(logs[0]) in done.stderr, done.stderr
    assert logs[0].stat().st_mode & 0o777 == 0o600


@pytest.mark.spark
@pytest.mark.parametrize("table", ["analytics.agent_events", "spark_catalog.analytics.agent_events", "agent_events"])
def test_a_table_not_in_the_in_memory_catalog_says_how_to_read_a_metastore(spark, table):
    """README's `table = "db.agent_events"` of a Hive metastore was "not found" and said no more: the session
    agentdigest builds has Spark's in-memory catalog unless spark.sql.catalogImplementation = "hive" (found following
    README's Spark instructions with a local Derby metastore: with the setting, check read the table)."""
    with pytest.raises(InputError) as caught:
        open_source(SourceConfig(url="pyspark://local[1]", table=table))
    assert str(caught.value) == (f"source.table: table {table!r} not found in pyspark://local[1]; Spark's catalog is "
                                 "in-memory here, this session's own: for a Hive metastore's tables, expected "
                                 '"spark.sql.catalogImplementation" = "hive" in [source.spark_conf]'), str(caught.value)


@pytest.mark.spark
@pytest.mark.parametrize("database,table,expected", [
    ("other_db", "agent_events", "; it is in another database: write other_db.agent_events"),
    # Spark lists this database as `2024` (the name its parser reads): it was asked for `2024`'s tables, and not found
    ("2024", "agent_events", '; it is in another database: write "2024".agent_events'),
    # asked of Spark as spark_catalog.2024, which its parser refused: no hint
    ("2024", 'spark_catalog."2024".agent_evnts', """ (did you mean 'spark_catalog."2024".agent_events'?)"""),
], ids=["plain", "digits", "digits-typo"])
def test_a_catalog_table_in_another_database_is_named_with_it(spark, database, table, expected):
    """`table = "agent_events"` for meant_db.agent_events said only "not found" (found checking the engines: PostgreSQL
    names the schema holding it); the database is named now, as on DuckDB, when the catalog has at most 20. Spark is
    asked without its deprecated calls: tableExists(table, db) warned on stderr (FutureWarning) in every such run."""
    quoted = f"`{database}`"
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {quoted}")
    spark.sql(f"CREATE TABLE IF NOT EXISTS {quoted}.agent_events (conversation_id STRING, event_ts TIMESTAMP, "
              "event_type STRING) USING parquet")
    try:
        with warnings.catch_warnings(record=True) as said, pytest.raises(InputError) as caught:
            warnings.simplefilter("always")
            open_source(SourceConfig(url="pyspark://local[1]", table=table))
        assert str(caught.value) == f"source.table: table {table!r} not found in pyspark://local[1]{expected}", \
            str(caught.value)
        deprecated = [str(w.message) for w in said if issubclass(w.category, (DeprecationWarning, FutureWarning))]
        assert deprecated == [], deprecated
    finally:
        spark.sql(f"DROP DATABASE IF EXISTS {quoted} CASCADE")


@pytest.mark.spark
@pytest.mark.parametrize("table,meant", [
    ("typo_evnts", "typo_events"),  # a temporary view of the session
    # ... by its name alone, which reads it: it is in no database (was asked 'meant_db.typo_events', which opened but
    # whose every query failed, "not found")
    ("meant_db.typo_evnts", "typo_events"),
    ("meant_db.agent_evnts", "meant_db.agent_events"),  # was asked 'agent_events', which is not found either
    ("spark_catalog.meant_db.agent_evnts", "spark_catalog.meant_db.agent_events"),
    ("meant_db.conversations", None),
], ids=["view", "view-with-database", "database", "catalog", "unlike"])
def test_a_mistyped_catalog_table_is_asked_did_you_mean(spark, table, meant):
    """A mistyped `table` is asked "did you mean ...?" on Spark's catalog as on DuckDB and PostgreSQL, with the
    database it was written with. A table of another database than the current one is not looked for: that
    lists every database of the metastore, one call each."""
    spark.sql("CREATE DATABASE IF NOT EXISTS meant_db")
    spark.sql("CREATE TABLE IF NOT EXISTS meant_db.agent_events (conversation_id STRING, event_ts TIMESTAMP, "
              "event_type STRING) USING parquet")
    spark.sql("SELECT 'c1' AS conversation_id, current_timestamp() AS event_ts, 'message' AS event_type"
              ).createOrReplaceTempView("typo_events")
    spark.sql("SELECT 1 AS x").createOrReplaceTempView("ibis_read_parquet_planted")  # as Ibis names a file it read
    try:
        with pytest.raises(InputError) as caught:
            open_source(SourceConfig(url="pyspark://local[1]", table=table))
        # neither found nor meant: the database's tables, not the session's views (in no database; found in a CI run,
        # a session that had read files listed 136 of Ibis's views there)
        assert str(caught.value) == (f"source.table: table {table!r} not found in pyspark://local[1]"
                                     + (f" (did you mean {meant!r}?)" if meant else
                                        "; tables and views there: meant_db.agent_events")), str(caught.value)
        if meant:  # the name asked is one that reads
            source = open_source(SourceConfig(url="pyspark://local[1]", table=meant))
            try:
                assert source.raw.count().execute() == (1 if "typo" in meant else 0)
            finally:
                source.close()
    finally:
        spark.sql("DROP DATABASE IF EXISTS meant_db CASCADE")
        spark.catalog.dropTempView("typo_events")
        spark.catalog.dropTempView("ibis_read_parquet_planted")


@pytest.mark.spark
def test_a_table_written_without_a_database_lists_the_sessions_views_but_not_ibis_own(spark):
    """A name written without a database lists the current database's tables and the session's views by their names
    alone, but never Ibis's views of the files it read (other tests' tables and views may be listed too)."""
    spark.sql("CREATE TABLE IF NOT EXISTS listed_events (conversation_id STRING) USING parquet")  # in `default`
    spark.sql("SELECT 'c1' AS conversation_id").createOrReplaceTempView("typo_events")
    spark.sql("SELECT 1 AS x").createOrReplaceTempView("ibis_read_parquet_planted")
    try:
        with pytest.raises(InputError) as caught:
            open_source(SourceConfig(url="pyspark://local[1]", table="conversations"))
        message = str(caught.value)
        assert message.startswith("source.table: table 'conversations' not found in pyspark://local[1]; tables and "
                                  "views there: "), message
        listed = message.split("; tables and views there: ", 1)[1].split(" and ")[0].split(", ")
        assert "ibis_read_parquet_planted" not in listed and not [n for n in listed if n.startswith("ibis_")]
        assert {"listed_events", "typo_events"} <= set(listed) or message.endswith(" more"), message
    finally:
        spark.sql("DROP TABLE IF EXISTS listed_events")
        spark.catalog.dropTempView("typo_events")
        spark.catalog.dropTempView("ibis_read_parquet_planted")


# -- 7. CSV rows of the wrong shape --------------------------------------------------------------

def _spark_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI in a process of its own (its own Spark), after the same checks as the ``spark`` fixture."""
    try:
        import pyspark  # noqa: F401
        from agentdigest.spark_url import check_java
        check_java()
    except (ImportError, SourceError) as exc:
        skip_or_fail(str(exc))
    return subprocess.run([sys.executable, "-m", "agentdigest.cli", *args], cwd=home, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def _monthly_csv_report(home: Path, url: str, archive: str = "reports") -> tuple[subprocess.CompletedProcess, Path, dict]:
    """October's monthly report (json, txt) of ``home``/events.csv (columns Conversation, Timestamp, Type, Latency)
    through ``url``'s engine, run by the CLI: the process, the report's folder and its report.json."""
    (home / "agentdigest.toml").write_text(f"""[source]
url = "{url}"
files = "events.csv"
[source.columns]
conversation_id = "Conversation"
event_ts = "Timestamp"
event_type = "Type"
latency_ms = "Latency"

[archive]
path = "{archive}"

[[reports]]
id = "monthly"
period = "month"
timezone = "UTC"
""")
    done = _spark_cli(home, "run", "--dry-run", "--format", "json,txt", "--period", "2026-10", "--now", "2026-11-28T00:00:00Z")
    assert done.returncode == 0, done.stderr
    folder = home / archive / "monthly" / "2026-10"
    return done, folder, json.loads((folder / "report.json").read_text())


@pytest.mark.spark
def test_csv_rows_of_the_wrong_shape_are_counted_and_left_out_by_spark(tmp_path):
    """Spark's default read kept a row with a field too many without its extra field, and a row with a field too
    few with nulls for the missing ones: altered events in every figure, counted nowhere, where DuckDB counts
    them and leaves them out. Now Spark does the same; the first is named by its file and row, never its text."""
    rows = [f"c{i},2026-10-02 10:00:00,{'resolution' if i % 3 == 0 else 'message'},12.5\n" for i in range(200)]
    rows[40] = "c40,2026-10-02 10:00:00,resolution,12.5,ann@example.com\n"  # c40 would be resolved
    rows[120] = "ann@example.com,2026-10-02 10:00:00\n"  # would be a conversation of its own
    good = [r.rstrip("\n").split(",") for i, r in enumerate(rows) if i not in (40, 120)]
    (tmp_path / "events.csv").write_text("Conversation,Timestamp,Type,Latency\n" + "".join(rows))
    done, folder, report = _monthly_csv_report(tmp_path, SPARK)
    conversations = {r[0] for r in good}
    assert report["metrics"]["conversations"]["value"] == len(conversations)
    resolved = {r[0] for r in good if r[2] == "resolution"}
    assert report["metrics"]["resolution_rate"]["value"] == pytest.approx(100 * len(resolved) / len(conversations))
    first = f"row 41 of {tmp_path / 'events.csv'} after its header: 5 fields, expected 4"
    assert (report["quality"]["unreadable_rows"], report["quality"]["unreadable_first"]) == (2, first)
    assert any(note.startswith("1% of the rows of the source's files cannot be read") for note in report["notes"])
    assert "2 unreadable rows in the files, left out (the first: " in (folder / "report.txt").read_text()
    for name in ("report.json", "report.txt"):
        assert "ann@example.com" not in (folder / name).read_text()
    assert "ann@example.com" not in done.stdout + done.stderr


@pytest.mark.spark
@pytest.mark.parametrize("where", ["text", "number"])
def test_csv_rows_not_in_utf8_are_counted_and_left_out_by_spark_as_by_duckdb(tmp_path, where):
    """Spark reads bytes that are not UTF-8 as U+FFFD without a word: an agent's type written in Latin-1 ('Bötchen')
    was kept as an event of its own kind, and a Latin-1 byte in a number failed the cast, where DuckDB leaves
    such a row out and counts it. Now both engines leave out and count the same rows, with the same figures."""
    rows = [f"c{i},2026-10-02 10:00:00,{'resolution' if i % 3 == 0 else 'message'},12.5,x\n".encode() for i in range(200)]
    if where == "text":
        rows[30] = "c30,2026-10-02 10:00:00,resolution by Bötchen for ann@example.com,12.5,x\n".encode("latin-1")
        rows[150] = "c150,2026-10-02 10:00:00,resolution,12.5,x\n".encode("latin-1").replace(b"c150", b"c\xe9150")
    else:
        rows[30] = b"c30,2026-10-02 10:00:00,resolution,12.5\xb5,x\n"  # '12.5µ' in Latin-1
        rows[150] = b"c150,2026-10-02 10:00:00,message,\xb512,x\n"
    # in a column no report reads, such a byte is never decoded: its row is kept, on both engines
    rows[90] = "c90,2026-10-02 10:00:00,resolution,12.5,Bötchen\n".encode("latin-1")
    good = [r.decode("latin-1").rstrip("\n").split(",") for i, r in enumerate(rows) if i not in (30, 150)]
    (tmp_path / "events.csv").write_bytes(b"Conversation,Timestamp,Type,Latency,Note\n" + b"".join(rows))
    reports = {}
    for engine in ("duckdb://", SPARK):
        _, folder, report = _monthly_csv_report(tmp_path, engine, archive=engine[:5])
        reports[engine] = report
        conversations = {r[0] for r in good}
        assert report["metrics"]["conversations"]["value"] == len(conversations)
        resolved = {r[0] for r in good if r[2] == "resolution"}
        assert report["metrics"]["resolution_rate"]["value"] == pytest.approx(100 * len(resolved) / len(conversations))
        assert report["metrics"]["avg_latency_ms"]["value"] == pytest.approx(12.5)
        assert report["quality"]["unreadable_rows"] == 2
        assert report["quality"]["unknown_event_types"] == 0
        for name in ("report.json", "report.txt"):
            assert "ann@example.com" not in (folder / name).read_text()
    assert reports[SPARK]["quality"]["unreadable_first"] == \
        f"row 31 of {tmp_path / 'events.csv'} after its header: bytes that are not UTF-8"
    assert reports["duckdb://"]["quality"]["unreadable_first"].startswith(f"line 32 of {tmp_path / 'events.csv'}: ")
    assert reports[SPARK]["metrics"] == reports["duckdb://"]["metrics"]


def test_a_secret_setting_spark_refused_is_masked_in_its_error():
    """A refused setting's error quotes Spark's cause, which may quote the value: a secret one (from the
    environment) must not reach stderr or the logs. No Spark is started: the cause is given as Spark words it."""
    from agentdigest.errors import InputError, SourceError
    from agentdigest.spark_session import _start_error

    secret = "s3cr3t-Value-123"
    conf = {"spark.hadoop.fs.s3a.secret.key": secret, "spark.executor.cores": "2"}
    refused = _start_error("local[2]", conf, RuntimeError(
        f"java.lang.IllegalArgumentException: bad value {secret} for spark.hadoop.fs.s3a.secret.key"))
    assert isinstance(refused, InputError) and secret not in str(refused)
    assert str(refused) == ("source.spark_conf.spark.hadoop.fs.s3a.secret.key: Spark refused the setting "
                            "(java.lang.IllegalArgumentException: bad value *** for spark.hadoop.fs.s3a.secret.key)")
    other = _start_error("local[2]", conf, RuntimeError(f"java.io.IOException: cannot use {secret}"))
    assert isinstance(other, SourceError) and secret not in str(other) and "cannot use ***" in str(other)


@pytest.mark.parametrize("url", ENGINES)
def test_epoch_milliseconds_in_csv_files_are_read_with_epoch_unit(url, tmp_path, request):
    """Found in a Spark audit: Spark reads every CSV column as text, and a text event_ts was read as ISO times
    whatever epoch_unit said, so epoch_unit = "ms" with epoch milliseconds in CSV files failed every run on Spark
    (exit 2, "holds '1794381562453' (expected ISO 8601 times ...)") while DuckDB, typing the column as numbers,
    read it. By hand: 1,792,368,000 s is 2026-10-19 00:00 UTC (20,745 days); 1,794,381,562.453 s is 2,013,562.453 s
    (23 days, 7 h 19 min 22.453 s) later."""
    (tmp_path / "a.csv").write_text("conversation_id,event_ts,event_type\n"
                                    "c1,1792368000000,message\nc2,1794381562453,resolution\n")
    source = _open(url, str(tmp_path / "a.csv"), request, epoch_unit="ms")
    try:
        rows = source.events.order_by("conversation_id").select("event_ts").to_pyarrow().to_pylist()
    finally:
        source.close()
    assert [r["event_ts"] for r in rows] == [datetime(2026, 10, 19, tzinfo=timezone.utc),
                                             datetime(2026, 11, 11, 7, 19, 22, 453000, tzinfo=timezone.utc)]


@pytest.mark.spark
def test_a_temporary_view_named_in_a_database_is_refused_with_its_bare_name(spark, tmp_path):
    """Found in a Spark audit: `table = "meant_db.typo_events"`, typo_events a temporary view of the session and
    meant_db a database without it, opened (Ibis's lookup inside meant_db found the view by its bare name) and every
    query then failed TABLE_OR_VIEW_NOT_FOUND. Refused when opened, one line naming the name to write; the view read
    by its bare name, and a table of that database, still open."""
    spark.sql("CREATE DATABASE IF NOT EXISTS meant_db")
    spark.createDataFrame([("c1", "2026-10-20 12:00:00", "message")],
                          "conversation_id string, event_ts string, event_type string").createOrReplaceTempView("typo_events")
    spark.table("typo_events").write.saveAsTable("meant_db.real_events")
    try:
        with pytest.raises(InputError) as caught:
            open_source(SourceConfig(url=SPARK, table="meant_db.typo_events"))
        assert _one_line(caught.value) == ("source.table: meant_db has no table 'typo_events', a temporary view of the "
                                           "session: a temporary view is read by its name alone (expected table = "
                                           "\"typo_events\")")
        for name in ("typo_events", "meant_db.real_events"):
            source = open_source(SourceConfig(url=SPARK, table=name))
            try:
                assert source.events.count().to_pyarrow().as_py() == 1
            finally:
                source.close()
    finally:
        spark.catalog.dropTempView("typo_events")
        spark.sql("DROP DATABASE meant_db CASCADE")
