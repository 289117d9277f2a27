"""What each Parquet file of a Spark ``files`` source says at its head, read without reading its rows, and what
reading the files makes of it (see :mod:`.spark_files`): its footer (its row count, its columns as Spark reads them,
what Spark 4.0 misreads in them), read only where the files' schemas do not merge, through Spark's own Hadoop file
system (so ``s3a://`` too). A CSV file's head is :mod:`.spark_csv_heads`'.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, NamedTuple


@dataclass(frozen=True)
class Footer:
    """A Parquet file's footer, as far as reading ``files`` needs it."""

    rows: int
    #: top-level column -> its type as Spark reads it ("int", "bigint", "string": DataType.simpleString())
    types: dict[str, str]
    #: top-level column -> what Spark 4.0 misreads in it (see :func:`read_footer`)
    kinds: dict[str, str]
    #: the file's columns as Spark reads them (StructType JSON), FLOAT16 and UUID ones as binary (see :data:`BINARY`)
    schema: str = ""


#: The kinds of :class:`Footer` whose column Spark 4.0 cannot read by its own schema (PARQUET_TYPE_ILLEGAL: every run
#: failed, exit 3, naming no column, where DuckDB reads them: found in a file-types audit), but reads as bytes under a
#: given schema; the type they are then read as, DuckDB's (see :func:`.spark_files.from_bytes`).
BINARY = {"float16": "float", "uuid": "string"}


def read_footer(session: Any, uri: str) -> Footer:
    """The footer of the Parquet file ``uri``. Its ``kinds``: "null" for an always-null column (Parquet's UNKNOWN
    annotation), which Spark reads as INT; "nanos" for TIMESTAMP(NANOS), which it reads as a number
    (spark.sql.legacy.parquet.nanosAsLong); "float16" and "uuid" for FLOAT16 and UUID, which it refuses (see
    :data:`BINARY`); "" for the others. From the file's Thrift footer: parquet-java's schema drops the UNKNOWN
    annotation. Its ``types`` from the same footer, by Spark's own converter under the session's settings (as
    mergeSchema reads each file), FLOAT16 and UUID columns as :data:`BINARY` reads them."""
    import json

    from pyspark.sql.types import BinaryType, StructField, StructType

    tools = _footer_tools(session)
    path = tools.path(uri)
    fs = path.getFileSystem(tools.conf)
    size = fs.getFileStatus(path).getLen()
    stream = fs.open(path)
    try:
        stream.seek(size - 8)  # the footer's length (4 bytes, little-endian), then "PAR1"
        length = int.from_bytes(int(stream.readInt()).to_bytes(4, "big", signed=True), "little")
        stream.seek(size - 8 - length)
        meta = tools.util.readFileMetaData(stream)
    finally:
        stream.close()
    elements = list(meta.getSchema())
    kinds: dict[str, str] = {}
    i = 1  # after the root: each top-level column, then the elements of its nested ones
    while i < len(elements):
        element = elements[i]
        logical = element.getLogicalType() if element.isSetLogicalType() else None
        annotation = str(logical.getSetField().name()) if logical is not None else ""
        nanos = annotation == "TIMESTAMP" and logical.getTIMESTAMP().getUnit().isSetNANOS()
        kinds[element.getName()] = ("null" if annotation == "UNKNOWN" else "nanos" if nanos
                                    else {"FLOAT16": "float16", "UUID": "uuid"}.get(annotation, ""))
        i += _subtree(elements, i)
    schema = tools.metadata.fromParquetMetadata(meta).getFileMetaData().getSchema()
    fields = list(schema.getFields())
    binary = {column for column, kind in kinds.items() if kind in BINARY}
    if binary:  # Spark's converter refuses them: the others converted, they are bytes
        kept = tools.jvm.java.util.ArrayList()
        for field in fields:
            if field.getName() not in binary:
                kept.add(field)
        schema = tools.jvm.org.apache.parquet.schema.MessageType(schema.getName(), kept)
    converted = {f.name: f for f in StructType.fromJson(json.loads(tools.schema.convert(schema).json())).fields}
    struct = StructType([converted.get(name) or StructField(name, BinaryType())
                         for name in (field.getName() for field in fields)])
    types = {field.name: BINARY.get(kinds.get(field.name, ""), field.dataType.simpleString())
             for field in struct.fields}
    return Footer(rows=int(meta.getNum_rows()), types=types, kinds=kinds, schema=struct.json())


