"""Keep secrets out of every message agentdigest writes (logs, errors, ledger, history).

Errors from libraries sometimes echo a URL or a token back; everything that leaves a channel
or enters the ledger goes through :func:`mask_text` first, so one forgotten call site cannot
leak a password.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote

from pydantic import BaseModel, SecretStr

# A URL ends before whitespace, quotes, brackets, and before trailing punctuation ("url: error").
_URL_RE = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>()]*[^\s'\"<>().,:;!?]", re.I)
# Slack tokens have a recognisable shape; mask them even when they arrive outside a URL.
_SLACK_TOKEN_RE = re.compile(r"\bxox[abposr]-[A-Za-z0-9-]+")
# A secret (or one of its escaped forms) this long is masked wherever it appears. One of 3 characters only as a
# whole token (between spaces, quotes, "=", ":", brackets, "&", ", ;", and before a sentence's end): everywhere,
# a password "abc" or "the" would turn every word holding it into *** (the messages unreadable, and the password
# read off what was masked). Shorter ones, which whole tokens would be ("a", "to"), only as a URL's user:password@.
# Not masked at all, a server echoing a 3-character password ("535 bad password abc") showed it (a leak audit).
_MIN_SECRET = 4
_MIN_TOKEN = 3
_TOKEN_BEFORE = r"(?<![^\s\"'`=:(\[{<,;&])"
_TOKEN_AFTER = r"(?=$|[\s\"'`,;:)\]}>!?@&]|\.(?!\w))"
# Query parameters that hold credentials, whatever the scheme (libpq's ?password=, ?sslpassword=, tokens).
# Names are matched decoded, so ?pass%77ord= is a password too. The last group is a presigned URL's
# (S3's X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token; GCS's X-Goog-*): shown in errors as they
# were (found in a Spark audit). Only these vendor prefixes: a bare "sort-key" is no credential.
# A name holding one of these words, with any prefix or suffix (found in a re-check: client_secret,
# aws_secret_access_key, private_key, passphrase, credentials, api-key passed): secret, password, token,
# credential(s), passphrase, and a key qualified as api/access/private/secret/signing. A bare "sslkey"
# (a file path) or "sort-key" is not one.
_SECRET_KEY_RE = re.compile(r"pwd|key|sig|signature|auth|[\w.-]*(?:pass(?:word|wd|phrase)|pass(?![a-z])|secret|token|credentials?)[\w.-]*"
                            r"|[\w.-]*(?:api|access|private|secret|signing)[_-]?key[\w.-]*"
                            r"|(?:x-(?:amz|goog)-)?(?:signature|credential|security-token)", re.I)
_QUERY_PARAM_RE = re.compile(r"([?&])([^=&#\s'\"]+)=([^&#\s'\"]*)")


def _secret_key(name: str) -> bool:
    return _SECRET_KEY_RE.fullmatch(unquote(name)) is not None


def _mask_query(url: str) -> str:
    return _QUERY_PARAM_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}=***" if _secret_key(m.group(2)) and m.group(3)
                               else m.group(0), url)


def mask_url(url: str) -> str:
    """Hide the secret parts of a URL: the password, and a webhook's token path.

    ``smtp://reports:pw@host`` -> ``smtp://reports:***@host``;
    ``https://hooks.slack.com/services/T0/B0/XX`` -> ``https://hooks.slack.com/services/T…/***``.
    """
    url = mask_credentials(url)
    m = re.match(r"^(https?://[^/\s?#]+)(/[^?#]*)?", url, flags=re.I)
    if not m or not (m.group(2) or "").strip("/"):
        return m.group(1) if m else url
    parts = [p for p in m.group(2).split("/") if p]
    shown = [parts[0]] if len(parts) > 1 else []
    hint = parts[1] if len(parts) > 1 else parts[0]
    return "/".join([m.group(1), *shown, hint[:1] + "…", "***"])


def mask_credentials(url: str) -> str:
    """A URL's password and credential query values hidden, the rest kept (a webhook's path too: see
    :func:`mask_url`): ``postgresql://u:pw@db/x?password=y`` -> ``postgresql://u:***@db/x?password=***``."""
    # Up to the last "@" a host follows: a password that should have been URL-encoded may hold "@", "/" or a space.
    if url_password(url) is not None:
        url = _USERINFO_RE.sub(r"\1:***@", url, count=1)
    return _mask_query(url)  # postgresql://u@h/db?password=...


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask every URL, then replace known secret values (and their URL-encoded forms) by ``***``."""
    # URLs first, so a secret URL reads as smtp://user:***@host rather than a bare ***.
    text = _URL_RE.sub(lambda m: m.group(0) if "***" in m.group(0) else mask_url(m.group(0)), text)  # idempotent
    forms = {form for s in secrets if s for form in _forms(s) if form}
    anywhere = {form for s in secrets if s and len(s) >= _MIN_SECRET for form in _forms(s) if len(form) >= _MIN_SECRET}
    if anywhere:
        text = re.sub(_alternatives(anywhere), "***", text)
    if tokens := {form for form in forms - anywhere if len(form) >= _MIN_TOKEN}:
        text = re.sub(_TOKEN_BEFORE + "(?:" + _alternatives(tokens) + ")" + _TOKEN_AFTER, "***", text)
    if short := forms - anywhere:  # user:pw@host outside a URL that names its scheme (mask_url takes those)
        text = re.sub("(?<=:)(?:" + _alternatives(short) + ")(?=@)", "***", text)
    return _SLACK_TOKEN_RE.sub("xox…***", text)


def _alternatives(forms: set[str]) -> str:
    return "|".join(_pattern(f) for f in sorted(forms, key=len, reverse=True))


def _forms(secret: str) -> set[str]:
    """The ways a server's error answer may quote ``secret``: as it is, URL-encoded (path, query and form
    style), JSON-escaped (PHP's ``\\/`` too), HTML-escaped, Python-escaped. Only the raw and ``%XX`` forms were
    masked, so a JSON 401 body echoing a password with ``"``, ``/`` or ``é``, an HTML page with ``&amp;`` or a form
    echo with ``+`` showed it whole (found in a leak audit)."""
    found = set()
    for raw in {secret, unquote(secret)}:
        found |= {raw, quote(raw, safe=""), quote(raw), quote_plus(raw), html.escape(raw), html.escape(raw, quote=False),
                  ascii(raw)[1:-1], raw.encode("unicode_escape").decode("ascii")}
        for ensure_ascii in (True, False):
            escaped = json.dumps(raw, ensure_ascii=ensure_ascii)[1:-1]
            found |= {escaped, escaped.replace("/", "\\/")}
    return found


def _pattern(form: str) -> str:
    """``form`` as a regex in which every ``%XX`` escape matches in either case (``%2F`` and ``%2f``)."""
    return "".join("%" + "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in part[1:])
                   if re.fullmatch(r"%[0-9A-Fa-f]{2}", part) else re.escape(part)
                   for part in re.split(r"(%[0-9A-Fa-f]{2})", form))


def secret_values(settings: BaseModel) -> list[str]:
    """Every secret a settings model holds: its SecretStr fields and the passwords inside them."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            raw = value.get_secret_value()
            # A relay URL without a password holds no secret: masked whole, every error about it
            # would read "cannot reach ***". Web URLs stay secret whole (a webhook URL is the key).
            if not re.match(r"^[a-z][a-z0-9+.-]*://", raw, re.I) or raw.lower().startswith(("http://", "https://")):
                found.append(raw)
            # The password of a URL, and the token path of a webhook, are secrets on their own.
            if (password := url_password(raw)) is not None:
                found += [password, unquote(password), *credential_encodings(raw)]
            # Path segments after the first are where webhook tokens live (mask_url hides them too).
            m = re.match(r"^https?://[^/\s]+/[^/]*/(.+)$", raw, re.I)
            if m:
                found += [part for part in re.split(r"[/?#&=]", m.group(1)) if len(part) >= 8]
            # A path of one segment is the token itself (https://hook.eu1.make.com/<token>, webhook.site/<uuid>),
            # as mask_url hides it: a 404 echoing the path showed it (found in a delivery audit)
            elif (one := re.match(r"^https?://[^/\s]+/([^/?#\s]+)/?(?:[?#]|$)", raw, re.I)) and len(one.group(1)) >= 8:
                found.append(one.group(1))
            # So are query values (?token=...), which a server may echo back in its error reply.
            found += query_tokens(raw)
    return found


# scheme://user:PASSWORD@host: the password runs to the last "@" that a host follows, so one that should
# have been URL-encoded is whole even with "@", "/", "?", "#" or a space in it (found in a re-check: a
# DATABASE_URL-style variable holding "u:Zq9Se/cretPW77@db" printed the password in the error).
_USERINFO_RE = re.compile(r"^([a-z0-9+.-]+://[^:/@\s]*):(.*)@(?=[^@/\s?#]*(?:[/?#\s]|$))", re.I | re.S)


def url_password(url: str) -> str | None:
    """The password of ``scheme://user:password@host`` (see :data:`_USERINFO_RE`); None without one."""
    m = _USERINFO_RE.match(url)
    if not m or not m.group(2) or _PORT_AND_PATH.match(m.group(2)):
        return None
    return m.group(2)


# "host:8443/hooks/team@corp" is a port and a path holding "@", not user:password
_PORT_AND_PATH = re.compile(r"^\d{1,5}[/?#]")


def credential_encodings(url: str) -> list[str]:
    """The base64 forms in which a URL's ``user:password@`` goes over the wire: SMTP AUTH PLAIN
    (``\\0user\\0password``), AUTH LOGIN (the password alone) and HTTP Basic (``user:password``). A server
    that echoes the request in its refusal ("535 ... AUTH PLAIN AHJlcG9y...", a 401 body quoting the
    Authorization header) would otherwise put the password, base64 but readable, in errors, the ledger and
    history (found in a leak audit)."""
    m = _USERINFO_RE.match(url)
    password = url_password(url)
    if m is None or password is None:
        return []
    user, password = unquote(m.group(1).partition("://")[2]), unquote(password)
    return [base64.b64encode(form.encode("utf-8")).decode("ascii")
            for form in (f"\0{user}\0{password}", password, f"{user}:{password}")]


def url_secrets(url: str) -> list[str]:
    """The password of a URL as written and decoded: what a library's error may echo back."""
    password = url_password(url)
    return [] if password is None else [password, unquote(password)]


def query_tokens(url: str) -> list[str]:
    """The query values of an http(s) URL long enough to be tokens (8+ characters)."""
    m = re.match(r"^https?://[^?#\s]*\?([^#\s]+)", url, re.I)
    return [v for part in m.group(1).split("&") for v in [part.partition("=")[2]] if len(v) >= 8] if m else []


def secret_query(url: str) -> str | None:
    """The name of a credential query parameter in ``url`` (``password`` in ``?password=x``), or None."""
    return next((unquote(m.group(2)) for m in _QUERY_PARAM_RE.finditer(url) if m.group(3) and _secret_key(m.group(2))),
                None)
