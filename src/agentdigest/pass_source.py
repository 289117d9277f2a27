"""The source of one scheduler pass (``schedule`` and ``run --due``): opened once for every report and period,
and asked once per report for where its data begins.

Found reviewing source outages: each period of the pass, of every report, connected again after the first failed,
reports x (catch_up + 1) connections (10 s each to a server that hangs) per run --due or retry. A DuckDB source is
the exception: the run opens it, closes it after computing and reopens it itself, so the application writing the
events file is not locked out through the deliveries (found in an operations audit: the scheduler and `run --due`
held it open through every delivery and its retries).
"""

from __future__ import annotations

from datetime import datetime

from .config import Config, ReportConfig
from .run_request import data_begins_after
from .sources import Source, open_source, scheme_of


class PassSource:
    """The pass's one source, opened when first needed; one that failed to open is not connected to again."""

    def __init__(self, config: Config):
        self.config = config
        self._source: Source | None = None
        self._unopened: Exception | None = None
        self._begins: dict[tuple[datetime, tuple[str, ...]], datetime | None] = {}

    def _open(self) -> Source:
        if self._unopened is not None:
            raise self._unopened
        try:
            return open_source(self.config.source, self.config.path)
        except Exception as exc:
            self._unopened = exc
            raise

    def shared(self) -> Source | None:
        """The source the pass's runs share; None for a DuckDB one, which each run opens itself (see above)."""
        if self._source is None and scheme_of(self.config.source.url) != "duckdb":
            self._source = self._open()
        return self._source

    def first_event(self, report: ReportConfig, end: datetime) -> datetime | None:
        """:func:`data_begins_after` for ``report`` (of its agents): one query, shared by the reports asking
        the same; a DuckDB file is opened for it and closed again at once."""
        key = (end, tuple(report.agents or ()))
        if key not in self._begins:
            source = self.shared()
            if source is not None:
                self._begins[key] = data_begins_after(source, end, key[1])
            else:
                own = self._open()
                try:
                    self._begins[key] = data_begins_after(own, end, key[1])
                finally:
                    own.close()
        return self._begins[key]

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None
