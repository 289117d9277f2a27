"""Event text fitted for display: clipped to a cell, ids cut in the middle and kept apart, and
right-to-left text isolated so it cannot reorder the figures beside it.

Text is clipped here, before escaping (which happens later, in the template), so an entity is never split.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

from .format import NA

ELLIPSIS = "…"
#: The row of a breakdown for events without the key (agent_id, model, error_type null).
UNNAMED = "(none)"


# Strong right-to-left letters (Hebrew, Arabic, Syriac, Thaana, N'Ko..., their presentation forms).
_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc\U00010800-\U00010fff\U0001e800-\U0001efff]")
ISOLATE, POP = "\u2068", "\u2069"


def isolated(text: str) -> str:
    """``text`` in Unicode isolates when it holds right-to-left letters, so the bidi algorithm of the
    reader's client cannot pull the numbers that follow into it (a row read backwards after an Arabic
    name, found in a rendering audit); other text unchanged."""
    return ISOLATE + text + POP if _RTL.search(text) else text


def direction(text: str) -> str:
    """"rtl" when the first letter of ``text`` with a direction is right-to-left (as a browser decides
    dir="auto"), else "ltr". Said explicitly, because WeasyPrint and Word-based Outlook ignore dir="auto"."""
    for ch in text:
        kind = unicodedata.bidirectional(ch)
        if kind in ("R", "AL"):
            return "rtl"
        if kind == "L":
            return "ltr"
    return "ltr"


def take(text: str, n: int, from_end: bool = False) -> str:
    """The first (or last) ``n`` characters of ``text``."""
    return (text[len(text) - n:] if n > 0 else "") if from_end else text[:max(0, n)]


def cut_middle(text: str, limit: int, take: Callable[[str, int, bool], str] = take,
               size: Callable[[str], int] = len) -> str:
    """``text`` in ``limit`` units (characters, or a terminal's cells), the middle cut out when too long:
    ids such as ``support-assistant-prod-eu-west-1-v6`` and ``...-v5`` differ at the end (found in a
    rendering audit: six agents all read ``customer-support-…``)."""
    if size(text) <= limit:
        return text
    tail = (limit - 1) * 2 // 5 if limit >= 9 else 0
    return take(text, limit - 1 - tail, False) + ELLIPSIS + (take(text, tail, True) if tail else "")


def _cut_around(text: str, ats: Sequence[int], limit: int, take: Callable[[str, int, bool], str],
                size: Callable[[str], int], head: str | None = None) -> str:
    """``text`` in ``limit`` units showing its start, its end and a stretch from just before each
    character in ``ats``, where it parts from a similar id: ids that differ in two places (region and
    version) need both shown."""
    part = max(1, limit // (4 + len(ats)))
    grown = head is not None
    head, tail = (take(text, part, False) if head is None else head), take(text, part, True)
    end = len(text) - len(tail)
    parts = sorted({at for at in ats if len(head) <= at < end})
    room = limit - size(head) - size(tail) - len(parts) - 1  # an ellipsis before each stretch and the tail
    if not parts or room < len(parts):
        return cut_middle(text, limit, take, size)
    before = min(2, (room // len(parts) - 1) // 2)  # context before where it parts, when there is room
    starts = sorted({max(len(head), at - before) for at in parts})
    pieces, shown = [head], len(head)
    for n, start in enumerate(starts):
        if start < shown:  # overlaps the stretch before
            start = shown
        stop = starts[n + 1] if n + 1 < len(starts) else end
        piece = take(text[start:stop], room // len(starts) + (room % len(starts) if n + 1 == len(starts) else 0), False)
        pieces.append((ELLIPSIS if start > shown else "") + piece)
        shown = start + len(piece)
    # an ellipsis beside one the text holds already (a label cut before) is one (a rendering audit:
    # "invalid to…… 2 with schema mismatch")
    out = re.sub(ELLIPSIS + "{2,}", ELLIPSIS, "".join(pieces) + (ELLIPSIS if shown < end else "") + tail)
    if grown:
        return out
    # room the stretches left unused goes to the start, as long as it cuts nothing more out (the same
    # audit: 35 of 51 cells used)
    for more in range(limit - size(out), 0, -1):
        grown_head = take(text[:starts[0]], size(head) + more, False)
        longer = _cut_around(text, ats, limit, take, size, head=grown_head)
        if len(grown_head) > len(head) and longer.count(ELLIPSIS) <= out.count(ELLIPSIS):
            return longer
    return out


def cut_apart(texts: Sequence[str | None], limit: int, take: Callable[[str, int, bool], str] = take,
              size: Callable[[str], int] = len) -> list[str | None]:
    """Each text as :func:`cut_middle` shows it, except that two different texts never share a label:
    ids that differ only in the middle (``customer-support-us-east-1-prod`` and ``...-eu-west-1-prod``,
    left as a known gap by a rendering audit) show the stretch where they part. None stays None."""
    labels = [None if t is None else cut_middle(t, limit, take, size) for t in texts]
    rivals: dict[str, set[str]] = {}  # the ids each id was cut to the same label as, in any pass
    for _ in range(4):  # a new label can meet another id's new label: cut again, apart from both
        groups: dict[str, set[str]] = {}
        for text, label in zip(texts, labels):
            if text is not None and label != text:
                groups.setdefault(label, set()).add(text)
        clashes = {label: same for label, same in groups.items() if len(same) > 1}
        if not clashes:
            break
        for i, text in enumerate(texts):
            if text is not None and labels[i] in clashes:
                rivals.setdefault(text, set()).update(clashes[labels[i]] - {text})
                # where it parts from each of them: shown, as far as the room allows
                ats = {len(os.path.commonprefix([text, other])) for other in rivals[text]}
                labels[i] = _cut_around(text, sorted(ats), limit, take, size)
    return labels


def clip(value: Any, limit: int, *, middle: bool = False) -> str:
    """``value`` as text of at most ``limit`` characters; a missing value is "n/a". ``middle`` cuts out
    the middle instead of the end, for ids (:func:`cut_middle`)."""
    if value is None:
        return NA
    text = " ".join(str(value).split())
    if middle and limit >= 9:
        return cut_middle(text, limit)
    return text if len(text) <= limit else text[: max(1, limit - 1)].rstrip() + ELLIPSIS


#: A key that is empty or only spaces: shown as this, not as a blank cell.
BLANK = "(blank)"


def names(values: Sequence[Any], limit: int) -> list[str]:
    """Breakdown keys as :func:`cut_apart` shows them (the middle cut out, different ids kept apart);
    the row of the events without one is "(none)", an empty or blank one "(blank)", and a key that is
    literally "(none)" or "(blank)" is shown in quotes (found in a scale audit: two rows read "(none)")."""
    texts = [None if v is None else " ".join(str(v).split()) for v in values]
    texts = [t if t not in (UNNAMED, BLANK) else f'"{t}"' for t in texts]
    labels = cut_apart([t or None for t in texts], limit)  # a blank key is not cut, it is "(blank)"
    return [UNNAMED if text is None else BLANK if not text else label  # type: ignore[misc]
            for text, label in zip(texts, labels)]


def name(value: Any, limit: int) -> str:
    """One breakdown key as :func:`names` shows it."""
    return names([value], limit)[0]
