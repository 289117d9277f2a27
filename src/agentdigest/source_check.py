"""What ``agentdigest check`` says of the source: one query over the events, as a report's queries run.

It counts the events, finds the latest one not in the future and converts every column, so a value
that would fail the run (text as a latency) fails the check too. The result is a line of text. The CLI
opens the source, prints the line and closes the source.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .config import CANONICAL_COLUMNS
from .engines import temp_tables_refused
from .pg_tables import unindexed
from .queries import rows as _rows
from .sources import ConversionError, QueryFailed, Source


def source_line(source: Source) -> str:
    """ "source NAME: ok (N events, latest ...; ...)" for an open source ("source NAME: WARNING - no events: ..."
    when it holds none), or its error raised as a run would raise it."""
    import ibis

    ts, clock = source.events.event_ts, ibis.timestamp(datetime.now(timezone.utc)).cast("timestamp('UTC')")
    # A count of every column converts every value: text that is not a number ('fast' as a latency)
    # fails here, as it would fail the run, instead of passing the check.
    converted = {f"_{name}": source.events[name].count() for name in sorted(source.present)}
    try:
        # Future as the report counts them: a row without a conversation_id is missing_required only.
        future = (ts > clock) & source.events.conversation_id.notnull()
        with source.transaction():  # as a report's queries run: in UTC, with [source.settings]
            rows = _rows(source.events.agg(events=source.events.count(), latest=ts.max(where=ts <= clock),
                                           future=future.sum(), **converted))[0]
    except ConversionError as exc:
        raise source.conversion_error(exc) from None
    except QueryFailed as exc:  # named like the run names it
        raise source.query_failed(exc) from exc
    absent = sorted(set(CANONICAL_COLUMNS) - source.present)
    # The latest event not in the future: one bad clock must not hide that the data stopped.
    future = f"; {rows['future']:,} in the future, not counted" if rows["future"] else ""
    # A read-only role, a replica or no TEMPORARY privilege: the run works, without temporary tables (README,
    # PostgreSQL); the line says which, so the user knows what to change.
    refused = None if source.temp_tables else temp_tables_refused(source.backend) or "read-only"
    slower = f"; no temporary tables ({refused}): reports compute more slowly" if refused else ""
    skipped = source.unreadable.rows if source.unreadable else 0
    unreadable = (f"; {skipped:,} unreadable row{'' if skipped == 1 else 's'} left out, the first: "
                  f"{source.unreadable.first}" if skipped else "")
    index = _unindexed(source)
    details = (f"{'; optional columns absent: ' + ', '.join(absent) if absent else ''}{slower}{unreadable}"
               f"{'; ' + index if index else ''}")
    if not rows["events"]:
        # Found in a production audit: an empty table (or files of no rows) read "ok (0 events, latest none)",
        # and the run after it warned "No events arrived". Readable, so not an error (exit 0): a new
        # deployment's table may fill later, and the run itself succeeds.
        return (f"source {source.name}: WARNING - no events: it holds no rows, so every report would say "
                f"\"No events arrived\"" + (f" ({details[2:]})" if details else ""))
    return (f"source {source.name}: ok ({rows['events']:,} events, latest {_instant(rows['latest'])}{future}"
            f"{details})")


def _unindexed(source: Source) -> str | None:
    """On PostgreSQL, when no index serves the period filter of a timestamp event_ts (see pg_tables.unindexed)."""
    column = source.columns.get("event_ts", "event_ts")
    if source.kind not in ("postgres", "postgresql") or source.raw is None or column not in source.raw.columns:
        return None
    return unindexed(source.backend, source.name, column) if source.raw[column].type().is_timestamp() else None


def _instant(value: Any) -> str:
    """An event time for a person: "2026-11-29 23:42:05 UTC", to the second (check printed microseconds and
    "+00:00", found in a README audit); "none" without one."""
    if isinstance(value, datetime):  # an engine may return it without its zone: UTC, its session's
        utc = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
        return f"{utc:%Y-%m-%d %H:%M:%S} UTC"
    return "none" if value is None else str(value)
