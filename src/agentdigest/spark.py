"""The Spark source, registered by URL scheme like any extension would be.

``pyspark://<master>`` (``pyspark://local[2]``, ``pyspark://spark://host:7077``, ``pyspark://yarn``)
reads ``files`` (Parquet or CSV paths, globs, ``s3a://``) or a catalog ``table``. The session binds
to 127.0.0.1 in local mode, has no UI, runs in UTC with ANSI SQL, sizes its shuffle to the cores and
keeps its (empty) warehouse in a temporary folder; a ``[source.spark_conf]`` setting overrides these,
except the ones that would change what a report says (:data:`SPARK_FIXED_CONF`). Parquet files are read
with their schemas merged (a column only some files have is null in the others). Latency quantiles use
Spark's approximate percentile.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir

from .config import CANONICAL_COLUMNS, SourceConfig
from .errors import InputError, SourceError, first_line, install_extra
from .masking import mask_text
from .parquet_footers import footer_kinds, from_nanos, nanos_read
from .sources import _data_files, _table, file_secrets, local_files, register_backend
from .unreadable import Unreadable

# Spark's percentile_approx accuracy: relative rank error is 1/accuracy (Spark's default is 10000,
# i.e. 0.01%); well within the 1% the README promises (Scaling up, Spark), at a fraction of the exact percentile's cost.
SPARK_QUANTILE_ACCURACY = 10000


def spark_master(url: str) -> str:
    """``pyspark://local[2]`` -> ``local[2]``; ``pyspark://spark://h:7077`` -> ``spark://h:7077``."""
    rest = url.split("://", 1)[1] if "://" in url else ""
    return rest.rstrip("/") or "local[*]"


def _local_cores(master: str) -> int | None:
    m = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\s*\d+)?\])?", master)
    if not m:
        return None
    if m.group(1) is None:
        return 1
    return (os.cpu_count() or 2) if m.group(1) == "*" else int(m.group(1))


