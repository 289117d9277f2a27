"""Where PostgreSQL finds ``source.table``: the name looked up on the role's search path, and when it is not found
the schemas or the letter case it is in, for the error to say (a PostgreSQL audit); how a name is written back."""
from __future__ import annotations

import re
from typing import Any

from .source_errors import tables_there
from .source_settings import meant
from .sources import table_path


def on_search_path(con: Any, name: str) -> str:
    """An unqualified ``name`` qualified with the schema PostgreSQL finds it in on the role's search path. Ibis
    looks in the first schema only (current_schema()), so a table in a later one (search_path = "$user", public,
    analytics) was "not found; it is in a schema not on the role's search path" (found in a PostgreSQL audit)."""
    path = table_path(name)
    if len(path) != 1:
        return name
    try:
        with con.con.cursor() as cur:
            cur.execute("SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE c.oid = to_regclass(%s)", (regclass(name),))
            found = cur.fetchone()
    except Exception:  # noqa: BLE001 - Ibis's own lookup says what is wrong
        return name
    return f"{sql_name(found[0])}.{sql_name(path[0])}" if found else name


def unreadable_columns(con: Any, name: str) -> list[str]:
    """The columns of table ``name`` the role may not SELECT (column privileges): every one when it may not
    read the table at all."""
    with con.con.cursor() as cur:
        cur.execute("SELECT a.attname, has_column_privilege(a.attrelid, a.attnum, 'SELECT') FROM pg_attribute a "
                    "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped", (regclass(name),))
        found = cur.fetchall()
    return [col for col, readable in found if not readable]


def current_user(con: Any) -> str:
    """The role the source's session reads as, for the GRANT an error names."""
    with con.con.cursor() as cur:
        cur.execute("SELECT current_user")
        return cur.fetchone()[0]


def sql_table(name: str) -> str:
    """``name`` (``schema.table`` allowed) as SQL reads it back: each part quoted unless plain lower case."""
    return ".".join(sql_name(part) for part in table_path(name))


def regclass(name: str) -> str:
    """``name`` (``schema.table`` allowed) quoted part by part for to_regclass: the case as written."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in table_path(name))


def sql_name(part: str) -> str:
    """A name part as source.table reads it back: double-quoted unless a plain lower-case identifier."""
    return part if re.fullmatch(r"[a-z_][a-z0-9_]*", part) else '"' + part.replace('"', '""') + '"'


def schemas_holding(con: Any, name: str) -> list[str]:
    """The schemas holding a table or view ``name`` (unqualified) that the role may read, at most three."""
    path = table_path(name)
    if len(path) != 1:
        return []
    try:
        with con.con.cursor() as cur:
            cur.execute("SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE c.relname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
                        "AND has_table_privilege(c.oid, 'SELECT') ORDER BY 1 LIMIT 3", (path[0],))
            return [row[0] for row in cur.fetchall()]
    except Exception:  # noqa: BLE001 - a hint only; the error is said without it
        return []


def other_case(con: Any, name: str) -> list[str]:
    """The tables or views the role may read whose names differ from ``name`` (``schema.table`` or unqualified)
    only in case, as source.table would write them, at most three."""
    path = table_path(name)
    if len(path) > 2:
        return []
    schema = path[0] if len(path) == 2 else None
    try:
        with con.con.cursor() as cur:
            cur.execute("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE lower(c.relname) = lower(%s) AND (%s::text IS NULL OR lower(n.nspname) = lower(%s)) "
                        "AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND has_table_privilege(c.oid, 'SELECT') "
                        "AND has_schema_privilege(n.oid, 'USAGE') ORDER BY 1, 2 LIMIT 3", (path[-1], schema, schema))
            return [f"{sql_name(nsp)}.{sql_name(rel)}" for nsp, rel in cur.fetchall()]
    except Exception:  # noqa: BLE001 - a hint only; the error is said without it
        return []


def unknown_table(con: Any, name: str) -> str:
    """The suffix for a ``name`` found neither on the search path, nor in another schema, nor in another case: " (did
    you mean 'analytics.agent_events'?)" for a ``name`` one typo from, or the start of, a table, view, materialized
    view or foreign table the role may read, else the list of those (found installing agentdigest as a new user: such
    a table said nothing of the tables there are). Each is written as source.table would read it: qualified where the
    user qualified the name, or where the table is off the role's search path; never a partition (it holds one range
    of the table's rows). Ibis's list of tables, asked before, named the table alone for ``analytics.agent_evnts``
    (which then was not found either), and left out materialized views and the tables of other schemas (found testing
    the hint on PostgreSQL). One read of the catalog serves both (the hint and the list each read it: a review)."""
    path = table_path(name)
    found = _readable(con, path)
    if found is None:
        return ""
    names: dict[str, str] = {}  # as compared -> as written back, the search path's first (the name alone reads them)
    for compared, written in found:
        names.setdefault(compared, written)
    close = meant(".".join(path), names)
    if close:
        return f" (did you mean {names[close]!r}?)"
    return tables_there(written for _, written in found)


def _readable(con: Any, path: list[str]) -> list[tuple[str, str]] | None:
    """The relations the role may read, never a partition nor the system's own, those on the role's search path
    first: each name as compared with ``path`` (``schema.table`` when the user qualified it) and as written back
    (qualified when off the search path, or where the user qualified it). None when the name has three parts or
    the catalog cannot be read."""
    if len(path) > 2:
        return None
    try:
        with con.con.cursor() as cur:
            cur.execute("SELECT n.nspname, c.relname, pg_table_is_visible(c.oid) FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') "
                        "AND NOT c.relispartition AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' "
                        "AND has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT') "
                        "ORDER BY 3 DESC, 1, 2")
            found = cur.fetchall()
    except Exception:  # noqa: BLE001 - a hint only; the error is said without it
        return None
    return [(f"{schema}.{table}", f"{sql_name(schema)}.{sql_name(table)}") if len(path) == 2 else
            (table, sql_name(table) if visible else f"{sql_name(schema)}.{sql_name(table)}")
            for schema, table, visible in found]


def unindexed(con: Any, name: str, column: str) -> str | None:
    """What ``check`` says when no valid index leads with ``column`` (the event_ts) on table ``name``, or on some
    partitions of a partitioned one: each report then reads the whole table (README, Index). None when one does,
    for a view (its tables hold the indexes) and when the catalog cannot be read. Found trying README's instructions
    as a new user: README's CREATE INDEX CONCURRENTLY fails on a partitioned table, and check said nothing."""
    try:
        with con.con.transaction(), con.con.cursor() as cur:
            cur.execute("WITH rel AS (SELECT to_regclass(%s) AS oid), leaves AS ("
                        "SELECT t.relid AS oid FROM rel, pg_partition_tree(rel.oid) t WHERE t.isleaf UNION ALL "
                        "SELECT c.oid FROM rel JOIN pg_class c ON c.oid = rel.oid WHERE c.relkind IN ('r', 'm')) "
                        "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM pg_index i "
                        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
                        "WHERE i.indrelid = leaves.oid AND i.indisvalid AND a.attname = %s)), "
                        "(SELECT c.relkind = 'p' FROM rel JOIN pg_class c ON c.oid = rel.oid) FROM leaves",
                        (regclass(name), column))
            tables, bare, partitioned = cur.fetchone()
    except Exception:  # noqa: BLE001 - advice only; check says the rest
        return None
    if not bare:
        return None
    if partitioned and bare < tables:
        return (f"no index on {column} in {bare:,} of its {tables:,} partitions: each report reads them whole "
                f"(README, Index)")
    return f"no index on {column}: each report reads the whole table (README, Index)"
