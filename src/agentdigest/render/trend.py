"""The trend: a metric's values over the report's trend periods (the sparklines, the volume line) and the
trend table's rows, each period marked where its figures are not a whole period's."""

from __future__ import annotations

from dataclasses import replace

from ..changes import finite_number
from ..report import ReportData
from ..significance import data_begin, first_with_data, partial_resumed
from .format import Formatter

#: The incomplete current period's mark, a footnote's, and the note under the table. Found in a rendering
#: review: "September 2026 (data resumed) (incomplete)" took two lines in the PDF's 28% column (made for
#: the one mark), and "(incomplete)" had wrapped alone under shorter periods too. A no-break space keeps the
#: mark beside its period; report.txt has marked it so all along.
INCOMPLETE_MARK = "\u00a0*"
INCOMPLETE_NOTE = "* incomplete: see the warning at the top"


def series(data: ReportData, key: str) -> list[float | None]:
    """The trend of one metric, oldest first (derived for per-conversation and savings figures)."""
    human = finite_number(data.settings.get("human_cost_per_conversation"))
    out: list[float | None] = []
    began = first_with_data(data.trend)
    for i, row in enumerate(data.trend):
        if i < began:  # before the data began: no point, not a zero
            out.append(None)
            continue
        convs = finite_number(row.get("conversations"))
        if key == "tokens_per_conversation":
            tokens = finite_number(row.get("total_tokens"))
            out.append(tokens / convs if tokens is not None and convs else None)
        elif key == "estimated_savings_usd":
            esc, cost = finite_number(row.get("escalated_conversations")), finite_number(row.get("cost_usd"))
            ok = None not in (human, convs, esc, cost)
            out.append((convs - esc) * human - cost if ok else None)  # type: ignore[operator]
        else:
            out.append(finite_number(row.get(key)))
    return out


def trend_rows(data: ReportData, fmt: Formatter) -> list[dict[str, str]]:
    """The trend table's rows from the first period with data: "0" conversations and "$0.00" for months
    before the data began read as a dead program (found in a reader review). On incomplete data the
    current period's row says so, so a forwarded table does not show the drop unqualified."""
    first = first_with_data(data.trend)
    rows = _trend_rows(replace(data, trend=data.trend[first:]), fmt)
    if rows and data_begin(data.trend) is not None:  # as the volume line leaves it out (a new-user audit)
        rows[0]["period"] += " (data begin)"
    for i in partial_resumed(data.trend):  # back partway through after a silent period: as low as a first one
        rows[i - first]["period"] += " (data resumed)"
    if rows and trend_note(data):
        rows[-1]["period"] += INCOMPLETE_MARK
    return rows


def trend_note(data: ReportData) -> str | None:
    """The line under the trend table that says what its "*" means, or None when no row has one."""
    return INCOMPLETE_NOTE if data.trend and data.quality is not None and data.quality.warning else None


def _trend_rows(data: ReportData, fmt: Formatter) -> list[dict[str, str]]:
    return [{
        # dates, not ISO week keys ("2026-W40" told a reader nothing); each date kept on one line, the range
        # breaking only at its dash ("Oct 26 – Nov / 1" on a phone; found in a rendering audit)
        "period": fmt.span(data.period_kind, row.get("start"), row.get("end"),
                           year=data.period_kind == "month").replace(" ", "\u00a0"),
        "conversations": fmt.count(row.get("conversations")),
        "resolution": fmt.percent(row.get("resolution_rate")),
        "containment": fmt.percent(row.get("containment_rate")),
        "error_rate": fmt.percent(row.get("error_rate")),
        "cost": fmt.usd(row.get("cost_usd")),
    } for row in data.trend]
