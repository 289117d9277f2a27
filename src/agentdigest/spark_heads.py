"""What each file of a Spark ``files`` source says at its head, read without reading its rows, and what reading the
files makes of it (see :mod:`.spark_files`): a Parquet file's footer (its row count, its columns as Spark reads
them, what Spark 4.0 misreads in them), read only where the files' schemas do not merge; a CSV file's first lines
(its columns, delimiter and quote escape), read for every CSV file. Through Spark's own Hadoop file system (so
``s3a://`` too), a local file's first lines by Python.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from .errors import InputError
from .masking import mask_text


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


#: The most of a CSV file's head read (see :func:`head_lines`): a file without a line break is not read whole.
HEADER_LIMIT = 1 << 20
#: The rows after a CSV file's header that its delimiter is checked against (see :func:`delimiter`), and the lines
#: read after the first that holds an escaped quote (``\"``) before its escape is told (see :func:`dialect`).
SAMPLE_ROWS = 10


class Head(NamedTuple):
    """A CSV file's first lines that are not blank (its header first), without their line breaks, and whether
    they are the whole file."""

    lines: list[bytes]
    whole: bool


def sample(head: Head) -> Head:
    """The header of ``head`` and the :data:`SAMPLE_ROWS` lines after it."""
    return head if len(head.lines) <= SAMPLE_ROWS + 1 else Head(head.lines[:SAMPLE_ROWS + 1], False)


def _enough(text: bytes, whole: bool) -> Head:
    """The head of a CSV file from its first bytes, ``text`` (``whole``: all of it): its lines that are not blank, up
    to :data:`SAMPLE_ROWS` after its header, or where ``text`` holds an escaped quote (``\\"``), after the first line
    that holds one."""
    import io

    escaped = b'\\"' in text
    taken: list[bytes] = []
    end = None
    for line in io.BytesIO(text):
        line = line.rstrip(b"\r\n")
        if line.strip():
            taken.append(line)
            if end is None and (not escaped or b'\\"' in line):
                end = len(taken) + SAMPLE_ROWS
            if len(taken) == end:
                return Head(taken, False)
    return Head(taken, whole)


def head_lines(session: Any, uri: str) -> Head:
    """The header of the CSV file ``uri`` (as Spark lists it: its first line that is not blank) and the lines after
    it (see :func:`_enough`), from its first :data:`HEADER_LIMIT` bytes; of a ``.gz`` file, of its text. Local files
    are read here (a read through Spark's JVM took 10 ms a file), others through Spark's Hadoop file system
    (``s3a://``), in one read (a line at a time, each a round trip to the JVM, 1 MiB took seconds). No line for a
    file with none."""
    import gzip

    if uri.startswith("file:"):
        path = local_path(uri)
        with (gzip.open(path, "rb") if path.lower().endswith(".gz") else open(path, "rb")) as f:
            # a small file in a small read: a read of 1 MiB took 50 us a file more (the buffer it allocates)
            text = f.read(1 << 16)
            text += f.read(HEADER_LIMIT - len(text)) if len(text) == 1 << 16 else b""
            return _enough(text, not f.read(1))
    jvm = session._jvm
    conf = session._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(uri)
    stream = path.getFileSystem(conf).open(path)
    try:
        codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf).getCodec(path)
        text = codec.createInputStream(stream) if codec is not None else stream
        head = bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(
            jvm.org.apache.commons.io.input.BoundedInputStream(text, HEADER_LIMIT)))
        return _enough(head, len(head) < HEADER_LIMIT or text.read() == -1)
    finally:
        stream.close()


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


class CsvPart(NamedTuple):
    """A set of CSV files with one header: its columns, its files (URIs as Spark lists them; None: all), the
    delimiter its header is written with and the escape of a quote inside quotes (see :func:`escape`)."""

    columns: list[str]
    files: list[str] | None
    sep: str = ","
    escape: str = '"'


#: The delimiters a CSV file's header is looked at for: those DuckDB's sniffer tries.
DELIMITERS = (",", ";", "\t", "|")
#: The escapes of a quote inside quotes a CSV file is looked at for, the one DuckDB's sniffer prefers first: a
#: doubled quote (RFC 4180), or a backslash (Spark's own CSV writer).
ESCAPES = ('"', "\\")


def csv_parts(session: Any, df: Any) -> list[CsvPart]:
    """The CSV files of ``df`` by header: one part (``df``'s columns, every file) when all have the same first
    line, else one per header. Spark takes the columns from one file and refused every other header, the same
    columns in another order included (exit 3, naming whichever file was not the one it took them from: found in
    a schema-drift audit), where DuckDB reads each file's columns by name. Only the head of each file is read
    (see :func:`head_lines`).

    Each file's delimiter is told by :func:`delimiter`: Spark reads with a comma only, and a file written with
    ``;`` beside the others read as one column and failed the run (exit 2) naming no file, where DuckDB detects
    each file's delimiter (found in a schema-drift audit)."""
    # By header and delimiter, each file's own: files with one header whose rows were written with another delimiter
    # (a header splitting as many ways by ';' as by ',', rows by ',' in one file and by ';' in the other) were all
    # read with the first file's, the other's rows left out as unreadable (or the run failed, "required column
    # 'conversation_id' not found", exit 2, naming no file) where DuckDB sniffs each file's (found in a review).
    # Its columns are then that delimiter's, as DuckDB names them. One delimiter() a file: +6 ms for 200 files here.
    # And by escape (see escape()), each file's own as DuckDB sniffs it.
    groups: dict[tuple[bytes, str, str], list[str]] = {}
    for f in sorted(df.inputFiles()):
        head = head_lines(session, f)
        groups.setdefault((head.lines[0] if head.lines else b"", *dialect(head, f)), []).append(f)
    if len(groups) > 1:
        groups.pop((b"", ",", ESCAPES[0]), None)  # files with no line: no header, no rows
    if len(groups) < 2:
        header, sep, quote_escape = next(iter(groups), (b"", ",", ESCAPES[0]))
        if (sep, quote_escape) == (",", ESCAPES[0]):
            return [CsvPart(list(df.columns), None)]
        return [CsvPart(header_columns(header, sep, quote_escape), None, sep, quote_escape)]
    return [CsvPart(header_columns(header, sep, quote_escape), group, sep, quote_escape)
            for (header, sep, quote_escape), group in groups.items()]


def dialect(head: Head, uri: str = "") -> tuple[str, str]:
    """The delimiter (see :func:`delimiter`, from the :func:`sample` of ``head``) and the quote escape (see
    :func:`escape`, from all of it) a CSV file is written with. The escape was told by the sample alone, and a file
    whose first escaped quote came after it was read with doubled quotes, its rows mis-split without a word (found
    in a review); DuckDB's sniffer reads 20480 rows."""
    first = sample(head)
    sep = delimiter(first, uri)
    if not any(b'\\"' in line for line in head.lines):
        return sep, ESCAPES[0]  # no quote a backslash could escape: either escape reads it alike
    other = delimiter(first, uri, "\\")
    return (other, "\\") if escape(head, {'"': sep, "\\": other}) == "\\" else (sep, ESCAPES[0])


def escape(head: Head, seps: dict[str, str]) -> str:
    """The escape of a quote inside quotes a CSV file is written with, of :data:`ESCAPES`, as DuckDB's sniffer takes
    it: a doubled quote (``"a ""quoted"" word"``, RFC 4180) unless the rows of the ``head`` after its header parse,
    strictly, into as many fields as the header with a backslash (``"a \\"quoted\\" word"``, as Spark's own CSV writer
    escapes it) and not as well with doubled quotes; ``seps``: each escape's delimiter. Spark reads with one escape
    only: with a backslash (its default), a quoted field holding a doubled quote and a line break split its row; with
    a doubled quote, a backslash-escaped quote was read as part of the text (measured on pyspark 4.0)."""
    scores = {}
    for quote_escape in ESCAPES:
        width = len(header_columns(head.lines[0], seps[quote_escape], quote_escape))
        shapes = _shapes(head, seps[quote_escape], quote_escape, strict=True)
        scores[quote_escape] = None if shapes is None else sum(n == width for n in shapes)
    plain, backslash = scores[ESCAPES[0]], scores["\\"]
    return "\\" if backslash is not None and (plain is None or backslash > plain) else ESCAPES[0]


def csv_dialect(quote_escape: str) -> dict[str, Any]:
    """Python's ``csv`` options for reading as Spark does with ``quote_escape``: with a backslash (Spark's default)
    a doubled quote is read as one too."""
    return {"doublequote": True, "escapechar": "\\" if quote_escape == "\\" else None}


def _shapes(head: Head, sep: str, quote_escape: str, strict: bool = False) -> list[int] | None:
    """The number of fields of each row of ``head`` after its header (a quoted line break inside a row), its last one
    left out where the head is not the whole file (it may be cut off); None where ``strict`` and a row does not parse
    (a quote inside quotes that is not escaped as ``quote_escape`` escapes it)."""
    import csv
    import io

    reader = csv.reader(io.StringIO(b"\n".join(head.lines[1:]).decode("utf-8", "replace")), delimiter=sep,
                        strict=strict, **csv_dialect(quote_escape))
    rows: list[int] = []
    try:
        for row in reader:
            if row:
                rows.append(len(row))
    except csv.Error:
        if head.whole or reader.line_num < len(head.lines) - 1:
            return None
        return rows  # a quoted field cut off at the end of the head: the rows before it
    return rows if head.whole else rows[:-1]


def delimiter(head: Head, uri: str = "", quote_escape: str = '"') -> str:
    """The delimiter of :data:`DELIMITERS` a CSV file is written with, from its ``head``: of those that split the
    header into more than one column and at least half the rows after it into as many fields, the one that gives
    the most columns (a comma on a tie), as DuckDB's sniffer takes the delimiter its rows agree on; without one, the
    delimiter that splits the header into the most columns. The header alone misled: a name with commas inside quotes
    (``a;b;c;"note, with, some, commas"``) split by commas into as many columns as by ``;``, a comma won the tie, and
    every row of the file was left out as unreadable (found in a review).

    A header of one column whose rows all split into as many fields (more than one) by one delimiter is refused
    (naming ``uri``): DuckDB reads such a file with its first row for the header and the header left out.
    Quotes are read with ``quote_escape`` (see :func:`escape`)."""
    if not head.lines:
        return ","
    columns, fields = {}, {}
    for sep in DELIMITERS:
        columns[sep] = len(header_columns(head.lines[0], sep, quote_escape))
        fields[sep] = _shapes(head, sep, quote_escape) or []
    agreed = [sep for sep in DELIMITERS if columns[sep] > 1
              and 2 * sum(n == columns[sep] for n in fields[sep]) >= len(fields[sep])]
    if agreed:
        return max(agreed, key=lambda sep: (columns[sep], sep == ","))
    split = [sep for sep in DELIMITERS if fields[sep] and len(set(fields[sep])) == 1 and fields[sep][0] > 1]
    if max(columns.values()) == 1 and split:
        sep = split[0]
        raise InputError(mask_text(
            f"source.files: the header of {local_path(uri)} names one column but its rows have {fields[sep][0]} "
            f"fields split by {sep!r}; expected a header naming every column (DuckDB would read the first row as the "
            f"header)"))
    return max(DELIMITERS, key=lambda sep: (columns[sep], sep == ","))


def header_columns(header: bytes, sep: str = ",", quote_escape: str = '"') -> list[str]:
    """A CSV header's column names as Spark reads them (double quotes, escaped as ``quote_escape`` escapes them; a
    blank name is _c<i>, as Spark names it)."""
    import csv

    names = next(csv.reader([header.decode("utf-8-sig", "replace")], delimiter=sep, **csv_dialect(quote_escape)), [])
    return [name or f"_c{i}" for i, name in enumerate(names)]