def check_java() -> str:
    """The java executable Spark will use, or a SourceError saying how to get one."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        raise SourceError("source: Spark needs Java 17 and none was found (install openjdk-17-jre-headless, "
                          "or set JAVA_HOME)")
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceError(f"source: Spark needs Java 17; {java} does not run ({exc})") from None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    major = int(m.group(1)) if m else None
    if major is not None and major == 1:  # "1.8.0" style
        major = int(m.group(2) or 0)
    if major is not None and major < 17:
        raise SourceError(f"source: Spark 4 needs Java 17 or later; {java} is Java {major}")
    return java


#: [source.spark_conf] keys refused (any letter case; Spark's keys are case-sensitive, so "Spark.Master"
#: would be ignored rather than refused), with why. Found in a Spark audit: each changed what a report
#: says without a word, or made an error name the wrong thing.
SPARK_FIXED_CONF = {
    "spark.sql.ansi.enabled": "with ANSI SQL off, a value that does not convert to its column's type becomes "
                              "null without an error, and silently leaves the metrics",
    "spark.master": "the master is the one in source.url (pyspark://<master>); this one would override it "
                    "and errors would then name the wrong one",
    "spark.sql.session.timezone": "event times are read in UTC (naive ones are UTC, as the event contract says; "
                                  "Ibis resets the session to UTC anyway); a report's own timezone is its "
                                  "`timezone` in [[reports]]",
    "spark.sql.csv.parser.columnpruning.enabled": "with CSV column pruning on, Spark checks a row's shape only "
                                                  "against the columns a query reads: whether a row with a field "
                                                  "too many or too few is left out would depend on the query, and "
                                                  "the rows counted unreadable would not be the rows left out",
    "spark.sql.sources.partitioncolumntypeinference.enabled": "with it on, Spark reads a partition folder's value "
                                                              "as a number where it can: agents in agent_id=007/ "
                                                              "and agent_id=012/ became '7' and '12'",
}


def check_spark_conf(conf: dict[str, Any]) -> None:
    """Refuse the [source.spark_conf] keys of :data:`SPARK_FIXED_CONF`, as the PostgreSQL source refuses
    ``timezone``: a config error naming the key, before Spark starts."""
    for key in conf:
        why = SPARK_FIXED_CONF.get(key.lower())
        if why:
            raise InputError(f"source.spark_conf.{key}: agentdigest sets this itself ({why}); expected it left out")


def spark_session(master: str, conf: dict[str, Any] | None = None) -> Any:
    """Get or create the SparkSession for ``master`` with laptop-safe defaults (see module doc)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SourceError(f"source: pyspark:// needs Spark; {install_extra('spark')}") from None
    check_spark_conf(conf or {})
    check_java()
    settings: dict[str, Any] = {
        "spark.app.name": "agentdigest",
        "spark.ui.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        # Spark 4's default, pinned against a spark-defaults.conf that turns it off (see SPARK_FIXED_CONF).
        "spark.sql.ansi.enabled": "true",
        # Off (Spark's default is on): a CSV row with a field too many or too few is told by its whole line, not
        # by the columns a query happens to read (see _without_unreadable; SPARK_FIXED_CONF).
        "spark.sql.csv.parser.columnPruning.enabled": "false",
        "spark.sql.adaptive.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        # Naive Parquet timestamps (isAdjustedToUTC=false) as TIMESTAMP, read in the session's UTC: naive is UTC
        # (event contract). As TIMESTAMP_NTZ (Spark 4's default) mergeSchema refused them beside files whose
        # event_ts has a time zone, and every run failed though each file was right (found in a Spark audit).
        "spark.sql.parquet.inferTimestampNTZ.enabled": "false",
        # Partition folder values as text (see SPARK_FIXED_CONF), cast like any column to its canonical type.
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
        # Nanosecond Parquet timestamps (pandas' datetime64[ns], written by pyarrow without coercion) as their
        # number, which _parquet_frames turns into a timestamp: Spark 4 refuses TIMESTAMP(NANOS) otherwise, and every
        # run failed "Illegal Parquet type" (exit 3), where DuckDB reads them (found in a review).
        "spark.sql.legacy.parquet.nanosAsLong": "true",
    }
    if "spark.sql.warehouse.dir" not in (conf or {}):
        # Spark creates ./spark-warehouse in the working directory on its first catalog lookup (a `table`
        # source); agentdigest writes no tables, so an empty temporary one will do (found in a Spark audit).
        settings["spark.sql.warehouse.dir"] = _warehouse_dir()
    cores = _local_cores(master)
    if cores is not None:
        settings.update({
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.host": "127.0.0.1",
            # A report's shuffles are small (one row per conversation); 200 partitions would be mostly overhead.
            "spark.sql.shuffle.partitions": str(max(2, 2 * cores)),
        })
    settings.update({k: _spark_value(v) for k, v in (conf or {}).items()})
    builder = SparkSession.builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    fresh = SparkSession.getActiveSession() is None
    _quiet_python_loggers()
    try:
        if _no_jvm_yet():
            _start_jvm(master, settings)
        session = builder.getOrCreate()
        session.catalog.currentDatabase()  # builds the session state: a bad setting fails here, not mid-report
    except Exception as exc:
        raise _start_error(master, conf or {}, exc) from exc
    if fresh:
        session.sparkContext.setLogLevel("ERROR")
    return session


def _quiet_python_loggers() -> None:
    """PySpark logs every failed query's context with a JVM stack trace to stderr from Python; the
    CLI says what failed in one line (--verbose adds the traceback)."""
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL + 1)


def _no_jvm_yet() -> bool:
    """Whether this process has no Spark JVM yet (PySpark keeps one per process, even after stop())."""
    from pyspark import SparkContext

    return getattr(SparkContext, "_gateway", None) is None and getattr(SparkContext, "_active_spark_context", None) is None


def spark_log_path() -> Path:
    """Where the Spark JVM started by this process writes its own output (log4j, warnings)."""
    return Path(tempfile.gettempdir()) / f"agentdigest-spark-{os.getpid()}.log"


