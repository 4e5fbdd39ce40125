"""The front door, as a security review sees it: security headers on every response and no server
banner, no caching of answers that carry a secret, key management bounded by the manager's own scopes,
notices published by institutions only, and SSRF refusals that do not reveal internal addresses."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.api import API, bearer
from tests.support.api_session import ApiSession as Api
from tests.support.api_session import api_session, assert_problem
from tests.support.notices import notice_body


@pytest.fixture(params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    with api_session(str(request.getfixturevalue(f"{request.param}_url"))) as session:
        yield session


def assert_security_headers(response: httpx.Response, https: bool = False) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer"
    assert ("strict-transport-security" in headers) == https
    assert "server" not in headers


# ---------------------------------------------------------------- headers


def test_every_route_family_carries_the_security_headers(api: Api) -> None:
    agency = api.create_org("agency")
    responses = {
        "api": api.client.get(f"{API}/me", headers=bearer(agency.key)),
        "public api": api.client.get(f"{API}/notices"),
        "feed": api.client.get(f"{API}/feeds/notices.atom"),
        "healthz": api.client.get("/healthz"),
        "openapi": api.client.get("/openapi.json"),
        "problem 401": api.client.get(f"{API}/me"),
        "problem 404": api.client.get("/no/such/route"),
        "problem 422": api.client.post(f"{API}/subscriptions", json={"channel": {"type": "carrier pigeon"}},
                                       headers=bearer(agency.key)),
        "no content 204": api.client.delete(f"{API}/orgs/{agency.org_id}/keys/{api.issue_key(agency).key_id}",
                                            headers=bearer(agency.key)),
    }
    for name, response in responses.items():
        assert response.status_code < 500, (name, response.text)
        assert_security_headers(response)
    assert responses["problem 404"].headers["content-type"] == "application/problem+json"
    assert "default-src 'none'" in responses["api"].headers["content-security-policy"]


def test_the_docs_page_still_renders_under_its_own_policy(api: Api) -> None:
    docs = api.client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert_security_headers(docs)
    policy = docs.headers["content-security-policy"]
    # Swagger UI's scripts and styles come from this origin and no script runs inline.
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert "<script>" not in docs.text and "https://" not in docs.text
    assert directives["connect-src"] == "'self'"  # "Try it out" and /openapi.json
    assert directives["frame-ancestors"] == "'none'"
    assert "script-src" not in api.client.get("/healthz").headers["content-security-policy"]


def test_hsts_only_when_the_request_came_over_tls(api: Api) -> None:
    with TestClient(api.client.app, base_url="https://hub.example") as tls:
        response = tls.get("/healthz")
        assert_security_headers(response, https=True)
        assert response.headers["strict-transport-security"].startswith("max-age=")
    assert "strict-transport-security" not in api.client.get("/healthz").headers
    # A client-sent X-Forwarded-Proto is not trusted by the app (uvicorn's proxy_headers decides the scheme).
    spoofed = api.client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in spoofed.headers


def test_served_by_uvicorn_without_a_server_banner() -> None:
    import uvicorn

    from hub.cli.runtime import uvicorn_options

    options = uvicorn_options()
    assert options["server_header"] is False
    config = uvicorn.Config("hub.api.app:create_app", **options)
    assert config.server_header is False


# ---------------------------------------------------------------- secrets not cached


def test_answers_carrying_a_signing_secret_are_not_stored(api: Api) -> None:
    agency = api.create_org("agency")
    api.hub.subscriptions = dataclasses.replace(api.hub.subscriptions, resolve=lambda host, port: ["93.184.215.14"])
    created = api.client.post(f"{API}/subscriptions", json={"channel": {"type": "webhook",
                                                                        "url": "https://hooks.example/in"}},
                              headers=bearer(agency.key))
    assert created.status_code == 201, created.text
    assert created.json()["secret"]
    assert created.headers["cache-control"] == "no-store"
    sub_id = created.json()["subscription"]["id"]
    rotated = api.client.post(f"{API}/subscriptions/{sub_id}/secret/rotate", headers=bearer(agency.key))
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    assert_security_headers(rotated)


# ---------------------------------------------------------------- SSRF message


@pytest.mark.parametrize("address", ["10.20.30.40", "fd00:1234::42", "2002:a9fe:a9fe::", "fec0::1"])
def test_the_ssrf_refusal_does_not_reveal_the_resolved_address(api: Api, address: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    agency = api.create_org("agency")
    api.hub.subscriptions = dataclasses.replace(api.hub.subscriptions, resolve=lambda host, port: [address])
    refused = api.client.post(f"{API}/subscriptions",
                              json={"channel": {"type": "webhook", "url": "https://db.corp.internal/hook"}},
                              headers=bearer(agency.key))
    assert refused.status_code == 422, refused.text
    assert "resolves to a private or reserved address" in refused.text
    assert address not in refused.text
    assert address not in caplog.text


# ---------------------------------------------------------------- key management


@pytest.mark.parametrize("kind", ["institution", "agency", "supplier", "operator"])
def test_a_key_manager_cannot_revoke_keys_stronger_than_itself(api: Api, kind: str) -> None:
    member = api.create_org(kind)
    manager = api.issue_key(member, scopes=["keys:manage"])
    refused = api.client.delete(f"{API}/orgs/{member.org_id}/keys/{member.key_id}", headers=bearer(manager.key))
    problem = assert_problem(refused, 403, "forbidden")
    assert "scopes it does not hold" in problem["detail"]
    assert api.keys(member)[member.key_id]["active"] is True
    assert api.client.get(f"{API}/me", headers=bearer(member.key)).status_code == 200

    peer = api.issue_key(manager)  # same scopes as the manager: within its reach
    assert api.client.delete(f"{API}/orgs/{member.org_id}/keys/{peer.key_id}",
                             headers=bearer(manager.key)).status_code == 204
    # the full key manages the narrower ones
    assert api.client.delete(f"{API}/orgs/{member.org_id}/keys/{manager.key_id}",
                             headers=bearer(member.key)).status_code == 204


@pytest.mark.parametrize("kind", ["institution", "agency", "supplier"])
def test_a_key_manager_cannot_issue_scopes_it_does_not_hold(api: Api, kind: str) -> None:
    member = api.create_org(kind)
    manager = api.issue_key(member, scopes=["keys:manage", "orgs:read"])
    stronger = api.client.post(f"{API}/orgs/{member.org_id}/keys", json={"scopes": ["audit:read"]},
                               headers=bearer(manager.key))
    assert "audit:read" in assert_problem(stronger, 403, "forbidden")["detail"]
    default = api.client.post(f"{API}/orgs/{member.org_id}/keys", json={}, headers=bearer(manager.key))
    assert default.status_code == 201 and default.json()["key"]["scopes"] == ["keys:manage", "orgs:read"]


def test_an_operator_with_every_scope_manages_any_organisations_keys(api: Api) -> None:
    institution = api.create_org("institution")
    issued = api.client.post(f"{API}/orgs/{institution.org_id}/keys", json={}, headers=bearer(api.operator.key))
    assert issued.status_code == 201
    assert "notices:write" in issued.json()["key"]["scopes"]
    revoked = api.client.delete(f"{API}/orgs/{institution.org_id}/keys/{institution.key_id}",
                                headers=bearer(api.operator.key))
    assert revoked.status_code == 204


# ---------------------------------------------------------------- operators do not publish


def test_operators_do_not_publish_notices_as_institutions(api: Api) -> None:
    institution = api.create_org("institution")
    published = api.client.post(f"{API}/notices", json=notice_body(), headers=bearer(institution.key))
    assert published.status_code == 201, published.text
    notice_id = published.json()["id"]

    operator = bearer(api.operator.key)
    attempts = {
        "publish": api.client.post(f"{API}/notices", json=notice_body(), headers=operator),
        "amend": api.client.post(f"{API}/notices/{notice_id}/amendments",
                                 json={"reason": "x", "changes": {"title": "Hijacked"}}, headers=operator),
        "cancel": api.client.post(f"{API}/notices/{notice_id}/cancellation", json={"reason": "x"},
                                  headers=operator),
        "import pps": api.client.post(f"{API}/notices/import/pps", json={}, headers=operator),
        "import ocds": api.client.post(f"{API}/notices/import/ocds", json={}, headers=operator),
        "bulk": api.client.post(f"{API}/notices/bulk", content=b"title\nx\n", headers={**operator,
                                "Content-Type": "text/csv"}),
    }
    for name, response in attempts.items():
        problem = assert_problem(response, 403, "forbidden")
        assert "institution" in problem["detail"], name
    notice = api.client.get(f"{API}/notices/{notice_id}").json()
    assert notice["current_version"] == 1 and notice["status"] != "cancelled"


def test_the_last_resort_500_carries_the_security_headers(api: Api) -> None:
    app = api.client.app

    def explode() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/explode", explode)  # type: ignore[attr-defined]
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/explode")
    assert response.status_code == 500 and response.headers["content-type"] == "application/problem+json"
    assert_security_headers(response)
