"""report.txt: readable on its own, within 78 columns, banner first when the data is incomplete."""

from __future__ import annotations

import pytest
from rich.cells import cell_len

from render_fixtures import HOSTILE_AGENT, HOSTILE_TYPE, rendered

CASES = [
    ("executive", {}), ("engineering", {}),
    ("executive", {"warning": True, "hostile": True, "pii": True}),
    ("engineering", {"warning": True, "hostile": True, "pii": True}),
    ("engineering", {"zero": True}), ("executive", {"missing": True, "nulls": True, "human_cost": None}),
    ("engineering", {"missing": True, "nulls": True, "warning": True}),
    # a reader audit: the title line was not wrapped (134 characters), and a Japanese report's wrapped lines
    # ran to 84 cells (textwrap counts characters; a CJK character takes two cells)
    ("engineering", {"title": "Agent Performance — Engineering deep-dive for the customer-support platform team, "
                              "EMEA region, all production deployments and canaries"}),
    ("executive", {"locale": "ja", "title": "エージェント性能レポート・カスタマーサポート部門・全リージョン・本番環境と検証環境を含む週次の総合報告書です"}),
]
IDS = [f"{a}-{'-'.join(flags) or 'plain'}" for a, flags in CASES]


def text(audience: str, **flags: object) -> str:
    return rendered(audience, **flags)["report.txt"].decode()


@pytest.mark.parametrize(("audience", "flags"), CASES, ids=IDS)
def test_lines_fit_and_nothing_is_markup(audience: str, flags: dict) -> None:
    body = text(audience, **flags)
    assert body.endswith("\n") and "\r" not in body
    assert all(cell_len(line) <= 78 for line in body.splitlines()), max(body.splitlines(), key=cell_len)
    assert "&lt;" not in body and "&amp;" not in body  # plain text is not HTML-escaped


@pytest.mark.parametrize(("audience", "flags"), CASES, ids=IDS)
def test_banner_exactly_when_warning(audience: str, flags: dict) -> None:
    lines = text(audience, **flags).splitlines()
    if flags.get("warning"):
        assert lines[3].startswith("!!!!") and lines[4] == "!! DATA INCOMPLETE: 81.4% of expected events"
        assert "Wed 25 Nov 02:00 – 08:00 (6 h)" in " ".join(lines[4:12])
    else:
        assert not any("INCOMPLETE" in line.upper() for line in lines)


@pytest.mark.parametrize(("audience", "expected"), [
    ("executive", ["HEADLINE FIGURES", "Conversations", "2,480", "▲ +12% [notable]", "Resolution rate",
                   "61.0%", "ESTIMATED SAVINGS", "$9,739", "LAST 8 WEEKS", "5\u2009–\u200911 Oct"]),
    ("engineering", ["LATENCY", "p99 latency", "3.69 s", "DAY BY DAY", "Mon 23 Nov", "ERRORS BY TYPE",
                     "tool_timeout", "+84%", "TOKENS BY MODEL", "BY AGENT", "RECENT FAILURES", "DATA QUALITY",
                     "Duplicate events (counted once):"]),
])
def test_sections(audience: str, expected: list[str]) -> None:
    body = text(audience)
    for snippet in expected:
        assert snippet in body


def test_hostile_text_is_shown_verbatim_as_plain_text() -> None:
    body = text("engineering", hostile=True)
    assert HOSTILE_AGENT in body and HOSTILE_TYPE in body


def test_zero_conversations_and_missing_values() -> None:
    assert "No conversations this week, against 2,210 the week before." in text("engineering", zero=True)
    body = text("executive", missing=True, nulls=True, human_cost=None)
    assert "Set human_cost_per_conversation" in body
    assert "Notes: The events have no cost_usd column: agent cost is not shown. The events have no" in " ".join(body.split())
    assert "Left out:" not in body


def test_the_executive_report_counts_invalid_data_too() -> None:
    """DESIGN.md: every report's quality section has the invalid-data counts, not only completeness."""
    from render_fixtures import readable

    files = rendered("executive")
    expected = ("Invalid data: 12 duplicate events (counted once), 2 rows missing a required field, "
                "1 invalid latency value, 1 invalid token count, 3 unknown event types.")
    assert "0 hourly gaps." in " ".join(text("executive").split())
    bodies = readable(files)
    for name in ("report.txt", "report.html", "report.pdf", "message.eml text/html", "message.eml text/plain"):
        assert expected in " ".join(bodies[name].split()), name
    warned = " ".join(text("executive", warning=True).split())
    assert "2 hourly gaps." in warned


