"""Organisations and their API keys."""

from __future__ import annotations

from hub.domain import commands, events
from hub.domain.organisations import IssuedKey, Organisation, Scope
from hub.service_layer.errors import NotFound, Rejected
from hub.service_layer.unit_of_work import AbstractUnitOfWork


def create_organisation(cmd: commands.CreateOrganisation, uow: AbstractUnitOfWork) -> tuple[Organisation, IssuedKey]:
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


def issue_api_key(cmd: commands.IssueApiKey, uow: AbstractUnitOfWork) -> IssuedKey:
    org = uow.organisations.get(cmd.org_id)
    if org is None:
        raise NotFound("organisation", cmd.org_id)
    try:
        scopes = None if cmd.scopes is None else frozenset(Scope(s) for s in cmd.scopes)
        issued = org.issue_key(label=cmd.label, scopes=scopes)
    except ValueError as exc:
        raise Rejected("scopes", str(exc)) from exc
    uow.publish(events.ApiKeyIssued(org_id=org.id, key_id=issued.key.id, scopes=issued.key.scopes,
                                    actor_org_id=cmd.actor_org_id))
    return issued


def revoke_api_key(cmd: commands.RevokeApiKey, uow: AbstractUnitOfWork) -> None:
    org = uow.organisations.get(cmd.org_id)
    if org is None:
        raise NotFound("organisation", cmd.org_id)
    try:
        org.revoke_key(cmd.key_id)
    except KeyError as exc:
        raise NotFound("api key", cmd.key_id) from exc
    uow.publish(events.ApiKeyRevoked(org_id=org.id, key_id=cmd.key_id, actor_org_id=cmd.actor_org_id))
