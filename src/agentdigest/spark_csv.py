"""Reading CSV ``files`` on Spark (see :mod:`.spark_files`): every file's columns by its own header, delimiter and
quote escape (:func:`.spark_csv_heads.csv_parts`), a quoted line break inside its field, every column as text
(``canonical()`` casts each to its canonical type), and the rows of the wrong shape, or not in UTF-8, left out and
counted as DuckDB's CSV sources leave them out (:mod:`.unreadable`).
"""

from __future__ import annotations

import functools
from typing import Any

from .masking import mask_text
from .source_files import file_secrets
from .spark_csv_heads import CsvPart, csv_dialect, csv_parts
from .spark_heads import local_path, only
from .unreadable import Unreadable


def read_csv(session: Any, paths: list[str], read: set[str]) -> tuple[Any, Unreadable | None]:
    """The CSV files of ``paths`` as one DataFrame, without the rows of the wrong shape, and those rows counted
    (see :func:`_without_unreadable`; ``read``: the columns a report reads, by the files' names). Spark's errors
    are raised as they are, for the caller to word."""
    # Read as text with a header. Spark takes the columns from one file's header and, by default, reads every other
    # file by position: a file with its columns in another order had its values swapped, silently (found in a Spark
    # audit). enforceSchema=false checks each file's header against them; files whose headers differ are read by
    # header, each set of files alike on its own (see .spark_csv_heads.csv_parts).
    df = session.read.csv(paths, header=True, inferSchema=False, enforceSchema=False, **_options(CsvPart([], None)))
    parts = csv_parts(session, df)
    if len(parts) > 1 or (parts[0].sep, parts[0].escape) != (",", '"'):
        df = functools.reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True),
                              (_csv_read(session, paths, part) for part in parts))
    return _without_unreadable(session, df, paths, read, parts)


def _csv_read(session: Any, paths: list[str], part: CsvPart, extra: list[Any] | None = None, **options: Any) -> Any:
    """The files of ``part`` (of ``paths``), every column as text (and the ``extra`` fields after them)."""
    from pyspark.sql import types as T

    schema = T.StructType([T.StructField(c, T.StringType()) for c in part.columns] + (extra or []))
    df = session.read.csv(paths, schema=schema, header=True, enforceSchema=False, **_options(part), **options)
    return df if part.files is None else only(df, part.files)


def _options(part: CsvPart) -> dict[str, Any]:
    """The options every read of ``part``'s files is made with: its delimiter and quote escape, and a quoted line
    break read inside its field (``multiLine``). Spark reads CSV line by line by default: an error message holding a
    line break (a stack trace) split its row, and those events were missing from the report where DuckDB reads them
    (found in a file-types audit). With ``multiLine`` each file is read whole by one task (no file is split)."""
    return {"sep": part.sep, "escape": part.escape, "multiLine": True}


