"""Charts drawn with matplotlib: PNG for email (by Content-ID) and SVG for the PDF.

Only dates and numbers reach a chart, never agent ids or messages, so no event text can
end up inside an image. Figures are built with ``matplotlib.figure.Figure`` (no pyplot, no
global state); output is deterministic for the same data.
"""

from __future__ import annotations

import io
import math
import os
import re
import threading
import unicodedata
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache

from babel.numbers import format_decimal
import matplotlib

matplotlib.use("Agg")

from matplotlib import rc_context  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator  # noqa: E402

INK = "#344054"
MUTED = "#858fa1"  # 3.3:1 on white, as WCAG asks of a mark that means something (#98a2b3 was 2.6:1)
GRID = "#eaecf0"
BLUE = "#2e6fd8"
RED = "#d92d20"
GREEN = "#079455"
TONE = {True: GREEN, False: RED, None: "#667085"}
SCALE = 2  # PNG pixels per CSS pixel, for sharp images on high-density screens

#: Fonts tried, glyph by glyph, after DejaVu Sans when installed (matplotlib draws the PNG charts itself,
#: without the system's font fallback): CJK labels were empty boxes (found in a rendering audit).
FALLBACK_FONTS = ("Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK KR", "WenQuanYi Zen Hei",
                  "Droid Sans Fallback", "Noto Sans Arabic", "Noto Sans Hebrew", "Noto Sans Thai")
_RC = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "svg.fonttype": "none",  # text stays text: smaller SVG, selectable in the PDF
    "svg.hashsalt": "agentdigest",
    "axes.edgecolor": GRID,
    "axes.labelcolor": INK,
    "xtick.color": INK,
    "ytick.color": INK,
}


@dataclass(frozen=True)
class Chart:
    """What to draw. ``width``/``height`` are CSS pixels; ``alt`` describes it in words."""

    name: str
    kind: str  # "spark" | "daily"
    alt: str
    width: int
    height: int
    values: tuple[float | None, ...] = ()
    labels: tuple[str, ...] = ()
    plain_labels: tuple[str, ...] = ()  # daily: digits-only labels, for when ``labels`` cannot be drawn
    secondary: tuple[float | None, ...] = ()  # daily: errors per day
    tone: bool | None = None  # spark: colour of the last point (good, bad, neutral)
    partial: int | None = None  # spark: a point whose period the data began partway through (drawn hollow)
    resumed: tuple[int, ...] = ()  # spark: points whose periods the data resumed partway through (drawn hollow)
    locale: str = "en"  # daily: the axes' numbers in the report's locale (de 1.000, not 1,000: one)


def _clean(values: Sequence[float | None]) -> list[float]:
    return [v if v is not None and math.isfinite(v) else math.nan for v in values]


