"""Admission: who is calling and whether their budget allows it, decided before the body is read.

A pure ASGI middleware between the request context and the body limit. From the headers alone it
authenticates the API key (``Authorization: Bearer`` or ``X-API-Key``), charges the budgets
(:class:`hub.spine.budgets.Budgets`) and answers 401 or 429 problem+json without ever calling
``receive``: a caller without a valid key cannot make the hub read, let alone parse, a body. The
principal it found is left in the request state, where ``get_principal`` picks it up (one key lookup
per request).

* a key: a failed check is charged to the client address's ``failed-auth`` budget (and once that is
  spent, the address is refused before any key is hashed); a valid key is charged to its own budget
  and its organisation's, ``reads`` or ``writes`` by method;
* no key: a route that needs one answers 401 at once; a public one (notices, feeds, docs, OpenAPI) is
  charged to the client address's ``anonymous`` budget;
* the probes and metrics (``quotas.exempt_paths``) are neither authenticated nor limited.

Every response charged to a budget carries ``RateLimit-Policy`` and ``RateLimit``; a 429 also
``Retry-After``. The client address is the one the server hands in: behind a proxy, run uvicorn with
``--proxy-headers --forwarded-allow-ips`` so it is the caller's, not the proxy's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.auth import Principal, authenticate
from hub.api.deps import get_principal, rate_limited, unauthenticated
from hub.api.problems import RETRY_AFTER_S, ApiProblem, problem_response, unavailable_detail
from hub.bootstrap import Hub
from hub.spine.quotas import Decision, rate_limit_headers

__all__ = ["AdmissionMiddleware"]

log = logging.getLogger(__name__)

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class _Verdict:
    """What admission decided: pass on (with these headers and this principal) or answer ``problem``."""

    headers: dict[str, str] = field(default_factory=dict)
    principal: Principal | None = None
    problem: ApiProblem | None = None


def _needs_key(dependant: Dependant) -> bool:
    return any(d.call is get_principal or _needs_key(d) for d in dependant.dependencies)


def _iter_api_routes(app: Any) -> Iterator[tuple[APIRoute, str]]:
    try:  # newer FastAPI keeps included routes unprefixed and resolves prefixes per request
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI copies each included route with its full path
        for route in getattr(app, "routes", []):
            if isinstance(route, APIRoute):
                yield route, route.path_format
        return
    for context in iter_route_contexts(getattr(app, "routes", [])):
        if isinstance(context.original_route, APIRoute) and context.path_format:
            yield context.original_route, str(context.path_format)


class _KeyedRoutes:
    """Which (method, path) needs an API key, from the routes' dependencies (``get_principal``), so a
    new route is covered the moment it declares its scope. Rebuilt when the app's routes change."""

    def __init__(self) -> None:
        self._count = -1
        self._table: list[tuple[Any, frozenset[str]]] = []

    def __call__(self, scope: Scope) -> bool:
        app = scope.get("app")
        routes = getattr(app, "routes", [])
        if len(routes) != self._count:
            self._table = [(compile_path(path)[0], frozenset(route.methods or ()))
                           for route, path in _iter_api_routes(app) if _needs_key(route.dependant)]
            self._count = len(routes)
        path, method = scope.get("path", ""), scope.get("method", "")
        return any(method in methods and regex.match(path) for regex, methods in self._table)


def _raw_key(headers: Headers) -> tuple[str | None, bool]:
    """(the key, whether an Authorization header of another scheme was sent), as ``get_principal`` reads
    them: a Bearer credential first, else ``X-API-Key``."""
    authorization = headers.get("authorization")
    scheme, credentials = get_authorization_scheme_param(authorization)
    if authorization and scheme.lower() == "bearer" and credentials:
        return credentials, False
    return headers.get("x-api-key") or None, authorization is not None


def _state(scope: Scope) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


def admit(hub: Hub, *, raw_key: str | None, other_scheme: bool, address: str, write: bool,
          needs_key: bool) -> _Verdict:
    """The decision for one request, from what its headers say (runs in a worker thread: it may touch
    the database)."""
    quotas = hub.quotas
    if raw_key is None:
        decisions = quotas.anonymous(address)
        if _refused(decisions):
            return _Verdict(problem=rate_limited(decisions))
        headers = rate_limit_headers(decisions)
        if needs_key:
            problem = unauthenticated(key_given=False, other_scheme=other_scheme)
            problem.headers.update(headers)
            return _Verdict(problem=problem)
        return _Verdict(headers=headers)
    before = quotas.failed_auth(address, spend=False)
    if before is not None and not before.allowed:
        return _Verdict(problem=rate_limited([before]))
    principal = authenticate(hub, raw_key)
    if principal is None:
        after = quotas.failed_auth(address, spend=True)
        problem = unauthenticated(key_given=True, other_scheme=False)
        if after is not None:
            problem.headers.update(rate_limit_headers([after]))
        return _Verdict(problem=problem)
    decisions = quotas.caller(principal.key_id, principal.org_id, write=write)
    if _refused(decisions):
        return _Verdict(problem=rate_limited(decisions), principal=principal)
    return _Verdict(headers=rate_limit_headers(decisions), principal=principal)


def _refused(decisions: list[Decision]) -> bool:
    return any(not d.allowed for d in decisions)


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, exempt_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.exempt_paths = exempt_paths
        self.needs_key = _KeyedRoutes()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        hub: Hub = scope["app"].state.hub
        raw_key, other_scheme = _raw_key(Headers(scope=scope))
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        try:
            verdict = await run_in_threadpool(
                admit, hub, raw_key=raw_key, other_scheme=other_scheme, address=address,
                write=scope.get("method", "") in _WRITES, needs_key=self.needs_key(scope))
        except Exception as exc:
            detail = unavailable_detail(exc)
            if detail is None:
                raise
            log.warning("admission failed: %s", detail, exc_info=exc)
            await self._answer(scope, receive, send, 503, detail=detail,
                               headers={"Retry-After": str(RETRY_AFTER_S)})
            return
        state = _state(scope)
        if verdict.principal is not None:
            state["principal"] = verdict.principal
            state["org_id"] = verdict.principal.org_id  # for the access log line
        if verdict.problem is not None:
            problem = verdict.problem
            await self._answer(scope, receive, send, problem.status, slug=problem.slug, title=problem.title,
                               detail=problem.detail, headers=problem.headers)
            return
        if not verdict.headers:
            await self.app(scope, receive, send)
            return

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in verdict.headers.items():
                    headers.setdefault(name, value)  # a route's own budget (refresh) says more
            await send(message)

        await self.app(scope, receive, send_with_limits)

    @staticmethod
    async def _answer(scope: Scope, receive: Receive, send: Send, status: int, **fields: Any) -> None:
        """A problem document, sent without reading the request body."""
        response = problem_response(status, instance=scope.get("path"),
                                    request_id=_state(scope).get("request_id"), **fields)
        await response(scope, receive, send)
