"""report.pdf: KPIs in its text, page numbers, header, page size, banner, nothing off the page."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from pypdf import PdfReader

from agentdigest.render import render_artifacts
from conftest import skip_or_fail
from render_fixtures import HOSTILE_AGENT, HOSTILE_TYPE, make_report, pdf_text, rendered

CASES = [
    ("executive", {}),
    ("engineering", {}),
    ("executive", {"warning": True, "hostile": True, "pii": True}),
    ("engineering", {"warning": True, "hostile": True, "pii": True}),
    ("engineering", {"zero": True}),
    ("engineering", {"missing": True, "nulls": True, "warning": True}),
]
IDS = [f"{a}-{'-'.join(flags) or 'plain'}" for a, flags in CASES]


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(("audience", "expected"), [
    ("executive", ["Conversations", "2,480", "Resolution rate", "61.0%", "Containment rate", "87.5%",
                   "$25.87", "$9,739", "Error rate", "2.2%"]),
    ("engineering", ["2,480", "p95 latency", "2.16 s", "p99 latency", "3.69 s", "tool_timeout", "gpt-4o-2024-08-06",
                     "support-bot@v3", "Duplicate events"]),
])
def test_pdf_text_holds_the_kpis(audience: str, expected: list[str]) -> None:
    text = flat("\n".join(pdf_text(rendered(audience)["report.pdf"])))
    for snippet in expected:
        assert snippet in text


@pytest.mark.parametrize(("audience", "flags"), CASES, ids=IDS)
def test_every_page_has_its_number_and_the_running_header(audience: str, flags: dict) -> None:
    pages = pdf_text(rendered(audience, **flags)["report.pdf"])
    assert pages
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in text
        assert "week of 23 Nov 2026 (2026-W48)" in text
        assert "Agent Performance" in text


@pytest.mark.parametrize(("audience", "flags"), CASES, ids=IDS)
def test_banner_exactly_when_warning(audience: str, flags: dict) -> None:
    first = flat(pdf_text(rendered(audience, **flags)["report.pdf"])[0])
    if flags.get("warning"):
        assert "Data incomplete: 81.4% of expected events" in first
        assert "Wed 25 Nov 02:00 – 08:00 (6 h)" in first
    else:
        assert "incomplete" not in first.lower()


def test_hostile_text_is_printed_as_text() -> None:
    text = flat("\n".join(pdf_text(rendered("engineering", hostile=True)["report.pdf"])))
    # had it been markup, WeasyPrint would have dropped the script and the img
    assert HOSTILE_AGENT in text and HOSTILE_TYPE in text


@pytest.mark.parametrize(("size", "points"), [("A4", (595, 842)), ("Letter", (612, 792))])
def test_page_size_follows_the_setting(size: str, points: tuple[int, int]) -> None:
    files = render_artifacts(make_report("executive", page_size=size), {"pdf"})
    page = PdfReader(io.BytesIO(files["report.pdf"])).pages[0]
    assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == points


def _words(pdf: bytes, tmp_path: Path) -> list[tuple[float, list[tuple[float, float, float, str]]]]:
    """Per page: its width and every word's (xMin, yMin, xMax, text), from poppler's pdftotext -bbox."""
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-bbox", str(path), "-"], capture_output=True, text=True, check=True).stdout
    pages = []
    for page in re.finditer(r'<page width="([\d.]+)" height="[\d.]+">(.*?)</page>', out, re.S):
        words = [(float(x0), float(y0), float(x1), text) for x0, y0, x1, text in re.findall(
            r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="[\d.]+">(.*?)</word>', page.group(2))]
        pages.append((float(page.group(1)), words))
    return pages


def test_nothing_runs_off_the_page_or_overlaps(tmp_path: Path) -> None:
    if shutil.which("pdftotext") is None:
        skip_or_fail("needs poppler's pdftotext (poppler-utils) for word boxes")
    data = make_report("engineering", hostile=True, agents=40, failures=20, warning=True)
    long_id = "agent-" + "x" * 140  # one unbreakable word, wider than any column
    rows = tuple({**row, "agent_id": long_id} if i == 0 else row for i, row in enumerate(data.by_agent))
    examples = tuple({**row, "error_message": "E" * 400, "conversation_id": "c" * 90} for row in data.failure_examples)
    pdf = render_artifacts(replace(data, by_agent=rows, failure_examples=examples), {"pdf"})["report.pdf"]
    pages = _words(pdf, tmp_path)
    assert len(pages) >= 2
    margin = 14 * 72 / 25.4  # the print template's side margins, 14 mm
    for width, words in pages:
        assert words
        for x0, _, x1, text in words:
            assert margin - 1 <= x0 and x1 <= width - margin + 1, (text[:30], x0, x1)
        lines: dict[int, list[tuple[float, float, float, str]]] = {}
        for word in words:
            lines.setdefault(round(word[1]), []).append(word)
        for line in lines.values():
            line.sort()
            for left, right in zip(line, line[1:]):
                assert left[2] <= right[0] + 0.5, (left[3][:30], right[3][:30])


def test_table_headers_repeat_across_pages() -> None:
    pdf = render_artifacts(make_report("engineering", agents=90), {"pdf"})["report.pdf"]
    pages = pdf_text(pdf)
    # pages with rows of the by-agent table (a row starts with the agent; a failure example names one too)
    with_agents = [p for p in pages if re.search(r"(?m)^support-bot@v3-\d+", p)]
    assert len(with_agents) >= 2
    for page in with_agents:
        assert "Agent" in page and "Conversations" in page and "Resolution" in page


def test_a_long_title_wraps_and_the_running_header_is_shortened() -> None:
    """Found in a review: a 160-character title ran off the page and squeezed the header's period."""
    from render_fixtures import ParsedHTML, pdf_text

    files = render_artifacts(make_report("executive", title="X" * 160), {"html", "pdf"})
    first_page = pdf_text(files["report.pdf"])[0]
    assert "X" * 57 + "..." in first_page and "week of 23 Nov 2026 (2026-W48)" in first_page
    (h1,) = ParsedHTML(files["report.html"].decode()).find("h1")
    assert "overflow-wrap:anywhere" in (h1.get("style") or "")


