"""When the machine's storage misbehaves: a full, read-only or vanished archive, outbox or ledger folder.

Each test is one finding of a storage audit (2026-11-30). A full disk is made without privileges: a child
process whose file-size limit (RLIMIT_FSIZE) ends a write part-way, as ENOSPC does (EFBIG then; Python
ignores SIGXFSZ). The audit itself also used a 200k tmpfs, as root.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parent.parent / "src")


def limited(code: str, limit: int) -> subprocess.CompletedProcess:
    """Run ``code`` in a child process that may not write a file beyond ``limit`` bytes."""
    prelude = f"import resource; resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.RLIM_INFINITY))\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=120)


def test_an_archive_write_cut_short_leaves_the_folder_as_it_was(tmp_path):
    """Found in a storage audit: a disk that filled up at report.pdf had already replaced report.json, so a
    delivered period's folder (after a failed `run --force`) held figures nobody got beside the message.eml
    as sent, and a new period's folder a lone report.json. Every file is now written before any is renamed."""
    from agentdigest.archive import write_artifacts

    folder = write_artifacts(tmp_path, "weekly", "2026-W47", {"report.json": b'{"old": 1}', "report.pdf": b"%PDF old"})
    done = limited(f"""
        from agentdigest.archive import write_artifacts
        from agentdigest.errors import ArchiveError
        try:
            write_artifacts({str(tmp_path)!r}, "weekly", "2026-W47",
                            {{"report.json": b'{{"new": 2}}', "report.pdf": b"x" * 50000}})
        except ArchiveError as exc:
            print("ArchiveError:", exc)
        """, limit=20000)
    assert done.returncode == 0 and "ArchiveError:" in done.stdout and "cannot write" in done.stdout, done
    assert (folder / "report.json").read_bytes() == b'{"old": 1}'
    assert (folder / "report.pdf").read_bytes() == b"%PDF old"
    assert sorted(p.name for p in folder.iterdir()) == ["report.json", "report.pdf"]  # no temp file left


def test_an_archive_rename_that_fails_leaves_no_temp_file(tmp_path):
    """A rename that fails (here: a folder where report.pdf should be) must not leave its temp file behind: the
    temp file was taken off the clean-up list before its rename was tried."""
    from agentdigest.archive import report_dir, write_artifacts
    from agentdigest.errors import ArchiveError

    folder = report_dir(tmp_path, "weekly", "2026-W47")
    (folder / "report.pdf").mkdir(parents=True)
    (folder / "report.pdf" / "x").write_bytes(b"x")
    with pytest.raises(ArchiveError):
        write_artifacts(tmp_path, "weekly", "2026-W47",
                        {"report.json": b"{}", "report.pdf": b"%PDF", "report.txt": b"t"})
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_a_send_log_line_cut_short_is_an_error_and_does_not_swallow_the_next_one(tmp_path):
    """Found in a storage audit: the send log's append ignored a short write (a disk filling up), so the send
    was half a line, said nowhere, and the next send appended to that half line was lost with it: a reset
    ledger then learnt neither. The append is whole or not at all, and fails as ArchiveError."""
    from agentdigest.archive import mark_delivered, recorded_sends, write_artifacts

    folder = write_artifacts(tmp_path, "weekly", "2026-W47", {"message.eml": b"Subject: x\n\nbody\n"})
    first = {"channel": "box", "recipient": "", "sent_at": "2026-11-30T09:00:00+00:00", "provider_id": "a.eml"}
    mark_delivered(tmp_path, "weekly", "2026-W47", [first])
    before = (folder / ".delivered").read_bytes()
    done = limited(f"""
        from agentdigest.archive import mark_delivered
        from agentdigest.errors import ArchiveError
        try:
            mark_delivered({str(tmp_path)!r}, "weekly", "2026-W47",
                           [{{"channel": "mail", "recipient": "cto@example.com", "provider_id": "<b@x>"}}])
        except ArchiveError as exc:
            print("ArchiveError:", exc)
        """, limit=len(before) + 20)
    assert done.returncode == 0 and "ArchiveError:" in done.stdout, done
    assert (folder / ".delivered").read_bytes() == before  # no half line left
    third = {"channel": "hook", "recipient": "", "sent_at": "2026-11-30T09:01:00+00:00", "provider_id": "h"}
    mark_delivered(tmp_path, "weekly", "2026-W47", [third])
    assert recorded_sends(tmp_path, "weekly", "2026-W47") == [first, third]


