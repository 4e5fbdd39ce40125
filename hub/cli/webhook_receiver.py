"""``g2bhub sandbox receiver``: a webhook endpoint to try subscriptions with on one machine.

Each ``POST`` is verified with the reference Standard Webhooks verifier (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``, the timestamp within five minutes) against the secret the
hub returned when the subscription was created, and printed as one line:

    verified  notice.published  notice 4b0c…  v1  webhook-id dlv_12

A verified delivery is answered ``204`` (a repeat of a ``webhook-id`` already seen too: delivery is at
least once); one that does not verify is printed as ``rejected`` with the reason and answered ``401``,
so the hub retries it on its schedule."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hub.subscriptions.signing import SECRET_PREFIX

__all__ = ["MAX_BODY_BYTES", "WebhookReceiver", "describe", "is_signing_secret"]

MAX_BODY_BYTES = 1024 * 1024  # the hub sends at most syndication.max_payload_bytes (256 KiB by default)

Printer = Callable[[str], None]


def is_signing_secret(secret: str) -> bool:
    """``whsec_`` and the base64 of at least 16 bytes: what the hub hands out (32 bytes)."""
    if not secret.startswith(SECRET_PREFIX):
        return False
    try:
        return len(base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)) >= 16
    except ValueError:
        return False


SHOWN_IDS = 10  # a batch naming more subscriptions is shown by its count, first and last


def describe(payload: Any) -> str:
    """``<type>  notice <id>  v<version>`` of a delivery's body (``?`` for what it lacks), and the
    subscriptions a batched delivery names: ``subscriptions s1,s2`` or ``subscriptions 4000 (s1 … s9)``."""
    data = payload.get("data") if isinstance(payload, dict) else None
    data = data if isinstance(data, dict) else {}
    kind = payload.get("type", "?") if isinstance(payload, dict) else "?"
    line = f"{kind}  notice {data.get('notice_id', '?')}  v{data.get('version', '?')}"
    ids = payload.get("subscription_ids") if isinstance(payload, dict) else None
    if isinstance(ids, list) and ids:
        shown = ",".join(map(str, ids)) if len(ids) <= SHOWN_IDS else f"{len(ids)} ({ids[0]} … {ids[-1]})"
        line += f"  subscriptions {shown}"
    return line


class WebhookReceiver:
    """A threaded HTTP server on ``host:port`` that verifies, prints and answers each delivery."""

    def __init__(self, secret: str, host: str = "127.0.0.1", port: int = 8901, out: Printer = print) -> None:
        if not is_signing_secret(secret):
            raise ValueError("not a webhook signing secret (whsec_ + base64)")
        self.verifier = Webhook(secret)
        self.out = out
        self.seen: set[str] = set()
        self.serving = False
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "g2bhub-receiver"
            sys_version = ""

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per delivery is printed by the receiver itself

            def do_POST(self) -> None:
                try:
                    length = int(self.headers.get("content-length") or 0)
                except ValueError:
                    length = -1
                if length < 0 or length > MAX_BODY_BYTES:
                    receiver.out(f"rejected  body length {self.headers.get('content-length')!r} not accepted")
                    self._answer(413)
                    return
                body = self.rfile.read(length)
                self._answer(receiver.receive(body, {k.lower(): v for k, v in self.headers.items()}))

            def do_GET(self) -> None:
                self._answer(405, allow="POST")

            def _answer(self, status: int, allow: str | None = None) -> None:
                self.send_response(status)
                if allow:
                    self.send_header("Allow", allow)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        address = self.server.server_address
        host, port = str(address[0]), int(address[1])
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def receive(self, body: bytes, headers: dict[str, str]) -> int:
        """Verify one delivery, print its line, and return the status to answer."""
        webhook_id = headers.get("webhook-id", "?")
        try:
            payload = self.verifier.verify(body, headers)
        except (WebhookVerificationError, ValueError) as exc:  # ValueError: a malformed signature or body
            self.out(f"rejected  {exc or type(exc).__name__}  webhook-id {webhook_id}")
            return 401
        with self.lock:
            repeat = webhook_id in self.seen
            self.seen.add(webhook_id)
        self.out(f"verified  {describe(payload)}  webhook-id {webhook_id}" + ("  (repeat)" if repeat else ""))
        return 204

    def serve_forever(self) -> None:
        self.serving = True
        self.server.serve_forever()

    def close(self) -> None:
        if self.serving:  # shutdown() waits for serve_forever() to return: it would wait forever otherwise
            self.server.shutdown()
        self.server.server_close()

