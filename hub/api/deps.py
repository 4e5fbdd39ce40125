"""Reusable dependencies, as ``Annotated`` aliases (the FastAPI template's style).

A route needs only these::

    @router.post("/notices", status_code=201)
    def publish(body: NoticeIn,
                caller: Annotated[Principal, Depends(require_scope(Scope.NOTICES_WRITE))],
                bus: BusDep) -> NoticeOut:
        bus.handle(PublishNotice(..., actor_org_id=caller.org_id))
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from hub.api.auth import Principal, authenticate
from hub.api.examples import document_examples
from hub.api.problems import PROBLEM_CONTENT_TYPE, Forbidden, Problem, RateLimited, Unauthenticated
from hub.api.schemas import INT64_MAX
from hub.bootstrap import Hub
from hub.organisations.model import Scope
from hub.registry import HubUnitOfWork
from hub.spine.errors import NotFound
from hub.spine.messages import Command
from hub.spine.quotas import Decision, rate_limit_headers
from hub.spine.text import control_character_problem

__all__ = [
    "INT64_MAX",
    "PUBLIC_ROUTE",
    "TEXT_PARAMETERS",
    "WITH_BODY_PROBLEMS",
    "BusDep",
    "CommandDispatcher",
    "CurrentOrg",
    "HubDep",
    "Principal",
    "RequestIdDep",
    "UowDep",
    "document_problems",
    "ensure_reachable_org",
    "get_principal",
    "problem_doc",
    "rate_limited",
    "require_any_scope",
    "require_budget",
    "require_scope",
    "required_scopes",
    "unauthenticated",
]

# Declared as security schemes so OpenAPI (and /docs' "Authorize") shows both ways to pass a key.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKeyBearer",
    description="`Authorization: Bearer g2b_<key id>_<secret>`",
)
api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKeyHeader",
    description="`X-API-Key: g2b_<key id>_<secret>` (alternative to the bearer header)",
)

_CHALLENGE = 'Bearer realm="g2b-hub"'


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(get_hub)]


def get_uow(hub: HubDep) -> Iterator[HubUnitOfWork]:
    """A unit of work for reads (no SQLite write lock; it cannot commit); it rolls back at the end, so
    copy what you need out of it. It stays open until the response is sent: a route that takes it sends
    no command (the bus's unit of work would be a second one in the same request)."""
    with hub.read_uow() as uow:
        yield uow


UowDep = Annotated[HubUnitOfWork, Depends(get_uow)]


def get_request_id(request: Request) -> str:
    request_id = getattr(request.state, "request_id", None)
    return str(request_id) if request_id else str(uuid.uuid4())


RequestIdDep = Annotated[str, Depends(get_request_id)]


@dataclass(frozen=True)
class CommandDispatcher:
    """The bus, bound to the request: every command carries the request id as correlation id."""

    hub: Hub
    correlation_id: str

    def handle(self, command: Command) -> Any:
        return self.hub.bus.handle(command, correlation_id=self.correlation_id)


def get_dispatcher(hub: HubDep, request_id: RequestIdDep) -> CommandDispatcher:
    return CommandDispatcher(hub=hub, correlation_id=request_id)


BusDep = Annotated[CommandDispatcher, Depends(get_dispatcher)]


def unauthenticated(*, key_given: bool, other_scheme: bool) -> Unauthenticated:
    """The 401 for a missing key (or one sent with another scheme) and for a key that did not check out."""
    if key_given:
        return Unauthenticated("the API key is invalid or revoked",
                               headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'})
    return Unauthenticated(
        "the Authorization header must use the Bearer scheme" if other_scheme else "an API key is required",
        headers={"WWW-Authenticate": _CHALLENGE},
    )


def get_principal(
    request: Request,
    hub: HubDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    header_key: Annotated[str | None, Depends(api_key_header)],
) -> Principal:
    """401 with a ``WWW-Authenticate: Bearer`` challenge unless a valid key of an enabled org is given.
    The admission middleware has normally authenticated the request already, before its body was read;
    its principal is taken as is (one key lookup per request)."""
    admitted = getattr(request.state, "principal", None)
    if isinstance(admitted, Principal):
        return admitted
    raw = bearer.credentials if bearer is not None else header_key
    if not raw:
        raise unauthenticated(key_given=False, other_scheme="authorization" in request.headers)
    principal = authenticate(hub, raw)
    if principal is None:
        raise unauthenticated(key_given=True, other_scheme=False)
    request.state.org_id = principal.org_id  # for the access log line
    return principal


CurrentOrg = Annotated[Principal, Depends(get_principal)]


def require_scope(scope: Scope) -> Callable[[Principal], Principal]:
    """Dependency factory: the caller must be authenticated and its key must carry ``scope``."""

    def check_scope(principal: Principal) -> Principal:
        if not principal.allows(scope):
            raise Forbidden(f"this API key lacks the scope {scope.value!r}")
        return principal

    # Security(...) rather than Depends(...): OpenAPI then lists the scope on the operation's security
    # requirement (``{"ApiKeyBearer": ["orgs:admin"]}``), so the docs say what each endpoint needs.
    # Set as an object, not written in the signature: postponed annotations cannot see ``scope``.
    check_scope.__annotations__["principal"] = Annotated[Principal, Security(get_principal, scopes=[scope.value])]
    check_scope.__name__ = f"require_{scope.name.lower()}"
    return _declaring(check_scope, (scope,))


def require_any_scope(*scopes: Scope) -> Callable[[Principal], Principal]:
    """Like :func:`require_scope`, for routes several kinds reach with different scopes (a supplier reads
    its own data with ``suppliers:write``, a granted institution with ``suppliers:read``). OpenAPI lists
    them all; any one suffices."""
    names = [scope.value for scope in scopes]

    def check_any_scope(principal: Principal) -> Principal:
        if not any(principal.allows(scope) for scope in scopes):
            raise Forbidden(f"this API key lacks every one of the scopes {', '.join(map(repr, names))}")
        return principal

    check_any_scope.__annotations__["principal"] = Annotated[Principal, Security(get_principal, scopes=names)]
    check_any_scope.__name__ = "require_any_of_" + "_".join(scope.name.lower() for scope in scopes)
    return _declaring(check_any_scope, scopes)


_REQUIRED_SCOPES = "required_scopes"


def _declaring(check: Callable[[Principal], Principal], scopes: tuple[Scope, ...]) -> Callable[[Principal], Principal]:
    """Tags a scope check with the scopes it accepts (any one suffices), so tools walking the route
    table (the security tier's authorization matrix) read what each route demands from the route itself."""
    setattr(check, _REQUIRED_SCOPES, frozenset(scopes))
    return check


def required_scopes(dependency: Any) -> frozenset[Scope] | None:
    """The scopes a dependency made by :func:`require_scope` / :func:`require_any_scope` accepts (any one
    suffices); None for any other callable."""
    found = getattr(dependency, _REQUIRED_SCOPES, None)
    return found if isinstance(found, frozenset) else None


def rate_limited(decisions: list[Decision]) -> RateLimited:
    """The 429 for refused ``decisions``: which budget, its size, and when to come back."""
    headers = rate_limit_headers(decisions)
    refused = [d for d in decisions if not d.allowed]
    chosen = max(refused, key=lambda d: d.retry_after_s)
    policy = chosen.policy
    return RateLimited(
        f"the {policy.name} budget ({policy.limit} per {policy.window_s:g} s) is spent; "
        f"retry after {chosen.retry_after_s} s",
        headers=headers,
    )


def require_budget(decision: Decision | None, response: Response) -> None:
    """429 when ``decision`` refused; else its ``RateLimit`` headers on ``response``. None (quotas off)
    lets everything through."""
    if decision is None:
        return
    if not decision.allowed:
        raise rate_limited([decision])
    response.headers.update(rate_limit_headers([decision]))


def ensure_reachable_org(principal: Principal, org_id: str) -> None:
    """Object-level check: another org's id answers 404 like an unknown one (no existence oracle)."""
    if not principal.can_reach(org_id):
        raise NotFound("organisation", org_id)


# Open publication (notices, feeds) needs no key; such a route says so explicitly:
#   @router.get("/notices", **PUBLIC_ROUTE)
PUBLIC_ROUTE: dict[str, Any] = {"openapi_extra": {"x-public": True}}


def problem_doc(description: str) -> dict[str, Any]:
    """An OpenAPI response whose body is a problem+json document."""
    return {"model": Problem, "description": description, "content": {PROBLEM_CONTENT_TYPE: {}}}


RATE_LIMIT_HEADERS: dict[str, Any] = {
    "RateLimit-Policy": {
        "description": "The budgets this request was charged to (draft-ietf-httpapi-ratelimit-headers): "
                       '`"key-reads";q=600;w=60, "org-reads";q=1200;w=60`',
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": "The most restrictive budget's state: `r` units left, `t` seconds until more: "
                       '`"key-reads";r=599;t=1`',
        "schema": {"type": "string"},
    },
}
RATE_LIMITED_DOC: dict[str, Any] = {
    **problem_doc("A budget (per key, organisation or client address) is spent; `detail` names it. "
                  "Retry after `Retry-After` seconds"),
    "headers": {**RATE_LIMIT_HEADERS,
                "Retry-After": {"description": "Seconds until the request would pass", "schema": {"type": "integer"}}},
}

_EVERY_ROUTE: dict[int | str, dict[str, Any]] = {
    429: RATE_LIMITED_DOC,
    503: problem_doc("The database or the message broker is unavailable; retry after `Retry-After` seconds"),
}
WITH_BODY_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: problem_doc("The body cannot be parsed (JSON nested deeper than any parser allows)"),
    413: problem_doc("The body is larger than `api.max_body_bytes`"),
    415: problem_doc("The body is not sent as JSON (`Content-Type: application/json`)"),
}
_WRITES = frozenset({"POST", "PUT", "PATCH"})


def document_problems(router: APIRouter) -> APIRouter:
    """Adds the problem responses every route can give (503) and those of a route that reads a body
    (400, 413, 415) to the OpenAPI of ``router``'s routes, keeping what a route documents itself. Runs before
    the router is mounted (mounting copies the routes); running it twice changes nothing."""
    for route in router.routes:
        included = getattr(route, "original_router", None)  # a router included into this one
        if isinstance(included, APIRouter):
            document_problems(included)
        if not isinstance(route, APIRoute):
            continue
        document_examples(route)
        found = dict(_EVERY_ROUTE)
        if route.body_field is not None or (route.methods or set()) & _WRITES:
            found.update(WITH_BODY_PROBLEMS)
        for status, response in found.items():
            route.responses.setdefault(status, response)
        documented = route.responses.setdefault(route.status_code or 200, {})
        documented.setdefault("headers", dict(RATE_LIMIT_HEADERS))
    return router


def _plain_parameters(request: Request) -> None:
    """Path and query values with a control character are refused before any route sees them: NUL
    cannot even be sent to PostgreSQL, and no id, code or word the hub knows contains one."""
    found = [(("path", name), value) for name, value in request.path_params.items() if isinstance(value, str)]
    found += [(("query", name), value) for name, value in request.query_params.multi_items()]
    problems = [(where, problem) for where, value in found if (problem := control_character_problem(value))]
    if problems:
        raise RequestValidationError([{"loc": where, "msg": problem, "type": "value_error"}
                                      for where, problem in problems])


# Mounted with every API router (``include_router(..., dependencies=TEXT_PARAMETERS)``).
TEXT_PARAMETERS = [Depends(_plain_parameters)]
