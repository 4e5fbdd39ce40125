"""Pure ASGI middleware: request context (id, latency, access log, last-resort 500), a body cap and
security headers.

Pure ASGI rather than ``BaseHTTPMiddleware`` so nothing is buffered and the request id context
variable is set in the same context the endpoint (and its worker thread) runs in.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.problems import problem_response
from hub.api.route_table import iter_templates
from hub.spine.observability.logging import request_id_var
from hub.spine.observability.metrics import HTTP_LATENCY
from hub.spine.unit_of_work import one_unit_at_a_time

__all__ = [
    "REQUEST_ID_HEADER",
    "BodySizeLimitMiddleware",
    "RequestContextMiddleware",
    "RouteTemplates",
    "SecurityHeadersMiddleware",
    "sane_request_id",
]

REQUEST_ID_HEADER = "X-Request-ID"
# Fits the 64-character correlation id columns; no spaces or quotes that could forge log fields.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")
UNMATCHED_ROUTE = "<unmatched>"

access_log = logging.getLogger("hub.api.access")
error_log = logging.getLogger("hub.api.errors")


def sane_request_id(candidate: str | None) -> str | None:
    if candidate and _SANE_REQUEST_ID.fullmatch(candidate):
        return candidate
    return None


class RouteTemplates:
    """Maps the matched route to its full template (``/api/v1/orgs/{org_id}``, prefix included), not
    the raw path: metric labels must stay few. Rebuilt when a route it has not seen turns up (routers
    added after start-up)."""

    def __init__(self) -> None:
        self._templates: dict[int, tuple[Any, str]] = {}

    def __call__(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            return UNMATCHED_ROUTE
        known = self._templates.get(id(route))
        if known is None or known[0] is not route:
            self._templates = {id(r): (r, t) for r, t in iter_templates(scope.get("app")) if t}
            known = self._templates.get(id(route))
        if known is None or known[0] is not route:
            fallback = getattr(route, "path_format", None) or getattr(route, "path", None)
            known = (route, str(fallback) if fallback else UNMATCHED_ROUTE)
            self._templates[id(route)] = known  # remembered, so an odd route costs one rebuild only
        return known[1]


def _state(scope: Scope) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


class RequestContextMiddleware:
    """Outermost app middleware: gives each request an id (honouring a sane incoming
    ``X-Request-ID``), echoes it, times the request by route template, writes one access line and
    answers unhandled exceptions with a bare problem document. The request is one scope of units of
    work: it holds at most one at a time (:func:`hub.spine.unit_of_work.one_unit_at_a_time`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route_template = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER)
        request_id = sane_request_id(incoming) or str(uuid.uuid4())
        _state(scope)["request_id"] = request_id
        token = request_id_var.set(request_id)
        started_at = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            with one_unit_at_a_time(f"{scope.get('method', '')} {scope.get('path', '')}"):
                await self.app(scope, receive, send_with_id)
        except Exception:
            error_log.exception("unhandled error", extra={"path": scope.get("path")})
            if response_started:
                raise  # too late for a problem document; the server closes the connection
            response = problem_response(
                500,
                detail="an unexpected error occurred; quote the request id when reporting it",
                instance=scope.get("path"),
                request_id=request_id,
            )
            await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started_at
            route = self.route_template(scope)
            method = scope.get("method", "")
            HTTP_LATENCY.labels(method=method, route=route, status=str(status)).observe(elapsed)
            access_log.info(
                "%s %s %s",
                method,
                route,
                status,
                extra={
                    "method": method,
                    "route": route,
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "org_id": _state(scope).get("org_id"),
                },
            )
            request_id_var.reset(token)


class RequestBodyTooLarge(StarletteHTTPException):
    """Raised from ``receive``; FastAPI re-raises HTTP exceptions met while reading a body, so the
    problem handlers answer it like any other HTTP error."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body exceeds {limit} bytes")


class BodySizeLimitMiddleware:
    """Refuse bodies over ``max_body_bytes`` (API4, resource consumption): at once when the declared
    ``Content-Length`` is too big, else as soon as the streamed bytes pass the limit."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send)
            return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestBodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except RequestBodyTooLarge:
            if response_started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            detail=f"request body exceeds {self.max_body_bytes} bytes",
            instance=scope.get("path"),
            request_id=_state(scope).get("request_id"),
        )
        await response(scope, receive, send)


# JSON, problem documents and the Atom feed load nothing and must never be framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The documentation pages (hub.api.docs_pages) load scripts and stylesheets from this origin only, never
# from a CDN, and run no inline script; Swagger UI and ReDoc set inline styles (ReDoc searches in a blob:
# worker); "Try it out" and the OpenAPI document are fetched from this origin; never framed.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "worker-src blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
HSTS = "max-age=31536000"


class SecurityHeadersMiddleware:
    """Security headers on every response, errors included (the outermost middleware):
    ``nosniff``, a CSP forbidding framing, ``Referrer-Policy: no-referrer``, and HSTS when the request
    came over TLS. The scheme is the one the server hands in: uvicorn sets it from
    ``X-Forwarded-Proto`` only for proxies in ``forwarded_allow_ips``, so a client cannot claim TLS.
    Headers a route sets itself are kept."""

    def __init__(self, app: ASGIApp, docs_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.docs_paths = docs_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = DOCS_CSP if scope.get("path") in self.docs_paths else API_CSP
        tls = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Content-Security-Policy", policy)
                headers.setdefault("Referrer-Policy", "no-referrer")
                if tls:
                    headers.setdefault("Strict-Transport-Security", HSTS)
                if "server" in headers:
                    del headers["server"]
            await send(message)

        await self.app(scope, receive, send_with_headers)
