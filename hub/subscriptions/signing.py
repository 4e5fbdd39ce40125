"""Standard Webhooks v1 signatures: ``v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>``.

Several secrets sign at once during a rotation's overlap window (space-separated signatures), so a
receiver that still holds the old secret, or already the new one, verifies every delivery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Iterable

__all__ = ["SECRET_PREFIX", "new_secret", "signature_header", "webhook_headers"]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix, not a secret


def new_secret(nbytes: int = 32) -> str:
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(nbytes)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def _sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(_sign(secret, msg_id, timestamp, body) for secret in secrets)


def webhook_headers(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
    }
