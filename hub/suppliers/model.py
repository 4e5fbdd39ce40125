"""The register-once domain: a supplier, one fetch slot per applicable upstream system, the credentials
each fetch yields and every version of them. Plain Python; the rules that decide *when* to fetch again
and *whether* something changed live here as pure functions so unit tests drive them without I/O.

Why a slot per system: before the first answer nobody knows which credentials a system will report (a
registry may hold three certificates or none), yet the hub must remember that it still owes a fetch,
when to try again and why the last try failed. The slot carries that; credentials appear under it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

__all__ = [
    "ABSENT",
    "EXPIRED",
    "ControlChallenge",
    "ControlMethod",
    "ControlProof",
    "Credential",
    "CredentialFetch",
    "CredentialVersion",
    "FetchState",
    "IdentifierClaim",
    "Supplier",
    "SupplierGrant",
    "challenge_refusal",
    "challenge_text",
    "identity_key",
    "next_refresh_at",
    "snapshot_changed",
    "unproven_identifiers",
]

# Hub-assigned credential statuses (every other status is the source's own word).
EXPIRED = "expired"  # valid_until passed and no refresh succeeded
ABSENT = "absent"  # the source no longer reports it (a certificate removed from the registry)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class FetchState(StrEnum):
    PENDING = "pending"  # not fetched successfully yet; retried with backoff
    VERIFIED = "verified"  # fetched and recorded; refreshed before it goes stale
    FAILED_PERMANENTLY = "failed_permanently"  # the source refuses the identifier; asking again won't help
    NOT_FOUND = "not_found"  # the source does not know the identifier; re-checked rarely


@dataclass
class Supplier:
    id: str
    org_id: str
    identifiers: dict[str, str]
    identity_key: str
    consent_given_at: datetime
    consent_text_version: str
    legal_name: str | None = None
    created_at: datetime = field(default_factory=utcnow)


@dataclass
class SupplierGrant:
    """An institution the supplier allows to read its credentials."""

    supplier_id: str
    org_id: str
    granted_at: datetime
    granted_by: str


@dataclass
class CredentialFetch:
    """One (supplier, system) slot. ``next_attempt_at`` is when it is next due whatever the state:
    a retry for ``pending``, a refresh for ``verified``, a re-check for ``not_found``."""

    id: str
    supplier_id: str
    system: str
    scheme: str
    identifier: str
    state: str = FetchState.PENDING.value
    attempts: int = 0  # attempts since the round began (after the last success), a success included
    next_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    claimed_until: datetime | None = None
    claim_token: str | None = None
    created_at: datetime = field(default_factory=utcnow)

    def claim(self, token: str, now: datetime, lease: timedelta) -> None:
        self.claim_token = token
        self.claimed_until = now + lease

    def release(self) -> None:
        self.claim_token = None
        self.claimed_until = None


@dataclass
class Credential:
    """The current state of one credential: (supplier, system, type, subject, record key) is unique."""

    id: str
    supplier_id: str
    fetch_id: str
    system: str
    type: str
    subject: str
    record_key: str
    status: str
    attributes: dict[str, Any]
    valid_from: datetime | None
    valid_until: datetime | None
    fetched_at: datetime
    current_version_id: int | None = None
    expired_at: datetime | None = None
    standing: str = "unknown"  # of the source's status (mappings.credentials.Standing), never hub-assigned
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass
class CredentialVersion:
    """Every fetched version, never overwritten: what the source said, when, and the bytes (by hash)."""

    credential_id: str
    fetched_at: datetime
    status: str
    attributes: dict[str, Any]
    valid_from: datetime | None
    valid_until: datetime | None
    raw_sha256: str
    response_sha256: str
    request_sha256: str | None
    evidence_pointer: str
    change: str  # new | changed | unchanged
    id: int | None = None
    standing: str = "unknown"


# -- rules --------------------------------------------------------------------------------------------


def identity_key(identifiers: dict[str, str]) -> str:
    """The same identifier set hashes the same, whatever the key order: the idempotency key."""
    canonical = json.dumps(sorted(identifiers.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def next_refresh_at(
    now: datetime,
    validities: list[tuple[datetime | None, datetime | None]],
    *,
    margin_s: float,
    margin_ratio: float,
    default_s: float,
) -> datetime:
    """When a verified slot is due again: ahead of the earliest still-running ``valid_until`` by the
    larger of a fixed margin and a fraction of that validity; never later than ``default_s`` from now
    (sources change without notice). Inside the margin already (a certificate fetched weeks before it
    ends), after half the time left, so an almost-expired credential is asked about a few more times
    before it runs out instead of on every scheduler run."""
    latest = now + timedelta(seconds=default_s)
    due = latest
    for valid_from, valid_until in validities:
        if valid_until is None or valid_until <= now:
            continue
        length = (valid_until - valid_from).total_seconds() if valid_from is not None else 0.0
        margin = max(margin_s, margin_ratio * max(0.0, length))
        floor = now + (valid_until - now) / 2
        due = min(due, max(valid_until - timedelta(seconds=margin), floor))
    return due


@dataclass(frozen=True)
class Snapshot:
    """What change detection compares: the source's status and the validity it states."""

    status: str
    valid_from: datetime | None
    valid_until: datetime | None
    fetched_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "valid_from": _iso(self.valid_from),
            "valid_until": _iso(self.valid_until),
            "fetched_at": _iso(self.fetched_at),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _moved(before: datetime | None, after: datetime | None, before_at: datetime, after_at: datetime) -> bool:
    """A validity bound changed at the source. A bound derived from the fetch time (a tax status good for
    seven days from when it was asked) moves with every fetch by exactly the fetch interval; that is
    not a change, so a bound counts as changed only if neither its absolute value nor its offset
    from the fetch time stayed the same."""
    if (before is None) != (after is None):
        return True
    if before is None or after is None:
        return False
    return before != after and (before - before_at) != (after - after_at)


