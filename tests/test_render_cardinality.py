"""Reports of a large programme: thousands of agents, hundreds of models and error types.

Found in a cardinality audit (3,000 agents with 300-character ids, 400 models, 300 error types, CJK, Arabic
and emoji names, 5,000-character messages with markup): every format held its limits, but a few things read
badly at that size. The expected figures here are worked out by hand from the fixture's sizes.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from agentdigest.render import render_artifacts
from render_fixtures import ParsedHTML, make_report, parse_eml, pdf_text


def many(audience: str = "engineering", *, agents: int = 1234, types: int = 1234, locale: str = "en"):
    """A week with ``agents`` agents and ``types`` error types (short names: only the counts matter here)."""
    data = make_report(audience, locale=locale)
    rows = tuple({**data.by_agent[0], "agent_id": f"agent-{i}", "conversations": 5000 - i} for i in range(agents))
    errors = tuple({"error_type": f"error_{i}", "count": 5000 - i, "previous": 5000 - i} for i in range(types))
    return replace(data, by_agent=rows, errors_by_type=errors)


@pytest.mark.parametrize("locale, agents_left, types_left, pdf_agents_left, of_all", [
    # the text part shows 15 agents and 10 error types, the PDF 100 agents (of 1,234)
    ("en", "1,219", "1,224", "1,134", "the attached PDF lists the first 100 of 1,234"),
    ("de", "1.219", "1.224", "1.134", "the attached PDF lists the first 100 of 1.234"),
])
def test_the_more_line_writes_its_count_as_the_report_writes_numbers(locale, agents_left, types_left,
                                                                      pdf_agents_left, of_all) -> None:
    """Found in a cardinality audit: "and 2993 more agents (the attached PDF lists the first 100 of 3,000)" and
    Slack's "…and 292 more": the count of rows left out was the one figure written without grouping."""
    files = render_artifacts(many(locale=locale), {"html", "txt", "pdf", "slack"})
    html = " ".join(ParsedHTML(files["report.html"].decode()).text.split())
    text = " ".join(files["report.txt"].decode().split())
    pdf = " ".join(" ".join(pdf_text(files["report.pdf"])).split())
    assert f"and {agents_left} more agents ({of_all})" in text, text[-3000:]
    assert f"and {types_left} more error types" in text
    # the email shows 15, 7 or 3 agents and 10, 5 or 3 error types, as it must shrink to fit Gmail's limit
    sep = "," if locale == "en" else "."
    left = {f"{1234 - k:,}".replace(",", sep) for k in (15, 10, 7, 5, 3)}
    shown = re.findall(r"and (\S+) more (agents|error types) \(the attached PDF lists (the first \S+ of \S+)\)", html)
    assert len(shown) == 2 and all(n in left and where[-5:] == "1" + sep + "234" for n, _, where in shown), shown
    assert f"and {pdf_agents_left} more agents" in pdf
    slack = json.loads(files["slack.json"])
    errors = next(b["text"]["text"] for b in slack["blocks"] if "error_0 " in b.get("text", {}).get("text", ""))
    # Slack lists 8 error types
    assert errors.endswith(f"…and {'1,226' if locale == 'en' else '1.226'} more"), errors


def test_many_agents_with_long_ids_are_named_readably_in_the_text_part() -> None:
    """Found in a cardinality audit: 3,000 agents whose 300-character ids differ only in a number after a
    long shared prefix got a 16-cell name column, just wide enough not to be given lines of their own, and
    read "prod-e…00…a…bc", "prod-e…05…a…bc": no engineer could tell which agent a row was."""
    from agentdigest.render.text import WIDTH, table

    ids = [f"prod-eu-west-1-customer-support-{i:04d}-" + "abcdefghij" * 30 for i in range(15)]
    rows = [{"agent": a, "n": "2,999", "r": "60.0%", "rc": "+10.0 pp", "e": "5.0%", "ec": "+2.0 pp",
             "p": "2.04 s", "pc": "+2.2%"} for a in ids]
    lines = table([("Agent", "agent", False), ("Conv.", "n", True), ("Resol.", "r", True), ("Chg", "rc", True),
                   ("Err. rate", "e", True), ("Chg", "ec", True), ("p95", "p", True), ("Chg", "pc", True)], rows)
    body = "\n".join(lines)
    assert all(len(line) <= WIDTH for line in lines), body
    for i in range(15):  # the number that tells the agents apart, whole, after the shared name's start
        assert sum(f"prod-eu-west-1-customer-support-{i:04d}" in line for line in lines) == 1, body
    figures = [line for line in lines[2:] if "60.0%" in line]
    assert len(figures) == 15 and len({len(line) for line in figures}) == 1, body


def test_names_a_middle_cut_keeps_apart_stay_on_their_rows() -> None:
    """The rule above is for names only a cut in several places could tell apart: names that a single cut
    keeps apart stay in their column, one line a row, as before."""
    from agentdigest.render.text import table

    ids = [f"agent-{i}-" + "x" * 30 + f"-{i:03d}" for i in range(5)]
    rows = [{"agent": a, "n": "2,999", "r": "60.0%", "rc": "+10.0 pp", "e": "5.0%", "ec": "+2.0 pp",
             "p": "2.04 s", "pc": "+2.2%"} for a in ids]
    lines = table([("Agent", "agent", False), ("Conv.", "n", True), ("Resol.", "r", True), ("Chg", "rc", True),
                   ("Err. rate", "e", True), ("Chg", "ec", True), ("p95", "p", True), ("Chg", "pc", True)], rows)
    assert len(lines) == 2 + len(ids), "\n".join(lines)
    assert [re.search(r"-(\d{3})\s", line).group(1) for line in lines[2:]] == [f"{i:03d}" for i in range(5)]


def test_the_email_says_what_a_table_left_out_outside_its_sideways_scroll() -> None:
    """Found in a cardinality audit (screenshots at 320 px): the "and 2,993 more agents (the attached PDF lists
    the first 100 of 3,000)" line was a row of the table that scrolls sideways on a phone, so it was cut at the
    screen's edge with the table; it is a line under the table, as wide as the page. The PDF keeps its row."""
    from html.parser import HTMLParser

    class Where(HTMLParser):
        """The text of elements of class "more", and whether each lies inside a "scroll-x" box."""

        def __init__(self) -> None:
            super().__init__()
            self.stack: list[str] = []
            self.found: list[tuple[bool, str]] = []

        def handle_starttag(self, tag, attrs):
            if tag in ("br", "wbr", "img", "meta", "col"):
                return
            self.stack.append(dict(attrs).get("class") or "")

        def handle_endtag(self, tag):
            if tag not in ("br", "wbr", "img", "meta", "col") and self.stack:
                self.stack.pop()

        def handle_data(self, data):
            if self.stack and "more" in self.stack[-1].split():
                self.found.append((any("scroll-x" in c.split() for c in self.stack), data))

    files = render_artifacts(many(), {"html", "eml"})
    for html in (files["report.html"].decode(), parse_eml(files["message.eml"]).get_body(("html",)).get_content()):
        where = Where()
        where.feed(html)
        texts = [text for _, text in where.found]
        assert any("more agents" in t for t in texts) and any("more error types" in t for t in texts), texts
        assert not any(inside for inside, _ in where.found), where.found
