"""Commands of the spine."""

from __future__ import annotations

from hub.domain.messages import Command
from hub.domain.organisations import OrgKind


class CreateOrganisation(Command):
    name: str
    kind: OrgKind
    key_label: str = "initial"
    actor_org_id: str | None = None


class IssueApiKey(Command):
    org_id: str
    label: str = ""
    scopes: list[str] | None = None
    actor_org_id: str | None = None


class RevokeApiKey(Command):
    org_id: str
    key_id: str
    actor_org_id: str | None = None


class ReplayDeadLetters(Command):
    ids: list[int] | None = None  # None: every dead letter not yet replayed
    consumer_group: str | None = None
    actor_org_id: str | None = None
