"""One request, one unit of work at a time, through the real app: no route takes the read unit of work
(``UowDep``, open until the response is sent) together with the command bus, and a route that sends a
command while holding a unit of work is refused (the tests run with strict unit scopes: see
tests/conftest.py) instead of queueing on itself for SQLite's write lock. Every other API test drives its
routes under the same guard, the security tier's authorization matrix every route."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.api.deps import BusDep, HubDep, UowDep, get_dispatcher, get_uow
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.spine.unit_of_work import NestedUnitOfWork


@pytest.fixture
def hub(sqlite_url: str) -> Iterator[Hub]:
    made = bootstrap(Settings(database={"url": sqlite_url, "sqlite_busy_timeout_s": 1}), migrate=True)
    yield made
    made.close()


def calls(dependant: Dependant) -> set[Any]:
    found = {dependant.call}
    for sub in dependant.dependencies:
        found |= calls(sub)
    return found


def api_routes(app: FastAPI) -> list[tuple[str, APIRoute]]:
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: included routes carry their full path
        return [(r.path, r) for r in app.routes if isinstance(r, APIRoute)]
    return [
        (str(c.path_format), c.original_route)
        for c in iter_route_contexts(app.routes)
        if isinstance(c.original_route, APIRoute)
    ]


def test_no_route_holds_the_read_unit_of_work_and_the_bus(hub: Hub) -> None:
    routes = api_routes(create_app(hub=hub))
    assert len(routes) > 40
    both = [
        f"{sorted(r.methods or ())} {path}" for path, r in routes if {get_uow, get_dispatcher} <= calls(r.dependant)
    ]
    assert both == []


def organisation_named(hub: Hub, name: str) -> bool:
    with hub.read_uow() as uow:
        return any(org.name == name for org in uow.organisations.list())


def test_a_route_that_sends_a_command_while_holding_a_unit_of_work_is_refused(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    router = APIRouter()

    @router.post("/nested/{name}")
    def nested(name: str, uow: UowDep, bus: BusDep) -> dict[str, int]:
        before = len(uow.organisations.list())
        bus.handle(CreateOrganisation(name=name, kind=OrgKind.AGENCY))
        return {"before": before}

    @router.post("/sequential/{name}")
    def sequential(name: str, hub: HubDep, bus: BusDep) -> dict[str, int]:
        with hub.read_uow() as uow:
            before = len(uow.organisations.list())
        bus.handle(CreateOrganisation(name=name, kind=OrgKind.AGENCY))
        return {"before": before}

    app = create_app(hub=hub)
    app.include_router(router)
    refused, accepted = f"nested {uuid.uuid4().hex[:6]}", f"sequential {uuid.uuid4().hex[:6]}"
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.ERROR):
        response = client.post(f"/nested/{refused}")
        assert response.status_code == 500
        assert any(r.exc_info and isinstance(r.exc_info[1], NestedUnitOfWork) for r in caplog.records)
        assert not organisation_named(hub, refused)

        done = client.post(f"/sequential/{accepted}")
        assert done.status_code == 200, done.text
        assert organisation_named(hub, accepted)
