"""Every format says the same numbers: report.html, the email's HTML and text parts, report.pdf, report.txt and
slack.json are read back (HTML by a parser, the PDF by pdftotext, Slack's block texts) and each figure they show is
compared with report.json's value, formatted here by hand (the house rule: half-even on the value's decimal text;
rates one decimal, changes of rates in pp, other changes in %, one decimal under 10%), never by the renderer.

A format may show fewer rows than another; the rows it shows must then be the first ones, in the same order, and
the "and N more" it writes must count the rest. Slack shows no previous values, no trend and no tables: what it
does show (headline figures, the agents that moved, error types, completeness) must agree too.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from dataclasses import replace
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from html.parser import HTMLParser
from typing import Any

import pytest

from agentdigest.render import render_artifacts
from agentdigest.render.format import Formatter
from render_fixtures import demo_reports, eml_texts, make_report, metric, parse_eml, rendered

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) not installed")

NOW = datetime(2026, 11, 30, 8, 0, 5, tzinfo=timezone.utc)
CARDS = {  # the headline cards of each audience, in order (README, the two built-in reports)
    "executive": ("conversations", "resolution_rate", "containment_rate", "cost_usd", "estimated_savings_usd",
                  "error_rate"),
    "engineering": ("conversations", "errors", "error_rate", "p95_latency_ms", "tokens_per_conversation",
                    "cost_usd"),
}
HTML_FORMATS = ("report.html", "eml html")
TEXT_FORMATS = ("report.txt", "eml text")
ALL = (*HTML_FORMATS, *TEXT_FORMATS, "report.pdf", "slack.json")


# --- the expected text, by hand ------------------------------------------------------------------------------

def _q(value: float, digits: int) -> Decimal:
    """``value`` rounded half-even on its shortest decimal text (61.15 is 61.2, 0.005 is 0.00)."""
    return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN)


def count(v: Any) -> str:
    return "n/a" if v is None else f"{_q(v, 0):,}"


def pct(v: Any) -> str:
    return "n/a" if v is None else f"{_q(v, 1)}%"


def usd(v: Any) -> str:
    if v is None:
        return "n/a"
    cents = _q(abs(v), 2)
    if v and not cents:  # under half a cent, spent or refunded
        return "<$0.01" if v > 0 else "> -$0.01"
    text = f"${_q(abs(v), 0):,}" if cents >= 1000 else f"${cents}"
    return "-" + text if v < 0 and cents else text


def ms(v: Any) -> str:
    if v is None:
        return "n/a"
    if _q(v, 0) < 1000:
        return f"{_q(v, 0)} ms"
    assert _q(v / 1000, 2) < 60, "no expectation written for minutes"
    return f"{_q(v / 1000, 2)} s"


def tokens(v: Any) -> str:
    if v is None:
        return "n/a"
    if abs(v) < 10_000:
        return count(v)
    return f"{_q(v / 1000, 1)}K" if _q(v / 1000, 1) < 1000 else f"{_q(v / 1e6, 2)}M"


UNIT = {"count": count, "percent": pct, "usd": usd, "ms": ms, "tokens": tokens}


def pp(v: Any) -> str:
    if v is None:
        return "n/a"
    return "no change" if _q(v, 1) == 0 else f"{_q(v, 1):+} pp"


def change_pct(v: Any) -> str:
    if v is None:
        return "n/a"
    one = _q(v, 1)
    if one == 0:
        return "no change"
    return f"{_q(v, 0):+,}%" if abs(one) >= 10 else f"{one:+}%"


def between(cur: Any, prev: Any, rate: bool = False) -> str:
    """A breakdown row's change (it carries two raw values)."""
    if cur is None:
        return "n/a"
    if rate:
        return "n/a" if prev is None else pp(cur - prev)
    if not prev:
        return "new" if cur else ("no change" if prev == 0 else "n/a")
    return change_pct((cur - prev) / abs(prev) * 100)


def headline(m: dict[str, Any]) -> tuple[str, str, str, str, bool]:
    """(value, change with its arrow, previous, notable?) of one metric of report.json."""
    value, previous = UNIT[m["unit"]](m["value"]), UNIT[m["unit"]](m["previous"])
    if m["value"] is None:
        change = "n/a"
    elif m["direction"] == "flat":
        change = "no change"
    elif m["unit"] == "percent" and m["change_pp"] is not None:  # also after 0.0%: points, as by-agent rows
        change = pp(m["change_pp"])
    elif m["direction"] == "new":
        change = "new"
    else:
        change = change_pct(m["change_pct"])
    shown = change not in ("no change", "n/a", "new")
    moved = m["direction"] if m["direction"] != "new" else ("up" if (m["change_pp"] or 0) > 0 else "down")
    arrow = {"up": "▲ ", "down": "▼ "}.get(moved, "") if shown else ""
    return m["label"], value, arrow + change, previous, bool(m.get("notable")) and shown


