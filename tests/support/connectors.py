"""What the connector tests share: a tiny scripted HTTP server on loopback and an in-memory call recorder.

Tests talk real HTTP to the server (no monkeypatching) and count requests server-side, so "retried three
times" and "not retried" are facts about the wire, not about mocks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connectors.base import FetchResult
from connectors.config import PROJECT_ROOT, ConnectorsConfig
from connectors.registry import ConnectorRegistry, build_connectors
from connectors.resilience import CallRecord
from mappings.engine import Credential, SourceMapping


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class SeenRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


Responder = Callable[[SeenRequest], Reply]


class ScriptedServer:
    """Answers with ``replies`` in order (the last one repeats) or with ``responder``."""

    def __init__(self, replies: list[Reply] | None = None, responder: Responder | None = None) -> None:
        self.replies = list(replies or [Reply()])
        self.responder = responder
        self.requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                seen = SeenRequest(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body)
                reply = outer._next(seen)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = _handle
            do_POST = _handle

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _next(self, seen: SeenRequest) -> Reply:
        with self._lock:
            self.requests.append(seen)
            if self.responder is not None:
                return self.responder(seen)
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass
class InMemoryCallRecorder:
    """Keeps every call record in a list, so tests can assert what was asked of whom; thread-safe."""

    calls: list[CallRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, call: CallRecord) -> None:
        with self._lock:
            self.calls.append(call)


def apply_raw(mapping: SourceMapping, raw: bytes, *, identifier: str, fetched_at: datetime,
              response_sha256: str = "") -> list[Credential]:
    """Map ``raw`` as if the mapping's own system had just answered it."""
    return mapping.apply(FetchResult(
        system=mapping.source, identifier=identifier, raw=raw, content_type="", fetched_at=fetched_at,
        duration_ms=0.0, request_sha256="", response_sha256=response_sha256, http_status=200, attempts=1,
    ))


VIES_WSDL = str(PROJECT_ROOT / "connectors" / "wsdl" / "vies_checkVatService.wsdl")
VIES_FAULTS = {
    "INVALID_INPUT": "permanent",
    "GLOBAL_MAX_CONCURRENT_REQ": "transient",
    "MS_MAX_CONCURRENT_REQ": "transient",
    "SERVICE_UNAVAILABLE": "transient",
    "MS_UNAVAILABLE": "transient",
    "TIMEOUT": "transient",
}


def build_vies(endpoint: str, **extra: Any) -> ConnectorRegistry:
    entry = {
        "kind": "soap",
        "wsdl": VIES_WSDL,
        "endpoint": endpoint,
        "operation": "checkVat",
        "identifier_pattern": r"^(?P<countryCode>[A-Z]{2})(?P<vatNumber>[0-9A-Za-z+*.]{2,12})$",
        "arguments": {"countryCode": "{countryCode}", "vatNumber": "{vatNumber}"},
        "fault_codes": VIES_FAULTS,
        "retry": {"max_attempts": 3, "jitter_s": 0},
        **extra,
    }
    return build_connectors(
        ConnectorsConfig(systems={"vies": entry}), recorder=InMemoryCallRecorder(), sleep=lambda _s: None
    )
