"""Events of the register-once flow. ``org_id`` is the supplier's owning organisation (the audit
trail's subject) and ``actor_org_id`` whoever caused it (None for the hub's own scheduler)."""

from __future__ import annotations

from typing import Any

from hub.spine.messages import Event

__all__ = [
    "ControlChallengeIssued",
    "ControlProofRefused",
    "ControlProven",
    "CredentialChanged",
    "CredentialExpired",
    "CredentialFetchFailed",
    "CredentialFetchRetried",
    "CredentialVerified",
    "IdentifierClaimRefused",
    "IdentifierClaimReleased",
    "IdentifierClaimTransferred",
    "IdentifierClaimed",
    "SupplierAccessGranted",
    "SupplierAccessRevoked",
    "SupplierRegistered",
]


class SupplierRegistered(Event):
    supplier_id: str
    org_id: str
    identifiers: dict[str, str]
    systems: list[str]
    consent_text_version: str
    actor_org_id: str | None = None


class _CredentialEvent(Event):
    """Something that happened to one credential of one supplier."""

    supplier_id: str
    org_id: str
    credential_id: str
    system: str
    type: str
    subject: str


class CredentialVerified(_CredentialEvent):
    """A credential seen for the first time."""

    status: str
    valid_from: str | None
    valid_until: str | None
    version_id: int
    raw_sha256: str
    actor_org_id: str | None = None


class CredentialChanged(_CredentialEvent):
    """The source now says something else (status, or a validity it states): before and after."""

    before: dict[str, Any]
    after: dict[str, Any]
    version_id: int | None
    actor_org_id: str | None = None


class CredentialExpired(_CredentialEvent):
    previous_status: str
    valid_until: str | None
    actor_org_id: str | None = None


class CredentialFetchFailed(Event):
    supplier_id: str
    org_id: str
    fetch_id: str
    system: str
    outcome: str  # transient | circuit_open | deadline | not_found | permanent | misconfigured
    error_code: str
    attempts: int
    state: str
    next_attempt_at: str | None
    actor_org_id: str | None = None
    raw_sha256: str | None = None  # an unreadable reply's bytes, kept as evidence


class CredentialFetchRetried(Event):
    """An operator put a slot back to ``pending`` (the cause of its failure is fixed): who and why."""

    supplier_id: str
    org_id: str
    fetch_id: str
    system: str
    previous_state: str
    previous_error: str | None
    reason: str
    requested_by: str  # the operator's key id, or ``cli:<user>``
    actor_org_id: str | None = None


class SupplierAccessGranted(Event):
    supplier_id: str
    org_id: str
    institution_org_id: str
    actor_org_id: str | None = None


class SupplierAccessRevoked(Event):
    supplier_id: str
    org_id: str
    institution_org_id: str
    actor_org_id: str | None = None


# -- proof of control: ``org_id`` is the organisation the identifier is (or was) claimed by ----------


class IdentifierClaimed(Event):
    supplier_id: str
    org_id: str
    scheme: str
    identifier: str
    actor_org_id: str | None = None


class IdentifierClaimRefused(Event):
    """A registration refused because another organisation holds the identifier. ``org_id`` is the
    refused claimant: the holder is not named, so the claimant's own audit trail does not reveal it."""

    org_id: str
    scheme: str
    identifier: str
    actor_org_id: str | None = None


class ControlChallengeIssued(Event):
    supplier_id: str
    org_id: str
    challenge_id: str
    scheme: str
    identifier: str
    expires_at: str
    actor_org_id: str | None = None


class ControlProven(Event):
    supplier_id: str
    org_id: str
    scheme: str
    identifier: str
    method: str
    proof_id: str
    evidence: dict[str, Any]
    actor_org_id: str | None = None


class ControlProofRefused(Event):
    supplier_id: str
    org_id: str
    scheme: str
    identifier: str
    method: str
    proof_id: str
    field: str | None
    reason: str
    actor_org_id: str | None = None


class IdentifierClaimReleased(Event):
    org_id: str
    scheme: str
    identifier: str
    reason: str
    was_proven: bool
    actor_org_id: str | None = None


class IdentifierClaimTransferred(Event):
    org_id: str
    to_org_id: str
    scheme: str
    identifier: str
    reason: str
    actor_org_id: str | None = None
