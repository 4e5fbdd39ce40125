"""Per-system resilience: retries for transient failures only, a concurrency limit, a circuit breaker,
and one record per logical call.

Why each piece: a slow registry must not hold every worker (semaphore); a registry that is down must
not be hammered nor make every registration wait for timeouts (breaker answers at once); a busy one
deserves a few polite retries with backoff, jitter and its own ``Retry-After`` (tenacity); and every
call is evidence of what the hub asked whom and why (recorder).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
)

from connectors.config import BreakerPolicy, RetryPolicy
from connectors.errors import CircuitOpenError, TransientUpstreamError, UpstreamAuthError, UpstreamError
from hub.spine.retry import Backoff, Jitter

__all__ = [
    "AuthGuard",
    "BreakerState",
    "CallRecord",
    "CallRecorder",
    "CircuitBreaker",
    "KeyedBreakers",
    "LoggingCallRecorder",
    "ResiliencePolicy",
    "sha256_hex",
]

BreakerState = Literal["closed", "open", "half_open"]
CallOutcome = Literal["ok", "not_found", "permanent", "transient", "circuit_open", "misconfigured"]
T = TypeVar("T")
logger = logging.getLogger("g2bhub.connectors")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class CallRecord:
    """What the hub asked an upstream, on whose behalf, and what came back (hashes, not bodies)."""

    system: str
    purpose: str
    requested_by: str
    identifiers: tuple[str, ...]
    started_at: datetime
    duration_ms: float
    outcome: CallOutcome
    attempts: int
    request_sha256: str | None
    response_sha256: str | None
    http_status: int | None = None
    error_code: str | None = None


class CallRecorder(Protocol):
    def record(self, call: CallRecord) -> None: ...


class LoggingCallRecorder:
    """One structured log line per call; identifiers are not logged (they may be personal data)."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self._log = log or logger

    def record(self, call: CallRecord) -> None:
        self._log.info(
            "upstream call %s %s",
            call.system,
            call.outcome,
            extra={
                "system": call.system,
                "purpose": call.purpose,
                "requested_by": call.requested_by,
                "identifier_count": len(call.identifiers),
                "started_at": call.started_at.isoformat(),
                "duration_ms": round(call.duration_ms, 1),
                "outcome": call.outcome,
                "attempts": call.attempts,
                "request_sha256": call.request_sha256,
                "response_sha256": call.response_sha256,
                "http_status": call.http_status,
                "error_code": call.error_code,
            },
        )


class CircuitBreaker:
    """closed → open after N consecutive transient failures → half_open after the reset timeout →
    closed on one successful trial (or open again on a failed one).

    Only transient failures count: a permanent error or a not-found is a healthy upstream answering.
    ``clock`` is injectable so tests move time instead of sleeping.
    """

    def __init__(
        self,
        system: str,
        policy: BreakerPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, BreakerState], None] | None = None,
        key: str | None = None,
    ) -> None:
        self.system = system
        self.key = key
        self._policy = policy
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            self._maybe_half_open()
            return self._state

    def _set(self, state: BreakerState) -> None:
        if state != self._state:
            self._state = state
            if self.key is None:
                logger.warning("circuit breaker %s is now %s", self.system, state)
            else:
                logger.warning("circuit breaker %s %s=%s is now %s", self.system, self._policy.key_by, self.key, state)
            if self._on_change is not None:
                self._on_change(self.system, state)

    def _maybe_half_open(self) -> None:
        if self._state == "open" and self._clock() - self._opened_at >= self._policy.reset_timeout_s:
            self._set("half_open")
            self._trial_in_flight = False

    def before_call(self) -> None:
        """Raise :class:`CircuitOpenError` unless a call may go out now."""
        with self._lock:
            self._maybe_half_open()
            if self._state == "open":
                remaining = self._policy.reset_timeout_s - (self._clock() - self._opened_at)
                raise CircuitOpenError(self.system, "circuit_open", f"breaker open{self._for()}",
                                       retry_after=max(remaining, 0))
            if self._state == "half_open":
                if self._trial_in_flight:
                    raise CircuitOpenError(self.system, "circuit_open", f"half-open trial in flight{self._for()}")
                self._trial_in_flight = True

    def _for(self) -> str:
        return "" if self.key is None else f" for {self._policy.key_by}={self.key}"

    def abandon_trial(self) -> None:
        """The call said nothing about this breaker (another breaker refused it, or the failure was
        someone else's): free the half-open trial without changing the state."""
        with self._lock:
            self._trial_in_flight = False

    def on_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._trial_in_flight = False
            self._set("closed")

    def on_failure(self) -> None:
        with self._lock:
            self._trial_in_flight = False
            self._failures += 1
            if self._state == "half_open" or self._failures >= self._policy.failure_threshold:
                self._opened_at = self._clock()
                self._set("open")