def _start_jvm(master: str, settings: dict[str, str]) -> None:
    """Start Spark's JVM with its output in :func:`spark_log_path` instead of the terminal: log4j's
    start-up lines, WARNs and executor stack traces would drown the CLI's one-line messages. The file
    is removed at exit unless Spark failed to start."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    conf = SparkConf(loadDefaults=False).setMaster(master).setAll(list(settings.items()))
    path = spark_log_path()
    # Private, and never through a link planted at this predictable name: its stack traces may quote event
    # values and file URLs (found in a security audit: it was created 0644 in the shared temporary folder).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with open(fd, "ab") as log:
        if os.fstat(fd).st_uid != os.getuid():
            raise PermissionError(f"{path} belongs to another user")  # worded by _start_error
        os.fchmod(fd, 0o600)
        gateway = launch_gateway(conf, popen_kwargs={"stdout": log, "stderr": log})
    atexit.register(_remove_log, path)
    SparkContext(conf=conf, gateway=gateway)


_WAREHOUSE: list[str] = []  # this process's temporary Spark warehouse, made on first use


def _warehouse_dir() -> str:
    """A temporary folder for Spark's warehouse, one per process, removed at exit."""
    if not _WAREHOUSE:
        _WAREHOUSE.append(tempfile.mkdtemp(prefix="agentdigest-spark-warehouse-"))
        atexit.register(shutil.rmtree, _WAREHOUSE[0], ignore_errors=True)
    return _WAREHOUSE[0]


def _remove_log(path: Path) -> None:
    if path not in _KEEP_LOG:
        path.unlink(missing_ok=True)


_KEEP_LOG: set[Path] = set()  # logs of a Spark that failed to start: named in the error, so kept


def _start_error(master: str, conf: dict[str, Any], exc: BaseException) -> Exception:
    """One line for a Spark that would not start: a refused [source.spark_conf] setting is a config
    error (exit 2) naming the key, anything else a source error (exit 3) with the root cause. The values of
    secret settings (fs.s3a.secret.key, from the environment) are masked: Spark's log, which the cause may now
    come from, can quote the command line that carries them."""
    from .config import SECRET_SETTING

    secrets = [_spark_value(v) for k, v in conf.items() if SECRET_SETTING.search(k)]
    reason = mask_text(java_root_cause(exc), secrets)
    log = spark_log_path()
    text = log.read_text("utf-8", "replace") if log.exists() else ""
    jvm = _jvm_exit_cause(text) if "JAVA_GATEWAY_EXITED" in reason else None
    if jvm:
        # Java stopped before Spark could say why ("spark.driver.memory" = "lots": -Xmxlots), and Java names the
        # value, not the key; only the log says (found in a Spark audit: the error named neither).
        reason = mask_text(jvm, secrets)
    for key, value in conf.items():
        shown = _spark_value(value)
        if key in reason or (jvm and len(shown) >= 3 and shown not in ("true", "false") and shown in reason):
            return InputError(f"source.spark_conf.{key}: Spark refused the setting ({reason})")
    if log.exists():
        _KEEP_LOG.add(log)
        # A cluster master that never answered: the exception only says the context was stopped.
        if "Failed to connect to master" in text or "All masters are unresponsive" in text:
            causes = re.findall(r"Caused by: [\w.$]+: (.+)", text)
            reason = f"the master did not answer{f' ({causes[-1].strip()})' if causes else ''}"
        reason += f"; Spark's log: {log}"
    return SourceError(f"source pyspark://{master}: cannot start Spark ({reason})")


def _jvm_exit_cause(log: str) -> str | None:
    """Why Spark's JVM exited at start, from its log: spark-submit's exception ("[unresolved dependency:
    org.apache.hadoop#hadoop-aws;3.4.1: not found]") or the line before Java's "Could not create the Java
    Virtual Machine" ("Invalid maximum heap size: -Xmxlots")."""
    m = re.search(r'Exception in thread "main" [\w.$]+: (.+)', log)
    if m:
        return _one_line(m.group(1), 300)
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for before, line in zip(lines, lines[1:]):
        if "Could not create the Java Virtual Machine" in line:
            return _one_line(before, 300)
    return None


# A Spark error message that names its error class: "[FAILED_READ_FILE.PARQUET_COLUMN_DATA_TYPE_MISMATCH] ...".
_SPARK_ERROR_CLASS = re.compile(r"\[[A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)*\]")


def java_root_cause(exc: BaseException, limit: int = 300) -> str:
    """The Java exception behind a PySpark or py4j error, on one line, else the error's first line.

    PySpark's own message is "An error occurred while calling o74.collectToPython." (found in a Spark
    audit). Of the causes, the innermost one with a Spark error class says most ("[FAILED_READ_FILE.
    PARQUET_COLUMN_DATA_TYPE_MISMATCH] ... file ... column [token_count] ...", where the innermost only
    names the column), unless its class is a ``NO_HINT`` one; else the innermost ("spark.sql.shuffle.
    partitions should be int, but was abc"). Its lines are joined: a CSV header error names the file on
    its last line."""
    java = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    chain: list[Any] = []
    try:
        while java is not None and len(chain) < 50:
            chain.append(java)
            java = java.getCause()
        if chain:
            return _one_line(_best_cause(chain), limit)
    except Exception:  # the JVM may be gone
        pass
    return first_line(exc, limit)


