"""Engines' errors about a source, as one line: what DuckDB's CSV reader says is wrong, why a view cannot
be read, how to keep PostgreSQL from stopping a query; never the event values an engine quotes."""

from __future__ import annotations

import re

from .errors import first_line


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
    return ""
