"""One webhook attempt: SSRF check at send time, Standard Webhooks signature, no redirects, no proxies
from the environment, and bounded in time and memory whatever the receiver does.

Every attempt has a total deadline (``attempt_deadline_s``) enforced on each socket operation — connect,
TLS handshake, each write and each read, response headers included — so a receiver that dribbles its
reply a byte at a time holds an attempt no longer than the deadline (httpx's own read timeout is per
chunk). At most ``max_reply_bytes`` of the reply are read off the wire; the rest is discarded with the
connection. The delivery log keeps a short excerpt of those bytes with anything unprintable replaced.
Returns what happened; never raises."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from hub.subscriptions.config import SyndicationSettings
from hub.subscriptions.retry import is_success, parse_retry_after
from hub.subscriptions.signing import webhook_headers
from hub.subscriptions.ssrf import Resolver, UnsafeTarget, check_target, pin

__all__ = ["Attempt", "DeadlineTransport", "encode_body", "make_client", "reply_excerpt", "send_webhook"]

MAX_ERROR_CHARS = 500
EXCERPT_CHARS = 200  # of a failed reply's body, kept in the delivery log


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    retry_after_s: float | None = None
    gone: bool = False  # 410: the receiver asks us to stop


# The deadline of the attempt the current thread is making (a monotonic time), read by every socket
# operation of the connections it uses. Threads, not connections: a pooled connection serves attempts
# with different deadlines.
_attempt = threading.local()


@contextmanager
def attempt_deadline(seconds: float) -> Iterator[float]:
    """Every socket operation of this thread fails with a timeout once ``seconds`` have passed."""
    previous = getattr(_attempt, "deadline", None)
    _attempt.deadline = deadline = time.monotonic() + seconds
    try:
        yield deadline
    finally:
        _attempt.deadline = previous


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    deadline: float | None = getattr(_attempt, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the attempt's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname,
                                                      _bounded(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_tcp(host, port, bounded, local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:  # pragma: no cover
        raise httpcore.ConnectError("webhooks are sent over TCP only")

    def sleep(self, seconds: float) -> None:  # pragma: no cover - httpcore's retries are not used
        self._backend.sleep(seconds)


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose sockets honour the attempt deadline."""

    def __init__(self, max_connections: int, max_keepalive_connections: int) -> None:
        super().__init__(trust_env=False)
        self._pool.close()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=5.0,
            network_backend=_DeadlineBackend(),
        )


def make_client(settings: SyndicationSettings, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
    if transport is None:
        transport = DeadlineTransport(settings.dispatch_concurrency * 2, settings.dispatch_concurrency)
    # Receivers are asked not to compress: the reply's first bytes are read as they come off the wire.
    return httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False, transport=transport,
                        headers={"user-agent": "g2b-hub-webhooks/1", "accept-encoding": "identity"})


def encode_body(payload: dict[str, Any], max_bytes: int, notice_url: str) -> bytes:
    """Compact JSON; a notice too large for one request is sent without its content, with the URL
    where the subscriber fetches it (the receiver is told by ``data.truncated``)."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    if len(body) <= max_bytes:
        return body
    data = {**payload["data"], "notice": None, "truncated": True, "notice_url": notice_url}
    return json.dumps({**payload, "data": data}, separators=(",", ":"), ensure_ascii=False).encode()


def reply_excerpt(body: bytes, limit: int = EXCERPT_CHARS) -> str:
    """At most ``limit`` printable characters of a reply: control characters (and any byte that is not
    UTF-8) become ``?``, runs of whitespace one space, so a log line stays one readable line."""
    text = body[: limit * 4].decode("utf-8", errors="replace")
    cleaned = "".join(c if c.isprintable() and c != "\ufffd" else (" " if c.isspace() else "?") for c in text)
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _read_capped(response: httpx.Response, cap: int, deadline: float) -> bytes:
    """The first ``cap`` bytes of the body as sent (compressed or not); the rest is never read. A reply
    cut short (the deadline, the connection dropped) yields what had arrived: its status is known."""
    kept = bytearray()
    try:
        for chunk in response.iter_raw(max(1, min(cap, 64 * 1024))):
            kept += chunk[: cap - len(kept)]
            if len(kept) >= cap or time.monotonic() >= deadline:
                break
    except httpx.HTTPError:
        pass
    return bytes(kept)


def send_webhook(client: httpx.Client, settings: SyndicationSettings, resolve: Resolver, url: str,
                 secrets: list[str], msg_id: str, body: bytes) -> Attempt:
    try:
        addresses = check_target(url, resolve, allow_private=settings.allow_private_targets,
                                 allow_loopback=settings.allow_loopback_targets)
    except UnsafeTarget as exc:
        return Attempt(ok=False, error=f"refused target: {exc}")
    if not secrets:
        return Attempt(ok=False, error="subscription has no valid signing secret")
    target = pin(url, addresses[0])  # connect to the address just checked, not to a fresh DNS answer
    headers = {**webhook_headers(secrets, msg_id, int(time.time()), body), "host": target.host_header}
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
    budget = settings.attempt_deadline_s
    with attempt_deadline(budget) as deadline:
        # The pool wait is bounded too: an attempt never waits for a connection past its deadline.
        timeout = httpx.Timeout(min(settings.read_timeout_s, budget), connect=min(settings.connect_timeout_s, budget),
                                pool=budget)
        try:
            with client.stream("POST", target.url, content=body, headers=headers, extensions=extensions,
                               timeout=timeout) as response:
                status = response.status_code
                # Read (up to the cap) even after a 2xx: a short reply read to its end keeps the
                # connection for the next attempt; a longer one is cut off with it.
                reply = _read_capped(response, settings.max_reply_bytes, deadline)
                if is_success(status):
                    return Attempt(ok=True, status_code=status)
                excerpt = reply_excerpt(reply)
                return Attempt(
                    ok=False, status_code=status, gone=status == 410,
                    error=f"HTTP {status}: {excerpt}" if excerpt else f"HTTP {status}",
                    retry_after_s=parse_retry_after(response.headers.get("retry-after")),
                )
        except httpx.TimeoutException as exc:
            overrun = time.monotonic() >= deadline
            return Attempt(ok=False, error=(f"deadline: no complete reply within {budget:g} s" if overrun
                                            else f"timeout: {type(exc).__name__}"))
        except httpx.HTTPError as exc:
            return Attempt(ok=False, error=reply_excerpt(f"{type(exc).__name__}: {exc}".encode(), MAX_ERROR_CHARS))
