"""The archive: ``<archive>/<report_id>/<period_key>/`` holds every artifact of a report run.

Artifacts are written here before any channel is tried, so a failed delivery can be resent
from disk without recomputing. Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: no lock (one process per archive)
    fcntl = None  # type: ignore[assignment]

from .errors import ArchiveError, InputError
from .folders import cannot_write, no_space, sync_folder
from .waiting import wait_for

ARTIFACTS = {
    "json": "report.json",
    "html": "report.html",
    "pdf": "report.pdf",
    "txt": "report.txt",
    "eml": "message.eml",
    "slack": "slack.json",
}


DELIVERED = ".delivered"  # in a period's folder once a channel got it: its send log (mark_delivered)
PREVIEWS = ".previews"  # <archive>/.previews/<report>/<period>: previews of delivered periods
LOCKS = ".locks"  # <archive>/.locks/<report>/<period>.lock: see period_lock
ALARMS = ".alarms"  # <archive>/.alarms/<report>/<period>.jsonl: the send log of the period's alarms (mark_alarmed)


def report_dir(archive: Path, report_id: str, period_key: str) -> Path:
    """``<archive>/<report_id>/<period_key>``; a name that would leave that folder is refused (a period
    argument such as ``../other-report/2026-W47`` must never reach another report's archive)."""
    for what, name in (("report id", report_id), ("period", period_key)):
        if not name or name in (".", "..") or any(c in name for c in "/\\\0") or name != name.strip():
            raise InputError(f"{what} {name!r} is not a plain name (no path separators)")
    return Path(archive) / report_id / period_key


@contextmanager
def writing(archive: Path) -> Iterator[None]:
    """Turn a file-system error under ``archive`` into one line naming the folder (found in a config audit:
    a read-only, full or wrong-type archive ended every run with "unexpected error: OSError")."""
    try:
        yield
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(archive) else ""
        raise ArchiveError(f"archive {archive}: cannot write: {why}{where}; check [archive] path "
                           "(or --archive)") from exc


def check_writable(archive: Path) -> str:
    """Why ``archive`` could not hold reports, or "" when it can; creates nothing (``check`` changes
    nothing): the folder, or the nearest existing one above it, must be a writable folder with space."""
    if problem := cannot_write(archive):
        return f"{problem}; check [archive] path (or --archive)"
    return no_space(archive)


def write_artifacts(archive: Path, report_id: str, period_key: str, files: dict[str, bytes]) -> Path:
    """Write ``{filename: content}`` into the report's archive folder; return the folder.

    The folder then holds this set only: artifacts of an earlier run that this one did not render
    (``--format``) are removed, so one folder never mixes two runs."""
    folder = report_dir(archive, report_id, period_key)
    with writing(archive):
        folder.mkdir(parents=True, exist_ok=True)
        # Every file is written whole to a temp file before any takes its name: found in a storage audit, a
        # disk that filled up at report.pdf had already replaced report.json, so a delivered period's folder
        # held new figures beside the message.eml as sent (and a new one a lone report.json). A failed write
        # now leaves the folder as it was. Each file is flushed to disk first, so a crash just after the
        # renames cannot leave an empty file under an artifact's name.
        staged: dict[str, str] = {}
        try:
            for name, content in files.items():
                fd, staged[name] = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
                with os.fdopen(fd, "wb") as fh:
                    fh.write(content)
                    fh.flush()
                    os.fsync(fh.fileno())
            for name in files:
                os.replace(staged[name], folder / name)
                del staged[name]  # only once renamed: a failed rename leaves its temp file to the clean-up
        finally:
            for tmp in staged.values():
                Path(tmp).unlink(missing_ok=True)
        sync_folder(folder)
        for stale in _artifact_files(folder):
            if stale.name not in files:
                stale.unlink(missing_ok=True)
    return folder


@contextmanager
def period_lock(archive: Path, report_id: str, period_key: str, on_wait: Callable[[], None] | None = None,
                max_wait: float | None = None, on_give_up: Callable[[], None] | None = None,
                finished: Callable[[], bool] | None = None,
                sleep: Callable[[float], None] = time.sleep) -> Iterator[None]:
    """Hold a period's archive for one process: the decision to write it (or keep what was sent), the
    write, and the delivery from it. Another run of the period waits here, then finds it sent; so it
    cannot rewrite the archive under a delivery in progress and send other figures to another channel.

    An advisory ``flock`` on ``<archive>/.locks/<report_id>/<period_key>.lock`` (apart from the report
    folders, which hold periods only): the kernel releases it when the holder exits, even by ``kill -9``.
    ``on_wait`` is called once if the lock is held elsewhere; after ``max_wait`` seconds ``on_give_up``
    is called and the caller goes on without it (a holder that hangs, stopped but alive, must not block
    the period: its claims' leases run out and are taken over, and they keep every delivery single).
    ``sleep`` waits between tries (see :func:`waiting.wait_for`).

    ``finished`` (asked as the block ends without an error, the lock still held): whether the period needs nothing
    more; its lock file is then removed. Found in an operations review: ``.locks`` kept one empty file per report and
    period ever run, for ever. The removal is safe because it is done by the holder and every taker checks, once it
    has the lock, that the file it locked is still the one at the path (:func:`_still_there`): one that waited on the
    removed file finds it gone and locks the path's new file instead, so two never hold the period at once.
    """
    report_dir(archive, report_id, period_key)  # plain names only
    folder = Path(archive) / LOCKS / report_id
    path = folder / f"{period_key}.lock"

    def opened() -> Any:
        with writing(archive):
            for tries in range(3):
                folder.mkdir(parents=True, exist_ok=True)
                try:
                    return open(path, "a+b")  # noqa: SIM115 - closed below
                except FileNotFoundError:  # the folder, empty, just removed by a sweep (archive_sweep): made again
                    if tries == 2:
                        raise

    handle = opened()
    if fcntl is None:
        handle.close()
        yield
        return
    try:
        def try_once() -> bool:
            nonlocal handle
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False
                if _still_there(handle, path):
                    return True
                handle.close()  # its holder removed it while this one waited: lock the file at the path now
                handle = opened()

        if not wait_for(try_once, interval=0.2, max_wait=max_wait, on_wait=on_wait, on_give_up=on_give_up,
                        sleep=sleep):
            yield
            return
        try:
            yield
            if finished is not None and _asked(finished):
                with suppress(OSError):  # held: see the docstring; a file that cannot go is only kept
                    path.unlink()
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


def _still_there(handle: Any, path: Path) -> bool:
    """Whether the open lock file ``handle`` is the one at ``path`` (not removed, nor replaced, since it was opened).
    The inode of a removed file is not reused while ``handle`` keeps it open, so equal numbers are the same file."""
    try:
        at_path = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(handle.fileno())
    return (held.st_dev, held.st_ino) == (at_path.st_dev, at_path.st_ino)


def _asked(finished: Callable[[], bool]) -> bool:
    """``finished()``, False when it fails (a ledger that went away): the lock file is then only kept."""
    try:
        return bool(finished())
    except Exception:  # noqa: BLE001 - a finished delivery must not fail on tidying
        return False


def mark_delivered(archive: Path, report_id: str, period_key: str, sends: list[dict[str, str | None]]) -> None:
    """Note in the period's folder that channels got it: from now on the folder is what was sent.

    The marker is also the period's send log: one JSON line per target sent (channel, recipient, sent_at,
    provider_id), appended by every delivery, resends included. The ledger keeps the latest send of each
    target; the archive keeps them all, and a new or reset ledger is filled in from it
    (:func:`recorded_sends`) instead of the period being sent again."""
    with writing(archive):
        _append(report_dir(archive, report_id, period_key) / DELIVERED, sends)


def mark_alarmed(archive: Path, report_id: str, period_key: str, sends: list[dict[str, str | None]]) -> None:
    """Append alarm sends (channel ``alarm:<name>``, recipient, sent_at, provider_id) to the period's alarm
    log: a new or reset ledger learns them from it (:func:`recorded_alarms`) instead of alarming again. Kept
    apart from the report folders, which hold periods only: an alarm is often about a period never archived."""
    log = _alarm_log(archive, report_id, period_key)
    with writing(archive):
        for tries in range(3):
            log.parent.mkdir(parents=True, exist_ok=True)
            try:
                return _append(log, sends)
            except FileNotFoundError:  # the folder, empty, just removed by a sweep (archive_sweep): made again
                if tries == 2:
                    raise


def _alarm_log(archive: Path, report_id: str, period_key: str) -> Path:
    report_dir(archive, report_id, period_key)  # plain names only
    return Path(archive) / ALARMS / report_id / f"{period_key}.jsonl"


def _append(log: Path, sends: list[dict[str, str | None]]) -> None:
    lines = "".join(json.dumps(send, sort_keys=True) + "\n" for send in sends).encode()
    # Private like the artifacts (it names recipients). Whole lines or nothing: found in a storage audit, a
    # write cut short by a full disk was ignored, leaving half a line, and the next send, appended to it, was
    # lost with it. A half line already there (a crash) is ended first, so it cannot swallow this one.
    fd = os.open(log, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            lines = b"\n" + lines
        try:
            done = 0
            while done < len(lines):
                done += os.write(fd, lines[done:])
        except BaseException:
            with suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def is_delivered(archive: Path, report_id: str, period_key: str) -> bool:
    return (report_dir(archive, report_id, period_key) / DELIVERED).is_file()


def recorded_sends(archive: Path, report_id: str, period_key: str) -> list[dict[str, str | None]] | None:
    """The sends the period's marker records, oldest first; None when it has no marker. A line that is
    not a whole record (a write cut short) is left out; a marker written before it kept sends is empty."""
    marker = report_dir(archive, report_id, period_key) / DELIVERED
    try:
        return _records(marker)
    except OSError as exc:  # found in a crash audit: another user's log (0600) was "unexpected error: PermissionError"
        raise ArchiveError(f"archive {archive}: cannot read the send log {marker}: {exc.strerror or exc}; it says "
                           "who got the period, so nothing of it is sent until it can be read") from None


def recorded_alarms(archive: Path, report_id: str, period_key: str) -> list[dict[str, str | None]]:
    """The alarm sends the period's alarm log records (see :func:`mark_alarmed`), oldest first; empty without one."""
    log = _alarm_log(archive, report_id, period_key)
    try:
        return _records(log) or []
    except OSError as exc:
        raise ArchiveError(f"archive {archive}: cannot read the alarm log {log}: {exc.strerror or exc}") from None


def _records(log: Path) -> list[dict[str, str | None]] | None:
    """The whole records of a send log (channel and recipient strings), oldest first; None when there is none."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError):  # no such folder (a file in its place fails the write, named)
        return None
    sends = []
    for line in text.splitlines():
        try:
            send = json.loads(line)
        except ValueError:
            continue
        if isinstance(send, dict) and isinstance(send.get("channel"), str) and isinstance(send.get("recipient"), str):
            sends.append(send)
    return sends


def preview_root(archive: Path) -> Path:
    """Where dry runs and test sends of a delivered period are archived, so the as-sent copy stays."""
    return Path(archive) / PREVIEWS


def read_artifacts(archive: Path, report_id: str, period_key: str) -> dict[str, bytes]:
    """Every artifact archived for (report, period); empty when nothing was archived."""
    folder = report_dir(archive, report_id, period_key)
    return {p.name: p.read_bytes() for p in _artifact_files(folder)}


def artifact_names(folder: Path) -> list[str]:
    """The names of the artifacts in an archive folder (none while a write is in progress: temp files)."""
    return [p.name for p in _artifact_files(folder)]


def _artifact_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")]