def span(start: str, end_exclusive: str) -> str:
    """A week's days: "5 – 11 Oct", "26 Oct – 1 Nov"."""
    first, last = date.fromisoformat(start[:10]), date.fromordinal(date.fromisoformat(end_exclusive[:10]).toordinal() - 1)
    if first.month == last.month:
        return f"{first.day} – {last.day} {last:%b}"
    return f"{first.day} {first:%b} – {last.day} {last:%b}"


# --- reading each format back --------------------------------------------------------------------------------

def unmarked(text: str) -> str:
    """A table's figures without the arrows of their coloured changes ("▲ +21%", in text "▲+21%", is "+21%")."""
    return re.sub(r"[▲▼] ?", "", text)


def norm(text: str) -> str:
    """Spaces as spaces (no-break, thin), no soft hyphens or bidi marks, runs of spaces as one."""
    text = re.sub("[\u00a0\u202f\u2009]", " ", text)
    text = re.sub("[\u00ad\u200e\u2068\u2069]", "", text)
    return re.sub(r"[ \t]+", " ", text).strip()


class HTMLView(HTMLParser):
    """The cards (label, value, change, previous), and each section's table rows and "and N more" line, as a
    desktop shows them; the phone layout's copy of a row's left-out figures (under its name) is kept apart,
    in the section's "phone" list."""

    CARD = {"kpi-label": "label", "kpi-value": "value", "kpi-change": "change", "kpi-prev": "previous"}

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.cards: list[dict[str, str]] = []
        self.sections: dict[str, dict[str, Any]] = {}
        self.text_chunks: list[str] = []
        self._field: str | None = None
        self._depth = 0
        self._section: str | None = None
        self._h2: list[str] | None = None
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._more: list[str] | None = None
        self._skip = 0
        self._phone: list[str] | None = None  # inside a .phone-only copy
        self._phone_depth = 0
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag in ("style", "script", "title"):
            self._skip += 1
        if self._phone is not None:
            if tag == "br":
                self._phone.append("\n")
            elif tag not in ("img", "wbr"):
                self._phone_depth += 1
            return
        if "phone-only" in classes:
            self._phone, self._phone_depth = [], 1
            return
        if self._field is not None and tag not in ("br", "img"):
            self._depth += 1
        if "kpi" in classes:
            self.cards.append({})
        for cls in classes:
            if cls in self.CARD:
                self._field, self._depth = self.CARD[cls], 1
                self.cards[-1][self._field] = ""
        if tag == "h2":
            self._h2 = []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")
        elif tag == "p" and "more" in classes:
            self._more = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "title"):
            self._skip -= 1
        if self._phone is not None:
            self._phone_depth -= 1
            if self._phone_depth == 0:
                if self._section is not None:
                    copy = [norm(part) for part in "".join(self._phone).split("\n") if norm(part)]
                    self.sections[self._section]["phone"].append(copy)
                self._phone = None
            return
        if self._field is not None and tag not in ("br", "img"):
            self._depth -= 1
            if self._depth == 0:
                self.cards[-1][self._field] = norm(self.cards[-1][self._field])
                self._field = None
        if tag == "h2" and self._h2 is not None:
            self._section = norm("".join(self._h2))
            self.sections[self._section] = {"rows": [], "more": None, "phone": []}
            self._h2 = None
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("\n".join(norm(part) for part in "".join(self._cell).split("\n")))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._section is not None:
                self.sections[self._section]["rows"].append(self._row)
            self._row = None
        elif tag == "p" and self._more is not None:
            if self._section is not None:
                self.sections[self._section]["more"] = norm("".join(self._more))
            self._more = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._phone is not None:
            self._phone.append(data)
            return
        self.text_chunks.append(data)
        for sink in (self._h2, self._cell, self._more):
            if sink is not None:
                sink.append(data)
        if self._field is not None:
            self.cards[-1][self._field] += data

    @property
    def text(self) -> str:
        return norm(" ".join(self.text_chunks))

    def body_rows(self, section: str) -> list[list[str]]:
        """The rows under the header, each figure without the arrow a coloured change carries (the arrow is
        test_render_html's)."""
        return [[unmarked(cell) for cell in row] for row in self.sections[section]["rows"][1:]]


