"""Reading ``files`` on Spark (:mod:`.spark`): Parquet or CSV paths, globs and ``s3a://`` as one events table (CSV
files by :mod:`.spark_csv`), and the files' errors as one masked line.

Also what Spark 4.0 misreads in a Parquet file's schema, read from the file's own footer: an always-null column
(Parquet's UNKNOWN annotation: pandas' column of None), read as INT, and nanosecond timestamps, read as numbers
(``spark.sql.legacy.parquet.nanosAsLong``). Found in a review: files such as these failed every run where DuckDB
reads them.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any

import ibis
import ibis.expr.types as ir

from .errors import InputError, SourceError
from .masking import mask_text
from .source_errors import not_csv_text
from .source_files import _data_files, file_secrets, local_files
from .spark_errors import java_root_cause
from .spark_csv import read_csv
from .spark_file_errors import files_error
from .spark_heads import (BINARY, INTEGERS, Footer, empty_and_odd, only, read_footer, read_types, type_conflict,
                          union_type, widened)
from .spark_heads import local_path as _local_path
from .unreadable import CSV_SUFFIXES, Unreadable, is_csv


def _spark_files(session: Any, con: Any, patterns: list[str], read: set[str]) -> tuple[ir.Table, Unreadable | None]:
    """Parquet or CSV files (Spark expands globs itself, local or s3a://) as one events table, and for CSV
    files the rows left out for their shape (see :func:`.spark_csv.read_csv`)."""
    unreadable = None
    # CSV as DuckDB's source tells it (.tsv too: Spark read a .tsv file as Parquet and failed every run, exit 3,
    # where DuckDB reads it; found in a review); each file's delimiter is then taken from it (see csv_parts).
    # By the files the entries list, as DuckDB's source lists them first: a folder or a glob such as events/*
    # holding only CSV files was read as Parquet and failed (exit 3), where DuckDB reads them (found in a review).
    listed = _listed(session, patterns)
    csv = is_csv(listed)
    if csv and (wrong := not_csv_text(listed, _local_path)):  # as DuckDB's source says it
        raise SourceError(mask_text(wrong, file_secrets(patterns)))
    try:
        if csv:
            # A file two entries name, once (see _repeated_files): CSV entries name files, so the files themselves
            # read as the entries do (no partition folders to lose).
            paths = _data_files(patterns) if any(_repeated_files(patterns)) else patterns
            df, unreadable = read_csv(session, paths, read)
            frames = [df]
        else:
            frames = _parquet_frames(session, patterns, read)
            df = functools.reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)
    except InputError:
        raise  # worded already, naming the file
    except Exception as exc:
        raise files_error(patterns, exc, listed) from exc
    # Each entry on its own: another entry's partition columns say nothing of this one's folders.
    stray = next(filter(None, (_beside_partitions(f.inputFiles(), set(f.columns)) for f in frames)), None)
    if stray:
        raise SourceError(mask_text(
            f"source.files: {stray} is beside the partition folders (name=value) that hold the other files, and "
            f"Spark would leave its rows out without a word; move it into a partition folder or out of {patterns}",
            file_secrets(patterns)))
    if missed := _left_out(listed, frames):
        raise SourceError(mask_text(
            f"source.files: Spark reads no file in a subfolder that is not a partition folder (name=value), so "
            f"{missed} would be left out without a word (DuckDB reads it); name each level "
            f"(events/*/*/*.parquet) or move it up", file_secrets(patterns)))
    name = ibis.util.gen_name("agent_events")
    df.createOrReplaceTempView(name)
    return con.table(name), unreadable


def _parquet_frames(session: Any, patterns: list[str], read: set[str]) -> list[Any]:
    """The Parquet files of ``patterns`` as DataFrames to union by name: one, or one per entry (or set of files)."""
    repeated = _repeated_files(patterns)
    try:
        if not any(repeated):
            # Spark takes the columns from one file's footer: a column only later files have (cost_usd added
            # last month) was dropped and the report said the column does not exist (found in a Spark audit).
            # Merged, every file's columns are there, null in the files without them.
            try:
                return [nanos_read(session, session.read.option("mergeSchema", "true").parquet(*patterns), read)]
            except Exception as exc:
                if len(patterns) < 2 or "CONFLICTING_DIRECTORY_STRUCTURES" not in java_root_cause(exc):
                    raise
        # Spark reads a list of paths as one table under one root: a partitioned folder listed with a file
        # elsewhere (["events", "backfill/x.parquet"]) failed every run, where DuckDB reads them (found in a
        # Spark audit). Then each entry is read on its own and unioned by name; only then, since a read
        # per entry is slower (60 one-file entries: 8 s instead of 1.5 s). So is a list that names a file twice.
        frames = [_read_entry(session, pattern, skip) for pattern, skip in zip(patterns, repeated)]
        types = {(field.name, field.dataType) for frame in frames for field in frame.schema.fields}
        if len(types) == len({name for name, _ in types}):
            return [nanos_read(session, frame, read) for frame in frames]
        # The entries give a column different types, which a union would cast to one of them (text beside a number
        # was read as Spark's union makes it, where the same files in one glob were refused: found in a review).
        return (_checked_frames(session, patterns, repeated)
                or [nanos_read(session, frame, read) for frame in frames])
    except Exception as exc:
        reason = java_root_cause(exc)
        # FLOAT16 or UUID: Spark refuses to read a schema with either, read then by the footers (see BINARY)
        if "CANNOT_MERGE_INCOMPATIBLE_DATA_TYPE" not in reason and not _BINARY_REFUSED.search(reason):
            raise
        frames = _checked_frames(session, patterns, repeated)
        if frames is None:
            raise
        return frames


#: Spark's refusal of a column of a type in :data:`.spark_heads.BINARY`
_BINARY_REFUSED = re.compile(r"PARQUET_TYPE_ILLEGAL\].*\((FLOAT16|UUID)\)")


def _checked_frames(session: Any, patterns: list[str], repeated: list[set[str]]) -> list[Any] | None:
    """The files of ``patterns`` by their footers (see :func:`_by_footers`), for files that give a column different
    types: those without a row that give it another are skipped (:func:`.spark_heads.empty_and_odd`), types that
    no widening makes one are refused naming the files (:func:`.spark_heads.type_conflict`), the rest read as
    DuckDB reads them. None when the footers show nothing Spark misreads."""
    footers = _footers(session, patterns, repeated)
    empty = empty_and_odd(footers)
    kept = {key: footer for key, footer in footers.items() if key not in empty}
    conflict = type_conflict(kept)
    if conflict is not None:
        raise InputError(mask_text(conflict, file_secrets(patterns)))
    frames = _by_footers(session, patterns, kept, every=bool(empty))
    return _with_columns_of(frames, [footers[key] for key in sorted(empty)]) if frames and empty else frames


def _with_columns_of(frames: list[Any], skipped: list[Footer]) -> list[Any]:
    """``frames`` with the columns only ``skipped`` files have, null, of the type DuckDB reads them as (see
    :func:`.spark_heads.union_type`; the first such file's type, before, refused a boolean beside a double): DuckDB
    reads a file without rows, and its columns are there, null, where a column only it had was absent on Spark and
    the report left its metric out (found in a review)."""
    from pyspark.sql import functions as F

    columns = {c for frame in frames for c in frame.columns}
    missing: dict[str, list[str]] = {}
    for footer in skipped:
        for column, kind in {**footer.types, **read_types(footer)}.items():
            if column not in columns:
                missing.setdefault(column, []).append(kind)
    if not missing:
        return frames
    return [frames[0].withColumns({c: F.lit(None).cast(union_type(kinds)) for c, kinds in missing.items()}),
            *frames[1:]]


def _read_entry(session: Any, pattern: str, skip: set[str]) -> Any:
    """One ``files`` entry, without the files of ``skip`` (real paths: read by an earlier entry)."""
    df = session.read.option("mergeSchema", "true").parquet(pattern)
    return only(df, [f for f in df.inputFiles() if os.path.realpath(_local_path(f)) not in skip]) if skip else df


def _footers(session: Any, patterns: list[str], repeated: list[set[str]]) -> dict[tuple[str, str], Footer]:
    """The footer of each file of each entry, by (entry, file URI), without the files an earlier entry names.
    Eight at a time: each is a few dozen round trips to Spark's JVM (200 files: 2.4 s instead of 3.5 s here)."""
    from concurrent.futures import ThreadPoolExecutor

    # listed under a schema: Spark's own would read a footer, and fail on one it refuses (see BINARY)
    keys = [(pattern, f) for pattern, skip in zip(patterns, repeated)
            for f in sorted(session.read.schema("_agentdigest_listing int").parquet(pattern).inputFiles())
            if os.path.realpath(_local_path(f)) not in skip]
    with ThreadPoolExecutor(8) as pool:
        return dict(zip(keys, pool.map(lambda key: read_footer(session, key[1]), keys)))


def _by_footers(session: Any, patterns: list[str], footers: dict[tuple[str, str], Footer],
                every: bool = False) -> list[Any] | None:
    """Files whose schemas Spark cannot merge because of what Spark 4.0 misreads in them (see
    :func:`.spark_heads.read_footer`): an all-null column (pandas writes a column of None as Parquet's null
    type) that Spark reads as INT beside files where it is text or a double, and nanosecond timestamps (a number)
    beside microsecond ones. Every run failed, "the files give column 'error_type' different types" (exit 3), where DuckDB reads the
    nulls as nulls of the other files' type (found in a review). Each entry's set of files alike is read on its
    own, without its all-null columns and with its nanoseconds as timestamps, to be unioned by name: an all-null
    column is then null of the other files' type. Numbers of two types (int in some files, bigint in others: every
    run failed where DuckDB reads them, found in a schema-drift audit) are read likewise, each set of files with its
    own, and cast to the type DuckDB reads them all as (see :func:`.spark_heads.wider`). None when the files differ
    in none of these ways, unless ``every``: then the sets are read even so, since ``footers`` leaves out some files
    of the entries (see :func:`.spark_heads.empty_and_odd`). Only then are the files' footers read."""
    from collections import defaultdict
    from urllib.parse import unquote

    from pyspark.sql import types as T

    kinds = {key: footer.kinds for key, footer in footers.items()}
    typed = {c for k in kinds.values() for c, kind in k.items() if kind != "null"}
    wide = widened(footers)
    groups: dict[tuple[str, frozenset[str], frozenset[str], frozenset[tuple[str, str]], frozenset[tuple[str, str]]],
                 list[str]] = defaultdict(list)
    for (pattern, f), k in kinds.items():
        groups[(pattern, frozenset(c for c, kind in k.items() if kind == "null" and c in typed),
                frozenset(c for c, kind in k.items() if kind == "nanos"),
                frozenset((c, kind) for c, kind in read_types(footers[(pattern, f)]).items() if c in wide),
                frozenset((c, kind) for c, kind in k.items() if kind in BINARY))].append(f)
    if (not every and not wide and not any(dropped or binary for _, dropped, _, _, binary in groups)
            and len({nanos for _, _, nanos, _, _ in groups}) < 2):
        return None
    frames = []
    for (pattern, dropped, nanos, _, binary), group in groups.items():
        # The set's own columns and types (its files by name: no partition folders, which the entry's read adds);
        # by their footers where Spark would refuse the files' own schemas (see BINARY)
        schema = (_merged([footers[(pattern, f)] for f in group]) if binary else
                  session.read.option("mergeSchema", "true").parquet(*(unquote(f) for f in group)).schema)
        kept = T.StructType([field for field in schema.fields if field.name not in dropped])
        frame = from_nanos(only(session.read.schema(kept).parquet(pattern), group), nanos)
        frame = from_bytes(frame, dict(binary)) if binary else frame
        # The narrower numbers cast to the type DuckDB reads them all as (see .spark_heads.wider)
        narrower = {f.name: f.dataType.simpleString() for f in frame.schema.fields
                    if f.name in wide and f.dataType.simpleString() != wide[f.name]}
        frames.append(frame.withColumns({c: _widen(c, kind, wide[c]) for c, kind in sorted(narrower.items())})
                      if narrower else frame)
    return frames


def _merged(footers: list[Footer]) -> Any:
    """The columns of files whose types :func:`_checked_frames` found alike, as one schema: each column's first."""
    import json

    from pyspark.sql import types as T

    fields: dict[str, Any] = {}
    for footer in footers:
        for field in T.StructType.fromJson(json.loads(footer.schema)).fields:
            fields.setdefault(field.name, field)
    return T.StructType(list(fields.values()))


def from_bytes(df: Any, kinds: dict[str, str]) -> Any:
    """Columns read as bytes (see :data:`.spark_heads.BINARY`; ``kinds``: column -> its kind) as DuckDB reads them:
    a UUID as its canonical text (lower-case hex, 8-4-4-4-12), a half float (IEEE 754 binary16, little-endian) as a
    float (each is one exactly), infinities and NaN included."""
    from pyspark.sql import functions as F

    columns = {}
    for column, kind in sorted(kinds.items()):
        value = F.col(_quoted(column))
        if kind == "uuid":
            text = F.lower(F.hex(value))
            columns[column] = F.when(value.isNotNull(), F.concat_ws("-", *(
                F.substring(text, start, n) for start, n in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12)))))
        else:
            text = F.hex(value)
            bits = F.conv(F.concat(F.substring(text, 3, 2), F.substring(text, 1, 2)), 16, 10).cast("int")
            exponent, fraction = F.shiftright(bits, 10).bitwiseAND(31), bits.bitwiseAND(1023)
            magnitude = (F.when(exponent == 0, fraction * F.lit(2.0 ** -24))
                         .when(exponent < 31, (fraction + 1024) * F.pow(F.lit(2.0), exponent - 25))
                         .when(fraction == 0, F.lit(float("inf"))).otherwise(F.lit(float("nan"))))
            signed = F.when(bits.bitwiseAND(32768) != 0, -magnitude).otherwise(magnitude)
            columns[column] = F.when(value.isNotNull(), signed.cast("float"))  # else NaN: the otherwise above
    return df.withColumns(columns)


