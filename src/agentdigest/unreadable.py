"""Rows of CSV files that DuckDB cannot read: counted in the report's quality section and left out,
instead of failing the run.

DuckDB reads CSV strictly: one row with a field too many or too few stopped every query with "CSV
Error on Line: 25001", and a million good rows gave no report (a known gap of earlier sessions; the
README's rule is that dirty events are counted and the report still goes out). Rows are never dropped
silently either:

1. Before the source is opened, each file is read once more, every column, on a DuckDB connection of
   its own, with ``store_rejects``, which lists every row skipped and why (:func:`list_unreadable`).
2. Only when rows were skipped are the events read with ``ignore_errors``, which skips those rows and
   no others; their number and the first one (line, file and cause, never the line's text: event
   data) go to ``quality``. Otherwise the files are read as before.

Bytes that are not UTF-8 are DuckDB's "INVALID ENCODING" in a text column, but a CAST error in a number
column: such a CAST whose line is not UTF-8 (read from the file at the reject's position) is the unreadable
row it is, not a column of the wrong type. In a column the report does not read, neither fails the row
(the column is never converted or decoded): the row is read, though the files must then be read with
``ignore_errors`` too (a strict read fails on the byte wherever it is).

The files are read strictly, as before, where the rows cannot be listed: a value of a column the report
reads that does not convert (the column's type is wrong, not a row: the run's error names the column,
exit 2), a remote file (its credentials are the source connection's), or DuckDB failing to list them
(reading only some columns of a file not in UTF-8, DuckDB 1.5's ``store_rejects`` failed with an internal
error). A file of which no row can be read is the wrong file, not a dirty one: exit 3, naming the first
row's cause.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from typing import Any

from .masking import mask_text
from .source_errors import without_values

#: Files read as CSV; every path of ``files`` must end so (else they are read as Parquet).
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv")


@dataclass(frozen=True)
class Unreadable:
    """The rows of a source's files left out: how many, and the first (file order, then line)."""

    rows: int
    first: str  # "line 25001 of events.csv: Expected Number of Columns: 5 Found: 6"
    read: int = 0  # the rows read
    # whether the files are read with ignore_errors: some row is left out, or a column the report does not read
    # holds a value a strict read fails on (a byte not in UTF-8), which that read skips past
    skip_errors: bool = False

    @property
    def share(self) -> float:
        """The share of the files' rows left out, 0-1."""
        return self.rows / (self.rows + self.read) if self.rows else 0.0


def is_csv(paths: list[str]) -> bool:
    return bool(paths) and all(p.lower().endswith(CSV_SUFFIXES) for p in paths)


def list_unreadable(paths: list[str], columns: list[str], secrets: list[str]) -> Unreadable | None:
    """The rows of the local CSV ``paths`` DuckDB skips for their shape, read on a connection of its own (an
    internal error of DuckDB invalidates the connection it happens on). None when they cannot all be listed,
    or a value of the user's ``columns`` (those the report reads) does not convert."""
    import duckdb

    wanted = set(columns)
    con = duckdb.connect()
    try:
        rows: list[tuple[Any, ...]] = []
        read = 0
        for path in paths:
            if "://" in path:
                return None  # its credentials are the source connection's
            options = "ignore_errors = true, store_rejects = true"
            # Every column (COLUMNS(*)): reading only some, DuckDB 1.5 failed with an internal error on a file
            # not in UTF-8. fetchall: the rejects are stored once the query has run to its end.
            read += con.execute(f"SELECT count(*), count(COLUMNS(*)) FROM read_csv(?, {options})", [path]).fetchall()[0][0]
            rows += [(path, *r) for r in con.execute(
                "SELECT DISTINCT e.line, e.error_type, e.column_name, e.error_message, coalesce(e.column_idx, 0), "
                "e.line_byte_position, e.byte_position "
                "FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id) WHERE s.file_path = ?",
                [path]).fetchall()]
        # A value of a column the report does not read is never converted or decoded: its row is read (with
        # ignore_errors: a strict read fails on a byte not in UTF-8 in any column). Of the columns it reads, a
        # value that does not convert because its line is not UTF-8 is the unreadable row it is.
        unread = [r for r in rows if r[2] in ("CAST", NOT_UTF8_KIND) and r[3] not in wanted]
        rows = _as_not_utf8([r for r in rows if r not in unread])
    except Exception:  # noqa: BLE001 - the strict error stands
        return None
    finally:
        con.close()
    shapeless = {(path, line) for path, line, kind, *_ in rows if kind != "CAST"}
    if any((path, line) not in shapeless for path, line, kind, *_ in rows if kind == "CAST"):
        return None  # a value that does not convert: the column's type is wrong, not the row
    read += len({(path, line) for path, line, *_ in unread} - shapeless)
    if not rows:
        return Unreadable(rows=0, first="", read=read, skip_errors=bool(unread))
    rows = [r for r in rows if r[2] != "CAST"]
    # a row short of two fields has a reject for each, each saying how many it found by then: the first says it
    path, line, _, _, message, *_ = min(rows, key=lambda r: (paths.index(r[0]), r[1], r[5]))
    first = mask_text(f"line {line} of {path}: {without_values(message)[:200]}", secrets)
    return Unreadable(rows=len(shapeless), first=first, read=read, skip_errors=True)