def test_the_executive_pdf_is_one_page_and_no_page_holds_the_footer_alone() -> None:
    """Found in a review: the executive PDF's page 2 held only the 'Generated ...' line."""
    from render_fixtures import pdf_text

    # One page on A4 and on Letter, and on A4 with the incomplete-data banner (found black-box: page 2
    # held only the data quality lines). Letter with the banner may take a second page.
    for flags in ({}, {"warning": True}, {"page_size": "Letter"}):
        assert len(pdf_text(rendered("executive", **flags)["report.pdf"])) == 1, flags
    for audience, flags in (("executive", {"warning": True}), ("engineering", {}), ("engineering", {"warning": True})):
        last = pdf_text(rendered(audience, **flags)["report.pdf"])[-1]
        body = [line for line in last.splitlines() if line.strip() and "Generated" not in line
                and "Page " not in line and "notable" not in line.lower() and "week of" not in line
                and not line.startswith("Agent Performance")]
        assert body, (audience, flags, last)


def test_emoji_and_arabic_in_agent_data_have_glyphs_in_the_pdf(caplog) -> None:
    """Found in a review: an agent named with an emoji became an empty box in the PDF (.notdef glyph).
    Needs a colour emoji font (Debian's fonts-noto-color-emoji, which .ci/run installs)."""
    import logging

    from conftest import skip_or_fail

    if not any(next(Path(d).glob("**/NotoColorEmoji*.ttf"), None) for d in ("/usr/share/fonts", "/usr/local/share/fonts")):
        skip_or_fail("no colour emoji font (apt-get install fonts-noto-color-emoji)")
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        render_artifacts(make_report("engineering", title="Agents 🤖 وكيل الدعم 🙂"), {"pdf"})
    assert ".notdef" not in caplog.text


def test_a_table_split_across_pages_keeps_two_rows_on_each_side() -> None:
    """A new-user audit found one row of a table ("Errors by type") alone on page 2; the print style keeps
    two rows on each side of a page break. Checked for every length of the by-agent table that splits."""
    splits = 0
    for agents in range(22, 30):
        pages = pdf_text(render_artifacts(make_report("engineering", agents=agents), {"pdf"})["report.pdf"])
        # a by-agent row starts with the fixture's agent name (base-number) and its conversations
        counts = [len(re.findall(r"(?m)^\S+-\d+ [\d,]+$", page)) for page in pages]
        shown = [n for n in counts if n]
        if len(shown) > 1:
            splits += 1
            assert min(shown[0], shown[-1]) >= 2, (agents, counts)
    assert splits >= 3  # the rule was tested, not only passed by tables that fit on one page


