"""Engines' errors about a source, as one line: what DuckDB's CSV reader says is wrong, why a view cannot
be read, how to keep PostgreSQL from stopping a query; never the event values an engine quotes."""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .channel_settings import key_part
from .errors import first_line
from .source_settings import meant


def without_values(message: str) -> str:
    """An engine's message with its quoted values left out: they are event data (user content)."""
    return re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", message)


def view_cause(exc: BaseException, table: str) -> str | None:
    """The engine's reason when ``table`` exists but cannot be read: a DuckDB view whose own table was dropped
    or renamed. Ibis raises TableNotFound for the view itself, so the error said "table 'v' not found" of a
    view the user could see (found by a new user). None when it is the named table that is missing."""
    cause = exc.__cause__ or exc.__context__
    missing = re.search(r"Table with name (.+?) does not exist", str(cause or ""))
    if missing is None or missing.group(1).strip('"').split(".")[-1].lower() == table.lower():
        return None
    return first_line(cause, 300)


def csv_cause(exc: BaseException) -> str:
    """What DuckDB's CSV reader says is wrong, and in which file: its first line is only "CSV Error on Line:
    50001", and the cause ("This file is not utf-8 encoded", "Expected Number of Columns: 11 Found: 12")
    comes after the line's text, which is event data and is left out (found by a new user, whose one
    Latin-1 byte failed the run saying nothing of why). Quoted values in the cause are left out too."""
    lines = str(exc).splitlines()
    if not lines or "CSV Error on Line" not in lines[0]:
        return ""
    after = [line.strip() for line in lines[1:] if not line.startswith("Original Line:")]
    cause = next((line for line in after if line), "")
    name = next((line.removeprefix("file = ") for line in after if line.startswith("file = ")), "")
    return (f" of {name}" if name else "") + (f": {without_values(cause)[:200]}" if cause else "")


def sniff_cause(exc: BaseException, paths: list[str]) -> str | None:
    """One line for a CSV file DuckDB's sniffer cannot make out (its delimiter, quotes and header), naming the file
    and why; None for other errors. Reading several files, DuckDB names none ("Error when sniffing file \"\"."), and
    its line said only that (found in an audit: a workbook saved as events.csv among the day's exports)."""
    lines = str(exc).splitlines()
    found = re.search(r'Error when sniffing file "(.*)"', lines[0]) if lines else None
    if found is None:
        return None
    path = found.group(1) or _unsniffable(paths)
    reason = lines[1].strip().rstrip(".") if len(lines) > 1 else "its CSV dialect could not be detected"
    reason = reason[:1].lower() + reason[1:]
    looks = ""
    if path and _local_file(path):
        try:
            looks = _looks(path)
        except OSError:
            pass
    looks = "" if not looks or "CSV text" in looks else f"; {looks}"  # what it is, when that is not CSV
    return (f"source.files: DuckDB cannot read {path or 'one of ' + str(paths)} as CSV ({without_values(reason)[:200]}"
            f"{looks}); expected UTF-8 text with a header line naming the columns")


def not_csv_text(paths: list[str], local: Callable[[str], str] | None = None) -> str | None:
    """One line for the first local CSV file of ``paths`` that is not text DuckDB or Spark can read as CSV, else
    None: UTF-16 text (a byte-order mark, or a NUL beside each character, as Excel's "Unicode text" and
    PowerShell's exports are), or by its first bytes a ZIP archive (an Excel workbook renamed), Parquet, or gzip
    without .gz. Found in an audit: read as UTF-8, a UTF-16 file's run said "required column 'conversation_id'
    not found (columns:  ,  0 . 0 0 3 2 ...)", its header spaced out by NULs. Text in another 8-bit encoding is
    not refused: its rows are counted unreadable, as DuckDB and Spark find them. ``local``: a listed entry's
    local path (Spark lists file: URIs)."""
    for entry in paths:
        path = local(entry) if local else entry
        if not _local_file(path):
            continue
        try:
            with open(path, "rb") as f:
                head = f.read(4096)
        except OSError:
            continue  # the engine's own error stands
        if _utf16(head):
            return (f"source.files: {path} is UTF-16 text; expected UTF-8: save it as CSV UTF-8, or convert it, "
                    f"e.g. iconv -f UTF-16 -t UTF-8")
        gzip = head.startswith(b"\x1f\x8b") and not path.lower().endswith(".gz")
        if gzip or head.startswith((b"PK\x03\x04", PARQUET_MAGIC)):  # a stray NUL in text is a row's to count
            return (f"source.files: {path} is not CSV text ({_looks(path, head, os.path.getsize(path))}); expected "
                    f"UTF-8 text with a header line naming the columns")
    return None


def _local_file(path: str) -> bool:
    """Whether ``path`` is a file here to look at (a URL's is the engine's to read)."""
    return "://" not in path and os.path.isfile(path)


