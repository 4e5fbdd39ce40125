"""A key that passed is remembered for ``api.key_cache_ttl_s``: a busy client is not looked up on every
request, and a key revoked or an organisation disabled behind this process's back is refused once that
time has passed (a hand-moved clock, no sleeping). Revoking through this API process is immediate."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event

from hub.organisations.commands import DisableOrganisation, RevokeApiKey
from tests.support.api import API, bearer
from tests.support.api_session import ApiSession as Api
from tests.support.api_session import api_session, assert_problem


@pytest.fixture(params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    with api_session(str(request.getfixturevalue(f"{request.param}_url"))) as session:
        yield session


def statements_during(api: Api, count: int, key: str) -> int:
    """How many SQL statements ``count`` authenticated requests sent to the database."""
    seen: list[str] = []

    def note(*args: object) -> None:
        seen.append("statement")

    event.listen(api.hub.engine, "before_cursor_execute", note)
    try:
        for _ in range(count):
            assert api.client.get(f"{API}/me", headers=bearer(key)).status_code == 200
    finally:
        event.remove(api.hub.engine, "before_cursor_execute", note)
    return len(seen)


def test_a_hot_key_is_not_looked_up_on_every_request(api: Api) -> None:
    member = api.create_org("institution")
    api.client.get(f"{API}/me", headers=bearer(member.key))  # looked up once, and its use recorded
    cached = statements_during(api, 5, member.key)
    api.outlive_cached_keys()
    looked_up = statements_during(api, 5, member.key)
    assert looked_up > cached  # the first request after the TTL looks the key up again


def test_a_key_revoked_on_the_bus_is_refused_once_the_ttl_has_passed(api: Api) -> None:
    member = api.create_org("supplier")
    second = api.issue_key(member)
    assert api.client.get(f"{API}/me", headers=bearer(second.key)).status_code == 200
    api.hub.bus.handle(RevokeApiKey(org_id=member.org_id, key_id=second.key_id))
    assert api.client.get(f"{API}/me", headers=bearer(second.key)).status_code == 200  # within the TTL
    api.outlive_cached_keys()
    assert_problem(api.client.get(f"{API}/me", headers=bearer(second.key)), 401, "unauthenticated")
    assert api.client.get(f"{API}/me", headers=bearer(member.key)).status_code == 200


def test_a_disabled_organisation_is_refused_once_the_ttl_has_passed(api: Api) -> None:
    member = api.create_org("agency")
    assert api.client.get(f"{API}/me", headers=bearer(member.key)).status_code == 200
    api.hub.bus.handle(DisableOrganisation(org_id=member.org_id, reason="contract ended"))
    api.outlive_cached_keys()
    assert_problem(api.client.get(f"{API}/me", headers=bearer(member.key)), 401, "unauthenticated")


def test_revoking_through_the_api_takes_effect_on_the_next_request(api: Api) -> None:
    member = api.create_org("institution")
    second = api.issue_key(member)
    assert api.client.get(f"{API}/me", headers=bearer(second.key)).status_code == 200
    revoked = api.client.delete(f"{API}/orgs/{member.org_id}/keys/{second.key_id}", headers=bearer(member.key))
    assert revoked.status_code == 204
    assert_problem(api.client.get(f"{API}/me", headers=bearer(second.key)), 401, "unauthenticated")


def test_a_wrong_secret_never_rides_on_a_cached_key(api: Api) -> None:
    member = api.create_org("institution")
    assert api.client.get(f"{API}/me", headers=bearer(member.key)).status_code == 200
    forged = member.key[:-4] + ("AAAA" if not member.key.endswith("AAAA") else "BBBB")
    assert_problem(api.client.get(f"{API}/me", headers=bearer(forged)), 401, "unauthenticated")
