"""The HTTP API's app factory.

``create_app()`` with no hub is the uvicorn factory (``uvicorn --factory hub.api.app:create_app``): it
configures logging, bootstraps a hub (migrating the schema) and closes it on shutdown. Given a hub,
the caller owns both the hub and the logging setup (the CLI, tests).

A flow adds its routes by appending its router to :data:`API_ROUTERS`; they are mounted under
:data:`API_PREFIX` and inherit the problem+json error documentation below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, FastAPI

from hub.api.admission import AdmissionMiddleware
from hub.api.deps import TEXT_PARAMETERS, document_problems
from hub.api.docs_pages import install_docs
from hub.api.middleware import BodySizeLimitMiddleware, RequestContextMiddleware, SecurityHeadersMiddleware
from hub.api.probes import GaugeRefresher, default_readiness_checks
from hub.api.problems import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_BASE, Problem, install_problem_handlers
from hub.api.routes import (
    audit,
    dead_letters,
    eligibility,
    endpoints,
    health,
    keys,
    me,
    notices,
    orgs,
    subscriptions,
    supplier_control,
    suppliers,
)
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings, get_settings
from hub.spine.observability.logging import configure_logging

__all__ = ["API_PREFIX", "API_ROUTERS", "ROOT_ROUTERS", "create_app"]

API_PREFIX = "/api/v1"

# One line per resource.
API_ROUTERS: list[APIRouter] = [
    me.router,
    orgs.router,
    keys.router,
    audit.router,
    dead_letters.router,
    suppliers.router,
    supplier_control.router,
    eligibility.router,
    notices.router,
    subscriptions.router,
    endpoints.router,
]
ROOT_ROUTERS: list[APIRouter] = [health.router]


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description, "content": {PROBLEM_CONTENT_TYPE: {}}}


# Documented once for every authenticated route; the body is always a problem document.
API_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _problem("No API key, or a malformed, unknown or revoked one (`WWW-Authenticate: Bearer`)"),
    403: _problem("The API key lacks the scope this operation needs"),
    404: _problem("Not found, or owned by another organisation (the two are indistinguishable)"),
    422: _problem("Invalid input; `errors` names each field with a JSON pointer (malformed JSON: `detail` "
                  "says the line and column)"),
}

DESCRIPTION = f"""
Integration hub for public procurement: institutions publish bid notices once, suppliers register once,
agencies subscribe to notice feeds.

**Authentication**: an API key `g2b_<key id>_<secret>` in `Authorization: Bearer …` or `X-API-Key`.
Each operation needs a scope (`orgs:admin`, `keys:manage`, …). An organisation reaches only its own
objects; another organisation's object answers 404, like a missing one.

**Errors** are RFC 9457 `application/problem+json` documents; `type` URIs start with `{PROBLEM_TYPE_BASE}`.
Every response carries `X-Request-ID` (yours, if you send a sane one); quote it when reporting a problem.

**Quotas**: token-bucket budgets per API key and per organisation (reads and writes apart), per client
address without a key, per supplier for on-demand refresh. Responses carry `RateLimit-Policy` and
`RateLimit` (draft-ietf-httpapi-ratelimit-headers); a spent budget answers 429 `rate-limited` with
`Retry-After` seconds.
"""


def _version() -> str:
    try:
        return version("g2b-hub")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


def create_app(hub: Hub | None = None, settings: Settings | None = None) -> FastAPI:
    owns_hub = hub is None
    if hub is None:
        settings = settings or get_settings()
        configure_logging(settings.logging)
        hub = bootstrap(settings, migrate=bool(settings.database.migrate_on_start))
    settings = settings or hub.settings
    the_hub = hub

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Every synchronous route and the admission check run on this pool. Few threads queue requests
        # in arrival order on the event loop; many would all hold a request and fight over the GIL (and,
        # on SQLite, over the pool), and the unluckiest would wait for seconds.
        to_thread.current_default_thread_limiter().total_tokens = settings.api.threads
        try:
            yield
        finally:
            if owns_hub:
                the_hub.close()

    app = FastAPI(
        title="g2b-hub",
        summary="Public procurement integration hub",
        description=DESCRIPTION,
        version=_version(),
        lifespan=lifespan,
        docs_url=None,  # served by hub.api.docs_pages, without a CDN
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.hub = hub
    app.state.settings = settings
    app.state.readiness = default_readiness_checks()
    app.state.gauges = GaugeRefresher()

    install_problem_handlers(app)
    # Added last = outermost: the request context wraps the body limit, so a 413 carries the request id.
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.api.max_body_bytes)
    # Authentication and quotas from the headers alone, before anything reads (or sizes up) the body.
    app.add_middleware(AdmissionMiddleware, exempt_paths=frozenset(settings.quotas.exempt_paths))
    app.add_middleware(RequestContextMiddleware)
    # Outermost of all: even the last-resort 500 carries the security headers.
    app.add_middleware(SecurityHeadersMiddleware, docs_paths=install_docs(app))

    for router in ROOT_ROUTERS:
        app.include_router(router)
    for router in API_ROUTERS:
        app.include_router(document_problems(router), prefix=API_PREFIX, responses=API_ERROR_RESPONSES,
                           dependencies=TEXT_PARAMETERS)
    return app
