"""The security tier's lab: the route table as the app declares it, a hub seeded with one organisation of
every kind and real objects owned by them, and a count of the requests the tier makes (printed at the end
of the run, so a review can quote it)."""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from connectors.sandbox.server import SandboxServer
from hub.api.app import create_app
from hub.api.deps import get_principal, required_scopes
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import DEFAULT_SCOPES, OrgKind, Scope
from tests.support.api import API, bearer
from tests.support.notices import notice_body
from tests.support.sandbox import FAST_SUPPLIERS, connector_overrides, full_identifiers, reset

HERE = Path(__file__).parent

# What the tier counted, by kind ("matrix requests", "fuzz cases", "fuzz 5xx"); printed in the summary.
TALLY: Counter[str] = Counter()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.security)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY:
        figures = ", ".join(f"{name}: {count}" for name, count in sorted(TALLY.items()))
        terminalreporter.write_sep("-", f"security tier: {figures}")


# ---------------------------------------------------------------- the route table


@dataclass(frozen=True)
class RouteSpec:
    """One operation as the app declares it: its scopes (each set: any one of it suffices; every set must
    be met), whether it authenticates at all, whether it says it is public, and its path parameters."""

    method: str
    path: str
    path_params: tuple[str, ...]
    requirement: tuple[frozenset[Scope], ...]
    authenticated: bool
    declared_public: bool
    body_required: bool

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def allows(self, scopes: frozenset[Scope]) -> bool:
        return all(scopes & accepted for accepted in self.requirement)

    @property
    def scopes(self) -> frozenset[Scope]:
        return frozenset().union(*self.requirement)


def _walk(dependant: Dependant, requirement: list[frozenset[Scope]], calls: list[Any]) -> None:
    for sub in dependant.dependencies:
        calls.append(sub.call)
        declared = required_scopes(sub.call)
        if declared is not None:
            requirement.append(declared)
        _walk(sub, requirement, calls)