def _widen(column: str, kind: str, wide: str) -> Any:
    """``column``, of type ``kind``, cast to ``wide``. An integer becomes a float through a double: Spark's
    optimizer drops a cast to float that a cast to double follows (the report's own), and 2^31 - 1 read 2147483647
    where DuckDB reads 2147483648 (found testing this). Exact up to 2^53; above, a bigint may round otherwise."""
    from pyspark.sql import functions as F

    value = F.col(_quoted(column))
    return (value.cast("double") if wide == "float" and kind in INTEGERS else value).cast(wide)


def _quoted(column: str) -> str:
    """``column`` as Spark SQL names it (a name may hold a dot or a backtick)."""
    return "`" + column.replace("`", "``") + "`"


def _listed(session: Any, patterns: list[str]) -> list[str]:
    """The files ``patterns`` name, to tell CSV from Parquet by (see :func:`.unreadable.is_csv`): a local entry's as
    DuckDB's source lists them (:func:`.source_files.local_files`), a remote one's (``s3a://``) as Spark lists them, one
    listing of the entry (unless its own name ends as a CSV file's); an entry that lists no file, as written (its
    read then says what is wrong)."""
    files: list[str] = []
    for pattern in patterns:
        local = _local_path(pattern) if pattern.startswith("file:") else None if "://" in pattern else pattern
        if local is not None:
            files.extend(local_files(local) or [pattern])
        elif pattern.lower().endswith(CSV_SUFFIXES):
            files.append(pattern)
        else:
            try:
                files.extend(session.read.text(pattern).inputFiles() or [pattern])
            except Exception:  # noqa: BLE001 - the entry's own read words it
                files.append(pattern)
    return files