def test_a_send_log_that_ends_in_half_a_line_keeps_the_next_send(tmp_path):
    """A half line left by an older agentdigest (or a crash mid-append) must not swallow the next record."""
    from agentdigest.archive import mark_delivered, recorded_sends, write_artifacts

    folder = write_artifacts(tmp_path, "weekly", "2026-W47", {"message.eml": b"Subject: x\n\nbody\n"})
    (folder / ".delivered").write_bytes(b'{"channel": "box", "recip')
    send = {"channel": "hook", "recipient": "", "sent_at": "2026-11-30T09:01:00+00:00", "provider_id": "h"}
    mark_delivered(tmp_path, "weekly", "2026-W47", [send])
    assert recorded_sends(tmp_path, "weekly", "2026-W47") == [send]
    assert json.loads((folder / ".delivered").read_text().splitlines()[-1]) == send


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> Path:
    from agentdigest.demo import setup

    folder = tmp_path_factory.mktemp("events")
    setup(folder, conversations=3000)
    return folder / "events.duckdb"


TWO_OUTBOXES = """
[source]
url = "duckdb://events.duckdb"
table = "agent_events"
[channels.box]
type = "outbox"
path = "outbox"
[channels.box2]
type = "outbox"
path = "outbox2"
[[reports]]
id = "weekly-exec"
timezone = "Europe/Berlin"
channels = ["box", "box2"]
"""

