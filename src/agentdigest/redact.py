"""PII redaction for free text that comes from events (error messages, ids, types).

Each built-in kind is a candidate pattern plus, where one exists, a checksum or parser that
confirms it, so ordinary numbers in logs ("timeout after 30000 ms", "2026-11-28", epoch stamps,
"12:30:45") survive while real identifiers do not:

=========  ===========================================================  ===========
kind       candidate                                                    confirmed by
=========  ===========================================================  ===========
email      local@domain.tld, "quoted"@domain.tld; written out: john at example dot com,      - (the words)
           john [at] example [dot] com, ann(at)example(dot)org
iban       2 letters, 2 digits, 11-30 letters/digits (spaces, dashes)   length per country, mod 97
card       13-19 digits starting 2-6, single spaces/dashes allowed      Luhn
ssn        ###-##-####                                                  -
ip         dotted quad; hex groups with colons                          ``ipaddress``
phone      +country ...; (###) ###-####, ###-###-####, ###.###.####;   -
           national 0 + area code + separator (0151 23456789, 030/1234567,  9-13 digits
           (030) 1234567); 00 + country code (0049 30 1234567)
token      Bearer ..., JWTs (eyJ...), sk-/ghp_/xox*-/xapp-/AKIA/ASIA/AIza/ya29./SG./sk_live_/dapi/SK  -
           keys, the path of a Slack webhook URL
secret     password=..., api_key: ..., ?token=... (a credential's value;  -
           percent-encoded too: password%3D...);
           api key: ..., apikey ... (16+ letters and digits in a row);
           any value given as a password (password=abc1); PEM private keys;
           40 base64 characters after aws..., secret (access) key or an AKIA id
name       1-3 capitalised words (a script with capitals: Élodie, O'Neil,   the cue
           Jean-Luc, J. R. McDonald) after "my name is", "this is ... speaking", Mr,
           Mrs, Ms, Mx, Dr, Prof, Herr, Frau, Mme, Mlle, "Dear", or a name
           field (customer name:, first_name=, "lastName": "...")
id         5+ digits (spaces, dashes between groups) after account, acct,   the cue
           customer, member, patient, passport, subscriber (id, no., #
           optional); after policy, tax, social security, national,
           insurance, membership with id/no./number
=========  ===========================================================  ===========

A name or an id is recognised only after its cue: a bare "name:" (a tool's, a model's), "username" (a
login), "Dear Customer", placeholders (null, Unknown, N/A), lower-case words and a tool's message about a
name field ("first_name: This field is required.") stay, and so do names without a cue and digits without
one ("attempt 123456", "order 12345678", "user id 12345678").

The patterns read the text normalised (:func:`normalise`): invisible characters (control, bidi and
zero-width characters, soft hyphens, stray combining marks) are removed, every kind of space or line
break becomes one space, and compatibility forms and other scripts' digits become plain ones. Otherwise
"4111<ESC>1111..." or a card number broken over two lines passed the patterns and came out whole once
cleaned up. A text in which nothing was found is returned as it was.

A user's extra patterns (``redact_patterns`` in the report config) run first, so an
organisation-specific id is replaced whole before a built-in pattern could take part of it.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable, Mapping

from .redact_cues import ids, names, obfuscated_emails
from .redact_secrets import CREDENTIAL_STEPS

# IBAN lengths per country (SWIFT IBAN registry); a candidate from elsewhere is not an IBAN.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}

# \w is Unicode: internationalised addresses (jörg@müller.example) are addresses too; an apostrophe
# may sit inside the local part (ann.o'neil@). "@" may be URL-encoded (?email=bob%40example.com) or escaped as
# HTML (&#64;, &#x40;, &commat;), JSON or Python do (\u0040, \x40; \\u0040 escaped twice): those passed whole (a
# leak audit). A local part may be quoted ("john.doe"@example.com, "john doe"@...; it passed whole, found in an
# adversarial audit).
_AT = r"(?:@|%40|&(?i:#0*64;|#x0*40;|commat;)|\\+(?i:u0040|x40))"
_EMAIL = re.compile(r"(?:\"[^\"@\\\s][^\"@\\]{0,63}\"|(?<![\w.%+-])\w[\w.%+'-]*)" + _AT + r"[^\W_](?:[\w-]*[^\W_])?"
                    r"(?:\.[^\W_](?:[\w-]*[^\W_])?)*\.[^\W\d_]{2,}\b")
# A line break or tab written as an escape (\n, \r, \t: JSON or a repr in an error message) ends a word as a space
# does: "line1\n4111 1111 1111 1111" held a card that the patterns, seeing the "n" before it, did not take (a leak audit).
_ESCAPED = r"(?<=\\[nrt])"
_IBAN_START = re.compile(r"(?:(?<![A-Za-z])|" + _ESCAPED + r")([A-Za-z]{2})\d{2}")  # a digit may precede: IBANs back to back
_CARD = re.compile(r"(?:(?<![\w+-])|" + _ESCAPED + r")[2-6]\d(?:[ .-]?\d){11,17}(?![\w-])")
_SSN = re.compile(r"(?:(?<![\w.-])|" + _ESCAPED + r")(?!000|666|9)\d{3}([ .-])(?!00)\d{2}\1(?!0000)\d{4}(?![\w-]|\.\d)")
_IPV4 = re.compile(r"(?:(?<![\w.])|" + _ESCAPED + r")(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\w)")
_IPV6 = re.compile(r"(?:(?<![\w:.])|" + _ESCAPED + r")(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?![\w:]|\.\w)")
_PHONE = re.compile(
    r"(?:(?<![\w+])|" + _ESCAPED + r")(?:"
    # international: +CC then 6-14 more digits in groups separated by space, dot, dash or (..)
    r"\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,6}"
    r"|"
    # North American with separators: (555) 123-4567, 555-123-4567, 555.123.4567, 1-555-123-4567
    r"(?:1[ .-])?(?:\(\d{3}\)[ ]?|\d{3}[ .-])\d{3}[ .-]\d{4}"
    r"|"
    # national, with a trunk 0 and a separator after the area code: 0151 23456789, 030/1234567, 020 7946 0958
    r"0[1-9]\d{0,3}[ /-]\d{3,8}(?:[ -]\d{3,8}){0,3}"
    r"|"
    # the area code in parentheses: (030) 1234567; Brazil's (11) 91234-5678
    r"\(0[1-9]\d{0,3}\)[ ]?\d{3,8}(?:[ -]\d{3,8}){0,3}"
    r"|"
    r"\([1-9]\d\)[ ]?\d{4,5}-\d{4}"
    r"|"
    # national in pairs: 06 12 34 56 78, 01.23.45.67.89 (France, Belgium, ...): one separator throughout,
    # not inside a longer run of pairs (a hex dump, a list of buckets)
    r"(?<!\d[ .-])0[1-9]([ .-])\d{2}(?:\1\d{2}){3}(?![ .-][0-9A-Fa-f]{1,2}\b)"
    r"|"
    # international with 00 instead of +: 0049 30 1234567 (the national part never starts with 0)
    r"00[1-9]\d{0,2}[ .-][1-9]\d{0,4}(?:[ .-]\d{2,8}){1,4}"
    # an extension goes with the number: "+1-415-555-0132x12" passed whole, the "x" after it (a leak audit)
    r")(?:[ ]?(?i:x|ext\.?|extension)[ ]?\d{1,6})?(?![\w-])"
)
_EXTENSION = re.compile(r"[ ]?(?i:x|ext\.?|extension)[ ]?\d{1,6}$")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _longest_prefix(text: str, ok: Callable[[str], bool]) -> int:
    """Length of the longest prefix of ``text`` that passes ``ok``, cut only before a separator.

    A candidate pattern is greedy ("4111 1111 1111 1111 12 times" takes the trailing "12"),
    so a failed check is retried without its last group(s) rather than given up on.
    """
    end = len(text)
    while end > 0:
        if ok(text[:end]):
            return end
        cut = max(text.rfind(sep, 0, end) for sep in " .-")
        if cut <= 0:
            return 0
        end = cut
    return 0


def _card_length(digits: str) -> bool:
    """A length the card's network issues: 13 digits only for Visa, 14 for Diners, 15 for Amex; 16-19
    for the rest (an EAN-13 barcode that passes Luhn is no card)."""
    n = len(digits)
    if n == 13:
        return digits[0] == "4"
    if n == 14:
        return digits[:2] in ("30", "36", "38")
    if n == 15:
        return digits[:2] in ("34", "37")
    return 16 <= n <= 19


def _card(match: re.Match[str]) -> str:
    text = match.group(0)

    def ok(part: str) -> bool:
        digits = re.sub(r"\D", "", part)
        return _card_length(digits) and _luhn(digits)

    end = _longest_prefix(text, ok)
    return "[card]" + _CARD.sub(_card, text[end:]) if end else text


def _ibans(text: str) -> str:
    """Every IBAN in ``text`` (its country's length, single spaces or dashes between groups, mod 97) as [iban].

    A scan from each "CC##" rather than one greedy pattern: a candidate ran on into the next IBAN
    ("DE89 ... 00 and GB82WEST...") and took part of it, which was then missed.
    """
    out, pos = [], 0
    for m in _IBAN_START.finditer(text):
        length = _IBAN_LENGTHS.get(m.group(1).upper())
        if m.start() < pos or length is None:
            continue
        seen, i = 0, m.start()
        while i < len(text) and seen < length:
            ch = text[i]
            if ch in " -" and 0 < seen and i + 1 < len(text) and text[i + 1] not in " -":
                i += 1
                continue
            if not (ch.isascii() and ch.isalnum()):
                break
            seen, i = seen + 1, i + 1
        if seen < length:  # (what follows may be more letters: a checksum-valid IBAN is one anyway)
            continue
        compact = text[m.start():i].replace(" ", "").replace("-", "").upper()
        number = "".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])
        if int(number) % 97 == 1:
            out += [text[pos:m.start()], "[iban]"]
            pos = i
    return "".join(out) + text[pos:]


# Before a dotted quad, these make it a version (Chrome/120.0.0.0, Version 3.2.1.4, Android 14.0.0.12). The "/"
# only after a letter or digit, a product's name: after "://" the quad is a URL's host (http://203.0.113.45:8080
# was shown whole; found in a leak audit).
_VERSION_BEFORE = re.compile(r"(?i)(?:(?<=[^\W_])/|\bv|\b(?:version|ver|release|build|android|ios|oid|firmware|os)[ :]?)$")


def _unpadded(address: str) -> str:
    """An address's dotted quad (IPv4, or an IPv6's tail) without its zero padding: ``ipaddress`` refuses
    "203.000.113.077", which some tools print (it passed whole; found in a leak audit). Read as decimal, as
    written; a part over 255 still fails."""
    head, colon, quad = address.rpartition(":")
    return head + colon + ".".join(part.lstrip("0") or "0" for part in quad.split(".")) if "." in quad else address


def _ip(version: int) -> Callable[[re.Match[str]], str]:
    def check(match: re.Match[str]) -> str:
        text = match.group(0)
        if version == 6 and "::" not in text and text.count(":") != 7:
            return text
        try:
            address = ipaddress.ip_address(_unpadded(text))
        except ValueError:
            return text
        if address.is_unspecified or address.is_loopback:  # 0.0.0.0, ::, 127.0.0.1: nobody's address
            return text
        before = match.string[max(0, match.start() - 12):match.start()]
        after = match.string[match.end():match.end() + 2]
        if version == 4 and (_VERSION_BEFORE.search(before) or re.match(r"-[A-Za-z]", after)):
            return text  # a version number (10.0.0.1-beta too)
        return "[ip]"

    return check


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    if extension := _EXTENSION.search(text):  # the number's digits are counted without it
        number = _phone_number(text[:extension.start()])
        return "[phone]" if number == "[phone]" else number + extension.group(0)
    return _phone_number(text)


def _phone_number(text: str) -> str:
    # A national number has its trunk 0 and at least 9 digits; others at least 7 (555-0142 style).
    least = 9 if text.startswith("0") else 7
    end = _longest_prefix(text, lambda part: least <= sum(ch.isdigit() for ch in part) <= 15)
    return "[phone]" + text[end:] if end else text


# Invisible characters: C0/C1 controls, bidi controls, zero-width characters, soft hyphen, BOM.
# Also what renders as nothing or a blank inside a number (found in a re-check): combining marks, the
# combining grapheme joiner, Arabic letter mark, Mongolian and variation selectors, Hangul fillers, the
# Braille blank, tag characters. The patterns read a copy without them; shown text keeps them.
_INVISIBLE = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u00ad\u061c\u115f\u1160"
                        "\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069"
                        "\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f\U000e0100-\U000e01ef]")
# Combining marks left over once NFKC has composed what it can (é stays é; a mark stacked on a digit goes).
_STRAY_MARKS = re.compile("[\u0300-\u036f]")
# Decimal digits of other scripts (Arabic-Indic, Devanagari...), read as 0-9 by the patterns.
_NON_ASCII_DIGIT = re.compile(r"[^\x00-\x7f]")
# Every space and line break (tab, CR, LF, VT, FF, NEL, NBSP, narrow and figure spaces, U+2028/9...).
_SPACES = re.compile(r"\s+")
# Hyphens and dashes as the separators they stand for (a phone written with U+2011 non-breaking hyphens).
_DASHES = re.compile("[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def without_surrogates(text: str) -> str:
    """``text`` with lone surrogates (undecodable input) as U+FFFD: they cannot be encoded."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def normalise(text: str) -> str:
    """``text`` as the patterns read it: compatibility forms folded (NFKC: full-width digits), invisible
    characters and stray combining marks removed, digits of every script as 0-9, every run of spaces
    and line breaks one space, lone surrogates replaced. Idempotent."""
    text = without_surrogates(text)
    text = _STRAY_MARKS.sub("", unicodedata.normalize("NFKC", _INVISIBLE.sub("", text)))
    text = _DASHES.sub("-", _SPACES.sub(" ", text))
    return _NON_ASCII_DIGIT.sub(_ascii_digit, text) if not text.isascii() else text


