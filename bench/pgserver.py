"""A throwaway PostgreSQL server for the benchmark, started from the local server binaries.

The data folder is kept under bench/data/ so the 10M-row load happens once; the server itself
runs only for the benchmark and is stopped afterwards. As root (CI), the server runs as the
unprivileged ``postgres`` account, since initdb and postgres refuse to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

#: Server settings for the benchmark, the same for the article's query and for agentdigest.
SETTINGS = {
    "shared_buffers": "2GB",          # the 10M-row table (about 1.3 GB) fits in shared buffers
    "work_mem": "256MB",              # recommended for agentdigest (docs/scaling.md); the article's query gets it too
    "max_parallel_workers_per_gather": "2",
    "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",  # bulk load speed only
    "max_wal_size": "8GB", "listen_addresses": "127.0.0.1",
}


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("pg_ctl")
    return Path(which).parent if which else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, folder: Path):
        self.bin = pg_bin()
        if self.bin is None:
            raise RuntimeError("no PostgreSQL server binaries (pg_ctl) found; install postgresql-15")
        self.folder = folder.resolve()
        self.data = self.folder / "data"
        self.port = _free_port()
        self.user = None
        if os.geteuid() == 0:
            self.user = pwd.getpwnam("postgres")

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.user is not None:
            cmd = ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}", "--init-groups", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/")

    def start(self) -> "Server":
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            os.chown(self.folder, self.user.pw_uid, self.user.pw_gid)
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale", "C")
        options = " ".join(f"-c {k}={v}" for k, v in SETTINGS.items())
        self._run("pg_ctl", "start", "-w", "-D", str(self.data), "-l", str(self.folder / "server.log"),
                  "-o", f"-p {self.port} -k {self.folder} {options}")
        return self

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-m", "fast", "-D", str(self.data))

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def pids(self) -> list[int]:
        """The server's processes (postmaster and its children), for memory sampling."""
        head = int((self.data / "postmaster.pid").read_text().split()[0])
        out = [head]
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == head:
                out.append(int(stat.split("/")[2]))
        return out
