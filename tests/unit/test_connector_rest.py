"""Generic REST connector against a scripted loopback server: classification, retries, auth, batching,
size caps. Backoff sleeps are recorded, never slept."""

from __future__ import annotations

import base64
import json
from typing import Any

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
from connectors.resilience import sha256_hex
from tests.support.connectors import InMemoryCallRecorder, Reply, ScriptedServer, SeenRequest


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def build(
    system: dict[str, Any],
    *,
    recorder: InMemoryCallRecorder | None = None,
    sleeps: Sleeps | None = None,
    clock: Any = None,
) -> ConnectorRegistry:
    entry = {"kind": "rest", "retry": {"max_attempts": 3, "initial_backoff_s": 0.1, "jitter_s": 0.0}, **system}
    config = ConnectorsConfig(systems={"demo": entry})
    kwargs: dict[str, Any] = {
        "recorder": recorder or InMemoryCallRecorder(),
        "sleep": sleeps if sleeps is not None else Sleeps(),
    }
    if clock is not None:
        kwargs["clock"] = clock
    return build_connectors(config, **kwargs)


def fetch(registry: ConnectorRegistry, identifier: str = "ABC123") -> Any:
    return registry["demo"].fetch(identifier, purpose="test", requested_by="org-1")


@pytest.mark.parametrize(
    ("status", "error", "attempts"),
    [
        (404, NotFoundUpstream, 1),
        (400, PermanentUpstreamError, 1),
        (401, UpstreamAuthError, 1),
        (403, UpstreamAuthError, 1),
        (422, PermanentUpstreamError, 1),
        (429, TransientUpstreamError, 3),
        (500, TransientUpstreamError, 3),
        (502, TransientUpstreamError, 3),
        (503, TransientUpstreamError, 3),
        (504, TransientUpstreamError, 3),
    ],
)
def test_status_classification_and_retry_only_for_transient(status: int, error: type, attempts: int) -> None:
    with ScriptedServer([Reply(status, b'{"detail": "x"}')]) as server:
        registry = build({"endpoint": server.url, "path": "/things/{identifier}"})
        with pytest.raises(error) as caught:
            fetch(registry)
        assert server.count == attempts
        assert caught.value.attempts == attempts
        assert caught.value.code == f"http_{status}"
        assert caught.value.system == "demo"
        registry.close()


def test_transient_then_success_returns_result_with_attempts_and_hashes() -> None:
    body = b'{"ok": true}'
    recorder = InMemoryCallRecorder()
    with ScriptedServer([Reply(503), Reply(503), Reply(200, body)]) as server:
        registry = build(
            {"endpoint": server.url, "path": "/things/{identifier}", "identifier_pattern": "^.+$"}, recorder=recorder
        )
        result = fetch(registry, "A/B C")
        assert server.requests[-1].path == "/things/A%2FB%20C"  # one quoted path segment
    assert result.raw == body and result.attempts == 3 and result.http_status == 200
    assert result.response_sha256 == sha256_hex(body)
    [call] = recorder.calls
    assert (call.outcome, call.attempts, call.purpose, call.requested_by) == ("ok", 3, "test", "org-1")
    assert call.response_sha256 == sha256_hex(body) and call.request_sha256 == result.request_sha256


def test_identifier_outside_pattern_never_reaches_the_upstream() -> None:
    with ScriptedServer() as server:
        registry = build({"endpoint": server.url, "identifier_pattern": "^[0-9]{10}$"})
        with pytest.raises(PermanentUpstreamError) as caught:
            fetch(registry, "../../admin")
        assert caught.value.code == "invalid_identifier" and server.count == 0


def test_retry_after_is_honoured_and_capped() -> None:
    sleeps = Sleeps()
    with ScriptedServer(
        [Reply(429, headers={"Retry-After": "7"}), Reply(503, headers={"Retry-After": "999"}), Reply(200, b"{}")]
    ) as server:
        registry = build(
            {
                "endpoint": server.url,
                "retry": {"max_attempts": 3, "retry_after_cap_s": 20, "initial_backoff_s": 0.1, "jitter_s": 0},
            },
            sleeps=sleeps,
        )
        fetch(registry)
    assert sleeps == [7.0, 20.0]


def test_backoff_grows_exponentially_without_retry_after() -> None:
    sleeps = Sleeps()
    with ScriptedServer([Reply(500)]) as server:
        registry = build(
            {
                "endpoint": server.url,
                "retry": {"max_attempts": 4, "initial_backoff_s": 0.5, "max_backoff_s": 1.5, "jitter_s": 0},
            },
            sleeps=sleeps,
        )
        with pytest.raises(TransientUpstreamError):
            fetch(registry)
    assert sleeps == [0.5, 1.0, 1.5]


