"""RFC 9457 problem details for every error the API returns.

Clients get one error shape whatever failed: ``type`` (a stable URI under :data:`PROBLEM_TYPE_BASE`
that they may switch on), ``title``, ``status``, ``detail``, ``instance`` (the request path), the
``request_id`` to quote to an operator, and for bad input ``errors``: one entry per offending field with
a JSON pointer into the request (``#/body/name``, ``#/query/kind``). A 500 never carries internals: the
traceback goes to the log under the request id, the client gets only that id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from hub.api.route_table import allowed_methods
from hub.spine.brokers.base import BrokerUnavailable, InfrastructureUnavailable
from hub.spine.errors import Conflict, NotFound, Rejected, RejectedFields, ServiceError, TooLarge, Unacceptable
from hub.spine.faults import is_infrastructure_failure, is_read_only

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "PROBLEM_TYPE_BASE",
    "ApiProblem",
    "FieldError",
    "Forbidden",
    "Problem",
    "RateLimited",
    "Unauthenticated",
    "field_errors_from_validation",
    "install_problem_handlers",
    "json_pointer",
    "line_and_column",
    "malformed_json_detail",
    "problem_response",
    "problem_type",
    "service_error_slug",
    "unavailable_detail",
    "validation_message",
]

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://g2b-hub.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"

_SLUG_BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("content-too-large", "Content too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Invalid request"),
    429: ("too-many-requests", "Too many requests"),
    500: ("internal-error", "Internal server error"),
    503: ("unavailable", "Service unavailable"),
}


class FieldError(BaseModel):
    pointer: str
    field: str
    message: str


class Problem(BaseModel):
    """The problem+json document (documented in OpenAPI for error responses)."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class ApiProblem(Exception):
    """An HTTP-layer refusal (authentication, authorisation) raised by dependencies."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})


class Unauthenticated(ApiProblem):
    status = 401
    slug = "unauthenticated"
    title = "Authentication required"


class Forbidden(ApiProblem):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class RateLimited(ApiProblem):
    """A budget is spent: ``Retry-After`` says when to try again, ``RateLimit`` which budget."""

    status = 429
    slug = "rate-limited"
    title = "Too many requests"


def problem_type(slug: str) -> str:
    return PROBLEM_TYPE_BASE + slug


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


# The HTTP status of each kind of flow error; a subclass takes its nearest listed ancestor's.
SERVICE_ERROR_STATUS: dict[type[ServiceError], int] = {
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    Unacceptable: 422,
    ServiceError: 400,
}


def service_error_status(error: ServiceError) -> int:
    return next(SERVICE_ERROR_STATUS[kind] for kind in type(error).__mro__ if kind in SERVICE_ERROR_STATUS)


def service_error_slug(error: ServiceError) -> str:
    """``slug`` attribute if the error class sets one, else its class name in kebab case
    (``NotFound`` → ``not-found``), so a newly added error gets a stable type for free."""
    explicit = getattr(type(error), "slug", None)
    if isinstance(explicit, str) and explicit:
        return explicit
    if type(error) is ServiceError:
        return "bad-request"
    return _kebab(type(error).__name__)


def json_pointer(location: Sequence[str | int]) -> str:
    """RFC 6901 pointer in URI-fragment form: ``("body", "a/b", 0)`` → ``#/body/a~1b/0``."""
    escaped = (str(part).replace("~", "~0").replace("/", "~1") for part in location)
    return "#/" + "/".join(escaped)


# What pydantic puts before the message of a ValueError or an assertion raised by a validator.
_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


def validation_message(message: str) -> str:
    """A validator's own message, without the prefix pydantic adds (``Value error, ``)."""
    for prefix in _PYDANTIC_PREFIXES:
        message = message.removeprefix(prefix)
    return message


def field_errors_from_validation(errors: Iterable[Mapping[str, Any]]) -> list[FieldError]:
    """FastAPI/pydantic error dicts → field errors. The offending input is never echoed back
    (it may be a secret); only where it is and what is wrong with it."""
    out: list[FieldError] = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        field = ".".join(str(p) for p in loc[1:]) if len(loc) > 1 else ".".join(str(p) for p in loc)
        message = validation_message(str(err.get("msg", "invalid")))
        out.append(FieldError(pointer=json_pointer(loc), field=field, message=message))
    return out


def line_and_column(document: str, offset: int) -> tuple[int, int]:
    """1-based line and column of the character at ``offset`` in ``document``."""
    before = document[: max(offset, 0)]
    line = before.count("\n") + 1
    return line, offset - (before.rfind("\n") + 1) + 1


def malformed_json_detail(error: Mapping[str, Any], document: Any) -> str:
    """The detail for FastAPI's ``json_invalid`` error, whose location is a character offset, not a field:
    ``the body is not well-formed JSON: Expecting value at line 2, column 9``."""
    loc = tuple(error.get("loc", ()))
    reason = str((error.get("ctx") or {}).get("error") or "invalid JSON")
    if isinstance(document, bytes):
        document = document.decode("utf-8", "replace")
    if len(loc) == 2 and isinstance(loc[1], int) and isinstance(document, str):
        line, column = line_and_column(document, loc[1])
        return f"the body is not well-formed JSON: {reason} at line {line}, column {column}"
    return f"the body is not well-formed JSON: {reason}"


