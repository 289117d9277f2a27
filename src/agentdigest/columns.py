"""The user's columns as canonical ones: renamed through ``[source.columns]`` and cast to the canonical
types (README, Events) on every engine; text is converted too, numbers and ISO 8601 times (naive: UTC).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from .config import CANONICAL_COLUMNS, REQUIRED_COLUMNS
from .errors import InputError

# Canonical column -> the Ibis type every engine's column is cast to.
COLUMN_TYPES: dict[str, dt.DataType] = {
    "event_id": dt.string,
    "conversation_id": dt.string,
    "event_ts": dt.Timestamp(timezone="UTC"),
    "event_type": dt.string,
    "agent_id": dt.string,
    "token_count": dt.int64,
    "latency_ms": dt.float64,
    "error_type": dt.string,
    "error_message": dt.string,
    "model": dt.string,
    "cost_usd": dt.float64,
}


def canonical(table: ir.Table, columns: dict[str, str], name: str, kind: str = "",
              epoch_unit: str | None = None) -> tuple[ir.Table, frozenset[str], dict[str, str]]:
    """Rename the user's columns to canonical names and cast them to canonical types; also returns
    canonical column -> the user's text column converted to a number or a timestamp. A number in
    event_ts is read as epoch time in ``epoch_unit`` (``[source] epoch_unit``), else refused."""
    theirs = set(table.columns)
    _refuse_shared_identity(columns, theirs, name)
    selected: dict[str, ir.Value] = {}
    converted: dict[str, str] = {}
    for canon in CANONICAL_COLUMNS:
        col = columns.get(canon, canon)
        if col not in theirs:
            # A missing optional column leaves its metrics out, but a mapping that names a column the
            # table lacks is a mistake (a typo would silently drop cost or latency from every report).
            if canon in REQUIRED_COLUMNS or canon in columns:
                mapped = f" (mapped by source.columns.{canon})" if canon in columns else ""
                kind = "required column" if canon in REQUIRED_COLUMNS else "column"
                hint = (_spaced(canon, columns, theirs) or _cased(canon, col, columns, theirs) or _one_column(theirs)
                        or _map_it(canon, columns))
                raise InputError(f"source {name!r}: {kind} {col!r}{mapped} not found "
                                 f"(columns: {', '.join(sorted(theirs))}){hint}")
            continue
        try:
            selected[canon] = _cast(table[col], COLUMN_TYPES[canon], canon, col, kind, epoch_unit)
        except InputError as exc:
            if canon in REQUIRED_COLUMNS or canon in columns:
                raise
            # Read by its name, not mapped: the user had no mapping to change and no word on a way out (found in a
            # PostgreSQL audit: a jsonb column named model failed every run, and model = "" is "not found").
            raise InputError(f"{exc}; a column named {canon} is read as {canon} unless [source.columns] maps {canon} "
                             f"to another column: map it, or read the table through a view that casts or renames "
                             f"{col!r}") from exc
        if table[col].type().is_string() and not COLUMN_TYPES[canon].is_string():
            converted[canon] = col
    return table.select(**selected), frozenset(selected), converted


def _map_it(canon: str, columns: dict[str, str]) -> str:
    """How to read a required column of another name: a new user's own CSV export (conv, ts, kind) was told only
    "required column 'conversation_id' not found (columns: conv, kind, ts)", [source.columns] never named."""
    if canon in columns:
        return ""
    return (f"; expected a column of that name, or yours mapped to it in [source.columns]: "
            f"{canon} = \"<your column>\"")


def _spaced(canon: str, columns: dict[str, str], theirs: set[str]) -> str:
    """What is wrong with a mapped name that has a space (or a tab) before or after it when, without them, it names a
    column: found installing agentdigest as a new user, `event_ts = "ts "` for a table with `ts` was "'ts ' not
    found (columns: ..., ts, ...)", the space unseen in the quotes and the column seemingly listed."""
    col = columns.get(canon)
    if col is None or col.strip() == col or col.strip() not in theirs:
        return ""
    where = ("at both ends" if col[0].isspace() and col[-1].isspace() else
             "at its start" if col[0].isspace() else "at its end")
    blank = "a space" if not set(col) - set(col.strip()) - {" "} else "a blank (a tab or another space)"
    return (f"; the name in source.columns.{canon} has {blank} {where}, and the table has {col.strip()!r} "
            f"(expected {canon} = {json.dumps(col.strip())})")


