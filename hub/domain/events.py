"""Events of the spine. Later slices add their own modules next to this one."""

from __future__ import annotations

from hub.domain.messages import Event


class OrganisationCreated(Event):
    org_id: str
    name: str
    kind: str
    actor_org_id: str | None = None


class ApiKeyIssued(Event):
    org_id: str
    key_id: str
    scopes: list[str]
    actor_org_id: str | None = None


class ApiKeyRevoked(Event):
    org_id: str
    key_id: str
    actor_org_id: str | None = None


class DeadLetterReplayed(Event):
    dead_letter_id: int
    consumer_group: str
    original_message_id: str
    actor_org_id: str | None = None
