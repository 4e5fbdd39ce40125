"""The OpenAPI document reads as written for people: every operation has a summary of ours (none of
FastAPI's "Create Notice Api V1 Notices Post"), every request body has an example that the route
accepts, and no schema is named after a module path. Money is typed as a decimal string."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import TypeAdapter

from hub.api.examples import REQUEST_EXAMPLES
from tests.support.api import API
from tests.support.notices import NoticesClient, notices_client

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def api(sqlite_url: str) -> Iterator[NoticesClient]:
    with notices_client(sqlite_url) as client:
        yield client


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def generated_summary(operation_id: str) -> str:
    """What FastAPI writes when a route gives no summary: its function name, title-cased."""
    name = re.sub(r"_api_v1_.*$|_(get|post|put|patch|delete)$", "", operation_id)
    return name.replace("_", " ").title()


def test_every_operation_has_a_summary_of_ours(api: NoticesClient) -> None:
    spec = api.http.get("/openapi.json").json()
    found = list(operations(spec))
    assert len(found) > 40
    for method, path, operation in found:
        summary = operation.get("summary", "")
        assert summary, f"{method} {path} has no summary"
        assert summary != generated_summary(operation["operationId"]), f"{method} {path}: {summary!r} is generated"
        assert not re.search(r"Api V1", summary), f"{method} {path}: {summary!r}"


def test_every_request_body_has_an_example(api: NoticesClient) -> None:
    spec = api.http.get("/openapi.json").json()
    bodies = [(method, path, op["requestBody"]) for method, path, op in operations(spec) if "requestBody" in op]
    assert len(bodies) > 15
    for method, path, body in bodies:
        for media_type, content in body["content"].items():
            assert content.get("example") is not None, f"{method} {path} ({media_type}) has no example"


def test_no_schema_is_named_after_a_module_path(api: NoticesClient) -> None:
    names = api.http.get("/openapi.json").json()["components"]["schemas"]
    assert [name for name in names if "__" in name or "." in name] == []


def test_each_json_example_validates_against_its_route_body() -> None:
    from hub.api.app import API_ROUTERS

    routes = {route.name: route for router in API_ROUTERS for route in router.routes if isinstance(route, APIRoute)}
    assert set(REQUEST_EXAMPLES) <= set(routes), "an example names a route that does not exist"
    for name, examples in REQUEST_EXAMPLES.items():
        route = routes[name]
        example = examples.get("application/json")
        if example is None:
            continue
        assert route.body_field is not None, name
        TypeAdapter(route.body_field.field_info.annotation).validate_python(example)


def test_the_examples_work_as_they_stand(api: NoticesClient) -> None:
    _, headers = api.org()
    published = api.http.post(
        f"{API}/notices", json=REQUEST_EXAMPLES["publish_notice"]["application/json"], headers=headers
    )
    assert published.status_code == 201, published.text
    notice_id = published.json()["id"]
    amended = api.http.post(
        f"{API}/notices/{notice_id}/amendments",
        json=REQUEST_EXAMPLES["amend_notice"]["application/json"],
        headers=headers,
    )
    assert amended.status_code == 201, amended.text
    for route, path in (("import_pps", "notices/import/pps"), ("import_ocds", "notices/import/ocds")):
        report = api.http.post(f"{API}/{path}", json=REQUEST_EXAMPLES[route]["application/json"], headers=headers)
        assert report.status_code == 200, report.text
        assert report.json()["counts"] == {"created": 1}, report.text
    bulk = api.http.post(
        f"{API}/notices/bulk",
        content=REQUEST_EXAMPLES["bulk_publish"]["text/csv"].encode(),
        headers={**headers, "Content-Type": "text/csv"},
    )
    assert bulk.status_code == 200 and bulk.json()["counts"] == {"created": 1}, bulk.text


def test_money_is_a_decimal_string_in_the_schema(api: NoticesClient) -> None:
    schemas = api.http.get("/openapi.json").json()["components"]["schemas"]
    content = next(schema for name, schema in schemas.items() if name.startswith("NoticeContent"))
    options = content["properties"]["estimated_value"]["anyOf"]
    assert {"type": "string"}.items() <= options[0].items() and options[1] == {"type": "null"}