def route_table(app: FastAPI) -> list[RouteSpec]:
    """Every operation of ``app`` (API routes and the framework's own: OpenAPI, docs)."""
    operations = app.openapi()["paths"]
    found: list[RouteSpec] = []
    for route in iter_route_contexts(app.routes):
        dependant: Dependant | None = getattr(route, "dependant", None)
        path = str(route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            if dependant is None:  # /openapi.json, /docs: plain Starlette routes FastAPI adds itself
                found.append(RouteSpec(method, path, (), (), False, False, False))
                continue
            requirement: list[frozenset[Scope]] = []
            calls: list[Any] = []
            _walk(dependant, requirement, calls)
            operation = operations.get(path, {}).get(method.lower(), {})
            found.append(RouteSpec(
                method=method, path=path, path_params=tuple(p.name for p in dependant.path_params),
                requirement=tuple(requirement), authenticated=get_principal in calls,
                declared_public=bool((getattr(route, "openapi_extra", None) or {}).get("x-public")),
                body_required=bool(operation.get("requestBody", {}).get("required")),
            ))
    return found


# ---------------------------------------------------------------- the seeded hub


@dataclass
class Member:
    org_id: str
    kind: OrgKind
    key: str
    key_id: str


class CountingClient:
    """The test client, counting every request under ``tally`` (so the tier can say how many it made)."""

    def __init__(self, client: TestClient, tally: str) -> None:
        self.client = client
        self.tally = tally

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        TALLY[self.tally] += 1
        response: httpx.Response = self.client.request(method, url, **kwargs)
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


@dataclass
class World:
    """A hub with an owner organisation per kind holding real objects (a notice, a registered supplier
    with fetched credentials, a grant, a subscription, spare keys), and a caller organisation per kind
    that owns nothing of theirs. ``objects`` holds, per path parameter name, an id owned by an owner."""

    hub: Hub
    app: FastAPI
    http: CountingClient
    operator: Member
    owners: dict[OrgKind, Member] = field(default_factory=dict)
    callers: dict[OrgKind, Member] = field(default_factory=dict)
    revoked: dict[OrgKind, str] = field(default_factory=dict)
    objects: dict[str, str] = field(default_factory=dict)
    _narrow: dict[tuple[OrgKind, frozenset[Scope]], str] = field(default_factory=dict)

    def create_org(self, kind: OrgKind, name: str) -> Member:
        response = self.http.post(f"{API}/orgs", json={"name": f"{name} {uuid.uuid4().hex[:6]}", "kind": kind.value},
                                  headers=bearer(self.operator.key))
        assert response.status_code == 201, response.text
        body = response.json()
        return Member(body["organisation"]["id"], kind, body["api_key"], body["key"]["id"])

    def issue_key(self, member: Member, scopes: frozenset[Scope] | None = None) -> tuple[str, str]:
        payload: dict[str, Any] = {"label": "security tier"}
        if scopes is not None:
            payload["scopes"] = sorted(s.value for s in scopes)
        response = self.http.post(f"{API}/orgs/{member.org_id}/keys", json=payload, headers=bearer(member.key))
        assert response.status_code == 201, response.text
        return response.json()["api_key"], response.json()["key"]["id"]

    def narrow_key(self, kind: OrgKind, without: frozenset[Scope]) -> str:
        """A key of the caller of ``kind`` holding its kind's scopes except ``without``."""
        scopes = DEFAULT_SCOPES[kind] - without
        assert scopes, f"a {kind} key without {sorted(without)} would hold no scope at all"
        cached = self._narrow.get((kind, scopes))
        if cached is None:
            cached = self._narrow[(kind, scopes)] = self.issue_key(self.callers[kind], scopes)[0]
        return cached


def _seed(world: World, sandbox: SandboxServer) -> None:
    for kind in OrgKind:
        world.owners[kind] = world.create_org(kind, f"owner {kind}")
        world.callers[kind] = world.create_org(kind, f"caller {kind}")
        key, key_id = world.issue_key(world.callers[kind])
        revoked = world.http.delete(f"{API}/orgs/{world.callers[kind].org_id}/keys/{key_id}",
                                    headers=bearer(world.callers[kind].key))
        assert revoked.status_code == 204, revoked.text
        world.revoked[kind] = key
    institution, supplier, agency = (world.owners[k] for k in (OrgKind.INSTITUTION, OrgKind.SUPPLIER, OrgKind.AGENCY))

    notice = world.http.post(f"{API}/notices", json=notice_body(), headers=bearer(institution.key))
    assert notice.status_code == 201, notice.text
    identifiers = full_identifiers(sandbox)
    registered = world.http.post(f"{API}/suppliers", json={"identifiers": identifiers, "consent": True,
                                                           "legal_name": "Hanbit Security Tier"},
                                 headers=bearer(supplier.key))
    assert registered.status_code == 201, registered.text
    supplier_id = registered.json()["id"]
    credentials = world.http.get(f"{API}/suppliers/{supplier_id}/credentials", headers=bearer(supplier.key))
    assert credentials.status_code == 200 and credentials.json(), credentials.text
    credential_id = credentials.json()[0]["id"]
    versions = world.http.get(f"{API}/suppliers/{supplier_id}/credentials/{credential_id}/versions",
                              headers=bearer(supplier.key))
    assert versions.status_code == 200 and versions.json(), versions.text
    granted = world.http.post(f"{API}/suppliers/{supplier_id}/grants/{institution.org_id}",
                              headers=bearer(supplier.key))
    assert granted.status_code == 201, granted.text
    subscription = world.http.post(f"{API}/subscriptions", json={"name": "owned", "channel": {
                                       "type": "webhook", "url": "https://hooks.example/in"}},
                                   headers=bearer(agency.key))
    assert subscription.status_code == 201, subscription.text
    endpoint = world.http.post(f"{API}/webhook-endpoints", json={"name": "owned", "url": "https://hooks.example/batch"},
                               headers=bearer(agency.key))
    assert endpoint.status_code == 201, endpoint.text
    _, spare_key_id = world.issue_key(supplier)

    world.objects.update({
        "org_id": supplier.org_id,
        "key_id": spare_key_id,
        "supplier_id": supplier_id,
        "credential_id": credential_id,
        "version_id": str(versions.json()[0]["id"]),
        "institution_org_id": institution.org_id,
        "notice_id": notice.json()["id"],
        "number": "1",
        "subscription_id": subscription.json()["subscription"]["id"],
        "endpoint_id": endpoint.json()["endpoint"]["id"],
        # an identifier the owner supplier registered (``/identifier-claims/{scheme}/{identifier}``)
        "scheme": "kr_brn",
        "identifier": identifiers["kr_brn"],
    })
    fetch = registered.json()["fetches"][0]
    if "id" in fetch:  # a credential fetch slot, where the API names it (``.../fetches/{fetch_id}/retry``)
        world.objects["fetch_id"] = str(fetch["id"])


def seeded_world(url: str, sandbox: SandboxServer, tally: str) -> Iterator[World]:
    """A hub on ``url`` (in-process broker, connectors on the sandbox twins), seeded through its own API;
    the first operator comes through the bus, as ``g2bhub orgs create`` does (nobody could authorise it)."""
    reset(sandbox)
    overrides: dict[str, Any] = {"connectors": connector_overrides(sandbox), "suppliers": FAST_SUPPLIERS}
    if "quotas" in Settings.model_fields:
        # The matrix and the fuzzing make hundreds of requests a second, many with bad keys, on purpose;
        # they test who may do what, not the request budgets (test_quotas.py does), so buckets are off.
        overrides["quotas"] = {"enabled": False}
    settings = Settings(database={"url": url}, broker={"kind": "inprocess"}, **overrides)
    hub = bootstrap(settings, migrate=True)
    # Webhook targets resolve to a public documentation address, whatever the machine's DNS says.
    hub.subscriptions = dataclasses.replace(hub.subscriptions, resolve=lambda host, port: ["93.184.215.14"])
    org, issued = hub.bus.handle(CreateOrganisation(name="Hub operations", kind=OrgKind.OPERATOR))
    try:
        app = create_app(hub=hub)
        with TestClient(app) as client:
            world = World(hub=hub, app=app, http=CountingClient(client, "seeding requests"),
                          operator=Member(org.id, OrgKind.OPERATOR, issued.plaintext, issued.key.id))
            _seed(world, sandbox)
            world.http = CountingClient(client, tally)
            yield world
    finally:
        hub.close()
        reset(sandbox)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, sandbox: SandboxServer,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The seeded hub, once per module and backend; its requests count under the module's ``TALLY_NAME``."""
    tally = getattr(request.module, "TALLY_NAME", "other requests")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('security') / 'hub.db'}"
        yield from seeded_world(url, sandbox, tally)
        return
    from tests.support.db import throwaway_database

    with throwaway_database(request.getfixturevalue("postgres_server_url")) as url:
        yield from seeded_world(url, sandbox, tally)