class KeyedBreakers:
    """One :class:`CircuitBreaker` per value of the policy's ``key_by`` field, made on first use.
    At most ``max_keys`` keys: beyond that the rest share one breaker (keys come from identifiers,
    which are untrusted input, so their number must not grow without bound)."""

    OTHER = "_other"

    def __init__(
        self,
        system: str,
        policy: BreakerPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, str, BreakerState], None] | None = None,
    ) -> None:
        self.system = system
        self.policy = policy
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, key: str) -> CircuitBreaker:
        with self._lock:
            if key not in self._breakers and len(self._breakers) >= self.policy.max_keys:
                key = self.OTHER
            breaker = self._breakers.get(key)
            if breaker is None:
                breaker = CircuitBreaker(self.system, self.policy, clock=self._clock, key=key,
                                         on_change=self._notifier(key))
                self._breakers[key] = breaker
            return breaker

    def _notifier(self, key: str) -> Callable[[str, BreakerState], None] | None:
        on_change = self._on_change
        if on_change is None:
            return None
        return lambda system, state: on_change(system, key, state)

    def counts_against_key(self, exc: UpstreamError) -> bool:
        """Whether a transient failure is the key's (a member state down) rather than the system's."""
        return not self.policy.key_codes or exc.code in self.policy.key_codes

    def states(self) -> dict[str, BreakerState]:
        with self._lock:
            breakers = dict(self._breakers)
        return {key: breaker.state for key, breaker in sorted(breakers.items())}


class AuthGuard:
    """Whether the upstream accepts the hub's key. The first refusal marks the system misconfigured
    (one ERROR line, one gauge); from then on one call per ``probe_s`` goes out to see whether the key
    works again, the others are answered at once with :class:`UpstreamAuthError`. The first answer
    that is not a refusal clears it (one WARNING line)."""

    def __init__(
        self,
        system: str,
        probe_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, bool], None] | None = None,
        hint: str = "",
    ) -> None:
        self.system = system
        self.probe_s = probe_s
        self.hint = hint
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._since: datetime | None = None
        self._code = ""
        self._http_status: int | None = None
        self._next_probe = 0.0
        self._probe_in_flight = False

    @property
    def misconfigured(self) -> bool:
        return self._since is not None

    def status(self) -> dict[str, object] | None:
        """What ``/readyz`` shows while the key is refused (None when it is accepted)."""
        with self._lock:
            if self._since is None:
                return None
            return {"since": self._since.isoformat(timespec="seconds"), "code": self._code,
                    "http_status": self._http_status, "next_probe_in_s": round(max(
                        self._next_probe - self._clock(), 0.0), 1)}

    def before_call(self) -> None:
        with self._lock:
            if self._since is None or self.probe_s <= 0:
                return
            wait = self._next_probe - self._clock()
            if self._probe_in_flight or wait > 0:
                raise UpstreamAuthError(
                    self.system, "misconfigured",
                    f"the hub's key was refused ({self._code}); not called, next probe in {max(wait, 0):.0f} s",
                    attempts=0,
                )
            self._probe_in_flight = True

    def on_refused(self, exc: UpstreamError) -> None:
        with self._lock:
            self._probe_in_flight = False
            self._next_probe = self._clock() + self.probe_s
            if self._since is not None:
                return
            self._since, self._code, self._http_status = utcnow(), exc.code, exc.http_status
        logger.error(
            "upstream %s refused the hub's key (%s%s): the system is misconfigured; credential fetches stay "
            "pending and resume once a call succeeds%s",
            self.system, exc.code, f", HTTP {exc.http_status}" if exc.http_status else "",
            f" ({self.hint})" if self.hint else "",
            extra={"system": self.system, "error_code": exc.code, "http_status": exc.http_status},
        )
        if self._on_change is not None:
            self._on_change(self.system, True)

    def on_answer(self) -> None:
        with self._lock:
            self._probe_in_flight = False
            if self._since is None:
                return
            self._since = None
        logger.warning("upstream %s accepts the hub's key again: credential fetches resume", self.system,
                       extra={"system": self.system})
        if self._on_change is not None:
            self._on_change(self.system, False)

    def abandon_probe(self) -> None:
        with self._lock:
            self._probe_in_flight = False