def _spark(fig: Figure, chart: Chart) -> None:
    # Lines placed in figure coordinates: no Axes, no ticks, a fraction of the drawing time.
    ys = _clean(chart.values)
    finite = [y for y in ys if not math.isnan(y)]
    if not finite:
        return
    # Drawn relative to the largest magnitude: hi + lo and hi - lo of values near the largest double (valid
    # costs of 1e308) overflowed to inf and the sparkline was blank (found checking 1e300-sized values)
    scale = max(abs(y) for y in finite) or 1.0
    ys, finite = [y / scale for y in ys], [y / scale for y in finite]
    lo, hi = min(finite), max(finite)
    # A move of under a tenth of the level is drawn as one (found in a rendering audit: 298 -> 302 -> 300
    # filled the whole height, a spike to the eye).
    span, mid = max(hi - lo, 0.1 * max(abs(hi), abs(lo))), (hi + lo) / 2
    n = max(len(ys) - 1, 1)
    xs = [0.04 + 0.92 * i / n for i in range(len(ys))]
    ys = [0.5 if span == 0 else 0.14 + 0.72 * ((y - mid) / span + 0.5) for y in ys]  # nan stays nan: a gap
    cut = chart.partial if chart.partial is not None and 0 <= chart.partial < len(ys) - 1 else None
    if cut is not None and math.isnan(ys[cut]):
        cut = None
    back = [i for i in chart.resumed if 0 <= i < len(ys) and not math.isnan(ys[i])]
    solid = [math.nan if (cut is not None and i <= cut) or i in back else y for i, y in enumerate(ys)]
    fig.add_artist(Line2D(xs, solid, transform=fig.transFigure, color=BLUE, linewidth=1.3,
                          solid_capstyle="round", solid_joinstyle="round"))
    if cut is not None:
        # A total of a period the data began partway through is low only for that: its point hollow and
        # the line from it dotted, so the rise from it does not read as growth.
        fig.add_artist(Line2D(xs[cut:cut + 2], ys[cut:cut + 2], transform=fig.transFigure, color=MUTED,
                              linewidth=1.1, linestyle=(0, (1, 1.5))))
        fig.add_artist(Line2D([xs[cut]], [ys[cut]], transform=fig.transFigure, linestyle="none", marker="o",
                              markersize=3.2, markerfacecolor="white", markeredgecolor=MUTED, markeredgewidth=1.0))
    last = max(i for i, y in enumerate(ys) if not math.isnan(y))
    if last not in back:
        fig.add_artist(Line2D([xs[last]], [ys[last]], transform=fig.transFigure, linestyle="none",
                              marker="o", markersize=3.2, color=TONE[chart.tone]))
    for i in back:
        # A total of a period the data resumed partway through after a silent one is low only for that: the
        # segments to and from it dotted, its point hollow, as for the period the data began in.
        near = slice(max(i - 1, 0), i + 2)
        fig.add_artist(Line2D(xs[near], ys[near], transform=fig.transFigure, color=MUTED, linewidth=1.1,
                              linestyle=(0, (1, 1.5))))
        fig.add_artist(Line2D([xs[i]], [ys[i]], transform=fig.transFigure, linestyle="none", marker="o",
                              markersize=3.2, markerfacecolor="white", markeredgecolor=MUTED, markeredgewidth=1.0))


def _axis_ticks(top: float) -> list[float]:
    """Whole-number ticks from 0 whose last one is above ``top`` (found by a new user: a top tick of 18
    under bars of 20 left the bars unreadable against the legend)."""
    return [t for t in MaxNLocator(4, integer=True).tick_values(0, max(top, 1.0) * 1.02) if t >= 0]


def _round_step(at_least: float) -> float:
    """The smallest of 1, 2, 5, 10, 20, 50... that is at least ``at_least`` (whole numbers: events)."""
    magnitude = 10 ** max(0, math.floor(math.log10(max(at_least, 1.0))))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= at_least)


def _daily(fig: Figure, chart: Chart) -> None:
    """Conversations per day (blue, left axis) and error events (red, right axis, its own scale): on the
    conversations' axis 36 errors a day against 450 conversations were a red sliver (a reader review), and a
    day with more errors than conversations was cut off (a rendering audit)."""
    ax = fig.add_axes((0.08, 0.2, 0.84, 0.72))
    values = [0.0 if math.isnan(v) else v for v in _clean(chart.values)]
    errors = [0.0 if math.isnan(v) else v for v in _clean(chart.secondary)]
    xs = list(range(len(values)))
    bars = [ax.bar(xs, values, color=BLUE, width=0.7, label="conversations (left)", zorder=2)]
    step = max(1, math.ceil(len(xs) / 10))
    labels = chart.labels if all(map(drawable, chart.labels)) or not chart.plain_labels else chart.plain_labels
    ax.set_xticks(xs[::step], [labels[i] for i in xs[::step]], fontsize=7)
    ax.tick_params(length=0)
    ax.yaxis.grid(True, color=GRID, linewidth=0.8, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ticks = _axis_ticks(max(values, default=0.0))
    ax.set_ylim(0, ticks[-1])
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_decimal(round(v), locale=chart.locale)))
    ax.set_xlim(-0.6, max(len(xs) - 1, 0) + 0.6)
    if any(errors):
        right = ax.twinx()
        # Narrower, in front: the blue bar of the same day still shows around it.
        bars.append(right.bar(xs, errors, color=RED, width=0.3, label="error events (right)", zorder=3))
        # The right scale's ticks sit on the left's gridlines, so one grid reads for both: n steps of a
        # whole, round size (1, 2, 5 x 10^k) that reach above the most errors of a day.
        n = max(1, len(ticks) - 1)
        step = _round_step(max(errors) * 1.02 / n)
        right.set_ylim(0, step * n)
        right.yaxis.set_major_locator(FixedLocator([step * i for i in range(n + 1)]))
        right.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_decimal(round(v), locale=chart.locale)))
        right.tick_params(length=0, colors=RED, labelsize=7)
        for side in ("top", "right", "left", "bottom"):
            right.spines[side].set_visible(False)
        right.set_xlim(ax.get_xlim())
        ax.legend(handles=bars, loc="upper left", frameon=False, fontsize=7, ncols=2, bbox_to_anchor=(0, 1.14))


