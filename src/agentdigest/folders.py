"""Whether a folder agentdigest writes to (the archive, an outbox, a SQLite ledger's) could be written,
checked without creating anything: ``check`` changes nothing; and making new names in one durable."""

from __future__ import annotations

import os
from pathlib import Path


def nearest_existing(path: Path) -> Path:
    """``path``, or the nearest folder above it that exists (where it would be created)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def cannot_write(folder: Path) -> str:
    """Why files could not be created in ``folder`` (made if missing), or "" when they could: the nearest
    existing path must be a folder this process may write (found in a config audit: a path naming a file
    was called writable, and the run failed)."""
    here = nearest_existing(folder)
    if not here.is_dir():
        return f"{here} is not a folder"
    if not os.access(here, os.W_OK | os.X_OK):
        return f"{here} is not writable"
    return ""


#: Less free space than this under a folder fails ``check``: a report's files take a few hundred KiB.
MIN_FREE = 1024 * 1024


def no_space(folder: Path) -> str:
    """Why ``folder`` (or the nearest folder above it that exists) has too little space to write to, or "".
    Found in a storage audit: check called a full outbox "writable" and a full ledger disk "ok"."""
    here = nearest_existing(folder)
    try:
        stats = os.statvfs(here)
    except OSError:
        return ""  # cannot tell: the writes themselves say it
    free = stats.f_bavail * stats.f_frsize
    if free < MIN_FREE:
        return f"{here}: {'no space left' if free == 0 else f'only {free // 1024} KiB free'} on the device"
    return ""


def sync_folder(folder: Path) -> None:
    """Make the names just given in ``folder`` (renames, links) durable before they are relied on (best effort:
    not every file system can sync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
