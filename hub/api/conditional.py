"""Conditional GETs for the open publication: ``ETag`` / ``If-None-Match`` (RFC 9110 §13.1.2) and
``Cache-Control``, so a CDN or a reverse proxy can keep the answers and revalidate them cheaply.

The tags are weak (``W/"…"``): they name what the answer says, not its bytes. They are derived from the
changes feed's head (or one notice's last seq) and the request's path and query, which is all an answer
of these routes depends on: every new version moves the head, so it changes every tag it could affect,
and the check costs one indexed read instead of the query and the serialisation.
"""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["cache_headers", "etag_for", "not_modified"]


def etag_for(request: Request, *state: object) -> str:
    """A weak tag of the request's path and query (parameters in sorted order) and ``state``."""
    query = sorted(request.query_params.multi_items())
    text = "\x1f".join([request.url.path, repr(query), *map(str, state)])
    return f'W/"{hashlib.sha256(text.encode()).hexdigest()[:32]}"'


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def not_modified(request: Request, etag: str, max_age_s: int) -> Response | None:
    """A 304 when ``If-None-Match`` names ``etag`` (weak comparison, as RFC 9110 asks for GET) or is
    ``*``; else None and the route answers in full."""
    header = request.headers.get("if-none-match")
    if not header:
        return None
    wanted = _opaque(etag)
    if header.strip() != "*" and all(_opaque(tag) != wanted for tag in header.split(",")):
        return None
    response = Response(status_code=304)
    cache_headers(response, etag, max_age_s)
    return response


def cache_headers(response: Response, etag: str, max_age_s: int) -> None:
    """``ETag`` and a public ``Cache-Control``: a cache may serve the answer ``max_age_s`` seconds and
    must then revalidate it (a 304 costs the hub one indexed read)."""
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = f"public, max-age={max_age_s}, must-revalidate"
