"""Tidying the archive (the scheduler's daily sweep): lock files no run will take again, and the empty folders of
reports no longer in the config. Nothing else: an artifact, a send log or an alarm log is never removed, and a
folder only when it is empty (``rmdir`` refuses any other).

A lock file is removed only while this process holds it, and only if it is still the file at its path: a run that
was waiting on it then locks the path's new file (see :func:`archive.period_lock`), so two never hold a period.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from .archive import ALARMS, LOCKS, PREVIEWS, _asked, _still_there, fcntl

#: An empty period folder younger than this is left: a run may have just made it, to write into it.
EMPTY_FOR = 24 * 3600
#: A period key of a day, week or month (2026-11-23, 2026-W48, 2026-11): a folder named otherwise is not a period's.
_PERIOD_KEY = re.compile(r"^\d{4}-(?:\d{2}-\d{2}|W\d{2}|\d{2})$")


def sweep_locks(archive: Path, report_id: str, needless: Callable[[str], bool]) -> int:
    """Remove the lock files of ``report_id``'s periods that ``needless(period_key)`` says no run needs (a period
    sent, or one the scheduler no longer runs), each while holding it, as :func:`archive.period_lock` does; one held
    elsewhere is left, and no file is made. How many went."""
    if fcntl is None:
        return 0
    gone = 0
    try:
        paths = sorted((Path(archive) / LOCKS / report_id).glob("*.lock"))
    except OSError:
        return 0
    for path in paths:
        # Asked before the lock is taken, so it is held for a moment only: a run starting then would wait and say
        # "being delivered by another process". The removal of a held file is safe whatever its period's state
        # (see period_lock)
        if not _asked(lambda: needless(path.name.removesuffix(".lock"))):
            continue
        try:
            handle = open(path, "r+b")  # noqa: SIM115 - closed below; not "a+b": a file removed meanwhile stays so
        except OSError:
            continue
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held: a run of that period is going on
                continue
            try:
                if _still_there(handle, path):
                    path.unlink()
                    gone += 1
            except OSError:
                pass
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    return gone


def sweep_removed(archive: Path, configured: set[str], now: float | None = None) -> tuple[int, int]:
    """For every report the archive's own folders (``.locks``, ``.previews``, ``.alarms``) name and ``configured``
    does not: remove its lock files no process holds, then its empty folders: those three, and in
    ``<archive>/<report>`` the empty folders named as periods (unchanged for :data:`EMPTY_FOR`), then the report's
    folder itself once empty. A folder of the archive's that no such report names is never looked at (the archive
    may sit among other files). (lock files, folders) removed."""
    archive = Path(archive)
    now = time.time() if now is None else now
    removed = set()
    for kept in (LOCKS, PREVIEWS, ALARMS):
        with suppress(OSError):
            removed.update(e.name for e in os.scandir(archive / kept) if e.is_dir(follow_symlinks=False))
    locks = folders = 0
    for report_id in sorted(removed - set(configured)):
        locks += sweep_locks(archive, report_id, lambda key: True)
        folders += _remove_empty(archive / PREVIEWS / report_id, now)
        folders += _remove_empty(archive / ALARMS / report_id, now)
        if report_id not in (".", "..") and not report_id.startswith("."):
            folders += _remove_empty(archive / report_id, now)
        # last: while it is there, the report's folder above is known to be a report's
        folders += _remove_empty(archive / LOCKS / report_id, now)
    return locks, folders


def _remove_empty(folder: Path, now: float) -> int:
    """Remove the empty period folders in ``folder`` (unchanged for :data:`EMPTY_FOR`), then ``folder`` if it is
    empty; how many went. A link is never followed, nor anything but an empty folder removed."""
    if folder.is_symlink() or not folder.is_dir():
        return 0
    gone = 0
    with suppress(OSError):
        for entry in os.scandir(folder):
            if (_PERIOD_KEY.match(entry.name) and entry.is_dir(follow_symlinks=False)
                    and now - entry.stat(follow_symlinks=False).st_mtime >= EMPTY_FOR):
                with suppress(OSError):  # not empty (or no longer there): kept
                    os.rmdir(entry.path)
                    gone += 1
    with suppress(OSError):
        os.rmdir(folder)
        gone += 1
    return gone
