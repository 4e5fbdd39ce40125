"""HTTP representation metadata shared by routes that serve stored bytes."""

from __future__ import annotations

import base64

__all__ = ["repr_digest"]


def repr_digest(sha256_hex: str) -> str:
    """RFC 9530 ``Repr-Digest`` for bytes whose SHA-256 is known in hex: ``sha-256=:<base64>:``
    (a structured-field dictionary whose value is a byte sequence)."""
    return f"sha-256=:{base64.b64encode(bytes.fromhex(sha256_hex)).decode('ascii')}:"
