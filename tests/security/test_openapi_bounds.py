"""What the OpenAPI promises about bad input, checked for every operation it lists: each integer
parameter (path, query, header) declares a maximum no larger than the int64 the databases store, and a
request with 2^63 in it answers 422 naming the parameter, never 500. Generated from the OpenAPI, so a new
route's parameters are checked the day it is mounted. Also: answers the fuzzing found undocumented."""

from __future__ import annotations

from typing import Any

from hub.organisations.model import DEFAULT_SCOPES, OrgKind
from tests.security.conftest import World, route_table
from tests.support.api import API, bearer
from tests.support.notices import notice_body

TALLY_NAME = "int64 bound requests"
INT64_MAX = 2**63 - 1
# Whose key asks: the owner of the seeded objects the path names, when its kind may call the route.
OWNER_ORDER = [OrgKind.AGENCY, OrgKind.SUPPLIER, OrgKind.INSTITUTION, OrgKind.OPERATOR]


def _integer_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    if schema.get("type") == "integer":
        return schema
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        if option.get("type") == "integer":
            return dict(option)
    return None


def integer_parameters(world: World) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    found = []
    for path, operations in world.app.openapi()["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = _integer_schema(parameter.get("schema", {}))
                if schema is not None:
                    found.append((method.upper(), path, parameter, schema))
    return found


def test_every_integer_parameter_is_bounded_to_int64_and_refuses_2_to_the_63(world: World) -> None:
    routes = {(r.method, r.path): r for r in route_table(world.app)}
    found = integer_parameters(world)
    assert len(found) >= 10, found  # the walk saw the paging parameters, not an empty schema
    failures = []
    for method, path, parameter, schema in found:
        name, where = parameter["name"], parameter["in"]
        label = f"{method} {path} {where} parameter {name!r}"
        if "maximum" not in schema or schema["maximum"] > INT64_MAX:
            failures.append(f"{label}: declares no maximum <= 2^63-1 ({schema})")
        route = routes[(method, path)]
        owner = next((world.owners[k] for k in OWNER_ORDER if route.allows(DEFAULT_SCOPES[k])), None)
        headers = bearer(owner.key) if owner and route.requirement else {}
        url = path
        for param in route.path_params:
            url = url.replace(f"{{{param}}}", str(2**63) if param == name else world.objects[param])
        query = {name: str(2**63)} if where == "query" else {}
        if where == "header":
            headers[name] = str(2**63)
        response = world.http.request(method, url, params=query, headers=headers)
        if response.status_code != 422 or response.headers.get("content-type") != "application/problem+json":
            failures.append(f"{label}: 2^63 answered {response.status_code} {response.text[:200]}")
        elif name not in {error.get("field", "").split(".")[-1] for error in response.json().get("errors", [])}:
            failures.append(f"{label}: the 422 does not name the parameter: {response.text[:300]}")
    assert not failures, "\n".join(failures)


def test_a_cancelled_notice_answers_a_documented_409(world: World) -> None:
    institution = bearer(world.owners[OrgKind.INSTITUTION].key)
    published = world.http.post(f"{API}/notices", json=notice_body(), headers=institution)
    assert published.status_code == 201, published.text
    notice_id = published.json()["id"]
    operations = world.app.openapi()["paths"]
    for attempt in range(2):
        cancelled = world.http.post(f"{API}/notices/{notice_id}/cancellation", json={"reason": "withdrawn"},
                                    headers=institution)
        assert cancelled.status_code == (201 if attempt == 0 else 409), cancelled.text
    amended = world.http.post(f"{API}/notices/{notice_id}/amendments", json={"reason": "x", "changes": {"title": "y"}},
                              headers=institution)
    assert amended.status_code == 409 and amended.headers["content-type"] == "application/problem+json"
    for action in ("cancellation", "amendments"):
        assert "409" in operations[f"{API}/notices/{{notice_id}}/{action}"]["post"]["responses"], action


def test_timestamps_without_a_utc_equivalent_answer_422_not_500(world: World) -> None:
    """Year 1 at +00:01 is year 0 in UTC, 9999-12-31T23:59 at -00:01 is year 10000: neither can be stored
    or compared with a stored instant (the fuzzing found the public feeds answering 500 to them)."""
    institution = bearer(world.owners[OrgKind.INSTITUTION].key)
    for instant in ("0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01"):
        for path in (f"{API}/notices", f"{API}/feeds/notices.atom"):
            for name in ("published_from", "published_to", "deadline_from", "deadline_to"):
                response = world.http.get(path, params={name: instant})
                assert response.status_code == 422, (path, name, instant, response.text)
                assert name in response.text
        dates = {"published": "2026-03-02T09:00:00+09:00", "submission_deadline": instant}
        refused = world.http.post(f"{API}/notices", json=notice_body(dates=dates), headers=institution)
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == ["dates.submission_deadline"]
    # the extremes that do have a UTC equivalent are answers
    assert world.http.get(f"{API}/notices", params={"published_from": "0001-01-01T00:00:00Z"}).status_code == 200
    assert world.http.get(f"{API}/feeds/notices.atom",
                          params={"published_to": "9999-12-31T23:59:59+09:00"}).status_code == 200
