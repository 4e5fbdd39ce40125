"""Breakers keyed by a request field and the guard on a refused key, driven by an injected clock: one
member state's faults open that member state's breaker only, the system's own faults open the system's,
and a refused key marks the system misconfigured once, probes at an interval and clears on the first
answer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.config import BreakerPolicy, ConnectorsConfig, RetryPolicy
from connectors.errors import CircuitOpenError, PermanentUpstreamError, TransientUpstreamError, UpstreamAuthError
from connectors.resilience import AuthGuard, CircuitBreaker, KeyedBreakers, ResiliencePolicy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


POLICY = BreakerPolicy(failure_threshold=5, reset_timeout_s=30, key_by="countryCode",
                       key_codes=["MS_UNAVAILABLE"], auth_probe_s=60)


def policy(clock: Clock, changes: list[tuple[str, str, str]] | None = None,
           auth_changes: list[bool] | None = None) -> ResiliencePolicy:
    keyed = KeyedBreakers("vies", POLICY, clock=clock,
                          on_change=lambda s, k, state: changes.append((s, k, state)) if changes is not None else None)
    guard = AuthGuard("vies", POLICY.auth_probe_s, clock=clock,
                      on_change=lambda _s, bad: auth_changes.append(bad) if auth_changes is not None else None)
    return ResiliencePolicy(system="vies", retry=RetryPolicy(max_attempts=1),
                            breaker=CircuitBreaker("vies", POLICY, clock=clock), concurrency=4, keyed=keyed,
                            key_concurrency=2, auth=guard, sleep=lambda _s: None)


class Upstream:
    """Counts calls and answers with what the test scripted per key."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def answer(self, key: str, error: Exception | None = None) -> Callable[[], str]:
        def call() -> str:
            self.calls.append(key)
            if error is not None:
                raise error
            return f"ok {key}"

        return call


def ms_unavailable() -> TransientUpstreamError:
    return TransientUpstreamError("vies", "MS_UNAVAILABLE", "member state down", http_status=500)


def test_five_member_state_faults_open_that_member_states_breaker_only() -> None:
    clock, upstream, changes = Clock(), Upstream(), []
    resilience = policy(clock, changes)
    for _ in range(5):
        with pytest.raises(TransientUpstreamError):
            resilience.run(upstream.answer("DE", ms_unavailable()), key="DE")
    assert upstream.calls == ["DE"] * 5
    with pytest.raises(CircuitOpenError) as refused:
        resilience.run(upstream.answer("DE"), key="DE")
    assert upstream.calls == ["DE"] * 5 and "countryCode=DE" in refused.value.detail  # not called

    assert resilience.run(upstream.answer("FR"), key="FR") == ("ok FR", 1)  # France is asked, and answers
    assert resilience.run(upstream.answer("LU"), key="LU") == ("ok LU", 1)
    assert resilience.breaker.state == "closed"
    assert resilience.keyed is not None
    assert resilience.keyed.states() == {"DE": "open", "FR": "closed", "LU": "closed"}
    assert changes == [("vies", "DE", "open")]

    clock.now += 30  # half-open: one trial for Germany, which now answers
    assert resilience.run(upstream.answer("DE"), key="DE") == ("ok DE", 1)
    assert resilience.keyed.states()["DE"] == "closed"


def test_the_systems_own_faults_open_the_systems_breaker_for_every_key() -> None:
    clock, upstream = Clock(), Upstream()
    resilience = policy(clock)
    for country in ("DE", "FR", "LU", "AT", "BE"):  # VIES itself is down: five different keys
        with pytest.raises(TransientUpstreamError):
            resilience.run(upstream.answer(country, TransientUpstreamError("vies", "connection_error")), key=country)
    assert resilience.breaker.state == "open"
    with pytest.raises(CircuitOpenError):
        resilience.run(upstream.answer("NL"), key="NL")
    assert len(upstream.calls) == 5
    assert resilience.keyed is not None and set(resilience.keyed.states().values()) == {"closed"}


def test_keys_beyond_the_cap_share_one_breaker() -> None:
    small = BreakerPolicy(failure_threshold=1, key_by="k", max_keys=2)
    keyed = KeyedBreakers("sys", small)
    assert keyed.get("a") is not keyed.get("b")
    assert keyed.get("c") is keyed.get("d") is keyed.get(KeyedBreakers.OTHER)
    assert set(keyed.states()) == {"a", "b", KeyedBreakers.OTHER}


def refused() -> UpstreamAuthError:
    return UpstreamAuthError("vies", "http_401", "", http_status=401)


