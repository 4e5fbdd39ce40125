"""A consumer group that fails on demand, for the dead-letter and replay tests of every backend."""

from __future__ import annotations

import dataclasses
import uuid

from hub.organisations import events
from hub.spine.audit import record_audit_entry
from hub.spine.messages import Envelope
from hub.spine.unit_of_work import AbstractUnitOfWork


class Switch:
    """Flip ``broken`` to make :func:`fragile_audit` fail (a handler bug) or work (the bug fixed)."""

    broken = True


def fragile_audit(event: events.OrganisationCreated, uow: AbstractUnitOfWork, envelope: Envelope) -> None:
    """A consumer group for dead-letter tests: fails while ``Switch.broken``; otherwise writes an audit
    row under an id derived from the message (the ``audit`` group keeps the original id)."""
    if Switch.broken:
        raise RuntimeError("handler bug")
    derived = str(uuid.uuid5(uuid.NAMESPACE_URL, "fragile:" + envelope.message_id))
    record_audit_entry(event, uow, dataclasses.replace(envelope, message_id=derived))
