"""The archive: ``<archive>/<report_id>/<period_key>/`` holds every artifact of a report run.

Artifacts are written here before any channel is tried, so a failed delivery can be resent
from disk without recomputing. Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ARTIFACTS = {
    "json": "report.json",
    "html": "report.html",
    "pdf": "report.pdf",
    "txt": "report.txt",
    "eml": "message.eml",
    "slack": "slack.json",
}


def report_dir(archive: Path, report_id: str, period_key: str) -> Path:
    return Path(archive) / report_id / period_key


def write_artifacts(archive: Path, report_id: str, period_key: str, files: dict[str, bytes]) -> Path:
    """Write ``{filename: content}`` into the report's archive folder; return the folder."""
    folder = report_dir(archive, report_id, period_key)
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
            os.replace(tmp, folder / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return folder


def read_artifacts(archive: Path, report_id: str, period_key: str) -> dict[str, bytes]:
    """Every artifact archived for (report, period); empty when nothing was archived."""
    folder = report_dir(archive, report_id, period_key)
    if not folder.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}
