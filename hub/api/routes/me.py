"""``GET /me``: who am I. Any valid key may ask (no scope), so a client can check a key it was given."""

from __future__ import annotations

from fastapi import APIRouter

from hub.api.deps import CurrentOrg
from hub.api.schemas import CallerKeyOut, CallerOrgOut, MeOut

router = APIRouter(tags=["me"])


@router.get("/me", summary="The calling organisation and key")
def read_me(caller: CurrentOrg) -> MeOut:
    return MeOut(
        organisation=CallerOrgOut(id=caller.org_id, name=caller.org_name, kind=caller.org_kind),
        key=CallerKeyOut(id=caller.key_id, scopes=sorted(caller.scopes)),
    )
