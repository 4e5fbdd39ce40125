"""Suppliers: register once, read credentials with provenance, refresh, and grant institutions access.

Who may do what:
- ``POST /suppliers``: a supplier organisation's key with ``suppliers:write``; the caller's org owns it.
  Registering the same identifier set again (same org) answers 200 with the existing supplier.
- reads: the owner, an operator (``orgs:admin``), or an institution the owner granted access to
  (``suppliers:read``). Anyone else gets 404, as for a supplier that does not exist.
- ``POST .../refresh``: the owner or an operator; it asks every slot again, a permanently failed one
  included. Grants: the owner only.
- ``POST .../fetches/{fetch_id}/retry``: an operator (``orgs:admin``) puts a failed slot back to
  ``pending`` with a reason; the scheduler fetches it on its next run.
- Credentials of an identifier whose control the owner has not proven (``control`` on the supplier) are
  omitted for granted institutions, and their versions and raw payloads answer 404 to them
  (docs/identifier-control.md); the owner and operators see everything.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from hub.api.auth import Principal
from hub.api.deps import BusDep, HubDep, UowDep, problem_doc, require_any_scope, require_budget, require_scope
from hub.api.problems import Forbidden
from hub.api.representation import repr_digest
from hub.api.schemas import INT64_MAX
from hub.api.supplier_schemas import (
    ConsentOut,
    ControlStateOut,
    CredentialOut,
    FetchOut,
    GrantOut,
    ProvenanceOut,
    RegisterSupplierIn,
    RetryFetchIn,
    SupplierOut,
    SupplierSummaryOut,
    VersionOut,
)
from hub.bootstrap import Hub
from hub.organisations.model import OrgKind, Scope
from hub.registry import HubUnitOfWork
from hub.spine.errors import NotFound
from hub.suppliers.commands import GrantSupplierAccess, RetryCredentialFetches, RevokeSupplierAccess
from hub.suppliers.model import Supplier
from hub.suppliers.queries import control_states, current_credentials, legal_name, withheld_credential_ids
from hub.suppliers.services import SupplierService

router = APIRouter(prefix="/suppliers", tags=["suppliers"])

SuppliersWrite = Annotated[Principal, Depends(require_scope(Scope.SUPPLIERS_WRITE))]
# Suppliers read their own with suppliers:write, granted institutions with suppliers:read.
SuppliersRead = Annotated[Principal, Depends(require_any_scope(Scope.SUPPLIERS_READ, Scope.SUPPLIERS_WRITE))]
OperatorOnly = Annotated[Principal, Depends(require_scope(Scope.ORGS_ADMIN))]


def get_supplier_service(hub: HubDep) -> SupplierService:
    return hub.suppliers.service


SupplierServiceDep = Annotated[SupplierService, Depends(get_supplier_service)]


def readable_supplier(uow: HubUnitOfWork, caller: Principal, supplier_id: str) -> Supplier:
    """Object-level check (API1): owner, operator, or a granted institution; else 404."""
    repo = uow.suppliers
    supplier = repo.get(supplier_id)
    if supplier is not None and (
        supplier.org_id == caller.org_id
        or caller.cross_org
        or (caller.allows(Scope.SUPPLIERS_READ) and repo.grant(supplier_id, caller.org_id) is not None)
    ):
        return supplier
    raise NotFound("supplier", supplier_id)


def _raw_url(request: Request, supplier_id: str, credential_id: str, version_id: int | None) -> str | None:
    if version_id is None:
        return None
    return request.url_for("read_credential_raw", supplier_id=supplier_id, credential_id=credential_id,
                           version_id=str(version_id)).path


def withheld(uow: HubUnitOfWork, caller: Principal, supplier: Supplier) -> set[str]:
    """Credential ids ``caller`` may not see (unproven control, read by a granted institution)."""
    return withheld_credential_ids(uow.suppliers, supplier, reader_org_id=caller.org_id, operator=caller.cross_org)


def _credentials(uow: HubUnitOfWork, request: Request, supplier_id: str,
                 history: bool = False, hidden: set[str] | None = None) -> list[CredentialOut]:
    repo = uow.suppliers
    out = []
    for record in current_credentials(repo, supplier_id):
        if hidden and record.id in hidden:
            continue
        raw_url = _raw_url(request, supplier_id, record.id, record.version_id)
        item = CredentialOut.of(record, provenance=ProvenanceOut.of(record, source=record.system, raw_url=raw_url))
        if history:
            item.history = [VersionOut.of(v, raw_url=_raw_url(request, supplier_id, record.id, v.id) or "")
                            for v in repo.versions_of(record.id)]
        out.append(item)
    return out


def _supplier_out(hub: Hub, request: Request, supplier_id: str, caller: Principal) -> SupplierOut:
    with hub.read_uow() as uow:
        repo = uow.suppliers
        supplier = repo.get(supplier_id)
        if supplier is None:
            raise NotFound("supplier", supplier_id)
        fetches = [FetchOut.of(f) for f in repo.fetches_of(supplier_id)]
        consent = ConsentOut(given_at=supplier.consent_given_at, text_version=supplier.consent_text_version)
        control = [ControlStateOut.of(state) for state in control_states(repo, supplier)]
        hidden = withheld(uow, caller, supplier)
        return SupplierOut.of(supplier, consent=consent, fetches=fetches, control=control,
                              legal_name=_legal_name(uow, supplier, hidden),
                              credentials=_credentials(uow, request, supplier_id, hidden=hidden))


def _legal_name(uow: HubUnitOfWork, supplier: Supplier, hidden: set[str]) -> str | None:
    return legal_name(supplier, uow.suppliers.credentials_of(supplier.id), hidden)


@router.post("", status_code=201, summary="Register a supplier once (supplier organisation)",
             responses={200: {"model": SupplierOut, "description": "Already registered by this organisation: "
                                                                   "the existing supplier, nothing fetched"},
                        409: problem_doc("Another organisation holds one of the identifiers (named in `errors`)")})
def register(body: RegisterSupplierIn, caller: SuppliersWrite, hub: HubDep, service: SupplierServiceDep,
             request: Request, response: Response) -> SupplierOut:
    """Validates the identifiers (checksums), fetches from every applicable system at once and answers
    with each credential's state. An upstream that is down leaves its slot ``pending`` (retried in the
    background); registration does not fail for it. The same identifiers again: 200, existing supplier."""
    if caller.org_kind is not OrgKind.SUPPLIER:
        raise Forbidden("only a supplier organisation registers itself")
    result = service.register(
        org_id=caller.org_id,
        identifiers=body.identifiers.model_dump(exclude_none=True), consent=bool(body.consent),
        legal_name=body.legal_name, actor_org_id=caller.org_id,
    )
    if not result.created:
        response.status_code = 200
    response.headers["Location"] = request.url_for("read_supplier", supplier_id=result.supplier.id).path
    return _supplier_out(hub, request, result.supplier.id, caller)


@router.get("", summary="List suppliers (own; granted for institutions; all for operators)")
def list_suppliers(caller: SuppliersRead, uow: UowDep, limit: Annotated[int, Query(ge=1, le=500)] = 100,
                   offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0) -> list[SupplierSummaryOut]:
    repo = uow.suppliers
    if caller.cross_org:
        found = repo.list_owned(None, limit, offset)
    elif caller.org_kind is OrgKind.INSTITUTION:
        found = repo.list_granted_to(caller.org_id, limit, offset)
    else:
        found = repo.list_owned(caller.org_id, limit, offset)
    return [SupplierSummaryOut.of(s, legal_name=_legal_name(uow, s, withheld(uow, caller, s))) for s in found]


@router.get("/{supplier_id}", summary="Read a supplier with its credentials and fetch states")
def read_supplier(supplier_id: str, caller: SuppliersRead, hub: HubDep, request: Request) -> SupplierOut:
    with hub.read_uow() as uow:
        readable_supplier(uow, caller, supplier_id)
    return _supplier_out(hub, request, supplier_id, caller)


@router.get("/{supplier_id}/credentials", summary="Credentials with provenance (optionally every version)")
def list_credentials(supplier_id: str, caller: SuppliersRead, uow: UowDep, request: Request,
                     include: Annotated[str | None, Query(pattern="^history$")] = None) -> list[CredentialOut]:
    supplier = readable_supplier(uow, caller, supplier_id)
    return _credentials(uow, request, supplier_id, history=include == "history",
                        hidden=withheld(uow, caller, supplier))


@router.get("/{supplier_id}/credentials/{credential_id}/versions", summary="Every fetched version")
def list_versions(supplier_id: str, credential_id: str, caller: SuppliersRead, uow: UowDep,
                  request: Request) -> list[VersionOut]:
    supplier = readable_supplier(uow, caller, supplier_id)
    repo = uow.suppliers
    credential = repo.credential(credential_id)
    if credential is None or credential.supplier_id != supplier_id or credential_id in withheld(uow, caller, supplier):
        raise NotFound("credential", credential_id)
    return [VersionOut.of(v, raw_url=_raw_url(request, supplier_id, credential_id, v.id) or "")
            for v in repo.versions_of(credential_id)]


@router.get("/{supplier_id}/credentials/{credential_id}/versions/{version_id}/raw",
            summary="The raw upstream payload of one version, as received", response_class=Response)
def read_credential_raw(supplier_id: str, credential_id: str,
                        version_id: Annotated[int, Path(ge=1, le=INT64_MAX)], caller: SuppliersRead,
                        uow: UowDep) -> Response:
    supplier = readable_supplier(uow, caller, supplier_id)
    repo = uow.suppliers
    version = repo.version(version_id)
    credential = repo.credential(credential_id)
    if version is None or credential is None or credential.supplier_id != supplier_id \
            or version.credential_id != credential_id or credential_id in withheld(uow, caller, supplier):
        raise NotFound("version", str(version_id))
    stored = repo.raw(version.raw_sha256)
    if stored is None:
        raise NotFound("raw payload", version.raw_sha256)
    content_type, body = stored
    # Upstream bytes are untrusted: never let a browser sniff or render them as active content.
    return Response(body, media_type=content_type, headers={
        "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox",
        "Repr-Digest": repr_digest(version.raw_sha256), "Cache-Control": "private, max-age=3600",
    })


@router.post("/{supplier_id}/refresh", summary="Re-fetch every credential now (owner or operator)",
             description="Limited per supplier (`quotas.refresh_per_supplier`): each refresh calls every "
                         "applicable upstream system with the hub's keys. Past the budget: 429 with `Retry-After`.")
def refresh(supplier_id: str, caller: SuppliersRead, hub: HubDep, service: SupplierServiceDep,
            request: Request, response: Response) -> SupplierOut:
    with hub.read_uow() as uow:
        supplier = uow.suppliers.get(supplier_id)
        if supplier is None or not (supplier.org_id == caller.org_id or caller.cross_org):
            raise NotFound("supplier", supplier_id)
    require_budget(hub.quotas.refresh(supplier_id), response)
    service.refresh(supplier_id, requested_by=caller.org_id)
    return _supplier_out(hub, request, supplier_id, caller)


@router.post("/{supplier_id}/fetches/{fetch_id}/retry",
             summary="Put a failed credential fetch back to pending (operator)",
             responses={409: problem_doc("The slot is verified (refresh it instead) or being fetched now")})
def retry_fetch(supplier_id: str, fetch_id: str, body: RetryFetchIn, caller: OperatorOnly, bus: BusDep) -> FetchOut:
    """For a slot the source refused (``failed_permanently``), does not know (``not_found``) or that
    waits on a long backoff, once the cause is fixed: back to ``pending``, attempts 0, due now. Who and
    why land in the audit trail (``CredentialFetchRetried``)."""
    [slot] = bus.handle(RetryCredentialFetches(
        supplier_id=supplier_id, fetch_id=fetch_id, reason=body.reason, requested_by=f"key:{caller.key_id}",
        actor_org_id=caller.org_id,
    ))
    return FetchOut.of(slot)


@router.post("/{supplier_id}/grants/{institution_org_id}", status_code=201,
             summary="Allow an institution to read this supplier's credentials (owner)")
def grant(supplier_id: str, institution_org_id: str, caller: SuppliersWrite, bus: BusDep) -> GrantOut:
    granted = bus.handle(GrantSupplierAccess(supplier_id=supplier_id, institution_org_id=institution_org_id,
                                             actor_org_id=caller.org_id))
    return GrantOut.of(granted, institution_org_id=granted.org_id)


@router.delete("/{supplier_id}/grants/{institution_org_id}", status_code=204,
               summary="Withdraw an institution's access (owner)")
def revoke(supplier_id: str, institution_org_id: str, caller: SuppliersWrite, bus: BusDep) -> Response:
    removed = bus.handle(RevokeSupplierAccess(supplier_id=supplier_id, institution_org_id=institution_org_id,
                                              actor_org_id=caller.org_id))
    if not removed:
        raise NotFound("grant", institution_org_id)
    return Response(status_code=204)
