"""The errors agentdigest raises, and the exit code each one maps to.

    AgentDigestError                      exit 1
     ├── ConfigError(ValueError)          exit 2  bad config file, key or value
     ├── InputError(ValueError)           exit 2  bad command-line input or source shape
     ├── SourceError                      exit 3  the event source cannot be opened or read
     ├── RenderError                      exit 1  an artifact could not be produced
     ├── ArchiveError                     exit 1  the archive folder cannot be written
     └── DeliveryError                    exit 1  a channel refused or failed (``retryable`` says which)

The CLI turns any of these into one line on stderr; a traceback is a bug.
"""

from __future__ import annotations


class AgentDigestError(Exception):
    """Root of every error agentdigest raises on purpose."""

    exit_code = 1


class ConfigError(ValueError, AgentDigestError):
    """The configuration is invalid: names the file, the key and what was expected."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None):
        self.file = file
        self.key = key
        where = ": ".join(part for part in (file, key) if part)
        super().__init__(f"{where}: {message}" if where else message)


class InputError(ValueError, AgentDigestError):
    """A command-line argument or the source's shape (table, columns) is wrong."""

    exit_code = 2


class SourceError(AgentDigestError):
    """The event source could not be opened or queried."""

    exit_code = 3


class RenderError(AgentDigestError):
    """An artifact could not be rendered."""


class ArchiveError(AgentDigestError):
    """The archive folder (``[archive] path`` or ``--archive``) cannot be written: read-only, full, a file."""


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message (its type name when empty), for one-line errors."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text[:limit] if limit else text


def install_extra(extra: str) -> str:
    """How to install one of agentdigest's extras: it is installed from a clone, not from PyPI (README)."""
    return f"install agentdigest's {extra} extra: pip install -e '.[{extra}]' in its clone (README, Quick start)"


class DeliveryError(AgentDigestError):
    """A channel failed to deliver. ``retryable`` is true for transient failures."""

    def __init__(self, message: str, *, retryable: bool = False, retry_after: float | None = None):
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(message)


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP) raised as an exception, so a run records where it stopped.

    A KeyboardInterrupt, so everything that handles Ctrl-C handles it the same way."""

    during: str | None = None  # the wait it ended, when the scheduler's stop ended one (interrupts.pausing)

    def __init__(self, signal_name: str = "SIGINT"):
        self.signal_name = signal_name
        super().__init__(signal_name)


def interruption(exc: BaseException) -> str:
    """How a run was stopped, for the ledger: ``interrupted by SIGTERM``, ``... SIGINT (Ctrl-C)``."""
    if isinstance(exc, KeyboardInterrupt):
        name = exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"
        return f"interrupted by {name}" + (" (Ctrl-C)" if name == "SIGINT" else "")
    return f"stopped by {type(exc).__name__}"