def _ascii_digit(match: re.Match[str]) -> str:
    ch = match.group(0)
    return str(unicodedata.digit(ch)) if unicodedata.category(ch) == "Nd" else ch


# Order matters: emails hold digits and dots; IBANs and cards are longer digit runs that the
# phone pattern would otherwise split; IPv4 before phone (555.123.4567 is not a dotted quad). The kinds
# confirmed only by a cue come last: a card or phone number after "account" keeps its own tag.
def _sub(pattern: re.Pattern[str], replacement: str | Callable[[re.Match[str]], str]) -> Callable[[str], str]:
    return lambda text: pattern.sub(replacement, text)


_BUILT_IN: tuple[Callable[[str], str], ...] = (
    *CREDENTIAL_STEPS,
    _sub(_EMAIL, "[email]"),
    obfuscated_emails,
    _ibans,
    _sub(_CARD, _card),
    _sub(_SSN, "[ssn]"),
    _sub(_IPV6, _ip(6)),
    _sub(_IPV4, _ip(4)),
    _sub(_PHONE, _phone),
    ids,
    names,
)


class Redactor:
    """Replaces PII in free text with placeholders such as ``[email]`` and ``[card]``.

    ``Redactor(enabled=False)`` returns text unchanged (the report's ``redact = false``);
    ``extra_patterns`` maps a name to a regular expression whose matches become ``[name]``.
    """

    def __init__(self, enabled: bool = True, extra_patterns: Mapping[str, str] | None = None):
        self.enabled = enabled
        self._extra = tuple(
            _sub(re.compile(pattern), f"[{name}]") for name, pattern in (extra_patterns or {}).items()
        )

    def redact(self, text: str | None) -> str | None:
        """``text`` with every recognised piece of PII replaced; None stays None.

        The patterns read the text normalised (:func:`normalise`), so an invisible character or a
        full-width digit cannot hide a card number. Only text that held PII comes back normalised:
        the rest is returned as it was (found in a rendering audit: removing every zero-width joiner
        split emoji such as 👩‍💻 in agent ids and broke Persian and Indic words)."""
        if text is None or not self.enabled or not text:
            return text
        normal = normalise(text)
        redacted = normal
        for step in self._extra + _BUILT_IN:
            redacted = step(redacted)
        return text if redacted == normal else redacted

    __call__ = redact
