"""slack.json: valid Block Kit (checked by slack_sdk's models), within Slack's limits, escaped."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from agentdigest.render import render_artifacts
from agentdigest.render.context import build_context
from agentdigest.render.slack import build_blocks, fit
from render_fixtures import HOSTILE, make_report, rendered, slack_texts

CASES = [
    ("executive", {}), ("engineering", {}),
    ("executive", {"warning": True, "hostile": True, "pii": True}),
    ("engineering", {"warning": True, "hostile": True, "pii": True}),
    ("engineering", {"zero": True}), ("executive", {"missing": True, "nulls": True, "human_cost": None}),
    ("engineering", {"missing": True, "nulls": True, "warning": True}),
]
IDS = [f"{a}-{'-'.join(flags) or 'plain'}" for a, flags in CASES]


def payload(audience: str, **flags: object) -> dict:
    return json.loads(rendered(audience, **flags)["slack.json"])


def check_limits(blocks: list[dict]) -> None:
    assert 1 <= len(blocks) <= 50
    for block in blocks:
        Block.parse(block).validate_json()  # slack_sdk's own validation (raises on any breach)
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text" and len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert len(block.get("fields", [])) <= 10
            assert len(block.get("text", {}).get("text", "")) <= 3000
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
        if block["type"] == "context":
            assert len(block["elements"]) <= 10


@pytest.mark.parametrize(("audience", "flags"), CASES, ids=IDS)
def test_valid_block_kit_within_limits(audience: str, flags: dict) -> None:
    data = payload(audience, **flags)
    assert isinstance(data["text"], str) and 0 < len(data["text"]) <= 3000
    check_limits(data["blocks"])
    types = [b["type"] for b in data["blocks"]]
    assert types[0] == "header" and types[-1] == "context"


@pytest.mark.parametrize(("audience", "flags"), CASES, ids=IDS)
def test_banner_exactly_when_warning(audience: str, flags: dict) -> None:
    blocks = payload(audience, **flags)["blocks"]
    banner = [b for b in blocks if "Data incomplete" in json.dumps(b, ensure_ascii=False)]
    if flags.get("warning"):
        assert banner and blocks.index(banner[0]) == 1  # right under the header
        text = banner[0]["text"]["text"]
        assert "81.4%" in text and "Wed 25 Nov 02:00 – 08:00 (6 h)" in text
    else:
        assert not banner


@pytest.mark.parametrize(("audience", "flags"), CASES, ids=IDS)
def test_context_line_gives_period_and_completeness(audience: str, flags: dict) -> None:
    context = payload(audience, **flags)["blocks"][-1]["elements"][0]["text"]
    assert "23\u2009–\u200929 Nov 2026 (2026-W48) · compared with 16\u2009–\u200922 Nov · Europe/Berlin" in context
    assert "data completeness 81.4%" in context if flags.get("warning") else "data completeness 99.2%" in context


def test_agent_patterns_of_the_scope_are_shown_as_written() -> None:
    """Found in a Slack audit: in the mrkdwn context line "agents billing-*, support-*" was a bold pair, so
    Slack showed "agents billing, support-" with ", support-" in bold."""
    data = make_report("executive")
    scoped = replace(data, settings={**data.settings, "agents": ["billing-*", "support-*"]})
    blocks = json.loads(render_artifacts(scoped, {"slack"})["slack.json"])["blocks"]
    assert "agents billing-*, support-*" in "\n".join(slack_texts(blocks, "plain_text"))
    assert not any("billing-" in text for text in slack_texts(blocks, "mrkdwn"))


def test_kpi_fields_with_arrows_and_the_opening_sentence() -> None:
    blocks = payload("executive")["blocks"]
    fields = [f["text"] for b in blocks for f in b.get("fields", [])]
    assert "*Conversations*\n2,480  ▲ +12% *notable*" in fields
    # A coloured circle marks a notable change only; one within the noise is shown plainly.
    assert "*Resolution rate*\n61.0%  ▼ -2.9 pp :red_circle: *notable*" in fields
    assert "*Containment rate*\n87.5%  ▲ +0.9 pp" in fields and "*Error rate*\n2.2%  ▼ -1.5 pp" in fields
    assert blocks[1]["text"]["text"].startswith("Conversations rose 12% to 2,480")


def test_a_figure_not_known_shows_no_change_beside_it() -> None:
    """Found in a review: a KPI with no value (a rate of a period without conversations) read "n/a  n/a", and
    one flagged notable read "n/a *notable*"."""
    data = make_report("executive", zero=True)
    data = replace(data, metrics={k: replace(m, notable=True) for k, m in data.metrics.items()})
    blocks = json.loads(render_artifacts(data, {"slack"})["slack.json"])["blocks"]
    fields = [f["text"] for b in blocks for f in b.get("fields", [])]
    unknown = [f for f in fields if f.split("\n", 1)[1].startswith("n/a")]
    assert len(unknown) >= 2 and all(f.split("\n", 1)[1] == "n/a" for f in unknown)


@pytest.mark.parametrize("audience", ["executive", "engineering"])
def test_hostile_text_only_escaped(audience: str) -> None:
    raw = rendered(audience, hostile=True, warning=True)["slack.json"].decode()
    data = json.loads(raw)
    for text in [data["text"], *slack_texts(data["blocks"], "mrkdwn")]:
        for hostile in HOSTILE:
            assert hostile not in text
        assert "<" not in text and ">" not in text  # no links, mentions or markup from data
    if audience == "engineering":  # plain_text is shown as it is: no mention, link or markup, and no entity
        assert "<img src=x onerror=alert(1)>" in "\n".join(slack_texts(data["blocks"], "plain_text"))


def test_long_title_and_many_kpis_stay_within_limits() -> None:
    data = make_report("engineering", title="Agent performance " * 20, warning=True)
    ctx, _ = build_context(data)
    ctx["kpis"] = ctx["kpis"] * 4  # 24 cards: more than one section's 10 fields
    ctx["opening"] = "x" * 5000
    ctx["banner"]["gaps"] = ["Wed 25 Nov 02:00 – 08:00 (6 h)"] * 400
    blocks = [b.to_dict() for b in build_blocks(ctx)]
    check_limits(blocks)
    assert blocks[0]["text"]["text"].endswith("…")


@pytest.mark.parametrize(("text", "limit", "escaped", "expected"), [
    ("a<b", 10, True, "a&lt;b"), ("<<<<", 9, True, "&lt;&lt;…"), ("abcdef", 4, True, "abc…"), ("&", 5, True, "&amp;"),
    # mrkdwn escaped already (the banner, the opening): found in a Slack audit, cut to "a&l…" and "x&amp…"
    ("a&lt;b a&lt;b", 10, False, "a&lt;b a…"), ("x&amp;y", 6, False, "x…"), ("x&amp;y", 7, False, "x&amp;y"),
])
def test_fit_never_splits_an_entity(text: str, limit: int, escaped: bool, expected: str) -> None:
    assert fit(text, limit, escaped=escaped) == expected


@pytest.mark.parametrize(("text", "limit", "escaped", "expected"), [
    # found in a Slack review: a cut inside a pair left "*bold tex…", its "*" shown literally
    ("*bold text here*", 10, False, "*bold te*…"), ("_italic text_", 9, False, "_italic_…"),
    ("~struck out~", 8, False, "~struc~…"), ("`code span`", 8, False, "`code`…"),
    ("```line one\nline two```", 16, False, "```line one```…"),
    ("ab *cdef*", 5, False, "ab …"),  # nothing left inside: the opener goes
    ("*bold _it here_ x*", 12, False, "*bold _it_*…"),  # closed innermost first
    ("*x &amp;&amp; y*", 10, False, "*x &amp;*…"), ("*a <b> c*", 9, True, "*a &lt;*…"),  # and no entity split
    ("`a *b` *c d*", 10, False, "`a *b` …"),  # a marker inside code is not an opener
    ("5 * 3 = 15 and more", 8, False, "5 * 3 =…"), ("snake_case_name", 8, False, "snake_c…"),  # no pair: as before
    # an emoji code is never cut: ":large_gr…" shows as typed (found in a Slack audit)
    ("ok :large_green_circle: *notable*", 12, False, "ok …"), ("a :+1: b", 5, True, "a …"),
    ("*x :warning: y*", 9, False, "*x*…"), (":warning: text", 12, False, ":warning: t…"),
    ("at 10:15:30 today", 8, False, "at 10…"),
])
def test_fit_keeps_mrkdwn_balanced(text: str, limit: int, escaped: bool, expected: str) -> None:
    assert fit(text, limit, escaped=escaped) == expected


def test_fit_leaves_plain_text_markers_alone() -> None:
    assert fit("*bold text here*", 10, escaped=False, mrkdwn=False) == "*bold tex…"


_WORD = st.sampled_from(["a", "bc", "def", "&amp;", "&lt;", "&gt;", "x1", "ü"])
_WORDS = st.lists(_WORD, min_size=1, max_size=3).map(" ".join)
_PAIRED = st.one_of(_WORDS, *[_WORDS.map(lambda w, m=m: f"{m}{w}{m}") for m in "*_~`"],
                    _WORDS.map(lambda w: f"*b {w} _i {w}_ {w}*"))


@given(st.lists(_PAIRED, min_size=1, max_size=30).map(" ".join), st.integers(min_value=2, max_value=80))
def test_fit_never_leaves_a_marker_open(text: str, limit: int) -> None:
    """Every marker of the text is paired, so every cut must be too (and keep its entities whole)."""
    out = fit(text, limit, escaped=False)
    assert len(out) <= limit
    if out != text:
        assert out.endswith("…") and not re.search(r"&[a-z]*…$", out), out
    for marker in "*_~`":
        assert out.count(marker) % 2 == 0, out


def test_a_long_bold_label_stays_bold_when_cut() -> None:
    ctx, _ = build_context(make_report("executive"))
    ctx["kpis"][0]["label"] = ("Resolved conversations " * 120).strip()  # a field's label alone past 2,000 characters
    blocks = [b.to_dict() for b in build_blocks(ctx)]
    check_limits(blocks)
    field = next(f["text"] for b in blocks for f in b.get("fields", []) if "Resolved conversations" in f["text"])
    assert field.startswith("*Resolved") and re.search(r"\S\*…$", field), field[-20:]


def test_only_slack_when_asked() -> None:
    files = render_artifacts(make_report("executive"), {"slack"})
    assert set(files) == {"slack.json"}


def test_agent_data_cannot_format_the_slack_message() -> None:
    """Found in a review: '*urgent* ~strike~' in an error message rendered bold and struck through, and
    backticks in an error type were replaced by other characters. mrkdwn has no escape: plain_text it is."""
    ctx, _ = build_context(make_report("engineering"))
    ctx["failures"][0]["message"] = "*urgent* ~strike~ _it_ `code` <!channel>"
    ctx["errors_by_type"]["rows"][0]["type"] = "bad`type`*y*"
    blocks = [b.to_dict() for b in build_blocks(ctx)]
    check_limits(blocks)
    holding = [b["text"] for b in blocks if b.get("text") and ("urgent" in b["text"]["text"] or "bad`type`" in b["text"]["text"])]
    assert len(holding) == 2 and all(t["type"] == "plain_text" for t in holding)
    assert "*urgent* ~strike~ _it_ `code` <!channel>" in holding[1]["text"] + holding[0]["text"]  # shown as it is


def test_right_to_left_names_are_isolated_in_slack() -> None:
    """Found in a re-check: "• שגיאת_רשת  21 (+5.0%)" rendered as "(5.0%+) 21 שגיאת_רשת" in Slack."""
    import json
    from dataclasses import replace

    from agentdigest.render import render_artifacts
    from render_fixtures import make_report

    data = make_report("engineering")
    rows = list(data.errors_by_type)
    rows[0] = {**rows[0], "error_type": "שגיאת_רשת"}
    payload = json.loads(render_artifacts(replace(data, errors_by_type=tuple(rows)), formats={"slack"})["slack.json"])
    text = json.dumps(payload, ensure_ascii=False)
    assert "\u2068שגיאת_רשת\u2069" in text and "\u2068" + rows[1]["error_type"] not in text


def test_the_engineering_message_names_the_agents_that_moved() -> None:
    """Found in a reader review: billing-bot's error rate went from 3.9% to 14.2% and the engineering Slack
    message had no per-agent line at all; an agent whose moves are within chance is not listed."""
    from dataclasses import replace

    data = make_report("engineering")
    rows = ({"agent_id": "billing-bot", "conversations": 578, "resolved_conversations": 394, "error_conversations": 82,
             "resolution_rate": 394 / 578 * 100, "error_rate": 82 / 578 * 100, "previous_conversations": 568,
             "previous_resolved_conversations": 394, "previous_error_conversations": 22,
             "previous_resolution_rate": 394 / 568 * 100, "previous_error_rate": 22 / 568 * 100,
             "p95_latency_ms": 5246.0, "previous_p95_latency_ms": 2960.0},
            {"agent_id": "steady-bot", "conversations": 900, "resolved_conversations": 590, "error_conversations": 41,
             "resolution_rate": 590 / 900 * 100, "error_rate": 41 / 900 * 100, "previous_conversations": 950,
             "previous_resolved_conversations": 640, "previous_error_conversations": 40,
             "previous_resolution_rate": 640 / 950 * 100, "previous_error_rate": 40 / 950 * 100,
             "p95_latency_ms": 2240.0, "previous_p95_latency_ms": 2175.0})  # +3%: not coloured
    ctx, _ = build_context(replace(data, by_agent=rows))
    text = "\n".join(slack_texts([b.to_dict() for b in build_blocks(ctx)]))
    assert "*Agents that moved*" in text
    # resolution 69.4% -> 68.2%: chance; the error rate passed its test, the p95 (no test) moved past 10%
    assert "• billing-bot: error rate 14.2% (▲ +10.3 pp, notable), p95 5.25 s (▲ +77%)" in text
    assert "steady-bot" not in text


def test_an_agent_that_moved_is_named_even_when_the_email_table_leaves_it_out() -> None:
    """Found in a reader review: "Agents that moved" looked only at the email table's 15 busiest agents, so
    the 20th's error rate going from 2.0% to 30.0% (30 of 100 conversations against 2 of 100: far beyond
    chance) was in no message. Nineteen busier agents hold steady (20 of 1,000 errors both weeks)."""
    from dataclasses import replace

    def agent(name: str, n: int, errors: int, previous_errors: int) -> dict:
        return {"agent_id": name, "conversations": n, "resolved_conversations": n // 2, "error_conversations": errors,
                "resolution_rate": 50.0, "error_rate": errors / n * 100, "previous_conversations": n,
                "previous_resolved_conversations": n // 2, "previous_error_conversations": previous_errors,
                "previous_resolution_rate": 50.0, "previous_error_rate": previous_errors / n * 100,
                "p95_latency_ms": 1000.0, "previous_p95_latency_ms": 1000.0}

    rows = tuple(agent(f"steady-{i:02}", 1000, 20, 20) for i in range(19)) + (agent("quiet-bot", 100, 30, 2),)
    ctx, _ = build_context(replace(make_report("engineering"), by_agent=rows))
    assert "quiet-bot" not in [r["agent"] for r in ctx["by_agent"]["rows"]]  # the email's table: its 15 busiest
    text = "\n".join(slack_texts([b.to_dict() for b in build_blocks(ctx)]))
    assert "• quiet-bot: error rate 30.0% (▲ +28.0 pp, notable)" in text
    assert "steady-" not in text.split("*Agents that moved*", 1)[1]


def test_notes_reach_slack_as_every_other_format() -> None:
    """Found in a reader audit: the notes (a column absent, a first period with partial data, so changes such
    as "+926%" are not judged) were in the email, the PDF and the text, but not in the Slack message."""
    report = make_report("executive", missing=True)
    ctx, _ = build_context(report)
    assert ctx["notes"]
    blocks = [b.to_dict() for b in build_blocks(ctx)]
    check_limits(blocks)
    shown = " ".join(slack_texts(blocks))
    for note in ctx["notes"]:
        assert note in shown
    assert blocks[-1]["type"] == "context"  # the period line stays last


def test_notes_quoting_agent_patterns_and_paths_are_shown_as_written() -> None:
    """Found in a rendering audit: the notes went to Slack as mrkdwn, so compute's note on a team report
    "Only the conversations of billing-*, support-* ..." set ", support-" in bold and lost both asterisks (the
    context line had been made plain_text for the same scope), and a CSV path's "_2026_" turned italic."""
    notes = ("Only the conversations of billing-*, support-* (a conversation's agent is that of its first event); "
             "the data quality is of all the events.",
             "12% of the rows of the source's files cannot be read and are left out of every figure (the first: "
             "row 7 of events/agent_events_2026_11.csv after its header: bad quote); check the files.")
    data = replace(make_report("executive"), notes=notes)
    blocks = json.loads(render_artifacts(data, {"slack"})["slack.json"])["blocks"]
    check_limits(blocks)
    assert "Notes: " + " ".join(notes) in slack_texts(blocks, "plain_text")
    assert not any("billing-" in text or "agent_events" in text for text in slack_texts(blocks, "mrkdwn"))


