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
from connectors.errors import CircuitOpenError, TransientUpstreamError, UpstreamError
from hub.spine.retry import Backoff, Jitter

__all__ = [
    "BreakerState",
    "CallRecord",
    "CallRecorder",
    "CircuitBreaker",
    "LoggingCallRecorder",
    "ResiliencePolicy",
    "sha256_hex",
]

BreakerState = Literal["closed", "open", "half_open"]
CallOutcome = Literal["ok", "not_found", "permanent", "transient", "circuit_open"]
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
    ) -> None:
        self.system = system
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
            logger.warning("circuit breaker %s is now %s", self.system, state)
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
                raise CircuitOpenError(self.system, "circuit_open", "breaker open", retry_after=max(remaining, 0))
            if self._state == "half_open":
                if self._trial_in_flight:
                    raise CircuitOpenError(self.system, "circuit_open", "half-open trial in flight")
                self._trial_in_flight = True

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
    """Wraps one logical upstream call: semaphore per attempt, breaker per attempt, tenacity around."""

    system: str
    retry: RetryPolicy
    breaker: CircuitBreaker
    concurrency: int
    concurrency_wait_s: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    _semaphore: threading.BoundedSemaphore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._semaphore = threading.BoundedSemaphore(self.concurrency)

    def _attempt(self, fn: Callable[[], T]) -> T:
        self.breaker.before_call()
        if not self._semaphore.acquire(timeout=self.concurrency_wait_s):
            raise TransientUpstreamError(self.system, "concurrency_limit", "no free upstream slot")
        try:
            result = fn()
        except TransientUpstreamError:
            self.breaker.on_failure()
            raise
        except UpstreamError:
            self.breaker.on_success()
            raise
        except Exception:
            # A bug in the connector must not leave a half-open trial hanging forever.
            self.breaker.on_failure()
            raise
        finally:
            self._semaphore.release()
        self.breaker.on_success()
        return result

    def run(self, fn: Callable[[], T]) -> tuple[T, int]:
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
            return self._attempt(fn)

        try:
            result = retrying(counted)
        except UpstreamError as exc:
            exc.attempts = attempts
            raise
        return result, attempts


def utcnow() -> datetime:
    return datetime.now(UTC)
