"""Chart images as drawn: every label legible whatever the report's locale and the machine's fonts."""

from __future__ import annotations

import unicodedata
import warnings
from dataclasses import replace

import pytest
from matplotlib.figure import Figure

from agentdigest.render.charts import _daily, draw
from agentdigest.render.context import build_context
from render_fixtures import make_report


@pytest.mark.parametrize("locale", ["ja", "zh", "ko", "th", "hi", "ar", "he", "ru", "de"])
def test_day_labels_are_drawn_as_text_whatever_the_locale(locale: str) -> None:
    """Found in a rendering audit: on a machine without CJK fonts (slim containers, this one) a Japanese report's
    day labels were empty boxes, and Arabic ones came out unjoined and in reverse; such labels fall back to the
    locale's digits ("11/23"), which any font draws."""
    _, charts = build_context(make_report("engineering", locale=locale))
    chart = next(c for c in charts if c.kind == "daily")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        draw(chart, "png")
    assert not [w for w in caught if "missing from font" in str(w.message)]
    fig = Figure()
    _daily(fig, chart)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert len(labels) == 7 and "23" in labels[0] and "29" in labels[-1]
    assert not any(unicodedata.bidirectional(ch) in ("R", "AL") for text in labels for ch in text)


@pytest.mark.parametrize("locale, thousands", [("en", "2,000"), ("de", "2.000"), ("fr", "2\u202f000"), ("ja", "2,000")])
def test_the_daily_charts_axes_count_in_the_reports_locale(locale: str, thousands: str) -> None:
    """Found in a consistency audit: the axes' numbers were Python's "2,000" in every locale, which a German
    reader takes for 2 (the report's tables read 2.000)."""
    _, charts = build_context(make_report("engineering", locale=locale))
    chart = next(c for c in charts if c.kind == "daily")
    chart = replace(chart, values=tuple(1500.0 + 400 * i for i in range(len(chart.values))),
                    secondary=tuple(1200.0 for _ in chart.values))
    fig = Figure()
    _daily(fig, chart)
    left, right = fig.axes[0].yaxis.get_major_formatter(), fig.axes[1].yaxis.get_major_formatter()
    assert left(2000.0, 0) == thousands and right(2000.0, 0) == thousands
    assert left(0.0, 0) == "0"


@pytest.mark.parametrize("values", [(1.7e308, 1.6e308, 1e308), (-1.7e308, 1.7e308, 0.0), (1e300, 5e299, 8e299)],
                         ids=["near-the-largest-double", "both-ends", "1e300"])
def test_a_sparkline_of_values_near_the_largest_double_is_drawn_as_the_same_shape_at_a_small_scale(values):
    """Valid values near 1e308 (costs are valid at any size) made the sparkline's hi + lo overflow to inf, and
    it was drawn blank (a 250-byte PNG) under an alt text that named the values. The shape depends only on the
    values' ratios: drawn as the same values divided by 1e300 it is the same image."""
    from agentdigest.render.charts import Chart, draw_all

    huge = Chart("a", "spark", "x", 120, 32, values=values)
    small = Chart("a", "spark", "x", 120, 32, values=tuple(v / 1e300 for v in values))
    for fmt in ("svg", "png"):
        assert draw_all([huge], fmt)["a"] == draw_all([small], fmt)["a"], fmt
    assert draw_all([huge], "png")["a"] != draw_all([Chart("a", "spark", "x", 120, 32, values=(None,) * 3)], "png")["a"]


@pytest.mark.parametrize("errors", ["some", "none"])
def test_the_daily_charts_alt_text_gives_its_numbers_and_names_no_colour(errors: str) -> None:
    """Found in an accessibility review: the day chart's alt text said "Conversations per day, 7 days, 2,263 in
    all (blue, left axis); error events per day in red on the right axis": no day's figure, no error figure,
    and colours a screen reader's user cannot see (said even when no error bar was drawn). It gives the total,
    the fewest and the most conversations of a day with the day, and the errors' total and most, as drawn.
    Plain Python over the report's days."""
    import re

    from agentdigest.render import render_artifacts

    data = make_report("engineering")
    if errors == "none":
        data = replace(data, daily=tuple({**r, "errors": 0} for r in data.daily))
    days = [(r["date"], r["conversations"], r["errors"]) for r in data.daily]
    label = {d: f"{['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'][i]} {23 + i} Nov" for i, (d, _, _) in enumerate(days)}
    assert days[0][0] == "2026-11-23"  # make_report's week, Mon 23 to Sun 29 Nov
    low = min(days, key=lambda d: d[1])
    high = max(days, key=lambda d: d[1])
    want = (f"Conversations per day, 7 days, {sum(c for _, c, _ in days):,} in all: fewest {low[1]:,} "
            f"({label[low[0]]}), most {high[1]:,} ({label[high[0]]})")
    if errors == "some":
        top = max(days, key=lambda d: d[2])
        want += (f"; error events per day (the narrow bars, right axis): {sum(e for *_, e in days):,} in all, "
                 f"most {top[2]:,} ({label[top[0]]})")
    want += "."
    _, charts = build_context(data)
    assert next(c for c in charts if c.kind == "daily").alt == want
    html = render_artifacts(data, {"html"})["report.html"].decode()
    assert re.search(r'<img class="chart" [^>]*alt="([^"]*)"', html).group(1) == want
    assert not re.search(r"\b(blue|red|green)\b", want)


def _contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours."""
    def luminance(colour: str) -> float:
        channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_the_charts_marks_that_mean_something_stand_out_from_white_by_3_to_1() -> None:
    """Found in an accessibility review: the hollow point and dotted line of a partial period were #98a2b3, 2.6:1
    against the white chart, under the 3:1 WCAG 2.1 (1.4.11) asks of a graphic a reader needs; the bars, lines,
    end dots and the axis labels' ink stand out enough. The axis labels, text, 4.5:1."""
    from agentdigest.render import charts

    assert _contrast("#98a2b3", "#ffffff") < 3  # as it was
    for colour in (charts.MUTED, charts.BLUE, charts.RED, charts.GREEN, *charts.TONE.values()):
        assert _contrast(colour, "#ffffff") >= 3, colour
    for ink in (charts.INK, charts.RED):  # the left and right axes' labels
        assert _contrast(ink, "#ffffff") >= 4.5, ink
