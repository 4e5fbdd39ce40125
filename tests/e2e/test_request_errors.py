"""A client's mistakes answered so that one round fixes them: a body not sent as JSON is a 415, malformed
JSON names its line and column, every bad field of a request comes back in one answer (without pydantic's
``Value error,`` prefix), and a 405 lists the methods the path does support."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from tests.support.api import API, bearer
from tests.support.notices import notice_body

PROBLEM = "application/problem+json"
BRN = "1157750731"


@pytest.fixture
def hub(sqlite_url: str) -> Iterator[Hub]:
    the_hub = bootstrap(Settings(database={"url": sqlite_url}, broker={"kind": "inprocess"}), migrate=True)
    yield the_hub
    the_hub.close()


@pytest.fixture
def client(hub: Hub) -> Iterator[TestClient]:
    with TestClient(create_app(hub=hub)) as test_client:
        yield test_client


def key_of(hub: Hub, kind: OrgKind) -> dict[str, str]:
    _, issued = hub.bus.handle(CreateOrganisation(name=f"A {kind.value}", kind=kind))
    return bearer(str(issued.plaintext))


def problem_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["request_id"] == response.headers["x-request-id"]
    return body


def messages(body: dict[str, Any]) -> dict[str, str]:
    return {error["pointer"]: error["message"] for error in body["errors"]}


def test_a_body_not_sent_as_json_is_an_unsupported_media_type(hub: Hub, client: TestClient) -> None:
    headers = key_of(hub, OrgKind.OPERATOR)
    as_json = json.dumps({"name": "Typed", "kind": "agency"}).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        sent = {**headers, **({"Content-Type": content_type} if content_type else {})}
        body = problem_of(client.post(f"{API}/orgs", content=as_json, headers=sent), 415)
        assert body["type"].endswith("/unsupported-media-type")
        assert "application/json" in body["detail"] and "errors" not in body
    suffixed = client.post(
        f"{API}/orgs", content=as_json, headers={**headers, "Content-Type": "application/merge+json"}
    )
    assert suffixed.status_code == 201, suffixed.text  # any +json type is JSON
    documented = client.get("/openapi.json").json()["paths"][f"{API}/orgs"]["post"]["responses"]
    assert "415" in documented


def test_malformed_json_names_line_and_column(hub: Hub, client: TestClient) -> None:
    headers = {**key_of(hub, OrgKind.OPERATOR), "Content-Type": "application/json"}
    broken = b'{\n  "name": "Broken",\n  "kind": agency\n}'
    body = problem_of(client.post(f"{API}/orgs", content=broken, headers=headers), 422)
    assert body["type"].endswith("/validation-error")
    assert "line 3, column 11" in body["detail"] and "Expecting value" in body["detail"]
    assert [(e["pointer"], e["field"]) for e in body["errors"]] == [("#/body", "body")]
    assert "line 3, column 11" in body["errors"][0]["message"]


def test_every_bad_field_of_a_notice_in_one_answer(hub: Hub, client: TestClient) -> None:
    headers = key_of(hub, OrgKind.INSTITUTION)
    # a bad title, a CPV code of the wrong shape, a value without currency and dates out of order
    bad = notice_body(
        title="",
        currency=None,
        classifications=[{"scheme": "CPV", "code": "4523"}],
        dates={"published": "2026-03-02T09:00:00+09:00", "opening": "2026-03-01T09:00:00+09:00"},
    )
    body = problem_of(client.post(f"{API}/notices", json=bad, headers=headers), 422)
    found = messages(body)
    assert set(found) == {"#/body/title", "#/body/classifications/0/code", "#/body/currency", "#/body/dates/opening"}, (
        found
    )
    assert found["#/body/currency"] == "required when a value is given"
    assert "optionally" in found["#/body/classifications/0/code"]
    assert not any(message.startswith("Value error") for message in found.values())
    bad_currency = notice_body(title="", currency="won")
    found = messages(problem_of(client.post(f"{API}/notices", json=bad_currency, headers=headers), 422))
    assert set(found) == {"#/body/title", "#/body/currency"}, found
    assert found["#/body/currency"].startswith("expected an ISO 4217")
    without_check_digit = notice_body(classifications=[{"scheme": "CPV", "code": "45233140"}])
    assert client.post(f"{API}/notices", json=without_check_digit, headers=headers).status_code == 201


def test_every_bad_identifier_of_a_registration_in_one_answer(hub: Hub, client: TestClient) -> None:
    headers = key_of(hub, OrgKind.SUPPLIER)
    bad = {
        "identifiers": {"kr_brn": "1157750732", "lei": "not-a-lei", "gb_company_number": "123"},
        "legal_name": "x" * 301,
    }
    found = messages(problem_of(client.post(f"{API}/suppliers", json=bad, headers=headers), 422))
    assert set(found) == {
        "#/body/identifiers/kr_brn",
        "#/body/identifiers/lei",
        "#/body/identifiers/gb_company_number",
        "#/body/legal_name",
        "#/body/consent",
    }, found
    assert found["#/body/identifiers/kr_brn"].startswith("not a valid Korean business registration number")
    assert found["#/body/consent"].startswith("explicit consent")
    assert not any(message.startswith("Value error") for message in found.values())


def test_method_not_allowed_lists_every_method_of_the_path(hub: Hub, client: TestClient) -> None:
    headers = key_of(hub, OrgKind.OPERATOR)
    wrong = client.put(f"{API}/orgs", json={}, headers=headers)
    body = problem_of(wrong, 405)
    assert body["type"].endswith("/method-not-allowed")
    assert wrong.headers["allow"] == "GET, POST"  # both routes of the path, not only the first matched
    assert "GET, POST" in body["detail"]
    notices = client.delete(f"{API}/notices", headers=headers)
    assert problem_of(notices, 405) and notices.headers["allow"] == "GET, POST"
    assert client.put("/healthz").headers["allow"] == "GET"
