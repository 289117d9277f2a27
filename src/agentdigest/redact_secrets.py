"""Credentials in free text (passwords, tokens, API keys, private keys), the redaction steps that take them.

Each step takes text already normalised (see :func:`agentdigest.redact.normalise`) and returns it with the
credentials it recognises replaced: ``[private-key]``, ``[token]`` or the value after its name as ``[secret]``.
:data:`CREDENTIAL_STEPS` runs first among the redaction's steps (``redact._BUILT_IN``), in this order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote_plus

from .redact_cues import aws_secrets

# A password inside a URL (postgresql://app:S3cr3t!@db:5432/prod, redis://:pw@redis:6379).
_URL_PASSWORD = re.compile(r"(?<=://)([^\s:/@]*):[^\s/@]+@")
# A value that looks like a credential rather than a word: 8+ characters with a letter and a digit, or
# 20+ letters. (The rule asks for a lower- and an upper-case letter, but the patterns using it are
# case-insensitive, so any 20 letters pass: after a credential's name, kept as the safer reading.) "token: expired", "secret: not set", "Basic authentication", "invalid_grant",
# "sha256" and placeholders (null, ********, ${VAR}) are words (found in a false-positive review).
_CREDENTIAL = r"(?=[^\s\"'&,;]*[A-Za-z])(?:(?=[^\s\"'&,;]{8,})(?=[^\s\"'&,;]*\d)|(?=[^\s\"'&,;]{20,})(?=[^\s\"'&,;]*[a-z])(?=[^\s\"'&,;]*[A-Z]))(?!\$\{|<)"
# In quotes (JSON, a repr) a value runs to its closing quote: "&", "," and ";" end a value only outside them. A
# quoted password or key holding one ({"password": "ab&cdefg1"}) was not taken at all (found in a leak audit).
_QUOTED_CREDENTIAL = _CREDENTIAL.replace("[^\\s\\\"'&,;]", "[^\\s\\\"']")
# Credentials that land in error messages: bearer tokens, JWTs and the common API key shapes.
_TOKEN = re.compile(
    r"(?:(?<=\bBearer )|(?<=\bbearer )|(?<=\bBEARER )|(?<=\bBasic )|(?<=\bbasic )|(?<=\bBASIC )|(?<=\bToken )"
    r"|(?<=\btoken )|(?<=\bTOKEN ))"  # HTTP's scheme names are case-insensitive: "BEARER <token>" passed (a leak audit)
    + _CREDENTIAL + r"[A-Za-z0-9._~+/=-]{8,}"
    # (?<!-): a key starts a hyphenated run, never inside one; so "sk-sk-sk-..." is read once, not from each
    # of its starts (found in a scale audit: 100 KB of it took 14 s, and 1 MB would take an hour)
    r"|\b(?<!-)eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"
    # today's OpenAI and Anthropic keys (sk-proj-, sk-svcacct-, sk-ant-api03-) hold "_" and "-" anywhere: 50+
    # such characters (they have 90-160) in upper and lower case with a digit; a hyphenated name is no key
    r"|\b(?<!-)(?:sk|pk|rk)-(?=[A-Za-z0-9_-]{50})(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[a-z])(?=[A-Za-z0-9_-]*[A-Z])"
    r"[A-Za-z0-9_-]*[A-Za-z0-9]"
    r"|\b(?<!-)(?:sk|pk|rk)-(?:[A-Za-z0-9]+-)*[A-Za-z0-9]{16,}"
    r"|\b(?:ghp|gho|ghs|github_pat)_[A-Za-z0-9_]{20,}"
    r"|\bglpat-[A-Za-z0-9_-]{20,}|\bnpm_[A-Za-z0-9]{30,}|\bhf_[A-Za-z0-9]{30,}"
    r"|\b(?<!-)(?:xox[abpsre]|xapp)-(?=[A-Za-z0-9-]*\d)[A-Za-z0-9-]{10,}"
    # a Slack webhook URL is its own credential: the path after the host goes
    r"|(?<=\bhooks\.slack\.com/)(?:services|workflows|triggers)/[A-Za-z0-9_/-]{10,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\bAIza[0-9A-Za-z_-]{35}"
    # Google OAuth access tokens and SendGrid keys (a security audit's gaps)
    r"|\bya29\.[A-Za-z0-9_-]{20,}|\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"
    r"|\b(?:sk|rk|pk|whsec)_(?:live|test)_[A-Za-z0-9]{10,}"
    # Databricks personal access tokens and Twilio API keys: a prefix and 32 lower-case hex digits (a leak audit)
    r"|\bdapi[0-9a-f]{32}(?:-\d+)?\b|\bSK[0-9a-f]{32}\b"
)
# Unquoted, a value runs on past "&", "," or ";" unless a space or a next field ("&page=2", "; Path=/", "&amp;x=")
# follows: "Password: Tr0ub4dor&3" showed "&3", the password's tail (found in a leak audit). Each repetition
# starts at a separator, which no segment holds: linear. The look for a digit after "password:" reads at most
# 200 characters: unbounded, "Password:x;" repeated took 1.9 s for 30,000 characters (each cue read to the end).
_SEP = r"[&,;](?!(?:amp;)?[\w.\[\]%-]+=)"
_TAIL = r"(?:" + _SEP + r"[^\s\"'&,;]+)*+"
# Such a value is judged whole, separators inside it counted as its characters: judged by its part before the
# first separator, "pwd=ab&cd" (under 3 characters) and "secret: ab&cdef12" (under 8) were not taken at all (a
# leak audit). The look reads at most 200 characters, as the one for a digit after "password:" does: a value
# runs on past "&", so unbounded, each cue in "secret:a&secret:a&..." would read to the end of the text.
_VALUE_CHAR = r"(?:[^\s\"'&,;]|" + _SEP + r"(?=[^\s\"'&,;]))"
_UNQUOTED_CREDENTIAL = (
    r"(?=" + _VALUE_CHAR + r"{0,200}?[A-Za-z])(?:(?=" + _VALUE_CHAR + r"{8})(?=" + _VALUE_CHAR + r"{0,200}?\d)"
    r"|(?=" + _VALUE_CHAR + r"{20})(?=" + _VALUE_CHAR + r"{0,200}?[a-z])(?=" + _VALUE_CHAR + r"{0,200}?[A-Z]))(?!\$\{|<)"
)
# A credential written as name=value or name: value (also in a URL's query, a cookie, a --flag value):
# the value goes when it looks like one (_CREDENTIAL). The name must say credential; a bare "key="
# (a cache key, an S3 key) is left alone. It may run on into the word without a separator: camelCase JSON
# ("accessToken", "refreshToken"), "csrftoken", session cookies (JSESSIONID, PHPSESSID, connect.sid), which
# passed whole (found in a leak audit).
_SECRET_NAMES = (r"(?:[\w-]*[_-])?[A-Za-z]*(?:password|passwd|pass|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
                 r"private[_-]?key|client[_-]?secret|signature|sig|credentials?|session(?:[_-]?id)?|sess(?:[_-]?id)|sid|auth)")
_SECRET = re.compile(
    r"(?i)(?<![\w-])((?:--?)?" + _SECRET_NAMES + r"[\"']?(?:\s{0,2}[=:]\s{0,2}|(?<=-password) |(?<=-token) |(?<=-secret) ))(?!\[)([\"'])?"
    r"(?(2)" + _QUOTED_CREDENTIAL + r"[^\s\"']{3,}\2|" + _UNQUOTED_CREDENTIAL + r"[^\s\"'&,;]+" + _TAIL + ")"
)
# A value given as a password is one, however short or plain ("password=hunter2", "pwd=letmein", "--password
# abc1", camelCase "dbPassword=abc"; the rule above wants 8 characters and a digit): after "=" any value but a placeholder or a word
# describing it ("password=required"); after ":" one in quotes (JSON) or with a digit ("Password: must not
# be empty" stays).
_PASSWORD = re.compile(
    r"(?i)(?<![\w-])((?:--?)?(?:[\w-]*[_-])?(?-i:[a-z][a-z0-9]*(?=[A-Z]))?(?:password|passwd|pass|pwd)[\"']?"
    r"(?:\s{0,2}=\s{0,2}|\s{0,2}:\s{0,2}(?=[\"']|(?:[^\s\"'&,;]|" + _SEP + r"){0,200}?\d)|(?<=-password) ))(?!\[)([\"'])?"
    r"(?!\$\{|<|\*|(?:null|none|nil|empty|required|missing|invalid|incorrect|wrong|true|false|redacted|hidden|"
    r"unset|not|set|changed|expired|reset|too)\b)(?(2)(?:(?!\2)[^\\\n]|\\.){3,200}\2|(?=[^\s\"'&,;]" + _VALUE_CHAR + r"{2})[^\s\"'&,;]+" + _TAIL + ")"
)
# A key's name with a space in it or before its value ("api key: ...", "apikey ...", "Invalid API key ...",
# "Incorrect API key provided: ...", "client secret ..."; an adversarial audit): after a word, so the value must
# look like a key, not a word, count, version or path ("api key expired", "api key v2", "gpt-4o-mini-2024-07-18",
# "/etc/ssl/..."): it opens with 16+ letters and digits in a row, both present. ("token <value>" is _TOKEN's.)
_SPACED_KEY = re.compile(
    r"(?i)(?<![\w-])((?:[\w-]*[_-])?(?:api[ _-]?key|apikey|access[ _-]?key|secret[ _-]?key|client[ _-]?secret|secret)"
    r"(?: (?:provided|given|used|is|was))?[\"']?(?: ?: ?| ))([\"']?)"
    r"(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{16,}(?:[._~+/-]+[A-Za-z0-9]+)*=*\2(?![\w/+=-])"
)
# The same written percent-encoded, as in a URL inside another URL's query (?next=%2Fx%3Fapi_key%3DAbc123...,
# password%3Dhunter2): "=" as %3D (or ":" as %3A, quotes as %22) hid it (found in a leak audit). The name may
# follow an escape ("%3Fapi_key"). It is decoded and goes when the rules above would take it: "api_key%3Dnull" stays.
# The "%" may itself be encoded, once or twice (%25), in a URL nested two or three deep: "api_key%253DAbc123..."
# passed (a leak audit); the match is then decoded as many times as its "=" or ":" was encoded.
_PCT = r"%(?:25){0,2}+"
# Where the value ends: in encoded quotes at the closing one; after "=" (a form's field) at an encoded "&", ",",
# ";" or quote, since an encoded space ("%20", "+") is the value's own: "password%3Dcorrect%20horse%20battery"
# showed "horse battery" (a leak audit). After ":" (a header, a sentence) a space ends it too, as in plain text.
# "%2B" is a "+" of the value ("password%3Dab%2Bcd" showed "ab+cd"). The rules above judge the value by its first
# word ("token%3D4096%20exceeds" stays). Each repetition starts at a space that no word holds: linear.
_ENCODED_WORD = r"(?:(?!" + _PCT + r"(?:2[0267c]|3b))[^\s\"'&,;+])++"
_ENCODED_SECRET = re.compile(
    r"(?i)(?:(?<![\w-])|(?<=%[0-9a-f]{2})|(?<=%25[0-9a-f]{2})|(?<=%2525[0-9a-f]{2}))"
    r"(?P<cue>" + _SECRET_NAMES + "(?:" + _PCT + "2[27])?(?P<pct>" + _PCT + r")3(?:(?P<eq>d)|a)(?:" + _PCT + r"20|\+){0,2}"
    r"(?P<open>" + _PCT + "2[27])?)(?P<value>(?(open)(?:(?!" + _PCT + r"2[27])[^\s\"'&])++|" + _ENCODED_WORD
    + r"(?(eq)(?:(?:" + _PCT + r"20|\+)++" + _ENCODED_WORD + ")*+)))(?P<close>(?:" + _PCT + "2[27])?)"
)
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:.*?-----END [A-Z ]*PRIVATE KEY-----|.*)", re.S)


def _secret(match: re.Match[str]) -> str:
    return match.group(1) + "[secret]"


def _spaced_keys(text: str) -> str:
    low = text.lower()  # every name _SPACED_KEY knows holds one of these; most error messages hold neither
    return _SPACED_KEY.sub(_secret, text) if "key" in low or "secret" in low else text


def _encoded_secrets(text: str) -> str:
    return _ENCODED_SECRET.sub(_encoded_secret, text) if "%3" in text or "%25" in text else text


def _encoded_secret(match: re.Match[str]) -> str:
    decoded = match.group(0)
    for _ in range(len(match.group("pct")) // 2 + 1):  # "%" once, "%25" twice, "%2525" three times
        decoded = unquote_plus(decoded)
    if _SECRET.match(decoded) or _PASSWORD.match(decoded):
        return match.group("cue") + "[secret]" + match.group("close")
    return match.group(0)


def _url_password(match: re.Match[str]) -> str:
    return match.group(1) + ":[secret]@"


def _sub(pattern: re.Pattern[str], replacement: str | Callable[[re.Match[str]], str]) -> Callable[[str], str]:
    return lambda text: pattern.sub(replacement, text)


CREDENTIAL_STEPS: tuple[Callable[[str], str], ...] = (
    _sub(_PEM, "[private-key]"),
    _sub(_URL_PASSWORD, _url_password),
    aws_secrets,  # before the AKIA id it pairs with is [token]
    _sub(_TOKEN, "[token]"),
    _sub(_SECRET, _secret),
    _sub(_PASSWORD, _secret),
    _encoded_secrets,
    _spaced_keys,
)
