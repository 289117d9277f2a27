"""What a channel may say: the settings of the email, Slack, webhook and outbox channels as pydantic
models, the base every channel's settings (a plug-in's too) extend, and the registry of channel types.

A report's, a source's and the config's own settings are :mod:`agentdigest.settings`.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from contextlib import contextmanager
from contextvars import ContextVar
from email import policy as email_policy
from pathlib import Path
from typing import Annotated, Any, Iterable, Iterator, Literal, Union
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Discriminator, Field, SecretStr, Tag, field_validator, model_validator

from .masking import secret_query

_EMAIL_RE = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$|^[^<>\r\n]*<[^@\s<>,;]+@[^@\s<>,;]+>$")


#: How much of a value an error repeats (found in a config audit: a 5,000-character value made a 5,000-character
#: "one line"); the rest is said by its length.
SHOWN_CHARS = 60
#: While a config validates: each text put in an environment variable's place, under the ``${VAR}`` written in the
#: file (config.parse_config sets it), so that what a message repeats is what the file says, never a secret.
_WRITTEN_AS: ContextVar[dict[str, str]] = ContextVar("written_as", default={})


@contextmanager
def variables_shown_as_written(used: dict[str, str]) -> Iterator[None]:
    """Within it, :func:`shown` repeats each text in ``used`` as the ``${VAR}`` it replaced."""
    token = _WRITTEN_AS.set(used)
    try:
        yield
    finally:
        _WRITTEN_AS.reset(token)


def as_written(text: str, used: dict[str, str], escaped: bool = False) -> str:
    """``text`` with each text of ``used`` (4 characters or more: not "2" everywhere for THREADS=2) put back as the
    ``${VAR}`` it replaced, in any case: a validator may repeat it lowered (a cron field, a database driver), and a
    secret lowered is still a secret. ``escaped``: its escaped form (as repr writes it) too."""
    for expanded in sorted(used, key=len, reverse=True):
        if len(expanded) >= 4:
            forms = {expanded, repr(expanded)[1:-1]} if escaped else {expanded}
            for form in sorted(forms, key=len, reverse=True):
                text = re.sub(re.escape(form), lambda _: used[expanded], text, flags=re.IGNORECASE)
    return text


def shown(value: Any, *, path: bool = False) -> str:
    """``value`` as an error message repeats it: text quoted and escaped on one line (a line break or another
    control character in it cannot split the message), what came from an environment variable as the ``${VAR}``
    written in the file (it may be a secret), and at most :data:`SHOWN_CHARS` characters, with "…" and the length
    for the rest. Of a ``path``, the end is kept (the file's name), not the beginning."""
    if isinstance(value, str):
        text = as_written(value, _WRITTEN_AS.get())
        if len(text) <= SHOWN_CHARS:
            return repr(text)
        if path:
            return f"…{text[-SHOWN_CHARS:]!r} ({len(text):,} characters)"
        return f"{text[:SHOWN_CHARS]!r}… ({len(text):,} characters)"
    try:
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else repr(value)
    except ValueError:  # an integer of more digits than Python prints
        return "an integer too long to show"
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}… ({len(text):,} characters)"


def key_part(name: str) -> str:
    """One key of a key path (or a name a message lists) as it reads on one line: as written if it is printable
    and short, else as :func:`shown` repeats a value: quoted and escaped (``'a\\nb'``; found by a config fuzz: an
    unknown key "a\\nb" split the error in two), its beginning kept with "…" and the length (found in a config
    audit: an unknown key of 5,000 characters made a 5,000-character "one line")."""
    return name if name and name.isprintable() and len(name) <= SHOWN_CHARS else shown(name)


def listed(names: Iterable[str], *, none: str = "none") -> str:
    """Names as a hint lists them ("box, mail"), each as :func:`key_part` shows it; those past about two
    :data:`SHOWN_CHARS` characters are counted, not listed ("ch000, ch001, ... ch020 and 479 more"). Found in a
    config audit: an unknown channel among 500 defined listed all 500 in its "one line"."""
    names = list(names)
    out: list[str] = []
    for name in names:
        if out and len(", ".join(out)) > 2 * SHOWN_CHARS:
            return f"{', '.join(out)} and {len(names) - len(out):,} more"
        out.append(key_part(name))
    return ", ".join(out) or none


