"""Who is sending: the owner names written into the ledger, and whether an owner's process is gone.

An owner is ``host:pid:tag``. A claim normally outlives its holder by its lease (minutes), which
is what protects a slow sender on another machine. But when the holder ran on *this* machine and
its process no longer exists (killed, out of memory, the laptop slept through a crash), waiting
for the lease only delays the report: :func:`has_exited` lets the next sender take over at once.

Process ids are only trusted in the machine's initial PID namespace: inside a container two
hosts may share a hostname while their process ids mean different things, so there the lease
has to run out as everywhere else. A reused pid makes the owner look alive: a wait, never a
duplicate.
"""

from __future__ import annotations

import os
import socket
import uuid

# The inode of the initial PID namespace (PROC_PID_INIT_INO in the kernel); containers have others.
_INIT_PID_NAMESPACE = 0xEFFFFFFC


def owner_id() -> str:
    """A new owner name for this process: host, process id and a random tag."""
    return f"{this_process()}{uuid.uuid4().hex[:6]}"


def this_process() -> str:
    """What every owner name of this process begins with (host and process id)."""
    return f"{socket.gethostname()}:{os.getpid()}:"


def has_exited(owner: str | None) -> bool:
    """True only when ``owner`` ran on this machine and its process is certainly gone."""
    host, _, rest = (owner or "").partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit() or not _pids_are_global():
        return False
    pid = int(pid_text)
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists but belongs to someone else
        return False
    return False


def _pids_are_global() -> bool:
    try:
        return os.stat("/proc/self/ns/pid").st_ino == _INIT_PID_NAMESPACE
    except OSError:  # not Linux, or no /proc: do not guess
        return False
