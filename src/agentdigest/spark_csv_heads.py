"""What the head of each CSV file of a Spark ``files`` source says, read without reading its rows: its columns,
delimiter and quote escape (see :mod:`.spark_csv`), read for every CSV file. A local file's first lines are read by
Python, others through Spark's own Hadoop file system (so ``s3a://`` too).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .errors import InputError
from .masking import mask_text
from .spark_heads import local_path


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