def pdf_words(pdf: bytes) -> tuple[list[tuple[int, float, float, str]], float]:
    """(page, x, y, word) of every word, as pdftotext places them, and the width of the pages."""
    out = subprocess.run(["pdftotext", "-bbox", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    words, page = [], -1
    for m in re.finditer(r'<page |<word xMin="([\d.]+)" yMin="([\d.]+)"[^>]*>([^<]*)</word>', out):
        if m.group(0) == "<page ":
            page += 1
            continue
        words.append((page, float(m.group(1)), float(m.group(2)), html.unescape(m.group(3))))
    return words, float(re.search(r'<page width="([\d.]+)"', out).group(1))


def lines_of(words: list[tuple[int, float, float, str]]) -> list[tuple[int, float, str]]:
    """Words on one baseline (within 2 pt) as one line of text, top to bottom, page by page."""
    lines: list[tuple[int, float, list[tuple[float, str]]]] = []
    for page, x, y, word in sorted(words, key=lambda w: (w[0], w[2], w[1])):
        if lines and lines[-1][0] == page and abs(lines[-1][1] - y) < 2:
            lines[-1][2].append((x, word))
        else:
            lines.append((page, y, [(x, word)]))
    return [(page, y, norm(" ".join(w for _, w in sorted(ws)))) for page, y, ws in lines]


class PDFView:
    def __init__(self, pdf: bytes):
        self.words, self.page_width = pdf_words(pdf)
        self.lines = lines_of(self.words)
        self.text = norm("\n".join(line for *_, line in self.lines))

    def after(self, heading: str) -> list[str]:
        """The lines after the (first) line that is ``heading``, without the page furniture between pages (the
        running head, "Page 1 of 2") and a table's header repeated on the next page."""
        texts = [line for *_, line in self.lines]
        rest = texts[texts.index(heading) + 1:]
        furniture = re.compile(r"^(Page \d+ of \d+|.* week of \d+ \w+ \d{4} \(\d{4}-W\d\d\))$")
        rest = [unmarked(line) for line in rest if not furniture.match(line)]
        return rest[:1] + [line for line in rest[1:] if line != rest[0]]

    def cards(self, labels: list[str], end_heading: str) -> list[dict[str, str]]:
        """The headline cards, three to a row: each column's lines split at the cards' labels."""
        where = {line: (page, y) for page, y, line in self.lines}
        page, top = where["Headline figures"]
        bottom = where[end_heading][1] if where[end_heading][0] == page else 1e9
        inside = [w for w in self.words if w[0] == page and top + 2 < w[2] < bottom - 2]
        left = min(w[1] for w in self.words if w[0] == page)  # the page's margin
        width = (self.page_width - 2 * left) / 3
        cards: dict[str, dict[str, str]] = {}
        for column in range(3):
            # a card's words start at its column's left edge (or a little right of it): 5 pt either way
            mine = [w for w in inside if int((w[1] - left + 5) // width) == column]
            current = None
            for _, _, line in lines_of(mine):
                if line in labels:
                    current = cards.setdefault(line, {"label": line, "lines": []})
                elif current is not None:
                    current["lines"].append(line)
        out = []
        for label in labels:
            lines = cards[label]["lines"]
            previous = next(line for line in lines if line.startswith("previous "))
            rest = [line for line in lines if line != previous]
            out.append({"label": label, "value": rest[0], "change": " ".join(rest[1:]), "previous": previous})
        return out


def same_name(shown: str, full: str) -> bool:
    """Whether ``shown`` is ``full``, or ``full`` with its middle cut out ("returns-a…tant-2")."""
    if shown == full:
        return True
    head, cut, tail = shown.partition("…")
    return bool(cut) and full.startswith(head) and full.endswith(tail) and len(shown) < len(full)


def same_rows(got: list[list[str]], want: list[list[str]]) -> bool:
    """Rows alike, each first cell (a name) as :func:`same_name` reads it."""
    return len(got) == len(want) and all(
        g[1:] == w[1:] and same_name(g[0], w[0]) for g, w in zip(got, want))


def text_section(txt: str, title: str) -> list[str]:
    """The lines of a report.txt section, up to the next blank line."""
    lines = txt.splitlines()
    i = lines.index(title.upper())
    out = []
    for line in lines[i + 2:]:
        if not line.strip():
            break
        out.append(line)
    return out


def text_rows(txt: str, title: str) -> tuple[list[list[str]], str | None]:
    """A report.txt table's rows (cells split at two spaces; a name given a line of its own joined to its figures)
    and its "and N more" line."""
    lines = text_section(txt, title)[2:]  # heading, rule
    more = [norm(line) for line in lines if line.strip().startswith("and ")]
    rows: list[list[str]] = []
    for line in lines:
        if not line.startswith("  ") or line.strip().startswith(("and ", "* ")):
            continue
        cells = [norm(c) for c in re.split(r" {2,}", line.strip())]
        if line.startswith("   ") and rows and len(rows[-1]) == 1:  # a name on a line of its own, its figures under it
            rows[-1] += cells
        else:
            rows.append(cells)
    return rows, (more[0] if more else None)


def views(files: dict[str, bytes]) -> dict[str, Any]:
    parts = eml_texts(files["message.eml"])
    return {
        "report.html": HTMLView(files["report.html"].decode()),
        "eml html": HTMLView(parts["text/html"]),
        "report.txt": files["report.txt"].decode(),
        "eml text": parts["text/plain"],
        "report.pdf": PDFView(files["report.pdf"]),
        "slack.json": json.loads(files["slack.json"]),
    }


# --- what each format shows of the headline cards ------------------------------------------------------------

NOTABLE = re.compile(r"\s*(\[notable\]|\*notable\*|notable|NOTABLE)\s*$")


def _split_notable(change: str) -> tuple[str, bool]:
    change = re.sub(r"\s*:(large_green_circle|red_circle):", "", change)
    stripped = NOTABLE.sub("", change)
    return norm(stripped), stripped != change


def shown_cards(view: Any, where: str, labels: list[str], next_heading: str) -> list[tuple[str, str, str, str | None, bool]]:
    """(label, value, change, previous or None, notable?) of each headline card as ``where`` shows it."""
    out = []
    if where in HTML_FORMATS:
        for card in view.cards:
            change, notable = _split_notable(card["change"])
            previous = re.sub(r"^previous \w+: ", "", card["previous"])
            out.append((card["label"], card["value"], change, previous, notable))
    elif where in TEXT_FORMATS:
        rows, _ = text_rows(view, "Headline figures")
        for label, value, change, previous in rows:
            change, notable = _split_notable(change)
            out.append((label, value, change, previous, notable))
    elif where == "report.pdf":
        for card in view.cards(labels, next_heading):
            change, notable = _split_notable(card["change"])
            out.append((card["label"], card["value"], change, re.sub(r"^previous \w+: ", "", card["previous"]), notable))
    else:
        fields = next(b for b in view["blocks"] if b.get("fields"))["fields"]
        for field in fields:
            label, body = field["text"].split("\n", 1)
            # Slack shows its mrkdwn escapes as the characters ("&lt;$0.01" reads "<$0.01")
            body = body.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
            value, _, change = body.partition("  ")
            change, notable = _split_notable(change)
            out.append((label.strip("*"), value, change, None, notable))
    return out


def expected_cards(doc: dict[str, Any], audience: str) -> list[tuple[str, str, str, str, bool]]:
    return [headline(doc["metrics"][k]) for k in CARDS[audience] if k in doc["metrics"]]


def check_cards(files: dict[str, bytes], audience: str) -> None:
    doc = json.loads(files["report.json"])
    expected = expected_cards(doc, audience)
    labels = [e[0] for e in expected]
    following = "Volume" if audience == "executive" else "Latency"
    for where, view in views(files).items():
        got = shown_cards(view, where, labels, following)
        if where == "slack.json":  # Slack shows no previous values; a figure not known has no change beside it
            want = [(label, value, "" if value == change == "n/a" else change, None, notable)
                    for label, value, change, _, notable in expected]
        else:
            want = expected
        assert got == want, where


# --- the rows of the tables ----------------------------------------------------------------------------------

def trend_expected(doc: dict[str, Any]) -> list[list[str]]:
    rows = [[span(r["start"], r["end"]), count(r["conversations"]), pct(r["resolution_rate"]),
             pct(r["containment_rate"]), pct(r["error_rate"]), usd(r["cost_usd"])] for r in doc["breakdowns"]["trend"]]
    if doc["quality"]["warning"]:  # a footnote's mark, explained under the table
        rows[-1][0] += " *"
    return rows


def check_trend(files: dict[str, bytes]) -> None:
    doc = json.loads(files["report.json"])
    want = trend_expected(doc)
    heading = f"Last {len(want)} weeks"
    for where, view in views(files).items():
        if where in HTML_FORMATS:
            assert view.body_rows(heading) == want, where
        elif where in TEXT_FORMATS:
            rows, more = text_rows(view, heading)
            assert rows == want and more is None, where
        elif where == "report.pdf":
            lines = view.after(heading)
            assert lines[0] == "Period Conversations Resolution Containment Error rate Cost"
            assert lines[1:1 + len(want)] == [" ".join(r) for r in want], where  # each row one line
        if where != "slack.json":
            assert ("* incomplete: see the warning at the top" in norm(str(getattr(view, "text", view)))) \
                == doc["quality"]["warning"], where


def agents_expected(doc: dict[str, Any]) -> list[dict[str, str]]:
    rows = sorted(doc["breakdowns"]["by_agent"], key=lambda r: -(r["conversations"] or 0))
    return [{
        "agent": "(none)" if r["agent_id"] is None else r["agent_id"],
        "conversations": count(r["conversations"]),
        "conversations_change": between(r["conversations"], r.get("previous_conversations")),
        "resolution": pct(r["resolution_rate"]),
        "resolution_change": between(r["resolution_rate"], r.get("previous_resolution_rate"), rate=True),
        "error_rate": pct(r["error_rate"]),
        "error_rate_change": between(r["error_rate"], r.get("previous_error_rate"), rate=True),
        "p95": ms(r["p95_latency_ms"]), "p95_change": p95_between(r),
        "cost": usd(r["cost_usd"]),
    } for r in rows]


def p95_between(r: dict[str, Any]) -> str:
    """An agent's p95 change: nothing to compare with ("n/a", not "new") if it had conversations before, none
    with a latency."""
    if r.get("previous_p95_latency_ms") is None and r["p95_latency_ms"] is not None and r.get("previous_conversations"):
        return "n/a"
    return between(r["p95_latency_ms"], r.get("previous_p95_latency_ms"))


def models_expected(doc: dict[str, Any]) -> list[list[str]]:
    rows = sorted(doc["breakdowns"]["by_model"], key=lambda r: -(r["total_tokens"] or 0))
    total = sum(r["total_tokens"] or 0 for r in rows)
    return [[r["model"], count(r["conversations"]), tokens(r["total_tokens"]),
             "n/a" if r["total_tokens"] is None or not total else pct(r["total_tokens"] / total * 100),
             ms(r["p95_latency_ms"]), count(r["errors"]), usd(r["cost_usd"])] for r in rows]


def more_line(left_out: int, noun: str, total: int, pdf_rows: int = 100) -> str:
    where = "more in the attached PDF report" if total <= pdf_rows else f"the attached PDF lists the first {pdf_rows} of {total:,}"
    return f"and {left_out:,} more {noun} ({where})"


def check_agents(files: dict[str, bytes]) -> int:
    """Checks the by-agent rows of every format; returns how many Slack figures were compared."""
    doc = json.loads(files["report.json"])
    want = agents_expected(doc)
    total, slack_figures = len(want), 0
    for where, view in views(files).items():
        if where in HTML_FORMATS:
            got = view.body_rows("By agent")
            assert got, where
            expect = [[r["agent"], f"{r['conversations']}\n{r['conversations_change']}", f"{r['resolution']}\n{r['resolution_change']}",
                       f"{r['error_rate']}\n{r['error_rate_change']}", f"{r['p95']}\n{r['p95_change']}", r["cost"]] for r in want]
            assert got == expect[:len(got)], where
            # a phone has each agent's cost under its name, the Cost column left out
            assert view.sections["By agent"]["phone"] == [[f"Cost {r['cost']}"] for r in want[:len(got)]], where
            more = view.sections["By agent"]["more"]
            assert more == (more_line(total - len(got), "agents", total) if total > len(got) else None), where
        elif where in TEXT_FORMATS:
            got, more = text_rows(view, "By agent")
            got = [[unmarked(c) for c in row] for row in got]  # the arrows of coloured changes, as in the HTML
            expect = [[r["agent"], r["conversations"], r["resolution"], r["resolution_change"], r["error_rate"],
                       r["error_rate_change"], r["p95"], r["p95_change"]] for r in want]
            assert got and same_rows(got, expect[:len(got)]), where  # plain text may cut a long name
            assert more == (more_line(total - len(got), "agents", total) if total > len(got) else None), where
        elif where == "report.pdf":
            lines = view.after("By agent")
            assert lines[0] == "Agent Conversations Resolution Error rate p95 latency Cost"
            pairs = [(" ".join([r["agent"], r["conversations"], r["resolution"], r["error_rate"], r["p95"], r["cost"]]),
                      " ".join([r["conversations_change"], r["resolution_change"], r["error_rate_change"], r["p95_change"]]))
                     for r in want]
            shown = min(total, 100)
            assert [(lines[1 + 2 * i], lines[2 + 2 * i]) for i in range(shown)] == pairs[:shown], where
            after = lines[1 + 2 * shown]
            if total > shown:
                assert after == f"and {total - shown:,} more agents (every row is in the archive's report.json)"
            else:
                assert not after.startswith("and ")
        else:  # Slack: the agents that moved, each with the figures the tables show
            by_name = {r["agent"]: r for r in want}
            blocks = view["blocks"]
            titles = [b.get("text", {}).get("text") for b in blocks]
            if "*Agents that moved*" not in titles:
                continue
            body = blocks[titles.index("*Agents that moved*") + 1]["text"]["text"]
            for line in body.splitlines():
                agent, _, moves = line.removeprefix("• ").partition(": ")
                r = by_name[agent]
                for label, value, change in re.findall(r"(error rate|resolution|p95) (.+?) \((.+?)\)", moves):
                    key = {"error rate": "error_rate", "resolution": "resolution", "p95": "p95"}[label]
                    assert (value, unmarked(change.removesuffix(", notable"))) == (r[key], r[f"{key}_change"]), (where, line)
                    slack_figures += 1
    return slack_figures


def check_models(files: dict[str, bytes]) -> None:
    doc = json.loads(files["report.json"])
    want = models_expected(doc)
    for where, view in views(files).items():
        if where in HTML_FORMATS:
            assert view.body_rows("Tokens by model") == want, where
            assert view.sections["Tokens by model"]["phone"] == [[f"Share {r[3]}", f"Cost {r[6]}"] for r in want], where
        elif where in TEXT_FORMATS:
            rows, more = text_rows(view, "Tokens by model")
            assert rows == want and more is None, where
        elif where == "report.pdf":
            lines = view.after("Tokens by model")
            assert lines[1:1 + len(want)] == [" ".join(r) for r in want], where


# --- the cases -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("audience", ["executive", "engineering"])
@pytest.mark.parametrize("warning", [False, True], ids=["complete", "incomplete"])
def test_headline_cards_agree(audience: str, warning: bool) -> None:
    check_cards(rendered(audience, warning=warning), audience)


@pytest.mark.parametrize("warning", [False, True], ids=["complete", "incomplete"])
def test_trend_rows_agree(warning: bool) -> None:
    check_trend(rendered("executive", warning=warning))


def test_agent_and_model_rows_agree() -> None:
    files = rendered("engineering")
    assert check_agents(files) >= 2  # Slack named agents that moved, and their figures were compared
    check_models(files)


def _with_previous_error_rates(data: Any) -> Any:
    """Agents with a previous error rate and a big move in it, so the Slack message names some."""
    rows = tuple({**r, "previous_error_rate": (r["error_rate"] or 0) + (4.0 if i % 2 else -3.05),
                  "error_conversations": 40, "previous_error_conversations": 10, "previous_conversations": 1000}
                 for i, r in enumerate(data.by_agent))
    return replace(data, by_agent=rows)


@pytest.mark.parametrize("agents", [20, 130], ids=["some-left-out", "pdf-also-shortened"])
def test_rows_left_out_are_the_last_and_counted_alike(agents: int) -> None:
    """The email and the text show the first 15 agents, the PDF up to 100; each counts the rest."""
    data = _with_previous_error_rates(make_report("engineering", agents=agents))
    files = render_artifacts(data, now=NOW)
    assert check_agents(files) >= 3


def test_error_types_left_out_are_counted_alike() -> None:
    data = make_report("engineering")
    types = tuple({"error_type": f"type_{i:02d}", "count": 100 - 3 * i, "previous": 50} for i in range(13))
    files = render_artifacts(replace(data, errors_by_type=types), now=NOW)
    want = [[f"type_{i:02d}", count(100 - 3 * i), "50", between(100 - 3 * i, 50)] for i in range(13)]
    v = views(files)
    for where in HTML_FORMATS:
        assert v[where].body_rows("Errors by type") == want[:10], where
        assert v[where].sections["Errors by type"]["more"] == "and 3 more error types (more in the attached PDF report)"
    for where in TEXT_FORMATS:
        rows, more = text_rows(v[where], "Errors by type")
        rows = [[unmarked(c) for c in row] for row in rows]  # the arrows of coloured changes, as in the HTML
        assert rows == want[:10] and more == "and 3 more error types (more in the attached PDF report)", where
    assert v["report.pdf"].after("Errors by type")[1:14] == [" ".join(r) for r in want]
    titles = [b.get("text", {}).get("text") for b in v["slack.json"]["blocks"]]
    body = v["slack.json"]["blocks"][titles.index("*Errors by type*") + 1]["text"]["text"]
    shown = [re.sub(r"\((?:[▲▼] )?(.*?)(?:, notable)?\)$", r"(\1)", line) for line in body.splitlines()]
    assert shown == [f"• {t}  {c} ({ch})" for t, c, _, ch in want[:8]] + ["…and 5 more"]


@pytest.mark.parametrize("audience", ["executive", "engineering"])
@pytest.mark.parametrize("warning", [False, True], ids=["complete", "incomplete"])
def test_completeness_and_warning_agree(audience: str, warning: bool) -> None:
    files = rendered(audience, warning=warning)
    figure = pct(json.loads(files["report.json"])["quality"]["completeness_pct"])
    assert figure == ("81.4%" if warning else "99.2%")
    title = f"Data incomplete: {figure} of expected events"
    v = views(files)
    for where in HTML_FORMATS:
        text = v[where].text
        assert (f"⚠ {title}" in text) is warning and (f"Only {figure} of the expected events arrived" in text) is warning
        assert f"Completeness {figure}" in text or f"Completeness {figure} " in text or f"Completeness{figure}" in text
    for where in TEXT_FORMATS:
        text = v[where]
        assert (f"!! DATA INCOMPLETE: {figure} of expected events" in text) is warning, where
        assert re.search(rf"Completeness:?\s+{re.escape(figure)}", text), where
    pdf = v["report.pdf"].text
    assert (f"⚠ {title}" in pdf) is warning and re.search(rf"Completeness {re.escape(figure)}", pdf)
    slack = v["slack.json"]
    assert (f":warning: *{title}.*" in json.dumps(slack, ensure_ascii=False)) is warning
    assert slack["blocks"][-1]["elements"][0]["text"].endswith(f"data completeness {figure}")
    assert slack["text"].startswith(f"⚠ Data incomplete ({figure}). ") is warning
    subject = parse_eml(files["message.eml"])["Subject"]
    assert subject.startswith(f"⚠ Data incomplete ({figure}): ") is warning


# --- rounding at the edges -----------------------------------------------------------------------------------

def edge_report() -> Any:
    """Figures on the edges of their rounding, each with the text every format must show (written by hand)."""
    data = make_report("executive")
    metrics = {
        "conversations": metric("conversations", 2414, 2414),  # flat: "no change", no arrow
        "resolution_rate": metric("resolution_rate", 61.15, 61.05, notable=True),  # x.x5 both: 61.2% and 61.0%
        "containment_rate": metric("containment_rate", 87.46, 87.5),  # -0.04 pp: "no change", no arrow
        "cost_usd": metric("cost_usd", 0.005, 0.0),  # half a cent: <$0.01 (half-even would be $0.00), after $0.00: "new"
        "estimated_savings_usd": metric("estimated_savings_usd", None, 8585.69),  # null: n/a
        "error_rate": metric("error_rate", 0.0, 9.95),  # 0.0% after 10.0% (9.95 half-even), -9.95 pp: "-10.0 pp"
        "escalated_conversations": metric("escalated_conversations", 302, 302),
    }
    trend = list(data.trend)
    trend[-2] = {**trend[-2], "conversations": 2414, "resolution_rate": 61.05, "containment_rate": 87.5,
                 "error_rate": 9.95, "cost_usd": 0.0}
    trend[-1] = {**trend[-1], "conversations": 2414, "resolution_rate": 61.15, "containment_rate": 87.46,
                 "error_rate": 0.0, "cost_usd": 0.005}
    trend[-3] = {**trend[-3], "resolution_rate": 2.35, "containment_rate": 0.35, "error_rate": 1.85, "cost_usd": 0.015}
    return replace(data, metrics=metrics, trend=tuple(trend))


EDGE_CARDS = [  # label, value, change, previous, notable: by hand
    ("Conversations", "2,414", "no change", "2,414", False),
    ("Resolution rate", "61.2%", "▲ +0.1 pp", "61.0%", True),
    ("Containment rate", "87.5%", "no change", "87.5%", False),
    ("Cost", "<$0.01", "new", "$0.00", False),
    ("Estimated savings", "n/a", "n/a", "$8,586", False),
    ("Error rate", "0.0%", "▼ -10.0 pp", "10.0%", False),
]
EDGE_TREND_LAST = [  # the last three weeks' rows, by hand
    ["9 – 15 Nov", "2,160", "2.4%", "0.4%", "1.8%", "$0.02"],
    ["16 – 22 Nov", "2,414", "61.0%", "87.5%", "10.0%", "$0.00"],
    ["23 – 29 Nov", "2,414", "61.2%", "87.5%", "0.0%", "<$0.01"],
]


def test_edge_figures_by_hand_match_the_house_rule() -> None:
    """The expectations of this module written out by hand for the edge report, so its helpers are checked too."""
    doc = json.loads(render_artifacts(edge_report(), {"json"})["report.json"])
    assert expected_cards(doc, "executive") == EDGE_CARDS
    assert trend_expected(doc)[-3:] == EDGE_TREND_LAST


def test_edge_figures_agree() -> None:
    """x.x5 rates, a -0.04 pp move, half a cent, zeros and a null: shown alike, as rounded by hand."""
    files = render_artifacts(edge_report(), now=NOW)
    check_cards(files, "executive")
    check_trend(files)


def test_a_rate_after_zero_moves_by_points_in_every_format() -> None:
    """0.0% -> 40.0% read "new" on its card beside "+40.0 pp" in its agents' rows: now points everywhere."""
    data = edge_report()
    metrics = {**data.metrics, "resolution_rate": metric("resolution_rate", 40.0, 0.0),
               "error_rate": metric("error_rate", 3.0, 0.0)}
    files = render_artifacts(replace(data, metrics=metrics), now=NOW)
    cards = expected_cards(json.loads(files["report.json"]), "executive")
    assert cards[1] == ("Resolution rate", "40.0%", "▲ +40.0 pp", "0.0%", False)  # by hand
    assert cards[5] == ("Error rate", "3.0%", "▲ +3.0 pp", "0.0%", False)
    check_cards(files, "executive")
    rows = console_rows(replace(data, metrics=metrics))
    assert (rows["Resolution rate"][2], rows["Error rate"][2]) == ("▲ +40.0 pp", "▲ +3.0 pp")


def console_rows(data: Any) -> dict[str, tuple[str, str, str]]:
    """The headline table `run` prints: label -> (value, previous, change)."""
    from io import StringIO

    from rich.console import Console

    from agentdigest.outcome_table import print_outcome
    from agentdigest.runner import RunOutcome

    out = StringIO()
    print_outcome(RunOutcome(report_id=data.report_id, period_key=data.period.key, data=data),
                  Console(file=out, width=200, color_system=None))
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in out.getvalue().splitlines() if line.count("│") >= 5]
    return {label: (value, previous, change) for label, value, previous, change in cells}


def test_the_console_says_the_edge_figures_as_the_report_does() -> None:
    """61.15 read "61.1%" on the console beside "61.2%" in the report; half a cent "$0.01" beside "<$0.01"."""
    data = edge_report()
    rows = console_rows(data)
    doc = json.loads(render_artifacts(data, {"json"})["report.json"])
    for label, value, change, previous, _ in expected_cards(doc, "executive"):
        assert rows[label] == (value, previous, "" if change == "n/a" else change), label


def test_completeness_just_under_the_threshold_reads_under_it() -> None:
    data = make_report("executive", warning=True)
    files = render_artifacts(replace(data, quality=replace(data.quality, completeness_pct=94.95)), now=NOW)
    for where, view in views(files).items():
        text = view.text if hasattr(view, "text") else json.dumps(view, ensure_ascii=False) if where == "slack.json" else view
        assert "Only 95.0% of the expected events arrived (warning threshold 95.0%)" not in text, where
        assert "94.9%" in text, where


@pytest.mark.parametrize("value, threshold, shown", [
    (94.95, 95, "94.9%"), (94.96, 95, "94.9%"), (94.99, 95.0, "94.9%"),  # would round onto the threshold: cut
    (94.94, 95, "94.9%"), (94.84, 95, "94.8%"), (80.06, 95, "80.1%"),   # rounds under it anyway: rounded
    (95.0, 95, "95.0%"), (95.04, 95, "95.0%"), (103.65, 95, "103.6%"),  # at or over it: rounded (half-even)
    (None, 95, "n/a"), (94.95, None, "95.0%"), (1e300, 95, "1.0E300%"),  # as huge counts read: not an error
])
def test_a_rate_under_a_threshold_never_reads_as_reaching_it(value, threshold, shown) -> None:
    assert Formatter().percent_under(value, threshold) == shown


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """`agentdigest demo`'s two reports for 2026-W47 (seeded events, computed as `agentdigest run` does), rendered."""
    return demo_reports(tmp_path_factory.mktemp("demo"))


def test_the_demo_reports_agree(demo_files: dict[str, dict[str, bytes]]) -> None:
    for audience, files in demo_files.items():
        check_cards(files, audience)
    check_trend(demo_files["executive"])
    check_agents(demo_files["engineering"])
    check_models(demo_files["engineering"])


def test_the_console_says_the_completeness_as_the_report_does() -> None:
    """`run` prints the figure the report's warning gives: "95.0%" beside a warning at 95% contradicted it."""
    from io import StringIO

    from rich.console import Console

    from agentdigest.outcome_table import print_outcome
    from agentdigest.runner import RunOutcome

    data = make_report("executive", warning=True)
    data = replace(data, quality=replace(data.quality, completeness_pct=94.95))
    out = StringIO()
    print_outcome(RunOutcome(report_id=data.report_id, period_key=data.period.key, data=data),
                  Console(file=out, width=200, color_system=None))
    assert "WARNING: incomplete data, data completeness 94.9%" in out.getvalue()


def test_an_agent_whose_earlier_conversations_had_no_latency_has_no_p95_change_not_a_new_one() -> None:
    """Found in a reader review: an agent with conversations the week before, none with a latency (so no p95
    then), read "new" in its p95 change beside "-4.2 pp" for its resolution. Its change is "n/a"; an agent
    with no conversations before is still "new"."""
    data = make_report("engineering")
    rows = list(data.by_agent)
    rows[0] = {**rows[0], "previous_p95_latency_ms": None}  # conversations before, no latency then
    rows[1] = {**rows[1], "previous_p95_latency_ms": None, "previous_conversations": 0}  # no conversations before
    files = render_artifacts(replace(data, by_agent=tuple(rows)), {"txt", "html", "pdf"}, now=NOW)
    pdf = subprocess.run(["pdftotext", "-layout", "-", "-"], input=files["report.pdf"], capture_output=True).stdout.decode()
    for agent, expected in ((rows[0]["agent_id"], "n/a"), (rows[1]["agent_id"], "new")):
        text_row = next(line for line in files["report.txt"].decode().splitlines() if line.strip().startswith(agent))
        assert text_row.split()[-1] == expected, text_row
        html_row = next(tr for tr in re.findall(r"<tr valign=\"top\">.*?</tr>", files["report.html"].decode().replace("<wbr>", ""), re.S)
                        if agent in tr and "badge" in tr)
        badges = re.findall(r'<span class="badge[^"]*"[^>]*>([^<]*)</span>', html_row)
        assert badges[-1] == expected, badges
        # the PDF's row: the agent's line, then its changes' line (conversations, resolution, error rate, p95)
        lines = pdf.splitlines()
        at = next(i for i, line in enumerate(lines) if line.strip().startswith(agent))
        assert lines[at + 1].split()[-1] == expected, lines[at:at + 2]
    check_agents(render_artifacts(replace(data, by_agent=tuple(rows)), now=NOW))  # and every format agrees