class _FooterTools(NamedTuple):
    jvm: Any
    path: Any
    conf: Any
    util: Any
    metadata: Any
    schema: Any


@functools.lru_cache(maxsize=4)
def _footer_tools(session: Any) -> _FooterTools:
    """The JVM classes and converters :func:`read_footer` uses, looked up once per session: each lookup is a
    round trip to the JVM (looked up for every file, a footer took 36 ms instead of 28 ms here)."""
    jvm = session._jvm
    return _FooterTools(
        jvm=jvm, path=jvm.org.apache.hadoop.fs.Path, conf=session._jsc.hadoopConfiguration(),
        util=jvm.org.apache.parquet.format.Util,
        metadata=jvm.org.apache.parquet.format.converter.ParquetMetadataConverter(),
        schema=jvm.org.apache.spark.sql.execution.datasources.parquet.ParquetToSparkSchemaConverter(
            session._jsparkSession.sessionState().conf()))


def _subtree(elements: list[Any], i: int) -> int:
    """The number of schema elements of the column at ``i``, its nested ones included."""
    size, j = 1, i + 1
    for _ in range(elements[i].getNum_children() if elements[i].isSetNum_children() else 0):
        n = _subtree(elements, j)
        size, j = size + n, j + n
    return size


def local_path(url: str) -> str:
    """``file:/tmp/events%20x.csv`` -> ``/tmp/events x.csv``; other URLs as Spark gives them."""
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(url).path) if url.startswith("file:") else url


def only(df: Any, files: list[str]) -> Any:
    """``df`` read from ``files`` alone (URIs as Spark lists them). Spark prunes the other files by the
    ``_metadata.file_path`` filter before it opens them (measured: a file it could not read is never read)."""
    from pyspark.sql import functions as F

    # inputFiles() says file:///x where _metadata.file_path says file:/x
    names = {n for f in files for n in (f, re.sub(r"^file:///", "file:/", f))}
    return df.filter(F.col("_metadata.file_path").isin(sorted(names)))


def empty_and_odd(footers: dict[tuple[str, str], Footer]) -> set[tuple[str, str]]:
    """The files without a row that give a column another type than the files with rows: an export of a quiet
    day written with other types (an int column as int32, a column of nothing as text) failed every Spark run,
    "the files give column 'token_count' different types" (exit 3), where DuckDB reads the other files (found in
    a schema-drift audit). Such a file holds no event to leave out; it is skipped. An all-null column (see
    :func:`.spark_files._by_footers`) is no other type."""
    typed: dict[str, set[str]] = {}
    for footer in footers.values():
        if footer.rows:
            for column, kind in read_types(footer).items():
                typed.setdefault(column, set()).add(kind)
    return {key for key, footer in footers.items() if not footer.rows
            and any(column in typed and kind not in typed[column] for column, kind in read_types(footer).items())}


def read_types(footer: Footer) -> dict[str, str]:
    """A file's columns with the type a report reads them as: nanoseconds as timestamps (see
    :func:`.spark_files.nanos_read`), all-null columns left out (null of any type: see
    :func:`.spark_files._by_footers`)."""
    return {column: "timestamp" if footer.kinds.get(column) == "nanos" else kind
            for column, kind in footer.types.items() if footer.kinds.get(column) != "null"}


#: Integer types as Spark reads Parquet's (unsigned ones as the next wider), narrowest first.
INTEGERS = ("tinyint", "smallint", "int", "bigint")


def wider(kinds: set[str]) -> str | None:
    """The one type files that give a column each of ``kinds`` are read as, as DuckDB's ``union_by_name`` reads
    them: the widest integer; a float beside integers (as DuckDB, though an integer over 2^24 is then rounded); a
    double beside floats or integers. None where DuckDB's reading is no widening of a number (text, a boolean read
    as 0 and 1: see :func:`type_conflict`). Only the number types are widened here: others are refused."""
    if len(kinds) < 2:
        return next(iter(kinds), None)
    if not kinds <= {*INTEGERS, "float", "double"}:
        return None
    return "double" if "double" in kinds else "float" if "float" in kinds else max(kinds, key=INTEGERS.index)


