"""Events of organisations and their API keys."""

from __future__ import annotations

from hub.spine.messages import Event


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


class OrganisationDisabled(Event):
    org_id: str
    reason: str = ""
    actor_org_id: str | None = None


class OrganisationEnabled(Event):
    org_id: str
    actor_org_id: str | None = None
