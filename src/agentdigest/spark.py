"""The Spark source, registered by URL scheme like any extension would be.

``pyspark://<master>`` (``pyspark://local[2]``, ``pyspark://spark://host:7077``, ``pyspark://yarn``)
reads ``files`` (Parquet or CSV paths, globs, ``s3a://``) or a catalog ``table``. The session is started
by :mod:`.spark_session` (its settings are there); the files are read by :mod:`.spark_files`, Parquet files
with their schemas merged (a column only some files have is null in the others). Latency quantiles use
Spark's approximate percentile.
"""

from __future__ import annotations

import json
import re
from typing import Any

import ibis
import ibis.expr.types as ir

from .config import CANONICAL_COLUMNS, SourceConfig
from .errors import InputError, SourceError, install_extra
from .masking import mask_url
from .source_errors import spark_name
from .sources import _table, register_backend, table_path
from .spark_file_errors import refuse_local_files, refuse_recursive_globs
from .spark_files import _spark_files
from .spark_session import spark_session
from .spark_url import check_master
from .unreadable import Unreadable


def spark_master(url: str) -> str:
    """``pyspark://local[2]`` -> ``local[2]``; ``pyspark://spark://h:7077`` -> ``spark://h:7077``."""
    rest = url.split("://", 1)[1] if "://" in url else ""
    return rest.rstrip("/") or "local[*]"


@register_backend("pyspark")
def _open_pyspark(cfg: SourceConfig) -> tuple[Any, ir.Table, str, Unreadable | None]:
    master = spark_master(cfg.url)
    check_master(master)  # before Spark starts: said in a moment, without a JVM
    refuse_recursive_globs(cfg.file_list)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SourceError(f"source: pyspark:// needs Spark; {install_extra('spark')}") from None
    refuse_local_files(cfg.file_list)  # after: without pyspark, no file list is of use
    shared = SparkSession.getActiveSession() is not None
    session = spark_session(master, cfg.spark_conf)
    con = ibis.pyspark.connect(session)
    if shared:
        # The session was there before us (a notebook, a test suite): closing the source must not stop it.
        con.disconnect = lambda: None  # type: ignore[method-assign]
    if cfg.table:
        table = _table(con, cfg.table, cfg.url)
        _refuse_view_in_database(session, cfg.table)
        return con, table, cfg.table, None
    read = {cfg.columns.get(c, c) for c in CANONICAL_COLUMNS}  # the columns a report reads, by the files' names
    table, unreadable = _spark_files(session, con, cfg.file_list, read)
    return con, table, ", ".join(cfg.file_list), unreadable


def _refuse_view_in_database(session: Any, name: str) -> None:
    """InputError when ``db.view`` names a session's temporary view that ``db`` has no table of: found in a Spark
    audit, Ibis opened it (its lookup, inside ``db``, finds the view by its bare name) and every query then failed,
    TABLE_OR_VIEW_NOT_FOUND. A temporary view is in no database (``global_temp``'s are read through it)."""
    *where, view = table_path(name)
    if not where or where == ["global_temp"]:
        return
    try:
        if session.catalog.tableExists(spark_name([*where, view])):
            return
        temporary = any(t.isTemporary and t.name == view for t in session.catalog.listTables())
    except Exception:  # noqa: BLE001 - the catalog's answer is a courtesy; Ibis opened the table
        return
    if temporary:
        raise InputError(f"source.table: {'.'.join(where)} has no table {view!r}, a temporary view of the session: a "
                         f"temporary view is read by its name alone (expected table = {json.dumps(view)})")


@register_backend("spark")
def _spark_scheme(cfg: SourceConfig) -> Any:
    """``spark://host:7077``, a standalone master written as the source's URL, was "no engine for spark://" (and
    ``spark://local[2]`` exit 3, "cannot connect ('2' does not appear to be an IPv4 or IPv6 address)"): found
    writing README's Spark config as a user would. Spark's URL is ``pyspark://`` and the master after it."""
    rest = cfg.url.split("://", 1)[1]
    local = re.match(r"(?:local|yarn|k8s)\b", rest)
    meant = f"pyspark://{rest}" if local else f"pyspark://spark://{rest}"
    raise InputError(f"source.url: Spark is read through pyspark:// with its master after it (expected "
                     f"{mask_url(meant) if '@' not in rest else 'pyspark://spark://host:7077'})")
