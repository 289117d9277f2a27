"""What each file of a Spark ``files`` source says at its head, read without reading its rows: a Parquet file's
footer (its row count, its columns as Spark reads them, what Spark 4.0 misreads in them) through Spark's own Hadoop
file system (so ``s3a://`` too). Read file by file, and only where the files' schemas do not merge: the footers of
a folder that reads as it is are never opened here (see :mod:`.spark_files`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Footer:
    """A Parquet file's footer, as far as reading ``files`` needs it."""

    rows: int
    #: top-level column -> its type as Spark reads it ("int", "bigint", "string": DataType.simpleString())
    types: dict[str, str]
    #: top-level column -> what Spark 4.0 misreads in it (see :func:`read_footer`)
    kinds: dict[str, str]


def read_footer(session: Any, uri: str) -> Footer:
    """The footer of the Parquet file ``uri``. Its ``kinds``: "null" for an always-null column (Parquet's UNKNOWN
    annotation), which Spark reads as INT; "nanos" for TIMESTAMP(NANOS), which it reads as a number
    (spark.sql.legacy.parquet.nanosAsLong); "" for the others. From the file's Thrift footer: parquet-java's
    schema drops the UNKNOWN annotation. Its ``types`` from the same footer, by Spark's own converter under the
    session's settings (as mergeSchema reads each file)."""
    import json

    from pyspark.sql.types import StructType

    jvm = session._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(session._jsc.hadoopConfiguration())
    size = fs.getFileStatus(path).getLen()
    stream = fs.open(path)
    try:
        stream.seek(size - 8)  # the footer's length (4 bytes, little-endian), then "PAR1"
        length = int.from_bytes(int(stream.readInt()).to_bytes(4, "big", signed=True), "little")
        stream.seek(size - 8 - length)
        meta = jvm.org.apache.parquet.format.Util.readFileMetaData(stream)
    finally:
        stream.close()
    elements = list(meta.getSchema())
    kinds: dict[str, str] = {}
    i = 1  # after the root: each top-level column, then the elements of its nested ones
    while i < len(elements):
        element = elements[i]
        logical = element.getLogicalType() if element.isSetLogicalType() else None
        kinds[element.getName()] = ("null" if logical is not None and logical.isSetUNKNOWN() else
                                    "nanos" if logical is not None and logical.isSetTIMESTAMP()
                                    and logical.getTIMESTAMP().getUnit().isSetNANOS() else "")
        i += _subtree(elements, i)
    schema = jvm.org.apache.parquet.format.converter.ParquetMetadataConverter().fromParquetMetadata(meta) \
        .getFileMetaData().getSchema()
    converter = jvm.org.apache.spark.sql.execution.datasources.parquet.ParquetToSparkSchemaConverter(
        session._jsparkSession.sessionState().conf())
    struct = StructType.fromJson(json.loads(converter.convert(schema).json()))
    types = {field.name: field.dataType.simpleString() for field in struct.fields}
    return Footer(rows=int(meta.getNum_rows()), types=types, kinds=kinds)


def _subtree(elements: list[Any], i: int) -> int:
    """The number of schema elements of the column at ``i``, its nested ones included."""
    size, j = 1, i + 1
    for _ in range(elements[i].getNum_children() if elements[i].isSetNum_children() else 0):
        n = _subtree(elements, j)
        size, j = size + n, j + n
    return size


#: The most of a CSV file's first line read for its header: a file without a line break is not read whole.
HEADER_LIMIT = 1 << 20


def first_line(session: Any, uri: str) -> bytes:
    """The first line of the CSV file ``uri`` (as Spark lists it) that is not blank, as Spark takes a header,
    without its line break; of a ``.gz`` file, of its text. No more than :data:`HEADER_LIMIT` bytes are read: a
    file without a line break is not read whole. Local files are read here (a read through Spark's JVM took 10 ms
    a file), others through Spark's Hadoop file system (``s3a://``). Empty for a file with no line."""
    import gzip

    if uri.startswith("file:"):
        path = local_path(uri)
        with (gzip.open(path, "rb") if path.lower().endswith(".gz") else open(path, "rb")) as f:
            left = HEADER_LIMIT
            while left > 0 and (line := f.readline(left)):
                left -= len(line)
                if line.strip():
                    return line.rstrip(b"\r\n")
        return b""
    jvm = session._jvm
    conf = session._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(uri)
    stream = path.getFileSystem(conf).open(path)
    try:
        codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf).getCodec(path)
        text = codec.createInputStream(stream) if codec is not None else stream
        bounded = jvm.org.apache.commons.io.input.BoundedInputStream(text, HEADER_LIMIT)
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(bounded, "UTF-8"))
        while (line := reader.readLine()) is not None:
            if line.strip():
                return line.encode("utf-8", "replace")
    finally:
        stream.close()
    return b""


def local_path(url: str) -> str:
    """``file:/tmp/events%20x.csv`` -> ``/tmp/events x.csv``; other URLs as Spark gives them."""
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(url).path) if url.startswith("file:") else url
