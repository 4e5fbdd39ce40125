"""The authorization matrix, generated from the app's route table: every operation by organisation kind
by caller (no key, malformed keys, a revoked key, a key of the right kind lacking the route's scope, a
full key of another organisation), every answer below 500 and carrying the security headers. What each
route demands is read from the route itself (the scopes its ``require_scope`` / ``require_any_scope``
dependency declares), so a new route is covered the day it is mounted, and one that neither declares a
scope nor is on the short public list below fails the tier.

Path parameters come from real objects the owner organisations created (``World.objects``, keyed by
parameter name); a route with a parameter name the seeded world does not know fails with the name, and
so does a route with a path parameter and a required body missing from ``BODIES``."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest

from hub.organisations.model import DEFAULT_SCOPES, OrgKind
from tests.security.conftest import RouteSpec, World, route_table
from tests.support.api import API, bearer

TALLY_NAME = "authorization matrix requests"

# Answer without a key, on purpose. Routes under the API prefix must also say so in their declaration
# (``**PUBLIC_ROUTE``, shown as ``x-public`` in the OpenAPI); both must agree.
PUBLIC: frozenset[tuple[str, str]] = frozenset({
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/swagger-init.js"),
    ("GET", "/redoc"),
    ("GET", f"{API}/notices"),
    ("GET", f"{API}/notices/{{notice_id}}"),
    ("GET", f"{API}/notices/{{notice_id}}/versions/{{number}}"),
    ("GET", f"{API}/notices/{{notice_id}}/ocds/releases"),
    ("GET", f"{API}/notices/{{notice_id}}/ocds/record"),
    ("GET", f"{API}/ocds/releases"),
    ("GET", f"{API}/feeds/changes"),
    ("GET", f"{API}/feeds/notices.atom"),
})
# Any valid key, whatever its scopes: a client checks the key it was given.
ANY_KEY: frozenset[tuple[str, str]] = frozenset({("GET", f"{API}/me")})

# Well-formed bodies for operations on an object, so the object check (not body validation) decides.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", f"{API}/orgs/{{org_id}}/keys"): {"label": "intruder"},
    ("POST", f"{API}/notices/{{notice_id}}/amendments"): {"reason": "intrusion", "changes": {"title": "Hijacked"}},
    ("POST", f"{API}/notices/{{notice_id}}/cancellation"): {"reason": "intrusion"},
    ("POST", f"{API}/suppliers/{{supplier_id}}/eligibility"): {"requirements": [{"kind": "business_not_closed"}]},
    ("PATCH", f"{API}/subscriptions/{{subscription_id}}"): {"name": "hijacked"},
    ("POST", f"{API}/subscriptions/{{subscription_id}}/deliveries/replay"): {},
    ("PATCH", f"{API}/webhook-endpoints/{{endpoint_id}}"): {"name": "hijacked"},
    ("POST", f"{API}/webhook-endpoints/{{endpoint_id}}/subscriptions"): {"filter": {}},
    ("POST", f"{API}/webhook-endpoints/{{endpoint_id}}/deliveries/replay"): {},
    # control of identifiers and operator repair of fetch slots
    ("POST", f"{API}/suppliers/{{supplier_id}}/control/challenges"): {"scheme": "kr_brn"},
    ("POST", f"{API}/suppliers/{{supplier_id}}/control/proofs"): {"challenge_id": str(uuid.UUID(int=7)),
                                                                  "method": "x509"},
    ("POST", f"{API}/suppliers/{{supplier_id}}/control/approvals"): {"scheme": "kr_brn", "evidence": "checked"},
    ("POST", f"{API}/identifier-claims/{{scheme}}/{{identifier}}/release"): {"reason": "dispute"},
    ("POST", f"{API}/identifier-claims/{{scheme}}/{{identifier}}/transfer"): {"reason": "dispute",
                                                                             "to_org_id": str(uuid.UUID(int=8))},
    ("POST", f"{API}/suppliers/{{supplier_id}}/fetches/{{fetch_id}}/retry"): {"reason": "upstream fixed"},
}

MALFORMED: dict[str, dict[str, str]] = {
    "not a key": bearer("not-a-key"),
    "empty parts": {"X-API-Key": "g2b__"},
    "other scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
}


def _path(route: RouteSpec, values: dict[str, str]) -> str:
    path = route.path
    for name in route.path_params:
        path = path.replace(f"{{{name}}}", values[name])
    return path


def call(world: World, route: RouteSpec, headers: dict[str, str], values: dict[str, str] | None = None
         ) -> httpx.Response:
    body = BODIES.get((route.method, route.path))
    response = world.http.request(route.method, _path(route, values or world.objects), headers=headers,
                                  **({} if body is None else {"json": body}))
    assert response.status_code < 500, f"{route.label}: {response.status_code} {response.text[:300]}"
    assert response.headers.get("x-content-type-options") == "nosniff", route.label
    assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", ""), route.label
    assert "server" not in response.headers, route.label
    return response


def problem(response: httpx.Response, status: int, slug: str) -> str | None:
    """None when ``response`` is the problem document expected, else what is wrong with it."""
    if response.status_code != status:
        return f"{response.status_code} instead of {status}: {response.text[:200]}"
    if response.headers.get("content-type") != "application/problem+json":
        return f"content type {response.headers.get('content-type')}"
    if response.json().get("type") != f"https://g2b-hub.dev/problems/{slug}":
        return f"problem type {response.json().get('type')}"
    if status == 401 and not response.headers.get("www-authenticate", "").startswith("Bearer"):
        return "no Bearer challenge"
    return None


@pytest.fixture(scope="module")
def routes(world: World) -> list[RouteSpec]:
    return route_table(world.app)


def protected(routes: list[RouteSpec]) -> list[RouteSpec]:
    return [r for r in routes if (r.method, r.path) not in PUBLIC]


def test_every_route_declares_who_may_call_it(routes: list[RouteSpec], world: World) -> None:
    undeclared = []
    for route in routes:
        key = (route.method, route.path)
        if key in PUBLIC:
            if route.authenticated or route.requirement:
                undeclared.append(f"{route.label} is on the public list but asks for a key")
            if route.path.startswith(API) and not route.declared_public:
                undeclared.append(f"{route.label} is on the public list but not declared with PUBLIC_ROUTE")
        elif route.declared_public:
            undeclared.append(f"{route.label} is declared public but is not on this test's public list")
        elif key in ANY_KEY:
            if not route.authenticated:
                undeclared.append(f"{route.label} should take any valid key but authenticates nobody")
        elif not (route.requirement and route.authenticated):
            undeclared.append(f"{route.label} declares no scope (require_scope / require_any_scope) and is not "
                              "on the public list: it would ship unprotected")
        unknown = [name for name in route.path_params if name not in world.objects]
        if unknown:
            undeclared.append(f"{route.label}: no seeded object for path parameter(s) {unknown}; add one to "
                              "tests/security/conftest.py::_seed")
        if route.path_params and route.body_required and key not in BODIES and key not in PUBLIC:
            undeclared.append(f"{route.label} needs a body: add a well-formed one to BODIES")
    assert not undeclared, "\n".join(undeclared)
    assert len(protected(routes)) > 30  # the walk found the API, not an empty table


def test_callers_without_a_valid_key_are_unauthenticated_everywhere(routes: list[RouteSpec], world: World) -> None:
    wrong_secret = f"g2b_{world.callers[OrgKind.AGENCY].key_id}_{uuid.uuid4().hex}"
    callers = {"no key": {}, **MALFORMED, "wrong secret": bearer(wrong_secret),
               **{f"revoked {kind} key": bearer(key) for kind, key in world.revoked.items()}}
    failures = []
    for route in routes:
        for name, headers in callers.items():
            response = call(world, route, headers)
            if (route.method, route.path) in PUBLIC:
                # Public without a key; a key that is presented must be valid, so refusing a bad one (401)
                # is as right as ignoring it, but nothing else is.
                if name == "no key" and response.status_code in (401, 403):
                    failures.append(f"{route.label}: public route answered {response.status_code} without a key")
                elif response.status_code in (401, 403) and (wrong := problem(response, 401, "unauthenticated")):
                    failures.append(f"{route.label} ({name}): {wrong}")
            elif (wrong := problem(response, 401, "unauthenticated")) is not None:
                failures.append(f"{route.label} ({name}): {wrong}")
    assert not failures, "\n".join(failures)


def test_keys_lacking_the_routes_scope_are_forbidden(routes: list[RouteSpec], world: World) -> None:
    failures = []
    checked = 0
    for route in protected(routes):
        for kind in OrgKind:
            if (route.method, route.path) in ANY_KEY:
                narrow = world.narrow_key(kind, frozenset({next(iter(DEFAULT_SCOPES[kind]))}))
                for name, key in (("full", world.callers[kind].key), ("narrow", narrow)):
                    response = call(world, route, bearer(key))
                    if response.status_code != 200:
                        failures.append(f"{route.label} ({kind} {name} key): {response.status_code}")
                continue
            if route.allows(DEFAULT_SCOPES[kind]):
                name, key = "key without the route's scopes", world.narrow_key(kind, route.scopes)
            else:
                name, key = "full key of a kind without the scope", world.callers[kind].key
            checked += 1
            if (wrong := problem(call(world, route, bearer(key)), 403, "forbidden")) is not None:
                failures.append(f"{route.label} ({kind}, {name}): {wrong}")
    assert not failures, "\n".join(failures)
    assert checked >= len(OrgKind) * 30


def _missing(value: str) -> str:
    return "987654321" if value.isdigit() else str(uuid.uuid4())


def _shape(response: httpx.Response, values: dict[str, str]) -> dict[str, Any]:
    """What a caller can compare of two answers: status, headers present, the body with ids blanked."""
    text = response.text
    for value in sorted(values.values(), key=len, reverse=True):
        # Whole ids only: a small integer id ("2") must not blank the "2" inside "g2b-hub.dev".
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", "<id>", text)
    body = json.loads(text) if text else None
    if isinstance(body, dict):
        body.pop("request_id", None)
    headers = sorted(set(response.headers) - {"x-request-id", "content-length"})
    return {"status": response.status_code, "content-type": response.headers.get("content-type"),
            "headers": headers, "body": body}


def test_another_organisations_objects_answer_exactly_like_missing_ones(routes: list[RouteSpec],
                                                                       world: World) -> None:
    failures = []
    compared = 0
    for route in protected(routes):
        if not route.path_params or (route.method, route.path) in ANY_KEY:
            continue
        used = {name: world.objects[name] for name in route.path_params}
        missing = {name: _missing(value) for name, value in used.items()}
        for kind in OrgKind:
            if kind is OrgKind.OPERATOR or not route.allows(DEFAULT_SCOPES[kind]):
                continue  # operators reach every organisation by design; other kinds were checked for 403
            intruder = bearer(world.callers[kind].key)
            foreign = _shape(call(world, route, intruder, used), used)
            absent = _shape(call(world, route, intruder, missing), missing)
            compared += 1
            if foreign["status"] != 404:
                failures.append(f"{route.label} ({kind}): another organisation's object answered {foreign}")
            elif foreign != absent:
                failures.append(f"{route.label} ({kind}): differs from a missing id:\n  {foreign}\n  {absent}")
    assert not failures, "\n".join(failures)
    assert compared >= 15
