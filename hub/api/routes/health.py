"""Probes and metrics, outside ``/api/v1`` and unauthenticated (meant for the orchestrator and the
scraper on an internal network; they reveal no ids, hosts or secrets).

``/healthz``: the process answers (no dependency is touched, so a database outage never gets a healthy
process restarted). ``/readyz``: every registered readiness check passes, else 503 with the report.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from hub.api.deps import HubDep
from hub.spine.observability.metrics import REGISTRY

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness",
    responses={503: {"description": "A dependency is not ready; `checks` says which"}},
)
def readyz(request: Request, hub: HubDep) -> JSONResponse:
    ready, checks = request.app.state.readiness.run(hub)
    body: dict[str, Any] = {"status": "ok" if ready else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request, hub: HubDep) -> Response:
    request.app.state.gauges.refresh(hub)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