def test_columns_whose_data_the_source_lacks_are_left_out() -> None:
    """Found in a review: without cost_usd every trend and daily row showed a Cost column of n/a."""
    from render_fixtures import ParsedHTML, pdf_text

    for audience in ("executive", "engineering"):
        plain = rendered(audience)
        missing = rendered(audience, missing=True)
        assert "Cost" in plain["report.txt"].decode()
        for body in (missing["report.txt"].decode(), ParsedHTML(missing["report.html"].decode()).text,
                     "\n".join(pdf_text(missing["report.pdf"]))):
            headers = [line for line in body.splitlines() if "Conversations" in line or "Conv." in line]
            assert headers and not any("Cost" in line or "Tokens" in line for line in headers), headers
        import re

        assert re.search(r">Cost</th>", plain["report.html"].decode())
        assert not re.search(r">(Cost|Tokens)</th>", missing["report.html"].decode())


def test_table_cells_keep_their_columns_in_any_script():
    """Found in a rendering audit: after an Arabic or Hebrew name the bidi algorithm pulled the numbers into
    the right-to-left run, so mail clients showed the row backwards; CJK and emoji names (two cells each)
    pushed the columns right; and names cut at the end all read the same."""
    from rich.cells import cell_len

    from agentdigest.render.text import table

    long = "customer-support-assistant-production-eu-west-1" + "x" * 40
    rows = [{"name": "وكيل-الفواتير", "n": "28"}, {"name": "客服助手", "n": "5"},
            {"name": long + "-v1", "n": "7"}, {"name": long + "-v2", "n": "8"}]
    lines = table([("Agent", "name", False), ("Events", "n", True)], rows)
    visible = [line.replace("\u2068", "").replace("\u2069", "").replace("\u200e", "") for line in lines]
    assert len({cell_len(line) for line in visible}) == 1, visible  # every row as wide as the heading
    arabic = lines[2]
    assert arabic.startswith("\u200e") and "\u2068وكيل-الفواتير\u2069" in arabic and arabic.endswith("28")
    assert "\u2068" not in lines[3]  # no marks where no right-to-left text is
    assert lines[4].rstrip().endswith("7") and lines[5].rstrip().endswith("8")
    assert lines[4].split()[0] != lines[5].split()[0] and lines[4].split()[0].endswith("-v1")


def test_names_cut_to_the_same_cells_show_where_they_part():
    """The text part's narrow name column cut ``customer-support-us-east-1-prod`` and ``...-eu-west-1-prod``
    to the same label (a known gap of a rendering audit); wide (CJK) characters count two cells."""
    from rich.cells import cell_len

    from agentdigest.render.text import table

    rows = [{"name": f"customer-support-{region}-production-assistant", "n": str(i), "m": "1,234,567", "o": "99.9%"}
            for i, region in enumerate(("us-east-1", "eu-west-1", "客服-西部"))]
    lines = table([("Agent", "name", False)] + [(h, k, True) for h, k in (("N", "n"), ("Tokens", "m"), ("Rate", "o"))]
                  + [(f"Wide {i}", "m", True) for i in range(3)], rows)
    firsts = [line.split()[0] for line in lines[2:]]
    assert len(set(firsts)) == 3, firsts
    assert "us-east" in firsts[0] and "eu-west" in firsts[1] and "客服" in firsts[2]
    visible = [line.replace("\u200e", "") for line in lines]
    assert len({cell_len(line) for line in visible}) == 1, visible


@pytest.mark.parametrize("audience", ["executive", "engineering"])
def test_completeness_over_110_percent_is_explained_in_every_audience(audience):
    """Found in a new-user audit: the engineering report's quality table read 144.9% with no word on it,
    while the executive summary said why; the reader review had found 262.4% unexplained before that."""
    from dataclasses import replace

    from agentdigest.render import render_artifacts
    from render_fixtures import make_report, readable

    data = make_report(audience)
    data = replace(data, quality=replace(data.quality, completeness_pct=144.9, received_events=43_043))
    texts = readable(render_artifacts(data, formats={"txt", "html", "pdf"}))
    for name in ("report.txt", "report.html", "report.pdf"):
        flat = " ".join(texts[name].split())
        assert "144.9%" in flat and "more events than the baseline" in flat, (name, flat[-1500:])
    normal = readable(render_artifacts(make_report(audience), formats={"txt"}))["report.txt"]
    assert "more events than the baseline" not in normal


