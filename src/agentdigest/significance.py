"""Which period-over-period changes are notable, and which are likely noise.

Rates get a two-proportion z-test; counts, amounts and latencies are compared with the
spread of the trailing periods. The method, its guards and its limits are written up in
docs/notable-changes.md. Pure Python: ``math.erfc`` gives the normal tail, no SciPy.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any
from .changes import finite_number

ALPHA = 0.05
MIN_CONVERSATIONS = 30  # per period, for a rate test
MIN_EXPECTED = 5  # expected successes and failures per period under the pooled rate
MIN_TRAILING = 4  # trailing periods needed to judge a count
SPREAD = 2.0  # standard deviations from the trailing mean that count as unusual
MIN_RELATIVE = 0.01  # and at least 1% of the trailing mean, so a flat series does not flag a wobble

# rate metric -> (numerator count, whether the rate counts the complement of it)
RATE_COUNTS: dict[str, tuple[str, bool]] = {
    "resolution_rate": ("resolved_conversations", False),
    "containment_rate": ("escalated_conversations", True),
    "error_rate": ("error_conversations", False),
}


def two_proportion_p_value(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """Two-sided p-value that x1/n1 and x2/n2 differ (pooled z-test); None when undefined."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance <= 0:
        return 1.0  # both periods all-or-nothing in the same way: nothing moved
    z = (x1 / n1 - x2 / n2) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2))


def _row_value(row: Mapping[str, Any], name: str) -> float | None:
    if name == "tokens_per_conversation" and name not in row:
        tokens, convs = finite_number(row.get("total_tokens")), finite_number(row.get("conversations"))
        return tokens / convs if tokens is not None and convs else None
    return finite_number(row.get(name))


def _counts(metrics: Mapping[str, Any], trend: Sequence[Mapping[str, Any]], name: str,
            which: str) -> float | None:
    """The current (``which="value"``) or previous count of ``name``, from metrics else trend."""
    metric = metrics.get(name)
    if metric is not None:
        number = finite_number(getattr(metric, which))
        if number is not None:
            return number
    index = -1 if which == "value" else -2
    if len(trend) >= -index:
        return finite_number(trend[index].get(name))
    return None


def rate_notable(metrics: Mapping[str, Any], trend: Sequence[Mapping[str, Any]], rate: str) -> bool | None:
    """Two-proportion test of a rate against the previous period; None when the sample is too small."""
    numerator, complement = RATE_COUNTS[rate]
    n1, n2 = (_counts(metrics, trend, "conversations", w) for w in ("value", "previous"))
    x1, x2 = (_counts(metrics, trend, numerator, w) for w in ("value", "previous"))
    if None in (n1, n2, x1, x2):
        return None
    n1, n2, x1, x2 = int(n1), int(n2), int(x1), int(x2)  # type: ignore[arg-type]
    if complement:
        x1, x2 = n1 - x1, n2 - x2
    return proportions_notable(x1, n1, x2, n2)


def proportions_notable(x1: int, n1: int, x2: int, n2: int) -> bool | None:
    """Whether x1 of n1 differs from x2 of n2 beyond chance (the rate test above, also used for one
    agent's rates); None when the sample is too small."""
    if min(n1, n2) < MIN_CONVERSATIONS or not (0 <= x1 <= n1 and 0 <= x2 <= n2):
        return None
    pooled = (x1 + x2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        return False  # both periods all-or-nothing in the same way: nothing moved (before the sample guard)
    for n in (n1, n2):
        if n * pooled < MIN_EXPECTED or n * (1 - pooled) < MIN_EXPECTED:
            return None
    p_value = two_proportion_p_value(x1, n1, x2, n2)
    return None if p_value is None else p_value < ALPHA


def count_notable(current: Any, trailing: Sequence[Any]) -> bool | None:
    """Whether ``current`` lies beyond the trailing values' usual variation; None with too few."""
    cur = finite_number(current)
    history = [v for v in (finite_number(t) for t in trailing) if v is not None]
    if cur is None or len(history) < MIN_TRAILING:
        return None
    mean = statistics.fmean(history)
    spread = statistics.stdev(history)
    deviation = abs(cur - mean)
    return deviation > SPREAD * spread and deviation >= MIN_RELATIVE * abs(mean) and deviation > 0


def first_with_data(rows: Sequence[Mapping[str, Any]]) -> int:
    """The index of the first trend row with conversations (``len(rows)`` when none has any). When it is
    not 0, the rows before it are from before the data began, and that row may be partial."""
    return next((i for i, row in enumerate(rows) if finite_number(row.get("conversations"))), len(rows))


def data_begin(rows: Sequence[Mapping[str, Any]]) -> int | None:
    """The index of the trend row the data begin in, which may hold only part of its data: the first row
    with conversations after empty ones, or the first row when compute marked it ``begins`` (no event is
    older than the trend: a new-user audit's data began on a Wednesday, the trend's oldest week, and
    "+91% over the last 8 weeks" started from it). None when the data began before the trend."""
    first = first_with_data(rows)
    if first == len(rows) or (first == 0 and not rows[0].get("begins")):
        return None
    return first


def partial_begin(rows: Sequence[Mapping[str, Any]]) -> int | None:
    """The index of the trend row the data began partway through (compute marks it ``partial``: its first
    conversation after the period's first local day), whose totals are low only for that; else None. Not a row
    the data resumed in after a silence, which compute marks ``partial`` too: the sparklines' words say "the
    data began", which it did not there."""
    first = data_begin(rows)
    return first if first is not None and rows[first].get("partial") is True else None


def partial_resumed(rows: Sequence[Mapping[str, Any]]) -> tuple[int, ...]:
    """The indexes of the trend rows the data resumed partway through after a silent period (compute marks them
    ``partial`` as it marks the row the data began in, which is not one of these)."""
    began = data_begin(rows)
    return tuple(i for i, row in enumerate(rows) if i != began and row.get("partial") is True
                 and finite_number(row.get("conversations")))


def begins_within(rows: Sequence[Mapping[str, Any]], last: int) -> bool:
    """Whether the data begin in one of the ``last`` trend rows (the current period is the last row):
    such a first period may hold only part of its data."""
    first = data_begin(rows)
    return first is not None and first >= len(rows) - last


def notable_flags(metrics: Mapping[str, Any], trend: Sequence[Mapping[str, Any]]) -> dict[str, bool | None]:
    """For each metric: True (notable), False (within noise) or None (not enough data to judge).

    ``metrics`` maps names to MetricValue; ``trend`` is the report's trend rows, oldest first,
    the current period last.
    """
    flags: dict[str, bool | None] = {}
    trend = tuple(trend)
    trailing_rows = trend[:-1]
    # Periods before the first conversation are from before the data began, not a history of zeros
    # (found in a rendering audit: a new source's first week was "notable" against seven empty ones).
    began = first_with_data(trailing_rows)
    # and the period the data begin in may hold only part of its data: no usual level either
    # (found in a reader review: a month whose data began on the 19th made the next month "+165%")
    trailing_rows = trailing_rows[began + (1 if data_begin(trailing_rows) is not None else 0):]
    for name, metric in metrics.items():
        if finite_number(getattr(metric, "value", None)) is None:
            flags[name] = None
        elif name in RATE_COUNTS:
            flags[name] = rate_notable(metrics, trend, name)
        elif getattr(metric, "unit", None) == "percent":
            flags[name] = None  # a rate we have no counts for: no honest test
        else:
            trailing = [_row_value(row, name) for row in trailing_rows]
            flags[name] = count_notable(metric.value, trailing)
    return flags
