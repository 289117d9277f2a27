"""Starting Spark for a ``pyspark://`` source: the session's settings, its JVM and the log it writes, and why it would
not start, in one line.

The session binds to 127.0.0.1 in local mode, has no UI, runs in UTC with ANSI SQL, sizes its shuffle to the
cores and keeps its (empty) warehouse in a temporary folder; a ``[source.spark_conf]`` setting overrides these,
except the ones that would change what a report says (:data:`.source_settings.SPARK_FIXED_CONF`), and a setting
Spark does not know but one a typo away from one it does is refused.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .errors import InputError, SourceError, install_extra
from .masking import mask_text
from .source_settings import near, refused_spark_conf
from .spark_errors import _one_line, java_root_cause
from .spark_url import _local_cores, check_java, refuse_empty_metastore


def check_spark_conf(conf: dict[str, Any]) -> None:
    """Refuse the [source.spark_conf] keys of :data:`SPARK_FIXED_CONF`, as the PostgreSQL source refuses
    ``timezone``: a config error naming the key, before Spark starts."""
    refused = refused_spark_conf(conf)
    if refused:
        raise InputError(f"source.spark_conf.{refused[0]}: {refused[1]}")


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
        # by the columns a query happens to read (see spark_csv._without_unreadable; SPARK_FIXED_CONF).
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
        # number, which spark_files._parquet_frames turns into a timestamp: Spark 4 refuses TIMESTAMP(NANOS)
        # otherwise, and every run failed "Illegal Parquet type" (exit 3), where DuckDB reads them (found in a review).
        "spark.sql.legacy.parquet.nanosAsLong": "true",
        # Text written without Parquet's UTF8 annotation (Impala's, old Hive's) as text, as DuckDB's source reads it
        # (binary_as_string): as binary, every such file's ids were refused (found in a file-types audit).
        "spark.sql.parquet.binaryAsString": "true",
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
        refuse_empty_metastore(session, conf or {})
        session.catalog.currentDatabase()  # builds the session state: a bad setting fails here, not mid-report
    except InputError:
        raise
    except Exception as exc:
        raise _start_error(master, conf or {}, exc) from exc
    _refuse_misspelt_keys(session, conf or {})
    if fresh:
        session.sparkContext.setLogLevel("ERROR")
    return session


#: Spark's config objects that register their settings only when first used (the Python worker's, YARN's, ...):
#: loaded before the known names are read, so that none of theirs reads as unknown.
_LAZY_CONFIGS = tuple(f"org.apache.spark.{name}$" for name in (
    "internal.config.Python", "internal.config.Kryo", "internal.config.History", "internal.config.UI",
    "internal.config.Deploy", "internal.config.Worker", "internal.config.Status", "internal.config.Streaming",
    "internal.config.Network", "internal.config.Tests", "deploy.yarn.config.package", "deploy.k8s.Config",
    "sql.internal.StaticSQLConf"))


def _refuse_misspelt_keys(session: Any, conf: dict[str, Any]) -> None:
    """A config error for a [source.spark_conf] key Spark does not know but that is one typo or a letter case from
    one it does (source_settings.near, the rule of every "did you mean"): Spark ignores a name it does not know,
    so ``"spark.executor.memroy" = "8g"`` ran every report with the default memory, without a word (found in a
    Spark audit); and so did ``"executor.memory"``, a name of Spark's written without ``spark.``. Only near misses
    are refused: Spark has settings its registry does not list (``spark.hadoop.*``, a catalog's), which are passed
    on as written, as are names that are not Spark's (``hive.metastore.uris``)."""
    spelt = [key for key in conf if not key.lower().startswith(
        ("spark.hadoop.", "spark.executorenv.", "spark.yarn.appmasterenv.", "spark.kubernetes.", "spark.sql.catalog."))]
    known = _known_spark_keys(session) if spelt else set()
    for key in spelt:
        if key in known:
            continue
        if key.lower().startswith("spark."):
            meant = near(key, sorted(known))
        else:  # "executor.memory" (found in a Spark review): passed on, and ignored; other names (hive.*) are a plugin's
            meant = [k for k in sorted(known) if k.casefold() == f"spark.{key}".casefold()]
        if meant:
            raise InputError(f"source.spark_conf.{key}: Spark has no setting of this name and would ignore it "
                             f"(expected {' or '.join(meant[:3])})")


def _known_spark_keys(session: Any) -> set[str]:
    """The setting names Spark's registry (ConfigEntry) knows in this JVM; empty when it cannot be read."""
    try:
        jvm = session._jvm
        for name in _LAZY_CONFIGS:
            try:
                jvm.java.lang.Class.forName(name).getField("MODULE$").get(None)
            except Exception:  # noqa: BLE001 - not on this classpath (no YARN jars): none of its names, then
                pass
        holder = jvm.java.lang.Class.forName("org.apache.spark.internal.config.ConfigEntry$")
        field = holder.getDeclaredField("knownConfigs")
        field.setAccessible(True)
        return {str(key) for key in field.get(holder.getField("MODULE$").get(None)).keySet().toArray()}
    except Exception:  # noqa: BLE001 - a check only: without the registry no key is refused
        return set()


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
    named = re.match(r"([A-Z][a-z ]+?) must be a positive number", reason)
    if named and _SUBMIT_CHECKS.get(named[1], ("",))[0] in conf:
        key, expected = _SUBMIT_CHECKS[named[1]]
        return InputError(f"source.spark_conf.{key}: Spark refused the setting ({reason}; expected {expected})")
    unresolved = re.search(r"unresolved dependency: ([\w.-]+)#([\w.-]+);([\w.-]+)", reason)
    if unresolved and "spark.jars.packages" in conf:
        # A package of spark.jars.packages that Ivy could not fetch named neither the key nor why (found trying
        # README's hadoop-aws line without network): no repository answering is the source unreachable (exit 3),
        # a package no answering repository has is a mistyped coordinate (exit 2).
        package = ":".join(unresolved.groups())
        hosts = sorted(set(re.findall(r"Host (\S+) not found", text)))
        if not hosts and "Server access error" not in text and "Connection " not in text:
            return InputError(f"source.spark_conf.spark.jars.packages: no repository Spark asked has {package} "
                              "(expected group:artifact:version of a package, such as org.apache.hadoop:hadoop-aws:3.4.1)")
        reason = (f"source.spark_conf.spark.jars.packages: {package} could not be fetched, no repository answered"
                  f"{' (' + ', '.join(hosts) + ' not found)' if hosts else ''}")
    if log.exists():
        _KEEP_LOG.add(log)
        # A cluster master that never answered: the exception only says the context was stopped.
        if "Failed to connect to master" in text or "All masters are unresponsive" in text:
            causes = re.findall(r"Caused by: [\w.$]+: (.+)", text)
            reason = f"the master did not answer{f' ({causes[-1].strip()})' if causes else ''}"
        reason += f"; Spark's log: {log}"
    return SourceError(f"source pyspark://{master}: cannot start Spark ({reason})")


#: What spark-submit's checks call a setting they refuse ("Executor memory must be a positive number", naming no
#: key, and said as exit 3 "cannot start Spark": found trying README's Spark instructions with a mistyped value).
_SUBMIT_CHECKS = {
    "Driver memory": ("spark.driver.memory", 'a size such as "4g"'),
    "Executor memory": ("spark.executor.memory", 'a size such as "8g"'),
    "Driver cores": ("spark.driver.cores", "a whole number above 0"),
    "Executor cores": ("spark.executor.cores", "a whole number above 0"),
    "Total executor cores": ("spark.cores.max", "a whole number above 0"),
    "Number of executors": ("spark.executor.instances", "a whole number above 0"),
}


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


def _spark_value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
