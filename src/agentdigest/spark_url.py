"""What Spark is told to find, checked before it is used (see :mod:`.spark`): Java 17 and the master a ``pyspark://``
URL names (:func:`.spark.spark_master`), before Spark starts, and the Hive metastore of a ``"hive"`` catalog."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any

from .errors import InputError, SourceError


#: The masters spark-submit and SparkContext accept (Spark 4.0's SparkMasterRegex and SparkSubmit): anything else
#: failed only once Java had started, as exit 3 "cannot start Spark (Could not parse Master URL: ...)", after 5-10 s.
_MASTERS = re.compile(r"local(?:\[(?:\d+|\*)(?:\s*,\s*\d+)?\])?|local-cluster\[\s*\d+\s*,\s*\d+\s*,\s*\d+\s*\]"
                      r"|spark://{hp}(?:,{hp})*|yarn|k8s://.+".format(hp=r"(?:\[[\w:.%]+\]|[^,/:\[\]]+):\d+"))
_MASTER_FORMS = ("pyspark://local[N] (or local[*]), pyspark://spark://host:7077, pyspark://yarn "
                 "or pyspark://k8s://https://host:443")


def check_master(master: str) -> None:
    """Nothing for a master Spark accepts (``pyspark://<master>``), else a config error naming ``source.url`` (exit 2) before Spark starts: a
    mistyped master (``local[two]``, a standalone master without its ``spark://``, ``YARN``) was said as Spark
    could not be started (exit 3), a source that could not be reached, once Java had started (found following
    README's Spark instructions with a user's mistakes)."""
    if _MASTERS.fullmatch(master):
        if re.fullmatch(r"local\[0+(?:\s*,.*)?\]", master):
            raise InputError(f"source.url: pyspark://{master} runs Spark on no thread (expected local[N] with N "
                             "of 1 or more, or local[*] for one thread per core)")
        return
    if "@" in master:  # never echoed: what comes before the @ may be a password
        raise InputError(f"source.url: a Spark master takes no user or password, as {master.rsplit('@', 1)[-1]!r} "
                         f"after the @ would (expected {_MASTER_FORMS})")
    hint = ""
    if re.fullmatch(r"[\w.-]+:\d+(?:,[\w.-]+:\d+)*", master):
        hint = f"; a standalone master is pyspark://spark://{master}"
    elif master.lower() != master and _MASTERS.fullmatch(master.lower()):
        hint = f"; Spark reads pyspark://{master.lower()}"
    elif master.startswith("spark://"):
        hint = "; a standalone master is spark://host:port, its port too (7077 by default)"
    raise InputError(f"source.url: Spark has no master {master!r} (expected {_MASTER_FORMS}){hint}")


def _local_cores(master: str) -> int | None:
    m = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\s*\d+)?\])?", master)
    if not m:
        return None
    if m.group(1) is None:
        return 1
    return (os.cpu_count() or 2) if m.group(1) == "*" else int(m.group(1))


#: Settings that name a Hive metastore (a remote one, or the database of a local one), as Spark reads them.
_METASTORE_KEYS = ("hive.metastore.uris", "javax.jdo.option.ConnectionURL")


def refuse_empty_metastore(session: Any, conf: dict[str, Any]) -> None:
    """A config error when ``"spark.sql.catalogImplementation" = "hive"`` names no metastore: no ``hive-site.xml``
    on Spark's class path (``$SPARK_CONF_DIR``, ``$HADOOP_CONF_DIR``), no ``hive.metastore.uris`` and no
    ``./metastore_db`` of an earlier local one. Spark then made an empty Derby metastore in the working directory
    (``metastore_db/`` and ``derby.log`` left behind) and every ``table`` was "not found", without a word of why
    (found following README's Spark instructions). Called before the catalog is first touched."""
    if str(session.conf.get("spark.sql.catalogImplementation", "in-memory")).lower() != "hive":
        return
    named = {key.lower().removeprefix("spark.hadoop.") for key in conf}
    if any(key.lower() in named for key in _METASTORE_KEYS) or os.path.exists("metastore_db"):
        return
    try:
        jvm = session._jvm
        hadoop = session.sparkContext._jsc.hadoopConfiguration()
        if any(hadoop.get(key) for key in _METASTORE_KEYS):
            return
        if jvm.org.apache.spark.util.Utils.getContextOrSparkClassLoader().getResource("hive-site.xml") is not None:
            return
    except Exception:  # noqa: BLE001 - a check only: without the JVM's answer, Spark goes on as asked
        return
    raise InputError('source.spark_conf.spark.sql.catalogImplementation: "hive" names no metastore here (no '
                     'hive-site.xml on Spark\'s class path, no hive.metastore.uris), so Spark would make an empty one '
                     'in ./metastore_db, where no table is (expected "spark.hadoop.hive.metastore.uris" = '
                     '"thrift://<host>:9083" in [source.spark_conf], or your cluster\'s hive-site.xml in '
                     '$SPARK_CONF_DIR)')


def check_java() -> str:
    """The java executable Spark will use, or a SourceError saying how to get one."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if home and not os.path.exists(java):
        # Spark uses JAVA_HOME, not the java on PATH, so "none was found" misled (found in a new-user audit:
        # a JAVA_HOME left from an uninstalled JDK, and java on PATH).
        what = "a folder that does not exist" if not os.path.isdir(home) else "a folder without bin/java"
        if not shutil.which("java"):
            # "unset it to use the java on PATH" sent the user to a java that was not there either (found checking
            # a missing Java: JAVA_HOME at a removed JDK, no java on PATH)
            raise SourceError(f"source: Spark needs Java 17 and JAVA_HOME is {home}, {what}, and no java is on PATH "
                              "either; install openjdk-17-jre-headless, or point JAVA_HOME at a Java 17 installation")
        raise SourceError(f"source: Spark needs Java 17 and JAVA_HOME is {home}, {what}; point JAVA_HOME at a "
                          "Java 17 installation, or unset it to use the java on PATH")
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