def _left_out(listed: list[str], frames: list[Any]) -> str | None:
    """A local file DuckDB's source reads (``listed``, see :func:`_listed`) that Spark does not: in a folder entry,
    Spark reads the files of partition folders (``date=2026-11-16/``) only, and a file in ``events/2026/11/`` beside
    ``events/b.parquet`` had its rows left out of every figure, silently (found in a review)."""
    # By folder: a file Spark lists but skips on purpose (a Parquet file without rows, see _read_entry) sits beside
    # files it reads.
    read = {os.path.dirname(os.path.realpath(_local_path(f)))
            for frame in frames for f in frame.inputFiles() if f.startswith("file:")}
    return next((f for f in sorted(listed) if "://" not in f and not f.startswith("file:") and os.path.isfile(f)
                 and os.path.dirname(os.path.realpath(f)) not in read), None)


def _repeated_files(patterns: list[str]) -> list[set[str]]:
    """For each entry, the real paths of its local files that an earlier entry names already: Spark read such a
    file once per entry (["events/*", "events/date=1/x.parquet"], a folder and a file in it), its events doubled
    without a word (found in a review). Files are matched as DuckDB's source matches them (source_files.local_files);
    ``s3a://`` and other remote entries cannot be listed here and are read as given."""
    seen: set[str] = set()
    repeated: list[set[str]] = []
    for pattern in patterns:
        local = _local_path(pattern) if pattern.startswith("file:") else None if "://" in pattern else pattern
        found = {os.path.realpath(f) for f in local_files(local)} if local else set()
        repeated.append(found & seen)
        seen |= found
    return repeated


