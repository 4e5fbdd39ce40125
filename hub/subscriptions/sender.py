"""One webhook attempt: SSRF check at send time, Standard Webhooks signature, no redirects, no proxies
from the environment, and bounded in time and memory whatever the receiver does.

Attempts are coroutines on the dispatcher's event loop, sharing one ``httpx.AsyncClient``: a slow
receiver costs a suspended task, not a thread, and the connection pool is never contended across
threads. Every attempt has a total deadline (``attempt_deadline_s``) covering connect, TLS handshake,
the request, the reply's headers and what is read of its body — the task is cancelled when it passes,
so a receiver that dribbles its reply a byte at a time holds an attempt no longer than the deadline
(httpx's own read timeout is per chunk). At most ``max_reply_bytes`` of the reply are read off the wire;
the rest is discarded with the connection. The delivery log keeps a short excerpt of those bytes with
anything unprintable replaced. Name resolution for the SSRF check runs off the loop (it blocks).
Returns what happened; never raises."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from hub.subscriptions.config import SyndicationSettings
from hub.subscriptions.retry import is_success, parse_retry_after
from hub.subscriptions.signing import webhook_headers
from hub.subscriptions.ssrf import Resolver, UnsafeTarget, check_target, pin

__all__ = ["Attempt", "encode_body", "make_client", "reply_excerpt", "send_webhook"]

MAX_ERROR_CHARS = 500
EXCERPT_CHARS = 200  # of a failed reply's body, kept in the delivery log


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    retry_after_s: float | None = None
    gone: bool = False  # 410: the receiver asks us to stop


def make_client(settings: SyndicationSettings,
                transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The client of one dispatcher's event loop (use it on that loop only)."""
    timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
    if transport is None:
        limits = httpx.Limits(max_connections=settings.dispatch_concurrency * 2,
                              max_keepalive_connections=settings.dispatch_concurrency, keepalive_expiry=5.0)
        transport = httpx.AsyncHTTPTransport(trust_env=False, limits=limits)
    # Receivers are asked not to compress: the reply's first bytes are read as they come off the wire.
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False, transport=transport,
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


async def _read_capped(response: httpx.Response, cap: int, deadline: float) -> bytes:
    """The first ``cap`` bytes of the body as sent (compressed or not); the rest is never read. A reply
    cut short (the deadline, the connection dropped) yields what had arrived: its status is known."""
    kept = bytearray()
    try:
        async with asyncio.timeout_at(deadline):
            async for chunk in response.aiter_raw(max(1, min(cap, 64 * 1024))):
                kept += chunk[: cap - len(kept)]
                if len(kept) >= cap:
                    break
    except (httpx.HTTPError, TimeoutError):
        pass
    return bytes(kept)


def _is_literal(url: str) -> bool:
    try:
        ipaddress.ip_address((urlsplit(url).hostname or "").split("%", 1)[0])
    except ValueError:
        return False
    return True


async def _check(url: str, resolve: Resolver, settings: SyndicationSettings) -> list[str]:
    """:func:`check_target`; a name is resolved on a thread so the loop's other attempts go on."""
    def check() -> list[str]:
        return check_target(url, resolve, allow_private=settings.allow_private_targets,
                            allow_loopback=settings.allow_loopback_targets)

    return check() if _is_literal(url) else await asyncio.to_thread(check)


async def send_webhook(client: httpx.AsyncClient, settings: SyndicationSettings, resolve: Resolver, url: str,
                       secrets: list[str], msg_id: str, body: bytes) -> Attempt:
    try:
        addresses = await _check(url, resolve, settings)
    except UnsafeTarget as exc:
        return Attempt(ok=False, error=f"refused target: {exc}")
    if not secrets:
        return Attempt(ok=False, error="subscription has no valid signing secret")
    target = pin(url, addresses[0])  # connect to the address just checked, not to a fresh DNS answer
    headers = {**webhook_headers(secrets, msg_id, int(time.time()), body), "host": target.host_header}
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
    budget = settings.attempt_deadline_s
    deadline = asyncio.get_running_loop().time() + budget
    # The pool wait is bounded too: an attempt never waits for a connection past its deadline.
    timeout = httpx.Timeout(min(settings.read_timeout_s, budget), connect=min(settings.connect_timeout_s, budget),
                            pool=budget)
    request = client.build_request("POST", target.url, content=body, headers=headers, extensions=extensions,
                                   timeout=timeout)
    try:
        async with asyncio.timeout_at(deadline):
            response = await client.send(request, stream=True)
    except TimeoutError:
        return Attempt(ok=False, error=f"deadline: no complete reply within {budget:g} s")
    except httpx.TimeoutException as exc:
        overrun = asyncio.get_running_loop().time() >= deadline
        return Attempt(ok=False, error=(f"deadline: no complete reply within {budget:g} s" if overrun
                                        else f"timeout: {type(exc).__name__}"))
    except httpx.HTTPError as exc:
        return Attempt(ok=False, error=reply_excerpt(f"{type(exc).__name__}: {exc}".encode(), MAX_ERROR_CHARS))
    try:
        status = response.status_code
        # Read (up to the cap) even after a 2xx: a short reply read to its end keeps the connection for
        # the next attempt; a longer one is cut off with it.
        reply = await _read_capped(response, settings.max_reply_bytes, deadline)
    finally:
        await response.aclose()
    if is_success(status):
        return Attempt(ok=True, status_code=status)
    excerpt = reply_excerpt(reply)
    return Attempt(
        ok=False, status_code=status, gone=status == 410,
        error=f"HTTP {status}: {excerpt}" if excerpt else f"HTTP {status}",
        retry_after_s=parse_retry_after(response.headers.get("retry-after")),
    )
