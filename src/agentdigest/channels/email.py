"""The email channel: sends the archived ``message.eml`` over SMTP with smtplib.

``smtp_url`` is ``smtp://``, ``smtp+starttls://`` or ``smtps://`` with an optional
``user:password@`` (URL-encoded). Every socket call has the channel's ``timeout``.

Each address (to, cc and bcc alike) is its own ledger target: a refused recipient is recorded
on its own and only it is retried, never the ones that already got the report. A failure after
the message's final "." (no answer, a dropped connection) is ambiguous: the relay may have it, so
it is not sent again in that run; the next run sends it, with the same Message-ID (stable for
report, period and recipient set), so mail clients that de-duplicate can recognise it.
"""

from __future__ import annotations

import base64
import re
import smtplib
import time
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formatdate, parseaddr
from urllib.parse import unquote, urlsplit

from .. import config
from ..errors import DeliveryError
from .base import (BaseChannel, ChannelFailure, CheckResult, Delivery, Receipt, TargetResult, arrived_maybe,
                   unanswered)

_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
#: Seconds to wait for the answer to the message's final "." (RFC 5321 4.5.3.2.6), when ``timeout`` is shorter.
DATA_END_TIMEOUT = 600.0
_UNFOLDED = policy.SMTP.clone(max_line_length=998)


class _WirePolicy(type(policy.SMTP)):  # type: ignore[misc]
    """CRLF, headers folded at 78 as the archived message's are; a Message-ID only past RFC 5322's hard limit,
    so it stays on its own line (a folded one is legal but some tools mis-parse it). All at 998 made a test
    send's "[test] " Subject of a long non-ASCII title one 296-character encoded word, where RFC 2047 allows 75
    and strict clients show it raw (found in a rendering audit)."""

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() == "message-id":
            return _UNFOLDED.fold_binary(name, value)
        return super().fold_binary(name, value)


_WIRE = _WirePolicy(linesep="\r\n")


@dataclass(frozen=True)
class _Server:
    scheme: str
    host: str
    port: int
    user: str | None
    password: str | None


