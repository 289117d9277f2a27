"""A run's outcome as ``run`` and ``demo`` print it: the headline figures beside the previous period's, the
data's completeness, where it was archived and each delivery's state. Printed to the console the CLI gives.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from .render.format import FLAT, NA, NEW, Formatter


#: the console says each figure and change as the report does ("61.2%" for 61.15, "+12%", "<$0.01")
_FORMAT = Formatter()


def _fmt(value: Any, unit: str) -> str:
    return _FORMAT.value(value, unit)


def _change(m: Any) -> str:
    if m.direction is None:
        return ""
    change = _FORMAT.change(m)
    if change in (FLAT, NA, NEW):
        return change
    up = m.direction == "up" or (m.direction == "new" and (m.change_pp or 0) > 0)  # a rate after 0.0%
    good = m.good if m.judged else None
    colour = "green" if good else "red" if good is False else "white"
    return f"[{colour}]{'▲' if up else '▼'} {change}[/]"


HEADLINE = ("conversations", "resolution_rate", "containment_rate", "error_rate", "p95_latency_ms",
            "total_tokens", "cost_usd", "estimated_savings_usd")


def print_outcome(outcome: Any, out: Console) -> None:
    """The outcome's headline figures, data quality, archive and deliveries, printed to ``out``."""
    data = outcome.data
    note = getattr(outcome, "skipped", None) or getattr(outcome, "resumed", None) or getattr(outcome, "preview", None)
    if note:
        out.print(f"{outcome.report_id} {outcome.period_key}: {note}", markup=False, soft_wrap=True)
    if data is None:
        _print_deliveries(outcome, out)
        return
    table = Table(title=f"{data.title} · {data.period.key} ({data.timezone})", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("previous", justify="right")
    table.add_column("change", justify="right")
    for name in HEADLINE:
        m = data.metrics.get(name)
        if m is not None:
            table.add_row(m.label, _fmt(m.value, m.unit), _fmt(m.previous, m.unit), _change(m))
    out.print(table)
    q = data.quality
    if q is not None:
        pct = ("unknown (no history)" if q.completeness_pct is None
               else Formatter().percent_under(q.completeness_pct, q.threshold))  # as the report says it
        line = f"data completeness {pct}"
        if q.warning and q.completeness_pct is None:  # no event and none earlier (quality.assess)
            line = "[bold red]WARNING: no events arrived in this period, and none before it to compare with[/]"
        elif q.warning:
            line = f"[bold red]WARNING: incomplete data, {line}[/]"
        out.print(line)
    if outcome.archive_dir:
        out.print(f"archived: {outcome.archive_dir} ({', '.join(outcome.files)})", markup=False, soft_wrap=True)
    _print_deliveries(outcome, out)


def _print_deliveries(outcome: Any, out: Console) -> None:
    for d in outcome.deliveries:
        state = d.state if not d.error else f"{d.state}: {d.error}"
        out.print(f"  {d.channel}{' ' + d.recipient if getattr(d, 'recipient', '') else ''}: {state}", markup=False)
