"""One webhook attempt: SSRF check at send time, Standard Webhooks signature, bounded timeouts, no
redirects, no proxies from the environment. Returns what happened; never raises."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from hub.subscriptions.config import SyndicationSettings
from hub.subscriptions.retry import is_success, parse_retry_after
from hub.subscriptions.signing import webhook_headers
from hub.subscriptions.ssrf import Resolver, UnsafeTarget, check_target, pin

__all__ = ["Attempt", "encode_body", "make_client", "send_webhook"]

MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    retry_after_s: float | None = None
    gone: bool = False  # 410: the receiver asks us to stop


def make_client(settings: SyndicationSettings, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
    limits = httpx.Limits(max_connections=settings.dispatch_concurrency * 2,
                          max_keepalive_connections=settings.dispatch_concurrency)
    return httpx.Client(timeout=timeout, limits=limits, follow_redirects=False, trust_env=False,
                        transport=transport, headers={"user-agent": "g2b-hub-webhooks/1"})


def encode_body(payload: dict[str, Any], max_bytes: int, notice_url: str) -> bytes:
    """Compact JSON; a notice too large for one request is sent without its content, with the URL
    where the subscriber fetches it (the receiver is told by ``data.truncated``)."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    if len(body) <= max_bytes:
        return body
    data = {**payload["data"], "notice": None, "truncated": True, "notice_url": notice_url}
    return json.dumps({**payload, "data": data}, separators=(",", ":"), ensure_ascii=False).encode()


def send_webhook(client: httpx.Client, settings: SyndicationSettings, resolve: Resolver, url: str,
                 secrets: list[str], msg_id: str, body: bytes) -> Attempt:
    try:
        addresses = check_target(url, resolve, allow_private=settings.allow_private_targets)
    except UnsafeTarget as exc:
        return Attempt(ok=False, error=f"refused target: {exc}")
    if not secrets:
        return Attempt(ok=False, error="subscription has no valid signing secret")
    target = pin(url, addresses[0])  # connect to the address just checked, not to a fresh DNS answer
    headers = {**webhook_headers(secrets, msg_id, int(time.time()), body), "host": target.host_header}
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
    try:
        response = client.post(target.url, content=body, headers=headers, extensions=extensions)
    except httpx.TimeoutException as exc:
        return Attempt(ok=False, error=f"timeout: {type(exc).__name__}")
    except httpx.HTTPError as exc:
        return Attempt(ok=False, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
    status = response.status_code
    if is_success(status):
        return Attempt(ok=True, status_code=status)
    return Attempt(
        ok=False, status_code=status, gone=status == 410,
        error=f"HTTP {status}: {response.text[:200]}",
        retry_after_s=parse_retry_after(response.headers.get("retry-after")),
    )
