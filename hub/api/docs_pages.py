"""The interactive API documentation, served entirely by the hub: Swagger UI at ``/docs`` and ReDoc at
``/redoc``, their scripts and stylesheets from the ``fastapi-offline`` package under
:data:`ASSETS_PATH`. Nothing is fetched from a CDN, so the pages work on an intranet without internet.

No page runs an inline script: Swagger UI is started by :data:`SWAGGER_INIT_PATH`, a script of this
origin that reads the OpenAPI address from the page, so the pages' policy allows scripts from
``'self'`` only (``hub.api.middleware.DOCS_CSP``).
"""

from __future__ import annotations

import html
import importlib.util
import logging

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

__all__ = ["ASSETS_PATH", "DOCS_PATH", "REDOC_PATH", "SWAGGER_INIT_PATH", "install_docs"]

log = logging.getLogger(__name__)

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
SWAGGER_INIT_PATH = "/docs/swagger-init.js"
ASSETS_PATH = "/docs-assets"
# The package that ships Swagger UI's bundle and stylesheet, ReDoc's standalone bundle and a favicon.
ASSETS_PACKAGE = ("fastapi_offline", "static")

# Started from a served file, not an inline script; the page says where the OpenAPI document is.
SWAGGER_INIT_JS = """\
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis],
  });
})();
"""


def _swagger_page(title: str, root: str, openapi_url: str) -> str:
    assets = html.escape(root + ASSETS_PATH)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)} - Swagger UI</title>
<link rel="icon" type="image/png" href="{assets}/favicon.png">
<link rel="stylesheet" type="text/css" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{html.escape(root + openapi_url)}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{html.escape(root + SWAGGER_INIT_PATH)}"></script>
</body>
</html>
"""


def _redoc_page(title: str, root: str, openapi_url: str) -> str:
    assets = html.escape(root + ASSETS_PATH)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)} - ReDoc</title>
<link rel="icon" type="image/png" href="{assets}/favicon.png">
</head>
<body>
<redoc spec-url="{html.escape(root + openapi_url)}"></redoc>
<script src="{assets}/redoc.standalone.js"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> frozenset[str]:
    """Adds the two documentation pages, Swagger UI's start script and the assets to ``app`` (created
    with ``docs_url=None, redoc_url=None``); returns the pages' paths, which get the documentation's security policy."""
    openapi_url = app.openapi_url or "/openapi.json"

    def root_of(request: Request) -> str:
        return str(request.scope.get("root_path") or "")

    @app.get(DOCS_PATH, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        return HTMLResponse(_swagger_page(app.title, root_of(request), openapi_url))

    @app.get(SWAGGER_INIT_PATH, include_in_schema=False)
    def swagger_init() -> Response:
        return Response(SWAGGER_INIT_JS, media_type="text/javascript")

    @app.get(REDOC_PATH, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        return HTMLResponse(_redoc_page(app.title, root_of(request), openapi_url))

    if importlib.util.find_spec(ASSETS_PACKAGE[0]) is None:
        # an environment installed before the dependency was added: the API works, the pages stay bare
        log.warning(
            "%s is not installed: /docs and /redoc cannot load their assets; reinstall the hub with its dependencies",
            ASSETS_PACKAGE[0].replace("_", "-"),
        )
    else:
        app.mount(ASSETS_PATH, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")
    return frozenset({DOCS_PATH, REDOC_PATH})
