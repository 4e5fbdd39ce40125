"""``Idempotency-Key`` semantics (IETF draft-ietf-httpapi-idempotency-key-header), per organisation.

A key names one request of one organisation. The first request with a key stores its response in the
same transaction as its effect; the same key with the same request answers that stored response again
(and changes nothing); the same key with a different request is refused with 422, because answering it
would silently drop the caller's new intent. Two concurrent first requests race on the primary key: the
loser's transaction fails and, retried, finds the winner's response.

The request hash covers the method, the path and the canonical body, so reusing a key on another
endpoint counts as a different request.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from hub.notices.tables import IdempotencyRow
from hub.spine.errors import ServiceError

__all__ = [
    "IdempotencyKeyReused",
    "IdempotencyStore",
    "IdempotencyTicket",
    "InMemoryIdempotencyStore",
    "Receipt",
    "SqlIdempotencyStore",
    "check_key",
    "remember",
    "replay",
    "request_hash",
]

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII: keys end up in logs and in a varchar(255)


class IdempotencyKeyReused(ServiceError):
    status = 422
    title = "Idempotency-Key reused"
    slug = "idempotency-key-reused"


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


class IdempotencyStore(Protocol):
    def get(self, org_id: str, key: str) -> tuple[str, Receipt] | None: ...

    def put(self, org_id: str, key: str, request_hash: str, receipt: Receipt) -> None: ...


def replay(store: IdempotencyStore, org_id: str, ticket: IdempotencyTicket | None) -> Receipt | None:
    """The stored answer to a repeated request; None for a first request; raises on a reused key."""
    if ticket is None:
        return None
    found = store.get(org_id, ticket.key)
    if found is None:
        return None
    stored_hash, receipt = found
    if stored_hash != ticket.request_hash:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {ticket.key!r} was already used for a different request; use a new key"
        )
    return replace(receipt, replayed=True)


def remember(store: IdempotencyStore, org_id: str, ticket: IdempotencyTicket | None, receipt: Receipt) -> Receipt:
    if ticket is not None:
        store.put(org_id, ticket.key, ticket.request_hash, receipt)
    return receipt


class InMemoryIdempotencyStore:
    """For unit tests of the semantics; the SQL store is the same contract over a table."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], tuple[str, Receipt]] = {}

    def get(self, org_id: str, key: str) -> tuple[str, Receipt] | None:
        return self.rows.get((org_id, key))

    def put(self, org_id: str, key: str, request_hash: str, receipt: Receipt) -> None:
        if (org_id, key) in self.rows:
            raise KeyError(f"duplicate idempotency key {key!r}")  # the table's primary key does the same
        self.rows[(org_id, key)] = (request_hash, receipt)


class SqlIdempotencyStore:
    def __init__(self, session: Session, ttl: timedelta = timedelta(hours=48)) -> None:
        self.session = session
        self.ttl = ttl

    def get(self, org_id: str, key: str) -> tuple[str, Receipt] | None:
        row = self.session.get(IdempotencyRow, (org_id, key))
        if row is None:
            return None
        if row.created_at < datetime.now(UTC) - self.ttl:  # expired: forget it now, the key is free again
            self.session.delete(row)
            self.session.flush()
            return None
        return row.request_hash, Receipt(status_code=row.status_code, body=dict(row.body), location=row.location)

    def put(self, org_id: str, key: str, request_hash: str, receipt: Receipt) -> None:
        self.session.add(
            IdempotencyRow(
                org_id=org_id,
                key=key,
                request_hash=request_hash,
                status_code=receipt.status_code,
                body=receipt.body,
                location=receipt.location,
                created_at=datetime.now(UTC),
            )
        )


def purge_expired(session_factory: sessionmaker[Session], ttl: timedelta) -> int:
    """Delete remembered keys older than ``ttl`` (a worker's periodic job; safe on several workers)."""
    with session_factory() as session:
        result = session.execute(delete(IdempotencyRow).where(IdempotencyRow.created_at < datetime.now(UTC) - ttl))
        session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
