"""Handlers of proof of control: claims on identifiers, challenges, proofs, and the operator's
dispute resolution. A refused proof is not an error here: it is recorded and audited (the transaction
commits), and the API turns it into a 422 after the commit. Every step publishes an event the audit
trail records."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from hub.organisations.model import OrgKind
from hub.spine.errors import NotFound, Rejected
from hub.suppliers import commands, events
from hub.suppliers.config import SupplierSettings
from hub.suppliers.control import ControlSchemes, IdentifierTaken, ProofRequest, ProofResult
from hub.suppliers.identifiers import IdentifierError, normalise_identifier
from hub.suppliers.model import (
    ControlChallenge,
    ControlMethod,
    ControlProof,
    IdentifierClaim,
    Supplier,
    challenge_refusal,
    new_id,
    utcnow,
)
from hub.suppliers.repository import SuppliersUnitOfWork

__all__ = [
    "approve_control_manually",
    "record_claim_refusal",
    "release_identifier_claim",
    "request_control_challenge",
    "submit_control_proof",
    "take_claims",
    "transfer_identifier_claim",
]


def take_claims(uow: SuppliersUnitOfWork, org_id: str, supplier_id: str, identifiers: dict[str, str],
                actor_org_id: str | None, now: datetime) -> None:
    """Claim every identifier not claimed yet for ``org_id``; :class:`IdentifierTaken` on the first one
    another organisation holds. Claims ``org_id`` already holds are left as they are (proven or not)."""
    repo = uow.suppliers
    held = repo.claims_for(identifiers)
    for scheme, value in identifiers.items():
        claim = held.get((scheme, value))
        if claim is not None:
            if claim.org_id != org_id:
                raise IdentifierTaken(scheme, value)
            continue
        repo.add_claim(IdentifierClaim(scheme=scheme, identifier=value, org_id=org_id, claimed_at=now))
        uow.publish(events.IdentifierClaimed(supplier_id=supplier_id, org_id=org_id, scheme=scheme,
                                             identifier=value, actor_org_id=actor_org_id))


def record_claim_refusal(cmd: commands.RecordClaimRefusal, uow: SuppliersUnitOfWork) -> None:
    uow.publish(events.IdentifierClaimRefused(org_id=cmd.org_id, scheme=cmd.scheme, identifier=cmd.identifier,
                                              actor_org_id=cmd.actor_org_id))


def _owned(uow: SuppliersUnitOfWork, supplier_id: str, actor_org_id: str) -> Supplier:
    supplier = uow.suppliers.get(supplier_id)
    if supplier is None or supplier.org_id != actor_org_id:
        raise NotFound("supplier", supplier_id)
    return supplier


def _identifier(supplier: Supplier, scheme: str) -> str:
    value = supplier.identifiers.get(scheme)
    if value is None:
        known = ", ".join(sorted(supplier.identifiers))
        raise Rejected("scheme", f"this supplier has no {scheme!r} identifier (it has {known})")
    return value


def request_control_challenge(cmd: commands.RequestControlChallenge, uow: SuppliersUnitOfWork,
                              supplier_settings: SupplierSettings) -> ControlChallenge:
    now = cmd.now or utcnow()
    supplier = _owned(uow, cmd.supplier_id, cmd.actor_org_id)
    value = _identifier(supplier, cmd.scheme)
    take_claims(uow, supplier.org_id, supplier.id, {cmd.scheme: value}, cmd.actor_org_id, now)
    challenge = ControlChallenge(
        id=new_id(), supplier_id=supplier.id, org_id=supplier.org_id, scheme=cmd.scheme, identifier=value,
        nonce=secrets.token_hex(32), issued_at=now,
        expires_at=now + timedelta(seconds=supplier_settings.control.challenge_ttl_s),
    )
    uow.suppliers.add_challenge(challenge)
    uow.publish(events.ControlChallengeIssued(
        supplier_id=supplier.id, org_id=supplier.org_id, challenge_id=challenge.id, scheme=cmd.scheme,
        identifier=value, expires_at=challenge.expires_at.isoformat(), actor_org_id=cmd.actor_org_id,
    ))
    return challenge


def submit_control_proof(cmd: commands.SubmitControlProof, uow: SuppliersUnitOfWork,
                         control_schemes: ControlSchemes) -> ControlProof:
    now = cmd.now or utcnow()
    repo = uow.suppliers
    supplier = _owned(uow, cmd.supplier_id, cmd.actor_org_id)
    challenge = repo.challenge(cmd.challenge_id)
    if challenge is None or challenge.supplier_id != supplier.id:
        raise Rejected("challenge_id", "no such challenge for this supplier; ask for one first")
    scheme = control_schemes.get(cmd.method)
    if scheme is None:
        raise Rejected("method", f"unknown proof method; this hub takes {', '.join(control_schemes.methods)}")
    if challenge.scheme not in scheme.schemes:
        raise Rejected("method", f"{cmd.method!r} cannot prove a {challenge.scheme!r} identifier")
    refusal = challenge_refusal(challenge, now)
    claim = repo.identifier_claim(challenge.scheme, challenge.identifier)
    if refusal is not None:
        result = ProofResult.refused("challenge_id", refusal)
    else:
        challenge.used_at = now  # single use, whatever the outcome: no guessing against one challenge
        if claim is None or claim.org_id != supplier.org_id:
            result = ProofResult.refused("challenge_id", "the identifier is no longer claimed by this organisation")
        else:
            result = scheme.verify(ProofRequest(challenge.scheme, challenge.identifier, challenge.text.encode(),
                                                cmd.evidence), now)
    proof = ControlProof(
        id=new_id(), supplier_id=supplier.id, org_id=supplier.org_id, scheme=challenge.scheme,
        identifier=challenge.identifier, method=cmd.method, accepted=result.accepted, reason=result.reason,
        evidence=dict(result.evidence), recorded_by=cmd.actor_org_id, recorded_at=now, challenge_id=challenge.id,
        failed_field=None if result.accepted else (result.failed_field or "challenge_id"),
    )
    repo.add_control_proof(proof)
    if result.accepted and claim is not None:
        claim.prove(cmd.method, proof.id, now)
        uow.publish(events.ControlProven(
            supplier_id=supplier.id, org_id=supplier.org_id, scheme=proof.scheme, identifier=proof.identifier,
            method=proof.method, proof_id=proof.id, evidence=proof.evidence, actor_org_id=cmd.actor_org_id,
        ))
    else:
        proof.accepted = False
        uow.publish(events.ControlProofRefused(
            supplier_id=supplier.id, org_id=supplier.org_id, scheme=proof.scheme, identifier=proof.identifier,
            method=proof.method, proof_id=proof.id, field=result.failed_field, reason=result.reason,
            actor_org_id=cmd.actor_org_id,
        ))
    return proof


def _operator(uow: SuppliersUnitOfWork, actor_org_id: str) -> None:
    actor = uow.organisations.get(actor_org_id)
    if actor is None or actor.kind != OrgKind.OPERATOR:
        raise Rejected("actor", "only the hub operator resolves control of identifiers")


def approve_control_manually(cmd: commands.ApproveControlManually, uow: SuppliersUnitOfWork) -> ControlProof:
    _operator(uow, cmd.actor_org_id)
    now = utcnow()
    supplier = uow.suppliers.get(cmd.supplier_id)
    if supplier is None:
        raise NotFound("supplier", cmd.supplier_id)
    value = _identifier(supplier, cmd.scheme)
    if not cmd.evidence.strip():
        raise Rejected("evidence", "say what the check rested on")
    take_claims(uow, supplier.org_id, supplier.id, {cmd.scheme: value}, cmd.actor_org_id, now)
    claim = uow.suppliers.identifier_claim(cmd.scheme, value)
    assert claim is not None
    evidence = {"evidence": cmd.evidence, "reference": cmd.reference, "approved_by": cmd.approved_by}
    proof = ControlProof(
        id=new_id(), supplier_id=supplier.id, org_id=supplier.org_id, scheme=cmd.scheme, identifier=value,
        method=ControlMethod.MANUAL.value, accepted=True, reason="control checked by the hub operator",
        evidence=evidence, recorded_by=cmd.actor_org_id, recorded_at=now,
    )
    uow.suppliers.add_control_proof(proof)
    claim.prove(proof.method, proof.id, now)
    uow.publish(events.ControlProven(
        supplier_id=supplier.id, org_id=supplier.org_id, scheme=cmd.scheme, identifier=value, method=proof.method,
        proof_id=proof.id, evidence=evidence, actor_org_id=cmd.actor_org_id,
    ))
    return proof


def _claim(uow: SuppliersUnitOfWork, scheme: str, identifier: str) -> IdentifierClaim:
    try:
        value = normalise_identifier(scheme, identifier)
    except KeyError:
        raise Rejected("scheme", "unknown identifier scheme") from None
    except IdentifierError as exc:
        raise Rejected("identifier", str(exc)) from exc
    claim = uow.suppliers.identifier_claim(scheme, value)
    if claim is None:
        raise NotFound("identifier claim", f"{scheme}:{value}")
    return claim


def release_identifier_claim(cmd: commands.ReleaseIdentifierClaim, uow: SuppliersUnitOfWork) -> IdentifierClaim:
    _operator(uow, cmd.actor_org_id)
    claim = _claim(uow, cmd.scheme, cmd.identifier)
    uow.suppliers.remove_claim(claim)
    uow.publish(events.IdentifierClaimReleased(
        org_id=claim.org_id, scheme=claim.scheme, identifier=claim.identifier, reason=cmd.reason,
        was_proven=claim.proven, actor_org_id=cmd.actor_org_id,
    ))
    return claim


def transfer_identifier_claim(cmd: commands.TransferIdentifierClaim, uow: SuppliersUnitOfWork) -> IdentifierClaim:
    _operator(uow, cmd.actor_org_id)
    claim = _claim(uow, cmd.scheme, cmd.identifier)
    target = uow.organisations.get(cmd.to_org_id)
    if target is None or target.kind != OrgKind.SUPPLIER:
        raise NotFound("supplier organisation", cmd.to_org_id)
    if target.id == claim.org_id:
        raise Rejected("to_org_id", "the identifier is already claimed by this organisation")
    previous = claim.org_id
    claim.hand_over(target.id, utcnow())
    uow.publish(events.IdentifierClaimTransferred(
        org_id=previous, to_org_id=target.id, scheme=claim.scheme, identifier=claim.identifier, reason=cmd.reason,
        actor_org_id=cmd.actor_org_id,
    ))
    return claim