def extreme_report(audience: str):
    """40 agents with long or hostile names, a long title, 20 error types, long error messages, many notes
    and a data-quality warning: a report shaped to break every Block Kit limit at once."""
    from dataclasses import replace

    data = make_report(audience, agents=40, warning=True, title="R&D <agents> " + "Very long title " * 30)
    names = ["a<b>&c", "<!channel>", "<@U0123ABCD> & <https://evil.example|click>"]
    agents = tuple({**row, "agent_id": names[i] if i < len(names) else f"agent-{i}-" + "x" * 400}
                   for i, row in enumerate(data.by_agent))
    errors = tuple({"error_type": f"<!here> err&{i}-" + "y" * 300, "count": 100 - i, "previous": 1 + i} for i in range(20))
    failures = tuple({**f, "agent_id": "a<b>&c", "error_type": "<!channel>", "error_message": "x < y & z " * 700}
                     for f in data.failure_examples)
    notes = tuple(f"Note {i}: <b>&</b> " + "n" * 400 for i in range(12))
    return replace(data, by_agent=agents, errors_by_type=errors, failure_examples=failures, notes=notes)


@pytest.mark.parametrize("audience", ["executive", "engineering"])
def test_an_extreme_report_is_still_a_valid_slack_message(audience: str) -> None:
    """Found in a Slack audit: plain_text (the header, error types, agent names, failure examples) was
    HTML-escaped like mrkdwn, and Slack shows plain_text as it is: 'R&D' read 'R&amp;D', 'a<b>&c' read
    'a&lt;b&gt;&amp;c'. The limits hold for extreme inputs, mrkdwn is escaped once, plain_text not at all."""
    data = json.loads(render_artifacts(extreme_report(audience), {"slack"})["slack.json"])
    assert isinstance(data["text"], str) and 0 < len(data["text"]) <= 3000 and "<" not in data["text"]
    check_limits(data["blocks"])
    assert data["blocks"][0]["text"]["text"].startswith("R&D <agents> Very long title")
    assert data["blocks"][-1]["type"] == "context"  # the period line survives the cuts
    plain, mrkdwn = [], []
    for block in data["blocks"]:
        for obj in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
            if obj:
                (plain if obj["type"] == "plain_text" else mrkdwn).append(obj["text"])
    for text in mrkdwn:  # no link, mention or markup from data; every & starts one of the three entities
        assert "<" not in text and ">" not in text
        assert "&" not in re.sub(r"&(amp|lt|gt);", "", text)
        assert "&amp;amp;" not in text and "&amp;lt;" not in text
    assert any("Note 0: <b>&</b>" in t for t in plain)  # the notes are plain_text
    for text in plain:
        assert "&amp;" not in text and "&lt;" not in text and "&gt;" not in text
    if audience == "engineering":
        shown = "\n".join(plain)
        assert "<!here> err&0-" in shown and "agent a<b>&c" in shown and "x < y & z" in shown