def _utf16(head: bytes) -> bool:
    """Whether ``head`` is UTF-16 text: a byte-order mark, or (mostly ASCII text) a NUL beside each character."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    even, odd = head[0::2], head[1::2]
    if len(odd) < 8:
        return False
    return any(a.count(0) >= 0.9 * len(a) and b.count(0) <= 0.1 * len(b) for a, b in ((odd, even), (even, odd)))


def _unsniffable(paths: list[str]) -> str | None:
    """The first local file of ``paths`` DuckDB's sniffer fails on, sniffed each on a connection of its own."""
    import duckdb

    with duckdb.connect() as con:
        for path in paths:
            if "://" in path:
                continue
            try:
                con.execute("SELECT * FROM sniff_csv(?)", [path]).fetchall()
            except Exception:  # noqa: BLE001 - the one to name
                return path
    return None


def query_advice(exc: BaseException) -> str:
    """What to change when PostgreSQL stopped a query for a reason its message does not say how to avoid:
    a ``statement_timeout`` (often the role's; found in a PostgreSQL audit), or a hot standby cancelling a
    long query to replay the primary's changes (found on a real replica: "canceling statement due to
    conflict with recovery" said nothing of the standby's settings that allow it)."""
    message = str(exc).lower()
    if "statement timeout" in message:
        return '; raise it for agentdigest in [source.settings]: statement_timeout = "30min" (0 for none)'
    if "conflict with recovery" in message:
        return ("; the standby cancelled it to apply the primary's changes: on the standby set "
                "hot_standby_feedback = on or a longer max_standby_streaming_delay, or read from the primary")
    if "has not been populated" in message:  # a materialized view made WITH NO DATA (found trying README's views)
        return "; expected it refreshed first (REFRESH MATERIALIZED VIEW, as its owner)"
    return ""


def not_parquet(paths: list[str]) -> str | None:
    """One line for the first local file of ``paths`` read as Parquet that is not Parquet, saying what it looks
    like; None when each is Parquet at both ends (or cannot be looked at here: a URL). Found by a user whose
    events.parquet held CSV text: DuckDB said "No magic bytes found at end of file", Spark "Could not read
    footer ... ORC or Parquet format". Files ending as CSV's are left to the callers' own words (CSV beside
    Parquet)."""
    # Here, not at the top: .unreadable imports this module.
    from .unreadable import CSV_SUFFIXES

    for path in paths:
        if path.lower().endswith(CSV_SUFFIXES) or not _local_file(path):
            continue
        try:
            looks = _not_parquet_looks(path)
        except OSError:
            continue  # the engine's own error stands
        if looks is None:
            continue
        endings = ", ".join(CSV_SUFFIXES[:-1]) + f" or {CSV_SUFFIXES[-1]}"
        # JSON lines: a new user's export, and nothing said whether another setting reads it (none does)
        advice = ("" if "CSV text" in looks else "JSON is not read: convert it to Parquet once (README, Events: Files); "
                  if "JSON text" in looks else "expected Parquet; ")
        return (f"source.files: {path} is not a Parquet file ({looks}); {advice}files are read as CSV only when "
                f"every file ends in {endings}")
    return None


PARQUET_MAGIC = b"PAR1"


def _not_parquet_looks(path: str) -> str | None:
    """What the file at ``path`` looks like when it is not Parquet (which starts and ends with PAR1), else None."""
    with open(path, "rb") as f:
        head = f.read(4096)
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(size - 4, 0))
        tail = f.read(4)
    if head.startswith(PARQUET_MAGIC) and tail == PARQUET_MAGIC and size >= 12:
        return None
    if head.startswith(PARQUET_MAGIC):
        return "it starts as Parquet but has no footer: cut short, or still being written"
    return _looks(path, head, size)


def _looks(path: str, head: bytes | None = None, size: int | None = None) -> str:
    """What a file's first bytes look like, to say of a file an engine cannot read: "it looks like CSV text", "it is
    gzip-compressed", "it is empty", ..."""
    if head is None or size is None:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(4096)
    if size == 0:
        return "it is empty"
    if head.startswith(PARQUET_MAGIC):
        return "it looks like Parquet"
    if head.startswith(b"PK\x03\x04"):
        return "it is a ZIP archive, such as an Excel workbook"
    if head.startswith(b"\x1f\x8b"):
        try:
            kind = _text_kind(zlib.decompressobj(31).decompress(head, 4096))
        except zlib.error:
            kind = None
        return f"it is gzip-compressed {kind}" if kind else "it is gzip-compressed"
    kind = _text_kind(head)
    return f"it looks like {kind}" if kind else "its first bytes are not text"


