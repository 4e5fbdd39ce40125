"""Eligibility: an institution asks whether a supplier meets its requirements and gets, per requirement,
met / not met / unknown with the credentials behind each verdict (never a bare boolean).

Who may ask: an institution the supplier granted access to (scope ``eligibility:query``) and the
operator; an institution without a grant gets 404, as for a supplier that does not exist. Nothing is fetched
here: the answer uses the credentials the hub holds (kept fresh by the scheduler), and says ``unknown``
for what is missing, pending or stale, and for what rests on an identifier whose control the supplier
has not proven ("control of identifier not proven", docs/identifier-control.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import Field

from hub.api.auth import Principal
from hub.api.deps import HubDep, UowDep, require_scope
from hub.api.routes.suppliers import readable_supplier
from hub.api.schemas import Input, JsonDocument
from hub.eligibility.evaluate import evaluate
from hub.eligibility.language import RequirementError, parse_requirements
from hub.organisations.model import Scope
from hub.spine.errors import RejectedFields
from hub.suppliers.model import FetchState
from hub.suppliers.queries import current_credentials, unproven_credential_ids

router = APIRouter(prefix="/suppliers", tags=["eligibility"])

EligibilityQuery = Annotated[Principal, Depends(require_scope(Scope.ELIGIBILITY_QUERY))]


class EligibilityQueryIn(Input):
    requirements: list[JsonDocument] = Field(
        min_length=1, description="Requirements in the language of docs/eligibility.md"
    )
    on: date | None = Field(default=None, description="Judge as of this day (default: now)")


@router.post("/{supplier_id}/eligibility", summary="Does this supplier meet these requirements? With evidence")
def query_eligibility(supplier_id: str, body: EligibilityQueryIn, caller: EligibilityQuery,
                      uow: UowDep, hub: HubDep) -> dict[str, Any]:
    try:
        requirements = parse_requirements(body.requirements, prefix="requirements")
    except RequirementError as error:
        raise RejectedFields(error.problems) from None
    supplier = readable_supplier(uow, caller, supplier_id)
    # Credentials of an identifier whose control is not proven count for nothing, whoever asks.
    unproven = unproven_credential_ids(uow.suppliers, supplier)
    records = current_credentials(uow.suppliers, supplier.id)
    credentials = [record.as_canonical() for record in records if record.id not in unproven]
    unproven_types = {record.type for record in records if record.id in unproven}
    # A slot left from before its system was switched off waits for nothing: it is not "pending".
    enabled = {name for name, system in hub.settings.connectors.items() if system.enabled}
    pending = sorted(
        {slot.system for slot in uow.suppliers.fetches_of(supplier.id)
         if slot.state == FetchState.PENDING.value and slot.system in enabled}
    )
    now = datetime.now(UTC)
    answer = evaluate(requirements, credentials, on=body.on or now, now=now, pending_systems=pending,
                      unproven_types=unproven_types)
    return {"supplier_id": supplier.id, "evaluated_at": now.isoformat(), "pending_systems": pending,
            **answer.to_dict()}