@pytest.fixture(scope="module")
def demo_reports(tmp_path_factory) -> dict[str, object]:
    """The ReportData of `agentdigest demo`'s two reports for 2026-W47, from its synthetic events as made on
    29 Nov 2026 (seeded: the same events each time), computed as `agentdigest run` computes them."""
    from datetime import datetime, timezone

    from agentdigest.config import load_config
    from agentdigest.demo import setup
    from agentdigest.periods import parse_period
    from agentdigest.runner import compute
    from agentdigest.sources import open_source

    now = datetime(2026, 11, 29, 8, 2, tzinfo=timezone.utc)
    config = load_config(setup(tmp_path_factory.mktemp("demo"), now=now))
    source = open_source(config.source, config.path)
    try:
        return {r.id: compute(source, config, r, parse_period(r.period, "2026-W47", r.timezone), now)
                for r in config.reports}
    finally:
        source.close()


@pytest.mark.parametrize(("report_id", "size", "pages"), [
    ("weekly-exec", "A4", 1),
    ("weekly-exec", "Letter", 1),
    ("weekly-engineering", "A4", 2),
    # Was 3: Letter is 17.6 mm shorter than A4, and two rows of the quality table and the footer went
    # to a page of their own.
    ("weekly-engineering", "Letter", 2),
])
def test_the_demo_reports_take_as_many_pages_on_letter_as_on_a4(demo_reports, report_id: str, size: str,
                                                                 pages: int) -> None:
    data = demo_reports[report_id]
    data = replace(data, settings={**data.settings, "page_size": size})
    pdf = render_artifacts(data, {"pdf"})["report.pdf"]
    assert len(PdfReader(io.BytesIO(pdf)).pages) == pages


@pytest.mark.parametrize(("size", "agents"), [("Letter", 12), ("Letter", 24), ("A4", 24)])
def test_many_agents_with_long_names_paginate_whole_rows_under_their_header(size: str, agents: int) -> None:
    """Each by-agent row (a name wrapped on two lines, values with their changes below them) stays on one
    page, every page with such rows repeats the header, and long error types take whole rows too."""
    data = make_report("engineering", page_size=size, agents=agents, failures=8, warning=True)
    types = [f"{kind}_upstream_gateway_connection_pool_exhausted_{i}" for i, kind in enumerate(
        ("tool_timeout", "rate_limited", "schema_validation", "upstream_5xx", "auth_expired", "json_decode"))]
    data = replace(data, errors_by_type=tuple({"error_type": t, "count": 60 - i, "previous": 30} for i, t in enumerate(types)),
                   by_agent=tuple({**row, "agent_id": f"{row['agent_id']}-customer-support-eu-west"} for row in data.by_agent))
    pages = pdf_text(render_artifacts(data, {"pdf"})["report.pdf"])
    header = "Agent Conversations Resolution Error rate p95 latency Cost"
    for i in range(agents):
        # the name (one or two lines), conversations and their change, resolution and its change: one row
        row = re.compile(rf"-{i}-customer-[\w-]*\n(?:[\w-]+\n)?[\d,]+\n\S+\n[\d.]+%\n\S+ pp\n")
        holding = [page for page in pages if row.search(page)]
        assert len(holding) == 1, (i, [p.count(f"-{i}-customer-") for p in pages])
        assert header in holding[0], i
    for page in pages:
        if "Error type Count Previous Change" in page:
            assert re.search(r"(?m)^\S+_upstream_gateway_", page)


def test_characters_no_font_draws_are_one_warning_not_one_per_glyph(caplog) -> None:
    """Found in a rendering check: a Japanese report on a machine without a CJK font wrote 70 WeasyPrint
    warning lines (one per glyph drawn) above the run's output. Now one warning names the characters."""
    import logging

    from agentdigest.render.pdf import render_pdf

    # U+E000 and U+E001 are private-use code points: no font draws them, on any machine
    text = "\ue000\ue001\ue000 " * 20
    with caplog.at_level(logging.WARNING):
        pdf = render_pdf(f'<html lang="en"><body><p>{text}</p><p>{text}</p></body></html>')
    assert pdf.startswith(b"%PDF")
    assert not [r for r in caplog.records if r.name.startswith("weasyprint")], caplog.text
    ours = [r.getMessage() for r in caplog.records if r.name == "agentdigest.render"]
    assert len(ours) == 1 and "no installed font draws \ue000, \ue001 (2 characters)" in ours[0], ours
    assert "fonts-noto-cjk" in ours[0]


