"""Quotas at the front door and towards the upstream systems, on SQLite (buckets in memory) and on
PostgreSQL (buckets in ``rate_buckets``, shared by every process): 429 problem+json with the draft
RateLimit headers and Retry-After, refill over time (an injected clock, no sleeping), one key's or
one organisation's flood leaving the others alone, bad-key and anonymous floods limited per client
address, authentication before the body is read (ASGI and a raw socket against uvicorn), publish and
refresh floods, and an upstream budget that leaves slots pending until the scheduler fetches them."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from connectors.sandbox.server import SandboxServer
from hub.api.app import create_app
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings, load_settings
from hub.organisations.commands import CreateOrganisation, IssueApiKey
from hub.organisations.model import OrgKind
from hub.spine.observability.metrics import THROTTLED
from tests.support.api import API, bearer
from tests.support.environment import free_port
from tests.support.notices import notice_body
from tests.support.sandbox import FAST_SUPPLIERS, connector_overrides, control, full_identifiers, reset

PROBLEM = "application/problem+json"
BAD_KEY = "g2b_nosuchkey_notasecret"


class Clock:
    """The buckets' clock, moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Front:
    hub: Hub
    app: FastAPI
    clock: Clock
    clients: dict[str, TestClient] = field(default_factory=dict)

    def client(self, address: str = "192.0.2.10") -> TestClient:
        if address not in self.clients:
            self.clients[address] = TestClient(self.app, client=(address, 40000))
        return self.clients[address]

    def org(self, kind: OrgKind) -> tuple[str, str]:
        org, issued = self.hub.bus.handle(CreateOrganisation(name=f"{kind.value} {uuid.uuid4().hex[:6]}", kind=kind))
        return org.id, issued.plaintext

    def another_key(self, org_id: str) -> str:
        issued = self.hub.bus.handle(IssueApiKey(org_id=org_id, label="second"))
        return str(issued.plaintext)


Budget = dict[str, Any]


def budget(limit: int, window_s: float = 60) -> Budget:
    return {"limit": limit, "window_s": window_s}


# Generous everywhere except where a test narrows one budget.
ROOMY: dict[str, Budget] = {name: budget(10_000) for name in (
    "key_reads", "key_writes", "org_reads", "org_writes", "anonymous", "failed_auth", "refresh_per_supplier",
    "upstream_default")}


@pytest.fixture
def front(settings_factory: Callable[..., Settings]) -> Iterator[Callable[..., Front]]:
    made: list[Front] = []

    def make(quotas: dict[str, Any], **overrides: Any) -> Front:
        settings = settings_factory(quotas={**ROOMY, **quotas}, **overrides)
        hub = bootstrap(settings, migrate=True)
        clock = Clock()
        hub.quotas.store.clock = clock  # type: ignore[attr-defined]
        made.append(Front(hub, create_app(hub=hub), clock))
        return made[-1]

    yield make
    for built in made:
        for client in built.clients.values():
            client.close()
        built.hub.close()


def assert_rate_limited(response: Response, policy: str, retry_after: int) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    assert problem["type"].endswith("/rate-limited") and problem["status"] == 429
    assert policy in problem["detail"]
    assert response.headers["retry-after"] == str(retry_after)
    assert response.headers["ratelimit"] == f'"{policy}";r=0;t={retry_after}'
    assert f'"{policy}";q=' in response.headers["ratelimit-policy"]
    return problem


# ---------------------------------------------------------------- per key and per organisation


