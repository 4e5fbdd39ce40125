"""``Idempotency-Key`` semantics (IETF draft-ietf-httpapi-idempotency-key-header), per organisation.

A key names one request of one organisation. The first request with a key stores its response in the
same transaction as its effect; the same key with the same request answers that stored response again
(and changes nothing); the same key with a different request is refused with 422, because answering it
would silently drop the caller's new intent. Two concurrent first requests race on the primary key: the
loser's transaction fails and, retried, finds the winner's response. A key is remembered for a time
(``idempotency_ttl_h``); after that the same key is a new request. An organisation holds at most
``idempotency_max_keys_per_org`` unexpired keys: a first request with one more key is refused (409,
``IdempotencyKeyLimitReached``) before its effect, so a notice is never accepted without its key being
remembered. (Two concurrent first requests at the limit may both pass: the cap bounds growth, it is
not an exact quota.)

The request hash covers the method, the path and the canonical body, so reusing a key on another
endpoint counts as a different request. These are the rules only; the store is a repository on the
unit of work (``uow.idempotency``, SQL in :mod:`hub.notices.repository`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from hub.spine.errors import Conflict, Unacceptable

__all__ = [
    "IdempotencyKeyLimitReached",
    "IdempotencyKeyRaced",
    "IdempotencyKeyReused",
    "IdempotencyStore",
    "IdempotencyTicket",
    "Receipt",
    "StoredRequest",
    "check_key",
    "remember",
    "replay",
    "request_hash",
]

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII: keys end up in logs and in a varchar(255)
DEFAULT_TTL = timedelta(hours=48)


class IdempotencyKeyReused(Unacceptable):
    title = "Idempotency-Key reused"
    slug = "idempotency-key-reused"


class IdempotencyKeyLimitReached(Conflict):
    title = "Too many Idempotency-Key values"
    slug = "idempotency-key-limit"


class IdempotencyKeyRaced(Exception):
    """A concurrent request with the same key stored its answer first; this one's effect is rolled back,
    and handling it again replays that answer."""


class IdempotencyTicket(BaseModel):
    """What a command carries when the caller sent an ``Idempotency-Key``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    key: str
    request_hash: str


@dataclass(frozen=True)
class Receipt:
    """A write's HTTP answer, as stored for replays: status, JSON body and Location."""

    status_code: int
    body: dict[str, Any]
    location: str | None = None
    replayed: bool = False


@dataclass(frozen=True)
class StoredRequest:
    """What the store remembers of a key: the request it named, the answer, and when."""

    request_hash: str
    receipt: Receipt
    created_at: datetime


class IdempotencyStore(Protocol):
    def get(self, org_id: str, key: str) -> StoredRequest | None: ...
    def put(self, org_id: str, key: str, stored: StoredRequest) -> None:
        """Raises IdempotencyKeyRaced when another transaction stored the key first."""
        ...
    def forget(self, org_id: str, key: str) -> None: ...
    def count_since(self, org_id: str, since: datetime) -> int:
        """How many keys of ``org_id`` were stored at or after ``since`` (the unexpired ones)."""
        ...


def check_key(key: str) -> str | None:
    """A problem message for a malformed key, else None."""
    return None if _KEY.match(key) else "expected 1-255 visible ASCII characters"


def request_hash(method: str, path: str, body: bytes | Any) -> str:
    """SHA-256 of method, path and body; a non-bytes body is hashed in canonical JSON form, so a retry
    that re-serialises the same document differently still counts as the same request."""
    raw = body if isinstance(body, bytes) else json.dumps(body, sort_keys=True, separators=(",", ":"),
                                                           ensure_ascii=False, default=str).encode()
    digest = hashlib.sha256()
    for part in (method.upper().encode(), b"\n", path.encode(), b"\n", raw):
        digest.update(part)
    return digest.hexdigest()


def replay(store: IdempotencyStore, org_id: str, ticket: IdempotencyTicket | None,
           ttl: timedelta = DEFAULT_TTL, max_keys: int | None = None) -> Receipt | None:
    """The stored answer to a repeated request; None for a first request (or one whose key expired,
    which is forgotten now so the key is free again); raises on a reused key, and on a first request
    when the organisation already holds ``max_keys`` unexpired keys."""
    if ticket is None:
        return None
    found = store.get(org_id, ticket.key)
    if found is not None and found.created_at < datetime.now(UTC) - ttl:
        store.forget(org_id, ticket.key)
        found = None
    if found is None:
        _admit(store, org_id, ticket, ttl, max_keys)
        return None
    if found.request_hash != ticket.request_hash:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {ticket.key!r} was already used for a different request; use a new key"
        )
    return replace(found.receipt, replayed=True)


def _admit(store: IdempotencyStore, org_id: str, ticket: IdempotencyTicket, ttl: timedelta,
           max_keys: int | None) -> None:
    if max_keys is None:
        return
    held = store.count_since(org_id, datetime.now(UTC) - ttl)
    if held >= max_keys:
        hours = ttl.total_seconds() / 3600
        raise IdempotencyKeyLimitReached(
            f"Idempotency-Key {ticket.key!r} refused: this organisation already holds {held} unexpired "
            f"Idempotency-Key values (the limit is {max_keys}; each is kept {hours:g} h). Nothing was stored; "
            "retry with a key once older ones expire, or send the request without an Idempotency-Key"
        )


def remember(store: IdempotencyStore, org_id: str, ticket: IdempotencyTicket | None, receipt: Receipt) -> Receipt:
    if ticket is not None:
        store.put(org_id, ticket.key, StoredRequest(ticket.request_hash, receipt, datetime.now(UTC)))
    return receipt
