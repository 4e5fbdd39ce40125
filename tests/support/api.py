"""How tests address the HTTP API: its prefix, spelt out rather than imported so a changed prefix breaks
the tests as it would break clients, and the header that presents an API key."""

from __future__ import annotations

__all__ = ["API", "bearer"]

API = "/api/v1"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
