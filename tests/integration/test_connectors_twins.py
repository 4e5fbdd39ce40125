"""Every connector against its sandbox twin over real loopback HTTP: fetch + map, retries on transient
faults and none on permanent ones, timeouts, the breaker opening and closing, NTS batching, and
malformed/oversize bodies rejected. Backoff sleeps are skipped and the breaker clock is moved by hand,
so nothing here asserts on wall time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectors.config import ConnectorsConfig
from connectors.errors import (
    CircuitOpenError,
    NotFoundUpstream,
    PermanentUpstreamError,
    TransientUpstreamError,
    UpstreamAuthError,
)
from connectors.registry import ConnectorRegistry, build_connectors
from connectors.sandbox.server import SandboxServer
from hub.config import Settings
from mappings.engine import load_mapping
from tests.support.connectors import InMemoryCallRecorder

PREFIX = {
    "vies": "vies",
    "nts": "nts",
    "gleif": "gleif",
    "companies_house": "companies-house",
    "iaf": "iaf",
    "national_certs": "national-certs",
}
SCHEME = {
    "vies": "eu_vat",
    "nts": "kr_brn",
    "gleif": "lei",
    "companies_house": "gb_company_number",
    "iaf": "iaf_ce_id",
    "national_certs": "kr_brn",
}
EXPECTED_TYPE = {
    "vies": "vat_registration",
    "nts": "tax_status",
    "gleif": "lei_registration",
    "companies_house": "company_registration",
    "iaf": "management_system_certificate",
    "national_certs": "national_certificate",
}


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _clean_twins(sandbox: SandboxServer) -> Iterator[None]:
    httpx.post(f"{sandbox.base_url}/_control/reset", timeout=5)
    yield
    httpx.post(f"{sandbox.base_url}/_control/reset", timeout=5)


def twin_config(sandbox: SandboxServer, **per_system: dict[str, Any]) -> ConnectorsConfig:
    ep = sandbox.endpoints
    overrides: dict[str, dict[str, Any]] = {
        "vies": {"endpoint": ep["vies_endpoint"]},
        "nts": {"endpoint": ep["nts_base"], "key": sandbox.api_keys["nts"]},
        "gleif": {"endpoint": ep["gleif_base"]},
        "companies_house": {"endpoint": ep["companies_house_base"], "key": sandbox.api_keys["companies_house"]},
        "iaf": {"endpoint": ep["iaf_base"], "key": sandbox.api_keys["iaf"]},
        "national_certs": {"endpoint": ep["national_certs_endpoint"], "enabled": True},
    }
    for system, extra in per_system.items():
        overrides[system] = {**overrides[system], **extra}
    return ConnectorsConfig(systems=Settings(connectors=overrides).connectors)  # type: ignore[arg-type]


def connectors(
    sandbox: SandboxServer,
    clock: Clock | None = None,
    recorder: InMemoryCallRecorder | None = None,
    **per_system: dict[str, Any],
) -> ConnectorRegistry:
    return build_connectors(
        twin_config(sandbox, **per_system),
        recorder=recorder or InMemoryCallRecorder(),
        sleep=lambda _s: None,
        clock=clock or Clock(),
    )


def control(sandbox: SandboxServer, system: str, what: str, method: str = "GET", body: Any = None) -> Any:
    response = httpx.request(method, f"{sandbox.base_url}/{PREFIX[system]}/_control/{what}", json=body, timeout=5)
    response.raise_for_status()
    return response.json()


def identifier_for(sandbox: SandboxServer, system: str) -> str:
    for supplier in sandbox.dataset.suppliers:
        value = supplier.identifiers.get(SCHEME[system])
        if value and (system != "national_certs" or sandbox.dataset.national_certificates_of(value)):
            return value
    raise AssertionError(f"no supplier with {SCHEME[system]}")


@pytest.mark.parametrize("system", sorted(PREFIX))
def test_each_connector_fetches_and_maps_from_its_twin(sandbox: SandboxServer, system: str) -> None:
    recorder = InMemoryCallRecorder()
    registry = connectors(sandbox, recorder=recorder)
    identifier = identifier_for(sandbox, system)
    result = registry[system].fetch(identifier, purpose="registration", requested_by="org-42")
    mapping = load_mapping(registry.mapping_path(system) or "")
    credentials = mapping.apply(result)
    assert credentials, result.raw[:300]
    assert {c.type for c in credentials} == {EXPECTED_TYPE[system]}
    assert all(c.source == system and c.evidence.response_sha256 == result.response_sha256 for c in credentials)
    assert all(c.valid_until is not None for c in credentials if system != "national_certs")
    [call] = recorder.calls
    assert (call.system, call.outcome, call.requested_by, call.attempts) == (system, "ok", "org-42", 1)
    registry.close()


def test_statuses_follow_the_twin_dataset(sandbox: SandboxServer) -> None:
    registry = connectors(sandbox)
    numbers = [s.identifiers["kr_brn"] for s in sandbox.dataset.suppliers if "kr_brn" in s.identifiers][:60]
    results = registry["nts"].fetch_many(numbers, purpose="refresh", requested_by="scheduler")
    mapping = load_mapping(registry.mapping_path("nts") or "")
    expected = {"01": "active", "02": "suspended", "03": "closed"}
    for number in numbers:
        result = results[number]
        assert not isinstance(result, Exception)
        [credential] = mapping.apply(result)
        record = sandbox.dataset.nts(number)
        assert credential.status == (expected[record.b_stt_cd] if record else "unregistered")


def test_unknown_identifiers(sandbox: SandboxServer) -> None:
    registry = connectors(sandbox)
    unknown = {x.scheme: x.value for x in sandbox.dataset.labelled_identifiers if x.label == "unknown"}
    if "lei" in unknown:
        with pytest.raises(NotFoundUpstream):
            registry["gleif"].fetch(unknown["lei"], purpose="p", requested_by="o")
    with pytest.raises(NotFoundUpstream):
        registry["companies_house"].fetch("ZZ999999", purpose="p", requested_by="o")
    with pytest.raises(NotFoundUpstream):
        registry["national_certs"].fetch("1010101010", purpose="p", requested_by="o")


@pytest.mark.parametrize(
    ("system", "fault_code", "error", "requests"),
    [
        ("vies", "MS_UNAVAILABLE", TransientUpstreamError, 3),
        ("vies", "INVALID_INPUT", PermanentUpstreamError, 1),
        ("nts", "INTERNAL_ERROR", TransientUpstreamError, 3),
        ("nts", "TOO_LARGE_REQUEST", PermanentUpstreamError, 1),
        ("gleif", "503", TransientUpstreamError, 3),
        ("companies_house", "429", TransientUpstreamError, 3),
        ("iaf", "insufficient_credit", PermanentUpstreamError, 1),
        ("iaf", "service_unavailable", TransientUpstreamError, 3),
        ("national_certs", "SERVICE_UNAVAILABLE", TransientUpstreamError, 3),
        ("national_certs", "INVALID_INPUT", PermanentUpstreamError, 1),
    ],
)
def test_retries_on_transient_faults_and_none_on_permanent(
    sandbox: SandboxServer, system: str, fault_code: str, error: type, requests: int
) -> None:
    registry = connectors(sandbox)
    control(sandbox, system, "faults", "POST", {"error_rate": 1.0, "fault_code": fault_code, "retry_after_s": 0})
    control(sandbox, system, "stats", "DELETE")
    with pytest.raises(error) as caught:
        registry[system].fetch(identifier_for(sandbox, system), purpose="p", requested_by="o")
    assert type(caught.value) is error and caught.value.attempts == requests
    assert control(sandbox, system, "stats")["requests"] == requests


def test_transient_fault_then_recovery_succeeds_within_the_retries(sandbox: SandboxServer) -> None:
    registry = connectors(sandbox)
    control(sandbox, "gleif", "faults", "POST", {"error_rate": 0.5, "fault_code": "503", "seed": 3})
    outcomes = []
    for supplier in sandbox.dataset.suppliers:
        if "lei" in supplier.identifiers:
            outcomes.append(
                registry["gleif"].fetch(supplier.identifiers["lei"], purpose="p", requested_by="o").attempts
            )
        if len(outcomes) == 8:
            break
    assert max(outcomes) > 1  # some needed a retry, and every one came back


def test_timeouts_are_transient_after_retries(sandbox: SandboxServer) -> None:
    registry = connectors(sandbox, iaf={"timeouts": {"read_s": 0.2}, "retry": {"max_attempts": 2}})
    control(
        sandbox,
        "iaf",
        "faults",
        "POST",
        {"latency_min_ms": 1500, "latency_max_ms": 1500, "latency_distribution": "fixed"},
    )
    control(sandbox, "iaf", "stats", "DELETE")
    with pytest.raises(TransientUpstreamError) as caught:
        registry["iaf"].fetch(identifier_for(sandbox, "iaf"), purpose="p", requested_by="o")
    assert caught.value.code == "timeout" and caught.value.attempts == 2
    assert control(sandbox, "iaf", "stats")["requests"] == 2


def test_soap_timeout(sandbox: SandboxServer) -> None:
    registry = connectors(sandbox, vies={"timeouts": {"read_s": 0.2}, "retry": {"max_attempts": 1}})
    control(sandbox, "vies", "faults", "POST", {"timeout_rate": 1.0, "hang_s": 1.5})
    with pytest.raises(TransientUpstreamError) as caught:
        registry["vies"].fetch(identifier_for(sandbox, "vies"), purpose="p", requested_by="o")
    assert caught.value.code == "timeout"


def test_a_gateway_outage_reads_as_its_http_status_in_words(sandbox: SandboxServer) -> None:
    """The NTS gateway answers an outage with its catch-all {"code": -999, "msg": "UNKNOWN"}: the HTTP
    status says what happened."""
    registry = connectors(sandbox, nts={"retry": {"max_attempts": 1}})
    control(sandbox, "nts", "faults", "POST", {"outage": True, "retry_after_s": 0})
    with pytest.raises(TransientUpstreamError) as caught:
        registry["nts"].fetch(identifier_for(sandbox, "nts"), purpose="p", requested_by="o")
    assert (caught.value.code, caught.value.detail) == ("http_503", "Service Unavailable")


def test_breaker_opens_on_outage_and_closes_after_recovery(sandbox: SandboxServer) -> None:
    clock = Clock()
    recorder = InMemoryCallRecorder()
    registry = connectors(
        sandbox,
        clock=clock,
        recorder=recorder,
        companies_house={"retry": {"max_attempts": 2}, "breaker": {"failure_threshold": 4, "reset_timeout_s": 30}},
    )
    number = identifier_for(sandbox, "companies_house")
    control(sandbox, "companies_house", "faults", "POST", {"outage": True, "retry_after_s": 0})
    control(sandbox, "companies_house", "stats", "DELETE")
    for _ in range(2):
        with pytest.raises(TransientUpstreamError):
            registry["companies_house"].fetch(number, purpose="p", requested_by="o")
    assert registry.breaker_states()["companies_house"] == "open"
    assert registry.breaker_states()["gleif"] == "closed"  # per system
    with pytest.raises(CircuitOpenError):
        registry["companies_house"].fetch(number, purpose="p", requested_by="o")
    assert control(sandbox, "companies_house", "stats")["requests"] == 4  # the open breaker sent nothing
    assert recorder.calls[-1].outcome == "circuit_open"

    control(sandbox, "companies_house", "faults", "DELETE")  # recovery
    clock.now += 29
    with pytest.raises(CircuitOpenError):
        registry["companies_house"].fetch(number, purpose="p", requested_by="o")
    clock.now += 1
    assert registry.breaker_states()["companies_house"] == "half_open"
    registry["companies_house"].fetch(number, purpose="p", requested_by="o")
    assert registry.breaker_states()["companies_house"] == "closed"


def test_nts_batching_150_numbers_in_two_calls(sandbox: SandboxServer) -> None:
    recorder = InMemoryCallRecorder()
    registry = connectors(sandbox, recorder=recorder)
    numbers = [s.identifiers["kr_brn"] for s in sandbox.dataset.suppliers if "kr_brn" in s.identifiers]
    unknown = [x.value for x in sandbox.dataset.labelled_identifiers if x.scheme == "kr_brn"]
    numbers = list(dict.fromkeys(numbers + unknown))
    while len(numbers) < 150:  # top up with well-formed numbers the twin does not know
        numbers.append(f"{9_000_000_000 + len(numbers):010d}")
    numbers = numbers[:150]
    control(sandbox, "nts", "stats", "DELETE")
    results = registry["nts"].fetch_many(numbers, purpose="refresh", requested_by="scheduler")
    stats = control(sandbox, "nts", "stats")
    assert stats["requests"] == 2 and stats["items"] == 150
    assert [len(c.identifiers) for c in recorder.calls] == [100, 50]
    assert set(results) == set(numbers) and not any(isinstance(r, Exception) for r in results.values())


def test_iaf_batches_company_ids_in_the_path_and_maps_like_single_calls(sandbox: SandboxServer) -> None:
    recorder = InMemoryCallRecorder()
    registry = connectors(sandbox, recorder=recorder)
    known = list(dict.fromkeys(s.identifiers["iaf_ce_id"] for s in sandbox.dataset.suppliers
                               if "iaf_ce_id" in s.identifiers))[:5]
    ids = [*known, "unknownce0001"]
    control(sandbox, "iaf", "stats", "DELETE")
    results = registry["iaf"].fetch_many(ids, purpose="refresh", requested_by="scheduler")
    assert control(sandbox, "iaf", "stats")["requests"] == 1  # one call for six companies
    assert [len(c.identifiers) for c in recorder.calls] == [6]
    assert isinstance(results["unknownce0001"], NotFoundUpstream)  # absent from the answer: just that one
    mapping = load_mapping(str(registry.mapping_path("iaf")))
    for ce_id in known:
        batched = results[ce_id]
        assert not isinstance(batched, Exception)
        single = registry["iaf"].fetch(ce_id, purpose="p", requested_by="o")
        assert batched.raw == single.raw  # each share has the shape a single call answers with
        assert [(c.type, c.status, c.attributes) for c in mapping.apply(batched)] == [
            (c.type, c.status, c.attributes) for c in mapping.apply(single)]


def test_malformed_body_is_transient_and_oversize_is_refused(sandbox: SandboxServer) -> None:
    registry = connectors(sandbox, national_certs={"max_response_bytes": 1024})
    for system in ("nts", "gleif", "vies"):
        control(sandbox, system, "faults", "POST", {"malformed_rate": 1.0})
        with pytest.raises(TransientUpstreamError) as caught:
            registry[system].fetch(identifier_for(sandbox, system), purpose="p", requested_by="o")
        assert caught.value.code == "malformed_response", system
    holder = max(
        (s.identifiers["kr_brn"] for s in sandbox.dataset.suppliers if "kr_brn" in s.identifiers),
        key=lambda b: len(sandbox.dataset.national_certificates_of(b)),
    )
    with pytest.raises(PermanentUpstreamError) as too_big:
        registry["national_certs"].fetch(holder, purpose="p", requested_by="o")
    assert too_big.value.code == "response_too_large"


def test_wrong_key_is_the_hubs_misconfiguration_not_the_identifiers(sandbox: SandboxServer) -> None:
    registry = connectors(sandbox, nts={"key": "wrong"}, iaf={"key": "wrong"}, companies_house={"key": "wrong"})
    for system, code in (("nts", "gateway-4"), ("iaf", "unauthorized"), ("companies_house", "http_401")):
        with pytest.raises(UpstreamAuthError) as caught:
            registry[system].fetch(identifier_for(sandbox, system), purpose="p", requested_by="o")
        assert caught.value.code == code and caught.value.attempts == 1, system
        assert caught.value.outcome == "misconfigured"
    assert set(registry.misconfigured()) == {"nts", "iaf", "companies_house"}


def test_wsdl_from_the_twin_url(sandbox: SandboxServer) -> None:
    registry = connectors(sandbox, vies={"wsdl": sandbox.endpoints["vies_wsdl"]})
    result = registry["vies"].fetch(identifier_for(sandbox, "vies"), purpose="p", requested_by="o")
    assert b"checkVatResponse" in result.raw
