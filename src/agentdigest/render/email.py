"""The report email (``message.eml``) with the stdlib ``email.message.EmailMessage``.

Structure, as the major clients expect it::

    multipart/mixed
    ├── multipart/alternative
    │   ├── text/plain                 report.txt
    │   └── multipart/related
    │       ├── text/html              the email HTML, images as cid: references
    │       └── image/png ...          charts, by Content-ID
    └── application/pdf                report.pdf, attached

The Message-ID is derived from (report, period, recipient), so a resend of the same report to the
same people carries the same id and threads (and de-duplicates) in their mail client.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

from ..channel_settings import no_line_breaks
from ..errors import RenderError
from ..settings import SUBJECT_FIELDS  # the one list, also validated with the config

DEFAULT_SENDER = "agentdigest@localhost"
DEFAULT_DOMAIN = "agentdigest.localhost"
_DOMAIN_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class EmailAddressing:
    """Who the email is from and to: the addressing of the report's first email channel."""

    sender: str = DEFAULT_SENDER
    to: tuple[str, ...] = field(default_factory=tuple)
    cc: tuple[str, ...] = field(default_factory=tuple)
    reply_to: str | None = None
    message_id_domain: str | None = None
    #: never a header; part of the recipient set that the Message-ID is derived from (as the channel's is)
    bcc: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "to", tuple(self.to or ()))
        object.__setattr__(self, "cc", tuple(self.cc or ()))
        object.__setattr__(self, "bcc", tuple(self.bcc or ()))

    @property
    def domain(self) -> str:
        """The Message-ID domain: the one set, else the sender's, else agentdigest.localhost."""
        for candidate in (self.message_id_domain, parseaddr(self.sender)[1].rpartition("@")[2]):
            if candidate and _DOMAIN_RE.match(candidate) and ".." not in candidate:
                return candidate
        return DEFAULT_DOMAIN

    @property
    def recipient_key(self) -> str:
        """The recipients (to, cc and bcc) as one stable string: see :func:`recipient_key`."""
        return recipient_key((*self.to, *self.cc, *self.bcc))


def recipient_key(addresses: Iterable[str]) -> str:
    """Envelope addresses as one stable string (order, case and display names do not matter); the
    Message-ID is derived from it, by the renderer for the archive and by the email channel alike."""
    return ",".join(sorted({(parseaddr(a)[1] or a.strip()).lower() for a in addresses})) or "archive"


def _atom(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", text).strip("-")[:40] or "x"


def message_id(report_id: str, period_key: str, recipient_key: str, domain: str = DEFAULT_DOMAIN) -> str:
    """``<HASH.PERIOD@domain>``: the same for the same (report, period, recipient).

    Kept short so the header is never folded (some parsers keep the fold's whitespace).
    """
    digest = hashlib.sha256("\x1f".join((report_id, period_key, recipient_key)).encode()).hexdigest()[:24]
    if not (_DOMAIN_RE.match(domain or "") and ".." not in domain):
        domain = DEFAULT_DOMAIN
    return f"<{digest}.{_atom(period_key)[:16]}@{domain}>"


def content_id(name: str, report_id: str, period_key: str) -> str:
    """The Content-ID (without angle brackets) of a chart image in this report's email."""
    digest = hashlib.sha256(f"{report_id}\x1f{period_key}".encode()).hexdigest()[:12]
    return f"{_atom(name)}.{digest}@agentdigest"


class _SubjectFormatter(string.Formatter):
    """str.format for the subject template, limited to plain fields (no attribute or index access)."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        if not field_name.isidentifier():
            raise RenderError(f"subject template field {{{field_name}}} is not allowed "
                              f"(expected one of {', '.join(SUBJECT_FIELDS)})")
        return super().get_field(field_name, args, kwargs)

    def get_value(self, key: Any, args: Any, kwargs: Any) -> Any:
        if key not in kwargs:
            raise RenderError(f"subject template names an unknown field {{{key}}} "
                              f"(expected one of {', '.join(SUBJECT_FIELDS)})")
        return kwargs[key]


def subject(template: str | None, fields: dict[str, str]) -> str:
    """The Subject line from the report's template, e.g. "{title} — {period_label}"."""
    try:
        text = _SubjectFormatter().vformat(template or "{title} — {period_label}", (), fields)
    except (ValueError, IndexError) as exc:
        raise RenderError(f"subject template {template!r} is invalid: {exc}") from None
    line = " ".join(text.split())[:250]
    try:  # the template and the title pass apart; together they may make an encoded word ("=?utf-8?q?{title}?=")
        no_line_breaks(line)
    except ValueError as exc:
        raise RenderError(f"the subject {line!r} {exc}") from None
    return line


#: SMTP line endings; bodies encoded in lines of 76 characters, quoted-printable's limit (RFC 2045).
_POLICY = policy.SMTP.clone(max_line_length=76)
#: Headers are written folded at 78 (RFC 5322's recommendation), as before the bodies' 76.
HEADER_POLICY = policy.SMTP


def build_message(*, subject_line: str, text: str, html: str, images: dict[str, bytes], pdf: bytes | None,
                  pdf_filename: str, addressing: EmailAddressing | None, msg_id: str,
                  date: datetime | None = None) -> EmailMessage:
    """The complete email. ``images`` maps Content-IDs (as referenced by ``cid:`` in ``html``) to PNG bytes."""
    addressing = addressing or EmailAddressing()
    msg = EmailMessage(policy=_POLICY)
    msg["Subject"] = subject_line
    msg["From"] = addressing.sender
    if addressing.to:
        msg["To"] = ", ".join(addressing.to)
    if addressing.cc:
        msg["Cc"] = ", ".join(addressing.cc)
    if addressing.reply_to:
        msg["Reply-To"] = addressing.reply_to
    when = date or datetime.now(timezone.utc)
    msg["Date"] = format_datetime(when if when.tzinfo else when.replace(tzinfo=timezone.utc))
    msg["Message-ID"] = msg_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: out-of-office robots should not answer
    # Quoted-printable, never raw 8-bit: it went out as 8bit without BODY=8BITMIME when every line was
    # short (relays may reject or re-encode it, breaking DKIM), as base64 when one was long.
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    if images:
        html_part = msg.get_payload()[1]
        for cid, png in images.items():
            html_part.add_related(png, "image", "png", cid=f"<{cid}>", disposition="inline",
                                  filename=f"{cid.split('@')[0].split('.')[0]}.png")
        html_part.set_param("type", "text/html")  # RFC 2387: the root part's type
    if pdf is not None:
        msg.add_attachment(pdf, "application", "pdf", filename=pdf_filename)
    # Boundaries derived from the Message-ID instead of random ones: the same report renders to
    # the same bytes. "=_" cannot occur in base64 or quoted-printable bodies.
    seed = hashlib.sha256(msg_id.encode()).hexdigest()[:24]
    for depth, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary(f"=_agentdigest_{depth}_{seed}")
    return msg