#: DuckDB's reject of a row with bytes that are not UTF-8, and its words for it.
NOT_UTF8_KIND = "INVALID ENCODING"
NOT_UTF8 = "Invalid unicode (byte sequence mismatch) detected. This file is not utf-8 encoded."


def _as_not_utf8(rejects: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``rejects`` with each CAST reject whose line holds bytes that are not UTF-8 as the unreadable row it is.
    DuckDB checks UTF-8 only in text columns: a Latin-1 byte in a number ('12.5\\xb5') was a value that does not
    convert, so the column's type was taken to be wrong and the run failed (exit 3), where the same byte in a
    text column left the row out and counted it (and Spark, which reads such bytes as U+FFFD, now does the same).
    The lines are read from the file at the rejects' byte positions, each file once and forward: opened once per
    reject, a .csv.gz file was decompressed from its start for each (2,000 rejects in a 300,000-line file: 54 s
    instead of 1 s; found in an audit)."""
    ends: dict[str, dict[int, int]] = {}  # file -> line position -> the last reject's field position there
    for path, _, kind, _, _, _, line_at, field_at in rejects:
        if kind == "CAST" and line_at is not None and field_at is not None:
            lines = ends.setdefault(path, {})
            lines[line_at] = max(field_at, lines.get(line_at, field_at))
    garbled = {(path, line_at) for path, lines in ends.items() for line_at in _not_utf8_lines(path, lines)}
    return [(r[0], r[1], NOT_UTF8_KIND, r[3], NOT_UTF8, *r[5:]) if r[2] == "CAST" and (r[0], r[6]) in garbled else r
            for r in rejects]


_LINE_END = re.compile(rb"[\r\n]")


def _not_utf8_lines(path: str, lines: dict[int, int]) -> list[int]:
    """Of ``lines`` (DuckDB's position of a line -> of a field in it), those whose bytes, from the line's start
    through the field to the line's end, are not UTF-8. Read forward only, through one buffer: a .gz file seeks
    back by decompressing again from its start."""
    found = []
    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rb") as f:
        buffer, at = b"", 0  # the file's bytes from position ``at``
        for line_at in sorted(lines):
            # DuckDB's line position is one byte past the line's start (or at it, after "\r\n"): the byte before
            # belongs to the line or ends the one before, and either way decodes as it is.
            start = max(line_at - 1, at)
            if start >= at + len(buffer):
                f.seek(start)
                buffer, at = b"", start
            else:
                buffer, at = buffer[start - at:], start
            field = lines[line_at] - start + 1  # past the field's first byte: the line ends after it
            while not (end := _LINE_END.search(buffer, field)) and len(buffer) < field + (1 << 20):
                if not (more := f.read(1 << 16)):
                    break
                buffer += more
            # the line ends at "\n" or, in a file of old Mac line endings, "\r" (readline read on to the next "\n")
            line = buffer[:end.start() if end else field + (1 << 20)]
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                found.append(line_at)
    return found
