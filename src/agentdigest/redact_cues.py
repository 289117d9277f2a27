"""Names, record numbers, written-out addresses and bare AWS secret keys that only their context tells
apart from ordinary text.

"Jane" and "83749201" are PII after "my name is" or "account", and an ordinary word and number
anywhere else; so these kinds are confirmed by a cue, not a checksum (the table in
:mod:`agentdigest.redact`). They read normalised text, after every other kind: a card number
after "account" is already ``[card]``. An address written out ("john at example dot com") is told
by its "at" and "dot" and runs beside the other emails; an AWS secret key by the words or the key id
before it, and it runs before the key id becomes ``[token]``.
"""

from __future__ import annotations

import re


# A number that identifies a person's record, where the word before it says so ("account 83749201",
# "acct #1234567", "customer id 99887766", "passport no. 123456789", "accountId": "12345678"): 5+ digits,
# single spaces (before 3+ digits) or dashes between groups. "policy" and the like need a qualifier ("policy
# number"; a retry policy's 30000 ms stays); an order id names a purchase, and a number without a cue
# looks like any other ("attempt 123456"). Possessive: a run of cues or digits is read once. Where the
# id ends is _id's.
_ID = re.compile(
    r"(?i:(?:(?<![\w-])|(?<=_))((?:(?:account|acct|customer|member|patient|passport|subscriber)"
    r"(?:[ _-]?(?:id|no\.?|nr\.?|num(?:ber)?))?"
    r"|(?:policy|membership|insurance|tax|social[ _-]security|national)[ _-]?(?:id|no\.?|nr\.?|num(?:ber)?))"
    r"[\"']?(?:(?: ?#)?(?: ?[:=] ?[\"']?| [\"']?)| ?#|(?<=\.))))"
    r"(?!\d{4}-\d\d-\d\d(?!\d))(\d++(?:-\d+| \d{3,})*+)"
)
# What ends an id: not a letter, a digit, a dash or a decimal part ("account 12345-beta", "member 12345.67 USD").
_ID_END = re.compile(r"(?![\w-]|[.,]\d)")


def _id(match: re.Match[str]) -> str:
    """The digits after a cue as [id], up to where the id ends. Dashes join groups; a group after a space is
    the id's only while the id has under 5 digits ("1234 5678", "12 345 678") or when it repeats the last
    group's length ("123 456 789", "1234 5678 9012"). Taken whole, "customer 123456 500 error" lost its HTTP
    status to the id, and "customer 123456 200ms" kept the whole id, the unit failing the end of the match
    (found in an audit). "account 123456 789" is ambiguous: 6 then 3 is no layout of grouped digits, so the
    789 stays, as a status or a count would; were it the id's tail, 3 digits alone identify no one."""
    digits = match.group(2)
    ends: list[tuple[int, int]] = []  # (where the id may end in digits, its digits up to there)
    end = count = 0
    last = ""
    for group in digits.split(" "):
        # a layout has one separator: "12-345-678 404" is an id and a status
        if ends and count >= 5 and ("-" in group or "-" in last or len(group) != len(last)):
            break
        end, count, last = end + bool(ends) + len(group), count + sum(ch.isdigit() for ch in group), group
        ends.append((end, count))
    # The longest of these ends that ends a number: "customer 123456 123456ms" is [id] before the duration.
    for end, count in reversed(ends):
        if count >= 5 and _ID_END.match(match.string, match.start(2) + end):
            return match.group(1) + "[id]" + digits[end:]
    return match.group(0)


