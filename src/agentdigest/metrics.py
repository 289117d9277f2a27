"""The metric registry: what each metric means (definition) and how the engine computes it (expression).

Metrics are computed at two levels (see ``cohort``): most over the *conversation* table (one row
per conversation, with its outcome flags and sums), the latency quantiles over the *event* table
(one row per deduplicated event of those conversations). A metric's expression is an Ibis
reduction over one group of either table, so the same definition serves the period totals, the
daily series, the per-agent table and the trend with one query each. Adding a metric is one
``MetricDef`` here; periods, changes, quality and templates pick it up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import ibis.expr.types as ir

from .cohort import count_if, float_sum

Level = Literal["conversation", "event"]


@dataclass(frozen=True)
class MetricDef:
    """A metric's definition, as users read it in the report and the README."""

    name: str
    label: str
    unit: str  # count | percent | tokens | ms | usd
    higher_is_better: bool | None
    description: str
    requires: tuple[str, ...] = ()  # optional canonical columns it needs
    level: Level = "conversation"
    #: the Ibis reduction over one group of the level's table; ``approx`` asks for approximate quantiles.
    expr: Callable[[ir.Table, bool], ir.Value] | None = None
    #: value when the group is empty (no conversations): 0 for counts and sums, None otherwise.
    empty: float | int | None = None
    #: for a latency quantile, which one: :func:`aggregations` computes all of a query's quantiles in one reduction.
    quantile: float | None = None
    #: The expression in a breakdown's rows (a day's, an agent's) where it differs from the period's: the
    #: period's tokens and cost read 0 with a note when no event has a value, but a row has no note, and its
    #: "0" and "$0.00" read as measured (a rendering review); there a sum over no value is null, as by_model's.
    row_expr: Callable[[ir.Table, bool], ir.Value] | None = None

    @property
    def is_rate(self) -> bool:
        return self.unit == "percent"


def _pct(numerator: ir.Value, denominator: ir.Value) -> ir.Value:
    # NULLIF keeps "a rate over zero conversations is null" and avoids engines that raise on /0.
    return numerator.cast("float64") * 100.0 / denominator.cast("float64").nullif(0.0)


def _ratio(numerator: ir.Value, denominator: ir.Value) -> ir.Value:
    return numerator.cast("float64") / denominator.cast("float64").nullif(0.0)


def _quantile(q: float) -> dict[str, object]:
    """A latency quantile metric's ``quantile`` and, for a query of its own, its ``expr``."""
    def expr(t: ir.Table, approx: bool) -> ir.Value:
        return t.latency.approx_quantile(q) if approx else t.latency.quantile(q)

    return {"expr": expr, "quantile": q}