class StrictModel(BaseModel):
    # inf and nan are no setting (found in a config audit: max_conversation_hours = inf failed every run
    # with an OverflowError, expected_events_per_day = inf read as a permanent outage)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


def _decoded(value: str) -> str:
    """``value`` as the email package reads it in a header: RFC 2047 encoded words decoded."""
    return str(email_policy.default.header_factory("Subject", value)) if "=?" in value else value


# Invisible characters that reorder or hide what a Subject shows: bidi embeddings and overrides (U+202A-U+202E),
# isolates (U+2066-U+2069), the zero-width space and the BOM. "Invoice \u202egnp.exe" reads "Invoice exe.png"
# (found in a leak audit). Also what no subject needs and what splits a word unseen ("In\u2060voice" is not the
# word a filter or a search looks for; found in a re-check): the word joiner and the invisible operators
# (U+2060-U+2064, for math), the soft hyphen (a line-breaking hint), the deprecated shaping controls
# (U+206A-U+206F: U+206E changes how digits look) and the interlinear annotation marks (U+FFF9-U+FFFB: what
# stands between them may not be shown). Real scripts need the rest, so they stay allowed: the joiners (U+200C/D:
# Persian, emoji), the marks LRM/RLM (U+200E/F) and ALM (U+061C, RLM's Arabic counterpart), and the Mongolian
# vowel separator (U+180E, it picks a letter's final form). A mark sets the direction of what stands beside it but
# cannot turn a word around as an override does.
_INVISIBLE_FORMAT = re.compile("[\u00ad\u200b\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]")


def no_line_breaks(value: str) -> str:
    """A value bound for a header line: no line breaks (Unicode's too: U+2028, NEL), no other control
    character (a NUL went raw into the Subject header) and no invisible bidi or zero-width formatting character
    (:data:`_INVISIBLE_FORMAT`). An RFC 2047 encoded word counts as what it decodes to: the email package decodes
    "=?utf-8?q?=0D=0A?=" in a Subject and wrote the line break raw, so a title holding one added a Bcc header to
    the email (found in a leak audit)."""
    for text, how in ((value, ""), (_decoded(value), " (an encoded word =?...?= decodes to one)")):
        if len(text.splitlines()) > 1 or text.endswith(("\r", "\n")):
            raise ValueError("must not contain line breaks" + how)
        if any(ord(c) < 32 and c != "\t" or 127 <= ord(c) < 160 for c in text):
            raise ValueError("must not contain control characters" + how)
        if found := _INVISIBLE_FORMAT.search(text):
            raise ValueError(f"must not contain an invisible formatting character (U+{ord(found.group()):04X} here: bidi "
                             "overrides and isolates, zero-width spaces, word joiners, soft hyphens and the like "
                             "reorder or hide text)" + how)
    return value


def email_address(value: str) -> str:
    """One email address as a channel sends to it (checked, an international domain in its ASCII form);
    a ValueError saying what is wrong."""
    no_line_breaks(value)
    if not _EMAIL_RE.match(value.strip()):
        raise ValueError(f"expected an email address like name@example.com, got {shown(value)}")
    # As the email will carry it: one address, and nothing Python's email package refuses at send time
    # (an encoded word holding a line break passed here and failed the run, exit 1; security audit).
    from email.message import EmailMessage
    from email.policy import SMTP

    try:
        message = EmailMessage(policy=SMTP)
        message["To"] = value.strip()
        addresses = message["To"].addresses
        message.as_bytes()
    except Exception:  # noqa: BLE001 - HeaderParseError, ValueError: the email package's words vary
        addresses = ()
    if len(addresses) != 1 or "=?" in value:
        raise ValueError(f"expected one plain email address like name@example.com, got {shown(value)}")
    value = value.strip()
    # SMTP without SMTPUTF8 carries ASCII addresses only: a non-ASCII one passed here and then failed
    # every recipient of the message with a UnicodeEncodeError (found in an email audit).
    user, domain = addresses[0].username, addresses[0].domain
    if not user.isascii():
        raise ValueError(f"{shown(addresses[0].addr_spec)} has non-ASCII letters before the @: such mailboxes need "
                         "SMTPUTF8, which agentdigest does not use; give an ASCII address")
    if not domain.isascii():
        import idna

        try:  # a non-ASCII domain has an ASCII form (IDNA 2008, as registries and browsers: faß.de is not fass.de)
            ascii_domain = idna.encode(domain, uts46=True, transitional=False).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise ValueError(f"{shown(addresses[0].addr_spec)}: the domain is not a valid international name") from None
        value = value.replace(f"@{domain}", f"@{ascii_domain}")
    return value


