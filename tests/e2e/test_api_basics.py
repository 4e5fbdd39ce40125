"""The API's plumbing through the real app: problem+json errors, request ids, probes, metrics, OpenAPI
and request-scoped JSON logs."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.bootstrap import Hub, bootstrap
from hub.config import LoggingSettings, Settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.spine.observability.logging import configure_logging
from tests.support.api import API

PROBLEM = "application/problem+json"


def make_settings(database_url: str, **api: Any) -> Settings:
    return Settings(database={"url": database_url}, broker={"kind": "inprocess"}, api=api)


@pytest.fixture
def hub(sqlite_url: str) -> Iterator[Hub]:
    the_hub = bootstrap(make_settings(sqlite_url, max_body_bytes=2048), migrate=True)
    yield the_hub
    the_hub.close()


@pytest.fixture
def operator_key(hub: Hub) -> str:
    _, issued = hub.bus.handle(CreateOrganisation(name="Hub operations", kind=OrgKind.OPERATOR))
    return str(issued.plaintext)


@pytest.fixture
def client(hub: Hub) -> Iterator[TestClient]:
    with TestClient(create_app(hub=hub)) as test_client:
        yield test_client


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def json_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def problem_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "instance", "request_id"} <= body.keys()
    assert body["type"].startswith("https://g2b-hub.dev/problems/")
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def test_validation_errors_name_each_field(client: TestClient, operator_key: str) -> None:
    headers = {"Authorization": f"Bearer {operator_key}"}
    body = problem_of(client.post(f"{API}/orgs", json={"kind": "emperor"}, headers=headers), 422)
    assert body["type"].endswith("/validation-error")
    assert body["instance"] == f"{API}/orgs"
    assert {e["pointer"] for e in body["errors"]} == {"#/body/name", "#/body/kind"}
    assert {e["field"] for e in body["errors"]} == {"name", "kind"}
    assert all(e["message"] for e in body["errors"])
    assert "emperor" not in json.dumps(body)  # the offending input is not echoed

    smuggled = client.post(
        f"{API}/orgs", json={"name": "X", "kind": "agency", "scopes": ["dlq:admin"]}, headers=headers
    )
    assert [e["pointer"] for e in problem_of(smuggled, 422)["errors"]] == ["#/body/scopes"]
    bad_query = problem_of(client.get(f"{API}/orgs", params={"kind": "emperor"}, headers=headers), 422)
    assert [e["pointer"] for e in bad_query["errors"]] == ["#/query/kind"]

    blank = problem_of(client.post(f"{API}/orgs", json={"name": "   ", "kind": "agency"}, headers=headers), 422)
    assert blank["type"].endswith("/rejected")
    assert blank["errors"] == [{"pointer": "#/body/name", "field": "name", "message": "must not be blank"}]

    broken = client.post(f"{API}/orgs", content=b'{"name": ', headers={**headers, "Content-Type": "application/json"})
    assert problem_of(broken, 422)["errors"][0]["pointer"].startswith("#/body")


def test_unknown_route_and_wrong_method(client: TestClient) -> None:
    assert problem_of(client.get(f"{API}/no-such-thing"), 404)["type"].endswith("/not-found")
    wrong = client.put("/healthz")
    assert problem_of(wrong, 405)["type"].endswith("/method-not-allowed")
    assert wrong.headers["allow"] == "GET"


def test_bodies_over_the_limit_are_refused(client: TestClient, operator_key: str) -> None:
    headers = {"Authorization": f"Bearer {operator_key}", "Content-Type": "application/json"}
    big = json.dumps({"name": "x" * 4000, "kind": "agency"}).encode()
    declared = problem_of(client.post(f"{API}/orgs", content=big, headers=headers), 413)
    assert declared["type"].endswith("/content-too-large")
    assert "2048" in declared["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streamed
        for start in range(0, len(big), 512):
            yield big[start : start + 512]

    problem_of(client.post(f"{API}/orgs", content=chunks(), headers=headers), 413)
    small = client.post(f"{API}/orgs", json={"name": "Fits", "kind": "agency"}, headers=headers)
    assert small.status_code == 201


def test_unhandled_errors_leak_nothing_and_are_logged(hub: Hub, restore_logging: None) -> None:
    app = create_app(hub=hub)
    boom = APIRouter()

    @boom.get("/boom")
    def explode() -> None:
        raise RuntimeError("password=hunter2 at db.internal:5432")

    app.include_router(boom)
    logs = io.StringIO()
    configure_logging(LoggingSettings(level="INFO", json=True), stream=logs)
    with TestClient(app) as client:
        response = client.get("/boom", headers={"X-Request-ID": "boom-1"})
    body = problem_of(response, 500)
    assert body["type"].endswith("/internal-error")
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    errors = [line for line in json_lines(logs) if line["message"] == "unhandled error"]
    assert errors and errors[0]["request_id"] == "boom-1" and "hunter2" in errors[0]["exc_info"]
    access = [line for line in json_lines(logs) if line.get("route") == "/boom"]
    assert access and access[0]["status"] == 500


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123.x:y"}).headers["x-request-id"] == "abc-123.x:y"
    generated = client.get("/healthz").headers["x-request-id"]
    assert uuid.UUID(generated)
    for insane in ["has spaces", "x" * 65, 'quote"d', "-leading-dash"]:
        replaced = client.get("/healthz", headers={"X-Request-ID": insane}).headers["x-request-id"]
        assert replaced != insane and uuid.UUID(replaced)


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"
    # database and broker, plus the upstream connectors (breakers are reported, none called yet)
    checks = {name: c["status"] for name, c in ready.json()["checks"].items()}
    assert checks == {"database": "ok", "broker": "ok", "connectors": "ok"}


def test_readiness_fails_when_the_database_is_unreachable() -> None:
    settings = make_settings("postgresql://postgres@127.0.0.1:1/unreachable?connect_timeout=2")
    hub = bootstrap(settings, migrate=False)
    try:
        with TestClient(create_app(hub=hub)) as client:
            assert client.get("/healthz").status_code == 200  # alive, just not ready
            response = client.get("/readyz")
            # requests that need the database get a retryable 503, not a 500
            api_call = client.get(f"{API}/me", headers={"Authorization": f"Bearer g2b_{'ab' * 8}_{'S' * 43}"})
    finally:
        hub.close()
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["status"] == "fail" and checks["broker"]["status"] == "ok"
    assert "127.0.0.1" not in response.text
    unavailable = problem_of(api_call, 503)
    assert unavailable["type"].endswith("/unavailable") and api_call.headers["retry-after"] == "5"
    assert "127.0.0.1" not in api_call.text


@pytest.mark.rabbitmq
def test_readiness_reports_the_rabbitmq_broker(sqlite_url: str, amqp_url: str) -> None:
    def readiness(broker_url: str) -> dict[str, Any]:
        settings = Settings(
            database={"url": sqlite_url}, broker={"kind": "rabbitmq", "url": broker_url, "connection_attempts": 1}
        )
        hub = bootstrap(settings, migrate=True)
        try:
            with TestClient(create_app(hub=hub)) as client:
                response = client.get("/readyz")
        finally:
            hub.close()
        body: dict[str, Any] = response.json()
        body["http_status"] = response.status_code
        return body

    up = readiness(amqp_url)
    assert up["http_status"] == 200 and up["checks"]["broker"]["status"] == "ok"
    down = readiness("amqp://guest:guest@127.0.0.1:1/")
    assert down["http_status"] == 503
    assert down["checks"]["broker"]["status"] == "fail" and down["checks"]["database"]["status"] == "ok"


def test_later_slices_can_register_readiness_checks(hub: Hub) -> None:
    app = create_app(hub=hub)

    def upstream(_: Hub) -> bool:
        raise ConnectionError("tax service at 10.0.0.7 refused")

    app.state.readiness.register("tax-service", upstream)
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    tax = response.json()["checks"]["tax-service"]
    assert (tax["status"], tax["detail"]) == ("fail", "ConnectionError")
    assert "10.0.0.7" not in response.text


def test_metrics_expose_latency_by_route_template_and_outbox_gauges(client: TestClient, operator_key: str) -> None:
    me = client.get(f"{API}/me", headers={"Authorization": f"Bearer {operator_key}"}).json()
    org_id = me["organisation"]["id"]
    assert client.get(f"{API}/orgs/{org_id}", headers={"Authorization": f"Bearer {operator_key}"}).status_code == 200
    client.get(f"{API}/nowhere/{org_id}")

    scraped = client.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert 'g2bhub_http_request_duration_seconds_count{method="GET",route="/api/v1/orgs/{org_id}",status="200"}' in text
    assert 'route="<unmatched>",status="404"' in text
    assert org_id not in text  # raw paths never become labels
    # the seeded operator raised two events; no worker runs, so both wait in the outbox
    assert "g2bhub_outbox_pending 2.0" in text
    assert "g2bhub_dead_letters_open 0.0" in text


def test_openapi_declares_the_security_schemes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "g2b-hub" and spec["info"]["version"]
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKeyBearer"] == {**schemes["ApiKeyBearer"], "type": "http", "scheme": "bearer"}
    assert schemes["ApiKeyHeader"]["name"] == "X-API-Key"
    create = spec["paths"][f"{API}/orgs"]["post"]
    assert {"ApiKeyBearer": ["orgs:admin"]} in create["security"]
    assert {"ApiKeyHeader": ["orgs:admin"]} in create["security"]
    assert PROBLEM in create["responses"]["422"]["content"]
    assert "security" not in spec["paths"]["/healthz"]["get"]
    assert client.get("/docs").status_code == 200


def test_every_api_operation_declares_its_scope(client: TestClient) -> None:
    """Guards every route added later too: an /api/v1 route without a required scope must be on this short list."""
    spec = client.get("/openapi.json").json()
    any_valid_key = {("get", f"{API}/me")}
    for path, operations in spec["paths"].items():
        if not path.startswith(API):
            continue
        for method, operation in operations.items():
            if operation.get("x-public"):  # open publication, declared explicitly with PUBLIC_ROUTE
                assert "security" not in operation, f"{method.upper()} {path} is public but asks for a key"
                continue
            requirements = operation.get("security")
            assert requirements, f"{method.upper()} {path} is not authenticated"
            scopes = {scope for requirement in requirements for names in requirement.values() for scope in names}
            assert scopes or (method, path) in any_valid_key, f"{method.upper()} {path} declares no scope"


def test_log_lines_carry_the_request_id_and_never_the_key(
    client: TestClient, operator_key: str, restore_logging: None
) -> None:
    logs = io.StringIO()
    configure_logging(LoggingSettings(level="INFO", json=True), stream=logs)
    revoked_secret = f"g2b_{'ab' * 8}_{'S' * 43}"
    client.get(f"{API}/me", headers={"Authorization": f"Bearer {revoked_secret}", "X-Request-ID": "req-log-1"})
    client.get(f"{API}/me", headers={"Authorization": f"Bearer {operator_key}", "X-Request-ID": "req-log-2"})

    lines = json_lines(logs)
    # written in the worker thread that ran the auth dependency, still tagged with the request's id
    rejected = [line for line in lines if line["message"] == "api key rejected"]
    assert rejected and rejected[0]["request_id"] == "req-log-1" and rejected[0]["key_id"] == "ab" * 8
    access = {line["request_id"]: line for line in lines if line["logger"] == "hub.api.access"}
    assert access["req-log-1"]["status"] == 401 and access["req-log-1"]["org_id"] is None
    assert access["req-log-2"]["status"] == 200 and access["req-log-2"]["route"] == f"{API}/me"
    assert (
        access["req-log-2"]["org_id"]
        == client.get(f"{API}/me", headers={"Authorization": f"Bearer {operator_key}"}).json()["organisation"]["id"]
    )
    assert isinstance(access["req-log-2"]["duration_ms"], float)
    assert operator_key.split("_", 2)[2] not in logs.getvalue()
    assert "S" * 43 not in logs.getvalue()


def test_app_bootstraps_and_closes_its_own_hub(sqlite_url: str, restore_logging: None) -> None:
    app = create_app(settings=make_settings(sqlite_url))
    assert isinstance(app.state.hub, Hub)
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200  # migrated: the schema is there
    # the lifespan closed the hub: its engine's pool was disposed (checked-in connections gone)
    assert app.state.hub.engine.pool.checkedin() == 0  # type: ignore[attr-defined]
