"""Proof of control of a supplier's identifiers (docs/identifier-control.md).

Who may do what:
- challenges and proofs: the owner (``suppliers:write``). A refused proof answers 422 naming the part
  that failed (``#/body/certificate_chain``, ``#/body/signature``, ``#/body/challenge_id``); it is
  recorded and audited all the same, and the challenge is spent.
- ``GET .../control``: whoever may read the supplier; the proofs (with their evidence) only for the
  owner and the operator.
- manual approval and the claims on identifiers (read, release, transfer): the operator (``orgs:admin``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import Field

from hub.api.auth import Principal
from hub.api.deps import BusDep, UowDep, problem_doc, require_any_scope, require_scope
from hub.api.problems import Forbidden
from hub.api.routes.suppliers import readable_supplier
from hub.api.schemas import Input, JsonDocument, Out, Text
from hub.api.supplier_schemas import ControlStateOut
from hub.organisations.model import OrgKind, Scope
from hub.spine.errors import NotFound, RejectedFields
from hub.suppliers.commands import (
    ApproveControlManually,
    ReleaseIdentifierClaim,
    RequestControlChallenge,
    SubmitControlProof,
    TransferIdentifierClaim,
)
from hub.suppliers.identifiers import SCHEMES, IdentifierError, normalise_identifier
from hub.suppliers.model import ControlChallenge, ControlProof
from hub.suppliers.queries import control_states

router = APIRouter(tags=["identifier control"])

SuppliersWrite = Annotated[Principal, Depends(require_scope(Scope.SUPPLIERS_WRITE))]
SuppliersRead = Annotated[Principal, Depends(require_any_scope(Scope.SUPPLIERS_READ, Scope.SUPPLIERS_WRITE))]
OperatorKey = Annotated[Principal, Depends(require_scope(Scope.ORGS_ADMIN))]

SchemeName = Annotated[str, Field(pattern="^(" + "|".join(SCHEMES) + ")$", description="Identifier scheme")]


def _operator(caller: Principal) -> Principal:
    if caller.org_kind is not OrgKind.OPERATOR:
        raise Forbidden("only the hub operator resolves control of identifiers")
    return caller


class ChallengeIn(Input):
    scheme: SchemeName


class ChallengeOut(Out):
    id: str
    supplier_id: str
    scheme: str
    identifier: str
    nonce: str
    text: str = Field(description="Sign exactly these bytes (UTF-8) with the certificate's key")
    issued_at: datetime
    expires_at: datetime


class ProofIn(Input):
    challenge_id: Text = Field(max_length=36)
    method: Text = Field("x509", max_length=32, description="A configured control scheme")
    certificate_chain: Text | None = Field(None, max_length=65536,
                                           description="x509: PEM certificates, the signer's first")
    signature: Text | None = Field(None, max_length=4096, description="x509: base64 signature over `text`")
    evidence: JsonDocument | None = Field(None, description="What another control scheme reads")


class ProofOut(Out):
    id: str
    supplier_id: str
    scheme: str
    identifier: str
    method: str
    accepted: bool
    reason: str
    evidence: dict[str, Any]
    recorded_by: str
    recorded_at: datetime
    challenge_id: str | None


class ControlOut(Out):
    supplier_id: str
    identifiers: list[ControlStateOut]
    proofs: list[ProofOut] | None = Field(None, description="Owner and operator only")


class ApprovalIn(Input):
    scheme: SchemeName
    evidence: Text = Field(min_length=1, max_length=2000, description="What the check rested on")
    reference: Text | None = Field(None, max_length=200, description="A file or ticket reference")
    approved_by: Text | None = Field(None, max_length=200, description="Who checked")


class ReasonIn(Input):
    reason: Text = Field(min_length=1, max_length=2000)


class TransferIn(ReasonIn):
    to_org_id: Text = Field(max_length=36)


class ClaimOut(Out):
    scheme: str
    identifier: str
    org_id: str
    claimed_at: datetime
    proven_at: datetime | None
    proof_method: str | None


@router.post("/suppliers/{supplier_id}/control/challenges", status_code=201,
             summary="Ask for a challenge to sign, to prove control of an identifier (owner)",
             responses={409: problem_doc("Another organisation holds the identifier")})
def request_challenge(supplier_id: str, body: ChallengeIn, caller: SuppliersWrite, bus: BusDep) -> ChallengeOut:
    """Single use; expires after ``suppliers.control.challenge_ttl_s``. Sign ``text`` with the key of a
    certificate whose subject ``organizationIdentifier`` names the identifier."""
    challenge: ControlChallenge = bus.handle(RequestControlChallenge(
        supplier_id=supplier_id, scheme=body.scheme, actor_org_id=caller.org_id))
    return ChallengeOut.of(challenge, text=challenge.text)


@router.post("/suppliers/{supplier_id}/control/proofs", status_code=201,
             summary="Prove control: a signature over a challenge with a certificate (owner)")
def submit_proof(supplier_id: str, body: ProofIn, caller: SuppliersWrite, bus: BusDep) -> ProofOut:
    """201 with the accepted proof; 422 naming the failing part otherwise (recorded and audited, the
    challenge spent either way)."""
    evidence: dict[str, Any] = dict(body.evidence or {})
    evidence |= {k: v for k, v in (("certificate_chain", body.certificate_chain), ("signature", body.signature))
                 if v is not None}
    proof: ControlProof = bus.handle(SubmitControlProof(
        supplier_id=supplier_id, challenge_id=body.challenge_id, method=body.method, evidence=evidence,
        actor_org_id=caller.org_id))
    if not proof.accepted:
        raise RejectedFields([(proof.failed_field or "challenge_id", proof.reason)])
    return ProofOut.of(proof)


@router.get("/suppliers/{supplier_id}/control", summary="Control of each identifier, with the proofs")
def read_control(supplier_id: str, caller: SuppliersRead, uow: UowDep) -> ControlOut:
    supplier = readable_supplier(uow, caller, supplier_id)
    states = [ControlStateOut.of(state) for state in control_states(uow.suppliers, supplier)]
    proofs = None
    if caller.cross_org or caller.org_id == supplier.org_id:
        proofs = [ProofOut.of(p) for p in uow.suppliers.control_proofs_of(supplier.id)]
    return ControlOut(supplier_id=supplier.id, identifiers=states, proofs=proofs)


@router.post("/suppliers/{supplier_id}/control/approvals", status_code=201,
             summary="Record that control was checked by hand (operator)",
             responses={409: problem_doc("Another organisation holds the identifier")})
def approve(supplier_id: str, body: ApprovalIn, caller: OperatorKey, bus: BusDep) -> ProofOut:
    _operator(caller)
    proof: ControlProof = bus.handle(ApproveControlManually(
        supplier_id=supplier_id, scheme=body.scheme, evidence=body.evidence, reference=body.reference,
        approved_by=body.approved_by, actor_org_id=caller.org_id))
    return ProofOut.of(proof)


def _normalised(scheme: str, identifier: str) -> str:
    if scheme not in SCHEMES:
        raise NotFound("identifier scheme", scheme)
    try:
        return normalise_identifier(scheme, identifier)
    except IdentifierError as exc:
        raise RejectedFields([("identifier", str(exc))]) from exc


Scheme = Annotated[str, Path(max_length=32)]
Identifier = Annotated[str, Path(max_length=128)]


@router.get("/identifier-claims/{scheme}/{identifier}", summary="Who holds an identifier (operator)")
def read_claim(scheme: Scheme, identifier: Identifier, caller: OperatorKey, uow: UowDep) -> ClaimOut:
    _operator(caller)
    value = _normalised(scheme, identifier)
    claim = uow.suppliers.identifier_claim(scheme, value)
    if claim is None:
        raise NotFound("identifier claim", f"{scheme}:{value}")
    return ClaimOut.of(claim)


@router.post("/identifier-claims/{scheme}/{identifier}/release",
             summary="Free an identifier: its holder's credentials for it stop counting (operator)")
def release_claim(scheme: Scheme, identifier: Identifier, body: ReasonIn, caller: OperatorKey,
                  bus: BusDep) -> ClaimOut:
    _operator(caller)
    claim = bus.handle(ReleaseIdentifierClaim(scheme=scheme, identifier=identifier, reason=body.reason,
                                              actor_org_id=caller.org_id))
    return ClaimOut.of(claim)


@router.post("/identifier-claims/{scheme}/{identifier}/transfer",
             summary="Hand an identifier to another supplier organisation, unproven (operator)")
def transfer_claim(scheme: Scheme, identifier: Identifier, body: TransferIn, caller: OperatorKey,
                   bus: BusDep) -> ClaimOut:
    _operator(caller)
    claim = bus.handle(TransferIdentifierClaim(scheme=scheme, identifier=identifier, to_org_id=body.to_org_id,
                                               reason=body.reason, actor_org_id=caller.org_id))
    return ClaimOut.of(claim)