# Where a person's name follows: "my name is", "the caller's name is", "Name is" opening a sentence, "this is
# ... speaking", an honorific, "Dear", a name field ("customer name:", "first_name=", "lastName": "...",
# "cardholder:"). Not a bare "name:" (a tool's, a model's, a file's) nor "username" (a login). The name is
# read by _name_end; quotes around it stay.
_NAME_CUE = re.compile(
    r"(?<![\w'’-])(?:"
    r"(?i:(?:my|his|her|their|your|(?:customer|caller|client|patient)['’]s) name(?: is|['’]s)) "
    r"|(?:^|(?<=[.!?] ))Name is "
    r"|(?P<speaking>(?i:this is) )"
    r"|(?:Mr|Mrs|Ms|Mx|Dr|Prof|Herr|Frau|Mme|Mlle)\.? "
    r"|Dear "
    r")|(?P<field>(?:(?<![\w'’-])|(?<=_))(?i:(?:(?:customer|caller|client|patient|contact|guest|passenger|recipient|"
    r"sender|billing|shipping|full|first|last|middle|given|family|maiden|sur|fore)[ _-]?name"
    r"|(?:card|account)[ _-]?holder(?:[ _-]?name)?)[\"']?(?: ?[:=] ?| is )[\"']?))"
)
# One word of a name: letters with an apostrophe or hyphen inside (O'Neil, Jean-Luc), or an initial ("J.");
# not part of an id, a file name or an address (jane_doe, Jane2, Report.pdf, N/A).
_NAME_WORD = re.compile(r"[^\W\d_](?:\.(?= )|(?:[^\W\d_]|['’-](?=[^\W\d_]))*+)(?![\w@/]|\.\w)")
_PARTICLES = frozenset("van von de da das dos del della der den di du la le ten ter bin ibn al el y".split())
# Capitalised words that are no one's name: placeholders, forms of address, honorifics ("Dear Mr. Smith"
# is read from "Mr.").
_NOT_NAMES = frozenset(
    "null none nil unknown undefined anonymous redacted hidden empty missing required invalid not tbd test "
    "example sample name customer customers client user users guest member members sir sirs madam madame "
    "team all everyone valued friend friends colleague colleagues admin support staff partner hiring there "
    "dear mr mrs ms mx dr prof herr frau mme mlle".split())


# How a validation error about a name field opens ("first_name: This field is required.", "last_name: Field
# required", "customer_name: Input should be a valid string"): such a word followed by a lower-case one is
# the tool's message, not a name (found in an audit: "first_name: [name] field is required.").
_MESSAGE_WORDS = frozenset(
    "this that these those the it an field value input string text length ensure enter expected must should "
    "cannot please only is be has does contains exceeds received blank unexpected shorter longer".split())
_MESSAGE = re.compile(r"([^\W\d_]+)(?: |\+|%20)([^\W\d_]++)(?![\w=:])")  # not a next field: "last_name=Field first_name=..."


# What may stand between a name's words: a space, or a form's encoded space ("customer_name=Jane+Roe",
# "first_name=Jane%20Roe" showed the surname after [name]; found in a leak audit). One kind throughout a name.
_NAME_GAPS = (" ", "+", "%20")


def _name_end(text: str, start: int) -> int:
    """Where the name starting at ``start`` ends: one to three capitalised words, with initials and
    particles ("van", "de la") between them; ``start`` if there is none."""
    end, words, i, gap = start, 0, start, None
    for _ in range(7):
        word = _NAME_WORD.match(text, i)
        if word is None:
            break
        value = word.group()
        if value in _PARTICLES and words:
            pass  # part of the name only if a capitalised word follows
        elif not value[0].istitle() or value.casefold() in _NOT_NAMES:
            break
        elif value.endswith(("'s", "’s")):
            return word.end() - 2  # a possessive ends the name, and its "'s" stays ("Mr. [name]'s order")
        else:
            end, words = word.end(), words + (len(value.rstrip(".")) > 1)  # initials are not counted
        after = next((g for g in _NAME_GAPS if text.startswith(g, word.end())), None)
        if words == 3 or after is None or gap not in (None, after):
            break
        gap, i = after, word.end() + len(after)
    return end


def names(text: str) -> str:
    """Every name after a cue in ``text`` as [name]; the cue stays."""
    out, pos = [], 0
    for cue in _NAME_CUE.finditer(text):
        if cue.start() < pos:
            continue
        end = _name_end(text, cue.end())
        if cue.group("field") is not None and (message := _MESSAGE.match(text, cue.end())) \
                and message.group(1).casefold() in _MESSAGE_WORDS and message.group(2)[0].islower():
            continue
        if end > cue.end() and (cue.group("speaking") is None or text.startswith(" speaking", end)):
            out += [text[pos:cue.end()], "[name]"]
            pos = end
    return "".join(out) + text[pos:] if out else text


def ids(text: str) -> str:
    """Every record number after a cue in ``text`` as [id]; the cue stays."""
    return _ID.sub(_id, text)


