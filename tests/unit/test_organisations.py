from __future__ import annotations

import pytest

from hub.organisations.model import DEFAULT_SCOPES, Organisation, OrgKind, Scope, hash_secret, parse_api_key


def test_issued_key_is_shown_once_and_stored_hashed() -> None:
    org = Organisation.new("Seoul City", OrgKind.INSTITUTION)
    issued = org.issue_key(label="ci")
    key_id, secret = parse_api_key(issued.plaintext) or ("", "")
    assert key_id == issued.key.id
    assert issued.key.secret_hash == hash_secret(secret)
    assert secret not in issued.key.secret_hash
    assert issued.key.matches(secret)
    assert not issued.key.matches(secret + "x")


@pytest.mark.parametrize("raw", ["", "g2b", "g2b__x", "abc_def_ghi", "g2b_id_", "Bearer g2b_a_b c"])
def test_malformed_keys_do_not_parse(raw: str) -> None:
    assert parse_api_key(raw) is None or raw.startswith("Bearer")


def test_scopes_follow_the_organisation_kind() -> None:
    agency = Organisation.new("Busan", OrgKind.AGENCY)
    key = agency.issue_key().key
    assert key.allows(Scope.SUBSCRIPTIONS_WRITE)
    assert not key.allows(Scope.NOTICES_WRITE)
    assert not key.allows(Scope.ORGS_ADMIN)
    with pytest.raises(ValueError, match="notices:write"):
        agency.issue_key(scopes=frozenset({Scope.NOTICES_WRITE}))
    narrowed = agency.issue_key(scopes=frozenset({Scope.ORGS_READ_SELF})).key
    assert narrowed.scopes == ["orgs:read"]


def test_only_operators_administer() -> None:
    for kind in OrgKind:
        assert (Scope.ORGS_ADMIN in DEFAULT_SCOPES[kind]) == (kind is OrgKind.OPERATOR)
        assert (Scope.DLQ_ADMIN in DEFAULT_SCOPES[kind]) == (kind is OrgKind.OPERATOR)


def test_revoking_is_idempotent_and_unknown_keys_raise() -> None:
    org = Organisation.new("Supplier Co", OrgKind.SUPPLIER)
    key = org.issue_key().key
    first = org.revoke_key(key.id).revoked_at
    assert first is not None and not key.active
    assert org.revoke_key(key.id).revoked_at == first
    with pytest.raises(KeyError):
        org.revoke_key("nope")


def test_disable_and_enable_are_transitions_reported_once() -> None:
    org = Organisation.new("Gwangju", OrgKind.AGENCY)
    assert org.enabled
    assert org.disable() is True and not org.enabled and org.disabled_at is not None
    first = org.disabled_at
    assert org.disable() is False and org.disabled_at == first
    assert org.enable() is True and org.enabled
    assert org.enable() is False


def test_an_error_shows_a_pasted_keys_id_and_never_its_secret() -> None:
    from hub.organisations.model import shown_key_id

    assert shown_key_id("g2b_0123abcd0123abcd_TOPSECRETvalue") == "0123abcd0123abcd"
    assert shown_key_id("0123abcd0123abcd") == "0123abcd0123abcd"
    assert shown_key_id("x" * 40) == "x" * 16 + "…"