def _beside_partitions(files: list[str], columns: set[str]) -> str | None:
    """A file Spark lists but never reads: in a folder of partition folders (``date=2026-11-16/``), a file
    outside them (a backfill dropped into ``events/``) belongs to no partition, and its rows were left out of
    every figure, silently (found in a Spark audit; a glob such as ``events/*`` reads it, as DuckDB does)."""
    def keys(path: str) -> int:
        return sum(1 for part in path.split("/")[:-1] if part.partition("=")[0] in columns and "=" in part)
    depth = {path: keys(path) for path in files}
    deepest = max(depth.values(), default=0)
    return next((path for path in sorted(files) if depth[path] < deepest), None)


def nanos_read(session: Any, df: Any, read: set[str]) -> Any:
    """``df`` with its nanosecond timestamps as timestamps: Spark reads them as numbers (bigint), which a report
    would refuse as an event_ts. Only a bigint column a report reads is checked, in one file's footer (a column
    that is nanoseconds in some files and microseconds in others cannot be merged: see _by_footers)."""
    from pyspark.sql import types as T

    numbers = {f.name for f in df.schema.fields if f.name in read and isinstance(f.dataType, T.LongType)}
    files = sorted(df.inputFiles()) if numbers else []
    if not files:
        return df
    return from_nanos(df, {c for c, kind in read_footer(session, files[0]).kinds.items() if kind == "nanos"} & numbers)


def from_nanos(df: Any, columns: set[str]) -> Any:
    """Nanoseconds since 1970 as timestamps, truncated to microseconds as DuckDB reads them (naive ones, whose
    number counts from a local 1970, are UTC: the event contract)."""
    from pyspark.sql import functions as F

    for column in sorted(columns):
        df = df.withColumn(column, F.timestamp_micros(F.expr(f"{_quoted(column)} div 1000")))
    return df