def problem_response(
    status: int,
    *,
    slug: str | None = None,
    title: str | None = None,
    detail: str | None = None,
    instance: str | None = None,
    request_id: str | None = None,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """``extensions``: RFC 9457 extension members of the problem type (they never replace a standard one)."""
    default_slug, default_title = _SLUG_BY_STATUS.get(status, (f"http-{status}", "Error"))
    body = Problem(type=problem_type(slug or default_slug), title=title or default_title, status=status,
                   detail=detail, instance=instance, request_id=request_id, errors=errors)
    document = {**(extensions or {}), **body.model_dump(exclude_none=True)}
    return JSONResponse(document, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_CONTENT_TYPE)


def _answer(request: Request, status: int, **fields: Any) -> JSONResponse:
    """The problem for ``request``: its path as ``instance`` and its id, if the middleware gave one."""
    request_id = getattr(request.state, "request_id", None)
    return problem_response(status, instance=request.url.path, request_id=str(request_id) if request_id else None,
                            **fields)


async def _on_api_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    return _answer(request, exc.status, slug=exc.slug, title=exc.title, detail=exc.detail, headers=exc.headers)


def _field_error(field: str, message: str) -> FieldError:
    return FieldError(pointer=json_pointer(("body", *field.split("."))), field=field, message=message)


async def _on_service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    errors = None
    if isinstance(exc, Rejected):
        errors = [_field_error(exc.field, exc.message)]
    elif isinstance(exc, RejectedFields):
        errors = [_field_error(field, message) for field, message in exc.problems]
    elif isinstance(exc, Conflict) and isinstance(getattr(exc, "field", None), str):
        errors = [_field_error(exc.field, str(getattr(exc, "message", exc)))]  # type: ignore[attr-defined]
    elif isinstance(located := getattr(exc, "problem_locations", None), Sequence):
        # (location in the body, message) where a dotted field name cannot say it (keys with dots)
        errors = [FieldError(pointer=json_pointer(("body", *location)), field=".".join(location), message=message)
                  for location, message in located]
    extensions = getattr(exc, "problem_extensions", None)
    return _answer(request, service_error_status(exc), slug=service_error_slug(exc), title=exc.title,
                   detail=str(exc), errors=errors, extensions=extensions if isinstance(extensions, Mapping) else None)


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    malformed = next((e for e in raw if e.get("type") == "json_invalid"), None)
    if malformed is not None:
        detail = malformed_json_detail(malformed, exc.body)
        return _answer(request, 422, detail=detail,
                       errors=[FieldError(pointer=json_pointer(("body",)), field="body", message=detail)])
    about_body = any(tuple(e.get("loc", ()))[:1] == ("body",) for e in raw)
    if about_body and isinstance(exc.body, bytes) and not _is_json(request.headers.get("content-type")):
        # FastAPI hands a JSON route the raw bytes when the content type is not JSON
        given = request.headers.get("content-type")
        return _answer(request, 415,
                       detail=f"the body must be JSON (Content-Type: application/json), not {given}" if given
                       else "the body must be JSON: send Content-Type: application/json")
    errors = field_errors_from_validation(raw)
    names = ", ".join(e.field for e in errors)
    return _answer(request, 422, detail=f"invalid input: {names}" if names else "invalid input", errors=errors)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # The router names only the methods of the first route matching the path; list every route's.
        allowed = allowed_methods(request.app, request.url.path) or [
            m.strip() for m in headers.get("Allow", "").split(",") if m.strip()]
        headers["Allow"] = ", ".join(allowed)
        detail = f"{request.method} is not allowed here; allowed: {', '.join(allowed)}"
    return _answer(request, exc.status_code, detail=detail, headers=headers)


RETRY_AFTER_S = 5

# Every exception type a database or broker outage can surface as; which of them really is one is
# decided by ``hub.spine.faults`` (an IntegrityError is a DBAPIError too, and stays a 500).
INFRASTRUCTURE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.DBAPIError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    BrokerUnavailable,
    InfrastructureUnavailable,
)


def unavailable_detail(exc: BaseException) -> str | None:
    """What a client is told when ``exc`` is an outage (the database refusing writes or unreachable, the
    broker unavailable); None when it is not one (a bug)."""
    if not (isinstance(exc, (BrokerUnavailable, InfrastructureUnavailable)) or is_infrastructure_failure(exc)):
        return None
    if is_read_only(exc):
        return "the database accepts no writes at the moment; retry later"
    if isinstance(exc, BrokerUnavailable):
        return "the message broker is unavailable; retry later"
    return "the database is unavailable; retry later"


async def _on_infrastructure_error(request: Request, exc: Exception) -> Response:
    """Connection refused, failover, a read-only database, "database is locked", a pool exhausted:
    worth a retry, unlike a bug, so 503 with ``Retry-After``, never 500. Details stay in the log (they
    name hosts); the client learns only whether the database refused writes or could not be reached."""
    detail = unavailable_detail(exc)
    if detail is None:
        raise exc  # a real bug: the request-context middleware answers 500 and logs it
    log.warning("dependency unavailable: %s", detail, exc_info=exc)
    return _answer(request, 503, detail=detail, headers={"Retry-After": str(RETRY_AFTER_S)})


def install_problem_handlers(app: FastAPI) -> None:
    """Unhandled exceptions (500) are answered by the request-context middleware, which also logs them
    with the request id; everything expected is mapped here."""
    app.add_exception_handler(ApiProblem, _on_api_problem)
    app.add_exception_handler(ServiceError, _on_service_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    for error_type in INFRASTRUCTURE_ERRORS:
        app.add_exception_handler(error_type, _on_infrastructure_error)
