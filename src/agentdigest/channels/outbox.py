"""The outbox channel: every delivery becomes new files on disk; nothing leaves the machine.

``<path>/<report_id>/<period_key>/<UTC time>-<random>.eml`` (and ``.slack.json``). Every file of a
delivery is written to a temporary name before any is hard-linked into place, so an existing file is
never overwritten, a reader never sees half a message, and a delivery is all its files or none.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from datetime import datetime, timezone
from email import policy
from email.parser import BytesParser
from pathlib import Path

from .. import config
from ..errors import DeliveryError
from ..folders import cannot_write, no_space, sync_folder
from .base import BaseChannel, CheckResult, Delivery, Receipt, TargetResult
from .slack import mark_test

# archived artifact -> suffix of the outbox file
_FILES = {"message.eml": ".eml", "slack.json": ".slack.json"}


class OutboxChannel(BaseChannel):
    """Writes each delivery as a fresh ``.eml`` plus the Slack payload under the outbox folder."""

    type = "outbox"
    settings_model = config.OutboxChannel

    def describe(self) -> str:
        return f"outbox {self.settings.path}"

    def needs(self) -> tuple[str, ...]:
        return ("message.eml",)  # and slack.json when it is there (README, Delivery and the ledger)

    def destination(self) -> str:
        path = Path(self.settings.path)
        try:
            return str(path.resolve())
        except (OSError, RuntimeError):  # a symbolic link loop: the path as written then
            return str(path.absolute())

    def deliver(self, delivery: Delivery) -> Receipt:
        present = {name: suffix for name, suffix in _FILES.items() if name in delivery.artifacts}
        if not present:
            raise DeliveryError(
                f"outbox {self.name!r}: neither message.eml nor slack.json is in the archive of "
                f"{delivery.report_id}/{delivery.period_key}"
            )
        folder = Path(self.settings.path) / delivery.report_id / delivery.period_key
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        stem = f"{stamp}-{uuid.uuid4().hex[:8]}" + ("-test" if delivery.test else "")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            written = _write_new(folder, {f"{stem}{suffix}": _content(name, delivery)
                                          for name, suffix in present.items()})
        except OSError as exc:
            # A full disk may clear up; a permission problem will not, but retrying it is harmless.
            raise DeliveryError(f"outbox {self.name!r} cannot write to {folder}: {exc.strerror}",
                                retryable=True) from None
        provider_id = written[0].name
        return Receipt(
            results=tuple(TargetResult(t, "sent", provider_id) for t in delivery.targets),
            detail={"files": ", ".join(str(p) for p in written)},
        )

    def check(self) -> CheckResult:
        if problem := cannot_write(Path(self.settings.path)) or no_space(Path(self.settings.path)):
            return CheckResult(self.name, False, f"{self.describe()}: {problem}")
        return CheckResult(self.name, True, f"{self.describe()}: writable")


def _write_new(folder: Path, files: dict[str, bytes]) -> list[Path]:
    """Create every file of ``{name: content}`` in ``folder``, or none; never replace an existing file.

    Found in a storage audit: a disk that filled up at the Slack payload left the .eml already named in
    the outbox while the delivery was recorded failed, and its retry wrote a second copy of the period.
    Each file is now written whole (and flushed to disk) under a temporary name first; only then are
    they named, and the ones named are removed again if a later one cannot be."""
    staged: list[tuple[str, Path]] = []
    named: list[Path] = []
    try:
        for name, content in files.items():
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".outbox-")
            staged.append((name, Path(tmp)))
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
        for name, tmp in staged:
            os.link(tmp, folder / name)  # raises FileExistsError instead of overwriting
            named.append(folder / name)
    except BaseException:
        for path in named:
            path.unlink(missing_ok=True)
        raise
    finally:
        for _, tmp in staged:
            tmp.unlink(missing_ok=True)
    sync_folder(folder)
    return named


def _content(name: str, delivery: Delivery) -> bytes:
    """The archived file as delivered: byte for byte, except that a test is marked as one in the
    email's Subject and the Slack text, as the email and Slack channels mark theirs."""
    content = delivery.artifacts[name]
    if not delivery.test:
        return content
    if name == "slack.json":
        return json.dumps(mark_test(json.loads(content)), ensure_ascii=False, indent=2).encode("utf-8")
    message = BytesParser(policy=policy.default).parsebytes(content)
    subject = str(message.get("Subject", ""))
    del message["Subject"]
    message["Subject"] = "[test] " + subject
    return message.as_bytes(policy=policy.default)