def is_loopback(host: str | None) -> bool:
    host = (host or "").lower()
    try:  # an address, not a name starting like one ("127.0.0.1.evil.example", found in a re-check)
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class _ChannelBase(StrictModel):
    timeout: float = Field(30.0, gt=0, le=3600, strict=True, description="seconds allowed for each network call")
    retry_budget: float = Field(300.0, ge=0, le=86400, strict=True, description="seconds of retries allowed per delivery")
    retry_initial: float = Field(1.0, gt=0, le=3600, strict=True, description="seconds before the first retry; doubles each retry")
    retry_max_wait: float = Field(60.0, gt=0, le=86400, strict=True, description="longest wait between two retries, in seconds")


#: The base of every channel's settings, built-in or plug-in (timeout and retry settings).
ChannelSettings = _ChannelBase


class OutboxChannel(_ChannelBase):
    """Writes every delivery as new files on disk; nothing leaves the machine."""

    type: Literal["outbox"]
    path: Path = Path("./outbox")


class EmailChannel(_ChannelBase):
    """Sends the report email over SMTP (smtp://, smtp+starttls://, smtps://)."""

    type: Literal["email"]
    to: list[str] = Field(min_length=1)
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    from_: str = Field(alias="from")
    reply_to: str | None = None
    smtp_url: SecretStr
    # A private CA bundle for relays whose certificate is not in the system store.
    ca_file: Path | None = None

    _addresses = field_validator("to", "cc", "bcc", mode="after")(
        classmethod(lambda cls, v: [email_address(a) for a in v])
    )
    _single = field_validator("from_", "reply_to", mode="after")(
        classmethod(lambda cls, v: None if v is None else email_address(v))
    )

    @field_validator("smtp_url")
    @classmethod
    def _smtp_scheme(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if not re.match(r"^(smtp|smtp\+starttls|smtps)://[^/\s]+", raw):
            raise ValueError("expected smtp://, smtp+starttls:// or smtps://[user:password@]host[:port]")
        # Checked here, not when sending: a bad URL must stop the run as a config error (exit 2) before any
        # channel is tried. The messages never repeat the URL, which holds the password.
        if re.search(r"[\s\x00-\x1f\x7f]", raw):
            raise ValueError("the URL holds a space or a control character: URL-encode it (a space is %20)")
        parts = urlsplit(raw)
        if "@" in parts.netloc.rpartition("@")[0]:
            raise ValueError("the user or password holds '@': URL-encode it (%40)")
        try:
            parts.port
        except ValueError:
            raise ValueError("the port is not a number 1-65535 (a password holding / ? # must be URL-encoded)") from None
        if not parts.hostname:
            raise ValueError("no host (expected smtp://[user:password@]host[:port])")
        if parts.scheme.lower() == "smtp" and parts.password is not None and not is_loopback(parts.hostname):
            # found in an email audit: AUTH PLAIN went out in clear text to any relay
            raise ValueError("smtp:// would send the password unencrypted (expected smtp+starttls:// or smtps://; "
                             "smtp:// only to this machine)")
        return value

    @field_validator("ca_file")
    @classmethod
    def _ca_bundle(cls, value: Path | None) -> Path | None:
        """A CA bundle that loads, checked before anything is computed (a missing one used to fail at send
        time as "cannot reach" and be retried; found in an email audit)."""
        if value is None:
            return None
        try:
            found = value.is_file()
        except OSError:  # a name too long for a path (found by a config fuzz: "unexpected error: OSError")
            found = False
        if not found:
            raise ValueError(f"no such file: {shown(str(value), path=True)}")
        try:
            ssl.create_default_context(cafile=str(value))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"{shown(str(value), path=True)} is not a PEM certificate bundle "
                             f"({getattr(exc, 'reason', None) or exc})") from None
        return value