@pytest.fixture
def disk(tmp_path):
    """A real 200k tmpfs, as the audit found it full (root only: skipped with the reason otherwise)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def home_with(tmp_path: Path, events: Path, config: str = TWO_OUTBOXES) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "events.duckdb").write_bytes(events.read_bytes())
    (home / "agentdigest.toml").write_text(config)
    return home


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "agentdigest.cli", *args, "--config", "agentdigest.toml"],
                          cwd=home, capture_output=True, text=True, timeout=300, env=env)


def run_states(home: Path) -> list[str]:
    with sqlite3.connect(home / "agentdigest.db") as db:
        return [state for (state,) in db.execute("SELECT state FROM runs ORDER BY id")]


def test_a_period_whose_archived_message_is_gone_is_not_sent_half_made(tmp_path, events):
    """Found in a storage audit: a period one outbox had (the other's folder was a file), its message.eml then
    lost, went to the second outbox as its Slack payload alone, "sent", exit 0. Nothing is sent; one line."""
    home = home_with(tmp_path, events)
    (home / "outbox2").write_text("a file where the outbox folder should be")
    assert cli(home, "run", "--period", "2026-W47").returncode == 1
    (home / "outbox2").unlink()
    (home / "reports" / "weekly-exec" / "2026-W47" / "message.eml").unlink()
    again = cli(home, "run", "--period", "2026-W47")
    assert again.returncode == 1, again.stdout + again.stderr
    (line,) = again.stderr.strip().splitlines()
    assert "has no message.eml" in line and "'box2'" in line and "--force" in line and "Traceback" not in line
    assert not (home / "outbox2").exists() or not list((home / "outbox2").rglob("*.*"))
    assert run_states(home)[-1] == "failed"


def test_an_archive_removed_between_its_write_and_the_delivery_is_an_archive_error(tmp_path, events, monkeypatch):
    """Found in a storage audit: a period's folder removed right after the run wrote it (a clean-up job, a
    disk remounted) failed "nothing archived ... (run ... first)" as bad input, exit 2. It is the archive's
    failure (exit 1), recorded as a failed run, and nothing is sent."""
    import shutil

    from agentdigest import runner
    from agentdigest.config import load_config
    from agentdigest.errors import ArchiveError

    home = home_with(tmp_path, events)
    config = load_config(home / "agentdigest.toml")
    write = runner.write_artifacts

    def write_then_lose(archive, *args):
        folder = write(archive, *args)
        shutil.rmtree(folder)
        return folder

    monkeypatch.setattr(runner, "write_artifacts", write_then_lose)
    with pytest.raises(ArchiveError, match="has no message.eml.*next run archives the period again"):
        runner.run_reports(config, list(config.reports), period_key="2026-W47")
    assert not (home / "outbox").exists() and not (home / "outbox2").exists()
    assert run_states(home) == ["failed"]


@pytest.mark.parametrize("full", ["outbox", "ledger", "archive"])
def test_check_fails_a_folder_without_space(tmp_path, events, monkeypatch, full):
    """Found in a storage audit: on a full disk (a 200k tmpfs) check called the outbox "writable" and the SQLite
    ledger "ok"; every run then failed to write or record. (Here "full" is below a raised threshold: statvfs
    cannot be faked without a real full file system; test_check_on_a_real_full_tmpfs mounts one as root.)"""
    from agentdigest import folders
    from agentdigest.commands_delivery import check_archive, check_channels, check_ledger
    from agentdigest.config import load_config
    from rich.console import Console

    home = home_with(tmp_path, events)
    assert cli(home, "run", "--period", "2026-W47").returncode == 0
    config = load_config(home / "agentdigest.toml")
    check = {"outbox": check_channels, "ledger": check_ledger, "archive": check_archive}[full]
    console = Console(record=True, width=300)
    assert check(config, console=console) == 0
    monkeypatch.setattr(folders, "MIN_FREE", 1 << 62)
    assert check(config, console=console) == 1
    text = console.export_text()
    assert "FAILED" in text and "KiB free on the device" in text, text


def test_check_on_a_real_full_tmpfs(tmp_path, events, disk):
    """The same on a real 200k tmpfs holding the outbox and the ledger, as the audit found it."""
    home = home_with(tmp_path, events)
    (home / "agentdigest.toml").write_text(TWO_OUTBOXES.replace('"outbox2"', f'"{disk}/outbox"')
                                           + f'[ledger]\nurl = "sqlite:///{disk}/ledger.db"\n')
    done = cli(home, "check")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "channel box2: FAILED" in done.stdout and "ledger" in done.stdout, done.stdout
    assert "channel box: ok" in done.stdout and "KiB free on the device" in done.stdout
    assert f"ledger sqlite:///{disk}/ledger.db: FAILED" in done.stdout, done.stdout


def test_an_outbox_delivery_cut_short_leaves_no_file_and_its_retry_one_copy(tmp_path):
    """Found in a storage audit: a disk that filled up after an outbox delivery's .eml was written, at its Slack
    payload, left the lone .eml in the outbox while the delivery was recorded failed; the retry wrote a second one
    (two copies of one period). A delivery is now all its files or none."""
    from agentdigest import config
    from agentdigest.channels import make_channel
    from agentdigest.channels.base import Delivery

    box = tmp_path / "outbox"
    artifacts = {"message.eml": b"Subject: weekly\n\nbody\n", "slack.json": json.dumps({"text": "x" * 50000}).encode()}
    done = limited(f"""
        from agentdigest import config
        from agentdigest.channels import make_channel
        from agentdigest.channels.base import Delivery
        from agentdigest.errors import DeliveryError
        channel = make_channel("box", config.OutboxChannel(type="outbox", path={str(box)!r}))
        try:
            channel.deliver(Delivery("weekly", "2026-W47", {artifacts!r}, ("",)))
        except DeliveryError as exc:
            print("DeliveryError:", exc)
        """, limit=20000)
    assert done.returncode == 0 and "DeliveryError:" in done.stdout and "cannot write" in done.stdout, done
    assert [p.name for p in box.rglob("*") if p.is_file()] == []  # no lone .eml, no temp file
    channel = make_channel("box", config.OutboxChannel(type="outbox", path=box))
    channel.deliver(Delivery("weekly", "2026-W47", artifacts, ("",)))
    files = sorted(p.name for p in (box / "weekly" / "2026-W47").iterdir())
    assert len(files) == 2 and files[0].endswith(".eml") and files[1].endswith(".slack.json"), files
    assert (box / "weekly" / "2026-W47" / files[0]).read_bytes() == artifacts["message.eml"]


THREE_REPORTS = """
[source]
url = "duckdb://events.duckdb"
table = "agent_events"
[channels.box]
type = "outbox"
path = "outbox"
""" + "".join(f"""
[[reports]]
id = "{name}"
timezone = "Europe/Berlin"
channels = ["box"]
""" for name in ("first", "second", "third"))


@pytest.mark.parametrize("named, bad_template", [(True, False), (False, False), (True, True)],
                         ids=["named", "all", "worst-code"])
def test_a_run_of_several_reports_goes_on_past_one_whose_archive_fails(tmp_path, events, named, bad_template):
    """Found in a storage audit: in a manual `run` of several reports (or of all), one report's ArchiveError (its
    archive disk full) ended the run: the reports before it were sent but their lines never printed, the ones after
    it never run. As `run --due` does, each report is tried and said; the exit code is the worst (highest) one:
    with the third report's template failing (exit 2) too, 2."""
    config = THREE_REPORTS
    if bad_template:  # a name the report does not have: exit 2 (README, Custom templates), at render time
        config = config.replace('id = "third"', 'id = "third"\naudience = "tpl"')
    home = home_with(tmp_path, events, config)
    (home / "tpl").mkdir()
    (home / "tpl" / "report.html.j2").write_text("{{ no_such_name }}")
    (home / "reports" / "second").mkdir(parents=True)
    (home / "reports" / "second" / "2026-W47").write_text("a file where the period's folder should be")
    done = cli(home, "run", *(["first", "second", "third"] if named else []), "--period", "2026-W47")
    assert done.returncode == (2 if bad_template else 1), done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 + bad_template and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("agentdigest: error: second 2026-W47: archive ") and "cannot write" in lines[0]
    if bad_template:
        assert lines[1].startswith("agentdigest: error: third 2026-W47: ") and "no_such_name" in lines[1], lines
    assert done.stdout.count("box: sent") == 2 - bad_template, done.stdout
    for report in ("first", "third")[:2 - bad_template]:
        assert len(list((home / "outbox" / report / "2026-W47").glob("*.eml"))) == 1
    assert not (home / "outbox" / "second").exists()
    assert run_states(home) == ["done", "failed", "failed" if bad_template else "done"]