def test_connection_refused_and_timeouts_are_transient() -> None:
    with ScriptedServer() as server:
        dead_url = server.url
    registry = build({"endpoint": dead_url})
    with pytest.raises(TransientUpstreamError) as caught:
        fetch(registry)
    assert caught.value.code == "connection_error" and caught.value.attempts == 3


def test_breaker_opens_after_consecutive_transient_failures_and_answers_at_once() -> None:
    now = [0.0]
    with ScriptedServer([Reply(503)]) as server:
        registry = build(
            {
                "endpoint": server.url,
                "retry": {"max_attempts": 1},
                "breaker": {"failure_threshold": 3, "reset_timeout_s": 30},
            },
            clock=lambda: now[0],
        )
        for _ in range(3):
            with pytest.raises(TransientUpstreamError):
                fetch(registry)
        assert registry.breaker_states() == {"demo": "open"} and server.count == 3
        with pytest.raises(CircuitOpenError):
            fetch(registry)
        assert server.count == 3  # the open breaker did not call the upstream
        server.replies = [Reply(200, b"{}")]
        now[0] = 31.0
        assert registry.breaker_states() == {"demo": "half_open"}
        fetch(registry)
        assert registry.breaker_states() == {"demo": "closed"} and server.count == 4


def test_auth_styles_put_the_key_where_the_contract_wants_it_and_never_in_the_hash() -> None:
    with ScriptedServer([Reply(200, b"{}")]) as server:
        query = build({"endpoint": server.url, "key": "s3cret", "auth": {"kind": "query", "name": "serviceKey"}})
        header = build(
            {"endpoint": server.url, "key": "s3cret", "auth": {"kind": "header", "name": "x-http-authorization"}}
        )
        basic = build({"endpoint": server.url, "key": "s3cret", "auth": {"kind": "basic"}})
        other_key = build({"endpoint": server.url, "key": "other", "auth": {"kind": "query", "name": "serviceKey"}})
        r1, r2 = fetch(query), fetch(other_key)
        fetch(header)
        fetch(basic)
        seen = server.requests
    assert seen[0].query["serviceKey"] == ["s3cret"]
    assert seen[2].headers["x-http-authorization"] == "s3cret"
    assert seen[3].headers["Authorization"] == "Basic " + base64.b64encode(b"s3cret:").decode()
    assert r1.request_sha256 == r2.request_sha256  # the key is not part of the request fingerprint
    assert "s3cret" not in repr(query.config)


def test_nts_style_gateway_error_rules() -> None:
    rules = [
        {
            "when": "type(code) == 'number' && code < `0`",
            "code": "join('', ['gateway', to_string(code)])",
            "detail": "msg",
        },
        {"when": "type(status_code) == 'string' && status_code != 'OK'", "code": "status_code"},
    ]
    cases = [
        (Reply(401, json.dumps({"code": -4, "msg": "bad key"}).encode()), UpstreamAuthError, "gateway-4", 1),
        (Reply(503, json.dumps({"code": -999, "msg": "UNKNOWN"}).encode()), TransientUpstreamError, "gateway-999", 3),
        (Reply(413, b'{"status_code": "TOO_LARGE_REQUEST"}'), PermanentUpstreamError, "TOO_LARGE_REQUEST", 1),
        (Reply(500, b'{"status_code": "INTERNAL_ERROR"}'), TransientUpstreamError, "INTERNAL_ERROR", 3),
        (Reply(200, b'{"status_code": "HTTP_ERROR"}'), PermanentUpstreamError, "HTTP_ERROR", 1),
    ]
    for reply, error, code, attempts in cases:
        with ScriptedServer([reply]) as server:
            registry = build({"endpoint": server.url, "error_rules": rules})
            with pytest.raises(error) as caught:
                fetch(registry)
            assert (caught.value.code, server.count) == (code, attempts)


def test_a_status_error_says_the_status_in_words() -> None:
    with ScriptedServer([Reply(404, b"")]) as server, pytest.raises(NotFoundUpstream) as caught:
        fetch(build({"endpoint": server.url}))
    assert (caught.value.code, caught.value.detail) == ("http_404", "Not Found")