def _best_cause(chain: list[Any]) -> str:
    """The message to show of a Java exception chain, outermost first (see :func:`java_root_cause`)."""
    for java in reversed(chain):
        message = str(java.getMessage() or "")
        m = _SPARK_ERROR_CLASS.match(message)
        if m and not m.group(0).endswith("NO_HINT]"):
            return message  # the class names the problem: the Java class name would only add noise
    # Without its package: "java.lang.ClassNotFoundException: Class ...S3AFileSystem not found" reads as well.
    return re.sub(r"^(?:[a-z_][\w$]*\.)+(?=[A-Z])", "", str(chain[-1].toString()))


def _one_line(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit]


def _spark_value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


@register_backend("pyspark")
def _open_pyspark(cfg: SourceConfig) -> tuple[Any, ir.Table, str, Unreadable | None]:
    _refuse_recursive_globs(cfg.file_list)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SourceError(f"source: pyspark:// needs Spark; {install_extra('spark')}") from None
    master = spark_master(cfg.url)
    shared = SparkSession.getActiveSession() is not None
    session = spark_session(master, cfg.spark_conf)
    con = ibis.pyspark.connect(session)
    if shared:
        # The session was there before us (a notebook, a test suite): closing the source must not stop it.
        con.disconnect = lambda: None  # type: ignore[method-assign]
    if cfg.table:
        return con, _table(con, cfg.table, cfg.url), cfg.table, None
    read = {cfg.columns.get(c, c) for c in CANONICAL_COLUMNS}  # the columns a report reads, by the files' names
    table, unreadable = _spark_files(session, con, cfg.file_list, read)
    return con, table, ", ".join(cfg.file_list), unreadable


def _refuse_recursive_globs(patterns: list[str]) -> None:
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


def _spark_files(session: Any, con: Any, patterns: list[str], read: set[str]) -> tuple[ir.Table, Unreadable | None]:
    """Parquet or CSV files (Spark expands globs itself, local or s3a://) as one events table, and for CSV
    files the rows left out for their shape (see :func:`_without_unreadable`)."""
    unreadable = None
    csv = all(p.lower().endswith((".csv", ".csv.gz")) for p in patterns)
    try:
        if csv:
            # Read as text with a header; canonical() casts each column to its canonical type. Spark takes
            # the columns from one file's header and, by default, reads every other file by position: a file
            # with its columns in another order had its values swapped, silently (found in a Spark audit).
            # enforceSchema=false checks each file's header, so such a file fails, naming it.
            # A file two entries name, once (see _repeated_files): CSV entries name files, so the files themselves
            # read as the entries do (no partition folders to lose).
            paths = _data_files(patterns) if any(_repeated_files(patterns)) else patterns
            df = session.read.csv(paths, header=True, inferSchema=False, enforceSchema=False)
        else:
            frames = _parquet_frames(session, patterns, read)
            df = functools.reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)
    except Exception as exc:
        raise _files_error(patterns, exc) from exc
    if csv:
        df, unreadable = _without_unreadable(session, df, paths, read)
        frames = [df]
    # Each entry on its own: another entry's partition columns say nothing of this one's folders.
    stray = next(filter(None, (_beside_partitions(f.inputFiles(), set(f.columns)) for f in frames)), None)
    if stray:
        raise SourceError(mask_text(
            f"source.files: {stray} is beside the partition folders (name=value) that hold the other files, and "
            f"Spark would leave its rows out without a word; move it into a partition folder or out of {patterns}",
            file_secrets(patterns)))
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
        # The entries give a column different types, which a union would cast to one of them: see _by_footers.
        return _by_footers(session, patterns, repeated) or [nanos_read(session, frame, read) for frame in frames]
    except Exception as exc:
        if "CANNOT_MERGE_INCOMPATIBLE_DATA_TYPE" not in java_root_cause(exc):
            raise
        frames = _by_footers(session, patterns, repeated)
        if frames is None:
            raise
        return frames


