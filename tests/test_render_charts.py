"""Chart images as drawn: every label legible whatever the report's locale and the machine's fonts."""

from __future__ import annotations

import unicodedata
import warnings

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
