"""Handlers of suppliers, credentials and grants.

No handler calls an upstream: registration commits the supplier with its fetch slots claimed by the
registering request, the fetch runs outside any transaction, and its outcomes come back as
``RecordCredentialFetches``. Every event of the flow also lands in the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from hub.organisations.model import OrgKind
from hub.spine.audit import record_audit_entry
from hub.spine.errors import Conflict, NotFound, Rejected
from hub.spine.messages import Command, Event
from hub.suppliers import commands, control_handlers, events
from hub.suppliers.config import SupplierSettings
from hub.suppliers.identifiers import identifier_problems, rejection
from hub.suppliers.model import (
    EXPIRED,
    CredentialFetch,
    FetchState,
    Supplier,
    SupplierGrant,
    identity_key,
    new_id,
    utcnow,
)
from hub.suppliers.recording import record_outcome
from hub.suppliers.repository import SupplierRepository, SuppliersUnitOfWork

__all__ = ["COMMAND_HANDLERS", "EVENT_HANDLERS", "Registration"]


class Registration:
    """What ``RegisterSupplier`` returns: the supplier, its claimed slots, and whether it is new."""

    def __init__(self, supplier: Supplier, claimed: list[CredentialFetch], created: bool) -> None:
        self.supplier = supplier
        self.claimed = claimed
        self.created = created


def register_supplier(
    cmd: commands.RegisterSupplier, uow: SuppliersUnitOfWork, supplier_settings: SupplierSettings
) -> Registration:
    identifiers, problems = identifier_problems(cmd.identifiers)
    if not cmd.consent:
        problems.insert(0, ("consent", commands.CONSENT_REQUIRED))
    if problems:
        raise rejection(problems)
    repo = uow.suppliers
    key = identity_key(identifiers)
    existing = repo.find_by_identity(cmd.org_id, key)
    now = utcnow()
    if existing is not None:
        # Idempotent: the same org registering the same identifiers gets its existing supplier back
        # (and takes again any claim an operator released meanwhile, unless another org holds it now).
        control_handlers.take_claims(uow, cmd.org_id, existing.id, identifiers, cmd.actor_org_id, now)
        return Registration(existing, [], created=False)
    supplier_id = new_id()
    # An identifier belongs to one organisation at a time: IdentifierTaken (409) if another holds it.
    control_handlers.take_claims(uow, cmd.org_id, supplier_id, identifiers, cmd.actor_org_id, now)
    supplier = Supplier(
        id=supplier_id, org_id=cmd.org_id, identifiers=identifiers, identity_key=key, consent_given_at=now,
        consent_text_version=supplier_settings.consent.text_version,
        legal_name=(cmd.legal_name or "").strip() or None, created_at=now,
    )
    repo.add(supplier)
    lease = timedelta(seconds=supplier_settings.fetch.lease_s)
    slots: list[CredentialFetch] = []
    for system, scheme, value in supplier_settings.systems_for(identifiers):
        slot = CredentialFetch(id=new_id(), supplier_id=supplier.id, system=system, scheme=scheme,
                               identifier=value, next_attempt_at=now, created_at=now)
        slot.claim(cmd.claim_token, now, lease)
        slots.append(slot)
    repo.add_fetches(slots)
    uow.publish(events.SupplierRegistered(
        supplier_id=supplier.id, org_id=supplier.org_id, identifiers=identifiers,
        systems=sorted({s.system for s in slots}), consent_text_version=supplier.consent_text_version,
        actor_org_id=cmd.actor_org_id,
    ))
    return Registration(supplier, slots, created=True)


def record_credential_fetches(
    cmd: commands.RecordCredentialFetches, uow: SuppliersUnitOfWork, supplier_settings: SupplierSettings
) -> dict[str, str | None]:
    now = cmd.now or utcnow()
    return {
        o.fetch_id: record_outcome(o, uow, supplier_settings, now, cmd.actor_org_id) for o in cmd.outcomes
    }


def claim_credential_fetches(
    cmd: commands.ClaimCredentialFetches, uow: SuppliersUnitOfWork, supplier_settings: SupplierSettings
) -> list[CredentialFetch]:
    now = cmd.now or utcnow()
    lease = timedelta(seconds=supplier_settings.fetch.lease_s)
    return uow.suppliers.claim(cmd.claim_token, now, lease, cmd.limit, cmd.supplier_id, cmd.force)


_RETRYABLE_STATES = frozenset({FetchState.FAILED_PERMANENTLY.value, FetchState.NOT_FOUND.value,
                               FetchState.PENDING.value})


def retry_credential_fetches(cmd: commands.RetryCredentialFetches, uow: SuppliersUnitOfWork) -> list[CredentialFetch]:
    """Back to ``pending`` with a fresh schedule (attempts 0, due now); the scheduler fetches them on its
    next run. A verified slot is refused (a refresh asks again), and so is one being fetched right now."""
    reason = cmd.reason.strip()
    if not reason:
        raise Rejected("reason", "say why the slot is retried (what was fixed)")
    repo = uow.suppliers
    supplier = repo.get(cmd.supplier_id)
    if supplier is None:
        raise NotFound("supplier", cmd.supplier_id)
    now = cmd.now or utcnow()
    slots = repo.fetches_of(supplier.id)
    targeted = cmd.fetch_id is not None or cmd.system is not None
    if cmd.fetch_id is not None:
        slots = [s for s in slots if s.id == cmd.fetch_id]
    if cmd.system is not None:
        slots = [s for s in slots if s.system == cmd.system]
    if not slots:
        raise NotFound("fetch", cmd.fetch_id or cmd.system or supplier.id)
    busy = [s for s in slots if s.claimed_until is not None and s.claimed_until > now]
    chosen = [s for s in slots if s.state in _RETRYABLE_STATES and s not in busy]
    if targeted and (busy or len(chosen) != len(slots)):
        slot = slots[0]
        why = "is being fetched right now" if busy else f"is {slot.state}; ask for a refresh instead"
        raise Conflict(f"the {slot.system} slot of supplier {supplier.id} {why}")
    if not chosen:
        raise Conflict(f"supplier {supplier.id} has no failed, not-found or pending slot to retry")
    for slot in chosen:
        previous_state, previous_error = slot.state, slot.last_error
        slot.state, slot.attempts, slot.next_attempt_at = FetchState.PENDING.value, 0, now
        uow.publish(events.CredentialFetchRetried(
            supplier_id=supplier.id, org_id=supplier.org_id, fetch_id=slot.id, system=slot.system,
            previous_state=previous_state, previous_error=previous_error, reason=reason[:500],
            requested_by=cmd.requested_by, actor_org_id=cmd.actor_org_id,
        ))
    return chosen


def retry_failed_fetches_of_system(
    cmd: commands.RetryFailedFetchesOfSystem, uow: SuppliersUnitOfWork
) -> list[CredentialFetch]:
    """Every slot of one system the hub gave up on back to ``pending``, due now (the fix was the hub's:
    a key set, a mapping corrected). A slot being fetched right now is left alone; each one retried
    is audited like a per-supplier retry."""
    reason = cmd.reason.strip()
    if not reason:
        raise Rejected("reason", "say why the slots are retried (what was fixed)")
    states = [FetchState.FAILED_PERMANENTLY.value] + ([FetchState.NOT_FOUND.value] if cmd.include_not_found else [])
    repo = uow.suppliers
    now = cmd.now or utcnow()
    owners: dict[str, str] = {}
    chosen: list[CredentialFetch] = []
    for slot in repo.fetches_in_state(cmd.system, states, cmd.limit):
        if slot.claimed_until is not None and slot.claimed_until > now:
            continue
        if slot.supplier_id not in owners:
            supplier = repo.get(slot.supplier_id)
            assert supplier is not None
            owners[slot.supplier_id] = supplier.org_id
        previous_state, previous_error = slot.state, slot.last_error
        slot.state, slot.attempts, slot.next_attempt_at = FetchState.PENDING.value, 0, now
        chosen.append(slot)
        uow.publish(events.CredentialFetchRetried(
            supplier_id=slot.supplier_id, org_id=owners[slot.supplier_id], fetch_id=slot.id, system=slot.system,
            previous_state=previous_state, previous_error=previous_error, reason=reason[:500],
            requested_by=cmd.requested_by, actor_org_id=cmd.actor_org_id,
        ))
    return chosen


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def expire_credentials(cmd: commands.ExpireCredentials, uow: SuppliersUnitOfWork) -> int:
    repo = uow.suppliers
    now = cmd.now or utcnow()
    expiring = repo.expiring(now, cmd.limit)
    owners: dict[str, str] = {}
    for credential in expiring:
        if credential.supplier_id not in owners:
            supplier = repo.get(credential.supplier_id)
            assert supplier is not None
            owners[credential.supplier_id] = supplier.org_id
        previous = credential.status
        credential.status, credential.expired_at, credential.updated_at = EXPIRED, now, now
        uow.publish(events.CredentialExpired(
            supplier_id=credential.supplier_id, org_id=owners[credential.supplier_id],
            credential_id=credential.id, system=credential.system, type=credential.type,
            subject=credential.subject, previous_status=previous, valid_until=_iso(credential.valid_until),
        ))
    return len(expiring)


def _owned_supplier(repo: SupplierRepository, supplier_id: str, actor_org_id: str) -> Supplier:
    supplier = repo.get(supplier_id)
    if supplier is None or supplier.org_id != actor_org_id:
        raise NotFound("supplier", supplier_id)
    return supplier


def grant_supplier_access(cmd: commands.GrantSupplierAccess, uow: SuppliersUnitOfWork) -> SupplierGrant:
    repo = uow.suppliers
    supplier = _owned_supplier(repo, cmd.supplier_id, cmd.actor_org_id)
    institution = uow.organisations.get(cmd.institution_org_id)
    if institution is None or institution.kind != OrgKind.INSTITUTION:
        raise NotFound("institution", cmd.institution_org_id)
    existing = repo.grant(supplier.id, institution.id)
    if existing is not None:
        return existing
    grant = SupplierGrant(supplier_id=supplier.id, org_id=institution.id, granted_at=utcnow(),
                          granted_by=cmd.actor_org_id)
    repo.add_grant(grant)
    uow.publish(events.SupplierAccessGranted(supplier_id=supplier.id, org_id=supplier.org_id,
                                             institution_org_id=institution.id, actor_org_id=cmd.actor_org_id))
    return grant


def revoke_supplier_access(cmd: commands.RevokeSupplierAccess, uow: SuppliersUnitOfWork) -> bool:
    repo = uow.suppliers
    supplier = _owned_supplier(repo, cmd.supplier_id, cmd.actor_org_id)
    removed = repo.revoke(supplier.id, cmd.institution_org_id)
    if removed:
        uow.publish(events.SupplierAccessRevoked(supplier_id=supplier.id, org_id=supplier.org_id,
                                                 institution_org_id=cmd.institution_org_id,
                                                 actor_org_id=cmd.actor_org_id))
    return removed


COMMAND_HANDLERS: dict[type[Command], Callable[..., Any]] = {
    commands.RegisterSupplier: register_supplier,
    commands.RecordCredentialFetches: record_credential_fetches,
    commands.ClaimCredentialFetches: claim_credential_fetches,
    commands.ExpireCredentials: expire_credentials,
    commands.RetryCredentialFetches: retry_credential_fetches,
    commands.RetryFailedFetchesOfSystem: retry_failed_fetches_of_system,
    commands.GrantSupplierAccess: grant_supplier_access,
    commands.RevokeSupplierAccess: revoke_supplier_access,
    commands.RecordClaimRefusal: control_handlers.record_claim_refusal,
    commands.RequestControlChallenge: control_handlers.request_control_challenge,
    commands.SubmitControlProof: control_handlers.submit_control_proof,
    commands.ApproveControlManually: control_handlers.approve_control_manually,
    commands.ReleaseIdentifierClaim: control_handlers.release_identifier_claim,
    commands.TransferIdentifierClaim: control_handlers.transfer_identifier_claim,
}

EVENT_HANDLERS: dict[type[Event], Sequence[Callable[..., Any]]] = {
    event_type: [record_audit_entry]
    for event_type in (
        events.SupplierRegistered,
        events.CredentialVerified,
        events.CredentialChanged,
        events.CredentialExpired,
        events.CredentialFetchFailed,
        events.CredentialFetchRetried,
        events.SupplierAccessGranted,
        events.SupplierAccessRevoked,
        events.IdentifierClaimed,
        events.IdentifierClaimRefused,
        events.ControlChallengeIssued,
        events.ControlProven,
        events.ControlProofRefused,
        events.IdentifierClaimReleased,
        events.IdentifierClaimTransferred,
    )
}
