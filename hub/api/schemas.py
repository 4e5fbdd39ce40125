"""Request and response bodies of the spine's routes.

Inputs forbid unknown fields (OWASP API3, mass assignment: ``{"kind": "operator"}`` smuggled into a
key request is refused, not ignored). Outputs are explicit allow-lists: a key's hash never leaves."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub.organisations.model import ApiKey, Organisation, OrgKind, Scope
from hub.spine.records import DeadLetter

__all__ = [
    "ApiKeyOut",
    "AuditEntryOut",
    "AuditPage",
    "CreateOrganisationIn",
    "DeadLetterOut",
    "IssueKeyIn",
    "IssuedKeyOut",
    "MeOut",
    "OrganisationCreatedOut",
    "OrganisationOut",
    "ReplayIn",
    "ReplayOut",
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrganisationOut(BaseModel):
    id: str
    name: str
    kind: OrgKind
    created_at: datetime
    disabled_at: datetime | None = None

    @classmethod
    def of(cls, org: Organisation) -> OrganisationOut:
        return cls(id=org.id, name=org.name, kind=org.kind, created_at=org.created_at, disabled_at=org.disabled_at)


class ApiKeyOut(BaseModel):
    id: str
    org_id: str
    label: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    active: bool

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(
            id=key.id,
            org_id=key.org_id,
            label=key.label,
            scopes=list(key.scopes),
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
            active=key.active,
        )


class CreateOrganisationIn(_Input):
    name: str = Field(min_length=1, max_length=200)
    kind: OrgKind
    key_label: str = Field("initial", max_length=200)


class IssuedKeyOut(BaseModel):
    key: ApiKeyOut
    api_key: str = Field(description="The plaintext key. Shown once; the hub keeps only its hash.")


class OrganisationCreatedOut(IssuedKeyOut):
    organisation: OrganisationOut


class IssueKeyIn(_Input):
    label: str = Field("", max_length=200)
    scopes: list[Scope] | None = Field(
        None,
        description="Subset of the organisation kind's scopes. Default: all of them when the caller "
        "holds orgs:admin, otherwise the calling key's own scopes (a key cannot mint a stronger key).",
    )


class CallerKeyOut(BaseModel):
    id: str
    scopes: list[str]


class CallerOrgOut(BaseModel):
    id: str
    name: str
    kind: OrgKind


class MeOut(BaseModel):
    organisation: CallerOrgOut
    key: CallerKeyOut


class AuditEntryOut(BaseModel):
    id: int
    message_id: str
    event_type: str
    occurred_at: datetime
    actor_org_id: str | None
    subject_org_id: str | None
    correlation_id: str | None
    data: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_before: int | None = Field(None, description="Pass as `before` to get the next (older) page.")


class DeadLetterOut(BaseModel):
    id: int
    consumer_group: str
    message_id: str
    message_type: str
    routing_key: str
    correlation_id: str | None
    payload: dict[str, Any]
    reason: str
    delivery_count: int
    dead_at: datetime
    replayed_at: datetime | None

    @classmethod
    def of(cls, dead: DeadLetter) -> DeadLetterOut:
        env = dead.envelope
        return cls(
            id=dead.id,
            consumer_group=dead.consumer_group,
            message_id=env.message_id,
            message_type=env.message_type,
            routing_key=env.routing_key,
            correlation_id=env.correlation_id,
            payload=env.payload,
            reason=dead.reason,
            delivery_count=dead.delivery_count,
            dead_at=dead.dead_at,
            replayed_at=dead.replayed_at,
        )


class ReplayIn(_Input):
    ids: list[int] | None = Field(None, description="Dead letters to replay; omit for every open one.")
    consumer_group: str | None = Field(None, max_length=100)


class ReplayOut(BaseModel):
    replayed: list[int]
