"""The email's HTML against Gmail's clipping limit (about 102 KB of HTML as sent), measured on the wire."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta

from agentdigest.render import render_artifacts
from render_fixtures import ParsedHTML, make_report, parse_eml

GMAIL_CLIP = 102 * 1024


def html_on_the_wire(raw: bytes) -> tuple[int, str]:
    """(bytes of the text/html part's body exactly as in the message, its decoded text)."""
    head = raw.index(b"Content-Type: text/html")
    body = raw.index(b"\r\n\r\n", head) + 4
    end = raw.index(b"\r\n--", body)
    return end - body, parse_eml(raw).get_body(("html",)).get_content()


def a_month(data):
    """``data`` as a 31-day month: the day-by-day table then has 31 rows."""
    start = date(2026, 10, 1)
    days = tuple({**data.daily[i % 7], "date": (start + timedelta(days=i)).isoformat()} for i in range(31))
    return replace(data, daily=days, period_kind="month")


def test_a_japanese_month_report_fits_with_its_quality_section_and_footer() -> None:
    """Found in an email audit: halving the tables three times left this report at 109 KB on the wire (each
    Japanese character is nine bytes quoted-printable, and a month has 31 day rows), so Gmail clipped it and
    its data quality section and footer were behind "View entire message"."""
    data = make_report("engineering", agents=80, failures=50, warning=True, locale="ja")
    agents = tuple({**row, "agent_id": "カスタマーサポート担当エージェント" * 4 + str(i)} for i, row in enumerate(data.by_agent))
    errors = tuple({"error_type": "外部サービスの応答エラー" * 5 + str(i), "count": 300 - i, "previous": i} for i in range(60))
    models = tuple({**data.by_model[0], "model": "モデル名前" * 12 + str(i)} for i in range(20))
    examples = tuple({**row, "agent_id": agents[i]["agent_id"], "error_type": errors[i]["error_type"],
                      "error_message": "ツールの呼び出しがタイムアウトしました。" * 30}
                     for i, row in enumerate(data.failure_examples))
    data = a_month(replace(data, by_agent=agents, by_model=models, errors_by_type=errors, failure_examples=examples,
                           title="エージェントのパフォーマンス" * 8))
    size, html = html_on_the_wire(render_artifacts(data, {"eml"})["message.eml"])
    assert size < GMAIL_CLIP
    text = ParsedHTML(html).text
    assert "Data quality" in text and "Generated" in text and "Data incomplete" in text
    assert "Day by day" in text and "more agents" in text  # the chart stays; the tables say what they left out


def test_the_email_keeps_table_rows_before_failure_examples() -> None:
    """Found in an email audit: to fit a 40-agent report with 50 long failure messages, every table was cut to
    3 rows while 12 failure examples stayed; the examples go first (the text part and the PDF keep them)."""
    data = make_report("engineering", agents=40, failures=50)
    models = tuple({**data.by_model[0], "model": f"provider/model-{i}-2026-11-01-preview"} for i in range(20))
    errors = tuple({"error_type": f"upstream.gateway.timeout_{i}", "count": 100 - i, "previous": 50} for i in range(20))
    examples = tuple({**row, "error_message": "Tool 'crm.lookup' timed out: ツールの呼び出しがタイムアウトしました。" * 8}
                     for row in data.failure_examples)
    files = render_artifacts(replace(data, by_model=models, errors_by_type=errors, failure_examples=examples),
                             {"eml", "txt"})
    size, html = html_on_the_wire(files["message.eml"])
    text = ParsedHTML(html).text
    assert size < GMAIL_CLIP
    shown = {what: int(n) for n, what in re.findall(r"and (\d+) more (agents|models|error types)", text)}
    assert shown == {"agents": 40 - 7, "models": 20 - 5, "error types": 20 - 5}
    assert text.count("conv-09") == 5
    assert files["report.txt"].decode().count("conv-09") == 50  # the text part has every example


def test_table_rows_have_headers_and_the_30_agent_email_keeps_room_to_spare() -> None:
    """Each table row's first cell is its header (<th scope="row">), so a screen reader names the row with each
    figure. A first try took the 30-agent engineering email (99,552 bytes on the wire, 448 under the 100,000
    allowed) over, and its failure examples were cut; the inlined styles are slimmer now (the CSS without
    comments or needless spaces, "#fff", a row's cells top-aligned by its valign rather than each by its own
    style), and the email keeps every row and example with 2,000 bytes to spare."""
    from agentdigest import render

    data = make_report("engineering", agents=30)
    size, html = html_on_the_wire(render_artifacts(data, {"eml"})["message.eml"])
    assert size <= render.MAX_HTML_BYTES - 2000 and render.wire_size(html) <= render.MAX_HTML_BYTES - 2000, size
    text = ParsedHTML(html).text
    assert text.count("conv-09") == 5 and "and 15 more agents" in text  # nothing shortened
    tables = re.findall(r'<table class="data[^"]*"[^>]*>(.*?)</table>', html, re.S)  # not the layout's
    assert len(tables) >= 5
    bodies = [re.search(r"<tbody>(.*?)</tbody>", table, re.S).group(1) for table in tables]
    rows = [row for body in bodies for row in re.findall(r"<tr\b[^>]*>(.*?)</tr>", body, re.S)]
    assert len(rows) >= 40
    for body in bodies:
        for tr in re.findall(r"<tr\b[^>]*>", body):
            assert 'valign="top"' in tr, tr
    for row in rows:
        cells = re.findall(r"<(t[dh])\b([^>]*)>", row)
        assert cells[0][0] == "th" and 'scope="row"' in cells[0][1], row[:200]
        assert "text-align:left" in cells[0][1] and "font-weight:400" in cells[0][1], row[:200]  # as a cell looks
        assert all(tag == "td" for tag, _ in cells[1:]), row[:200]