def _cased(canon: str, col: str, columns: dict[str, str], theirs: set[str]) -> str:
    """The table's columns whose names differ from ``col`` (mapped or canonical) only in letter case, and what to write:
    found in a review of :func:`_spaced`, `event_ts = "TS"` for a table with `ts` said only "'TS' ... not found
    (columns: ..., ts)", as of a name not there at all. Names are read with their case as written on every engine
    (PostgreSQL folds an unquoted name when the table is made: a column created as "EventTs" keeps its capitals, one
    created as EventTs is eventts)."""
    same = sorted(c for c in theirs if c.casefold() == col.casefold())
    if not same:
        return ""
    expected = " or ".join(f"{canon} = {json.dumps(c)}" for c in same)
    if canon in columns:
        return (f"; the name in source.columns.{canon} is in another case than the table's "
                f"{' and '.join(repr(c) for c in same)} (expected {expected})")
    return (f"; the table has {' and '.join(repr(c) for c in same)}, in another case (expected {expected} in "
            f"[source.columns])")


def _one_column(theirs: set[str]) -> str:
    """Why a CSV file may have been read as one column, "a,b,c": found in a dirty-data check, where rows of
    another shape among a file's first rows kept DuckDB from telling its delimiter and header, and the error's
    "(columns: Conversation,Timestamp,Type,Latency)" read as four columns that were there."""
    if theirs and all(re.fullmatch(r"column\d+", col) for col in theirs):
        # DuckDB's names for a CSV file without a header line: an empty file read as "(columns: column0)"
        # and nothing said the file was empty (a new-user audit)
        return "; the file has no header line (DuckDB named its columns column0, column1, ...): is it empty?"
    if len(theirs) != 1 or not any(sep in next(iter(theirs)) for sep in ",;\t|"):
        return ""
    return ("; the file was read as one column: its delimiter or header could not be told from its first rows "
            "(rows of another shape near the top?)")


#: Columns that identify or place an event: one that another canonical column also reads is a mapping mistake
#: (event_id = "conversation_id" made every conversation one event, its others "duplicates", and halved cost).
IDENTITY_COLUMNS = ("event_id", "conversation_id", "event_ts", "event_type")


def _refuse_shared_identity(columns: dict[str, str], theirs: set[str], name: str) -> None:
    """InputError when a user column is read both as an identity column and as another canonical column,
    through ``[source.columns]`` (found by a new user: a copied mapping line gave no error, and a report of
    wrong figures whose only sign was thousands of duplicate events). Others may share a column on purpose
    (one error text as both error_type and error_message)."""
    readers: dict[str, list[str]] = {}
    for canon in CANONICAL_COLUMNS:
        col = columns.get(canon, canon)
        if col in theirs:
            readers.setdefault(col, []).append(canon)
    for col, canons in readers.items():
        if len(canons) > 1 and set(canons) & set(IDENTITY_COLUMNS) and set(canons) & set(columns):
            # Only the identity columns named (it listed all four and the source, 200 characters: a new-user review)
            own = [c for c in canons if c in IDENTITY_COLUMNS]
            raise InputError(f"source.columns: {' and '.join(canons)} both read column {col!r} (expected "
                             f"{'each' if len(own) == len(canons) else ' and '.join(own)} in a column of its own)")


#: What a text column converted to a canonical one is expected to hold, as its error says it (Source.conversion_error).
EXPECTED_VALUES = {"event_ts": "ISO 8601 times such as 2026-11-23 14:05:09", "token_count": "whole numbers such as 1250",
                   "latency_ms": "milliseconds such as 830.5", "cost_usd": "dollars such as 0.042"}


