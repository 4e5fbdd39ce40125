"""The audit trail: every spine event becomes one audit row, idempotently (the inbox guards it)."""

from __future__ import annotations

from hub.spine.messages import Envelope, Event
from hub.spine.unit_of_work import AbstractUnitOfWork


def record_audit_entry(event: Event, uow: AbstractUnitOfWork, envelope: Envelope) -> None:
    actor = getattr(event, "actor_org_id", None)
    subject = getattr(event, "org_id", None)
    uow.audit.record(envelope, actor_org_id=actor, subject_org_id=subject)
