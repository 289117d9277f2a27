"""Standard output and error whose reader goes away early (``agentdigest history | head -1``, a closed
terminal): what is still written goes to /dev/null, and the command finishes its work with the exit code that
work earns.

Rich's console exits (``SystemExit(1)``) on the first write into a closed pipe. Found in a CLI audit: ``run``
with a paused report said so first, so under ``| head -0`` it ran no report at all and exited 1, and ``check``
on a broken source exited 1 instead of 3.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from rich.console import Console


class ReaderSafeConsole(Console):
    """A console that, when its reader has gone, writes to /dev/null from then on instead of exiting."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        to_devnull(self.file)


def to_devnull(stream: IO[Any]) -> None:
    """Point the file descriptor under ``stream`` at /dev/null (not a file, e.g. a test's capture: left as is)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


def write_or_drop(stream: IO[str], text: str) -> None:
    """``text`` on ``stream`` (a traceback on stderr), or nowhere once the stream's reader has gone."""
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        to_devnull(stream)


@contextmanager
def readers_may_leave() -> Iterator[None]:
    """Around a command: a broken pipe on stdout or stderr ends nothing, and what is left in their buffers
    at the end goes nowhere, instead of Python's "Exception ignored ... BrokenPipeError" and exit code 120."""
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BrokenPipeError:
                to_devnull(stream)
            except (OSError, ValueError):  # closed, or not a file
                pass
