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
# C0/C1 controls (except tab, newline, carriage return) and bidirectional overrides, which can
# disguise text in a terminal or a mail client.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"\s+")
MAX_TEXT = 2000


def clean_text(text: str) -> str:
    """One printable line: controls and bidi overrides removed, every run of spaces and line breaks one space."""
    text = _SPACES.sub(" ", _CONTROL.sub("", without_surrogates(text)))
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


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
            if isinstance(value, str):
                out[key] = clean_text(redactor.redact(value) or "")
            elif value is not None and key != "event_type":
                out[key] = clean_text(redactor.redact(str(value)) or "")
        return out

    def rows(values: tuple[dict[str, Any], ...] | None) -> tuple[dict[str, Any], ...] | None:
        return None if values is None else tuple(row(r) for r in values)

    return replace(
        data,
        by_agent=rows(data.by_agent), by_model=rows(data.by_model),
        errors_by_type=rows(data.errors_by_type), failure_examples=rows(data.failure_examples) or (),
    )
