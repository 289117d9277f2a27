"""The scheduler's stop deadline: the process is gone within 10 s of SIGTERM, whatever is still running.

``docker stop`` and Kubernetes send SIGKILL 10 s after SIGTERM (their default grace period), and README promises
the scheduler exits 0 within 10 s. The daemon gives in-flight work ``STOP_SECONDS`` (daemon.py) and then abandons
it, but what comes after (the last heartbeat, a SQLite ledger another process keeps busy for up to its 30 s busy
timeout, the interpreter's exit) had no bound. Found in a CI run: a scheduler stopped with SIGTERM was still running
30 s later. Past the deadline the process now says where its threads were (one log line: a bug report's first
clue) and exits 0, as an abandoning stop does: claims left open expire and are taken over, and the ledger's
writes are transactions, so nothing half-written stays.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable

EXIT_SECONDS = 9.5  # after the stop signal; before the 10 s of a container's grace period


def exit_by(seconds: float, say: Callable[[str], None]) -> threading.Timer:
    """Exit 0 after ``seconds`` unless the process has ended, first calling ``say`` with :func:`threads_at`."""
    def overdue() -> None:
        try:
            say(threads_at())
        finally:
            logging.shutdown()
            os._exit(0)

    timer = threading.Timer(seconds, overdue)
    timer.name, timer.daemon = "stop-deadline", True
    timer.start()
    return timer


def threads_at() -> str:
    """Where each other thread is: its name and its innermost frame in agentdigest's code (else its innermost)."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    here = threading.get_ident()
    places = []
    for ident, frame in sys._current_frames().items():  # noqa: SLF001 - the documented way to see other threads
        if ident == here:
            continue
        stack = traceback.extract_stack(frame)
        ours = [f for f in stack if f"{os.sep}agentdigest{os.sep}" in f.filename] or stack[-1:]
        if ours:
            at = ours[-1]
            places.append(f"{names.get(ident, ident)} at {os.path.basename(at.filename)}:{at.lineno} ({at.name})")
    return "; ".join(sorted(places)) or "no other thread"
