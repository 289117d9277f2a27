"""The archive's daily tidying (archive_sweep): what goes of reports no longer in the config, and what never does."""

from __future__ import annotations

import fcntl
import os
import time

import pytest

from agentdigest import archive as archive_module
from agentdigest.archive import period_lock, write_artifacts
from agentdigest.archive_sweep import EMPTY_FOR, sweep_removed

OLD = time.time() - EMPTY_FOR - 3600  # an empty folder left since before the last day


def _empty(path, when=OLD):
    """An empty folder at ``path``, last changed at ``when``."""
    path.mkdir(parents=True)
    os.utime(path, (when, when))


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_removed_reports_unheld_lock_files_and_empty_folders_go_and_nothing_else(tmp_path):
    """Found in an operations review: a report taken out of the config left its lock files and empty folders in the
    archive for ever. They go now; its artifacts, logs, held lock files, young empty folders, the configured
    reports' files and folders the archive's own folders do not name all stay."""
    archive = tmp_path / "reports"
    write_artifacts(archive, "gone", "2026-W01", {"report.json": b"{}"})  # an artifact: kept
    _empty(archive.joinpath("gone", "2026-W02"))  # empty, old: goes
    archive.joinpath("gone", "2026-W03").mkdir()  # empty but just made (a run about to write it): kept
    _empty(archive.joinpath("gone", "drafts"))  # not a period's folder: kept
    locks = archive / ".locks" / "gone"
    locks.mkdir(parents=True)
    for key in ("2026-W01", "2026-W02", "2026-W04"):
        (locks / f"{key}.lock").touch()
    held = open(locks / "2026-W04.lock", "r+b")  # noqa: SIM115 - a run of that period (another config) holds it
    fcntl.flock(held, fcntl.LOCK_EX)
    _empty(archive.joinpath(".previews", "gone", "2026-W01"))
    archive.joinpath(".alarms", "gone").mkdir(parents=True)
    (archive / ".alarms" / "gone" / "2026-W05.jsonl").write_text('{"channel": "alarm:ops", "recipient": ""}\n')
    # a report still configured, with a lock file and an empty old period folder: left to the run and the lock sweep
    (archive / ".locks" / "live").mkdir()
    (archive / ".locks" / "live" / "2026-W01.lock").touch()
    _empty(archive.joinpath("live", "2026-W01"))
    _empty(archive.joinpath("other", "2026-W01"))  # unnamed
    before = set(_tree(archive))
    try:
        locks_gone, folders_gone = sweep_removed(archive, {"live"})
    finally:
        held.close()
    gone = {".locks/gone/2026-W01.lock", ".locks/gone/2026-W02.lock", "gone/2026-W02", ".previews/gone/2026-W01",
            ".previews/gone"}
    assert before - set(_tree(archive)) == gone
    assert (locks_gone, folders_gone) == (2, 3)
    assert (archive / "gone" / "2026-W01" / "report.json").read_bytes() == b"{}"


def test_a_removed_report_left_with_nothing_leaves_no_folder(tmp_path):
    archive = tmp_path / "reports"
    (archive / ".locks" / "gone").mkdir(parents=True)
    (archive / ".locks" / "gone" / "2026-11-23.lock").touch()
    _empty(archive.joinpath("gone", "2026-11-23"))
    assert sweep_removed(archive, {"kept"}) == (1, 3)  # the period's folder, the report's, its .locks folder
    assert _tree(archive) == [".locks"]
    assert sweep_removed(archive, {"kept"}) == (0, 0)  # nothing more: the next day's sweep finds nothing


def test_a_link_in_place_of_a_removed_reports_folder_is_not_followed(tmp_path):
    archive = tmp_path / "reports"
    elsewhere = tmp_path / "elsewhere"
    _empty(elsewhere / "2026-W01")
    (archive / ".locks" / "gone").mkdir(parents=True)
    (archive / "gone").symlink_to(elsewhere, target_is_directory=True)
    (archive / ".previews").mkdir()
    (archive / ".previews" / "gone").symlink_to(elsewhere, target_is_directory=True)
    assert sweep_removed(archive, set()) == (0, 1)  # .locks/gone only
    assert (elsewhere / "2026-W01").is_dir() and (archive / "gone").is_symlink()


@pytest.mark.parametrize("write", ["lock", "alarm"])
def test_a_folder_removed_by_a_sweep_between_its_mkdir_and_its_file_is_made_again(tmp_path, monkeypatch, write):
    """The sweep may remove a report's empty .locks or .alarms folder just after a run made it, before the run opens
    its file there (a process with another config still running that report). The run makes the folder again.
    A mock, because the moment between two system calls cannot be hit at will: the first open finds it removed."""
    archive = tmp_path / "reports"
    folder = archive / (".locks" if write == "lock" else ".alarms") / "gone"
    real_open, real_os_open = open, os.open
    swept = []

    def sweep_first(path, *args, **kwargs):
        if not swept:
            swept.append(path)
            os.rmdir(folder)  # as sweep_removed does: the folder is empty
        return (real_open if write == "lock" else real_os_open)(path, *args, **kwargs)

    if write == "lock":
        monkeypatch.setattr(archive_module, "open", sweep_first, raising=False)
        with period_lock(archive, "gone", "2026-W01"):
            assert (folder / "2026-W01.lock").is_file()
    else:
        monkeypatch.setattr(archive_module.os, "open", sweep_first)
        archive_module.mark_alarmed(archive, "gone", "2026-W01", [{"channel": "alarm:ops", "recipient": ""}])
        monkeypatch.undo()
        assert archive_module.recorded_alarms(archive, "gone", "2026-W01") == [{"channel": "alarm:ops",
                                                                                   "recipient": ""}]
    assert len(swept) == 1