#: Types DuckDB's union_by_name reads a column of files that give it each of them as, by precedence: the first
#: of these any file gives (measured on DuckDB 1.x for pairs of these types: BLOB beside text is BLOB, text beside
#: a date is text, a date beside a timestamp a timestamp, a date or a timestamp beside a number that type), else
#: the numbers' (see :func:`union_type`).
UNION_PRECEDENCE = ("binary", "string", "timestamp", "timestamp_ntz", "date")


def union_type(kinds: list[str]) -> str:
    """The type DuckDB reads a column as where files give it each of ``kinds`` (Spark's type names, file order),
    none of them with a row: :data:`UNION_PRECEDENCE`, else numbers as :func:`wider` widens them (a boolean beside
    a number is that number; a decimal beside a float or a double a double, beside integers the widest decimal),
    else the first. The values are all null, but the type decides whether a report reads the column: a boolean
    cost_usd is refused (exit 2), a double one is read (none), and taking the first file's type refused on Spark
    what DuckDB reads, or read what it refuses (a string agent_id beside a binary one; found in a review)."""
    found = set(kinds)
    if len(found) < 2:
        return kinds[0]
    top = next((kind for kind in UNION_PRECEDENCE if kind in found), None)
    if top is not None:
        return top
    numbers = found - {"boolean"}
    decimals = sorted((k for k in numbers if k.startswith("decimal(")), key=lambda k: int(k[8:].split(",")[0]))
    if decimals and numbers <= {*INTEGERS, *decimals}:
        return decimals[-1]
    if decimals and numbers & {"float", "double"} and numbers <= {*INTEGERS, "float", "double", *decimals}:
        return "double"
    return wider(numbers) or kinds[0]


def widened(footers: dict[tuple[str, str], Footer]) -> dict[str, str]:
    """Each column the files give different types that :func:`wider` widens, with the type it is read as."""
    kinds: dict[str, set[str]] = {}
    for footer in footers.values():
        for column, kind in read_types(footer).items():
            kinds.setdefault(column, set()).add(kind)
    return {column: wide for column, found in kinds.items() if len(found) > 1 and (wide := wider(found)) is not None}


def _family(kind: str) -> str:
    """The types :func:`wider` reads as one: the numbers, else each type alone."""
    return "number" if kind in (*INTEGERS, "float", "double") else kind


def type_conflict(footers: dict[tuple[str, str], Footer]) -> str | None:
    """The error for files that give a column types no widening makes one (a number in some, text in others),
    naming the files: Spark's own error names the column's two types but no file, so in a folder of hundreds the
    user could not tell which to rewrite (found in a schema-drift audit). The types fewer files give are named
    first, with one of their files. Types :func:`wider` widens are no conflict, nor is an all-null column (read as
    INT: see :func:`.spark_files._by_footers`). None when the footers show none."""
    from collections import defaultdict

    by_column: dict[str, dict[str, dict[str, list[str]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for (_, f), footer in sorted(footers.items(), key=lambda item: item[0][1]):
        for column, kind in read_types(footer).items():
            by_column[column][_family(kind)][kind].append(local_path(f))
    for column, families in by_column.items():
        if len(families) > 1:
            odd, usual = sorted(families.values(), key=lambda types: (len(_files(types)), _files(types)[0]))[:2]
            return (f"source.files: column {column!r} is {_named(odd)} but {_named(usual)}; expected one type per "
                    f"column in every file (Spark cannot read it as two types): rewrite the odd files with the others' "
                    f"type")
    return None


def _files(types: dict[str, list[str]]) -> list[str]:
    """The files of each type of ``types`` (type -> its files), sorted."""
    return sorted(f for found in types.values() for f in found)


def _named(types: dict[str, list[str]]) -> str:
    """"INT or BIGINT in a.parquet (and 2 more files)": the types the most files give first, one file of them."""
    found = _files(types)
    more = len(found) - 1
    kinds = sorted(types, key=lambda kind: (-len(types[kind]), types[kind][0]))
    return (" or ".join(kind.upper() for kind in kinds) + f" in {found[0]}"
            + (f" (and {more} more file{'s' if more > 1 else ''})" if more else ""))