def _read_entry(session: Any, pattern: str, skip: set[str]) -> Any:
    """One ``files`` entry, without the files of ``skip`` (real paths: read by an earlier entry)."""
    df = session.read.option("mergeSchema", "true").parquet(pattern)
    return _only(df, [f for f in df.inputFiles() if os.path.realpath(_local_path(f)) not in skip]) if skip else df


def _by_footers(session: Any, patterns: list[str], repeated: list[set[str]]) -> list[Any] | None:
    """Files whose schemas Spark cannot merge because of what Spark 4.0 misreads in them (see
    :func:`.parquet_footers.footer_kinds`): an all-null column (pandas writes a column of None as Parquet's null
    type) that Spark reads as INT beside files where it is text or a double, and nanosecond timestamps (a number)
    beside microsecond ones. Every run failed, "the files give column 'error_type' different types" (exit 3), where DuckDB reads the
    nulls as nulls of the other files' type (found in a review). Each entry's set of files alike is read on its
    own, without its all-null columns and with its nanoseconds as timestamps, to be unioned by name: an all-null
    column is then null of the other files' type. None when the files differ otherwise (int and bigint): Spark's
    own error says which column. Only then are the files' footers read, one by one."""
    from collections import defaultdict
    from urllib.parse import unquote

    from pyspark.sql import types as T

    kinds: dict[tuple[str, str], dict[str, str]] = {}
    for pattern, skip in zip(patterns, repeated):
        for f in sorted(session.read.parquet(pattern).inputFiles()):
            if os.path.realpath(_local_path(f)) not in skip:
                kinds[(pattern, f)] = footer_kinds(session, f)
    typed = {c for k in kinds.values() for c, kind in k.items() if kind != "null"}
    groups: dict[tuple[str, frozenset[str], frozenset[str]], list[str]] = defaultdict(list)
    for (pattern, f), k in kinds.items():
        groups[(pattern, frozenset(c for c, kind in k.items() if kind == "null" and c in typed),
                frozenset(c for c, kind in k.items() if kind == "nanos"))].append(f)
    if not any(dropped for _, dropped, _ in groups) and len({nanos for _, _, nanos in groups}) < 2:
        return None
    frames = []
    for (pattern, dropped, nanos), group in groups.items():
        # The set's own columns and types (its files by name: no partition folders, which the entry's read adds)
        schema = session.read.option("mergeSchema", "true").parquet(*(unquote(f) for f in group)).schema
        kept = T.StructType([field for field in schema.fields if field.name not in dropped])
        frames.append(from_nanos(_only(session.read.schema(kept).parquet(pattern), group), nanos))
    return frames


def _only(df: Any, files: list[str]) -> Any:
    """``df`` read from ``files`` alone (URIs as Spark lists them). Spark prunes the other files by the
    ``_metadata.file_path`` filter before it opens them (measured: a file it could not read is never read)."""
    from pyspark.sql import functions as F

    # inputFiles() says file:///x where _metadata.file_path says file:/x
    names = {n for f in files for n in (f, re.sub(r"^file:///", "file:/", f))}
    return df.filter(F.col("_metadata.file_path").isin(sorted(names)))


def _repeated_files(patterns: list[str]) -> list[set[str]]:
    """For each entry, the real paths of its local files that an earlier entry names already: Spark read such a
    file once per entry (["events/*", "events/date=1/x.parquet"], a folder and a file in it), its events doubled
    without a word (found in a review). Files are matched as DuckDB's source matches them (sources.local_files);
    ``s3a://`` and other remote entries cannot be listed here and are read as given."""
    seen: set[str] = set()
    repeated: list[set[str]] = []
    for pattern in patterns:
        local = _local_path(pattern) if pattern.startswith("file:") else None if "://" in pattern else pattern
        found = {os.path.realpath(f) for f in local_files(local)} if local else set()
        repeated.append(found & seen)
        seen |= found
    return repeated


