"""The interactive documentation works without internet (an intranet): ``/docs`` (Swagger UI) and
``/redoc`` reference only assets of the hub's own origin, and each of those answers with its content."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings

TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


class _References(HTMLParser):
    """Every address a page makes the browser load: scripts, stylesheets, icons, the OpenAPI document."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name in ("src", "href", "spec-url", "data-openapi-url"):
            if attributes.get(name):
                self.found.append(str(attributes[name]))
        if tag == "script" and not attributes.get("src"):
            self.inline_scripts += 1


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    hub: Hub = bootstrap(Settings(database={"url": sqlite_url}, broker={"kind": "inprocess"}), migrate=True)
    try:
        with TestClient(create_app(hub=hub)) as test_client:
            yield test_client
    finally:
        hub.close()


@pytest.mark.parametrize(("page", "marker"), [("/docs", "swagger-ui"), ("/redoc", "<redoc")])
def test_the_docs_pages_load_everything_from_the_hub_itself(client: TestClient, page: str, marker: str) -> None:
    response = client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert marker in response.text
    references = _References()
    references.feed(response.text)
    assert references.inline_scripts == 0
    assert len(references.found) >= 3, references.found  # the bundle, the icon, the OpenAPI document
    for address in references.found:
        parts = urlsplit(address)
        assert not parts.scheme and not parts.netloc and address.startswith("/"), address
        asset = client.get(address)
        assert asset.status_code == 200, address
        suffix = re.search(r"\.[a-z]+$", parts.path)
        assert suffix and TYPES[suffix.group()] in asset.headers["content-type"], (address, asset.headers)
        assert asset.content, address
    policy = dict(d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["connect-src"] == "'self'"


def test_swagger_ui_is_started_by_a_script_of_this_origin(client: TestClient) -> None:
    page = client.get("/docs").text
    start = client.get("/docs/swagger-init.js")
    assert start.status_code == 200 and "javascript" in start.headers["content-type"]
    assert "SwaggerUIBundle(" in start.text and 'src="/docs/swagger-init.js"' in page
    bundle = client.get("/docs-assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle=" in bundle.text and "presets" in bundle.text
    assert "Redoc" in client.get("/docs-assets/redoc.standalone.js").text[:2000]
    assert client.get("/docs-assets/../app.py").status_code == 404
