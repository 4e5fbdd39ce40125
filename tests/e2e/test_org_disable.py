"""Disabling an organisation: every key it holds is refused with 401 (as a revoked key is, so a
caller learns nothing more than "not authenticated"), other organisations are untouched, enabling
restores the same keys, and both changes are audited once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from hub.organisations.commands import DisableOrganisation, EnableOrganisation, RevokeApiKey
from hub.spine.errors import NotFound
from hub.spine.tables import OutboxRow
from tests.support.api import API, bearer
from tests.support.api_session import ApiSession as Api
from tests.support.api_session import api_session, assert_problem


@pytest.fixture(params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    with api_session(str(request.getfixturevalue(f"{request.param}_url"))) as session:
        yield session


def outbox_types(api: Api, org_id: str) -> list[str]:
    with api.hub.session_factory() as session:
        rows = session.scalars(select(OutboxRow)).all()
    return [row.message_type for row in rows if row.payload.get("org_id") == org_id]


def test_a_disabled_organisation_is_refused_until_enabled(api: Api) -> None:
    member = api.create_org("institution")
    second = api.issue_key(member, label="ci")
    bystander = api.create_org("agency")

    api.hub.bus.handle(DisableOrganisation(org_id=member.org_id, reason="contract ended"))
    api.hub.bus.handle(DisableOrganisation(org_id=member.org_id))  # again: no second event
    api.outlive_cached_keys()  # changed on the bus, not through this API process
    for key in (member.key, second.key):
        refused = api.client.get(f"{API}/me", headers=bearer(key))
        assert_problem(refused, 401, "unauthenticated")
    assert api.client.get(f"{API}/me", headers=bearer(bystander.key)).status_code == 200
    listed = {o["id"]: o for o in api.client.get(f"{API}/orgs", headers=bearer(api.operator.key)).json()}
    assert listed[member.org_id]["disabled_at"] is not None

    api.hub.bus.handle(EnableOrganisation(org_id=member.org_id))
    for key in (member.key, second.key):
        assert api.client.get(f"{API}/me", headers=bearer(key)).json()["organisation"]["id"] == member.org_id

    types = outbox_types(api, member.org_id)
    assert types.count("OrganisationDisabled") == 1 and types.count("OrganisationEnabled") == 1


def test_disabling_an_unknown_organisation_is_not_found(api: Api) -> None:
    with pytest.raises(NotFound):
        api.hub.bus.handle(DisableOrganisation(org_id="no-such-org"))


def test_revoking_by_the_whole_key_revokes_it_and_no_error_repeats_a_secret(api: Api) -> None:
    member = api.create_org("supplier")
    second = api.issue_key(member)
    api.hub.bus.handle(RevokeApiKey(org_id=member.org_id, key_id=second.key))
    api.outlive_cached_keys()
    assert_problem(api.client.get(f"{API}/me", headers=bearer(second.key)), 401, "unauthenticated")
    assert api.keys(member)[second.key_id]["active"] is False

    unknown = f"g2b_{'0' * 16}_{'S' * 43}"
    with pytest.raises(NotFound) as caught:
        api.hub.bus.handle(RevokeApiKey(org_id=member.org_id, key_id=unknown))
    assert "S" * 8 not in str(caught.value) and "0" * 16 in str(caught.value)
