"""message.eml: parses back with text, HTML, CID images and the PDF; subject, Date and Message-ID."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import pytest

from agentdigest.errors import RenderError
from agentdigest.render import EmailAddressing, message_id, render_artifacts
from render_fixtures import ParsedHTML, make_report, parse_eml, rendered

NOW = datetime(2026, 11, 30, 8, 0, 5, tzinfo=timezone.utc)
TEAM = EmailAddressing(sender="Agent reports <reports@example.com>", to=["cto@example.com", "vp@example.com"],
                       cc=["ops@example.com"], reply_to="agents-team@example.com")


@pytest.mark.parametrize(("audience", "flags"), [
    ("executive", {}), ("engineering", {"warning": True, "hostile": True, "pii": True}), ("engineering", {"zero": True}),
])
def test_structure_parses_back(audience: str, flags: dict) -> None:
    files = rendered(audience, **flags)
    msg = parse_eml(files["message.eml"])
    assert msg.get_content_type() == "multipart/mixed"
    alternative, attachment = msg.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    text_part, related = alternative.get_payload()
    assert text_part.get_content_type() == "text/plain"
    assert text_part.get_content().replace("\r\n", "\n") == files["report.txt"].decode()
    assert related.get_content_type() == "multipart/related"
    html_part, *images = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    html = html_part.get_content()
    referenced = {a["src"][4:] for a in ParsedHTML(html).find("img")}
    attached = {img["Content-ID"].strip("<>") for img in images}
    assert referenced == attached and (attached or flags.get("zero"))
    for img in images:
        assert img.get_content_type() == "image/png"
        assert img.get_content().startswith(b"\x89PNG\r\n\x1a\n")
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"weekly-{audience}-2026-W48.pdf"
    assert attachment.get_content() == files["report.pdf"]


@pytest.mark.parametrize("template", ["{title} — {period_label}", "Weekly {period_key}"])
def test_the_subject_says_when_the_data_is_incomplete_whatever_the_template(template: str) -> None:
    complete = parse_eml(render_artifacts(make_report(subject=template), {"eml"}, now=NOW)["message.eml"])
    warned = parse_eml(render_artifacts(make_report(subject=template, warning=True), {"eml"}, now=NOW)["message.eml"])
    assert not complete["Subject"].startswith("⚠")
    assert warned["Subject"] == f"⚠ Data incomplete (81.4%): {complete['Subject']}"


def test_headers_from_the_addressing() -> None:
    files = render_artifacts(make_report("executive"), {"eml"}, email=TEAM, now=NOW)
    msg = parse_eml(files["message.eml"])
    assert msg["From"] == "Agent reports <reports@example.com>"
    assert msg["To"] == "cto@example.com, vp@example.com"
    assert msg["Cc"] == "ops@example.com"
    assert msg["Reply-To"] == "agents-team@example.com"
    assert msg["Subject"] == "Agent Performance — Executive — week of 23 Nov 2026"
    assert parsedate_to_datetime(msg["Date"]) == NOW
    assert msg["Auto-Submitted"] == "auto-generated"
    assert re.fullmatch(r"<[0-9a-f]{24}\.2026-W48@example\.com>", msg["Message-ID"])
    assert msg["Message-ID"] == message_id("weekly-executive", "2026-W48", "cto@example.com,ops@example.com,vp@example.com",
                                           "example.com")
    assert set(files) == {"message.eml"}


def test_without_addressing() -> None:
    msg = parse_eml(rendered("executive")["message.eml"])
    assert msg["From"] == "agentdigest@localhost"
    assert msg["To"] is None
    assert msg["Message-ID"].endswith("@localhost>")


def test_message_id_is_stable_per_report_period_and_recipient() -> None:
    a = message_id("weekly-exec", "2026-W48", "cto@example.com", "example.com")
    assert a == message_id("weekly-exec", "2026-W48", "cto@example.com", "example.com")
    assert len({a, message_id("weekly-exec", "2026-W49", "cto@example.com", "example.com"),
                message_id("weekly-eng", "2026-W48", "cto@example.com", "example.com"),
                message_id("weekly-exec", "2026-W48", "leadership", "example.com")}) == 4
    assert message_id("r", "p", "k", "not a domain!").endswith("@agentdigest.localhost>")
    # the archived email's id: same recipients in any order and case -> same id
    first = render_artifacts(make_report(), {"eml"}, email=TEAM, now=NOW)["message.eml"]
    shuffled = EmailAddressing(sender=TEAM.sender, to=["VP@example.com", "cto@example.com"], cc=TEAM.cc)
    second = render_artifacts(make_report(), {"eml"}, email=shuffled, now=NOW)["message.eml"]
    assert parse_eml(first)["Message-ID"] == parse_eml(second)["Message-ID"]


@pytest.mark.parametrize(("template", "expected"), [
    ("Agent report — {period_label}", "Agent report — week of 23 Nov 2026"),
    ("[{report_id}] {period_key}: {title}", "[weekly-executive] 2026-W48: Agent Performance — Executive"),
    ("{title:.5} {{literal}}", "Agent {literal}"),
])
def test_subject_template(template: str, expected: str) -> None:
    files = render_artifacts(make_report(subject=template), {"eml"}, now=NOW)
    assert parse_eml(files["message.eml"])["Subject"] == expected


@pytest.mark.parametrize(("template", "title"), [
    ("{title} — {period_label}", "Weekly =?utf-8?q?=0D=0ABcc:_x@evil.example?="),
    ("=?utf-8?q?{title}?=", "=0D=0ABcc:_x@evil.example"),  # each passes alone; together an encoded word
])
def test_a_subject_decoding_to_a_line_break_is_refused(template: str, title: str) -> None:
    """Found in a leak audit: the email package decodes an RFC 2047 encoded word in the Subject and wrote the
    CR LF it decodes to raw, so the archived message.eml (and the email sent) carried a Bcc header of the title's."""
    with pytest.raises(RenderError, match="line breaks"):
        render_artifacts(make_report(subject=template, title=title), {"eml"}, now=NOW)
    plain = render_artifacts(make_report(title="Weekly =?utf-8?q?J=C3=B6rg?="), {"eml"}, now=NOW)["message.eml"]
    assert b"\nBcc" not in plain and parse_eml(plain)["Subject"].startswith("Weekly Jörg")


@pytest.mark.parametrize("template", ["{title.__class__}", "{nope}", "{0}", "{title", "{period_label[0]}"])
def test_subject_template_refuses_anything_but_plain_fields(template: str) -> None:
    with pytest.raises(RenderError, match="subject template"):
        render_artifacts(make_report(subject=template), {"eml"}, now=NOW)
