"""Key management never exceeds the manager's own scopes: a key can mint only keys whose scopes it holds,
and revoke only keys whose scopes it holds (so a ``keys:manage``-only key cannot take the organisation's
full key away). Callers without a key (bootstrap, the CLI) pass no scopes and are not limited."""

from __future__ import annotations

import pytest

from hub.organisations import commands
from hub.organisations.handlers import issue_api_key, revoke_api_key
from hub.organisations.model import DEFAULT_SCOPES, Organisation, OrgKind, Scope, ScopeExceeded
from tests.support.fakes import FakeUnitOfWork


def _org(kind: OrgKind = OrgKind.INSTITUTION) -> Organisation:
    return Organisation.new(name="Org", kind=kind)


def test_a_key_cannot_grant_scopes_it_does_not_hold() -> None:
    org = _org()
    with pytest.raises(ScopeExceeded, match="notices:write"):
        org.issue_key(scopes=frozenset({Scope.NOTICES_WRITE}), grantor_scopes=frozenset({"keys:manage"}))
    issued = org.issue_key(scopes=frozenset({Scope.KEYS_MANAGE_SELF}), grantor_scopes=frozenset({"keys:manage"}))
    assert issued.key.scopes == ["keys:manage"]


def test_without_requested_scopes_a_key_gets_what_the_grantor_holds_and_the_kind_allows() -> None:
    org = _org()
    narrow = org.issue_key(grantor_scopes=frozenset({"keys:manage", "orgs:read"})).key
    assert narrow.scopes == ["keys:manage", "orgs:read"]
    every = frozenset(s.value for s in Scope)  # an operator's full key issuing for an institution
    assert set(org.issue_key(grantor_scopes=every).key.scopes) == {s.value for s in DEFAULT_SCOPES[org.kind]}
    assert set(org.issue_key().key.scopes) == {s.value for s in DEFAULT_SCOPES[org.kind]}


def test_a_key_cannot_revoke_a_key_with_scopes_it_does_not_hold() -> None:
    org = _org()
    full = org.issue_key().key
    manager = org.issue_key(scopes=frozenset({Scope.KEYS_MANAGE_SELF})).key
    with pytest.raises(ScopeExceeded):
        org.revoke_key(full.id, revoker_scopes=frozenset(manager.scopes))
    assert full.active
    peer = org.issue_key(scopes=frozenset({Scope.KEYS_MANAGE_SELF})).key
    assert org.revoke_key(peer.id, revoker_scopes=frozenset(manager.scopes)).revoked_at is not None
    assert org.revoke_key(manager.id, revoker_scopes=frozenset(full.scopes)).revoked_at is not None
    assert org.revoke_key(full.id).revoked_at is not None  # no key behind the command: not limited


def test_the_handlers_apply_the_actor_scopes_from_the_command() -> None:
    uow = FakeUnitOfWork()
    org = _org()
    full = org.issue_key().key
    uow.organisations.add(org)
    with pytest.raises(ScopeExceeded):
        issue_api_key(commands.IssueApiKey(org_id=org.id, scopes=["notices:write"], actor_scopes=["keys:manage"]), uow)
    with pytest.raises(ScopeExceeded):
        revoke_api_key(commands.RevokeApiKey(org_id=org.id, key_id=full.id, actor_scopes=["keys:manage"]), uow)
    assert full.active
    issued = issue_api_key(commands.IssueApiKey(org_id=org.id, actor_scopes=["keys:manage"]), uow)
    assert issued.key.scopes == ["keys:manage"]
