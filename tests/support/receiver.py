"""A real loopback webhook receiver for tests and benches: verifies every request with the reference
``standardwebhooks`` verifier against the secrets it currently knows, and answers as told (a queue of
scripted answers, then the default)."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

__all__ = ["Answer", "Receiver"]


@dataclass(frozen=True)
class Answer:
    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    webhook_id: str
    body: dict[str, Any]
    verified_with: list[int]  # indexes into Receiver.secrets that verify it
    answered: int
    at: float
    host: str = ""  # the Host header: the name the sender addressed, even when pinned to an address


class Receiver:
    def __init__(self, secrets: list[str] | None = None) -> None:
        self.secrets: list[str] = list(secrets or [])
        self.script: deque[Answer] = deque()
        self.default = Answer()
        self.received: list[Received] = []
        self.unverified = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.handle(self, body, headers)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def handle(self, request: BaseHTTPRequestHandler, body: bytes, headers: dict[str, str]) -> None:
        with self.lock:
            answer = self.script.popleft() if self.script else self.default
            secrets = list(self.secrets)
        verified = []
        for index, secret in enumerate(secrets):
            try:
                Webhook(secret).verify(body, headers)
                verified.append(index)
            except Exception:  # the reference verifier raises on any mismatch
                continue
        if answer.delay_s:
            time.sleep(answer.delay_s)
        with self.lock:
            if not verified:
                self.unverified += 1
            else:
                self.received.append(Received(headers.get("webhook-id", ""), json.loads(body), verified,
                                              answer.status, time.monotonic(), headers.get("host", "")))
        try:
            request.send_response(answer.status)
            for name, value in answer.headers.items():
                request.send_header(name, value)
            request.send_header("content-length", "0")
            request.end_headers()
        except OSError:  # the client gave up (timeout): nothing to answer
            pass

    def answer(self, *answers: Answer) -> None:
        with self.lock:
            self.script.extend(answers)

    def delivered(self) -> list[Received]:
        """Verified requests that were answered 2xx."""
        with self.lock:
            return [r for r in self.received if 200 <= r.answered < 300]

    def versions(self) -> list[tuple[str, int]]:
        return [(r.body["data"]["notice_id"], r.body["data"]["version"]) for r in self.delivered()]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
