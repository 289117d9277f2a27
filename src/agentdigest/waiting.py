"""Waiting for something another process holds (a period's lock), for a bounded time."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(try_once: Callable[[], bool], *, interval: float, max_wait: float | None = None,
             on_wait: Callable[[], None] | None = None, on_give_up: Callable[[], None] | None = None,
             sleep: Callable[[float], None] = time.sleep) -> bool:
    """Call ``try_once`` until it returns True (then True), or until ``max_wait`` seconds have passed
    (then ``on_give_up`` and False; None waits for good). ``on_wait`` is called once, when the first
    try fails. ``sleep`` waits between tries: the scheduler's (:func:`interrupts.pausing`) raises when it stops."""
    deadline = None if max_wait is None else time.monotonic() + max_wait
    while not try_once():
        if on_wait is not None:
            on_wait()
            on_wait = None
        if deadline is not None and time.monotonic() >= deadline:
            if on_give_up is not None:
                on_give_up()
            return False
        sleep(interval)
    return True