def _encrypted_or_local(url: str) -> bool:
    """https, or http to this machine (a test server): a Slack token or webhook path sent over plain http
    elsewhere can be read on the way."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "https":
        return True
    return parts.scheme.lower() == "http" and is_loopback(parts.hostname)


class SlackChannel(_ChannelBase):
    """Posts Block Kit to a Slack webhook, or with a bot token to a channel (and uploads the PDF)."""

    type: Literal["slack"]
    webhook_url: SecretStr | None = None
    bot_token: SecretStr | None = None
    channel: str | None = None
    api_url: str = "https://slack.com/api/"
    upload_pdf: bool = Field(True, strict=True)

    @field_validator("api_url")
    @classmethod
    def _plain_api_url(cls, value: str) -> str:
        # slack-sdk sends no credentials from the URL (it read "user:pw@host" as the host and printed
        # it in every error, found in a security audit): a URL that carries some is refused, unechoed.
        if not re.match(r"^https?://", value, re.I):
            raise ValueError("expected an http(s) URL")
        if "@" in value.split("://", 1)[1].split("/", 1)[0] or secret_query(value):
            raise ValueError("expected a URL without credentials (Slack's API takes only the bot token)")
        if not _encrypted_or_local(value):
            raise ValueError("expected an https URL (the bot token would cross the network unencrypted; "
                             "http is for a test server on this machine)")
        return value

    @model_validator(mode="after")
    def _one_mode(self) -> "SlackChannel":
        if bool(self.webhook_url) == bool(self.bot_token):
            raise ValueError("expected exactly one of 'webhook_url' or 'bot_token'")
        if self.bot_token and not self.channel:
            raise ValueError("'bot_token' needs 'channel' (a channel id or #name)")
        if self.webhook_url and not re.match(r"^https?://", self.webhook_url.get_secret_value(), re.I):
            raise ValueError("'webhook_url' must be an http(s) URL")
        if self.webhook_url and not _encrypted_or_local(self.webhook_url.get_secret_value()):
            raise ValueError("'webhook_url' must be an https URL (its path is the secret; http is for a test "
                             "server on this machine)")
        return self


class WebhookChannel(_ChannelBase):
    """POSTs report.json to a URL, signed with HMAC-SHA256 when a secret is set."""

    type: Literal["webhook"]
    url: SecretStr
    secret: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _http(cls, value: SecretStr) -> SecretStr:
        if not re.match(r"^https?://", value.get_secret_value(), re.I):
            raise ValueError("expected an http(s) URL")
        return value


#: The built-in channel types and their settings models.
CHANNEL_SETTINGS: dict[str, type[_ChannelBase]] = {
    "outbox": OutboxChannel, "email": EmailChannel, "slack": SlackChannel, "webhook": WebhookChannel}
CHANNEL_TYPES = tuple(CHANNEL_SETTINGS)
#: Settings models of the channel types plug-ins add: ``agentdigest.channels.register`` fills it from
#: a channel class's ``settings_model`` (plug-in packages are found by their ``agentdigest.channels``
#: entry point when a config is loaded).
PLUGIN_CHANNEL_SETTINGS: dict[str, type[_ChannelBase]] = {}
PLUGIN = "plug-in"
#: The entry-point group a package lists its channel classes in, under their type, e.g. in its
#: pyproject.toml: ``[project.entry-points."agentdigest.channels"] teams = "agentdigest_teams:TeamsChannel"``.
PLUGIN_GROUP = "agentdigest.channels"


def _channel_tag(value: object) -> str | None:
    """The union member a channel's settings validate against: its built-in type, or the plug-in
    member for a plug-in's (already validated, see ``Config._plugin_channels``) settings."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(kind, str):  # `type = []`: no member (a list is no dict key: it failed as a TypeError)
        return None
    if kind in PLUGIN_CHANNEL_SETTINGS and isinstance(value, PLUGIN_CHANNEL_SETTINGS[kind]):
        return PLUGIN
    return kind


ChannelConfig = Annotated[
    Union[Annotated[OutboxChannel, Tag("outbox")], Annotated[EmailChannel, Tag("email")],
          Annotated[SlackChannel, Tag("slack")], Annotated[WebhookChannel, Tag("webhook")],
          Annotated[_ChannelBase, Tag(PLUGIN)]],
    Discriminator(_channel_tag),
]


def channel_types() -> list[str]:
    """Every channel type a config may name: the built-in ones, then the plug-ins'."""
    return [*CHANNEL_TYPES, *sorted(set(PLUGIN_CHANNEL_SETTINGS) - set(CHANNEL_TYPES))]
