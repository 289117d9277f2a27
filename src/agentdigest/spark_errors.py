"""A PySpark error said on one line: the Java exception behind it, the one of its causes that says most.

Every Spark module words its errors with :func:`java_root_cause`, and so does a failed query's
(:func:`.sources.query_error`): PySpark's own message is only "An error occurred while calling o74.collectToPython."."""

from __future__ import annotations

import re
from typing import Any

from .errors import first_line

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
