"""Breaker state machine with an injected clock, retry policy and recorders — no sleeping."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from connectors.config import BreakerPolicy, RetryPolicy
from connectors.errors import CircuitOpenError, NotFoundUpstream, PermanentUpstreamError, TransientUpstreamError
from connectors.resilience import CallRecord, CircuitBreaker, LoggingCallRecorder, ResiliencePolicy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, threshold: int = 3, reset: float = 10.0) -> tuple[CircuitBreaker, list[str]]:
    changes: list[str] = []
    b = CircuitBreaker(
        "sys",
        BreakerPolicy(failure_threshold=threshold, reset_timeout_s=reset),
        clock=clock,
        on_change=lambda _s, state: changes.append(state),
    )
    return b, changes


def test_closed_to_open_after_n_consecutive_failures_then_half_open_then_closed() -> None:
    clock = Clock()
    b, changes = breaker(clock)
    for _ in range(2):
        b.before_call()
        b.on_failure()
    assert b.state == "closed"
    b.before_call()
    b.on_failure()
    assert b.state == "open"
    with pytest.raises(CircuitOpenError) as caught:
        b.before_call()
    assert caught.value.retry_after == pytest.approx(10.0)
    clock.now += 9.9
    assert b.state == "open"
    clock.now += 0.1
    assert b.state == "half_open"
    b.before_call()  # the single trial
    with pytest.raises(CircuitOpenError):
        b.before_call()  # a second caller while the trial is in flight
    b.on_success()
    assert b.state == "closed" and changes == ["open", "half_open", "closed"]


def test_failed_trial_reopens_for_another_reset_period() -> None:
    clock = Clock()
    b, _ = breaker(clock, threshold=1)
    b.before_call()
    b.on_failure()
    clock.now += 10
    b.before_call()
    b.on_failure()
    assert b.state == "open"
    clock.now += 5
    assert b.state == "open"
    clock.now += 5
    assert b.state == "half_open"


def test_success_resets_the_consecutive_count() -> None:
    b, _ = breaker(Clock(), threshold=2)
    for _ in range(5):
        b.before_call()
        b.on_failure()
        b.before_call()
        b.on_success()
    assert b.state == "closed"


def policy(clock: Clock, max_attempts: int = 3, threshold: int = 100) -> tuple[ResiliencePolicy, list[float]]:
    sleeps: list[float] = []
    p = ResiliencePolicy(
        system="sys",
        retry=RetryPolicy(max_attempts=max_attempts, initial_backoff_s=1, jitter_s=0),
        breaker=CircuitBreaker("sys", BreakerPolicy(failure_threshold=threshold, reset_timeout_s=5), clock=clock),
        concurrency=2,
        sleep=sleeps.append,
    )
    return p, sleeps


def test_transient_retried_up_to_max_attempts() -> None:
    p, sleeps = policy(Clock(), max_attempts=4)
    calls = []

    def failing() -> None:
        calls.append(1)
        raise TransientUpstreamError("sys", "http_503")

    with pytest.raises(TransientUpstreamError) as caught:
        p.run(failing)
    assert len(calls) == 4 and caught.value.attempts == 4 and sleeps == [1, 2, 4]


@pytest.mark.parametrize("error", [PermanentUpstreamError("sys", "bad"), NotFoundUpstream("sys", "http_404")])
def test_permanent_never_retried_and_does_not_trip_the_breaker(error: Exception) -> None:
    clock = Clock()
    p, sleeps = policy(clock, threshold=1)
    calls = []

    def failing() -> None:
        calls.append(1)
        raise error

    for _ in range(3):
        with pytest.raises(type(error)):
            p.run(failing)
    assert len(calls) == 3 and sleeps == [] and p.breaker.state == "closed"


def test_breaker_opening_mid_retry_stops_the_retries() -> None:
    p, _ = policy(Clock(), max_attempts=5, threshold=2)
    calls = []

    def failing() -> None:
        calls.append(1)
        raise TransientUpstreamError("sys", "timeout")

    with pytest.raises(CircuitOpenError):
        p.run(failing)
    assert len(calls) == 2


def test_success_after_retries_reports_attempts() -> None:
    p, _ = policy(Clock())
    outcomes = iter([TransientUpstreamError("sys", "x"), "ok"])

    def flaky() -> str:
        value = next(outcomes)
        if isinstance(value, Exception):
            raise value
        return value

    assert p.run(flaky) == ("ok", 2)


def test_logging_recorder_writes_hashes_but_not_identifiers(caplog: pytest.LogCaptureFixture) -> None:
    call = CallRecord(
        "nts",
        "registration",
        "org-9",
        ("1234567890",),
        datetime(2026, 1, 1, tzinfo=UTC),
        12.5,
        "ok",
        1,
        "a" * 64,
        "b" * 64,
        200,
    )
    with caplog.at_level(logging.INFO, logger="g2bhub.connectors"):
        LoggingCallRecorder().record(call)
    [record] = caplog.records
    assert record.__dict__["request_sha256"] == "a" * 64 and record.__dict__["requested_by"] == "org-9"
    assert "1234567890" not in record.getMessage() and record.__dict__["identifier_count"] == 1
