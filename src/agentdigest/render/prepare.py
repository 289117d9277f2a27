"""Make ReportData safe to present: redact PII and strip control characters from event text.

This is the one place event text is redacted: every string that comes from events (failure
examples, agent ids, error types, models, conversation ids). It is idempotent, and it runs before
any artifact, report.json included, is produced. Every value is shown on one line and cut to
``MAX_TEXT`` characters: a 100,000-character error message is no example, and it went whole into
report.json and webhooks.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from ..redact import Redactor, without_surrogates
from ..report import ReportData

EVENT_TEXT = ("agent_id", "error_type", "error_message", "model", "conversation_id", "event_type")
#: Keys that name a row of a table: what cleaning removes from them is shown as U+FFFD, so "ag\x00ent" and
#: "agent" stay two rows that read differently (found in a scale audit: two rows read "agent").
KEYS = ("agent_id", "error_type", "model", "conversation_id")
# C0/C1 controls (except tab, newline, carriage return), bidirectional overrides, which can disguise
# text in a terminal or a mail client, the BOM and interlinear annotation marks, and noncharacters,
# which a PDF draws as a missing-glyph box (found in a scale audit: U+FEFF and U+10FFFF passed).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff\ufff9-\ufffb"
                      "\ufdd0-\ufdef" + "".join(f"{chr(plane * 0x10000 + 0xfffe)}{chr(plane * 0x10000 + 0xffff)}"
                                                for plane in range(17)) + "]")
_SPACES = re.compile(r"\s+")
MAX_TEXT = 2000
#: Event text longer than this is cut before redaction (the patterns' time grows with the text), and the
#: end of what they read is dropped (_CUT_MARGIN), so a secret cut in two is never shown in part.
READ_TEXT = 4 * MAX_TEXT
_CUT_MARGIN = 512


def clean_text(text: str, removed: str = "") -> str:
    """One printable line: controls, bidi overrides and noncharacters replaced by ``removed``, every run of
    spaces and line breaks one space, cut to :data:`MAX_TEXT` characters."""
    text = _SPACES.sub(" ", _CONTROL.sub(removed, without_surrogates(text)))
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


def _redacted(redactor: Redactor, value: str) -> str:
    """``value`` redacted; a long one is cut first (a 1 MB message of crafted text must not stall the report)."""
    if len(value) <= READ_TEXT:
        return redactor.redact(value) or ""
    text = redactor.redact(value[:READ_TEXT]) or ""
    return text[: max(0, len(text) - _CUT_MARGIN)].rstrip() + "…"


def redactor_for(data: ReportData) -> Redactor:
    settings = data.settings or {}
    return Redactor(bool(settings.get("redact", True)), settings.get("redact_patterns") or {})


def prepare(data: ReportData) -> ReportData:
    """A copy of ``data`` whose event text is redacted (per the report's settings) and printable."""
    redactor = redactor_for(data)

    def row(values: dict[str, Any]) -> dict[str, Any]:
        out = dict(values)
        for key in EVENT_TEXT:
            value = out.get(key)
            removed = "\ufffd" if key in KEYS else ""
            if isinstance(value, str):
                out[key] = clean_text(_redacted(redactor, value), removed)
            elif value is not None and key != "event_type":
                out[key] = clean_text(_redacted(redactor, str(value)), removed)
        return out

    def rows(values: tuple[dict[str, Any], ...] | None) -> tuple[dict[str, Any], ...] | None:
        return None if values is None else tuple(row(r) for r in values)

    quality = data.quality
    if quality is not None and quality.unknown_event_type_examples:
        quality = replace(quality, unknown_event_type_examples=tuple(
            None if t is None else clean_text(_redacted(redactor, str(t)), "\ufffd")
            for t in quality.unknown_event_type_examples))
    return replace(
        data,
        by_agent=rows(data.by_agent), by_model=rows(data.by_model),
        errors_by_type=rows(data.errors_by_type), failure_examples=rows(data.failure_examples) or (),
        quality=quality,
    )
