"""render_artifacts as a whole: formats, PII, report.json, custom templates, locales, determinism."""

from __future__ import annotations

import email
import email.policy
import json
import re
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

import agentdigest.render as render
from agentdigest.archive import ARTIFACTS
from agentdigest.errors import RenderError
from agentdigest.render import render_artifacts
from render_fixtures import HOSTILE_AGENT, PII, ParsedHTML, make_report, pdf_text, readable, rendered

NOW = datetime(2026, 11, 30, 8, 0, 5, tzinfo=timezone.utc)


def test_public_api() -> None:
    assert sorted(render.__all__) == ["EmailAddressing", "FORMATS", "message_id", "render_artifacts"]
    assert set(render.FORMATS) == set(ARTIFACTS)


def test_all_formats_by_default() -> None:
    assert set(rendered("executive")) == set(ARTIFACTS.values())


@pytest.mark.parametrize("formats", [{"json"}, {"html"}, {"pdf"}, {"txt"}, {"eml"}, {"slack"}, {"html", "txt"}])
def test_only_the_formats_asked_for(formats: set[str]) -> None:
    files = render_artifacts(make_report("engineering"), formats, now=NOW)
    assert set(files) == {ARTIFACTS[f] for f in formats}
    assert all(files.values())


def test_unknown_format() -> None:
    with pytest.raises(RenderError, match="unknown format.*docx"):
        render_artifacts(make_report(), {"html", "docx"})


@pytest.mark.parametrize("audience", ["executive", "engineering"])
def test_planted_pii_is_absent_from_every_artifact(audience: str) -> None:
    files = rendered(audience, pii=True, hostile=True, warning=True)
    digits_only = re.sub(r"\D", "", PII["card"])
    for where, text in readable(files).items():
        for kind, value in PII.items():
            assert value not in text, (where, kind)
        assert digits_only not in re.sub(r"[ -]", "", text), where
    assert "[email]" in files["report.json"].decode()
    if audience == "engineering":
        txt = files["report.txt"].decode()
        assert all(f"[{kind}]" in txt for kind in ("email", "phone", "card", "ssn", "iban", "ip"))


def test_redaction_can_be_turned_off_and_extended() -> None:
    off = render_artifacts(make_report("engineering", pii=True, redact=False), {"json", "txt"})
    assert PII["email"] in off["report.json"].decode() and PII["ssn"] in off["report.txt"].decode()
    data = make_report("engineering")
    data = replace(data, settings={**data.settings, "redact_patterns": {"conversation": r"conv-\d+"}})
    txt = render_artifacts(data, {"txt"})["report.txt"].decode()
    assert "conv-09000" not in txt and "conversation [conversation]" in txt


def test_report_json_is_the_redacted_report_data() -> None:
    data = make_report("engineering", pii=True, hostile=True)
    doc = json.loads(render_artifacts(data, {"json"})["report.json"])
    assert doc["schema_version"] == 1 and doc["period"]["key"] == "2026-W48"
    assert doc["metrics"]["conversations"]["value"] == 2480  # values stay unrounded and unformatted
    assert doc["metrics"]["resolution_rate"]["value"] == data.metrics["resolution_rate"].value
    agents = [row["agent_id"] for row in doc["breakdowns"]["by_agent"]]
    assert HOSTILE_AGENT in agents and "agent [email]" in agents  # markup is data here; PII is not


def test_control_characters_are_stripped_from_event_text() -> None:
    data = make_report("engineering")
    rows = ({**data.by_agent[0], "agent_id": "bot\x1b[31m-red\x00\u202e"},) + data.by_agent[1:]
    files = render_artifacts(replace(data, by_agent=rows), {"txt", "json", "html"})
    for name, content in files.items():
        assert b"\x1b" not in content and b"\x00" not in content and "\u202e".encode() not in content, name
    assert "bot\ufffd[31m-red" in files["report.txt"].decode()  # in a key what was removed shows (a scale audit)