def test_a_missing_harfbuzz_subset_is_one_warning_a_process_not_one_per_font(caplog, monkeypatch) -> None:
    """Found in a minimal-install check: on Debian with the README's Pango packages but not libharfbuzz-subset0,
    `agentdigest demo` printed WeasyPrint's "Using fontTools instead of HarfBuzz-Subset" five times (once per
    font of each PDF) above its output. Now one warning a process names the package; the PDF is whole."""
    import logging

    import weasyprint.pdf.fonts

    from agentdigest.render import pdf as pdf_module

    monkeypatch.setattr(weasyprint.pdf.fonts, "harfbuzz_subset", None)  # the library missing, on every machine
    monkeypatch.setattr(pdf_module, "_said_no_subset", False)
    html = "<html><body><p>Conversations</p><p style='font-family: monospace'>p95 3,537 ms</p></body></html>"
    with caplog.at_level(logging.WARNING):
        pdfs = [pdf_module.render_pdf(html) for _ in range(2)]
    assert all(p.startswith(b"%PDF") for p in pdfs)
    assert "Conversations" in PdfReader(io.BytesIO(pdfs[1])).pages[0].extract_text()
    assert not [r for r in caplog.records if r.name.startswith("weasyprint")], caplog.text
    ours = [r.getMessage() for r in caplog.records if "HarfBuzz-Subset" in r.getMessage()]
    assert len(ours) == 1 and "libharfbuzz-subset0" in ours[0], ours


def _resumed(kind: str, page_size: str, at: int = 4, warning: bool = False):
    """make_report's executive week (or its trend as months, September 2026 its fifth) with its fifth trend row
    (or row ``at``) one the data resumed partway through after the one before, without conversations: marked
    "(data resumed)"; with ``warning`` (incomplete data) the last row is marked incomplete too."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Europe/Berlin")
    data = make_report("executive", page_size=page_size, warning=warning)
    trend = list(data.trend)
    if kind == "month":
        # the row ``at`` is September 2026, the widest English month
        trend = [{**row, "start": datetime(2026, 9 - at + i, 1, tzinfo=tz).isoformat(),
                  "end": datetime(2026 + (9 - at + i) // 12, (9 - at + i) % 12 + 1, 1, tzinfo=tz).isoformat()}
                 for i, row in enumerate(trend)]
    else:  # the widest English week: across two months
        trend[at] = {**trend[at], "start": datetime(2026, 9, 28, tzinfo=tz).isoformat(),
                     "end": datetime(2026, 10, 5, tzinfo=tz).isoformat()}
    trend[at - 1] = {**trend[at - 1], "conversations": 0}
    trend[at] = {**trend[at], "data_from": trend[at]["start"].replace("T00", "T10"), "partial": True}
    return replace(data, trend=tuple(trend), period_kind=kind)


@pytest.mark.parametrize("page_size", ["A4", "Letter"])
@pytest.mark.parametrize(("kind", "period"), [("week", ["28", "Sep", "–", "4", "Oct"]), ("month", ["September", "2026"])])
def test_a_trend_row_the_data_resumed_in_keeps_its_mark_on_one_line(tmp_path: Path, kind, period, page_size) -> None:
    """Found in a rendering review: the PDF's trend table broke "2 – 8 Nov (data resumed)" after "(data", the
    row two lines tall. The period's column is wide enough for the widest English period with its mark
    ("September 2026 (data resumed)"), and the mark itself never breaks."""
    if shutil.which("pdftotext") is None:
        skip_or_fail("needs poppler's pdftotext (poppler-utils) for word boxes")
    pdf = render_artifacts(_resumed(kind, page_size), {"pdf"})["report.pdf"]
    assert "(data resumed)" in flat(" ".join(pdf_text(pdf)).replace("\u00a0", " "))
    ((_, words),) = _words(pdf, tmp_path)
    texts = [w[3] for w in words]
    at = next(i for i in range(len(texts)) if texts[i:i + len(period) + 2] == [*period, "(data", "resumed)"])
    row = words[at:at + len(period) + 2]
    assert len({round(w[1]) for w in row}) == 1, row  # one line
    figure = words[at + len(period) + 2]  # the row's conversations, right of the period
    assert round(figure[1]) == round(row[0][1]) and row[-1][2] < figure[0], (row, figure)


@pytest.mark.parametrize("page_size", ["A4", "Letter"])
@pytest.mark.parametrize(("kind", "period"), [("week", ["28", "Sep", "–", "4", "Oct"]), ("month", ["September", "2026"])])
def test_a_trend_row_with_both_marks_keeps_them_on_one_line(tmp_path: Path, kind, period, page_size) -> None:
    """Found in a rendering review: the current period, one the data resumed in partway and incomplete too,
    read "September 2026 (data resumed)" with "(incomplete)" on a second line (the column is 28% wide, made for
    the one mark). The incomplete period is now marked "*", and a line under the table says what it means, as
    report.txt has done; "(incomplete)" is nowhere in the table."""
    if shutil.which("pdftotext") is None:
        skip_or_fail("needs poppler's pdftotext (poppler-utils) for word boxes")
    pdf = render_artifacts(_resumed(kind, page_size, at=7, warning=True), {"pdf"})["report.pdf"]
    pages = _words(pdf, tmp_path)
    words = [w for _, page in pages for w in page]
    texts = [w[3] for w in words]
    mark = [*period, "(data", "resumed)", "*"]
    at = next(i for i in range(len(texts)) if texts[i:i + len(mark)] == mark)
    row = words[at:at + len(mark)]
    assert len({round(w[1]) for w in row}) == 1, row  # one line
    # the row's figures beside it, right of the period (poppler may read them before the period's words)
    beside = sorted(w for w in words if round(w[1]) == round(row[0][1]) and w[0] > row[-1][2])
    assert [w[3] for w in beside][:1] == ["2,480"], (row, beside)
    after = " ".join(texts[at:])
    assert "(incomplete)" not in after.split("Data quality")[0]
    assert "* incomplete: see the warning at the top" in after


def _structure(pdf: bytes) -> tuple[dict, list[tuple[str, str | None]]]:
    """The PDF's catalog and every element of its structure tree as (role, alt text), in order."""
    reader = PdfReader(io.BytesIO(pdf))
    root = reader.trailer["/Root"]
    out: list[tuple[str, str | None]] = []

    def walk(node) -> None:
        node = node.get_object() if hasattr(node, "get_object") else node
        if isinstance(node, dict):
            if "/S" in node:
                out.append((str(node["/S"]), str(node["/Alt"]) if "/Alt" in node else None))
            if "/K" in node:
                walk(node["/K"])
        elif isinstance(node, list):
            for child in node:
                walk(child)

    if "/StructTreeRoot" in root:
        walk(root["/StructTreeRoot"])
    return root, out


