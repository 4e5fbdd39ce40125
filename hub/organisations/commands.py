"""Commands of organisations and their API keys."""

from __future__ import annotations

from hub.organisations.model import OrgKind
from hub.spine.messages import Command


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
    # The scopes of the key asking; None when no key asks (bootstrap, the CLI). The new key's scopes
    # must be among them.
    actor_scopes: list[str] | None = None


class RevokeApiKey(Command):
    org_id: str
    key_id: str
    actor_org_id: str | None = None
    # The scopes of the key asking; None when no key asks. The revoked key's scopes must be among them.
    actor_scopes: list[str] | None = None


class DisableOrganisation(Command):
    """Refuse every key of the organisation (401, as for a revoked key) until it is enabled again."""

    org_id: str
    reason: str = ""
    actor_org_id: str | None = None


class EnableOrganisation(Command):
    org_id: str
    actor_org_id: str | None = None