def _text_kind(head: bytes) -> str | None:
    """What the first bytes of a file look like as text: "CSV text", "JSON text", ..., or None (not text)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not a character cut at the end of ``head``
            return None
        text = head[:exc.start].decode("utf-8")
    if "\x00" in text:
        return None
    first = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    if first.lstrip().startswith(("{", "[")):
        return "JSON text"
    if "\t" in first:
        return "tab-separated CSV text"
    return "CSV text" if any(sep in first for sep in ",;|") else "text"


def did_you_mean(con: Any, table: str, database: Any, where: Sequence[str] = ()) -> str:
    """The suffix for a table not found: "; it is in another schema: write analytics.agent_events" when a table of
    that name is in another schema or database (found checking the engines: `table = "agent_events"` for
    analytics.agent_events said only "not found" on DuckDB and Spark, where PostgreSQL named the schema), else
    " (did you mean 'events'?)" for a name one typo from, or the start of, one the database has (found trying
    agentdigest as a new user: `table = "event"` said only "not found"), as a canonical column is asked; with the
    schema or database the name was written with (``where``): `analytics.evnts` is asked 'analytics.events',
    which names it, not 'events', which is in another schema or none. Neither: the tables there, as
    :func:`tables_there` lists them (found installing agentdigest as a new user: a table not found said nothing of
    the tables the database does hold)."""
    path = [*where, table]
    spark = getattr(con, "name", "") == "pyspark"
    found: list[tuple[str, str, bool]] | None = None
    written: dict[str, str] = {}  # as compared -> as written back; a table before a view of its name
    try:
        if getattr(con, "name", "") == "duckdb":
            tables, here = _duckdb_tables(con)
            return table_hint(path, tables, here) or tables_there(_written_back(full, path, here) for full in tables)
        other = _spark_databases_holding(con, table) if spark and not where else []
        if other:
            return f"; it is in another database: write {' or '.join(_written(t) for t in other)}"
        if spark:
            found = _spark_tables(con, where)
        else:
            names = con.list_tables(database=database) if database else con.list_tables()
            found = [(n, _written([*where, n]), False) for n in names]
        for name, back, _ in found:
            written.setdefault(name, back)
        close = meant(table, written)
    except Exception:  # noqa: BLE001 - the suggestion is a courtesy; the error is said without it
        close = None
    if close:
        return f" (did you mean {written[close]!r}?)"
    try:
        in_memory = _spark_in_memory(con, where) if spark else ""
    except Exception:  # noqa: BLE001 - as above
        in_memory = ""
    if in_memory or found is None:
        return in_memory
    # A temporary view is listed for a name written without a database only: it is in none
    return tables_there(back for _, back, view in found if not (view and where))


def _spark_tables(con: Any, where: Sequence[str]) -> list[tuple[str, str, bool]]:
    """The tables of Spark's current database (or the one written) and the session's temporary views: each as
    compared with the name written (its name alone), as source.table would name it, and whether it is a view of
    the session. A view is named alone: it is in no database, and `meant_db.typo_events` for the view typo_events
    was asked of a name written `meant_db.typo_evnts`, then opened but every query of it failed, "not found"
    (found in a review). Never Ibis's own views of the files it read (``ibis_*``): found in a CI run, a session
    that had read files listed 136 of them; nor a global temporary view (listed in ``global_temp``), which Ibis
    cannot read, global_temp being no database it may make current."""
    catalog = con._session.catalog
    tables = catalog.listTables(spark_name(where)) if where else catalog.listTables()
    return [(t.name, t.name if t.isTemporary else _written([*where, t.name]), t.isTemporary) for t in tables
            if not (t.isTemporary and (t.name.startswith("ibis_") or getattr(t, "namespace", None)))]


#: How many tables a "not found" lists; the others are counted.
TABLES_LISTED = 10


def tables_there(names: Iterable[str]) -> str:
    """The suffix listing the tables (and views) a database holds, as source.table would name them: sorted, at most
    :data:`TABLES_LISTED`, the rest counted ("and 3 more"); each shown on one line and shortened as a key is."""
    names = sorted(set(names), key=lambda n: (n.casefold(), n))
    if not names:
        return "; it holds no table or view"
    more = f" and {len(names) - TABLES_LISTED:,} more" if len(names) > TABLES_LISTED else ""
    return f"; tables and views there: {', '.join(key_part(n) for n in names[:TABLES_LISTED])}{more}"


def _spark_in_memory(con: Any, where: Sequence[str]) -> str:
    """What to set when Spark's catalog is the session's own (in-memory, Spark's default for a session a program
    builds) and the table's database holds no table: a Hive metastore's tables are read only with
    spark.sql.catalogImplementation = "hive" (found following README's Spark instructions: `table =
    "analytics.agent_events"` of a metastore was "not found", and nothing said why)."""
    session = con._session
    if session.conf.get("spark.sql.catalogImplementation", "in-memory") != "in-memory" or (
            len(where) == 2 and where[0].lower() != "spark_catalog") or len(where) > 2:
        return ""
    db = spark_name(where[-1:] or spark_parts(session.catalog.currentDatabase()))
    if session.catalog.databaseExists(db) and any(not t.isTemporary for t in session.catalog.listTables(db)):
        return ""
    return ("; Spark's catalog is in-memory here, this session's own: for a Hive metastore's tables, expected "
            "\"spark.sql.catalogImplementation\" = \"hive\" in [source.spark_conf]")


def table_hint(path: Sequence[str], tables: Sequence[Sequence[str]], here: Sequence[str]) -> str:
    """:func:`did_you_mean`'s suffix for ``path`` (the name as written, split) from every table of the engine,
    each qualified in full (``here``, the current database and schema, have as many parts as each table's place):
    each written back as the user would need to write it, qualified as far as ``path`` is and beyond where it is
    not ``here`` (`agent_events` when in the current schema, `analytics.agent_events` when not)."""
    asked = ".".join(path).casefold()
    # each table in full and as written back, the nearest first
    ordered = sorted(((full, _written_back(full, path, here)) for full in tables), key=lambda pair: pair[1].count("."))
    elsewhere = [back for full, back in ordered
                 if full[-1].casefold() == path[-1].casefold() and back.casefold() != asked]
    if elsewhere:
        return f"; it is in another schema: write {' or '.join(elsewhere[:3])}"
    names: dict[str, str] = {}  # as compared -> as written back
    for full, back in ordered:
        names.setdefault(".".join(full[-len(path):]), back)
    close = meant(".".join(path), names)
    return f" (did you mean {names[close]!r}?)" if close else ""


def _written_back(full: Sequence[str], path: Sequence[str], here: Sequence[str]) -> str:
    """A table's name in full as the user would write it: qualified as far as ``path`` (the name as written) is, and
    beyond where it is not ``here`` (the current database and schema)."""
    same = next((i for i, (a, b) in enumerate(zip(full, here)) if a.casefold() != b.casefold()), len(here))
    return _written(full[min(same, len(full) - len(path)):])


def _duckdb_tables(con: Any) -> tuple[list[tuple[str, str, str]], tuple[str, str]]:
    """Every table and view of a DuckDB connection's databases (database, schema, name), and the current
    database and schema."""
    tables = con.con.execute(
        "SELECT database_name, schema_name, table_name FROM duckdb_tables() WHERE NOT internal UNION ALL "
        "SELECT database_name, schema_name, view_name FROM duckdb_views() WHERE NOT internal "
        "ORDER BY 1, 2, 3").fetchall()
    here = con.con.execute("SELECT current_database(), current_schema()").fetchone()
    return tables, here


def _spark_databases_holding(con: Any, table: str, most: int = 20) -> list[tuple[str, ...]]:
    """The other databases of Spark's current catalog that hold ``table`` (each as its parts and the table's name),
    when it has at most ``most`` databases: one metastore call each, which a shared metastore of hundreds would make
    slow for a hint. Spark lists a database by the name its parser reads (`2024` in backticks), and is asked in the
    same form: tableExists(table, db), which took the names as they are, is deprecated since Spark 3.4 and warned
    on stderr (a FutureWarning) in every run that gave this hint (found in a Spark audit)."""
    catalog = con._session.catalog
    current = spark_parts(catalog.currentDatabase())
    databases = [spark_parts(db.name) for db in catalog.listDatabases()]
    if len(databases) > most:
        return []
    return [(*db, table) for db in databases if db != current and catalog.tableExists(spark_name([*db, table]))][:3]


def spark_name(parts: Sequence[str]) -> str:
    """A name's parts as Spark's parser reads them, each in backticks (a backtick doubled): the catalog's calls parse
    the name they are given, and read ``2024.agent_events`` or ``my-db.agent_events`` unquoted as a syntax error."""
    return ".".join(f"`{part.replace('`', '``')}`" for part in parts)


_SPARK_PART = re.compile(r"`((?:[^`]|``)*)`|([^.`]+)")


def spark_parts(name: str) -> list[str]:
    """A name as Spark's catalog lists it (``default``, ```2024```, ``a.`b.c```), split into its parts."""
    parts, pos = [], 0
    while m := _SPARK_PART.match(name, pos):
        parts.append(m.group(2) if m.group(1) is None else m.group(1).replace("``", "`"))
        pos = m.end() + 1  # past the dot
        if pos > len(name):
            break
    return parts


def _written(parts: Sequence[str]) -> str:
    """A name's parts as source.table reads them: each in double quotes unless a plain identifier."""
    return ".".join(p if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p) else '"' + p.replace('"', '""') + '"'
                    for p in parts)