def _server(url: str) -> _Server:
    parts = urlsplit(url)
    return _Server(
        scheme=parts.scheme.lower(),
        host=parts.hostname or "localhost",
        port=parts.port or _PORTS[parts.scheme.lower()],
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def bare(address: str) -> str:
    """``Name <a@example.com>`` -> ``a@example.com`` (the SMTP envelope form)."""
    return parseaddr(address)[1] or address.strip()


def message_id(report_id: str, period_key: str, addresses: list[str], variant: str, domain: str) -> str:
    """A Message-ID that is the same for the same (report, period, recipient set): the render package's
    scheme, which wrote the archived message, so a plain send keeps the archived one (imported late,
    with the renderers). ``variant`` sets a test send or a forced resend apart."""
    from ..render.email import message_id as render_message_id, recipient_key

    return render_message_id(report_id, period_key, recipient_key(addresses) + variant, domain)


class EmailChannel(BaseChannel):
    """Sends the report email to to/cc/bcc through an SMTP relay."""

    type = "email"
    settings_model = config.EmailChannel

    def __init__(self, name: str, settings: config.EmailChannel) -> None:
        super().__init__(name, settings)
        self._server = _server(settings.smtp_url.get_secret_value())

    def describe(self) -> str:
        return self.mask(self.settings.smtp_url.get_secret_value())

    def needs(self) -> tuple[str, ...]:
        return ("message.eml",)

    def targets(self, artifacts: Mapping[str, bytes]) -> list[str]:
        s = self.settings
        seen: dict[str, str] = {}
        for address in (*s.to, *s.cc, *s.bcc):
            seen.setdefault(bare(address).lower(), bare(address))
        return list(seen.values())

    def deliver(self, delivery: Delivery) -> Receipt:
        archived = self.artifact(delivery, "message.eml")
        message, changed = self._prepare(archived, delivery)
        # The same bytes on every attempt: the archived ones when this channel's headers are already
        # theirs (message.eml is then the email as sent), else the message with its headers replaced.
        body = message.as_bytes(policy=_WIRE) if changed else archived
        sender = bare(self.settings.from_)
        mid = str(message["Message-ID"])
        pending = list(delivery.targets)
        done: dict[str, TargetResult] = {}
        tries = 0

        def attempt() -> None:
            nonlocal tries
            tries += 1
            try:
                refused = self._send(sender, pending, body)
            except DeliveryError as exc:
                # No answer after the message: the recipients refused for good before it stay refused, not
                # "may have arrived" (a re-check: a 550 recipient was tried again by the next run)
                for rcpt, (code, text) in getattr(exc, "refused", {}).items():
                    if rcpt in pending and not 400 <= code < 500:
                        error = self.mask(f"{rcpt} refused by {self.describe()}: {code} {_text(text)}")
                        done[rcpt] = TargetResult(rcpt, "failed", error=error, attempts=tries)
                        pending.remove(rcpt)
                raise
            deferred = []
            for rcpt in list(pending):
                answer = refused.get(rcpt) or refused.get(rcpt.lower())
                if answer is None:
                    done[rcpt] = TargetResult(rcpt, "sent", mid, attempts=tries)
                    pending.remove(rcpt)
                    continue
                code, text = answer[0], _text(answer[1])
                if 400 <= code < 500:
                    deferred.append(f"{rcpt} ({code} {text})")
                else:  # refused for good: not part of any retry
                    error = self.mask(f"{rcpt} refused by {self.describe()}: {code} {text}")
                    done[rcpt] = TargetResult(rcpt, "failed", error=error, attempts=tries)
                    pending.remove(rcpt)
            if pending:
                raise DeliveryError(f"{self.describe()} deferred {', '.join(deferred)}", retryable=True)

        try:
            tried = self.retry(attempt, pending=lambda: pending)
            attempts, waits = tried.attempts, tried.waits
        except (KeyboardInterrupt, SystemExit) as exc:
            # Stopped during a retry's wait: the recipients that got it are said so, and recorded as sent by
            # the caller (a re-check: they were recorded failed and got it twice from the next run)
            exc.delivered = {t: r for t, r in done.items() if r.state == "sent"}  # type: ignore[union-attr]
            raise
        except ChannelFailure as exc:
            arrived = arrived_maybe(exc)
            if arrived:
                exc.provider_id = mid  # the ledger keeps it: the relay's log finds the message by it
            if not done:
                raise
            attempts, waits = exc.attempts, exc.waits
            for rcpt in pending:
                done[rcpt] = TargetResult(rcpt, "failed", error=self.mask(exc), retryable=exc.retryable,
                                          may_have_arrived=arrived,
                                          attempts=attempts, provider_id=exc.provider_id)
        return Receipt(tuple(done[t] for t in delivery.targets), attempts, waits, {"message_id": mid})

    def check(self) -> CheckResult:
        try:
            with self._connect():
                pass
        except (smtplib.SMTPException, OSError) as exc:
            return CheckResult(self.name, False, str(self._classify(exc)))
        login = f", logged in as {self._server.user}" if self._server.user else ""
        return CheckResult(self.name, True, f"{self.describe()}: connected{login}; nothing sent")

    def _prepare(self, raw: bytes, delivery: Delivery) -> tuple[EmailMessage, bool]:
        """The archived message with this channel's headers (Bcc never among them), and whether any
        header had to change."""
        message = BytesParser(_class=EmailMessage, policy=policy.default).parsebytes(raw)
        s = self.settings
        # A test or a resend is a new message each time, even two in one second (a delivery audit: the resend's
        # variant was its Date, to the second, and two resends shared one Message-ID).
        variant = ((f";test={time.time_ns()}" if delivery.test else "")
                   + (f";resend={time.time_ns()}" if delivery.resend else ""))
        headers = {
            "From": s.from_,
            "To": ", ".join(s.to),
            "Cc": ", ".join(s.cc) or None,
            "Reply-To": s.reply_to,
            "Bcc": None,
            "Message-ID": message_id(delivery.report_id, delivery.period_key, self.targets(delivery.artifacts),
                                     variant, bare(s.from_).rpartition("@")[2]),
        }
        if delivery.test:
            headers["Subject"] = "[test] " + str(message.get("Subject", ""))
        if "Date" not in message or delivery.resend or delivery.test:
            # A resend or a test is a new message (its own Message-ID): dated now, not when the archived
            # one was rendered (an email audit: a resend sorted among days-old mail).
            headers["Date"] = formatdate(usegmt=True)  # +0000 would do too; -0000 means "zone unknown"
        changed = False
        for name, value in headers.items():
            if value is not None and ("\r" in value or "\n" in value):  # header injection: refuse rather than send
                raise DeliveryError(f"channel {self.name!r}: the {name} header would contain a line break")
            current = message.get_all(name) or []
            if [str(v) for v in current] == ([] if value is None else [value]):
                continue
            changed = True
            del message[name]
            if value is not None:
                message[name] = value
        return message, changed

    def _connect(self) -> smtplib.SMTP:
        srv, timeout = self._server, self.settings.timeout
        ca = str(self.settings.ca_file) if self.settings.ca_file else None
        context = ssl.create_default_context(cafile=ca)
        if srv.scheme == "smtps":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(srv.host, srv.port, timeout=timeout, context=context)
        else:
            try:
                smtp = smtplib.SMTP(srv.host, srv.port, timeout=timeout)
            except smtplib.SMTPServerDisconnected as exc:
                if isinstance(exc.__context__, TimeoutError):  # connected, and the server said nothing
                    raise _NoGreeting() from None
                raise
        try:
            _hello(smtp)
            if srv.scheme == "smtp+starttls":
                smtp.starttls(context=context)
                _hello(smtp)
            if srv.user:
                _login(smtp, srv.user, srv.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _send(self, sender: str, recipients: list[str], body: bytes) -> dict[str, tuple[int, bytes]]:
        """One SMTP transaction; returns the refused recipients (empty when all were accepted).

        Not smtplib's sendmail, for two answers it gets wrong (found in an email audit):
        - a 421 to one RCPT ends the session before DATA, so nobody got the message; sendmail reported only
          the recipients tried so far as refused, and the others were recorded as sent;
        - once the message's final "." is out, a timeout or a dropped connection leaves the server possibly
          holding it; retrying in the same run sent up to ten copies to a slow relay's recipients.
        """
        body_sent = False
        refused: dict[str, tuple[int, bytes]] = {}
        try:
            smtp = self._connect()
            try:
                code, answer = smtp.mail(sender, ["SIZE=%d" % len(body)] if smtp.has_extn("size") else [])
                if code != 250:
                    raise smtplib.SMTPSenderRefused(code, answer, sender)
                for rcpt in recipients:
                    code, answer = smtp.rcpt(rcpt)
                    if code == 421:  # the server is closing: no one gets this message, every one is retried
                        raise smtplib.SMTPResponseException(code, answer)
                    if code not in (250, 251):
                        refused[rcpt] = (code, answer)
                if len(refused) < len(recipients):
                    code, answer = smtp.docmd("data")
                    if code != 354:
                        raise smtplib.SMTPDataError(code, answer)
                    data = re.sub(rb"(?m)^\.", b"..", body)
                    smtp.send(data + (b"" if data.endswith(b"\r\n") else b"\r\n") + b".\r\n")
                    body_sent = True
                    # RFC 5321 4.5.3.2.6: up to 10 minutes for the answer to the final "." (a relay may scan
                    # the message first); given up sooner, a slow relay got a copy from every run (a re-check)
                    if smtp.sock is not None:
                        smtp.sock.settimeout(max(self.settings.timeout, DATA_END_TIMEOUT))
                    code, answer = smtp.getreply()
                    if code != 250:
                        raise smtplib.SMTPDataError(code, answer)
                else:  # every recipient refused: nothing to send
                    smtp.rset()
            except BaseException:
                # Not smtplib's `with`: its QUIT would read the answer still owed to an interrupted
                # DATA (a "250 queued" read as QUIT's reply) and replace a Ctrl-C by an SMTP error.
                smtp.close()
                raise
        except (smtplib.SMTPException, OSError) as exc:
            error = (unanswered(self, self.describe(), exc) if body_sent and not isinstance(exc, smtplib.SMTPResponseException)
                     else self._classify(exc))
            error.refused = refused  # type: ignore[attr-defined]  # the RCPT answers had before it failed
            raise error from None
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):  # the message is accepted; a rude goodbye changes nothing
            smtp.close()
        return refused

    def _classify(self, exc: BaseException) -> DeliveryError:
        """Transient: connection trouble and 4xx answers. Permanent: 5xx, refused login, TLS trust."""
        where = self.describe()
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            code = exc.smtp_code
            return DeliveryError(self.mask(f"login refused by {where}: {code} {_text(exc.smtp_error)}"),
                                 retryable=400 <= code < 500)
        if isinstance(exc, smtplib.SMTPResponseException):
            code = exc.smtp_code
            return DeliveryError(self.mask(f"{where} answered {code} {_text(exc.smtp_error)}"),
                                 retryable=400 <= code < 500)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return DeliveryError(self.mask(f"{where}: {exc}"))
        if isinstance(exc, ssl.SSLCertVerificationError):
            return DeliveryError(self.mask(f"TLS certificate of {where} is not trusted ({exc.verify_message}); "
                                           "set ca_file for a private CA"))
        if isinstance(exc, ssl.SSLError):
            return DeliveryError(self.mask(f"TLS failed with {where} ({exc.reason}); is the scheme right "
                                           "(smtps:// for port 465, smtp+starttls:// for 587)?"))
        if isinstance(exc, _NoGreeting):
            # An implicit-TLS server (port 465) waits for the TLS handshake in silence: the likeliest cause. On port
            # 465 itself it is the cause, and every retry waits the same way (found in a delivery audit: retried
            # for the whole retry budget, 5 minutes, before failing): refused for good at once.
            if self._server.port == 465:
                return DeliveryError(self.mask(f"{where} sent no greeting within {self.settings.timeout:g}s: port 465 "
                                               "is for implicit TLS; use smtps://, where TLS starts at once "
                                               "(smtp+starttls:// is for port 587)"))
            return DeliveryError(self.mask(f"{where} sent no greeting within {self.settings.timeout:g}s (is the "
                                           "scheme right? smtps:// for port 465, where TLS starts at once)"),
                                 retryable=True)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            if isinstance(exc.__context__, TimeoutError):  # smtplib words a read timeout as a closed connection
                return DeliveryError(self.mask(f"no answer from {where} within {self.settings.timeout:g}s"),
                                     retryable=True)
            return DeliveryError(self.mask(f"{where} closed the connection: {exc}"), retryable=True)
        return DeliveryError(self.mask(f"cannot reach {where}: {exc}"), retryable=True)


class _NoGreeting(OSError):
    """The connection was made, but the server sent no greeting within the timeout."""


def _hello(smtp: smtplib.SMTP) -> None:
    """EHLO, or HELO from a server without ESMTP; a 4xx (421 "too busy") is a transient answer, retried,
    not the "STARTTLS extension not supported" smtplib reports next (found in an email audit)."""
    code, answer = smtp.ehlo()
    if 400 <= code < 500:
        raise smtplib.SMTPResponseException(code, answer)
    if code != 250:
        code, answer = smtp.helo()
        if code != 250:
            raise smtplib.SMTPHeloError(code, answer)


def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """AUTH once, with the best advertised mechanism.

    smtplib's login() retries a refused password with every other mechanism; that only adds
    failed attempts (servers count them towards lockouts) and some servers stall on the second.
    """
    if not smtp.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("the server offers no AUTH (is the scheme right?)")
    offered = smtp.esmtp_features["auth"].upper().split()
    mechanism = next((m for m in ("CRAM-MD5", "PLAIN", "LOGIN") if m in offered), None)
    if mechanism is None:
        raise smtplib.SMTPNotSupportedError(f"no supported AUTH mechanism (offered: {' '.join(offered)})")
    if not (user + password).isascii():
        # smtplib encodes AUTH as ASCII; PLAIN (RFC 4616) and LOGIN carry UTF-8, so send those by hand.
        mechanism = next((m for m in ("PLAIN", "LOGIN") if m in offered), None)
        if mechanism is None:
            raise smtplib.SMTPNotSupportedError(f"a non-ASCII user or password needs AUTH PLAIN or LOGIN "
                                                f"(offered: {' '.join(offered)})")
        _utf8_login(smtp, mechanism, user, password)
        return
    smtp.user, smtp.password = user, password
    smtp.auth(mechanism, getattr(smtp, "auth_" + mechanism.lower().replace("-", "_")))


def _utf8_login(smtp: smtplib.SMTP, mechanism: str, user: str, password: str) -> None:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode("utf-8")).decode("ascii")

    if mechanism == "PLAIN":
        code, answer = smtp.docmd("AUTH", "PLAIN " + b64(f"\0{user}\0{password}"))
    else:
        code, answer = smtp.docmd("AUTH", "LOGIN " + b64(user))
        if code == 334:
            code, answer = smtp.docmd(b64(password))
    if code not in (235, 503):
        raise smtplib.SMTPAuthenticationError(code, answer)


def _text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())