def test_a_refused_key_marks_the_system_once_probes_at_an_interval_and_clears(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, upstream, changes = Clock(), Upstream(), []
    resilience = policy(clock, auth_changes=changes)
    caplog.set_level(logging.WARNING, logger="g2bhub.connectors")
    with pytest.raises(UpstreamAuthError):
        resilience.run(upstream.answer("DE", refused()), key="DE")
    for key in ("FR", "LU", "DE"):  # answered at once, without asking the upstream
        with pytest.raises(UpstreamAuthError) as held:
            resilience.run(upstream.answer(key), key=key)
        assert held.value.code == "misconfigured" and "http_401" in held.value.detail
    assert upstream.calls == ["DE"]
    assert resilience.breaker.state == "closed"  # the upstream answered: it is not down
    status = resilience.guard.status()
    assert status is not None and status["code"] == "http_401" and status["http_status"] == 401

    clock.now += 60  # one probe goes out; still refused: one more interval, no second log line
    with pytest.raises(UpstreamAuthError):
        resilience.run(upstream.answer("FR", refused()), key="FR")
    assert upstream.calls == ["DE", "FR"]
    with pytest.raises(UpstreamAuthError):
        resilience.run(upstream.answer("FR"), key="FR")
    assert upstream.calls == ["DE", "FR"]

    clock.now += 60  # the key was fixed: the probe answers and everything flows again
    assert resilience.run(upstream.answer("FR"), key="FR") == ("ok FR", 1)
    assert resilience.run(upstream.answer("LU"), key="LU") == ("ok LU", 1)
    assert resilience.guard.status() is None and changes == [True, False]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "refused the hub's key" in errors[0].getMessage()
    cleared = [r for r in caplog.records if "accepts the hub's key again" in r.getMessage()]
    assert len(cleared) == 1


def test_an_answer_that_is_not_a_refusal_clears_but_a_network_failure_does_not() -> None:
    clock, upstream = Clock(), Upstream()
    resilience = policy(clock)
    with pytest.raises(UpstreamAuthError):
        resilience.run(upstream.answer("DE", refused()), key="DE")
    clock.now += 60
    with pytest.raises(TransientUpstreamError):  # no answer: says nothing about the key
        resilience.run(upstream.answer("DE", TransientUpstreamError("vies", "timeout")), key="DE")
    assert resilience.guard.misconfigured
    with pytest.raises(PermanentUpstreamError):  # INVALID_INPUT: the upstream read the request
        resilience.run(upstream.answer("DE", PermanentUpstreamError("vies", "INVALID_INPUT", http_status=500)),
                       key="DE")
    assert not resilience.guard.misconfigured


def test_probe_interval_zero_sends_every_call() -> None:
    upstream = Upstream()
    resilience = ResiliencePolicy(system="s", retry=RetryPolicy(max_attempts=1),
                                  breaker=CircuitBreaker("s", BreakerPolicy()), concurrency=1,
                                  auth=AuthGuard("s", 0.0))
    for _ in range(3):
        with pytest.raises(UpstreamAuthError):
            resilience.run(upstream.answer("-", refused()))
    assert len(upstream.calls) == 3 and resilience.guard.misconfigured


def soap_entry(**extra: Any) -> dict[str, Any]:
    return {"kind": "soap", "wsdl": "connectors/wsdl/vies_checkVatService.wsdl", "endpoint": "http://x",
            "operation": "checkVat", "identifier_pattern": "^(?P<countryCode>[A-Z]{2})(?P<vatNumber>[0-9]{2,12})$",
            **extra}


def test_breaker_keys_are_validated_against_the_identifier_pattern() -> None:
    ok = ConnectorsConfig(systems={"vies": soap_entry(breaker={"key_by": "countryCode"}, key_concurrency=2)})
    assert ok.systems["vies"].breaker.key_by == "countryCode"
    refusals = [
        (soap_entry(breaker={"key_by": "memberState"}), "not a named group"),
        (soap_entry(breaker={"key_codes": ["MS_UNAVAILABLE"]}), "key_codes needs key_by"),
        (soap_entry(key_concurrency=2), "key_concurrency needs breaker.key_by"),
        ({"kind": "rest", "endpoint": "http://x", "identifier_pattern": "^(?P<p>[0-9]{2})[0-9]{8}$",
          "breaker": {"key_by": "p"}, "batch": {"body_key": "b_no", "record_id": "b_no"}}, "batched"),
    ]
    for entry, message in refusals:
        with pytest.raises(ValidationError, match=message):
            ConnectorsConfig(systems={"sys": entry})