def test_the_model_table_is_not_named_for_tokens_it_lacks() -> None:
    """Found in a reader audit: events without a token_count column got a "Tokens by model" table with no
    tokens column, in the text, the email and the PDF."""
    from dataclasses import replace

    from agentdigest.render import render_artifacts
    from render_fixtures import ParsedHTML, make_report, pdf_text

    report = make_report("engineering")
    metrics = {k: v for k, v in report.metrics.items() if k not in ("total_tokens", "tokens_per_conversation")}
    for data, title in ((report, "Tokens by model"), (replace(report, metrics=metrics), "By model")):
        files = render_artifacts(data, {"txt", "html", "pdf"})
        for shown in (files["report.txt"].decode(), ParsedHTML(files["report.html"].decode()).text,
                      "\n".join(pdf_text(files["report.pdf"]))):
            assert ("Tokens by model" in shown or "TOKENS BY MODEL" in shown) == (title == "Tokens by model")
            assert title in shown or title.upper() in shown


def test_one_conversation_and_one_event_are_singular() -> None:
    """Found in a rendering audit: "1 conversations this week" and "1 events received"."""
    from dataclasses import replace

    from agentdigest.render import render_artifacts
    from render_fixtures import ParsedHTML, make_report, metric

    data = make_report("executive")
    data = replace(data, metrics={**data.metrics, "conversations": metric("conversations", 1, 2)},
                   quality=replace(data.quality, received_events=1))
    out = render_artifacts(data, formats={"txt", "html"})
    body, page = " ".join(out["report.txt"].decode().split()), " ".join(ParsedHTML(out["report.html"].decode()).text.split())
    for shown in (body, page):
        assert "1 conversation this week" in shown and "1 conversations" not in shown
    assert "(1 event received," in body and "1 events" not in body
    two = " ".join(rendered("executive")["report.txt"].decode().split())
    assert " conversations this week" in two and "(1 event received" not in two


def test_a_name_column_too_narrow_to_read_gets_lines_of_its_own():
    """Found in a rendering audit of 150 agents: the by-agent table's seven figure columns left the agent
    names 9 cells, "e…-000@…3", "Suppo…001", "…t 2 💳…": no engineer could tell which agent a row was."""
    from agentdigest.render.text import WIDTH, table

    names = [f"enterprise-customer-success-escalation-handler-premium-{n:03d}@2026.11.3" for n in range(3)]
    names += ["🤖 billing-bot 2 💳🧾", "short"]
    rows = [{"agent": a, "n": "1,234", "r": "58.0%", "rc": "-13.7 pp", "e": "23.0%", "ec": "no change",
             "p": "18.41 s", "pc": "+0.1%"} for a in names]
    lines = table([("Agent", "agent", False), ("Conv.", "n", True), ("Resol.", "r", True), ("Chg", "rc", True),
                   ("Err. rate", "e", True), ("Chg", "ec", True), ("p95", "p", True), ("Chg", "pc", True)], rows)
    body = "\n".join(lines)
    for name in names:  # whole, on a line of its own
        assert any(line.strip() == name for line in lines), (name, body)
    assert all(cell_len(line) <= WIDTH for line in lines), body
    figures = [line for line in lines[2:] if "58.0%" in line]
    assert len(figures) == len(names) and len({len(line) for line in figures}) == 1, body
    narrow = table([("Agent", "agent", False), ("Conv.", "n", True)], rows)  # room enough: one line a row
    assert len(narrow) == 2 + len(rows)


def test_a_label_cut_before_is_cut_again_without_a_double_ellipsis():
    """Found in a rendering audit: error types cut to 60 characters for the email were cut again for the
    text part's column and read "invalid to…… 2 with schema mismatch", 35 of the column's 51 cells."""
    from agentdigest.render.clipping import names
    from agentdigest.render.text import table

    types = names([f"invalid tool arguments for function call number {i} with schema mismatch" for i in (2, 5, 8)], 60)
    rows = [{"type": t, "n": "52", "p": "50", "c": "+4.0%"} for t in types]
    lines = table([("Error type", "type", False), ("Count", "n", True), ("Previous", "p", True),
                   ("Change", "c", True)], rows)
    firsts = [line[2:line.index("  ", 2)] for line in lines[2:]]
    assert all("……" not in f for f in firsts), firsts
    assert [f.split("…")[-1][:2] for f in firsts] == [" 2", " 5", " 8"], firsts
    assert all(f.startswith("invalid tool arguments") for f in firsts), firsts