def _without_unreadable(session: Any, df: Any, patterns: list[str], read: set[str],
                        parts: list[CsvPart]) -> tuple[Any, Unreadable | None]:
    """The CSV files' events without the rows of the wrong shape, and those rows counted (see :mod:`.unreadable`).

    Spark's default (PERMISSIVE) read a row with a field too few as if its last fields were null, and a row
    with a field too many without its extra fields: kept, its values altered, counted nowhere (found when
    DuckDB's CSV sources began counting such rows). Now the files are read once more, in one scan of them all
    (one aggregation, which Spark runs as a map stage and a final one, never a job per file), with every column as
    text and a ``columnNameOfCorruptRecord`` column, which Spark fills for exactly those rows; by file and split it
    counts the rows and the bad ones, and the position of the first. A count through the corrupt-record column
    alone is refused by Spark unless the DataFrame is cached (measured: twice the time, and the files held in
    memory); reading one data column as well is enough.
    Only when there are some are the events read with ``mode=DROPMALFORMED``, which leaves out the same rows.
    Both depend on CSV column pruning being off (pinned in :func:`.spark_session.spark_session`): with it on, Spark checks
    only the columns a query reads, and a row with a field too many was kept when only the first were read.

    Bytes that are not UTF-8 Spark reads as U+FFFD, without a word: such a row was kept (its garbled agent id a
    row of its own, a number in it failing the cast) where DuckDB leaves it out and counts it. A row holding
    U+FFFD in a column the report reads (``read``) is now counted in the same scan and left out too; in another
    column it is kept, as DuckDB keeps it. A row that holds the character itself (valid UTF-8, rare) is counted
    with them: after the read, the two cannot be told apart.

    Spark has no line numbers: the first is named by its row after the file's header ("row 25000 of
    events.csv after its header: 6 fields, expected 5", or "...: bytes that are not UTF-8"), counted from the
    splits' row counts; blank lines, which Spark skips, are not counted. The row's text is read for its number
    of fields, never shown. Where the rows cannot be counted (a header that differs from the schema: the
    events' own read fails naming the file) the events are read as before and ``None`` is returned."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    columns = df.columns
    bad = "_agentdigest_unreadable"
    while bad in columns or any(bad in part.columns for part in parts):
        bad += "_"
    decoded = [c for c in columns if c in read]
    try:
        # consecutive within a split (each split is read by one task, in order)
        row = F.monotonically_increasing_id().alias("row")
        marks = []
        for part in parts:
            marked = _csv_read(session, patterns, part, [T.StructField(bad, T.StringType())],
                               columnNameOfCorruptRecord=bad)
            garbled = F.col(bad).isNull() & _garbled(marked, [c for c in part.columns if c in read])
            marks.append(marked.select(F.col("_metadata.file_path").alias("file"),
                                       F.col("_metadata.file_block_start").alias("start"), row, bad,
                                       garbled.alias("garbled"), F.lit(len(part.columns)).alias("expected"),
                                       F.lit(part.sep).alias("sep"), F.lit(part.escape).alias("escape"),
                                       # a data column: Spark refuses a query of the corrupt-record column alone
                                       marked[part.columns[0]].alias("data")))
        where = F.when(F.col(bad).isNotNull() | F.col("garbled"), F.col("row"))
        splits = (functools.reduce(lambda a, b: a.unionAll(b), marks)
                  .groupBy("file", "start")
                  .agg(F.count(F.lit(1)).alias("rows"), F.count(bad).alias("bad"),
                       F.count(F.when(F.col("garbled"), 1)).alias("garbled"), F.min("row").alias("first_row"),
                       F.min(where).alias("first_bad"), F.min_by(bad, where).alias("text"),
                       F.max("expected").alias("expected"), F.max("sep").alias("sep"),
                       F.max("escape").alias("escape"), F.count("data"))
                  .collect())
    except Exception:  # noqa: BLE001 - the events' own read says what is wrong
        return df, None
    rows = sum(s["rows"] for s in splits)
    skipped = sum(s["bad"] + s["garbled"] for s in splits)
    if not skipped:
        return df, Unreadable(rows=0, first="", read=rows)
    first = min((s for s in splits if s["bad"] or s["garbled"]), key=lambda s: (s["file"], s["start"]))
    before = sum(s["rows"] for s in splits if s["file"] == first["file"] and s["start"] < first["start"])
    number = before + first["first_bad"] - first["first_row"] + 1
    path = local_path(first["file"])
    if first["text"] is None:  # the corrupt-record column is filled for a row of the wrong shape only
        cause = "bytes that are not UTF-8"
    else:
        fields = _fields(first["text"], first["sep"], first["escape"])
        cause = f"{fields} field{'' if fields == 1 else 's'}, expected {first['expected']}"
    unreadable = Unreadable(rows=skipped, first=mask_text(f"row {number} of {path} after its header: {cause}",
                                                          file_secrets(patterns)), read=rows - skipped)
    events = df
    if any(s["bad"] for s in splits):
        # a failure here is worded by the caller (spark_file_errors.files_error), as one of the events' own read
        events = functools.reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True),
                                  (_csv_read(session, patterns, part, mode="DROPMALFORMED") for part in parts))
    if any(s["garbled"] for s in splits):
        events = events.filter(~_garbled(events, decoded))
    return events, unreadable


def _garbled(df: Any, columns: list[str]) -> Any:
    """Whether a row (every column read as text) holds U+FFFD: how Spark reads bytes that are not UTF-8."""
    from pyspark.sql import functions as F

    if not columns:
        return F.lit(False)
    return F.coalesce(F.concat_ws("\n", *(df[c] for c in columns)).contains("\ufffd"), F.lit(False))


def _fields(text: str, sep: str = ",", quote_escape: str = '"') -> int:
    """The number of fields of a CSV row (a quoted line break inside it) as Spark reads it with ``quote_escape``."""
    import csv
    import io

    return len(next(csv.reader(io.StringIO(text), delimiter=sep, **csv_dialect(quote_escape)), []))