_DEFS = [
    MetricDef("conversations", "Conversations", "count", True,
              "Conversations whose first event falls in the period.",
              expr=lambda c, a: c.count(), empty=0),
    MetricDef("resolved_conversations", "Resolved", "count", True,
              "Conversations with at least one resolution event.",
              expr=lambda c, a: c.resolved.sum(), empty=0),
    MetricDef("escalated_conversations", "Escalated", "count", False,
              "Conversations with at least one escalation event.",
              expr=lambda c, a: c.escalated.sum(), empty=0),
    MetricDef("resolution_rate", "Resolution rate", "percent", True,
              "Resolved conversations / conversations x 100.",
              expr=lambda c, a: _pct(c.resolved.sum(), c.count())),
    MetricDef("containment_rate", "Containment rate", "percent", True,
              "(Conversations - escalated) / conversations x 100: handled without a human.",
              expr=lambda c, a: _pct(c.count() - c.escalated.sum(), c.count())),
    MetricDef("errors", "Errors", "count", False,
              "Error events of the period's conversations.",
              expr=lambda c, a: c.errors.sum(), empty=0),
    MetricDef("error_conversations", "Conversations with errors", "count", False,
              "Conversations with at least one error event.",
              expr=lambda c, a: count_if(c.errors > 0), empty=0),
    MetricDef("error_rate", "Error rate", "percent", False,
              "Conversations with errors / conversations x 100.",
              expr=lambda c, a: _pct(count_if(c.errors > 0), c.count())),
    MetricDef("total_tokens", "Tokens", "tokens", None,
              "Sum of token_count >= 0 over the conversations' events.",
              requires=("token_count",), expr=lambda c, a: c.tokens.sum().fill_null(0), empty=0,
              row_expr=lambda c, a: c.tokens.sum()),
    MetricDef("tokens_per_conversation", "Tokens per conversation", "tokens", False,
              "Tokens / conversations.",
              requires=("token_count",), expr=lambda c, a: _ratio(c.tokens.sum().fill_null(0), c.count()),
              row_expr=lambda c, a: _ratio(c.tokens.sum(), c.count())),
    MetricDef("avg_latency_ms", "Average latency", "ms", False,
              "Mean of latency_ms >= 0 over the conversations' events.",
              requires=("latency_ms",), expr=lambda c, a: _ratio(float_sum(c, c.latency_sum), c.latency_n.sum())),
    MetricDef("p50_latency_ms", "p50 latency", "ms", False,
              "Median latency_ms (continuous, interpolated) over the conversations' events.",
              requires=("latency_ms",), level="event", **_quantile(0.50)),
    MetricDef("p95_latency_ms", "p95 latency", "ms", False,
              "95th percentile of latency_ms (continuous, interpolated).",
              requires=("latency_ms",), level="event", **_quantile(0.95)),
    MetricDef("p99_latency_ms", "p99 latency", "ms", False,
              "99th percentile of latency_ms (continuous, interpolated).",
              requires=("latency_ms",), level="event", **_quantile(0.99)),
    MetricDef("cost_usd", "Agent cost", "usd", False,
              "Sum of cost_usd over the conversations' events.",
              requires=("cost_usd",), expr=lambda c, a: float_sum(c, c.cost).fill_null(0.0), empty=0.0,
              row_expr=lambda c, a: float_sum(c, c.cost)),
]

METRICS: dict[str, MetricDef] = {m.name: m for m in _DEFS}

#: Derived in Python from other metrics and a report setting, not by the engine.
ESTIMATED_SAVINGS = MetricDef(
    "estimated_savings_usd", "Estimated savings", "usd", True,
    "Contained conversations x human_cost_per_conversation - agent cost.", requires=("cost_usd",),
)


def available(present: frozenset[str], level: Level | None = None) -> list[MetricDef]:
    """The metrics whose columns the source has (optionally of one level), in registry order."""
    return [m for m in METRICS.values()
            if all(col in present for col in m.requires) and (level is None or m.level == level)]


def missing(present: frozenset[str]) -> dict[str, tuple[str, ...]]:
    """Metrics left out because the source lacks a column: {metric: missing columns}."""
    return {m.name: tuple(c for c in m.requires if c not in present)
            for m in METRICS.values() if not all(c in present for c in m.requires)}


#: The column holding the list of a query's latency quantiles (see :func:`aggregations` and :func:`unpack`).
QUANTILES = "latency_quantiles"


def aggregations(table: ir.Table, defs: list[MetricDef], approx: bool = False, *,
                 rows: bool = False) -> dict[str, ir.Value]:
    """``{name: reduction}`` for ``table.group_by(...).agg(**aggregations(...))``; pass its rows through :func:`unpack`.
    ``rows``: for a breakdown's rows (days, agents), with each metric's ``row_expr`` where it has one.

    The latency quantiles come as one list-valued reduction: every engine then sorts (or sketches)
    the latencies once for all of them instead of once per quantile.
    """
    out = {m.name: (m.row_expr if rows and m.row_expr else m.expr)(table, approx)
           for m in defs if m.expr is not None and m.quantile is None}
    qs = [m.quantile for m in defs if m.quantile is not None]
    if qs:
        out[QUANTILES] = table.latency.approx_quantile(qs) if approx else table.latency.quantile(qs)
    return out


def unpack(row: dict, defs: list[MetricDef]) -> dict:
    """A result row of :func:`aggregations` with the quantile list spread into its metrics."""
    if QUANTILES not in row:
        return row
    values = list(row.pop(QUANTILES) or [])
    for i, m in enumerate(m for m in defs if m.quantile is not None):
        row[m.name] = values[i] if i < len(values) else None
    return row