def text_timestamp(value: ir.StringValue, kind: str) -> ir.StringValue:
    """``value`` with the space before a trailing UTC offset removed on DuckDB: its cast reads
    ``2026-09-30 19:22:37.043 -0500`` as a time zone named "-0500" and fails, while Python's
    ``%z`` and PostgreSQL write that form (found by a new user). Exact: only a space followed by a
    sign and ``HHMM`` or ``HH:MM`` at the very end is removed; the cast still checks the rest. Cheap:
    a 10M-row text column cast 1.0 s slower (regexp_replace took 3.5 s more, strptime minutes)."""
    if kind != "duckdb":
        return value
    n = value.length()
    sign = ["+", "-"]
    hhmm = (value.substr(n - 6, 1) == " ") & value.substr(n - 5, 1).isin(sign)
    hh_mm = (value.substr(n - 7, 1) == " ") & value.substr(n - 6, 1).isin(sign) & (value.substr(n - 3, 1) == ":")
    return ibis.cases((hhmm, value.substr(0, n - 6) + value.right(5)),
                      (hh_mm, value.substr(0, n - 7) + value.right(6)), else_=value)


def _zones_apart(value: ir.StringValue, target: dt.DataType) -> ir.TimestampValue:
    """``value`` cast to ``target`` on DuckDB, a time naming its zone (``Europe/Berlin``, ``UTC``) apart from
    the others: DuckDB 1.5's cast keeps a zone name's zone for the rows after it in its batch, so
    ``2026-10-19`` after a ``... Europe/Berlin`` row read as 2026-10-18 22:00 UTC (found in a docs audit). A zone
    name has a ``/`` (``Etc/GMT+5``) or a letter other than T and Z among the text's last 8 characters: a name
    may end in a digit (``GMT0``, and ``UTC+5``, which leaked 5 hours to the rows after it). As cheap: 3M rows,
    3.4 s apart against 3.6 s in one cast; the letter test, a regex on the tail, took 0.84 CPU-s for 3M rows
    against 0.95 for the last character's case alone (upper/lower of the tail: 1.53)."""
    named = value.contains("/") | value.right(8).re_search("[A-SU-Ya-su-y]")
    return ibis.ifelse(named, value.cast(target), value.cast(target))


def blank_is_null(value: ir.StringValue) -> ir.StringValue:
    """``value`` with an empty or blank text made null: exports write '' for "no value" (a terminal event's
    latency, a row without a time), and a CSV file's empty field is already read as null. Cast as is, one ''
    failed the whole run as "not numbers" (found by a new user) instead of being absent, or, in event_ts,
    counted in missing_required."""
    return ibis.ifelse(value.strip() == "", ibis.null("string"), value)


