"""API keys of an organisation: list (metadata only), issue, revoke.

All three need ``keys:manage``; acting on another organisation's keys also needs ``orgs:admin``
(otherwise 404). A key may mint and revoke only keys whose scopes it holds itself (the organisations
domain decides, from the scopes the command carries; 403 otherwise), so a narrow key handed to a script
can neither be traded up for a full one nor revoke the organisation's full key.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from hub.api.auth import Principal, forget_keys
from hub.api.deps import BusDep, HubDep, UowDep, ensure_reachable_org, require_scope
from hub.api.problems import Forbidden
from hub.api.schemas import ApiKeyOut, IssuedKeyOut, IssueKeyIn
from hub.organisations.commands import IssueApiKey, RevokeApiKey
from hub.organisations.model import Scope, ScopeExceeded
from hub.spine.errors import NotFound

router = APIRouter(prefix="/orgs/{org_id}/keys", tags=["api keys"])

KeysManager = Annotated[Principal, Depends(require_scope(Scope.KEYS_MANAGE_SELF))]


@router.get("", summary="List an organisation's API keys (never their secrets)")
def list_keys(org_id: str, caller: KeysManager, uow: UowDep) -> list[ApiKeyOut]:
    ensure_reachable_org(caller, org_id)
    org = uow.organisations.get(org_id)
    if org is None:
        raise NotFound("organisation", org_id)
    return [ApiKeyOut.of(key) for key in sorted(org.api_keys, key=lambda k: k.created_at)]


def _handle(bus: BusDep, command: IssueApiKey | RevokeApiKey) -> Any:
    try:
        return bus.handle(command)
    except ScopeExceeded as exc:
        raise Forbidden(str(exc)) from None


@router.post("", status_code=201, summary="Issue an API key")
def issue_key(org_id: str, body: IssueKeyIn, caller: KeysManager, bus: BusDep, response: Response) -> IssuedKeyOut:
    """Returns the plaintext key once; store it, the hub keeps only a hash."""
    ensure_reachable_org(caller, org_id)
    scopes = None if body.scopes is None else [s.value for s in body.scopes]
    issued = _handle(bus, IssueApiKey(org_id=org_id, label=body.label, scopes=scopes, actor_org_id=caller.org_id,
                                      actor_scopes=sorted(caller.scopes)))
    response.headers["Cache-Control"] = "no-store"
    return IssuedKeyOut(key=ApiKeyOut.of(issued.key), api_key=issued.plaintext)


@router.delete("/{key_id}", status_code=204, summary="Revoke an API key")
def revoke_key(org_id: str, key_id: str, caller: KeysManager, bus: BusDep, hub: HubDep) -> Response:
    """Takes effect on this API process's next request, and on the others' within
    ``api.key_cache_ttl_s``. Revoking an already revoked key is a no-op (204)."""
    ensure_reachable_org(caller, org_id)
    _handle(bus, RevokeApiKey(org_id=org_id, key_id=key_id, actor_org_id=caller.org_id,
                              actor_scopes=sorted(caller.scopes)))
    forget_keys(hub)
    return Response(status_code=204)