def _without_unreadable(session: Any, df: Any, patterns: list[str], read: set[str]) -> tuple[Any, Unreadable | None]:
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
    Both depend on CSV column pruning being off (pinned in :func:`spark_session`): with it on, Spark checks
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
    while bad in columns:
        bad += "_"
    schema = T.StructType([T.StructField(c, T.StringType()) for c in columns] + [T.StructField(bad, T.StringType())])
    try:
        marked = session.read.csv(patterns, schema=schema, header=True, enforceSchema=False,
                                  columnNameOfCorruptRecord=bad)
        # consecutive within a split (each split is read by one task, in order)
        row = F.monotonically_increasing_id().alias("row")
        decoded = [c for c in columns if c in read]
        garbled = F.col(bad).isNull() & _garbled(marked, decoded)
        where = F.when(F.col(bad).isNotNull() | F.col("garbled"), F.col("row"))
        splits = (marked.select(F.col("_metadata.file_path").alias("file"),
                                F.col("_metadata.file_block_start").alias("start"), row, bad,
                                garbled.alias("garbled"),
                                # a data column: Spark refuses a query of the corrupt-record column alone
                                marked[columns[0]].alias("data"))
                  .groupBy("file", "start")
                  .agg(F.count(F.lit(1)).alias("rows"), F.count(bad).alias("bad"),
                       F.count(F.when(F.col("garbled"), 1)).alias("garbled"), F.min("row").alias("first_row"),
                       F.min(where).alias("first_bad"), F.min_by(bad, where).alias("text"), F.count("data"))
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
    path = _local_path(first["file"])
    if first["text"] is None:  # the corrupt-record column is filled for a row of the wrong shape only
        cause = "bytes that are not UTF-8"
    else:
        fields = _fields(first["text"])
        cause = f"{fields} field{'' if fields == 1 else 's'}, expected {len(columns)}"
    unreadable = Unreadable(rows=skipped, first=mask_text(f"row {number} of {path} after its header: {cause}",
                                                          file_secrets(patterns)), read=rows - skipped)
    events = df
    if any(s["bad"] for s in splits):
        try:
            events = session.read.csv(patterns, schema=T.StructType(schema.fields[:-1]), header=True,
                                      enforceSchema=False, mode="DROPMALFORMED")
        except Exception as exc:
            raise _files_error(patterns, exc) from exc
    if any(s["garbled"] for s in splits):
        events = events.filter(~_garbled(events, decoded))
    return events, unreadable


def _garbled(df: Any, columns: list[str]) -> Any:
    """Whether a row (every column read as text) holds U+FFFD: how Spark reads bytes that are not UTF-8."""
    from pyspark.sql import functions as F

    if not columns:
        return F.lit(False)
    return F.coalesce(F.concat_ws("\n", *(df[c] for c in columns)).contains("\ufffd"), F.lit(False))


def _fields(text: str) -> int:
    """The number of fields of a CSV line as Spark reads it by default (comma, double quotes, backslash escapes)."""
    import csv

    return len(next(csv.reader([text], escapechar="\\"), []))


def _local_path(url: str) -> str:
    """``file:/tmp/events%20x.csv`` -> ``/tmp/events x.csv``; other URLs as Spark gives them."""
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(url).path) if url.startswith("file:") else url


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


def _beside_partitions(files: list[str], columns: set[str]) -> str | None:
    """A file Spark lists but never reads: in a folder of partition folders (``date=2026-11-16/``), a file
    outside them (a backfill dropped into ``events/``) belongs to no partition, and its rows were left out of
    every figure, silently (found in a Spark audit; a glob such as ``events/*`` reads it, as DuckDB does)."""
    def keys(path: str) -> int:
        return sum(1 for part in path.split("/")[:-1] if part.partition("=")[0] in columns and "=" in part)
    depth = {path: keys(path) for path in files}
    deepest = max(depth.values(), default=0)
    return next((path for path in sorted(files) if depth[path] < deepest), None)


def _hadoop_version() -> str:
    """The version of the Hadoop libraries in Spark's JVM (3.4.1 for pyspark 4.0)."""
    try:
        from pyspark import SparkContext

        return str(SparkContext._jvm.org.apache.hadoop.util.VersionInfo.getVersion())
    except Exception:  # noqa: BLE001 - the JVM may be gone; the advice stands without the number
        return "<Spark's Hadoop version>"


def _files_error(patterns: list[str], exc: BaseException) -> Exception:
    """One masked line for files Spark cannot read: a file URL may carry a password or a presigned
    signature (found in a Spark audit: shown as written), and PySpark's own message says nothing."""
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
        error = SourceError(f"source.files: cannot read {patterns} ({reason}); files are read as CSV only when "
                            "every path ends in .csv or .csv.gz")
    else:
        error = SourceError(f"source.files: cannot read {patterns} ({reason})")
    return type(error)(mask_text(str(error), file_secrets(patterns)))