def _cast(value: ir.Value, target: dt.DataType, canon: str, col: str, kind: str = "",
          epoch_unit: str | None = None) -> ir.Value:
    have = value.type()
    if have.is_string() and not target.is_string():
        value = blank_is_null(value)
    if canon == "conversation_id" and have.is_string():
        # An empty id is no id, as for event_id: a CSV file's empty field is already null, so the same rows in
        # PostgreSQL made '' one conversation of every id-less event (found in a new-user audit).
        value = value.nullif("")
    if canon == "event_ts":
        if have.is_timestamp():
            return value if have.timezone == "UTC" else value.cast(target)
        if have.is_string() and epoch_unit is not None:
            # Text read as a number first: Spark reads every CSV column as text, so epoch_unit = "ms" with epoch
            # milliseconds in a CSV file failed every run as "holds '1794381562453' (expected ISO 8601 times)" while
            # DuckDB, typing the same file's column as numbers, read it (found in a Spark audit). Text that is no
            # number fails the query as a text number column's does (Source.conversion_error names it).
            return epoch_timestamp(value.cast("float64"), epoch_unit, kind)
        if have.is_string():
            return _zones_apart(text_timestamp(value, kind), target) if kind == "duckdb" else \
                text_timestamp(value, kind).cast(target)
        if have.is_date():
            return value.cast(target)
        if have.is_numeric() and epoch_unit is not None:
            return epoch_timestamp(value, epoch_unit, kind)
        # Epoch numbers are not guessed at (seconds? milliseconds?): said with the way out (a PostgreSQL audit).
        epoch = _EPOCH_HINT if have.is_numeric() else ""
        raise InputError(f"column {col!r} ({canon}) has type {_type_name(have)}, expected a timestamp{epoch}")
    if have == target:
        return value
    if canon == "token_count" and (have.is_string() or have == dt.uint64):
        # Text is read as a number, then judged as a float column is: cast straight to an integer, "12.5"
        # read 13 on DuckDB and failed the run on PostgreSQL as "not numbers"; an unsigned -1 (2^64 - 1)
        # failed the cast to int64, and the run (both found in a dirty-data audit). Exact up to 2^53.
        value, have = value.cast("float64"), dt.float64
    if canon == "token_count" and (have.is_floating() or have.is_decimal()):
        # A fractional (or NaN, infinite) token count is invalid data like a negative one: it becomes -1,
        # so it is counted in invalid_tokens and left out of the sums. Cast as is, engines disagreed:
        # DuckDB and Postgres round 12.5 to 12 or 13, Spark truncates it.
        # Floored only where it fits: Ibis casts floor() to BIGINT, which failed the whole run on a NaN,
        # an infinite or a 1e300 token count (found in a dirty-data audit). isnan too, not the range alone:
        # DuckDB folds the range test to true from a Parquet file's max, which leaves NaN out.
        number = value.cast("float64")
        nan = number.isnan().fill_null(False)
        fits = ibis.ifelse((number.abs() <= 2.0 ** 53) & ~nan, number, ibis.literal(0.5))
        whole = fits == fits.floor()
        absent = value.isnull() & ~nan  # Spark's isnull is true for NaN too
        return ibis.ifelse(absent | whole, value, ibis.literal(-1.0)).cast(target)  # null stays absent
    # A boolean is no number: no canonical column is one (DESIGN, Event contract), so a boolean mapped to
    # token_count, latency_ms or cost_usd is a mapping mistake. Cast, DuckDB and Spark summed it as 0/1 (tokens
    # were the count of true values, unsaid) and PostgreSQL failed the run as unreadable, exit 3 (found in a
    # column-types audit).
    if target.is_numeric() and not (have.is_numeric() or have.is_string()):
        # An interval latency is not guessed at either (a view says which unit); Ibis names PostgreSQL's interval
        # "interval('s')", as if it were seconds (found in a column-types audit).
        duration = ("; convert the interval to a number of milliseconds in a view"
                    if have.is_interval() and canon == "latency_ms" else "")
        raise InputError(f"column {col!r} ({canon}) has type {_type_name(have)}, expected a number{duration}")
    if target.is_string() and have.is_unknown():
        return value.cast(target)  # a type Ibis has no name for: an enum, a domain (every type has a text form)
    # A decimal without a fraction is an integer id: PostgreSQL's NUMERIC(20, 0), DuckDB's HUGEINT (typed DECIMAL(38, 0)
    # by Ibis) were refused as "expected text or an integer id" (found in a column-types audit). Not one with a
    # scale, or PostgreSQL's NUMERIC without one: 1.0 and 1 would be two ids.
    whole = have.is_decimal() and have.scale == 0
    if target.is_string() and not (have.is_string() or have.is_integer() or have.is_uuid() or whole):
        expected = "text or an integer id" if canon in _IDS else "text"  # a jsonb error_message is no id
        raise InputError(f"column {col!r} ({canon}) has type {_type_name(have)}, expected {expected}")
    return value.cast(target)


#: The text columns that may hold integers: ids, read as their text
_IDS = frozenset({"event_id", "conversation_id", "agent_id"})
#: ``[source] epoch_unit``: how many of the unit make a second.
EPOCH_UNITS = {"s": 1.0, "ms": 1e3, "us": 1e6}
_EPOCH_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds"}
_EPOCH_HINT = '; numbers are read as epoch time when [source] sets epoch_unit = "s", "ms" or "us"'


