"""The column types of event files, on DuckDB files and Spark files (a file-types audit).

Each case writes the trap rows as Parquet files of other types (with pyarrow, or with Spark where Spark is the
usual writer) or as CSV files of another shape, and reads the same files back by plain Python (pyarrow, or the rows
the CSV text was written from) for the reference report. A type that is read must give exactly the reference's
report.json on both engines; one that is refused must stop the run with one line naming the column, its type and
what is expected (InputError, exit 2), never a traceback.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agentdigest.compute import compute_report
from agentdigest.config import ReportConfig, SourceConfig
from agentdigest.errors import InputError
from agentdigest.periods import parse_period
from agentdigest.sources import open_source
from compare import compare_report
from reference import Reference
from trapdata import COLUMNS, SCENARIOS, now_for, to_arrow, trap_rows

SCENARIO = "berlin-fall-week"
ROWS = trap_rows(SCENARIO)
ENGINES = [pytest.param("duckdb://", id="duckdb"), pytest.param("pyspark://local[2]", id="spark", marks=pytest.mark.spark)]


# -- Parquet: the trap rows with some columns of another type --------------------------------------------------

def _cast(table: pa.Table, **types: pa.DataType) -> pa.Table:
    for column, kind in types.items():
        i = table.schema.get_field_index(column)
        table = table.set_column(i, column, _array(table[column], kind))
    return table


def _array(values: pa.ChunkedArray, kind: pa.DataType) -> pa.Array:
    """``values`` as ``kind``, with what ``kind`` cannot hold null (NaN in a decimal, -3 tokens in a uint32)."""
    if pa.types.is_decimal(kind):
        return pa.array([None if v is None or not math.isfinite(v) else Decimal(repr(v)).quantize(Decimal(1).scaleb(-kind.scale))
                         for v in values.to_pylist()], kind)
    if pa.types.is_unsigned_integer(kind) or pa.types.is_integer(kind):
        info = {pa.int8(): 127, pa.int16(): 32767}.get(kind)
        return pa.array([None if v is None or v < 0 and pa.types.is_unsigned_integer(kind)
                         or info is not None and abs(v) > info else v for v in values.to_pylist()], kind)
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return pa.array([None if v is None else v.encode() for v in values.to_pylist()], kind)
    if kind == pa.float16():
        import numpy as np

        values = values.to_pylist()
        return pa.array(np.array([0 if v is None else v for v in values], np.float16),
                        mask=np.array([v is None for v in values]))
    return values.cast(kind)


def _uuid_ids(table: pa.Table, kind: pa.DataType) -> pa.Table:
    """event_id and conversation_id as 16-byte UUIDs (a name-based UUID of each text id)."""
    for column in ("event_id", "conversation_id"):
        ids = [None if v is None else uuid.uuid5(uuid.NAMESPACE_OID, v).bytes for v in table[column].to_pylist()]
        storage = pa.array(ids, pa.binary(16))
        array = pa.ExtensionArray.from_storage(kind, storage) if isinstance(kind, pa.BaseExtensionType) else storage
        table = table.set_column(table.schema.get_field_index(column), column, array)
    return table


def _uuid_then_text(table: pa.Table) -> list[pa.Table]:
    """The ids as UUIDs (Parquet's UUID annotation) in the first file, as their canonical text in the second."""
    first, second = _halves(_uuid_ids(table, pa.uuid()))
    for column in ("event_id", "conversation_id"):
        text = pa.array([None if v is None else str(v) for v in second[column].to_pylist()], pa.string())
        second = second.set_column(second.schema.get_field_index(column), column, text)
    return [first, second]


def _halves(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    half = table.num_rows // 2
    return table.slice(0, half), table.slice(half)


def _parquet(name: str, make, refused: dict | None = None, **write) -> pytest.param:
    """A case: ``make(table)`` -> the tables of the files (one each), written by pyarrow with ``write`` options;
    ``refused``: engine -> (the error, a pattern of its line) where the files are refused."""
    def files(folder: Path, spark) -> str:
        folder.mkdir()
        for i, table in enumerate(make(to_arrow(ROWS))):
            pq.write_table(table, folder / f"part-{i}.parquet", **write)
        return str(folder)
    return pytest.param(files, refused or {}, id=name)


def _by_spark(name: str, select: str) -> pytest.param:
    """A case: the trap rows written by Spark itself, ``select`` (Spark SQL over the canonical columns) as the files."""
    def files(folder: Path, spark) -> str:
        spark.createDataFrame(to_arrow(ROWS)).createOrReplaceTempView("trap_rows")
        spark.sql(select).coalesce(2).write.parquet(str(folder))
        return str(folder)
    return pytest.param(files, {}, id=name, marks=pytest.mark.spark)


def _retyped(table: pa.Table, column: str, kind: pa.DataType) -> pa.Table:
    return table.set_column(table.schema.get_field_index(column), column, table[column].cast(kind, safe=False))


def _dictionary(table: pa.Table, index: pa.DataType, *columns: str) -> pa.Table:
    for column in columns:
        table = table.set_column(table.schema.get_field_index(column), column,
                                 table[column].dictionary_encode().cast(pa.dictionary(index, pa.string())))
    return table


def _all_null_in_one(table: pa.Table, column: str, other: pa.DataType | None) -> list[pa.Table]:
    """``column`` all null (Parquet's null type) in the first file, and of type ``other`` in the second."""
    first, second = _halves(table)
    first = first.set_column(first.schema.get_field_index(column), column, pa.nulls(first.num_rows))
    if other is not None:
        second = second.set_column(second.schema.get_field_index(column), column, _array(second[column], other))
    return [first, second]


def _agent_numbers(table: pa.Table) -> pa.Table:
    """agent_id as integers (agent 0, 1, 2), as some exports number them."""
    agents = sorted({r["agent_id"] for r in ROWS if r["agent_id"]})
    return table.set_column(table.schema.get_field_index("agent_id"), "agent_id",
                            pa.array([None if v is None else agents.index(v) for v in table["agent_id"].to_pylist()],
                                     pa.int64()))


def _no_model(table: pa.Table) -> list[pa.Table]:
    """model without a value: Parquet's null type in one file, an integer column of nulls in the other (pandas'
    nullable Int64 of pd.NA)."""
    first, second = _halves(table)
    i = table.schema.get_field_index("model")
    return [first.set_column(i, "model", pa.nulls(first.num_rows)),
            second.set_column(i, "model", pa.nulls(second.num_rows, pa.int64()))]


def _text_latency_in_one(table: pa.Table) -> list[pa.Table]:
    first, second = _halves(table)
    text = pa.array([None if v is None else repr(v) for v in first["latency_ms"].to_pylist()], pa.string())
    return [first.set_column(first.schema.get_field_index("latency_ms"), "latency_ms", text), second]


PARQUET = [
    _parquet("int96-event-ts", lambda t: _halves(t), use_deprecated_int96_timestamps=True),
    *[_parquet(f"timestamp-{unit}{'-utc' if tz else '-naive'}",
               lambda t, unit=unit, tz=tz: _halves(_retyped(t, "event_ts", pa.timestamp(unit, tz=tz))),
               coerce_timestamps=None, allow_truncated_timestamps=True)
      for unit in ("ms", "us", "ns") for tz in ("UTC", None)],
    _parquet("timestamp-us-berlin", lambda t: _halves(_retyped(t, "event_ts", pa.timestamp("us", tz="Europe/Berlin")))),
    _parquet("date32-event-ts", lambda t: _halves(_retyped(t, "event_ts", pa.date32()))),
    _by_spark("spark-default-writer", "SELECT * FROM trap_rows"),
    _by_spark("spark-timestamp-ntz", "SELECT " + ", ".join("CAST(event_ts AS TIMESTAMP_NTZ) AS event_ts" if c == "event_ts" else c for c in COLUMNS) + " FROM trap_rows"),
    _parquet("dictionary-strings", lambda t: _halves(_dictionary(t, pa.int32(), "event_type", "agent_id", "model",
                                                                   "error_type"))),
    _parquet("large-strings", lambda t: _halves(_cast(t, **{c: pa.large_string() for c in COLUMNS
                                                            if t.schema.field(c).type == pa.string()}))),
    _parquet("binary-strings", lambda t: _halves(_cast(t, **{c: pa.binary() for c in COLUMNS
                                                             if t.schema.field(c).type == pa.string()}))),
    _parquet("error-type-null-then-text", lambda t: _all_null_in_one(t, "error_type", None)),
    _parquet("agent-id-null-then-int", lambda t: _all_null_in_one(_agent_numbers(t), "agent_id", None)),
    _parquet("model-null-then-int-nulls", _no_model),
    _parquet("decimal-latency-cost", lambda t: _halves(_cast(t, latency_ms=pa.decimal128(10, 2),
                                                            cost_usd=pa.decimal128(10, 2)))),
    _parquet("uint32-tokens", lambda t: _halves(_cast(t, token_count=pa.uint32()))),
    _parquet("uint64-tokens", lambda t: _halves(_cast(t, token_count=pa.uint64()))),
    _parquet("int16-tokens", lambda t: _halves(_cast(t, token_count=pa.int16()))),
    _parquet("int8-tokens", lambda t: _halves(_cast(t, token_count=pa.int8()))),
    # Spark 4.0 refuses FLOAT16 and UUID (PARQUET_TYPE_ILLEGAL, exit 3, naming no column): read as bytes, converted
    _parquet("float16-latency", lambda t: _halves(_cast(t, latency_ms=pa.float16()))),
    _parquet("float16-latency-then-double", lambda t: [_cast(_halves(t)[0], latency_ms=pa.float16()), _halves(t)[1]]),
    # Documented (README, Spark): text beside a number is refused on Spark, naming the column, its types and files.
    _parquet("latency-text-then-double", _text_latency_in_one,
             {"spark": (InputError, r"^source.files: column 'latency_ms' is STRING in \S+part-0.parquet but DOUBLE in "
                                    r"\S+part-1.parquet; expected one type per column in every file")}),
    _parquet("int64-conversation-id", lambda t: _halves(t.set_column(
        1, "conversation_id", pa.array([None if v is None else 1000 + sorted({r["conversation_id"] for r in ROWS
                                                                             if r["conversation_id"]}).index(v)
                                        for v in t["conversation_id"].to_pylist()], pa.int64())))),
    # 16 bytes without Parquet's UUID annotation: no engine can tell them from other bytes.
    _parquet("fixed-size-binary-uuid-ids", lambda t: _halves(_uuid_ids(t, pa.binary(16))),
             {engine: (InputError, r"^column 'event_id' \(event_id\) has type binary, expected text or an integer id; "
                                   r"a column named event_id is read as event_id unless") for engine in ("duckdb", "spark")}),
    _parquet("uuid-extension-ids", lambda t: _halves(_uuid_ids(t, pa.uuid()))),
    _parquet("uuid-ids-then-text-ids", _uuid_then_text),
    _parquet("dictionary-int8-agent-id", lambda t: _halves(_dictionary(t, pa.int8(), "agent_id"))),
]


def _python(value, kind: pa.DataType):
    """A value the files hold, as the reference's canonical Python value."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return str(uuid.UUID(bytes=value)) if pa.types.is_fixed_size_binary(kind) else value.decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, Decimal):
        return float(value)
    return value


def _rows_of_files(folder: Path) -> list[dict]:
    rows = []
    for path in sorted(folder.rglob("*.parquet")):
        table = pq.read_table(path)
        for row in table.to_pylist():
            rows.append({c: _python(row.get(c), table.schema.field(c).type if c in table.column_names else pa.null())
                         for c in COLUMNS})
    for row in rows:
        for column in ("event_id", "conversation_id", "agent_id", "model"):
            row[column] = None if row[column] is None else str(row[column])
        for column, kind in (("latency_ms", float), ("cost_usd", float), ("token_count", int)):
            row[column] = None if row[column] is None else kind(row[column])
    return rows


def _report(url: str, files: str, **source) -> dict:
    tz, kind, key = SCENARIOS[SCENARIO]
    opened = open_source(SourceConfig(url=url, files=files, **source))
    try:
        data = compute_report(opened, ReportConfig(id="types", period=kind, timezone=tz), parse_period(kind, key, tz),
                              now=now_for(SCENARIO))
    finally:
        opened.close()
    return json.loads(data.to_json())


def _mismatches(doc: dict, rows: list[dict]) -> list[str]:
    tz, kind, key = SCENARIOS[SCENARIO]
    return compare_report(doc, Reference(rows, tz, kind, key, now_for(SCENARIO)))


# -- CSV: the trap rows as text of other shapes -----------------------------------------------------------------

def _text(value, column: str, i: int, offsets: bool, quoted_empty: bool, escape: str = '"') -> str | None:
    if value is None:
        return '""' if quoted_empty and i % 2 and column in ("latency_ms", "token_count", "cost_usd") else ""
    return _quoted(_value(value, i, offsets), escape)


def _value(value, i: int = 0, offsets: bool = False) -> str | None:
    """A value of the trap rows as the text a CSV file holds, unquoted."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if offsets and i % 2:
            return value.astimezone(timezone(timedelta(hours=1))).isoformat()
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if offsets else \
            value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value)


def _quoted(text: str, escape: str = '"') -> str:
    """``text`` quoted where it must be, a quote in it escaped with ``escape`` (doubled, or a backslash as Spark's
    own CSV writer escapes it)."""
    return '"' + text.replace('"', escape + '"') + '"' if any(ch in text for ch in ',"\r\n') else text


def _with_messages(rows: list[dict], start: int = 0) -> list[dict]:
    """``rows`` with error messages holding a comma, a quote and a line break (a stack trace's), from row ``start``."""
    return [dict(r, error_message=f'{r["error_message"]}, line 2 "quoted"\nline 3') if r["error_message"] and i >= start
            else r for i, r in enumerate(rows)]


def _csv(name: str, *, header=lambda c: c, bom: bool = False, newline: str = "\n", offsets: bool = False,
         quoted_empty: bool = False, messages: bool | int = False, escape: str = '"', **source) -> pytest.param:
    """A case: the trap rows as one CSV file (``messages``: error messages holding a comma, a quote and a newline;
    a number: from that row on), a quote inside quotes escaped with ``escape``."""
    rows = _with_messages(ROWS, 0 if messages is True else messages) if messages is not False else ROWS

    def files(folder: Path, spark) -> tuple[str, list[dict]]:
        folder.mkdir()
        lines = [",".join(header(c) for c in COLUMNS)]
        lines += [",".join(_text(r[c], c, i, offsets, quoted_empty, escape) for c in COLUMNS)
                  for i, r in enumerate(rows)]
        (folder / "events.csv").write_bytes(("\ufeff" if bom else "").encode() + newline.join(lines + [""]).encode())
        return str(folder / "events.csv"), rows
    return pytest.param(files, source, {}, id=name)


def _spark_csv(spark, rows: list[dict], folder: Path) -> None:
    """``rows`` as one CSV file written by Spark's own writer (every column as text): a quote inside quotes escaped
    with a backslash (``\\"``), Spark's default, not doubled."""
    from pyspark.sql import types as T

    schema = T.StructType([T.StructField(c, T.StringType()) for c in COLUMNS])
    data = [tuple(_value(r[c], i) for c in COLUMNS) for i, r in enumerate(rows)]
    spark.createDataFrame(data, schema).coalesce(1).write.csv(str(folder), header=True)


def _by_spark_csv(name: str, rfc_first_half: bool) -> pytest.param:
    """A case: the trap rows with multi-line error messages written by Spark's CSV writer (backslash escapes); with
    ``rfc_first_half``, their first half as an RFC 4180 file (doubled quotes) beside it, in one folder."""
    rows = _with_messages(ROWS)
    half = len(rows) // 2 if rfc_first_half else 0

    def files(folder: Path, spark) -> tuple[str, list[dict]]:
        _spark_csv(spark, rows[half:], folder)
        if half:
            lines = [",".join(COLUMNS)] + [",".join(_text(r[c], c, i, False, False) for c in COLUMNS)
                                           for i, r in enumerate(rows[:half])]
            (folder / "rfc.csv").write_text("\n".join(lines + [""]))
        assert '\\"quoted\\"' in "".join(f.read_text() for f in folder.glob("part-*.csv"))  # Spark's escape
        return str(folder), rows
    return pytest.param(files, {}, {}, id=name, marks=pytest.mark.spark)


CSV = [
    _csv("plain"),
    _csv("header-case-mapped", header=lambda c: "Event_TS" if c == "event_ts" else c, columns={"event_ts": "Event_TS"}),
    _csv("quoted-newlines-and-commas", messages=True),
    _csv("bom", bom=True),
    _csv("crlf", newline="\r\n"),
    _csv("bom-crlf-newlines", bom=True, newline="\r\n", messages=True),
    _csv("quoted-empty-numbers", quoted_empty=True),
    _csv("offsets-and-z", offsets=True),
    # The first quote inside quotes on line 60 or so: the escape was told by the 10 lines after the header alone, and
    # a file of backslash escapes was read as doubled quotes, its rows mis-split without a word (found in a review)
    _csv("backslash-escapes-first-on-row-60", messages=60, escape="\\"),
    _csv("doubled-quotes-first-on-row-60", messages=60),
    _by_spark_csv("spark-writer-csv-backslash-escapes", rfc_first_half=False),
    _by_spark_csv("spark-writer-csv-beside-an-rfc-file", rfc_first_half=True),
]


def _parquet_files(files):
    def made(folder: Path, spark) -> tuple[str, list[dict]]:
        path = Path(files(folder, spark))
        return str(path), _rows_of_files(path)
    return made


#: Known defects, per case and engine: the report would be wrong, so the case is expected to fail until fixed.
DEFECTS: dict[tuple[str, str], str] = {}

CASES = [pytest.param(_parquet_files(p.values[0]), {}, p.values[1], id=p.id, marks=p.marks) for p in PARQUET] + CSV


@pytest.mark.parametrize("url", ENGINES)
@pytest.mark.parametrize("files, source, refused", CASES)
def test_files_of_another_type_give_the_reference_report(files, source, refused, url, tmp_path, request):
    """The reference's report.json, or where ``refused`` says so for the engine, its one-line error."""
    engine = "spark" if url.startswith("pyspark") else "duckdb"
    spark = request.getfixturevalue("spark") if engine == "spark" or "spark-" in request.node.callspec.id else None
    case = request.node.callspec.id.rsplit("-", 1)[0]
    if (case, engine) in DEFECTS:
        request.applymarker(pytest.mark.xfail(strict=True, reason=DEFECTS[(case, engine)]))
    path, rows = files(tmp_path / "events", spark)
    if engine in refused:
        error, pattern = refused[engine]
        with pytest.raises(error) as raised:
            _report(url, path, **source)
        (line,) = str(raised.value).strip().splitlines()
        assert type(raised.value) is error and re.search(pattern, line), line
        return
    mismatches = _mismatches(_report(url, path, **source), rows)
    assert not mismatches, "\n".join(mismatches)