def test_the_savings_line_has_its_arrow_as_its_card_does() -> None:
    """Found in a consistency audit: Slack's savings read "(+1.8%)" where the email's card reads "▲ +1.8%"."""
    data = make_report("executive")
    m = data.metrics["estimated_savings_usd"]
    arrow = "▲" if m.value > m.previous else "▼"  # the fixture's savings moved, one way or the other
    line = next(b["text"]["text"] for b in payload("executive")["blocks"]
                if b["type"] == "section" and b.get("text", {}).get("text", "").startswith("*Estimated savings:*"))
    assert re.search(rf"\({arrow} [+-]\d", line), line


def test_an_error_types_change_that_passed_its_test_has_its_arrow_and_says_notable() -> None:
    """Found in a reader review: the email colours an error type's change that passed its test and gives it an
    arrow ("▲ +84%"), while Slack's "Errors by type" read "tool_timeout  57 (+84%)" whether it passed or not.
    57 against 0 and 22 against 40 differ beyond chance (|a - b| / sqrt(a + b) = 7.5 and 2.3, at least 1.96);
    4 against 5 does not (0.3)."""
    data = replace(make_report("engineering"),
                   errors_by_type=({"error_type": "tool_timeout", "count": 57, "previous": 0},
                                   {"error_type": "rate_limited", "count": 22, "previous": 40},
                                   {"error_type": "upstream_5xx", "count": 4, "previous": 5}))
    ctx, _ = build_context(data)
    text = "\n".join(slack_texts([b.to_dict() for b in build_blocks(ctx)]))
    assert "• tool_timeout  57 (▲ new, notable)" in text
    assert "• rate_limited  22 (▼ -45%, notable)" in text
    assert "• upstream_5xx  4 (-20%)" in text