@pytest.mark.parametrize("full", [True, False], ids=["full", "space-left"])
def test_a_sqlite_ledger_on_a_full_disk_says_the_disk_is_full(tmp_path, full):
    """Found in a storage audit: on a full disk (a 200k tmpfs) every run failed "cannot open the ledger ...: disk
    I/O error" (SQLite cannot size its -shm file), which did not say why. Said when the ledger's folder has no
    space (statvfs; here "full" is below a raised threshold, as in test_check_fails_a_folder_without_space);
    an I/O error with space left is not blamed on it."""
    from agentdigest.ledger import Ledger

    Ledger(f"sqlite:///{tmp_path}/ledger.db").close()
    done = limited(f"""
        from agentdigest import folders
        from agentdigest.ledger import Ledger
        from agentdigest.errors import AgentDigestError
        folders.MIN_FREE = {1 << 62 if full else 0}
        try:
            Ledger("sqlite:///{tmp_path}/ledger.db")
        except AgentDigestError as exc:
            print("LedgerError:", exc)
        """, limit=10)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done
    (line,) = done.stdout.strip().splitlines()
    assert line.startswith(f"LedgerError: cannot open the ledger sqlite:///{tmp_path}/ledger.db: disk I/O error"), line
    assert (f"{tmp_path}: " in line and "free on the device" in line) == full, line


def test_a_run_with_its_ledger_on_a_real_full_tmpfs_says_the_disk_is_full(tmp_path, events, disk):
    """The same through `run`, on a real 200k tmpfs filled up after the ledger was made, as the audit found it."""
    from agentdigest.ledger import Ledger

    home = home_with(tmp_path, events)
    (home / "agentdigest.toml").write_text(TWO_OUTBOXES + f'[ledger]\nurl = "sqlite:///{disk}/ledger.db"\n')
    Ledger(f"sqlite:///{disk}/ledger.db").close()
    with open(disk / "filler", "wb", buffering=0) as fh, contextlib.suppress(OSError):
        while fh.write(b"\0" * 4096):  # until ENOSPC
            pass
    done = cli(home, "run", "--period", "2026-W47")
    assert done.returncode == 1, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert f"cannot open the ledger sqlite:///{disk}/ledger.db: " in line, line
    assert f"({disk}: no space left on the device)" in line, line


def test_the_readme_says_check_looks_for_space_in_the_outbox_and_ledger_folders():
    """check fails an outbox or SQLite ledger folder without space (test_check_fails_a_folder_without_space); the
    README's `check` paragraph said so of the archive only."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    paragraph = " ".join(readme.split("\n`check` validates", 1)[1].split("\n\n", 1)[0].split())
    assert "outbox folder and a SQLite ledger's folder are checked for space" in paragraph, paragraph