@pytest.mark.parametrize("shared", [True, False], ids=["two-models", "one-model-each"])
def test_the_by_model_table_says_when_its_conversations_add_up_to_more_than_the_period(tmp_path, shared):
    """Found reading the engineering report of the trap data: the by-model table's conversations were 17 + 13 + 1
    beside a headline of 29 (a conversation served by two models counts under each), and nothing said why.
    Plain Python over the same rows: 12 conversations in W47, every third served by both models."""
    import re
    from datetime import datetime, timedelta, timezone

    import duckdb

    from agentdigest.compute import compute_report
    from agentdigest.config import ReportConfig, SourceConfig
    from agentdigest.periods import parse_period
    from agentdigest.render import render_artifacts
    from agentdigest.sources import open_source
    from render_fixtures import pdf_text

    start = datetime(2026, 11, 16, 9, tzinfo=timezone.utc)
    rows = [(f"c{i}", start + timedelta(hours=5 * i, minutes=k), "message", "m-a" if k == 0 or not shared else "m-b")
            for i in range(12) for k in range(1 + (i % 3 == 0))]
    if not shared:
        rows = [(c, ts, t, "m-a" if int(c[1:]) % 2 else "m-b") for c, ts, t, _ in rows]
    path = tmp_path / "events.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE ev (conversation_id TEXT, event_ts TIMESTAMPTZ, event_type TEXT, model TEXT)")
        con.executemany("INSERT INTO ev VALUES (?, ?, ?, ?)", rows)
    per_model = {m: len({c for c, _, _, mm in rows if mm == m}) for m in {r[3] for r in rows}}
    total = len({r[0] for r in rows})
    assert (sum(per_model.values()) > total) is shared
    week = parse_period("week", "2026-W47", "UTC")
    source = open_source(SourceConfig(url=f"duckdb://{path}", table="ev"))
    try:
        data = compute_report(source, ReportConfig(id="r", timezone="UTC", audience="engineering"), week,
                              now=week.end_utc + timedelta(hours=9))
    finally:
        source.close()
    assert {r["model"]: r["conversations"] for r in data.by_model} == per_model
    files = render_artifacts(data, {"txt", "html", "pdf"})
    sentence = (f"A conversation served by several models counts under each: the rows hold "
                f"{sum(per_model.values())} conversations of the week's {total}.")
    texts = {"txt": " ".join(files["report.txt"].decode().split()),
             "html": " ".join(re.sub(r"<[^>]+>", " ", files["report.html"].decode()).split()),
             "pdf": " ".join(" ".join(pdf_text(files["report.pdf"])).split())}
    for name, text in texts.items():
        assert (sentence in text) is shared, name
        assert "counts under each" in text or not shared