def test_a_key_gets_429_past_its_budget_then_refills(front: Callable[..., Front],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hub.spine.budgets")
    hub = front({"key_reads": budget(3, 60)})
    _, key = hub.org(OrgKind.AGENCY)
    http = hub.client()
    seen = []
    for _ in range(3):
        ok = http.get(f"{API}/me", headers=bearer(key))
        assert ok.status_code == 200, ok.text
        seen.append(ok.headers["ratelimit"])
        assert ok.headers["ratelimit-policy"] == '"key-reads";q=3;w=60, "org-reads";q=10000;w=60'
    assert seen == ['"key-reads";r=2;t=20', '"key-reads";r=1;t=20', '"key-reads";r=0;t=20']
    before = THROTTLED.labels(budget="key-reads")._value.get()
    assert_rate_limited(http.get(f"{API}/me", headers=bearer(key)), "key-reads", 20)
    assert THROTTLED.labels(budget="key-reads")._value.get() == before + 1
    (logged,) = [r for r in caplog.records if r.name == "hub.spine.budgets"]
    assert logged.levelno == logging.INFO and logged.__dict__["budget"] == "key-reads"
    key_id, secret = key.split("_", 2)[1:]
    assert logged.__dict__["key_id"] == key_id
    assert secret not in caplog.text
    hub.clock.advance(19)
    assert http.get(f"{API}/me", headers=bearer(key)).status_code == 429
    hub.clock.advance(1)
    again = http.get(f"{API}/me", headers=bearer(key))
    assert again.status_code == 200 and again.headers["ratelimit"] == '"key-reads";r=0;t=20'


def test_writes_and_reads_are_budgets_apart(front: Callable[..., Front]) -> None:
    hub = front({"key_writes": budget(1, 60)})
    _, key = hub.org(OrgKind.INSTITUTION)
    http = hub.client()
    assert http.post(f"{API}/notices", json=notice_body(), headers=bearer(key)).status_code == 201
    assert_rate_limited(http.post(f"{API}/notices", json=notice_body(), headers=bearer(key)), "key-writes", 60)
    assert http.get(f"{API}/me", headers=bearer(key)).status_code == 200


def test_one_organisations_flood_does_not_throttle_another(front: Callable[..., Front]) -> None:
    hub = front({"org_reads": budget(4, 60)})
    flooder, first_key = hub.org(OrgKind.AGENCY)
    second_key = hub.another_key(flooder)
    _, neighbour_key = hub.org(OrgKind.AGENCY)
    http = hub.client()
    codes = [http.get(f"{API}/me", headers=bearer(first_key)).status_code for _ in range(6)]
    assert codes == [200] * 4 + [429] * 2
    # The organisation's budget is spent for all its keys, not only the one that flooded ...
    assert_rate_limited(http.get(f"{API}/me", headers=bearer(second_key)), "org-reads", 15)
    # ... and for no other organisation, even from the same address.
    neighbour = http.get(f"{API}/me", headers=bearer(neighbour_key))
    assert neighbour.status_code == 200
    assert neighbour.headers["ratelimit"] == '"org-reads";r=3;t=15'


def test_a_refused_request_spends_nothing(front: Callable[..., Front]) -> None:
    hub = front({"key_reads": budget(2, 60), "org_reads": budget(3, 60)})
    org_id, first_key = hub.org(OrgKind.AGENCY)
    second_key = hub.another_key(org_id)
    http = hub.client()
    assert [http.get(f"{API}/me", headers=bearer(first_key)).status_code for _ in range(4)] == [200, 200, 429, 429]
    # The two refusals (key budget) took nothing from the organisation's budget: one unit is left for
    # the second key.
    assert http.get(f"{API}/me", headers=bearer(second_key)).status_code == 200
    assert http.get(f"{API}/me", headers=bearer(second_key)).status_code == 429


def test_a_publish_flood_is_limited(front: Callable[..., Front]) -> None:
    hub = front({"key_writes": budget(5, 60)})
    _, key = hub.org(OrgKind.INSTITUTION)
    http = hub.client()
    codes = [http.post(f"{API}/notices", json=notice_body(title=f"Notice {i}"), headers=bearer(key)).status_code
             for i in range(20)]
    assert codes == [201] * 5 + [429] * 15
    listed = http.get(f"{API}/notices", params={"limit": 100}).json()
    assert len(listed["items"]) == 5


# ---------------------------------------------------------------- per client address


def test_a_bad_key_flood_is_limited_per_address(front: Callable[..., Front]) -> None:
    hub = front({"failed_auth": budget(5, 60)})
    _, good_key = hub.org(OrgKind.AGENCY)
    attacker, neighbour = hub.client("198.51.100.7"), hub.client("198.51.100.8")
    answers = [attacker.get(f"{API}/me", headers=bearer(BAD_KEY)) for _ in range(8)]
    assert [a.status_code for a in answers] == [401] * 5 + [429] * 3
    assert answers[0].headers["www-authenticate"].startswith("Bearer")
    assert answers[4].headers["ratelimit"] == '"failed-auth";r=0;t=12'
    assert_rate_limited(answers[5], "failed-auth", 12)
    # Once spent, the address is refused before any key is checked, even a good one.
    assert attacker.get(f"{API}/me", headers=bearer(good_key)).status_code == 429
    # Another address is not affected, bad keys or good.
    assert neighbour.get(f"{API}/me", headers=bearer(BAD_KEY)).status_code == 401
    assert neighbour.get(f"{API}/me", headers=bearer(good_key)).status_code == 200
    hub.clock.advance(12)
    assert attacker.get(f"{API}/me", headers=bearer(good_key)).status_code == 200


def test_anonymous_traffic_is_limited_per_address_and_probes_never(front: Callable[..., Front]) -> None:
    hub = front({"anonymous": budget(3, 30)})
    reader, other = hub.client("203.0.113.5"), hub.client("203.0.113.6")
    answers = [reader.get(f"{API}/notices") for _ in range(3)]
    assert [a.status_code for a in answers] == [200] * 3
    assert answers[0].headers["ratelimit-policy"] == '"anonymous";q=3;w=30'
    assert_rate_limited(reader.get(f"{API}/feeds/changes"), "anonymous", 10)
    assert reader.get("/openapi.json").status_code == 429
    # A protected route without a key: 429 here too, since the address's budget is spent.
    assert reader.post(f"{API}/notices", json=notice_body()).status_code == 429
    assert other.get(f"{API}/notices").status_code == 200
    assert all(reader.get("/healthz").status_code == 200 for _ in range(10))
    assert "ratelimit" not in reader.get("/healthz").headers


def test_a_protected_route_without_a_key_answers_401_with_the_usual_challenge(front: Callable[..., Front]) -> None:
    hub = front({})
    http = hub.client()
    missing = http.post(f"{API}/notices", json=notice_body())
    assert missing.status_code == 401 and missing.headers["content-type"].startswith(PROBLEM)
    assert missing.json()["detail"] == "an API key is required"
    assert missing.headers["www-authenticate"] == 'Bearer realm="g2b-hub"'
    basic = http.get(f"{API}/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401 and "Bearer scheme" in basic.json()["detail"]
    wrong = http.get(f"{API}/me", headers={"X-API-Key": BAD_KEY})
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]


# ---------------------------------------------------------------- the body is not read before auth


def _call_asgi(app: FastAPI, method: str, path: str, headers: dict[str, str], body: bytes | None = None
               ) -> tuple[int, int]:
    """(status, how many times the app called ``receive``); without ``body``, one that never ends."""
    calls = 0

    async def receive() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if body is not None:
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.request", "body": b"{" * 1024, "more_body": True}

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in {"host": "hub.test", **headers}.items()],
        "client": ("192.0.2.99", 5555), "server": ("hub.test", 80), "state": {},
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return status, calls


@pytest.mark.parametrize("length", ["50000000", "4000000"])
def test_a_bad_key_is_refused_without_reading_the_body(front: Callable[..., Front], length: str) -> None:
    hub = front({})
    declared = {"content-type": "application/json", "content-length": length}
    assert _call_asgi(hub.app, "POST", f"{API}/notices", {**declared, "authorization": f"Bearer {BAD_KEY}"}) \
        == (401, 0)
    assert _call_asgi(hub.app, "POST", f"{API}/notices", declared) == (401, 0)
    # The harness does see a read: a valid key's request body is read (and found wanting).
    _, key = hub.org(OrgKind.INSTITUTION)
    status, calls = _call_asgi(hub.app, "POST", f"{API}/notices", {"content-type": "application/json",
                                                                  "content-length": "2",
                                                                  "authorization": f"Bearer {key}"}, body=b"{}")
    assert status == 422 and calls >= 1


class _Uvicorn:
    def __init__(self, app: FastAPI) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Uvicorn:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def test_a_real_server_answers_401_before_the_client_sends_the_body(front: Callable[..., Front]) -> None:
    hub = front({})
    with _Uvicorn(hub.app) as server, socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall((f"POST {API}/notices HTTP/1.1\r\nHost: hub.test\r\nAuthorization: Bearer {BAD_KEY}\r\n"
                      "Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n").encode())
        # Not one byte of the 50 MB body is sent: the answer must come anyway.
        started = time.monotonic()
        head = sock.recv(65536).decode("latin-1")
        assert time.monotonic() - started < 5
    assert head.startswith("HTTP/1.1 401"), head
    assert "application/problem+json" in head.lower()


# ---------------------------------------------------------------- refresh and upstream budgets


def _register(front_: Front, key: str, identifiers: dict[str, str]) -> dict[str, Any]:
    response = front_.client().post(f"{API}/suppliers", json={"identifiers": identifiers, "consent": True},
                                    headers=bearer(key))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _states(body: dict[str, Any]) -> dict[str, str]:
    return {f["system"]: f["state"] for f in body["fetches"]}


@pytest.fixture
def twins(sandbox: SandboxServer) -> Iterator[SandboxServer]:
    reset(sandbox)
    yield sandbox
    reset(sandbox)


def test_refresh_on_demand_is_limited_per_supplier(front: Callable[..., Front], twins: SandboxServer) -> None:
    hub = front({"refresh_per_supplier": budget(2, 3600)}, connectors=connector_overrides(twins),
                suppliers=FAST_SUPPLIERS)
    _, key = hub.org(OrgKind.SUPPLIER)
    first = _register(hub, key, {"lei": full_identifiers(twins)["lei"]})
    second = _register(hub, key, {"lei": full_identifiers(twins, skip=1)["lei"]})
    http = hub.client()
    control(twins, "gleif", "stats", "DELETE")
    refreshes = [http.post(f"{API}/suppliers/{first['id']}/refresh", headers=bearer(key)) for _ in range(2)]
    assert [r.status_code for r in refreshes] == [200, 200]
    assert refreshes[1].headers["ratelimit"] == '"refresh";r=0;t=1800'
    refused = http.post(f"{API}/suppliers/{first['id']}/refresh", headers=bearer(key))
    assert_rate_limited(refused, "refresh", 1800)
    assert control(twins, "gleif", "stats")["requests"] == 2  # the refused refresh called nobody
    assert http.post(f"{API}/suppliers/{second['id']}/refresh", headers=bearer(key)).status_code == 200
    hub.clock.advance(1800)
    assert http.post(f"{API}/suppliers/{first['id']}/refresh", headers=bearer(key)).status_code == 200
    assert control(twins, "gleif", "stats")["requests"] == 4


def test_an_upstream_budget_leaves_slots_pending_until_it_refills(front: Callable[..., Front],
                                                                  twins: SandboxServer) -> None:
    hub = front({"upstream": {"gleif": budget(2, 60)}}, connectors=connector_overrides(twins),
                suppliers=FAST_SUPPLIERS)
    _, key = hub.org(OrgKind.SUPPLIER)
    control(twins, "gleif", "stats", "DELETE")
    bodies = [_register(hub, key, {"lei": full_identifiers(twins, skip=i)["lei"]}) for i in range(4)]
    assert [_states(b)["gleif"] for b in bodies] == ["verified", "verified", "pending", "pending"]
    assert control(twins, "gleif", "stats")["requests"] == 2  # the hub's key was spent twice, not four times
    for body in bodies[2:]:
        (slot,) = body["fetches"]
        assert slot["attempts"] == 0  # no call was made, so no attempt was spent
        assert slot["last_error"].startswith("throttled")
        assert slot["next_attempt_at"] is not None
    # The scheduler, before the budget has refilled, still calls nobody ...
    now = datetime.now(UTC)
    run = hub.hub.suppliers.scheduler.run_once(now=now + timedelta(seconds=31))
    assert run.claimed == 2 and run.outcomes["throttled"] == 2, run
    assert control(twins, "gleif", "stats")["requests"] == 2
    # ... and once it has, fetches both (one call each: GLEIF has no batch call).
    hub.clock.advance(60)
    run = hub.hub.suppliers.scheduler.run_once(now=now + timedelta(seconds=120))
    assert run.outcomes["ok"] == 2, run
    assert control(twins, "gleif", "stats")["requests"] == 4
    http = hub.client()
    for body in bodies[2:]:
        fetched = http.get(f"{API}/suppliers/{body['id']}", headers=bearer(key)).json()
        assert _states(fetched)["gleif"] == "verified"


# ---------------------------------------------------------------- one budget across processes


def test_two_hubs_on_one_postgresql_database_share_one_budget(postgres_url: str) -> None:
    settings = load_settings(database={"url": postgres_url}, broker={"kind": "inprocess"},
                             quotas={**ROOMY, "key_reads": budget(4, 60)})
    first = bootstrap(settings, migrate=True)
    second = bootstrap(settings)
    try:
        assert type(first.quotas.store).__name__ == "DatabaseBuckets"
        _, issued = first.bus.handle(CreateOrganisation(name="Agency", kind=OrgKind.AGENCY))
        with TestClient(create_app(hub=first)) as a, TestClient(create_app(hub=second)) as b:
            codes = [(a if i % 2 else b).get(f"{API}/me", headers=bearer(issued.plaintext)).status_code
                     for i in range(6)]
        assert codes == [200, 200, 200, 200, 429, 429]
    finally:
        first.close()
        second.close()


def test_concurrent_takes_on_postgresql_never_overspend(postgres_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from hub.spine.quota_store import DatabaseBuckets
    from hub.spine.quotas import Policy

    settings = load_settings(database={"url": postgres_url}, broker={"kind": "inprocess"})
    hubs = [bootstrap(settings, migrate=True), bootstrap(settings)]
    try:
        stores = [DatabaseBuckets(h.engine, clock=lambda: 1_000_000.0) for h in hubs]
        policy = Policy("shared", 25, 3600)
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda i: stores[i % 2].take([("shared", policy)])[0].allowed, range(80)))
        assert answers.count(True) == 25
        assert not stores[1].peek("shared", policy).allowed  # a look, not a charge ...
        assert stores[0].peek("never-charged", policy).remaining == 24
        with hubs[0].engine.connect() as conn:  # ... writes nothing
            assert conn.exec_driver_sql("SELECT count(*) FROM rate_buckets").scalar() == 1
        later = DatabaseBuckets(hubs[0].engine, clock=lambda: 1_000_000.0 + 7200)
        assert later.forget_idle(3600) == 1
        assert later.take([("shared", policy)])[0].remaining == 24  # a forgotten bucket starts full
    finally:
        for h in hubs:
            h.close()


# ---------------------------------------------------------------- documented


def test_every_api_operation_documents_429_and_the_headers(front: Callable[..., Front]) -> None:
    spec = front({}).app.openapi()
    operations = [(path, method, op) for path, item in spec["paths"].items() if path.startswith(API)
                  for method, op in item.items() if method in {"get", "post", "put", "patch", "delete"}]
    assert len(operations) > 30
    for path, method, op in operations:
        limited = op["responses"].get("429")
        assert limited is not None, (method, path)
        assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(limited["headers"]), (method, path)
        success = next(code for code in op["responses"] if code.startswith("2"))
        assert {"RateLimit", "RateLimit-Policy"} <= set(op["responses"][success]["headers"]), (method, path)
