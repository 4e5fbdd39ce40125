"""Organisations: operators create and list them; every org may read itself.

Scopes: ``POST /orgs`` and ``GET /orgs`` need ``orgs:admin`` (operators only). ``GET /orgs/{id}`` needs
``orgs:read`` and either ``orgs:admin`` or ``id`` being the caller's own org; any other id is a 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from hub.api.auth import Principal
from hub.api.deps import BusDep, UowDep, ensure_reachable_org, require_scope
from hub.api.schemas import ApiKeyOut, CreateOrganisationIn, OrganisationCreatedOut, OrganisationOut
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind, Scope
from hub.spine.errors import NotFound

router = APIRouter(prefix="/orgs", tags=["organisations"])

OrgsAdmin = Annotated[Principal, Depends(require_scope(Scope.ORGS_ADMIN))]
OrgsRead = Annotated[Principal, Depends(require_scope(Scope.ORGS_READ_SELF))]


@router.post("", status_code=201, summary="Create an organisation (operator)")
def create_organisation(
    body: CreateOrganisationIn, caller: OrgsAdmin, bus: BusDep, request: Request, response: Response
) -> OrganisationCreatedOut:
    """Returns the new organisation and its first API key in plaintext: the only time it is shown."""
    org, issued = bus.handle(
        CreateOrganisation(name=body.name, kind=body.kind, key_label=body.key_label, actor_org_id=caller.org_id)
    )
    response.headers["Location"] = request.url_for("read_organisation", org_id=org.id).path
    response.headers["Cache-Control"] = "no-store"
    return OrganisationCreatedOut(
        organisation=OrganisationOut.of(org), key=ApiKeyOut.of(issued.key), api_key=issued.plaintext
    )


@router.get("", summary="List organisations (operator)")
def list_organisations(
    caller: OrgsAdmin, uow: UowDep, kind: Annotated[OrgKind | None, Query()] = None
) -> list[OrganisationOut]:
    return [OrganisationOut.of(org) for org in uow.organisations.list(kind=kind)]


@router.get("/{org_id}", summary="Read an organisation (operator, or the organisation itself)")
def read_organisation(org_id: str, caller: OrgsRead, uow: UowDep) -> OrganisationOut:
    ensure_reachable_org(caller, org_id)
    org = uow.organisations.get(org_id)
    if org is None:
        raise NotFound("organisation", org_id)
    return OrganisationOut.of(org)