def test_missing_breakdowns_zero_conversations_and_nulls_render() -> None:
    for flags in ({"missing": True, "nulls": True}, {"zero": True}, {"nulls": True, "failures": 0}):
        for audience in ("executive", "engineering"):
            files = render_artifacts(make_report(audience, **flags), now=NOW)
            assert set(files) == set(ARTIFACTS.values())
    text = render_artifacts(make_report("engineering", missing=True), {"txt"})["report.txt"].decode()
    assert "BY AGENT" not in text and "TOKENS BY MODEL" not in text and "n/a (column absent)" in text


def test_big_reports_stay_under_gmails_limit() -> None:
    data = make_report("engineering", agents=300, failures=50, hostile=True, warning=True)
    examples = tuple({**row, "error_message": "<b>&amp;</b> " * 200} for row in data.failure_examples)
    errors = tuple({"error_type": f"<i>type-{i}</i>" * 3, "count": i, "previous": i - 1} for i in range(200))
    files = render_artifacts(replace(data, failure_examples=examples, errors_by_type=errors), {"html", "eml"})
    message = email.message_from_bytes(files["message.eml"], policy=email.policy.default)
    html = message.get_body(("html",)).get_content()
    # what Gmail measures is the message's HTML; its charts are attachments (report.html embeds them)
    assert len(html.encode()) < 102 * 1024
    assert "more agents" in ParsedHTML(html).text
    assert "more agents" in ParsedHTML(files["report.html"].decode()).text


def test_locale_formats_numbers() -> None:
    text = render_artifacts(make_report("executive", locale="de"), {"txt"})["report.txt"].decode()
    assert "2.480" in text and "61,0\xa0%" in text
    # The period's dates are the locale's too, in the subject as in the body (month names: "Nov.", not "Nov").
    fr = render_artifacts(make_report("executive", locale="fr"), {"txt", "eml"})
    assert "23–29 nov. 2026 (2026-W48) · compared with 16–22 nov." in fr["report.txt"].decode()
    assert "week of 23 nov. 2026" in email.message_from_bytes(fr["message.eml"], policy=email.policy.default)["Subject"]
    # Found by a new user: German dates kept the English order ("23 Nov. 2026"); each locale has its own.
    assert "23.–29. Nov. 2026 (2026-W48) · compared with 16.–22. Nov." in text
    de = render_artifacts(make_report("executive", locale="de"), {"eml"})["message.eml"]
    assert "week of 23. Nov. 2026" in email.message_from_bytes(de, policy=email.policy.default)["Subject"]
    us = render_artifacts(make_report("executive", locale="en_US"), {"txt"})["report.txt"].decode().replace("\u2009", " ")
    assert "Nov 23 – 29, 2026 (2026-W48) · compared with Nov 16 – 22" in us
    en = render_artifacts(make_report("executive"), {"txt"})["report.txt"].decode().replace("\u2009", " ")
    assert "23 – 29 Nov 2026 (2026-W48) · compared with 16 – 22 Nov" in en
    # the trend's rows are named by their dates, not ISO week keys
    assert re.search(r"^  19 – 25 Oct +\d", en, re.M) and not re.search(r"^  2026-W4\d", en, re.M)


def test_same_input_same_bytes() -> None:
    first = render_artifacts(make_report("engineering", warning=True), {"json", "html", "txt", "slack"}, now=NOW)
    second = render_artifacts(make_report("engineering", warning=True), {"json", "html", "txt", "slack"}, now=NOW)
    assert first == second


def test_email_and_pdf_are_stable_apart_from_pdf_metadata() -> None:
    a = render_artifacts(make_report(), {"eml"}, now=NOW)["message.eml"]
    b = render_artifacts(make_report(), {"eml"}, now=NOW)["message.eml"]
    strip = re.compile(rb"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment.*", re.S)
    assert strip.sub(b"", a) == strip.sub(b"", b)


# --- custom templates ----------------------------------------------------------------------------

def custom_folder(tmp_path: Path, files: dict[str, str]) -> str:
    for name, body in files.items():
        (tmp_path / name).write_text(body)
    return str(tmp_path)


def with_audience(audience: str, **flags: object):
    data = make_report("executive", **flags)
    return replace(data, audience=audience, settings={**data.settings, "audience": audience})


