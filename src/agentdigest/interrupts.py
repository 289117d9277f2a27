"""Stop signals as exceptions, so a command that is stopped records where it stopped.

``install()`` (the CLI calls it) makes SIGTERM and SIGHUP raise :class:`~agentdigest.errors.Interrupted`,
as Ctrl-C raises KeyboardInterrupt: a run in flight then closes its ledger rows (``interrupted``)
instead of leaving them claimed until their lease runs out. A second stop signal within a second of
the first is held back while the first travels up to that clean-up, and ``shielded()`` holds them back
while it is written, so an impatient second Ctrl-C cannot cut it short. ``schedule`` installs its own handlers: it finishes in-flight work before it stops.
Its stop (:class:`StopRequest`) ends a channel's wait between retries at once (:func:`pausing`), as Ctrl-C ends `run`'s.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .errors import Interrupted

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
_last: list[str] = []
_stopped_at = [0.0]  # when the last stop signal was raised (time.monotonic)
# A second stop signal this soon after the first is held back: the exception of the first may still be
# travelling up to the code that closes the ledger rows (shielded() covers the writes themselves).
_HOLD_SECONDS = 1.0


def install() -> None:
    """SIGTERM and SIGHUP raise Interrupted; every stop signal is remembered (see :func:`last_stop_signal`)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum: int, _frame: Any) -> None:
        now = time.monotonic()
        recent = bool(_last) and now - _stopped_at[0] < _HOLD_SECONDS
        _last.append(signal.Signals(signum).name)
        if recent:  # the first one is still unwinding to its clean-up: raising again would cut that short
            return
        _stopped_at[0] = now
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Interrupted(signal.Signals(signum).name)

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)


def last_stop_signal() -> str | None:
    """The name of the last stop signal received, for an engine that swallowed the exception it raised."""
    return _last[-1] if _last else None


@contextmanager
def shielded() -> Iterator[None]:
    """Hold stop signals back for the block (main thread only); the interruption is already under way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda signum, _frame: _last.append(signal.Signals(signum).name))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class StopRequest(threading.Event):
    """The scheduler's stop (daemon.py): set on SIGTERM or SIGINT, naming it (:meth:`request`)."""

    signal_name = "SIGTERM"

    def request(self, signal_name: str) -> None:
        self.signal_name = signal_name
        self.set()


def pausing(stop: threading.Event | None, during: str = "a delivery's wait to retry") -> Callable[[float], None]:
    """A sleep for a channel's wait between retries that ``stop`` ends at once, raising Interrupted.

    Found in an operator audit: a scheduler stopped during a retry wait (up to retry_max_wait, a minute) gave up
    waiting for it after its stop deadline and left the delivery's ledger row ``sending`` until its claim expired
    (11 minutes for Slack, 20 for email), where ``run`` stopped by Ctrl-C records it failed at once. Stopped here,
    the delivery records its claims as ``run`` does (delivery.py), and the next start or ``run --due`` sends it.
    ``during`` (the wait's name, for the log) is kept on the exception as ``during``."""
    if stop is None:
        return time.sleep

    def sleep(seconds: float) -> None:
        if stop.wait(seconds):
            stopped = Interrupted(getattr(stop, "signal_name", "SIGTERM"))
            stopped.during = during
            raise stopped

    return sleep