# An address written out to dodge scrapers: "john at example dot com", "john [at] example [dot] com",
# "ann(at)example(dot)org", "john(at)example.com" (an adversarial audit). A bracketed "at" says so on its own;
# a bare " at " is an ordinary word, so it needs every dot of the domain written as a word, a common TLD last
# and no article as the domain ("timeout at step 3", "failed at api.example.com", "at least 3 dot releases",
# "look at the dot com bubble" stay). A local part never starts after a dot, written or bracketed: a run of
# "x dot x dot ..." or "x [dot] x [dot] ..." is read once, from its start.
_AT_MARK = r" ?[\[({<] ?at ?[\])}>] ?"
_DOT_MARK = r" ?[\[({<] ?dot ?[\])}>] ?"
_WORD_DOT = "(?:" + _DOT_MARK + "| dot )"
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
_TLDS = ("com|org|net|edu|gov|info|biz|io|co|ai|app|dev|me|us|uk|de|fr|es|it|nl|be|ch|at|se|no|dk|fi|pl|ie|pt|"
         "ru|jp|cn|in|br|au|ca|eu|nz|mx")
# "dot com" before one of these nouns is the phrase ("the dot com bubble", "a dot com startup"), not an address:
# "meet at noon dot com bubble" was [email] (a known false positive). Only for a bare " at ", which is a word.
_DOT_COM_PHRASE = r"(?!(?<=\bcom) (?:bubble|boom|bust|crash|era|days|mania|collapse|startups?|compan(?:y|ies)|firms?)\b)"
_OBFUSCATED_EMAIL = re.compile(
    r"(?i)(?<![\w.+-])(?<! dot )(?<!dot[\])}>])(?<!dot[\])}>] )\w[\w+-]*(?:(?:\.|" + _WORD_DOT + r")\w[\w+-]*)*"
    r"(?:" + _AT_MARK + _LABEL + r"(?:(?:\.|" + _WORD_DOT + ")" + _LABEL + r")*(?:\.|" + _WORD_DOT + r")[^\W\d_]{2,}"
    r"| at (?!(?:the|a|an|this|that|my|our|your|least|most)\b)" + _LABEL
    + "(?:" + _WORD_DOT + _LABEL + ")*" + _WORD_DOT + "(?:" + _TLDS + r")\b" + _DOT_COM_PHRASE + r")\b"
)


# Either form holds a bracketed "at" or "dot", or " dot ": a text without one is not read further (the
# pattern tries a local part at every word; this halves what the step costs on ordinary error messages).
_WRITTEN_OUT = re.compile(r"(?i)[\[({<] ?(?:at|dot) ?[\])}>]| dot ")


def obfuscated_emails(text: str) -> str:
    """Every address written out with "at" and "dot" in ``text`` as [email]."""
    return _OBFUSCATED_EMAIL.sub("[email]", text) if _WRITTEN_OUT.search(text) else text


# An AWS secret access key is 40 base64 characters, as a hash or a request id may be; so it is one only right
# after its cue: a word starting "aws" (aws_secret_access_key, --aws-secret-access-key, AWS), "secret" ("secret
# key:", "Secret Access Key"), or the access key id it pairs with ("AKIA... wJalr...", "AKIA...:wJalr..."), with
# at most a quote, one of : = , / | or "is" between them (an adversarial audit). It holds upper- and lower-case
# letters, which a hex digest (a sha1 is 40 characters) never does; "AWS request id ..." has words between.
# The cue's tail is read up to 40 characters once: unbounded, "aws_aws_aws..." (8,000 characters) took 3 s.
_AWS_SECRET = re.compile(
    r"((?i:(?<![a-z])aws[\w-]{0,40}+|secret[\w-]{0,40}+(?: access)?(?: key)?)|(?<![\w-])(?:AKIA|ASIA)[0-9A-Z]{16})"
    r"([\"']?\s?(?:[:=,/|]|is|was)?\s?[\"']?)(?<![A-Za-z0-9/+])"
    r"(?=[A-Za-z0-9/+]{0,39}[a-z])(?=[A-Za-z0-9/+]{0,39}[A-Z])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
)


def aws_secrets(text: str) -> str:
    """Every AWS secret access key right after its cue in ``text`` as [secret]; the cue stays."""
    low = text.lower()  # a text without a cue is not read further
    if "aws" not in low and "secret" not in low and "akia" not in low and "asia" not in low:
        return text
    return _AWS_SECRET.sub(r"\1\2[secret]", text)

