"""What every twin shares: its state (dataset, faults, counters) and the ``/_control`` endpoints.

Control endpoints are deliberately unauthenticated and exist only on the sandbox; they let a test
change the source's data or misbehaviour over HTTP without importing the sandbox in-process:

- ``GET|POST|DELETE /_control/faults``   read, merge-update or reset the fault settings
- ``GET|DELETE /_control/stats``         read or clear the request/item counters
- ``GET|PUT|DELETE /_control/key``       read, change or reset the key the twin accepts
  (``{"api_key": "..."}``), so a test can refuse the hub's key and then accept it again
- ``GET|PATCH|DELETE /_control/records/{key}``  read, change or remove one record of this system
- ``PUT /_control/records``              create or replace a record (full JSON body)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox.dataset import SandboxDataset
from connectors.sandbox.faults import FaultDecision, FaultInjector, TwinStats

__all__ = ["MAINTENANCE_PAGE", "BodyTooLarge", "TwinState", "control_routes", "read_capped_body"]

# What the ``html_page`` fault answers, with status 200, whatever the twin's contract: well-formed (so an
# XML parser reads it) yet no source's answer.
MAINTENANCE_PAGE = (
    '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Service maintenance</title></head>'
    "<body><h1>Service temporarily unavailable</h1><p>Please try again later.</p></body></html>"
)


class BodyTooLarge(Exception):
    """The request body exceeded the twin's cap; it was not read any further."""


@dataclass
class TwinState:
    name: str
    dataset: SandboxDataset
    faults: FaultInjector
    api_key: str | None
    max_body_bytes: int
    stats: TwinStats = field(default_factory=TwinStats)
    configured_api_key: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.configured_api_key = self.api_key

    def reset_key(self) -> None:
        self.api_key = self.configured_api_key

    async def inject_faults(
        self, render: Callable[[FaultDecision], Response], key: str | None = None
    ) -> tuple[FaultDecision, Response | None]:
        """Decide this request's fault and wait its latency. An outage, timeout or error ends the request
        with ``render``'s answer (each twin renders its own contract's fault), ``html`` with the same
        maintenance page for every twin; anything else — including ``malformed``, which the twin applies
        to its own body — continues with the decision."""
        decision = self.faults.decide(key)
        await self.faults.delay(decision)
        if decision.kind == "html":
            self.stats.add("fault:html")
            return decision, HTMLResponse(MAINTENANCE_PAGE)
        if decision.kind in ("outage", "timeout", "error"):
            self.stats.add(f"fault:{decision.kind}")
            return decision, render(decision)
        return decision, None


async def read_capped_body(request: Request, limit: int) -> bytes:
    """Read at most ``limit`` bytes, refusing early on a larger Content-Length, so a hostile client
    cannot make the twin buffer an unbounded body before the parser's own limits apply."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"status": status, "detail": detail}, status_code=status)


def control_routes(state: TwinState) -> list[Route]:
    """The ``/_control`` routes bound to one twin's state."""

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = json.loads(await request.body() or b"{}")
                if not isinstance(changes, dict):
                    return _problem(400, "body must be a JSON object")
                state.faults.update(changes)
            except (ValueError, ValidationError) as exc:
                return _problem(422, str(exc))
        elif request.method == "DELETE":
            state.faults.reset()
        return JSONResponse(state.faults.settings.model_dump())

    async def stats(request: Request) -> Response:
        if request.method == "DELETE":
            state.stats.reset()
        return JSONResponse(state.stats.as_dict())

    async def api_key(request: Request) -> Response:
        if request.method == "PUT":
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, dict) or not isinstance(body.get("api_key"), str | None):
                return _problem(422, "body must be {\"api_key\": string or null}")
            state.api_key = body.get("api_key")
        elif request.method == "DELETE":
            state.reset_key()
        return JSONResponse({"api_key": state.api_key})

    async def record(request: Request) -> Response:
        key = request.path_params["key"]
        try:
            if request.method == "PATCH":
                changes: Any = json.loads(await request.body() or b"{}")
                if not isinstance(changes, dict):
                    return _problem(400, "body must be a JSON object")
                updated = state.dataset.update_record(state.name, key, changes)
                return JSONResponse(json.loads(updated.model_dump_json()))
            if request.method == "DELETE":
                found = state.dataset.delete_record(state.name, key)
                return Response(status_code=204 if found else 404)
        except KeyError:
            return _problem(404, f"no {state.name} record {key}")
        except (ValueError, ValidationError) as exc:
            return _problem(422, str(exc))
        current = state.dataset.record(state.name, key)
        if current is None:
            return _problem(404, f"no {state.name} record {key}")
        return JSONResponse(json.loads(current.model_dump_json()))

    async def put_record(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
            created = state.dataset.put_record(state.name, body)
        except (ValueError, ValidationError) as exc:
            return _problem(422, str(exc))
        return JSONResponse(json.loads(created.model_dump_json()), status_code=201)

    return [
        Route("/_control/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_control/stats", stats, methods=["GET", "DELETE"]),
        Route("/_control/key", api_key, methods=["GET", "PUT", "DELETE"]),
        Route("/_control/records", put_record, methods=["PUT"]),
        Route("/_control/records/{key:path}", record, methods=["GET", "PATCH", "DELETE"]),
    ]