def expected_values(canon: str, epoch_unit: str | None, example: str | None) -> str:
    """What a text column converted to ``canon`` is expected to hold, as its error says it (Source.conversion_error):
    with epoch_unit, event_ts's text is epoch time; without it, an event_ts value that is a number (epoch time
    in a text column, as Spark reads every CSV column) says how to read it, as a number column's type error does."""
    if canon != "event_ts":
        return EXPECTED_VALUES[canon]
    if epoch_unit is not None:
        return f"epoch times in {_EPOCH_NAMES[epoch_unit]} such as {int(1_795_442_709 * EPOCH_UNITS[epoch_unit])}"
    if example is not None and re.fullmatch(r"\s*[+-]?\d+(\.\d*)?\s*", example):  # short: one line of <= 120
        return "ISO 8601 times; for epoch numbers set [source] epoch_unit"
    return EXPECTED_VALUES[canon]
#: The epoch seconds a period may reach (periods.YEARS, 1900 to 9990): beyond, an engine's conversion fails
#: the whole query (or wraps), so such a value is no time, a row without event_ts (missing_required).
_EPOCH_RANGE = (datetime(1900, 1, 1, tzinfo=timezone.utc).timestamp(), datetime(9991, 1, 1, tzinfo=timezone.utc).timestamp())


@ibis.udf.scalar.builtin(name="to_timestamp", signature=((dt.float64,), dt.Timestamp(timezone="UTC")))
def _to_timestamp(seconds):  # type: ignore[no-untyped-def]
    """DuckDB's and PostgreSQL's to_timestamp(double): epoch seconds as a timestamp with time zone."""


@ibis.udf.scalar.builtin(name="timestamp_seconds", signature=((dt.float64,), dt.Timestamp(timezone="UTC")))
def _timestamp_seconds(seconds):  # type: ignore[no-untyped-def]
    """Spark's timestamp_seconds(double): epoch seconds as a timestamp (the session runs in UTC)."""


def epoch_timestamp(value: ir.NumericValue, unit: str, kind: str) -> ir.TimestampValue:
    """A number of ``unit`` since 1970-01-01 UTC as a UTC timestamp (found by a new user: a Parquet file's
    epoch milliseconds, which no view could convert). NaN and values beyond the years a period may fall in
    are null: a row without event_ts, counted in missing_required, rather than a query that fails."""
    seconds = value.cast("float64") / EPOCH_UNITS[unit]
    seconds = ibis.ifelse((seconds >= _EPOCH_RANGE[0]) & (seconds < _EPOCH_RANGE[1]), seconds, ibis.null("float64"))
    if kind == "pyspark":
        return _timestamp_seconds(seconds)
    if kind in ("duckdb", "postgres", "postgresql"):
        return _to_timestamp(seconds)
    raise InputError(f"source: epoch_unit is read on duckdb://, postgresql:// and pyspark:// sources, not {kind}://; "
                     f"convert the column in a view")


def _type_name(have: dt.DataType) -> str:
    if have.is_interval():
        return "interval"
    return "a user-defined type (cast it in a view)" if have.is_unknown() else str(have)


def refuse_renamed_columns(table: ir.Table, columns: dict[str, str]) -> None:
    """InputError when files give a mapped column under its canonical name in rows where the mapped one is null:
    a column renamed between files (``latency`` in last year's files, ``latency_ms`` in this year's, with
    ``latency_ms = "latency"`` in [source.columns]). Read by name (see duckdb_source._read_files), each name is
    null in the other files, so the newer files' latencies, or with ``event_ts`` their every row, left the report
    without a word (found in a schema-drift audit). Only when the files have both names: one scan of the two
    columns."""
    pairs = [(canon, col) for canon, col in sorted(columns.items())
             if col != canon and col in table.columns and canon in table.columns and canon not in columns.values()]
    if not pairs:
        return
    counts = table.agg(**{f"n{i}": table[canon].count(where=table[col].isnull())
                          for i, (canon, col) in enumerate(pairs)}).to_pyarrow().to_pylist()[0]
    for i, (canon, col) in enumerate(pairs):
        if counts[f"n{i}"]:
            raise InputError(f"source.columns.{canon}: {counts[f'n{i}']} rows of the files have a value in {canon!r} "
                             f"and none in {col!r}, the column {canon} is mapped to, so the mapping would leave them "
                             f"out (a column renamed between files?); expected the column under one name in every "
                             f"file: rewrite the files that use the other name")
