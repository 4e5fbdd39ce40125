"""A hub on a given database behind the real app, with a seeded operator, for tests that act as
organisations through the HTTP API: create organisations, issue and list keys, check problem answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from tests.support.api import API, bearer

__all__ = ["ApiSession", "ManualClock", "Member", "api_session", "assert_problem"]


class ManualClock:
    """A monotonic clock that moves only when told: the API key cache's, so a test passes its TTL
    without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Member:
    org_id: str
    key: str
    key_id: str


@dataclass
class ApiSession:
    hub: Hub
    client: TestClient
    operator: Member
    clock: ManualClock

    def outlive_cached_keys(self) -> None:
        """Move past ``api.key_cache_ttl_s``: a key changed behind the API's back (on the bus, in the
        database) is looked up again on its next request."""
        self.clock.now += self.hub.api_keys.ttl_s + 0.001

    def create_org(self, kind: str, name: str | None = None) -> Member:
        response = self.client.post(
            f"{API}/orgs",
            json={"name": name or f"{kind} {uuid.uuid4().hex[:6]}", "kind": kind},
            headers=bearer(self.operator.key),
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return Member(org_id=body["organisation"]["id"], key=body["api_key"], key_id=body["key"]["id"])

    def issue_key(self, member: Member, scopes: list[str] | None = None, label: str = "extra") -> Member:
        payload: dict[str, object] = {"label": label}
        if scopes is not None:
            payload["scopes"] = scopes
        response = self.client.post(f"{API}/orgs/{member.org_id}/keys", json=payload, headers=bearer(member.key))
        assert response.status_code == 201, response.text
        body = response.json()
        return Member(org_id=member.org_id, key=body["api_key"], key_id=body["key"]["id"])

    def keys(self, member: Member) -> dict[str, dict[str, Any]]:
        listed = self.client.get(f"{API}/orgs/{member.org_id}/keys", headers=bearer(self.operator.key))
        return {k["id"]: k for k in listed.json()}


@contextmanager
def api_session(database_url: str) -> Iterator[ApiSession]:
    """The hub on ``database_url`` with the in-process broker; no worker runs, so API commands only
    write the outbox. The first operator cannot come through the API (nobody could authorise it): it is
    seeded on the bus."""
    hub = bootstrap(Settings(database={"url": database_url}, broker={"kind": "inprocess"}), migrate=True)
    clock = ManualClock()
    hub.api_keys.clock = clock
    org, issued = hub.bus.handle(CreateOrganisation(name="Hub operations", kind=OrgKind.OPERATOR))
    try:
        with TestClient(create_app(hub=hub)) as client:
            yield ApiSession(hub=hub, client=client, operator=Member(org.id, issued.plaintext, issued.key.id),
                             clock=clock)
    finally:
        hub.close()


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """An RFC 9457 problem of ``status`` whose type ends in ``slug``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == f"https://g2b-hub.dev/problems/{slug}"
    return body