_DRAW = {"spark": _spark, "daily": _daily}
# rc_context changes matplotlib's global rcParams; reports rendered from several threads take turns.
_LOCK = threading.Lock()


_FALLBACK_FILES = re.compile(r"NotoSansCJK|wqy-zenhei|DroidSansFallback|NotoSans(Arabic|Hebrew|Thai)-", re.I)


@lru_cache(maxsize=1)
def _families() -> tuple[str, ...]:
    """DejaVu Sans, then the fallback fonts this machine has. matplotlib's font list is a cache written
    at its first use: a font installed since then is looked for on disk once per process."""
    from matplotlib import font_manager

    def installed() -> set[str]:
        return {font.name for font in font_manager.fontManager.ttflist}

    if not installed() & set(FALLBACK_FONTS):
        for path in font_manager.findSystemFonts():
            if _FALLBACK_FILES.search(os.path.basename(path)):
                with suppress(Exception):  # an unreadable font file is no reason to fail a report
                    font_manager.fontManager.addfont(path)
    found = installed()
    return ("DejaVu Sans", *(name for name in FALLBACK_FONTS if name in found))


@lru_cache(maxsize=1)
def _glyphs() -> frozenset[int]:
    """The code points the chart fonts (DejaVu Sans and the fallbacks this machine has) can draw."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    points: set[int] = set()
    for family in _families():
        with suppress(Exception):  # a font that cannot be read draws nothing
            path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
            points.update(FT2Font(path).get_charmap())
    return frozenset(points)


def drawable(text: str) -> bool:
    """Whether matplotlib draws ``text`` as it reads: every character has a glyph here, and none is written
    right to left (matplotlib neither reorders nor joins such letters). Found in a rendering audit: without a
    CJK font, as in slim containers, a Japanese report's day labels were rows of empty boxes."""
    return all(ch.isspace() or unicodedata.category(ch) == "Cf"
               or (ord(ch) in _glyphs() and unicodedata.bidirectional(ch) not in ("R", "AL")) for ch in text)


def draw(chart: Chart, fmt: str) -> bytes:
    """The chart as ``png`` or ``svg`` bytes."""
    with _LOCK, rc_context({**_RC, "font.family": list(_families())}):
        dpi = 96 * SCALE if fmt == "png" else 96
        fig = Figure(figsize=(chart.width / 96, chart.height / 96), dpi=dpi, facecolor="white")
        _DRAW[chart.kind](fig, chart)
        out = io.BytesIO()
        metadata = {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}
        fig.savefig(out, format=fmt, dpi=dpi, facecolor="white", metadata=metadata)
    data = out.getvalue()
    return _shrink_png(data) if fmt == "png" else data


def _shrink_png(data: bytes) -> bytes:
    """Palette PNG: a chart uses few colours, and email size matters (Gmail clips at 102 KB)."""
    try:
        from PIL import Image
    except ImportError:  # Pillow comes with matplotlib; without it, keep the full-colour PNG
        return data
    image = Image.open(io.BytesIO(data)).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=48, method=Image.Quantize.FASTOCTREE).save(out, format="PNG")
    return out.getvalue() if out.tell() < len(data) else data


def draw_all(charts: Sequence[Chart], fmt: str) -> dict[str, bytes]:
    return {chart.name: draw(chart, fmt) for chart in charts}