def test_a_model_row_without_any_token_or_cost_value_reads_na_not_zero(tmp_path):
    """Found in a rendering review: the "(none)" row of the by-model table (the resolution events, which carry no
    model, tokens or cost) read "0" tokens, "0.0%" and "$0.00", as if those events had been counted at no cost.
    A sum over no values is none: null in report.json, "n/a" in every format, as a trend period without any
    value is. Plain Python over the same rows: 10 conversations in W47, a message of m-a then a resolution each."""
    import json
    import re
    from datetime import datetime, timedelta, timezone

    import duckdb

    from agentdigest.compute import compute_report
    from agentdigest.config import ReportConfig, SourceConfig
    from agentdigest.periods import parse_period
    from agentdigest.render import render_artifacts
    from agentdigest.sources import open_source
    from render_fixtures import pdf_text

    start = datetime(2026, 11, 16, 9, tzinfo=timezone.utc)
    rows = []
    for i in range(10):
        at = start + timedelta(hours=7 * i)
        rows += [(f"c{i}", at, "message", "m-a", 100 + i, 0.01 * (i + 1)),
                 (f"c{i}", at + timedelta(minutes=1), "resolution", None, None, None)]
    path = tmp_path / "events.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE ev (conversation_id TEXT, event_ts TIMESTAMPTZ, event_type TEXT, model TEXT, "
                    "token_count BIGINT, cost_usd DOUBLE)")
        con.executemany("INSERT INTO ev VALUES (?, ?, ?, ?, ?, ?)", rows)

    def sums(col: int) -> dict:
        out: dict = {}
        for r in rows:
            if r[col] is not None:
                out[r[3]] = out.get(r[3], 0) + r[col]
        return {m: out.get(m) for m in {r[3] for r in rows}}

    week = parse_period("week", "2026-W47", "UTC")
    source = open_source(SourceConfig(url=f"duckdb://{path}", table="ev"))
    try:
        data = compute_report(source, ReportConfig(id="r", timezone="UTC", audience="engineering"), week,
                              now=week.end_utc + timedelta(hours=9))
    finally:
        source.close()
    files = render_artifacts(data, {"json", "txt", "html", "pdf"})
    doc = json.loads(files["report.json"])
    models = {r["model"]: r for r in doc["breakdowns"]["by_model"]}
    assert {m: r["total_tokens"] for m, r in models.items()} == sums(4) == {"m-a": sum(range(100, 110)), None: None}
    assert {m: r["cost_usd"] for m, r in models.items()} == pytest.approx(sums(5))
    assert models[None]["cost_usd"] is None and models[None]["events"] == 10
    # the headline sums the values there are (the "(none)" row adds none to them)
    assert doc["metrics"]["total_tokens"]["value"] == sums(4)["m-a"]
    # The "(none)" row: its tokens, share and cost are n/a in each format; m-a's share is the whole
    txt = next(line for line in files["report.txt"].decode().splitlines() if line.lstrip().startswith("(none)"))
    html = files["report.html"].decode()
    html_row = " ".join(re.sub(r"<[^>]+>", " ", next(
        tr for tr in re.findall(r"<tr[^>]*>.*?</tr>", html, re.S) if "(none)" in tr)).split())
    pdf = next(line for line in "\n".join(pdf_text(files["report.pdf"])).splitlines() if "(none)" in line)
    # Model, Conversations, Tokens, Share, Errors, Cost (no latency column); the email repeats Share and Cost
    # under the name for phones
    assert txt.split() == pdf.split() == ["(none)", "10", "n/a", "n/a", "0", "n/a"], (txt, pdf)
    assert html_row == "(none) Share n/a Cost n/a 10 n/a n/a 0 n/a", html_row


def test_a_tables_change_that_passed_its_test_has_its_arrow_as_in_the_html() -> None:
    """Found in a reader review: the HTML and PDF colour a table's change that passed its own test and give it
    the arrow of its move ("▲ +21%"), while the text's tables showed every change alike, and its legend spoke
    of [notable] only. Now such a change has its arrow here too ("▲+21%"), and the legend says what it means.
    Error types: 57 against 0 and 22 against 40 differ beyond chance (|a - b| / sqrt(a + b) = 7.5 and 2.3, at
    least 1.96), 4 against 5 does not (0.3). billing-bot: errors in 82 of 578 conversations against 22 of 568
    (far beyond chance), resolved 394 of 578 against 394 of 568 (chance); p95 5,246 ms against 2,960 (+77%, past
    the 10% an agent's p95 is coloured from). steady-bot: nothing beyond chance, p95 +3%."""
    from dataclasses import replace

    from agentdigest.render import render_artifacts
    from render_fixtures import make_report

    def agent(name, n, resolved, errors, pn, presolved, perrors, p95, pp95):
        return {"agent_id": name, "conversations": n, "resolved_conversations": resolved, "error_conversations": errors,
                "resolution_rate": resolved / n * 100, "error_rate": errors / n * 100, "previous_conversations": pn,
                "previous_resolved_conversations": presolved, "previous_error_conversations": perrors,
                "previous_resolution_rate": presolved / pn * 100, "previous_error_rate": perrors / pn * 100,
                "p95_latency_ms": p95, "previous_p95_latency_ms": pp95}

    data = replace(make_report("engineering"),
                   errors_by_type=({"error_type": "tool_timeout", "count": 57, "previous": 0},
                                   {"error_type": "rate_limited", "count": 22, "previous": 40},
                                   {"error_type": "upstream_5xx", "count": 4, "previous": 5}),
                   by_agent=(agent("steady-bot", 900, 590, 41, 950, 640, 40, 2240.0, 2175.0),
                             agent("billing-bot", 578, 394, 82, 568, 394, 22, 5246.0, 2960.0)))
    body = render_artifacts(data, {"txt"})["report.txt"].decode()
    rows = {line.split()[0]: line.split() for line in body.splitlines() if line.startswith("  ")}
    assert rows["tool_timeout"][-1] == "▲new"
    assert rows["rate_limited"][-1] == "▼-45%"
    assert rows["upstream_5xx"][-1] == "-20%"
    billing = " ".join(rows["billing-bot"])
    assert "68.2% -1.2 pp" in billing  # resolution: no arrow
    assert "14.2% ▲+10.3 pp" in billing and "5.25 s ▲+77%" in billing
    assert "▲" not in " ".join(rows["steady-bot"]) and "▼" not in " ".join(rows["steady-bot"])
    legend = " ".join(body.split())
    assert "in the error-type and agent tables, a change with an arrow (▲ or ▼) passed its own test" in legend
    assert "an agent's p95 has an arrow from a 10% move" in legend


