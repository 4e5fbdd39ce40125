"""Small helpers the test tiers share."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from hub.organisations import events
from hub.spine.audit import record_audit_entry
from hub.spine.messages import Envelope
from hub.spine.unit_of_work import AbstractUnitOfWork

T = TypeVar("T")


def eventually(probe: Callable[[], T], timeout: float = 15.0, interval: float = 0.05, what: str = "") -> T:
    """Poll until ``probe`` returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    last: T = probe()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or probe!r}; last={last!r}")
        time.sleep(interval)
        last = probe()
    return last


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
