"""``GET /audit`` (``audit:read``): the audit trail, newest first, paged by an id cursor.

With ``orgs:admin`` the caller sees every entry; otherwise only entries where its organisation is the
actor or the subject. Entries appear once the audit consumer has applied the events (eventually).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from hub.api.auth import Principal
from hub.api.deps import UowDep, require_scope
from hub.api.schemas import INT64_MAX, AuditEntryOut, AuditPage
from hub.organisations.model import Scope

router = APIRouter(prefix="/audit", tags=["audit"])

AuditReader = Annotated[Principal, Depends(require_scope(Scope.AUDIT_READ))]


@router.get("", summary="Read the audit trail")
def read_audit(
    caller: AuditReader,
    uow: UowDep,
    before: Annotated[int | None, Query(ge=1, le=INT64_MAX, description="Only entries older than this id")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AuditPage:
    org_filter = None if caller.cross_org else caller.org_id
    rows = uow.audit.list(org_id=org_filter, limit=limit, before_id=before)
    items = [AuditEntryOut.model_validate(row) for row in rows]
    next_before = items[-1].id if len(items) == limit else None
    return AuditPage(items=items, next_before=next_before)
