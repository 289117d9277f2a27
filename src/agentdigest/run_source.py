"""A run's source, and what is recorded when it cannot be opened.

:class:`RunSource` is opened before anything else in a run and rested between its reports (see its docstring);
:func:`note_unread` records the runs that a source which could not be opened failed, so a scheduled one stays due.
"""

from __future__ import annotations

from typing import Any

from .config import Config, ReportConfig
from .periods import Period
from .run_records import note_failed, open_ledger, unrecorded
from .sources import Source, open_source


class RunSource:
    """The run's source: opened before anything else (an unreadable source fails the run before the
    ledger is touched), and a DuckDB one closed again after each report's computation and reopened
    for the next. Delivery can take minutes of retries; an open DuckDB file locks out the application
    that writes its events (DuckDB allows one writer or readers, never both), and holds the memory of
    the report's queries. A Spark session (seconds to start) and server connections stay open."""

    def __init__(self, config: Config, given: Source | None) -> None:
        self._config, self._own = config, given is None
        self._source: Source | None = given or open_source(config.source, config.path)

    def get(self) -> Source:
        if self._source is None:
            self._source = open_source(self._config.source, self._config.path)
        return self._source

    def rest(self) -> None:
        if self._own and self._source is not None and self._source.kind == "duckdb":
            self.close()

    def close(self) -> None:
        if self._own and self._source is not None:
            self._source.close()
        self._source = None


def note_unread(config: Config, todo: list[tuple[ReportConfig, Period]], exc: Exception, *, ledger: Any,
                trigger: str, test_to: str | None) -> None:
    """Record the runs that a source that could not be opened failed: every scheduled one (see note_failed), and
    a manual one of a report that delivers, as its run records a query that fails: an operator reading
    history sees the attempt and why nothing went out. Only a scheduled run keeps its period due."""
    if trigger != "due":
        todo = [(r, p) for r, p in todo if r.channels or test_to]
    if not todo:
        return
    own = ledger is None
    if own:
        try:
            ledger = open_ledger(config)
        except Exception as failed:
            unrecorded(exc, failed)
            return
    try:
        for report, period in todo:
            if not note_failed(ledger, report.id, period.key, exc, trigger):
                break  # the ledger is down: said once
    finally:
        if own:
            ledger.close()