def test_the_legend_names_the_tables_whose_arrows_mean_a_test() -> None:
    """Found reading the demo's engineering text: the legend said "in tables, a change with an arrow passed its
    own test" under a headline table and a latency table whose every change has its arrow ("p50 latency ▲ +17%",
    untested). It names the tables it means."""
    body = " ".join(text("engineering").split())
    assert "in the error-type and agent tables, a change with an arrow (▲ or ▼) passed its own test" in body
    assert "in tables" not in body


def test_the_executive_legend_speaks_of_no_table_arrows_nor_latency() -> None:
    """Found in a reader review of the demo: the executive report, with no latency figure and no table of
    changes, explained both in its legend. It now says what [notable] means and that the rest is within chance."""
    body = " ".join(text("executive").split())
    assert ("Changes marked [notable] passed a significance check. Other changes are within chance or had too "
            "little data to test.") in body
    assert "tables" not in body and "Latency" not in body


def test_a_day_or_agent_row_without_any_token_or_cost_value_reads_na_not_zero(tmp_path):
    """Found in a rendering review: Tuesday's conversations (silent-bot's), none with a token_count or cost_usd value,
    read "0" tokens and "$0.00" in the day-by-day table, and silent-bot "$0.00" in the by-agent one, as if measured;
    a by_model row without a value reads n/a. Now n/a in every format showing them (the email's day table has no
    tokens or cost; Slack shows neither table); a day without conversations keeps 0 and $0.00. The figures are
    plain Python's over trapdata.unvalued_rows (test_backends compares report.json with it on every engine)."""
    import re
    from datetime import timedelta

    from agentdigest.compute import compute_report
    from agentdigest.config import ReportConfig, SourceConfig
    from agentdigest.periods import parse_period
    from agentdigest.render import render_artifacts
    from agentdigest.sources import open_source
    from backend_loaders import load_duckdb
    from render_fixtures import pdf_text
    from trapdata import unvalued_rows

    week = parse_period("week", "2026-W47", "UTC")
    source = open_source(SourceConfig(**load_duckdb(unvalued_rows(), tmp_path)))
    try:
        data = compute_report(source, ReportConfig(id="r", timezone="UTC", audience="engineering"), week,
                              now=week.end_utc + timedelta(hours=9))
    finally:
        source.close()
    files = render_artifacts(data, {"txt", "html", "pdf"})
    txt = {line.split()[1] + line.split()[2]: line.split()[3:] for line in files["report.txt"].decode().splitlines()
           if re.match(r"  (Mon|Tue|Wed|Thu) \d\d Nov ", line)}
    # Conv., Resolution, Errors, Err. rate, Tokens, Cost
    assert txt == {"16Nov": ["2", "100.0%", "0", "0.0%", "240", "$0.75"], "17Nov": ["2", "100.0%", "0", "0.0%", "n/a", "n/a"],
                   "18Nov": ["1", "100.0%", "0", "0.0%", "70", "n/a"], "19Nov": ["0", "n/a", "0", "n/a", "0", "$0.00"]}
    pdf = " ".join("\n".join(pdf_text(files["report.pdf"])).split())
    # Day, Conversations, Resolution, Errors, Error rate, Tokens, Avg latency, Cost
    assert "Tue 17 Nov 2 100.0% 0 0.0% n/a 402 ms n/a Wed 18 Nov 1 100.0% 0 0.0% 70 404 ms n/a" in pdf
    assert "Thu 19 Nov 0 n/a 0 n/a 0 n/a $0.00" in pdf
    # Agent, Conversations (change), Resolution (change), Error rate (change), p95 latency (change), Cost
    assert "silent-bot 2 new 100.0% n/a 0.0% n/a 403 ms new n/a tokens-bot 1 new" in pdf
    html = " ".join(re.sub(r"<[^>]+>", " ", files["report.html"].decode()).replace("&nbsp;", " ").split())
    # the email repeats Cost under the agent's name for phones
    assert "silent-bot Cost n/a 2 new 100.0% n/a 0.0% n/a 403 ms new n/a" in html
    assert "priced-bot Cost $0.75 2 +100% 100.0%" in html