def snapshot_changed(before: Snapshot, after: Snapshot) -> bool:
    return (
        before.status != after.status
        or _moved(before.valid_from, after.valid_from, before.fetched_at, after.fetched_at)
        or _moved(before.valid_until, after.valid_until, before.fetched_at, after.fetched_at)
    )


# -- proof of control -----------------------------------------------------------------------------------


class ControlMethod(StrEnum):
    X509 = "x509"  # a signature over a hub challenge with a certificate naming the identifier
    MANUAL = "manual"  # an operator checked by hand and recorded the evidence


@dataclass
class IdentifierClaim:
    """One identifier (scheme, normalised value) belongs to one organisation at a time. Until
    ``proven_at`` is set, credentials fetched for it are the owner's to see and nobody else's, and
    eligibility answers ``unknown`` for them."""

    scheme: str
    identifier: str
    org_id: str
    claimed_at: datetime
    proven_at: datetime | None = None
    proof_method: str | None = None
    proof_id: str | None = None

    @property
    def proven(self) -> bool:
        return self.proven_at is not None

    def prove(self, method: str, proof_id: str, now: datetime) -> None:
        self.proven_at, self.proof_method, self.proof_id = now, method, proof_id

    def hand_over(self, org_id: str, now: datetime) -> None:
        """A transfer: the new holder starts unproven, whatever the old one had shown."""
        self.org_id, self.claimed_at = org_id, now
        self.proven_at = self.proof_method = self.proof_id = None


@dataclass
class ControlChallenge:
    """Bytes the owner signs to show it holds a key certified for the identifier: single use, short-lived."""

    id: str
    supplier_id: str
    org_id: str
    scheme: str
    identifier: str
    nonce: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None

    @property
    def text(self) -> str:
        return challenge_text(self)


@dataclass
class ControlProof:
    """Every proof attempt, accepted or refused, with what it rested on (certificate fingerprint,
    subject, issuer; or the operator's reference)."""

    id: str
    supplier_id: str
    org_id: str
    scheme: str
    identifier: str
    method: str
    accepted: bool
    reason: str
    evidence: dict[str, Any]
    recorded_by: str
    recorded_at: datetime
    challenge_id: str | None = None
    failed_field: str | None = None  # the part of a refused proof that failed


def challenge_text(challenge: ControlChallenge) -> str:
    """What is signed, as UTF-8: says which hub, supplier and identifier, so a signature made for one
    cannot be replayed for another."""
    return (
        "g2b-hub proof of control\n"
        f"challenge: {challenge.id}\n"
        f"supplier: {challenge.supplier_id}\n"
        f"identifier: {challenge.scheme}:{challenge.identifier}\n"
        f"nonce: {challenge.nonce}\n"
        f"expires: {challenge.expires_at.isoformat()}\n"
    )


def challenge_refusal(challenge: ControlChallenge, now: datetime) -> str | None:
    """Why a challenge cannot be answered any more (None if it still can)."""
    if challenge.used_at is not None:
        return "this challenge was already answered; ask for a new one"
    if now >= challenge.expires_at:
        return "this challenge has expired; ask for a new one"
    return None


def unproven_identifiers(
    org_id: str, identifiers: dict[str, str], claims: dict[tuple[str, str], IdentifierClaim]
) -> set[tuple[str, str]]:
    """The (scheme, identifier) pairs of a supplier whose control ``org_id`` has not proven: unclaimed,
    claimed by someone else (released or transferred away), or claimed but not proven."""
    found = set()
    for scheme, value in identifiers.items():
        claim = claims.get((scheme, value))
        if claim is None or claim.org_id != org_id or not claim.proven:
            found.add((scheme, value))
    return found