def test_explicit_rule_outcome_overrides_the_status() -> None:
    rules = [{"when": "code == 'insufficient_credit'", "code": "code", "outcome": "transient"}]
    with ScriptedServer([Reply(402, b'{"code": "insufficient_credit"}')]) as server:
        registry = build({"endpoint": server.url, "error_rules": rules, "retry": {"max_attempts": 2}})
        with pytest.raises(TransientUpstreamError):
            fetch(registry)
        assert server.count == 2


def test_oversize_body_is_refused_before_parsing() -> None:
    big = b'{"x": "' + b"a" * 5000 + b'"}'
    with ScriptedServer([Reply(200, big)]) as server:
        registry = build({"endpoint": server.url, "max_response_bytes": 1024})
        with pytest.raises(PermanentUpstreamError) as caught:
            fetch(registry)
        assert caught.value.code == "response_too_large" and server.count == 1


@pytest.mark.parametrize("body", [b'{"data": [', b"<html>oops</html>", b"[" * 100_000 + b"]" * 100_000])
def test_malformed_json_is_transient(body: bytes) -> None:
    with ScriptedServer([Reply(200, body)]) as server:
        registry = build({"endpoint": server.url, "max_response_bytes": 400_000, "retry": {"max_attempts": 2}})
        with pytest.raises(TransientUpstreamError) as caught:
            fetch(registry)
        assert caught.value.code == "malformed_response" and server.count == 2


def _nts_like(seen: SeenRequest) -> Reply:
    numbers = json.loads(seen.body)["b_no"]
    data = [{"b_no": n, "b_stt_cd": "01"} for n in numbers if not n.endswith("9")]
    return Reply(200, json.dumps({"request_cnt": len(numbers), "status_code": "OK", "data": data}).encode())


def test_batching_splits_requests_and_answers_per_identifier() -> None:
    recorder = InMemoryCallRecorder()
    numbers = [f"{i:010d}" for i in range(250)]
    with ScriptedServer(responder=_nts_like) as server:
        registry = build(
            {
                "endpoint": server.url,
                "method": "POST",
                "path": "/status",
                "batch": {"max_size": 100, "body_key": "b_no", "records_key": "data", "record_id": "b_no"},
            },
            recorder=recorder,
        )
        results = registry["demo"].fetch_many(numbers, purpose="refresh", requested_by="scheduler")
        sizes = [len(json.loads(r.body)["b_no"]) for r in server.requests]
    assert sizes == [100, 100, 50]
    assert len(recorder.calls) == 3 and recorder.calls[0].identifiers == tuple(numbers[:100])
    found = results["0000000001"]
    assert not isinstance(found, Exception)
    share = json.loads(found.raw)
    assert share["data"] == [{"b_no": "0000000001", "b_stt_cd": "01"}] and found.batch_size == 100
    assert found.raw_sha256 != found.response_sha256  # the share, not the whole batch answer
    assert isinstance(results["0000000009"], NotFoundUpstream)


def test_single_fetch_on_a_batch_system_sends_a_batch_of_one() -> None:
    with ScriptedServer(responder=_nts_like) as server:
        registry = build(
            {
                "endpoint": server.url,
                "method": "POST",
                "path": "/status",
                "batch": {"max_size": 100, "body_key": "b_no", "records_key": "data", "record_id": "b_no"},
            }
        )
        result = fetch(registry, "1234567890")
        assert json.loads(server.requests[0].body) == {"b_no": ["1234567890"]}
        assert server.requests[0].headers["Content-Type"] == "application/json"
    assert json.loads(result.raw)["data"][0]["b_no"] == "1234567890"


def test_fetch_many_without_batching_fetches_each_and_keeps_errors_per_identifier() -> None:
    def responder(seen: SeenRequest) -> Reply:
        return Reply(404) if seen.path.endswith("missing") else Reply(200, b'{"ok": 1}')

    with ScriptedServer(responder=responder) as server:
        registry = build({"endpoint": server.url, "path": "/x/{identifier}"})
        results = registry["demo"].fetch_many(["a1", "missing", "b2", "a1"], purpose="p", requested_by="o")
        assert server.count == 3
    assert isinstance(results["missing"], NotFoundUpstream)
    assert not isinstance(results["a1"], Exception) and results["a1"].raw == b'{"ok": 1}'


def test_xml_rest_responses_use_the_hardened_parser() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><r>&b;</r>'
    with ScriptedServer([Reply(200, bomb, content_type="application/xml")]) as server:
        registry = build({"endpoint": server.url, "response_format": "xml", "accept": "application/xml"})
        with pytest.raises(PermanentUpstreamError) as caught:
            fetch(registry)
        assert caught.value.code == "unsafe_response" and server.count == 1
