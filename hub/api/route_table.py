"""The app's routes with their full path templates (router prefixes included), whichever way the
installed FastAPI keeps included routes: for metric labels and for the ``Allow`` header of a 405."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.routing import compile_path

__all__ = ["allowed_methods", "iter_templates"]


def iter_templates(app: Any) -> Iterator[tuple[Any, str]]:
    """(route object as the router hands it to ``scope["route"]``, its full path template)."""
    try:  # newer FastAPI keeps included routes unprefixed and resolves prefixes per request
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI copies each included route with its full path
        for route in getattr(app, "routes", []):
            yield route, str(getattr(route, "path_format", ""))
        return
    for context in iter_route_contexts(getattr(app, "routes", [])):
        yield context.original_route, str(context.path_format or "")


def allowed_methods(app: Any, path: str) -> list[str]:
    """Every method some route of ``app`` answers on ``path``, sorted (the ``Allow`` of a 405)."""
    methods: set[str] = set()
    for route, template in iter_templates(app):
        declared = getattr(route, "methods", None)
        if declared and template and compile_path(template)[0].match(path):
            methods.update(declared)
    return sorted(methods)
