"""Request and response bodies of the spine's routes.

Inputs forbid unknown fields (OWASP API3, mass assignment: ``{"kind": "operator"}`` smuggled into a
key request is refused, not ignored). Outputs are explicit allow-lists: a key's hash never leaves."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from hub.organisations.model import OrgKind, Scope
from hub.spine.text import MAX_JSON_DEPTH, control_character_problems, depth_problem, refuse_control_characters

__all__ = [
    "INT64_MAX",
    "ApiKeyOut",
    "AuditEntryOut",
    "AuditPage",
    "CreateOrganisationIn",
    "DeadLetterOut",
    "DeadLetterReplayIn",
    "DeadLetterReplayOut",
    "Id",
    "Input",
    "IssueKeyIn",
    "IssuedKeyOut",
    "JsonBody",
    "JsonDocument",
    "MeOut",
    "OrganisationCreatedOut",
    "OrganisationOut",
    "Out",
    "Text",
]

# The database's BIGINT: larger integers from the public are refused (422), never passed to a driver.
INT64_MAX = 2**63 - 1

Text = Annotated[str, AfterValidator(refuse_control_characters)]
"""Free text (names, labels): control characters refused, naming the field (hub.spine.text)."""

Id = Annotated[StrictInt, Field(ge=1, le=INT64_MAX)]
"""A row id in a body: a JSON integer, never a boolean, string or float coerced to one."""


def _shallow(value: Any) -> Any:
    if problem := depth_problem(value, MAX_JSON_DEPTH):
        raise ValueError(problem)
    return value


def _plain_text(value: Any) -> Any:
    _shallow(value)
    if problems := control_character_problems(value):
        where, message = problems[0]
        raise ValueError(f"{where}: {message}" if where else message)
    return value


JsonBody = Annotated[dict[str, Any], BeforeValidator(_shallow)]
"""A JSON object taken as a document to map: bounded in depth before anything walks it."""

JsonDocument = Annotated[dict[str, Any], BeforeValidator(_plain_text)]
"""A JSON object that is stored: bounded in depth, and no control characters in any string."""


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    """A response body filled from the same-named attributes of a domain object; the field list is the
    allow-list, so an attribute the body does not declare never leaves."""

    @classmethod
    def of(cls, *sources: object, **extra: Any) -> Self:
        """Each field from ``extra``, else from the first source that has it."""
        fields = {name: getattr(source, name) for source in reversed(sources) for name in cls.model_fields
                  if hasattr(source, name)}
        return cls.model_validate({**fields, **extra})


class OrganisationOut(Out):
    id: str
    name: str
    kind: OrgKind
    created_at: datetime
    disabled_at: datetime | None = None


class ApiKeyOut(Out):
    id: str
    org_id: str
    label: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    active: bool


class CreateOrganisationIn(Input):
    name: Text = Field(min_length=1, max_length=200)
    kind: OrgKind
    key_label: Text = Field("initial", max_length=200)


class IssuedKeyOut(BaseModel):
    key: ApiKeyOut
    api_key: str = Field(description="The plaintext key. Shown once; the hub keeps only its hash.")


class OrganisationCreatedOut(IssuedKeyOut):
    organisation: OrganisationOut


class IssueKeyIn(Input):
    label: Text = Field("", max_length=200)
    scopes: list[Scope] | None = Field(
        None,
        description="Subset of the organisation kind's scopes, all held by the calling key (a key cannot "
        "mint a stronger key). Default: every scope of the kind that the calling key holds.",
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


class DeadLetterOut(Out):
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


class DeadLetterReplayIn(Input):
    ids: list[Id] | None = Field(None, description="Dead letters to replay; omit for every open one.")
    consumer_group: Text | None = Field(None, max_length=100)


class DeadLetterReplayOut(BaseModel):
    replayed: list[int]
