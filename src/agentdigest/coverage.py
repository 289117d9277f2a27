"""What the events lack, or have for none or only part of a period's conversations, and what a report
then says: the optional columns absent from the source, the summed columns (tokens, cost) without any
value in a period, and those whose share of conversations with a value differs between the two periods.
"""

from __future__ import annotations

from typing import Any

#: What the report leaves out without each optional column, in the reader's words.
WITHOUT = {
    "token_count": "tokens and tokens per conversation are not shown",
    "latency_ms": "latency figures are not shown",
    "cost_usd": "agent cost is not shown",
    "agent_id": "the by-agent table is not shown",
    "model": "the by-model table is not shown",
    "error_type": "errors by type are not shown",
    "event_id": "repeated events cannot be detected, so a re-sent event counts twice",
}


#: The optional columns summed per conversation: (the conversations' column, null where it had no value;
#: what a period without any value makes of its figures; the figures made of it). The period's count of
#: conversations with a value is ``<column>_values`` (not reported).
SUMMED = {
    "token_count": ("tokens", "its tokens read 0", ("total_tokens", "tokens_per_conversation")),
    "cost_usd": ("cost", "its agent cost reads $0", ("cost_usd", "estimated_savings_usd")),
}
LABELS = {"token_count": ("tokens",), "cost_usd": ("agent cost", "estimated savings")}
#: Below this ratio between the two periods' shares of conversations with a value, a summed figure's change
#: is not judged: a cost column filled only from the middle of last week read "Cost rose 827%, notable"
#: (a new-user audit). Steady partial coverage (cost logged for 60% of conversations) stays judged.
COVERAGE_RATIO = 0.9


def share(row: dict[str, Any] | None, col: str) -> float | None:
    """The share of a period's conversations with a ``col`` value; None without conversations."""
    if not row or not row.get("conversations") or f"{col}_values" not in row:
        return None
    return (row[f"{col}_values"] or 0) / row["conversations"]


def partly_valued(cur: dict[str, Any] | None, prev: dict[str, Any] | None) -> dict[str, tuple[float, float]]:
    """{column: (previous share, current share)} for the summed columns whose share of conversations with
    a value differs too much between the two periods for their totals to compare (both above zero: a
    period with no value at all is :func:`unvalued`'s)."""
    out = {}
    for col in SUMMED:
        a, b = share(prev, col), share(cur, col)
        if a and b and min(a, b) < COVERAGE_RATIO * max(a, b):
            out[col] = (a, b)
    return out


def fmt_share(share: float) -> str:
    """A share of conversations for a note: "14%", "<1%", "99.6%"."""
    pct = share * 100
    if 0 < pct < 1:
        return "<1%"
    return f"{pct:.1f}%" if 99 < pct < 100 else f"{pct:.0f}%"


def unvalued(row: dict[str, Any] | None) -> list[str]:
    """The optional columns with no value at all among a period's conversations (found in a rendering
    audit: a cost_usd column that is always null showed "$0.00" and full savings, with nothing said)."""
    if not row or not row.get("conversations"):
        return []
    return [col for col in SUMMED if f"{col}_values" in row and not row[f"{col}_values"]]


def absence_notes(present: frozenset[str], withheld: frozenset[str] = frozenset(), *,
                  savings_asked: bool) -> list[str]:
    """One sentence per optional column the events lack, saying what the reader does not get; ``withheld``
    ones the table has but the source's role may not read (PostgreSQL column privileges)."""
    return [(f"The source's role may not read the {col} column" if col in withheld
             else f"The events have no {col} column") + f": {WITHOUT[col]}"
            f"{' (estimated savings need it too)' if col == 'cost_usd' and savings_asked else ''}."
            for col in sorted(set(WITHOUT) - present)]




def notes(kind: str, unvalued_now: list[str], partly: dict[str, tuple[float, float]], *, savings_shown: bool) -> list[str]:
    """The notes on this period's summed columns without any value and on those only partly valued."""
    out = [f"No event of this {kind}'s conversations has a {col} value: {SUMMED[col][1]}"
           f"{' (estimated savings are not shown)' if col == 'cost_usd' and savings_shown else ''}."
           for col in unvalued_now]
    return out + [f"The {col} column has values for {fmt_share(prev)} of the previous {kind}'s conversations and "
                  f"{fmt_share(cur)} of this {kind}'s: the change of {' and '.join(LABELS[col])} is not judged."
                  for col, (prev, cur) in partly.items()]
