"""Renderers: one ReportData in, the archive's artifacts out (report.json, .html, .pdf, .txt, .eml, slack.json).

Renderers never query. Event text is redacted and made printable first (``prepare``), then every
format is built from the same display context (``context.build_context``).
"""

from __future__ import annotations

import base64
import quopri
from datetime import datetime
from typing import Any

from ..archive import ARTIFACTS
from ..errors import RenderError
from ..report import ReportData
from .charts import Chart, draw_all
from .context import build_context
from .email import HEADER_POLICY, EmailAddressing, build_message, content_id, message_id, subject
from .html import render_template
from .limits import EMAIL_LIMITS, EMAIL_STEPS, PRINT_LIMITS
from .prepare import prepare
from .slack import render_slack
from .text import render_text

__all__ = ["FORMATS", "EmailAddressing", "message_id", "render_artifacts"]

FORMATS = ("json", "html", "pdf", "txt", "eml", "slack")
MAX_HTML_BYTES = 100_000  # Gmail clips a message whose HTML passes 102 KB; keep a margin


def _images(charts: list[Chart], src: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {c.name: {"src": src[c.name], "alt": c.alt, "width": c.width, "height": c.height}
            for c in charts if c.name in src}


def wire_size(html: str) -> int:
    """The bytes the HTML takes in the message, quoted-printable as :func:`build_message` sends it: what
    Gmail measures (an email audit: Japanese names made 93 KB of HTML 117 KB on the wire, and clipped)."""
    encoded = quopri.encodestring(html.encode("utf-8"))
    return len(encoded) + encoded.count(b"\n")  # each line ends in CRLF on the wire (a re-check: 1.4% short)


def _email_html(data: ReportData, audience: str, ctx: dict[str, Any], charts: list[Chart],
                pngs: dict[str, bytes], cids: dict[str, str]) -> tuple[str, str]:
    """(HTML for the email with cid: images, standalone report.html with data: images).

    Tables are shortened (``EMAIL_STEPS``) until the email HTML fits Gmail's limit. report.html always embeds the
    images: it is a file, opened in a browser, where a cid: reference is a broken image.
    """
    srcs = {name: f"cid:{cid}" for name, cid in cids.items()}
    for step, limits in enumerate(EMAIL_STEPS):
        if step:
            ctx, charts = build_context(data, limits)
        html = render_template(audience, {**ctx, "images": _images(charts, srcs)}, target="email")
        if wire_size(html) <= MAX_HTML_BYTES:
            break
    standalone = html
    for name, cid in cids.items():
        uri = "data:image/png;base64," + base64.b64encode(pngs[name]).decode()
        standalone = standalone.replace(f'src="cid:{cid}"', f'src="{uri}"')
    return html, standalone


def _subject(data: ReportData, ctx: dict[str, Any]) -> str:
    r = ctx["report"]
    line = subject(data.settings.get("subject"), {
        "title": data.title, "period_label": r["period_label"], "period_key": data.period.key,
        "report_id": data.report_id, "audience": r["audience"], "start": r["start"], "end": r["end"],
    })
    # The warning must reach readers who only see the inbox, whatever the subject template says.
    return f"⚠ {ctx['banner']['short']}: {line}" if ctx["banner"] else line


def render_artifacts(data: ReportData, formats: set[str] | None = None, *,
                     email: EmailAddressing | None = None, now: datetime | None = None) -> dict[str, bytes]:
    """Render ``formats`` (json, html, pdf, txt, eml, slack; None = all) as ``{archive filename: bytes}``.

    ``email`` addresses message.eml (None: from agentdigest@localhost, no To); ``now`` is its Date.
    """
    wanted = set(FORMATS) if formats is None else set(formats)
    if unknown := wanted - set(FORMATS):
        raise RenderError(f"unknown format(s) {', '.join(sorted(unknown))} (expected {', '.join(FORMATS)})")
    data = prepare(data)
    audience = str(data.settings.get("audience") or data.audience or "executive")
    out: dict[str, bytes] = {}
    if "json" in wanted:
        out[ARTIFACTS["json"]] = data.to_json().encode()
    if not wanted - {"json"}:
        return out

    ctx, charts = build_context(data, EMAIL_LIMITS)
    html = standalone = text = None
    pdf = None
    cids = {c.name: content_id(c.name, data.report_id, data.period.key) for c in charts}
    pngs: dict[str, bytes] = {}
    if wanted & {"html", "eml"}:
        pngs = draw_all(charts, "png")
        html, standalone = _email_html(data, audience, ctx, charts, pngs, cids)
        if "html" in wanted:
            out[ARTIFACTS["html"]] = standalone.encode()
    if wanted & {"txt", "eml"}:
        text = render_text(ctx, audience)
        if "txt" in wanted:
            out[ARTIFACTS["txt"]] = text.encode()
    if wanted & {"pdf", "eml"}:
        from .pdf import render_pdf

        print_ctx, print_charts = build_context(data, PRINT_LIMITS)
        svgs = {name: "data:image/svg+xml;base64," + base64.b64encode(svg).decode()
                for name, svg in draw_all(print_charts, "svg").items()}
        page_html = render_template(audience, {**print_ctx, "images": _images(print_charts, svgs)},
                                    target="print", page_size=str(data.settings.get("page_size") or "A4"))
        pdf = render_pdf(page_html)
        if "pdf" in wanted:
            out[ARTIFACTS["pdf"]] = pdf
    if "slack" in wanted:
        out[ARTIFACTS["slack"]] = render_slack(ctx)
    if "eml" in wanted:
        addressing = email or EmailAddressing()
        used = {name for name in cids if f"cid:{cids[name]}" in (html or "")}
        msg = build_message(
            subject_line=_subject(data, ctx), text=text or "", html=html or "",
            images={cids[name]: pngs[name] for name in cids if name in used}, pdf=pdf,
            pdf_filename=f"{data.report_id}-{data.period.key}.pdf", addressing=addressing,
            msg_id=message_id(data.report_id, data.period.key, addressing.recipient_key, addressing.domain),
            date=now,
        )
        out[ARTIFACTS["eml"]] = msg.as_bytes(policy=HEADER_POLICY)
    return out