def test_custom_folder_overrides_a_block(tmp_path: Path) -> None:
    folder = custom_folder(tmp_path, {"report.html.j2": (
        '{% extends "executive.html.j2" %}'
        '{% block savings %}{% call m.section("Our numbers") %}<p class="figure">Savings were {{ metrics.estimated_savings_usd.value }}; '
        'first agent {{ data.by_agent[1].agent_id }}</p>{% endcall %}{% endblock %}')})
    files = render_artifacts(with_audience(folder, hostile=True), {"html", "pdf", "txt", "slack"})
    html = files["report.html"].decode()
    text = ParsedHTML(html).text
    assert "Our numbers" in text and "Savings were $9,739" in text and "Headline figures" in text
    assert HOSTILE_AGENT in text and HOSTILE_AGENT not in html  # autoescape holds in custom templates
    assert "Our numbers" in " ".join(pdf_text(files["report.pdf"]))
    assert "HEADLINE FIGURES" in files["report.txt"].decode()  # no report.txt.j2: the built-in text


def test_custom_folder_can_replace_a_built_in_file(tmp_path: Path) -> None:
    folder = custom_folder(tmp_path, {
        "report.html.j2": '{% extends "engineering.html.j2" %}',
        "email.css": "td, th { background-color: #000000; color: #ffffff; }",
        "report.txt.j2": "Custom text for {{ report.title }}: {{ opening }} {{ data.by_agent[1].agent_id }}\n",
    })
    files = render_artifacts(with_audience(folder, hostile=True), {"html", "txt"})
    assert "background-color:#000" in files["report.html"].decode()  # "#000000", compacted as the built-in's
    assert "Tokens by model" in ParsedHTML(files["report.html"].decode()).text
    assert files["report.txt"].decode().startswith("Custom text for Agent Performance — Executive: Conversations rose")
    assert HOSTILE_AGENT in files["report.txt"].decode()  # plain text is not HTML-escaped


def test_custom_folder_keeps_jinjas_own_filters(tmp_path: Path) -> None:
    """Jinja's ``count`` (another name of ``length``) stays what a custom template's author knows: the filter
    that writes a count in the report's locale is added under a name of its own, not over Jinja's."""
    folder = custom_folder(tmp_path, {"report.html.j2": (
        '{% extends "engineering.html.j2" %}{% block kpis %}<p>{{ data.by_agent | count }} agents'
        '{% if data.by_agent | count > 1 %}, several{% endif %}</p>{% endblock %}')})
    files = render_artifacts(with_audience(folder), {"html"})
    agents = len(with_audience(folder).by_agent)
    assert f"{agents} agents, several" in ParsedHTML(files["report.html"].decode()).text


