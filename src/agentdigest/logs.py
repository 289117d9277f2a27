"""The scheduler's log lines: text or one JSON object per line, both with the time in UTC and with URL
passwords and Slack tokens masked (``agentdigest schedule --log-format``)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any

from .errors import InputError
from .masking import mask_text

#: ``extra`` of a log line that the command's outcome on stdout says as well (a failed delivery's error): the CLI
#: leaves it out of stderr when both streams go to one place (cron's mail, ``2>&1``, a terminal), so it reads once
IN_OUTCOME = {"in_outcome": True}

_FIELDS = ("event", "report", "period", "periods", "channel", "recipient", "error", "kind", "next_run", "owner")


def _utc_time(record: logging.LogRecord) -> str:
    """When ``record`` was made, in ISO 8601 UTC with its offset: the same in text and JSON lines, whatever the
    machine's zone (text lines said local time without an offset)."""
    return datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    """Log lines (and tracebacks) with URL passwords and Slack tokens masked: an unexpected error is logged
    as it was raised, and a library's exception may quote a URL whole (found in a security audit)."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_text(super().format(record))

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        return _utc_time(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the decision's fields (masked as
    :class:`TextFormatter`'s lines are)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _utc_time(record),
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in _FIELDS if getattr(record, k, None) is not None})
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps({k: mask_text(v) if isinstance(v, str) else v for k, v in entry.items()}, default=str)


def own_or_warning(record: logging.LogRecord) -> bool:
    """Whether a log line is shown: agentdigest's at its logger's level, a library's from WARNING only. Found in
    a production audit: `--verbose` showed sqlglot's "INFO sqlglot: Applying array index offset" and WeasyPrint's
    seven "Step ..." lines of every PDF, none of them news to the reader; a library's warning still is."""
    return record.name == "agentdigest" or record.name.startswith("agentdigest.") or record.levelno >= logging.WARNING


def configure_logging(log_format: str, stream: Any = None, *, verbose: bool = False) -> None:
    """Every log line to stderr as text or as one JSON object: agentdigest's from INFO (DEBUG with ``verbose``),
    libraries' from WARNING."""
    if log_format not in ("text", "json"):
        raise InputError(f"--log-format {log_format!r}: expected text or json")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else
                         TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(own_or_warning)  # a library that sets its own logger's level (to INFO) is held back too
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("agentdigest").setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.captureWarnings(True)  # library warnings become log lines too, so JSON stays one object per line


def configure_command_logging(verbose: bool) -> None:
    """The log lines of a short-lived command (``run``, ``check``, ...) on stderr: agentdigest's progress from INFO
    with ``verbose`` (else its warnings), libraries' from WARNING. Where the process already logs somewhere (a
    test's capture, a host program's handlers), its handlers and levels are kept, but for agentdigest's with ``verbose``."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(TextFormatter("%(levelname)s %(name)s: %(message)s"))
        handler.addFilter(own_or_warning)
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
    # Without verbose, the root's level (WARNING) holds: a host's own settings are left as they are.
    logging.getLogger("agentdigest").setLevel(logging.INFO if verbose else logging.NOTSET)
