"""The template context: ReportData turned into display-ready values, the same for every format.

Every value here is already formatted for the report's locale; templates only lay it out.
The names below are the context a custom template folder can use (README, "Custom templates").
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..report import MetricValue, ReportData
from .charts import Chart
from ..changes import finite_number
from ..significance import begins_within, data_begin, partial_begin, partial_resumed
from .format import FLAT, NA, NEW, Formatter
from .limits import EMAIL_LIMITS, Limits
from .notes import scoped_notes
from .clipping import isolated
from .trend import series, trend_note, trend_rows
from .sections import ARROWS, breakdowns, daily_alt, failures, gap_label, judged_tone, quality_section, shows_days, slight

EXECUTIVE_KPIS = ("conversations", "resolution_rate", "containment_rate", "cost_usd",
                  "estimated_savings_usd", "error_rate")
ENGINEERING_KPIS = ("conversations", "errors", "error_rate", "p95_latency_ms",
                    "tokens_per_conversation", "cost_usd")
OPENING_PARTS = 3  # moves named in the opening sentence
LATENCY = ("avg_latency_ms", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms")
# The rate, not the count: the executive cards show the error rate, and "errors rose 69% to 152" named a
# figure found nowhere else in the report (a reader review).
EXECUTIVE_OPENING = ("conversations", "resolution_rate", "error_rate")
ENGINEERING_OPENING = ("p95_latency_ms", "error_rate", "tokens_per_conversation")
NOUNS = {
    "conversations": "conversations", "resolution_rate": "resolution", "containment_rate": "containment",
    "errors": "errors", "error_rate": "the error rate", "p95_latency_ms": "p95 latency",
    "tokens_per_conversation": "tokens per conversation", "cost_usd": "cost",
    "estimated_savings_usd": "estimated savings",
}


def audience_kind(data: ReportData) -> str:
    """executive, engineering, or custom (a template folder)."""
    audience = str(data.settings.get("audience") or data.audience or "executive")
    return audience if audience in ("executive", "engineering") else "custom"


#: Figures no test applies to: an untested move of theirs is coloured from this much (percent); any other
#: untested move (too few conversations or trailing periods, savings) is grey.
UNTESTED_SLIGHT_PCT = {"p50_latency_ms": 5.0, "p95_latency_ms": 5.0, "p99_latency_ms": 5.0}


def _tone(metric: MetricValue) -> str:
    threshold = UNTESTED_SLIGHT_PCT.get(metric.name)
    if metric.notable is None and threshold is None:
        return "neutral"
    pct = finite_number(metric.change_pct)
    is_slight = _slight(metric) if threshold is None else (pct is None or abs(pct) < threshold)
    return judged_tone(metric.good if metric.judged else None, metric.notable, is_slight)


def _moved(metric: MetricValue, change: str) -> str:
    """up or down for the arrow; a rate after 0.0% ("new", shown in points) moved the way its points did."""
    if metric.direction == "new" and change != NEW:
        return "up" if (finite_number(metric.change_pp) or 0) > 0 else "down"
    return metric.direction or ""


def kpi(metric: MetricValue, fmt: Formatter, chart: str | None = None) -> dict[str, Any]:
    change = fmt.change(metric)
    # A move too small to show ("no change" at the shown precision) gets no arrow, no colour and no
    # "notable": it read "▼ no change" in green (found in a rendering audit). Nor does a figure not known ("n/a").
    shown = change not in (FLAT, NA)
    return {
        "key": metric.name, "label": metric.label, "value": fmt.value(metric.value, metric.unit),
        "previous": fmt.value(metric.previous, metric.unit), "change": change,
        "tone": _tone(metric) if shown else "neutral",
        "arrow": ARROWS.get(_moved(metric, change), "") if shown else "",
        "notable": metric.notable is True and shown, "description": metric.description, "chart": chart,
        "unit": metric.unit,
    }


def _unsigned(metric: MetricValue, fmt: Formatter) -> str:
    if metric.unit == "percent":
        return fmt.signed_pp(abs(metric.change_pp or 0)).lstrip("+")
    return fmt.signed_pct(abs(metric.change_pct or 0)).lstrip("+")


def _slight(metric: MetricValue) -> bool:
    return slight(None, metric.change_pp) if metric.unit == "percent" else slight(metric.change_pct)


def phrase(metric: MetricValue, fmt: Formatter) -> str | None:
    """ "resolution rose 2.1 pp to 61.4%" for one metric; None when it has no value."""
    if finite_number(metric.value) is None:
        return None
    noun = NOUNS.get(metric.name, metric.label.lower())
    value = fmt.value(metric.value, metric.unit)
    change = fmt.change(metric)
    if metric.direction == "new" or change == NEW:
        if finite_number(metric.previous) == 0:
            return f"{noun} rose from {fmt.value(0, metric.unit)} to {value}"
        return f"{noun} came to {value} (no earlier figure)"
    if metric.direction is None or change == NA:
        return f"{noun} came to {value}"
    if metric.direction == "flat" or change == FLAT:
        return f"{noun} held at {value}"
    if not metric.notable and _slight(metric):
        # "tokens per conversation rose 0.1%" led a report (found by a new user): a slight move that is
        # not notable is no news; the tables still show it.
        return f"{noun} held steady at {value}"
    verb = "rose" if metric.direction == "up" else "fell"
    return f"{noun} {verb} {_unsigned(metric, fmt)} to {value}"


def _unjudged(metric: MetricValue) -> bool:
    """A move compute declined to colour although the metric has a better direction."""
    return (metric.higher_is_better is not None and (not metric.judged or metric.good is None)
            and metric.direction in ("up", "down"))


def opening_sentence(data: ReportData, fmt: Formatter, kind: str) -> str:
    """One sentence written from the data, e.g. "Resolution rose 2.1 pp to 61.4%; errors fell 12% to 57." """
    word = fmt.period_word(data.period_kind)
    conversations = data.metrics.get("conversations")
    if conversations is None or not finite_number(conversations.value):
        before = finite_number(conversations.previous) if conversations else None
        tail = f", against {fmt.count(before)} the {word} before" if before else ""
        return f"No conversations this {word}{tail}."
    # The notable moves among the reader's cards lead, then the usual three (a reader review: the opening
    # said "Conversations fell 1.1%", noise, while the one notable move came third); so does a move coloured
    # without a test, p95 latency past 5% (a reader review of the demo: "tokens per conversation rose 1.2%"
    # filled the third place while the red card beside it read p95 latency +52%).
    cards = ENGINEERING_KPIS if kind == "engineering" else EXECUTIVE_KPIS
    usual = ENGINEERING_OPENING if kind == "engineering" else EXECUTIVE_OPENING
    lead = [k for k in cards if k in data.metrics and (data.metrics[k].notable is True or _tone(data.metrics[k]) != "neutral")]
    keys = list(dict.fromkeys(lead + list(usual)))
    incomplete = data.quality is not None and data.quality.warning
    # this or the previous period is the first with data: its totals are no news (compute left them unjudged)
    partial = begins_within(data.trend, 2)
    if incomplete or partial:  # a total that fell because events are missing is not news (found in a Slack
        # audit: "Conversations fell 89%" led the message right under the incomplete-data banner), nor one
        # that rose against a partial first period
        keys = [k for k in keys if k in data.metrics and not data.metrics[k].is_total]
    # Nor a move the report declined to judge (a column without values in one of the periods).
    keys = [k for k in keys if k in data.metrics and not _unjudged(data.metrics[k])]
    parts = [p for p in (phrase(data.metrics[k], fmt) for k in keys if k in data.metrics) if p][:OPENING_PARTS]
    if not parts and incomplete:
        parts = [f"{fmt.count(conversations.value)} {noun(conversations.value)} on incomplete data"]
    elif not parts:
        parts = [(None if partial else phrase(conversations, fmt)) or f"{fmt.count(conversations.value)} conversations"]
    sentence = "; ".join(parts)
    if not sentence[1:2].isdigit():  # "p95 latency" stays lower-case
        sentence = sentence[0].upper() + sentence[1:]
    return sentence if sentence.endswith(".") else sentence + "."  # de "16,3 Mrd." ends one already


def banner(data: ReportData, fmt: Formatter, limits: Limits) -> dict[str, Any] | None:
    """The data-quality warning, or None when the data is complete enough."""
    quality = data.quality
    if quality is None or not quality.warning:
        return None
    completeness = fmt.percent_under(quality.completeness_pct, quality.threshold)
    threshold = fmt.percent(quality.threshold)
    gaps = [gap_label(g, fmt) for g in quality.gaps[: limits.gaps]]
    more = max(0, len(quality.gaps) - limits.gaps)
    if quality.same_weekday_pct is None:
        text = (f"Only {completeness} of the expected events arrived (warning threshold {threshold}), "
                f"so this {fmt.period_word(data.period_kind)}'s figures may be understated. Check the source before deciding on them.")
    else:  # a quiet weekend day against the weekdays before it
        text = (f"Only {completeness} of the expected events arrived (warning threshold {threshold}), "
                f"against the previous days; against the same weekday of the previous 4 weeks, "
                f"{fmt.percent(quality.same_weekday_pct)} arrived. If the volume follows the days of the week, set "
                f"completeness_baseline = \"same_weekday\" in this report's config; if not, check the source "
                f"before deciding on this day's figures.")
    title, short = f"Data incomplete: {completeness} of expected events", f"Data incomplete ({completeness})"
    if quality.completeness_pct is None:  # no event and no earlier one to compare with (quality.assess)
        word = fmt.period_word(data.period_kind)
        title = short = f"No events arrived this {word}"
        text = (f"The source has no events for this {word} and none in the {word}s before it to compare with, so "
                f"every count below is zero. Check that the source's table or files and its column mapping are the "
                f"right ones before reading on.")
    return {"title": title, "short": short, "completeness": completeness, "threshold": threshold, "text": text, "gaps": gaps,
            "more_gaps": more, "gap_count": len(quality.gaps)}


def savings(data: ReportData, fmt: Formatter) -> tuple[dict[str, Any] | None, str | None]:
    """The savings figure and how it was estimated; or None and a hint on how to get one."""
    human = finite_number(data.settings.get("human_cost_per_conversation"))
    metric = data.metrics.get("estimated_savings_usd")
    if human is None:
        return None, "Set human_cost_per_conversation in the report config to estimate savings."
    if metric is None:
        return None, "Savings are not estimated: agent cost is not known (the events have no cost_usd column)."
    if finite_number(metric.value) is None:
        return None, f"Savings are not estimated: agent cost is not known (no cost_usd value this {data.period_kind})."
    how = (f"Contained conversations × {fmt.usd(human)} (human cost per conversation) "
           f"− agent cost {fmt.value(data.metrics['cost_usd'].value, 'usd') if 'cost_usd' in data.metrics else NA}. "
           # found in a reader review: a fifth of the "contained" ones had been abandoned, silently counted as saved
           "Contained means not escalated, so conversations abandoned without a resolution count too.")
    return {**kpi(metric, fmt), "explanation": how}, None


def volume(data: ReportData, fmt: Formatter) -> dict[str, Any] | None:
    metric = data.metrics.get("conversations")
    if metric is None:
        return None
    word = fmt.period_word(data.period_kind)
    points = [(i, v) for i, v in enumerate(series(data, "conversations")) if v is not None]
    if data_begin(data.trend) is not None:  # the period the data begin in may be partial: not a starting level
        points = points[1:]
    if points and points[0][0] in partial_resumed(data.trend):  # nor one they resumed in partway (a review:
        points = points[1:]  # "+75% over the last 8 weeks (4 → 7)" from a week back on its Thursday)
    values = [v for _, v in points]
    if data.quality is not None and data.quality.warning:  # a drop that is missing events is no trend
        values = []
    window = None
    if len(values) >= 3 and values[0]:
        window = (f"{fmt.signed_pct((values[-1] - values[0]) / values[0] * 100)} over the last "
                  f"{len(values)} {word}s ({fmt.count(values[0])} → {fmt.count(values[-1])})")
    return {**kpi(metric, fmt), "window": window, "word": word, "noun": noun(metric.value)}


def noun(conversations: Any) -> str:
    """"1 conversation", "0 conversations", "2 conversations" (a rendering audit read "1 conversations")."""
    return "conversation" if conversations == 1 else "conversations"


def build_context(data: ReportData, limits: Limits = EMAIL_LIMITS) -> tuple[dict[str, Any], list[Chart]]:
    """The template context and the charts it refers to (by name, in ``kpis[].chart`` and ``daily_chart``)."""
    fmt = Formatter(str(data.settings.get("locale") or "en"), data.timezone)
    kind = audience_kind(data)
    word = fmt.period_word(data.period_kind)
    # compute's (a first period with data is said there, report.json too), the agents it quotes isolated
    notes, notes_html = scoped_notes(data.notes, data.settings.get("agents"))
    charts: list[Chart] = []
    cards = []
    partial = partial_begin(data.trend)
    resumed = partial_resumed(data.trend)
    for key in ENGINEERING_KPIS if kind == "engineering" else EXECUTIVE_KPIS:
        metric = data.metrics.get(key)
        if metric is None:
            continue
        points = series(data, key)
        name = None
        if sum(p is not None for p in points) >= 2:
            name = f"spark-{key.replace('_', '-')}"
            first, last = next(p for p in points if p is not None), [p for p in points if p is not None][-1]
            known = [p for p in points if p is not None]
            # A total (not a rate) of the period the data began partway through is low for that alone
            mark = partial if partial is not None and metric.is_total and points[partial] is not None else None
            began = ""
            if mark is not None:  # the first point (none before it)
                since = data.trend[mark].get("data_from")
                began = f" (the data began on {fmt.moment(since, 'EEE d MMM y')}: " if since else " ("
                began += f"first {word} partial)"
            # and so is one of a period the data resumed partway through after a silent one (a review: drawn
            # whole, the week back on its Thursday read as a fall and the next as growth)
            back = tuple(i for i in resumed if metric.is_total and points[i] is not None)
            again = "".join(
                f"; the data resumed on {fmt.moment(since, 'EEE d MMM y')}, after a {word} without any: that "
                f"{word} partial" if (since := data.trend[i].get("data_from")) else
                f"; the data resumed partway through a {word}: that {word} partial" for i in back)
            # the range too: "from 5.3% to 6.4%" hid a week at 9% in between (a reader review)
            alt = (f"{metric.label} over the last {len(known)} {word}s: from "
                   f"{fmt.value(first, metric.unit)}{began} to {fmt.value(last, metric.unit)}, between "
                   f"{fmt.value(min(known), metric.unit)} and {fmt.value(max(known), metric.unit)}{again}")
            card = kpi(metric, fmt, name)
            # The end dot is coloured like the card's badge (none under "no change").
            charts.append(Chart(name, "spark", alt, 120, 32, values=tuple(points),
                                tone=metric.good if card["tone"] != "neutral" and metric.judged else None,
                                partial=mark, resumed=back))
        cards.append(kpi(metric, fmt, name))
    daily_chart = None
    # The executive template has no daily chart; drawing one costs more than the rest of its charts.
    if kind != "executive" and shows_days(data) and any(finite_number(r.get("conversations")) for r in data.daily):
        daily_chart = "daily"
        charts.append(Chart("daily", "daily", daily_alt(data, fmt), 560, 170,
                            values=tuple(finite_number(r.get("conversations")) for r in data.daily),
                            secondary=tuple(finite_number(r.get("errors")) for r in data.daily),
                            labels=tuple(fmt.day(r.get("date")).replace(" ", "\n", 1) for r in data.daily),
                            plain_labels=tuple(fmt.day_digits(r.get("date")) for r in data.daily),
                            locale=str(fmt.locale)))
    saving, saving_hint = savings(data, fmt)
    gen = data.generated_at
    context: dict[str, Any] = {
        "report": {
            "id": data.report_id, "title": data.title, "audience": kind, "period_key": data.period.key,
            "period_label": period_label(data, fmt), "previous_key": data.previous_period.key,
            "period_word": word, "timezone": data.timezone,
            "start": fmt.moment(data.period.start, "EEE d MMM y"),
            "end": fmt.moment(data.period.end - timedelta(seconds=1), "EEE d MMM y"),  # end is exclusive
            # what the changes compare with, by date (a reader review: "previous: 2,402" said not which)
            "span": fmt.span(data.period_kind, data.period.start, data.period.end)
                    + (", so far" if gen < data.period.end else ""),  # a preview of a running period
            "previous_span": fmt.span(data.period_kind, data.previous_period.start, data.previous_period.end,
                                      year=data.previous_period.start.year != data.period.start.year),
            # a report of some agents says so beside its dates, in every format
            # (each name isolated in the text and Slack: a Hebrew name could swap places with the one beside it)
            "scope": "agents " + ", ".join(map(isolated, agents)) if (agents := data.settings.get("agents")) else "",
            # the same names one by one, for the HTML to isolate each (a Hebrew name in the joined line
            # could swap places with the name beside it)
            "agents": list(agents or ()),
            # ZZZZ ("GMT+01:00") reads the same in every zone and locale; zzz gave "EST" but "+0100" (a reader review)
            "generated_at": fmt.moment(gen, "d MMM y, HH:mm ZZZZ"),
            # how far the data reaches (a reader review: a report cut short by an outage said so only in gaps)
            "data_until": (fmt.moment(data.quality.latest_event, "EEE d MMM y, HH:mm")
                           if data.quality is not None and data.quality.latest_event else None),
        },
        "opening": opening_sentence(data, fmt, kind),
        "banner": banner(data, fmt, limits),
        "kpis": cards,
        "metrics": {name: kpi(m, fmt) for name, m in data.metrics.items()},
        "latency": [kpi(data.metrics[k], fmt) for k in LATENCY if k in data.metrics],
        "savings": saving, "savings_hint": saving_hint,
        "volume": volume(data, fmt),
        "trend": (trend := trend_rows(data, fmt)), "trend_note": trend_note(data) if trend else None,
        "daily_chart": daily_chart,
        "daily_table": limits.day_table,
        "failures": failures(data, fmt, limits),
        "quality": quality_section(data, fmt, limits),
        "notes": notes, "notes_html": notes_html,
        "absent": absent_columns(data),
        "any_notable": any(c["notable"] for c in cards),
        "data": data,
    }
    context.update(breakdowns(data, fmt, limits))
    return context, charts


# table column key -> the metric whose column in the source it needs
_COLUMN_METRIC = {"cost": "cost_usd", "tokens": "total_tokens", "share": "total_tokens",
                  "avg_latency": "avg_latency_ms", "p95_latency": "p95_latency_ms", "p95_change": "p95_latency_ms"}


def absent_columns(data: ReportData) -> list[str]:
    """Table column keys left out because the source has no data for them (see html.shown_columns)."""
    return sorted(key for key, metric in _COLUMN_METRIC.items() if metric not in data.metrics)


def period_label(data: ReportData, fmt: Formatter) -> str:
    """ "week of 23 Nov 2026" (de: "week of 23 Nov. 2026"): the period's first day in the report's locale."""
    start = data.period.start
    if data.period_kind == "week":
        return f"week of {fmt.moment(start, 'd MMM y')}"
    if data.period_kind == "day":
        return fmt.moment(start, "d MMM y")
    return fmt.moment(start, "LLLL y")
