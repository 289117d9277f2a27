"""What went wrong reading ``files`` on Spark (:mod:`.spark_files`), as one masked line: Spark's Java errors name
the files' problem in its own words (PATH_NOT_FOUND, CANNOT_MERGE_SCHEMAS, S3AFileSystem not found), or not at all;
and what is wrong with the entries before Spark starts (a recursive glob, a local entry matching no file)."""

from __future__ import annotations

import os
import re

from .errors import InputError, SourceError
from .masking import mask_text
from .source_errors import not_parquet
from .source_files import file_secrets, local_files
from .spark_errors import java_root_cause
from .spark_heads import local_path as _local_path
from .unreadable import CSV_SUFFIXES, is_csv


def _merge_conflict(text: str) -> str | None:
    """The column two files' schemas give different types, from Spark's CANNOT_MERGE_SCHEMAS message
    (its two schemas, "STRUCT<a: INT, ...>"); the innermost cause names only the types, so with a dozen
    columns the user could not tell which to rewrite (found in a Spark audit)."""
    structs = re.findall(r'"STRUCT<(.*?)>"', text, re.S)
    if len(structs) < 2:
        return None
    first, second = ({name: kind for name, _, kind in (f.partition(": ") for f in struct.split(", "))}
                     for struct in structs[:2])
    return next((name for name in first if name in second and first[name] != second[name]), None)


def _hadoop_version() -> str:
    """The version of the Hadoop libraries in Spark's JVM (3.4.1 for pyspark 4.0)."""
    try:
        from pyspark import SparkContext

        return str(SparkContext._jvm.org.apache.hadoop.util.VersionInfo.getVersion())
    except Exception:  # noqa: BLE001 - the JVM may be gone; the advice stands without the number
        return "<Spark's Hadoop version>"


def files_error(patterns: list[str], exc: BaseException, listed: list[str] | None = None) -> Exception:
    """One masked line for files Spark cannot read: a file URL may carry a password or a presigned
    signature (found in a Spark audit: shown as written), and PySpark's own message says nothing. ``listed``: the
    files the entries list (see :func:`_listed`), to name a CSV file among others read as Parquet."""
    reason = java_root_cause(exc, 500)  # a file's path and its columns: longer than a setting's error
    if "PATH_NOT_FOUND" in reason or "does not exist" in reason:
        error: Exception = InputError(f"source.files: no file matches {patterns} ({reason})")
    elif "CANNOT_MERGE_INCOMPATIBLE_DATA_TYPE" in reason:
        # mergeSchema refuses int in one file and bigint in another (DuckDB reads them); without it the
        # read failed later, or not at all, depending on which file Spark happened to take the columns from.
        # Spark's advice after the first sentence ("consider casting the columns") would cut the line.
        # The files, not the config, are wrong: "the source could not be read" (exit 3), as a CSV file
        # whose header differs from the others is.
        column = _merge_conflict(str(exc))
        error = SourceError(f"source.files: the files give {f'column {column!r}' if column else 'a column'} different "
                            f"types ({reason.split('. ')[0]}); expected one type per column in every file")
    elif "S3AFileSystem not found" in reason:
        # Java's class name says what it lacks, not what to add (found in a Spark audit). pyspark ships no
        # hadoop-aws; it must match Spark's own Hadoop, so the version is Spark's.
        error = SourceError(f"source.files: cannot read {patterns} (s3a:// needs the hadoop-aws jar, which Spark does "
                            f"not ship: \"spark.jars.packages\" = \"org.apache.hadoop:hadoop-aws:{_hadoop_version()}\" "
                            f"in [source.spark_conf], or the jar in Spark's jars folder; {reason})")
    elif "CANNOT_READ_FILE_FOOTER" in reason or "is not a Parquet file" in reason:
        endings = ", ".join(CSV_SUFFIXES[:-1]) + f" or {CSV_SUFFIXES[-1]}"
        # CSV beside Parquet files (DuckDB's source reads them all as Parquet and fails too, naming the CSV file)
        csv = next((f for f in listed or [] if is_csv([f])), None)
        other = next((f for f in listed or [] if not is_csv([f])), None)
        mixed = f" ({_local_path(csv)} is CSV but {_local_path(other)} is not)" if csv and other else ""
        # a file ending .parquet that is not Parquet (CSV text) is named, and what it looks like said, as on DuckDB
        error = SourceError(not_parquet([_local_path(f) for f in listed or []])
                            or f"source.files: cannot read {patterns} ({reason}); files are read as CSV only when "
                               f"every file ends in {endings}{mixed}")
    else:
        error = SourceError(f"source.files: cannot read {patterns} ({reason})")
    return type(error)(mask_text(str(error), file_secrets(patterns)))


def refuse_recursive_globs(patterns: list[str]) -> None:
    """Spark's (Hadoop's) path globs have no recursive ``**``: it matches exactly one folder, so
    ``events/**/*.parquet`` misses ``events/month=11/day=23/x.parquet`` (PATH_NOT_FOUND) and, where
    folders nest unevenly, would read some files and silently leave out the rest. Refused before Spark
    starts, saying what Spark does read."""
    for pattern in patterns:
        if "**" in pattern:
            raise InputError(mask_text(
                f"source.files: {pattern!r}: Spark's globs have no recursive '**' (it matches one folder "
                f"level, so files deeper down would be left out); name the folder itself (Spark reads every "
                f"file under it, month=11/-style folders as columns) or give each level: a/*/*/*.parquet",
                file_secrets(patterns)))


def refuse_local_files(patterns: list[str]) -> None:
    """Local entries that match no file, or CSV files beside others, said before Spark starts, as DuckDB's source
    says them: Spark took 25 s here to start and say it, with its own PATH_NOT_FOUND or "Could not read footer"
    error first in the line (found trying the usual Spark-user paths). Remote entries (s3a://) are Spark's to list,
    and so are globs of Hadoop's own syntax (``{2025,2026}``, ``[^a]``), which Python's glob does not read."""
    local = [p for p in patterns if not re.match(r"[A-Za-z][\w+.-]*:", p)]  # not file:, s3a://, hdfs:/x
    found: list[str] = []
    for pattern in local:
        files = local_files(pattern)
        if not files and any(ch in pattern for ch in "{}^\\"):
            return
        if not files:
            what = "no file in the folder" if os.path.isdir(pattern) else "no file matches"
            raise InputError(mask_text(f"source.files: {what} {pattern!r}"))
        found.extend(files)
    csv = next((f for f in found if is_csv([f])), None)
    other = next((f for f in found if not is_csv([f])), None)
    if len(local) == len(patterns) and csv and other:
        # The files, not the config: exit 3, as on DuckDB (README, Spark)
        raise SourceError(mask_text(f"source.files: cannot read {patterns}: {csv} is CSV but {other} is not, and "
                                    f"files are read as CSV only when every file ends in {', '.join(CSV_SUFFIXES[:-1])} "
                                    f"or {CSV_SUFFIXES[-1]}; expected files of one kind (convert the odd ones)"))
