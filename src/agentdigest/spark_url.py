"""The Spark master a ``pyspark://`` URL names (:func:`.spark.spark_master`), checked before Spark starts (see :mod:`.spark`)."""

from __future__ import annotations

import os
import re

from .errors import InputError


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

