"""When the machine's storage misbehaves: a full, read-only or vanished archive, outbox or ledger folder.

Each test is one finding of a storage audit (2026-11-30). A full disk is made without privileges: a child
process whose file-size limit (RLIMIT_FSIZE) ends a write part-way, as ENOSPC does (EFBIG then; Python
ignores SIGXFSZ). The audit itself also used a 200k tmpfs, as root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

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
