"""ReportData: the single, frozen hand-off between computing a report and presenting it.

Everything a renderer or channel needs is here, already computed. Event text is carried as found;
rendering redacts it before any artifact is written. ``to_dict`` is the report.json schema (README, Metrics); values are unrounded.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

SCHEMA_VERSION = 1
#: How the first note of a report of some agents begins, before their names (compute writes it; render finds it
#: there to isolate each name: render.notes)
SCOPE_NOTE = "Only the conversations of "


@dataclass(frozen=True)
class MetricValue:
    """One headline metric for the period, with its previous value and change."""

    name: str
    label: str
    unit: str  # count | percent | tokens | ms | usd
    value: float | int | None
    previous: float | int | None
    change_pct: float | None
    change_pp: float | None
    direction: str | None  # up | down | flat | new | None
    good: bool | None
    higher_is_better: bool | None
    description: str = ""
    notable: bool | None = None  # set by the significance test (render issue); None = not judged
    #: False when the move, whatever ``good`` says (DESIGN rule 5), is not to be coloured or called news:
    #: a total on incomplete data, in or against the period the data begin in, in a period still running,
    #: or a figure whose column has no value in one of the two periods (README, Notable changes)
    judged: bool = True

    @property
    def is_total(self) -> bool:
        """A sum over the period's events (counts, tokens, cost, savings), which missing events lower."""
        return self.unit in ("count", "usd") or self.name == "total_tokens"

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value, "previous": self.previous, "unit": self.unit,
            "change_pct": self.change_pct, "change_pp": self.change_pp,
            "direction": self.direction, "good": self.good,
            "label": self.label, "higher_is_better": self.higher_is_better, "notable": self.notable,
            "judged": self.judged,
        }


@dataclass(frozen=True)
class Gap:
    """Hours in the period with no events where events were expected."""

    start: datetime
    end: datetime

    @property
    def hours(self) -> float:
        """Elapsed hours. In UTC: Python subtracts two datetimes of the same zone by wall clock, which made
        a gap over a DST change an hour too short or too long."""
        return (self.end.astimezone(timezone.utc) - self.start.astimezone(timezone.utc)).total_seconds() / 3600

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "hours": self.hours}


@dataclass(frozen=True)
class Quality:
    """How complete and how clean the period's data is (README, Data quality)."""

    completeness_pct: float | None
    warning: bool
    threshold: float
    received_events: int
    expected_events: float | None
    # "previous_periods" | "earlier_periods" (the 4 previous had no data: the last ones that had) |
    # "same_weekday" (a day report's same weekday of the 4 previous weeks) |
    # "expected_events_per_day" | None (no history)
    baseline: str | None
    duplicate_events: int | None
    missing_required: int
    invalid_latency: int | None
    invalid_tokens: int | None
    unknown_event_types: int
    future_events: int
    gaps: tuple[Gap, ...] = ()
    invalid_cost: int | None = None  # NaN or infinite cost_usd values (None: no cost column)
    latest_event: datetime | None = None  # the period's latest valid event (not in the future)
    # A day report on the previous days' baseline that warns: its completeness against the same weekday of
    # the 4 previous weeks when that one would not warn (a quiet Saturday against weekdays), else None
    same_weekday_pct: float | None = None
    # When many events have an unknown type (compute.UNKNOWN_TYPES_NOTE): the most frequent such types (None: null)
    unknown_event_type_examples: tuple[str | None, ...] = ()
    # Rows of the source's CSV files left out for their shape, in any period (None: the source is not CSV
    # files, or they were read strictly), and the first of them: "line 25001 of events.csv: Expected Number ..."
    unreadable_rows: int | None = None
    unreadable_first: str | None = None
    # The periods (keys, oldest first) whose median is the expected volume, and the one of them the data began
    # partway through, which makes the expected volume low (None: none did)
    baseline_periods: tuple[str, ...] = ()
    baseline_partial: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "completeness_pct": self.completeness_pct, "warning": self.warning,
            "duplicate_events": self.duplicate_events, "missing_required": self.missing_required,
            "invalid_latency": self.invalid_latency, "invalid_tokens": self.invalid_tokens,
            "invalid_cost": self.invalid_cost,
            "unknown_event_types": self.unknown_event_types, "future_events": self.future_events,
            "gaps": [g.as_dict() for g in self.gaps],
            "received_events": self.received_events, "expected_events": self.expected_events,
            "threshold": self.threshold, "baseline": self.baseline,
            "latest_event": self.latest_event.isoformat() if self.latest_event else None,
            "same_weekday_pct": self.same_weekday_pct,
            "unknown_event_type_examples": list(self.unknown_event_type_examples),
            "unreadable_rows": self.unreadable_rows, "unreadable_first": self.unreadable_first,
            "baseline_periods": list(self.baseline_periods), "baseline_partial": self.baseline_partial,
        }


@dataclass(frozen=True)
class PeriodInfo:
    key: str
    start: datetime
    end: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclass(frozen=True)
class ReportData:
    """A computed report for one period. Renderers read it; nothing writes it after creation."""

    report_id: str
    title: str
    audience: str
    generated_at: datetime
    timezone: str
    period_kind: str
    period: PeriodInfo
    previous_period: PeriodInfo
    metrics: dict[str, MetricValue]
    # Breakdown rows are plain dicts of JSON-ready values (see README "report.json").
    daily: tuple[dict[str, Any], ...] = ()
    by_agent: tuple[dict[str, Any], ...] | None = ()
    by_model: tuple[dict[str, Any], ...] | None = ()
    errors_by_type: tuple[dict[str, Any], ...] | None = ()
    trend: tuple[dict[str, Any], ...] = ()
    failure_examples: tuple[dict[str, Any], ...] = ()
    quality: Quality | None = None
    notes: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)  # presentation settings from the report config

    def as_dict(self) -> dict[str, Any]:
        """The report.json document (its published schema; extra keys are additive)."""
        breakdowns: dict[str, Any] = {"daily": list(self.daily)}
        for name in ("by_agent", "by_model", "errors_by_type"):
            rows = getattr(self, name)
            if rows is not None:
                breakdowns[name] = list(rows)
        breakdowns["trend"] = list(self.trend)
        return {
            "schema_version": SCHEMA_VERSION,
            "report_id": self.report_id,
            "title": self.title,
            "audience": self.audience,
            "generated_at": self.generated_at.isoformat(),
            "timezone": self.timezone,
            "period_kind": self.period_kind,
            "period": self.period.as_dict(),
            "previous_period": self.previous_period.as_dict(),
            "metrics": {name: m.as_dict() for name, m in self.metrics.items()},
            "breakdowns": breakdowns,
            "quality": self.quality.as_dict() if self.quality else None,
            "failure_examples": list(self.failure_examples),
            "notes": list(self.notes),
            # additive: only a report of some agents has it
            **({"agents": list(self.settings["agents"])} if self.settings.get("agents") else {}),
        }

    def to_json(self) -> str:
        return json.dumps(_clean(self.as_dict()), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _clean(value: Any) -> Any:
    """Make a value JSON-safe: non-finite floats become null, datetimes ISO strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