@pytest.mark.parametrize(("make", "message"), [
    (lambda tmp: str(tmp / "nowhere"), "neither executive, engineering nor a template folder"),
    (lambda tmp: custom_folder(tmp, {"other.html.j2": "x"}), "has no report.html.j2"),
    # Found by a new user: a custom template's error was exit 1 and named no file or line.
    (lambda tmp: custom_folder(tmp, {"report.html.j2": "{% extends 'executive.html.j2' %}\n{% block kpis %}\n"
                                                       "{{ nope.x }}{% endblock %}"}),
     r"^template error in \w+/report.html.j2, line 3: 'nope' is undefined$"),
    (lambda tmp: custom_folder(tmp, {"report.html.j2": "x", "report.txt.j2": "ok\n{% if %}"}),
     r"^template error in \w+/report.txt.j2, line 2: Expected an expression"),
    (lambda tmp: custom_folder(tmp, {"report.html.j2": "{% include 'missing.html.j2' %}"}), "template not found"),
    # Found in a README audit: an empty template sent an empty email, exit 0.
    (lambda tmp: custom_folder(tmp, {"report.html.j2": "  \n"}), r"^custom template \w+/report.html.j2 rendered nothing"),
    (lambda tmp: custom_folder(tmp, {"report.html.j2": "x", "report.txt.j2": "{% if false %}x{% endif %}\n"}),
     r"^custom template \w+/report.txt.j2 rendered nothing"),
])
def test_custom_folder_problems_are_render_errors(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(RenderError, match=message) as caught:
        render_artifacts(with_audience(make(tmp_path)), {"html", "txt"})
    assert caught.value.exit_code == 2  # the user's input, like a bad config


def test_report_html_always_embeds_its_images_and_tables_shorten_when_the_email_is_too_big(monkeypatch) -> None:
    data = make_report("engineering", agents=30)
    full = render_artifacts(data, {"html", "eml"}, now=NOW)
    standalone = full["report.html"].decode()
    email_html = ParsedHTML(standalone)
    assert all(a["src"].startswith("data:") for a in email_html.find("img"))
    mail = email.message_from_bytes(full["message.eml"], policy=email.policy.default)
    cid_size = render.wire_size(mail.get_body(("html",)).get_content())  # measured as sent: quoted-printable
    # Room for the email HTML but not for the embedded images. report.html is a file opened in a
    # browser, where a cid: image is broken (found in a review of a 60-agent report): it keeps data: images.
    monkeypatch.setattr(render, "MAX_HTML_BYTES", cid_size + 500)
    html = render_artifacts(data, {"html"})["report.html"].decode()
    assert all(a["src"].startswith("data:image/png;base64,") for a in ParsedHTML(html).find("img"))
    assert "and 15 more agents" in ParsedHTML(html).text  # tables untouched
    # not even room for the tables: they are halved until the email fits (EMAIL_STEPS: failure examples first, then table rows)
    monkeypatch.setattr(render, "MAX_HTML_BYTES", cid_size - 8000)
    short = ParsedHTML(render_artifacts(data, {"html"})["report.html"].decode()).text
    assert re.search(r"and (2[0-9]) more agents", short)


def test_an_empty_period_has_the_same_sections_in_every_format() -> None:
    """Found in a review: with no events in the week the email left out "Day by day", "Tokens by model" and
    "By agent", the PDF showed the day table, the text showed some: each now says there was nothing."""
    data = make_report("engineering", zero=True)
    data = replace(data, by_agent=(), by_model=(), errors_by_type=(),
                   daily=tuple({**r, "conversations": 0, "errors": 0} for r in data.daily))
    files = render_artifacts(data, {"html", "txt", "pdf"}, now=NOW)
    html = ParsedHTML(files["report.html"].decode()).text
    txt = files["report.txt"].decode()
    pdf = "\n".join(pdf_text(files["report.pdf"]))
    for section in ("Headline figures", "Latency", "Day by day", "Errors by type", "Tokens by model", "By agent",
                    "Recent failures", "Data quality"):
        assert section in html and section.upper() in txt and section in pdf, section
    for said in ("No conversations this week.", "No errors this week.", "No model activity this week.",
                 "No agent activity this week."):
        assert said in html, said
    for said in ("No errors this week.", "No model activity this week.", "No agent activity this week."):
        assert said in txt and said in pdf, said


def test_a_report_in_japanese_stays_under_gmails_limit_on_the_wire() -> None:
    """Found in an email audit: Gmail measures the encoded HTML, and quoted-printable makes each Japanese
    character nine bytes: 93 KB of HTML went out as 117 KB and was clipped."""
    data = make_report("engineering", agents=300, failures=50, locale="ja")
    agents = tuple({**row, "agent_id": f"カスタマーサポート担当エージェント{i}"} for i, row in enumerate(data.by_agent))
    examples = tuple({**row, "error_message": "ツールの呼び出しがタイムアウトしました。" * 8} for row in data.failure_examples)
    errors = tuple({"error_type": f"外部サービスの応答エラー{i}", "count": i, "previous": i - 1} for i in range(200))
    files = render_artifacts(replace(data, by_agent=agents, failure_examples=examples, errors_by_type=errors), {"eml"})
    message = email.message_from_bytes(files["message.eml"], policy=email.policy.default)
    html_part = message.get_body(("html",))
    assert html_part["Content-Transfer-Encoding"] == "quoted-printable"
    assert len(html_part.get_payload(decode=False).encode()) < 102 * 1024
    assert "more agents" in ParsedHTML(html_part.get_content()).text and "カスタマー" in html_part.get_content()


def test_the_email_says_how_many_rows_the_pdf_holds() -> None:
    """Found in an email audit: "and 193 more agents (more in the attached PDF report)", whose PDF listed 100."""
    data = make_report("engineering")
    agents = tuple({**data.by_agent[i % len(data.by_agent)], "agent_id": f"bot-{i:03}"} for i in range(200))
    many = render_artifacts(replace(data, by_agent=agents), {"html", "txt"})
    assert "and 185 more agents (the attached PDF lists the first 100 of 200)" in ParsedHTML(many["report.html"].decode()).text
    assert "the attached PDF lists the first 100 of 200" in many["report.txt"].decode()
    few = render_artifacts(make_report("engineering", agents=30), {"html"})
    assert "more agents (more in the attached PDF report)" in ParsedHTML(few["report.html"].decode()).text


@pytest.mark.parametrize("audience", ["executive", "engineering"])
def test_a_report_of_some_agents_says_so_in_every_format(audience: str) -> None:
    """Beside the dates, as written (agent ids are case-sensitive: not upper-cased with the dates), and in
    report.json; a report of every agent says nothing of it."""
    data = make_report(audience)
    scoped = replace(data, settings={**data.settings, "agents": ["Billing-bot", "support-*"]})
    texts = readable(render_artifacts(scoped, now=NOW))
    for where in ("report.html", "report.txt", "report.pdf", "slack.json plain_text", "message.eml text/html",
                  "message.eml text/plain"):
        text = ParsedHTML(texts[where]).text if "html" in where else texts[where]  # each agent is in a <bdi>
        assert "agents Billing-bot, support-*" in re.sub(r"\s+", " ", text), where
    html = render_artifacts(scoped, now=NOW, formats={"html"})["report.html"].decode()
    assert re.search(r'<span class="scope" style="[^"]*text-transform:\s*none', html)
    assert json.loads(texts["report.json"])["agents"] == ["Billing-bot", "support-*"]
    plain = readable(render_artifacts(data, now=NOW))
    assert all("agents " not in text for text in plain.values()) and "agents" not in json.loads(plain["report.json"])


def test_hebrew_and_arabic_agents_of_the_scope_are_isolated_in_the_text_and_slack() -> None:
    """The scope line is one string in the text report and in Slack: a Hebrew agent beside an Arabic one read
    in the wrong order, the comma between them stranded (found in a rendering audit); each name is isolated."""
    data = make_report("engineering")
    scoped = replace(data, settings={**data.settings, "agents": ["סוכן-2", "وكيل-3", "billing-bot"]})
    texts = readable(render_artifacts(scoped, now=NOW))
    for where in ("report.txt", "slack.json plain_text", "message.eml text/plain"):
        line = re.sub(r"\s+", " ", texts[where])
        assert "agents \u2068סוכן-2\u2069, \u2068وكيل-3\u2069, billing-bot" in line, where


def test_hebrew_and_arabic_agents_of_the_scope_note_are_isolated_in_the_text_and_slack() -> None:
    """compute's note "Only the conversations of a, b (...)" names the agents in one string: isolated as the
    scope line's (found in a rendering audit), at render time; a note not naming them is unchanged."""
    data = make_report("engineering")
    agents = ["סוכן-2", "وكيل-3", "billing-bot"]
    note = (f"Only the conversations of {', '.join(agents)} (a conversation's agent is that of its first event); "
            f"the data quality is of all the events.")
    scoped = replace(data, settings={**data.settings, "agents": agents}, notes=(note, "Another note, סוכן-2."))
    texts = readable(render_artifacts(scoped, now=NOW))
    for where in ("report.txt", "slack.json plain_text", "message.eml text/plain"):
        line = re.sub(r"\s+", " ", texts[where])
        assert ("Notes: Only the conversations of \u2068סוכן-2\u2069, \u2068وكيل-3\u2069, billing-bot (a conversation's"
                in line), where
        assert "Another note, סוכן-2." in line, where