class _WaitRetryAfter:
    """Exponential backoff with jitter, unless the upstream said when to come back (capped)."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._cap = policy.retry_after_cap_s
        self._backoff = Backoff(policy.initial_backoff_s, policy.max_backoff_s, jitter=Jitter(extra_s=policy.jitter_s))

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, UpstreamError) and exc.retry_after is not None:
            return float(min(max(exc.retry_after, 0.0), self._cap))
        return self._backoff.delay(state.attempt_number)


@dataclass
class ResiliencePolicy:
    """Wraps one logical upstream call: semaphore per attempt, breaker per attempt, tenacity around.

    With ``keyed`` breakers a call names its key (``run(fn, key="DE")``): the key's breaker and, with
    ``key_concurrency``, the key's own semaphore guard it too; the system's breaker still guards every
    call and counts the failures that are not the key's."""

    system: str
    retry: RetryPolicy
    breaker: CircuitBreaker
    concurrency: int
    concurrency_wait_s: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    keyed: KeyedBreakers | None = None
    key_concurrency: int | None = None
    auth: AuthGuard | None = None
    _semaphore: threading.BoundedSemaphore = field(init=False, repr=False)
    _key_semaphores: dict[str, threading.BoundedSemaphore] = field(init=False, repr=False)
    _key_lock: threading.Lock = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._semaphore = threading.BoundedSemaphore(self.concurrency)
        self._key_semaphores = {}
        self._key_lock = threading.Lock()
        if self.auth is None:
            self.auth = AuthGuard(self.system, 0.0)

    @property
    def guard(self) -> AuthGuard:
        assert self.auth is not None
        return self.auth

    def _key_semaphore(self, key: str) -> threading.BoundedSemaphore | None:
        if self.key_concurrency is None:
            return None
        with self._key_lock:
            semaphore = self._key_semaphores.get(key)
            if semaphore is None:
                if len(self._key_semaphores) >= (self.keyed.policy.max_keys if self.keyed else 1024):
                    key = KeyedBreakers.OTHER
                semaphore = self._key_semaphores.setdefault(key, threading.BoundedSemaphore(self.key_concurrency))
            return semaphore

    def _attempt(self, fn: Callable[[], T], key: str | None = None) -> T:
        key_breaker = self.keyed.get(key) if self.keyed is not None and key is not None else None
        guard = self.guard
        if key_breaker is not None:
            key_breaker.before_call()
        try:
            self.breaker.before_call()
            try:
                guard.before_call()
            except UpstreamError:
                self.breaker.abandon_trial()
                raise
        except UpstreamError:
            if key_breaker is not None:
                key_breaker.abandon_trial()
            raise
        slots = [self._semaphore]
        key_semaphore = self._key_semaphore(key) if key is not None else None
        if key_semaphore is not None:
            slots.append(key_semaphore)
        taken: list[threading.BoundedSemaphore] = []
        for slot in slots:
            if not slot.acquire(timeout=self.concurrency_wait_s):
                # Nothing was asked of the upstream: no breaker learns anything from this.
                for held in reversed(taken):
                    held.release()
                guard.abandon_probe()
                self.breaker.abandon_trial()
                if key_breaker is not None:
                    key_breaker.abandon_trial()
                raise TransientUpstreamError(self.system, "concurrency_limit", "no free upstream slot")
            taken.append(slot)
        try:
            result = fn()
        except UpstreamAuthError as exc:
            guard.on_refused(exc)
            self.breaker.on_success()  # the upstream answered: it is up
            if key_breaker is not None:
                key_breaker.abandon_trial()
            raise
        except TransientUpstreamError as exc:
            guard.abandon_probe()
            if key_breaker is not None and self.keyed is not None and self.keyed.counts_against_key(exc):
                key_breaker.on_failure()
                self.breaker.on_success()  # the system answered that one of its parts is down
            else:
                self.breaker.on_failure()
                if key_breaker is not None:
                    key_breaker.abandon_trial()
            raise
        except UpstreamError as exc:
            if exc.http_status is not None:
                guard.on_answer()
            else:
                guard.abandon_probe()
            self.breaker.on_success()
            if key_breaker is not None:
                key_breaker.on_success()
            raise
        except Exception:
            # A bug in the connector must not leave a half-open trial hanging forever.
            guard.abandon_probe()
            self.breaker.on_failure()
            if key_breaker is not None:
                key_breaker.abandon_trial()
            raise
        finally:
            for slot in reversed(taken):
                slot.release()
        guard.on_answer()
        self.breaker.on_success()
        if key_breaker is not None:
            key_breaker.on_success()
        return result

    def run(self, fn: Callable[[], T], key: str | None = None) -> tuple[T, int]:
        """Call ``fn`` with retries; return its result and the number of attempts made.

        Errors raised carry ``attempts`` too, so the recorder and callers can see retries happened.
        """
        retrying = Retrying(
            stop=stop_after_attempt(self.retry.max_attempts) | stop_after_delay(self.retry.max_elapsed_s),
            wait=_WaitRetryAfter(self.retry),
            retry=retry_if_exception_type(TransientUpstreamError),
            sleep=self.sleep,
            reraise=True,
        )
        attempts = 0

        def counted() -> T:
            nonlocal attempts
            attempts += 1
            return self._attempt(fn, key)

        try:
            result = retrying(counted)
        except UpstreamError as exc:
            exc.attempts = attempts
            raise
        return result, attempts


def utcnow() -> datetime:
    return datetime.now(UTC)
