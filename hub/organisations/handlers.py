"""Organisations and their API keys."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hub.organisations import commands, events
from hub.organisations.model import IssuedKey, Organisation, Scope, parse_api_key, shown_key_id
from hub.organisations.repository import OrganisationsUnitOfWork
from hub.spine.audit import record_audit_entry
from hub.spine.errors import NotFound, Rejected
from hub.spine.messages import Command, Event


def _scopes(actor_scopes: list[str] | None) -> frozenset[str] | None:
    return None if actor_scopes is None else frozenset(actor_scopes)


def create_organisation(
    cmd: commands.CreateOrganisation, uow: OrganisationsUnitOfWork
) -> tuple[Organisation, IssuedKey]:
    name = cmd.name.strip()
    if not name:
        raise Rejected("name", "must not be blank")
    org = Organisation.new(name=name, kind=cmd.kind)
    issued = org.issue_key(label=cmd.key_label)
    uow.organisations.add(org)
    uow.publish(events.OrganisationCreated(org_id=org.id, name=org.name, kind=org.kind.value,
                                           actor_org_id=cmd.actor_org_id))
    uow.publish(events.ApiKeyIssued(org_id=org.id, key_id=issued.key.id, scopes=issued.key.scopes,
                                    actor_org_id=cmd.actor_org_id))
    return org, issued


def issue_api_key(cmd: commands.IssueApiKey, uow: OrganisationsUnitOfWork) -> IssuedKey:
    org = uow.organisations.get(cmd.org_id)
    if org is None:
        raise NotFound("organisation", cmd.org_id)
    try:
        scopes = None if cmd.scopes is None else frozenset(Scope(s) for s in cmd.scopes)
        issued = org.issue_key(label=cmd.label, scopes=scopes, grantor_scopes=_scopes(cmd.actor_scopes))
    except ValueError as exc:
        raise Rejected("scopes", str(exc)) from exc
    uow.publish(events.ApiKeyIssued(org_id=org.id, key_id=issued.key.id, scopes=issued.key.scopes,
                                    actor_org_id=cmd.actor_org_id))
    return issued


def revoke_api_key(cmd: commands.RevokeApiKey, uow: OrganisationsUnitOfWork) -> None:
    """``key_id`` may also be the whole key, pasted: its id is used, and no error repeats its secret."""
    org = uow.organisations.get(cmd.org_id)
    if org is None:
        raise NotFound("organisation", cmd.org_id)
    parsed = parse_api_key(cmd.key_id)
    key_id = parsed[0] if parsed is not None else cmd.key_id
    try:
        org.revoke_key(key_id, revoker_scopes=_scopes(cmd.actor_scopes))
    except KeyError:
        raise NotFound("api key", shown_key_id(cmd.key_id)) from None
    uow.publish(events.ApiKeyRevoked(org_id=org.id, key_id=key_id, actor_org_id=cmd.actor_org_id))


def disable_organisation(cmd: commands.DisableOrganisation, uow: OrganisationsUnitOfWork) -> Organisation:
    org = uow.organisations.get(cmd.org_id)
    if org is None:
        raise NotFound("organisation", cmd.org_id)
    if org.disable():
        uow.publish(events.OrganisationDisabled(org_id=org.id, reason=cmd.reason.strip(),
                                                actor_org_id=cmd.actor_org_id))
    return org


def enable_organisation(cmd: commands.EnableOrganisation, uow: OrganisationsUnitOfWork) -> Organisation:
    org = uow.organisations.get(cmd.org_id)
    if org is None:
        raise NotFound("organisation", cmd.org_id)
    if org.enable():
        uow.publish(events.OrganisationEnabled(org_id=org.id, actor_org_id=cmd.actor_org_id))
    return org


COMMAND_HANDLERS: dict[type[Command], Callable[..., Any]] = {
    commands.CreateOrganisation: create_organisation,
    commands.IssueApiKey: issue_api_key,
    commands.RevokeApiKey: revoke_api_key,
    commands.DisableOrganisation: disable_organisation,
    commands.EnableOrganisation: enable_organisation,
}

EVENT_HANDLERS: dict[type[Event], Sequence[Callable[..., Any]]] = {
    events.OrganisationCreated: [record_audit_entry],
    events.ApiKeyIssued: [record_audit_entry],
    events.ApiKeyRevoked: [record_audit_entry],
    events.OrganisationDisabled: [record_audit_entry],
    events.OrganisationEnabled: [record_audit_entry],
}
