"""What Spark 4.0 misreads in a Parquet file's schema, read from the file's own footer, for the Spark source
(:mod:`.spark`): an always-null column (Parquet's UNKNOWN annotation: pandas' column of None), read as INT, and
nanosecond timestamps, read as numbers (``spark.sql.legacy.parquet.nanosAsLong``). Found in a review: files such as
these failed every run where DuckDB reads them.
"""

from __future__ import annotations

from typing import Any


def footer_kinds(session: Any, uri: str) -> dict[str, str]:
    """A Parquet file's top-level columns by what Spark 4.0 misreads in them: "null" for an always-null column
    (Parquet's UNKNOWN annotation), which Spark reads as INT; "nanos" for TIMESTAMP(NANOS), which it reads as a
    number (spark.sql.legacy.parquet.nanosAsLong); "" for the others. From the file's Thrift footer, through
    Spark's own Hadoop file system (so s3a:// too): parquet-java's schema drops the UNKNOWN annotation."""
    jvm = session._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(session._jsc.hadoopConfiguration())
    size = fs.getFileStatus(path).getLen()
    stream = fs.open(path)
    try:
        stream.seek(size - 8)  # the footer's length (4 bytes, little-endian), then "PAR1"
        length = int.from_bytes(int(stream.readInt()).to_bytes(4, "big", signed=True), "little")
        stream.seek(size - 8 - length)
        elements = list(jvm.org.apache.parquet.format.Util.readFileMetaData(stream).getSchema())
    finally:
        stream.close()
    kinds: dict[str, str] = {}
    i = 1  # after the root: each top-level column, then the elements of its nested ones
    while i < len(elements):
        element = elements[i]
        logical = element.getLogicalType() if element.isSetLogicalType() else None
        kinds[element.getName()] = ("null" if logical is not None and logical.isSetUNKNOWN() else
                                    "nanos" if logical is not None and logical.isSetTIMESTAMP()
                                    and logical.getTIMESTAMP().getUnit().isSetNANOS() else "")
        i += _subtree(elements, i)
    return kinds


def _subtree(elements: list[Any], i: int) -> int:
    """The number of schema elements of the column at ``i``, its nested ones included."""
    size, j = 1, i + 1
    for _ in range(elements[i].getNum_children() if elements[i].isSetNum_children() else 0):
        n = _subtree(elements, j)
        size, j = size + n, j + n
    return size


def nanos_read(session: Any, df: Any, read: set[str]) -> Any:
    """``df`` with its nanosecond timestamps as timestamps: Spark reads them as numbers (bigint), which a report
    would refuse as an event_ts. Only a bigint column a report reads is checked, in one file's footer (a column
    that is nanoseconds in some files and microseconds in others cannot be merged: see spark._by_footers)."""
    from pyspark.sql import types as T

    numbers = {f.name for f in df.schema.fields if f.name in read and isinstance(f.dataType, T.LongType)}
    files = sorted(df.inputFiles()) if numbers else []
    if not files:
        return df
    return from_nanos(df, {c for c, kind in footer_kinds(session, files[0]).items() if kind == "nanos"} & numbers)


def from_nanos(df: Any, columns: set[str]) -> Any:
    """Nanoseconds since 1970 as timestamps, truncated to microseconds as DuckDB reads them (naive ones, whose
    number counts from a local 1970, are UTC: the event contract)."""
    from pyspark.sql import functions as F

    for column in sorted(columns):
        quoted = "`" + column.replace("`", "``") + "`"
        df = df.withColumn(column, F.timestamp_micros(F.expr(f"{quoted} div 1000")))
    return df
