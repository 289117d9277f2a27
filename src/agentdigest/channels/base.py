"""What every channel is: the :class:`Channel` protocol, its input and its structured receipt.

A channel is handed archived artifacts (bytes) and delivers them; it never renders or computes.
Its unit of exactly-once delivery is a *target*: one email address, a Slack message, the Slack
PDF upload, ``""`` for single-shot channels. The ledger keeps one row per target, so a retry or
a rerun redoes only the targets that did not go out.

Retries live here too (:func:`with_retries`), so every channel backs off the same way:
exponentially from ``retry_initial``, honouring Retry-After, within ``retry_budget`` seconds.
A channel's HTTP requests (a POST, its answer classified) are :mod:`.http`'s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_before_delay

from ..errors import DeliveryError
from ..interrupts import pausing
from ..masking import mask_text, secret_values

T = TypeVar("T")


@dataclass(frozen=True)
class Delivery:
    """One request to a channel: the archived artifacts of (report, period) and the targets to reach."""

    report_id: str
    period_key: str
    artifacts: Mapping[str, bytes]
    targets: tuple[str, ...]
    test: bool = False  # a test send: marked as such, never the period's delivery
    resend: bool = False  # a forced resend: a new email Message-ID, so mail clients show it


@dataclass(frozen=True)
class TargetResult:
    """The outcome for one target ('' when the channel has a single target)."""

    target: str
    state: Literal["sent", "failed"]
    provider_id: str | None = None
    error: str | None = None
    retryable: bool = False
    #: attempts made for this target, when it differs from the receipt's (an email recipient refused
    #: for good on the first attempt while another one was retried)
    attempts: int | None = None
    #: the receiver may have it (a post or an email's final "." unanswered): not retried in the run
    #: (``retryable`` is false), but not refused either: the next run (the scheduler's next pass) sends it again
    may_have_arrived: bool = False
    #: where it went as the service names it, when the config may spell it otherwise (Slack's channel id of a
    #: ``#name``): the channel's ``destination(place)`` then, so both spellings are one place (renames.py)
    place: str | None = None

    @property
    def retry_later(self) -> bool:
        """Whether a later run may deliver it: a transient failure, or a send that may have arrived (which no
        refusal is: the ledger and the scheduler count it transient)."""
        return self.retryable or self.may_have_arrived


@dataclass(frozen=True)
class Receipt:
    """What a channel reports back: per-target outcomes plus how hard it had to try."""

    results: tuple[TargetResult, ...]
    attempts: int = 1
    waits: tuple[float, ...] = ()  # the pauses between attempts, in seconds (Retry-After shows here)
    detail: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.state == "sent" for r in self.results)


@dataclass(frozen=True)
class CheckResult:
    """The result of ``agentdigest check`` for one channel; ``ok`` is None when it cannot be checked."""

    channel: str
    ok: bool | None
    message: str


class ChannelFailure(DeliveryError):
    """A delivery that failed for all its targets, with the number of attempts it took, and the id the
    provider may know it by when it may have arrived (an email's Message-ID)."""

    def __init__(self, message: str, *, retryable: bool, attempts: int = 1, waits: Sequence[float] = ()):
        super().__init__(message, retryable=retryable)
        self.attempts = attempts
        self.waits = tuple(waits)
        self.provider_id: str | None = None


@runtime_checkable
class Channel(Protocol):
    """The seam every channel (built-in or a user's) plugs into; see :func:`agentdigest.channels.register`."""

    type: ClassVar[str]
    settings_model: ClassVar[type[BaseModel]]
    name: str

    def __init__(self, name: str, settings: Any) -> None: ...

    def targets(self, artifacts: Mapping[str, bytes]) -> list[str]:
        """The ledger keys this channel delivers to for these artifacts ('' for a single target)."""

    def deliver(self, delivery: Delivery) -> Receipt:
        """Deliver to ``delivery.targets``; raise DeliveryError when none could be reached."""

    def check(self) -> CheckResult:
        """Reach the service and log in without sending anything."""

    def describe(self) -> str:
        """Where this channel delivers, with every secret masked."""

    # Optional: ``needs() -> tuple[str, ...]``, the archived files a delivery reads, ``destination(place=None) ->
    # str | None``, where it delivers in a canonical form (BaseChannel has both; see renames.py), and
    # ``resolve_place() -> str | None``, where its configured destination is as the service names it (Slack).


class BaseChannel:
    """Shared plumbing: masking with this channel's secrets, retries, and artifact lookup."""

    type: ClassVar[str] = ""
    settings_model: ClassVar[type[BaseModel]]
    #: who answers this channel's requests, as its errors name it ("Slack asked to retry after 3600 s")
    provider: ClassVar[str] = "the server"
    #: called before each retry (not the first attempt) with the targets it is for (None: all of them):
    #: delivery counts it in the ledger as it happens, so a sender killed between retries still leaves
    #: the true number of attempts behind
    on_retry: Callable[[Sequence[str] | None], None] | None = None
    #: called before each wait between attempts with the error that failed and the seconds it will wait:
    #: delivery says in its log that the delivery is being retried (the channel itself logs nothing)
    on_wait: Callable[[DeliveryError, float], None] | None = None
    #: set when the process is stopping (the scheduler's stop, given by delivery): a wait between retries then
    #: ends at once, raising Interrupted, as Ctrl-C ends one in `run`
    stop: threading.Event | None = None

    def __init__(self, name: str, settings: Any) -> None:
        if not isinstance(settings, self.settings_model):
            raise TypeError(f"channel {name!r} expects {self.settings_model.__name__} settings")
        self.name = name
        self.settings = settings
        self._secrets = secret_values(settings)

    def mask(self, text: object) -> str:
        """``text`` with this channel's secrets and every URL password masked."""
        return mask_text(str(text), self._secrets)

    def targets(self, artifacts: Mapping[str, bytes]) -> list[str]:
        return [""]

    def needs(self) -> tuple[str, ...]:
        """The archived files a delivery reads: a run rendering only some formats must include them."""
        return ()

    def destination(self, place: str | None = None) -> str | None:
        """Where this channel delivers, in a canonical form, or None when it cannot say (the default). The
        same destination under another channel name is the same place: a period it got is not sent again
        there (renames.py). It may hold secrets (a webhook URL): only a fingerprint of it is ever kept.
        ``place``: where a send went as the service named it (``TargetResult.place``), if it said."""
        return None

    def check(self) -> CheckResult:
        return CheckResult(self.name, None, f"{self.describe()}: cannot be checked without sending")

    def describe(self) -> str:
        return self.type

    def artifact(self, delivery: Delivery, filename: str) -> bytes:
        """An archived artifact, or a permanent error naming what is missing."""
        try:
            return delivery.artifacts[filename]
        except KeyError:
            raise DeliveryError(
                f"{filename} is not in the archive of {delivery.report_id}/{delivery.period_key} "
                f"(was it left out by --format?)"
            ) from None

    def retry(self, action: Callable[[], T], *, sleep: Callable[[float], None] | None = None,
              pending: Callable[[], Sequence[str]] | None = None) -> "Tried[T]":
        """Run ``action`` under this channel's retry settings (see :func:`with_retries`); ``pending``
        names the targets a retry is still for, when some were settled by an earlier attempt. The waits between
        attempts are ``sleep``'s, by default a sleep that :attr:`stop` ends."""
        hook = self.on_retry
        counted = None if hook is None else (lambda: hook(list(pending()) if pending else None))
        return with_retries(self.settings, action, sleep=sleep or pausing(self.stop), on_retry=counted,
                            on_wait=self.on_wait, who=self.provider)


@dataclass(frozen=True)
class Tried(Generic[T]):
    value: T
    attempts: int
    waits: tuple[float, ...]


def with_retries(settings: Any, action: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep,
                 on_retry: Callable[[], None] | None = None,
                 on_wait: Callable[[DeliveryError, float], None] | None = None,
                 who: str = "the server") -> Tried[T]:
    """Call ``action`` until it succeeds or fails permanently, or the retry budget is spent.

    Only a :class:`DeliveryError` with ``retryable=True`` is retried. The wait is the error's
    ``retry_after`` when the server gave one, else ``retry_initial`` doubling up to ``retry_max_wait``.
    A wait that would end past ``retry_budget``, or a ``retry_after`` longer than ``retry_max_wait``, is not
    started: the last error is raised instead, as a :class:`ChannelFailure` carrying the attempt count (a
    transient one: the next run tries again). ``on_wait`` is told of each wait that is started, with the error
    before it. ``who``: the server, as the error names it.
    """
    attempts = 0
    waits: list[float] = []

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return max(float(retry_after), 0.0)
        return min(settings.retry_initial * 2 ** (state.attempt_number - 1), settings.retry_max_wait)

    def before_sleep(state: RetryCallState) -> None:
        waits.append(state.upcoming_sleep)
        if on_wait is not None and state.outcome is not None:  # retry= below lets only a DeliveryError here
            on_wait(state.outcome.exception(), state.upcoming_sleep)  # type: ignore[arg-type]

    def asks_too_long(exc: BaseException | None) -> bool:
        # Found in an operator audit: Slack's 429 with Retry-After: 3600 made a run (and the scheduler's pass)
        # sleep an hour; retry_max_wait is the longest a run waits, whoever asks
        return (getattr(exc, "retry_after", None) or 0) > settings.retry_max_wait

    def stop(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return asks_too_long(exc) or stop_before_delay(settings.retry_budget)(state)

    retrying = Retrying(
        stop=stop,
        wait=wait,
        retry=retry_if_exception(lambda e: isinstance(e, DeliveryError) and e.retryable),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                attempts += 1
                if attempts > 1 and on_retry is not None:
                    on_retry()
                value = action()
    except DeliveryError as exc:
        message = str(exc)
        if exc.retryable and asks_too_long(exc):
            message += (f" ({'not retried' if attempts == 1 else f'gave up after {attempts} attempts'}: {who} asked "
                        f"to retry after {exc.retry_after:g} s, longer than retry_max_wait = "
                        f"{settings.retry_max_wait:g} s; the next run retries)")
        elif exc.retryable and attempts > 1:
            message += f" (gave up after {attempts} attempts within the {settings.retry_budget:g}s retry budget)"
        elif exc.retryable and (exc.retry_after or 0) > settings.retry_budget:
            message += (f" (not retried: it asked to wait {exc.retry_after:g}s, longer than the "
                        f"{settings.retry_budget:g}s retry budget)")
        elif exc.retryable:
            message += f" (not retried: the {settings.retry_budget:g}s retry budget was used up)"
        raise ChannelFailure(message, retryable=exc.retryable, attempts=attempts, waits=waits) from exc
    return Tried(value, attempts, tuple(waits))


def unanswered(channel: BaseChannel, where: str, exc: BaseException) -> DeliveryError:
    """The request went out but no answer came (a read timeout, a dropped connection): the receiver may
    have it. Not retried in this run, for a channel without idempotency keys (a Slack post): each retry
    may post it again. The ledger records a failure, so the next run sends it (at least once)."""
    return may_have_arrived(channel, f"no answer from {where} after the report was sent ({exc or type(exc).__name__}); "
                                     "it may have arrived, so this run does not send it again")


def arrived_maybe(exc: BaseException) -> bool:
    """Whether ``exc`` (or the error a :class:`ChannelFailure` wraps) is a send that may have arrived."""
    return bool(getattr(exc, "may_have_arrived", False) or getattr(exc.__cause__, "may_have_arrived", False))


def may_have_arrived(channel: BaseChannel, message: str) -> DeliveryError:
    """A failure after which the receiver may have the report (masked): not retried in this run; the
    ledger records it failed, so the next run sends it again (at least once)."""
    error = DeliveryError(channel.mask(message))
    error.may_have_arrived = True  # type: ignore[attr-defined]
    return error
