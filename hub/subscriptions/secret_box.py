"""Webhook signing secrets at rest. The hub must keep them readable (it signs with them), so they are
encrypted, not hashed: Fernet (AES-128-CBC + HMAC-SHA256) under keys from ``syndication.secret_keys``.
The first key encrypts; every key decrypts, so keys rotate by putting a new one first.

Without keys (the one-machine default) secrets are stored as they are, and the hub says so at start."""

from __future__ import annotations

import logging
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["SecretBox", "SecretsUnreadable"]

log = logging.getLogger(__name__)


class SecretsUnreadable(RuntimeError):
    """A stored secret was encrypted under a key this hub no longer has."""


class SecretBox:
    def __init__(self, keys: list[str]) -> None:
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys]) if keys else None

    @property
    def encrypts(self) -> bool:
        return self._fernet is not None

    def seal(self, secret: str) -> dict[str, Any]:
        """The stored form of a new secret: ``{"enc": token}``, or ``{"secret": …}`` without keys."""
        if self._fernet is None:
            return {"secret": secret}
        return {"enc": self._fernet.encrypt(secret.encode()).decode()}

    def open(self, item: dict[str, Any]) -> str:
        if "enc" not in item:
            return str(item["secret"])
        if self._fernet is None:
            raise SecretsUnreadable("a webhook secret is encrypted but syndication.secret_keys is not set")
        try:
            return self._fernet.decrypt(str(item["enc"]).encode()).decode()
        except InvalidToken as exc:
            raise SecretsUnreadable("a webhook secret was encrypted under a key not in syndication.secret_keys"
                                    ) from exc