@pytest.mark.parametrize("audience", ["executive", "engineering"])
def test_the_pdf_is_tagged_for_screen_readers_with_its_charts_alt_texts(audience: str) -> None:
    """Found in an accessibility review: the PDF was untagged (pdfinfo "Tagged: no"), so a screen reader met
    a run of text: no headings, no table with its header cells, and none of the charts' alt texts, which the
    email carries (the sparklines' "Conversations over the last 8 weeks: from 1,840 ..."). Now tagged
    (WeasyPrint's pdf_tags): its language, headings, tables with TH cells, and each chart a Figure with its alt."""
    from agentdigest.render.context import build_context
    from agentdigest.render.limits import PRINT_LIMITS

    data = make_report(audience)
    pdf = render_artifacts(data, {"pdf"})["report.pdf"]
    root, elements = _structure(pdf)
    assert bool(root.get("/MarkInfo", {}).get("/Marked")) and root.get("/Lang") == "en"
    roles = [role for role, _ in elements]
    assert "/H1" in roles and "/H2" in roles and "/Table" in roles and "/TH" in roles
    _, charts = build_context(data, PRINT_LIMITS)
    assert [alt for role, alt in elements if role == "/Figure"] == [c.alt for c in charts]


def test_a_print_template_without_lang_is_one_clear_warning(caplog) -> None:
    """Tagging the PDF made WeasyPrint log an ERROR for a custom print template whose <html> has no lang
    ("Missing required "lang" attribute at the root of the document"), naming neither the template nor the fix."""
    import logging

    from agentdigest.render.pdf import render_pdf

    with caplog.at_level(logging.WARNING):
        pdf = render_pdf("<html><body><h1>Report</h1></body></html>")
    assert pdf.startswith(b"%PDF")
    assert not [r for r in caplog.records if r.name.startswith("weasyprint")], caplog.text
    ours = [r.getMessage() for r in caplog.records if r.name == "agentdigest.render"]
    assert ours == ['report.pdf: the print template\'s <html> has no lang attribute, so a screen reader must guess '
                    'the language of the PDF; write <html lang="{{ lang }}"> as the built-in one does'], ours
