"""Access control of the HTTP API, for each organisation kind, on SQLite and on PostgreSQL.

Authentication (401), function-level scopes (403), object-level ownership (404 for another org's
objects, indistinguishable from a missing one) and the API key life cycle, through the real app.
No worker runs unless a test starts one: API commands only write the outbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from hub.organisations.model import OrgKind
from hub.spine.tables import OutboxRow
from tests.support.api import API, bearer
from tests.support.api_session import ApiSession as Api
from tests.support.api_session import Member, api_session, assert_problem
from tests.support.waiting import eventually

KINDS = [k.value for k in OrgKind]


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    with api_session(database_url) as session:
        yield session


def assert_unauthenticated(response: httpx.Response) -> None:
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("kind", KINDS)
def test_requests_without_a_valid_key_are_unauthenticated(api: Api, kind: str) -> None:
    member = api.create_org(kind)
    own = f"{API}/orgs/{member.org_id}"
    assert api.client.get(own, headers=bearer(member.key)).status_code == 200

    assert_unauthenticated(api.client.get(own))
    assert_unauthenticated(api.client.get(f"{API}/me"))
    for malformed in ["not-a-key", "g2b_only", "g2b__secret", f"x{member.key}"]:
        assert_unauthenticated(api.client.get(own, headers=bearer(malformed)))
        assert_unauthenticated(api.client.get(own, headers={"X-API-Key": malformed}))
    wrong_secret = f"g2b_{member.key_id}_{'A' * 43}"
    assert_unauthenticated(api.client.get(own, headers=bearer(wrong_secret)))
    assert_unauthenticated(api.client.get(own, headers={"Authorization": f"Basic {member.key}"}))


@pytest.mark.parametrize("kind", KINDS)
def test_the_key_works_in_either_header(api: Api, kind: str) -> None:
    member = api.create_org(kind)
    for headers in (bearer(member.key), {"X-API-Key": member.key}):
        response = api.client.get(f"{API}/me", headers=headers)
        assert response.status_code == 200, response.text
        me = response.json()
        assert (me["organisation"]["id"], me["organisation"]["kind"], me["key"]["id"]) == (
            member.org_id,
            kind,
            member.key_id,
        )


@pytest.mark.parametrize("kind", KINDS)
def test_key_issue_and_revoke_round_trip(api: Api, kind: str) -> None:
    member = api.create_org(kind)
    second = api.issue_key(member, label="ci pipeline")
    assert api.client.get(f"{API}/me", headers=bearer(second.key)).json()["organisation"]["id"] == member.org_id

    listed = api.client.get(f"{API}/orgs/{member.org_id}/keys", headers=bearer(member.key))
    assert listed.status_code == 200
    by_id = {k["id"]: k for k in listed.json()}
    assert set(by_id) == {member.key_id, second.key_id}
    assert by_id[second.key_id]["label"] == "ci pipeline"
    assert all("hash" not in field and "secret" not in field for k in listed.json() for field in k)
    assert second.key.split("_", 2)[2] not in listed.text

    revoked = api.client.delete(f"{API}/orgs/{member.org_id}/keys/{second.key_id}", headers=bearer(member.key))
    assert revoked.status_code == 204
    assert_unauthenticated(api.client.get(f"{API}/me", headers=bearer(second.key)))
    assert api.client.get(f"{API}/me", headers=bearer(member.key)).status_code == 200

    after = {k["id"]: k for k in api.client.get(f"{API}/orgs/{member.org_id}/keys", headers=bearer(member.key)).json()}
    assert after[second.key_id]["active"] is False and after[second.key_id]["revoked_at"] is not None
    assert after[member.key_id]["active"] is True
    unknown = api.client.delete(f"{API}/orgs/{member.org_id}/keys/{'0' * 16}", headers=bearer(member.key))
    assert_problem(unknown, 404, "not-found")


@pytest.mark.parametrize("kind", KINDS)
def test_disabled_organisation_is_unauthenticated(api: Api, kind: str) -> None:
    member = api.create_org(kind)
    with api.hub.uow() as uow:
        org = uow.organisations.get(member.org_id)
        assert org is not None
        org.disabled_at = datetime.now(UTC)
        uow.commit()
    api.outlive_cached_keys()
    assert_unauthenticated(api.client.get(f"{API}/me", headers=bearer(member.key)))


OPERATOR_ONLY = [
    ("post", f"{API}/orgs", {"name": "Sneaky", "kind": "operator"}),
    ("get", f"{API}/orgs", None),
    ("get", f"{API}/dead-letters", None),
    ("post", f"{API}/dead-letters/replay", {}),
]


@pytest.mark.parametrize("kind", KINDS)
def test_missing_scope_is_forbidden(api: Api, kind: str) -> None:
    member = api.create_org(kind)
    # Operators hold every scope by default, so each kind is checked with a narrowed key too.
    narrow = api.issue_key(member, scopes=["orgs:read"])
    callers = [narrow] if kind == "operator" else [member, narrow]
    for caller in callers:
        for method, path, body in OPERATOR_ONLY:
            response = api.client.request(method, path, json=body, headers=bearer(caller.key))
            problem = assert_problem(response, 403, "forbidden")
            assert "scope" in problem["detail"]
    listing = api.client.get(f"{API}/orgs/{member.org_id}/keys", headers=bearer(narrow.key))
    assert_problem(listing, 403, "forbidden")
    assert api.client.get(f"{API}/orgs/{member.org_id}", headers=bearer(narrow.key)).status_code == 200
    # the refused POST /orgs created nothing: the seeded operator and this member only
    assert len(api.client.get(f"{API}/orgs", headers=bearer(api.operator.key)).json()) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_other_organisations_objects_are_not_found(api: Api, kind: str) -> None:
    member = api.create_org(kind)
    if kind == "operator":
        # Without orgs:admin an operator's key is confined to its own organisation like any other.
        member = api.issue_key(member, scopes=["orgs:read", "keys:manage", "audit:read"])
    other = api.create_org("institution")
    missing = str(uuid.uuid4())
    headers = bearer(member.key)

    for org_id in (other.org_id, missing):
        assert_problem(api.client.get(f"{API}/orgs/{org_id}", headers=headers), 404, "not-found")
        assert_problem(api.client.get(f"{API}/orgs/{org_id}/keys", headers=headers), 404, "not-found")
        assert_problem(api.client.post(f"{API}/orgs/{org_id}/keys", json={}, headers=headers), 404, "not-found")
    revoke = api.client.delete(f"{API}/orgs/{other.org_id}/keys/{other.key_id}", headers=headers)
    assert_problem(revoke, 404, "not-found")
    assert api.client.get(f"{API}/me", headers=bearer(other.key)).status_code == 200

    # The answer for someone else's org and for no org differs only in the id it names.
    foreign = api.client.get(f"{API}/orgs/{other.org_id}", headers=headers).json()
    absent = api.client.get(f"{API}/orgs/{missing}", headers=headers).json()
    assert foreign["detail"].replace(other.org_id, "ID") == absent["detail"].replace(missing, "ID")
    assert foreign["title"] == absent["title"]


@pytest.mark.parametrize("kind", KINDS)
def test_own_organisation_is_readable(api: Api, kind: str) -> None:
    member = api.create_org(kind, name=f"Own {kind}")
    response = api.client.get(f"{API}/orgs/{member.org_id}", headers=bearer(member.key))
    assert response.status_code == 200
    assert response.json()["id"] == member.org_id
    assert response.json()["kind"] == kind
    assert response.json()["name"] == f"Own {kind}"


@pytest.mark.parametrize("kind", KINDS)
def test_a_key_cannot_mint_a_stronger_key(api: Api, kind: str) -> None:
    member = api.create_org(kind)
    manager = api.issue_key(member, scopes=["keys:manage"])
    minted = api.client.post(f"{API}/orgs/{member.org_id}/keys", json={}, headers=bearer(manager.key))
    assert minted.status_code == 201
    assert minted.json()["key"]["scopes"] == ["keys:manage"]
    stronger = api.client.post(
        f"{API}/orgs/{member.org_id}/keys", json={"scopes": ["orgs:read"]}, headers=bearer(manager.key)
    )
    assert_problem(stronger, 403, "forbidden")


def test_operator_reaches_and_lists_every_organisation(api: Api) -> None:
    institution = api.create_org("institution")
    agency = api.create_org("agency")
    headers = bearer(api.operator.key)
    assert api.client.get(f"{API}/orgs/{institution.org_id}", headers=headers).status_code == 200
    issued = api.client.post(f"{API}/orgs/{agency.org_id}/keys", json={"label": "by operator"}, headers=headers)
    assert issued.status_code == 201
    assert api.client.get(f"{API}/me", headers=bearer(issued.json()["api_key"])).json()["organisation"]["id"] == (
        agency.org_id
    )
    everyone = {o["id"] for o in api.client.get(f"{API}/orgs", headers=headers).json()}
    assert everyone == {api.operator.org_id, institution.org_id, agency.org_id}
    agencies = api.client.get(f"{API}/orgs", params={"kind": "agency"}, headers=headers).json()
    assert [o["id"] for o in agencies] == [agency.org_id]
    # Scopes beyond what the organisation's kind allows are refused, naming the field.
    too_much = api.client.post(f"{API}/orgs/{agency.org_id}/keys", json={"scopes": ["dlq:admin"]}, headers=headers)
    problem = assert_problem(too_much, 422, "rejected")
    assert problem["errors"][0]["pointer"] == "#/body/scopes"


def test_commands_carry_the_request_id_and_the_actor(api: Api) -> None:
    response = api.client.post(
        f"{API}/orgs",
        json={"name": "Traced", "kind": "agency"},
        headers={**bearer(api.operator.key), "X-Request-ID": "trace-me-42"},
    )
    assert response.status_code == 201
    with api.hub.session_factory() as session:
        rows = list(session.scalars(select(OutboxRow).where(OutboxRow.correlation_id == "trace-me-42")))
    assert {r.message_type for r in rows} == {"OrganisationCreated", "ApiKeyIssued"}
    assert all(r.payload["actor_org_id"] == api.operator.org_id for r in rows)


def test_last_use_of_a_key_is_recorded(api: Api) -> None:
    member = api.create_org("supplier")
    assert api.client.get(f"{API}/me", headers=bearer(member.key)).status_code == 200
    keys = api.client.get(f"{API}/orgs/{member.org_id}/keys", headers=bearer(api.operator.key)).json()
    assert next(k for k in keys if k["id"] == member.key_id)["last_used_at"] is not None


def test_audit_trail_shows_each_org_only_its_own_entries(api: Api) -> None:
    api.hub.make_worker().start()
    institution = api.create_org("institution")
    agency = api.create_org("agency")
    api.issue_key(agency)

    def entries(member: Member) -> list[dict[str, Any]]:
        response = api.client.get(f"{API}/audit", headers=bearer(member.key))
        assert response.status_code == 200
        return list(response.json()["items"])

    # 2 events per org created + 1 key issued; the audit consumer applies them asynchronously.
    eventually(lambda: len(entries(api.operator)) >= 5, what="audit entries for every event")
    everything = entries(api.operator)
    assert {e["subject_org_id"] for e in everything} >= {institution.org_id, agency.org_id}
    own = entries(agency)
    assert own and all(agency.org_id in (e["actor_org_id"], e["subject_org_id"]) for e in own)
    assert {e["event_type"] for e in own} == {"OrganisationCreated", "ApiKeyIssued"}
    assert all(e["subject_org_id"] == institution.org_id for e in entries(institution))

    first = api.client.get(f"{API}/audit", params={"limit": 2}, headers=bearer(api.operator.key)).json()
    assert len(first["items"]) == 2 and first["next_before"] == first["items"][-1]["id"]
    older = api.client.get(
        f"{API}/audit", params={"limit": 2, "before": first["next_before"]}, headers=bearer(api.operator.key)
    ).json()
    assert all(e["id"] < first["next_before"] for e in older["items"])


def test_operator_administers_dead_letters(api: Api) -> None:
    headers = bearer(api.operator.key)
    listed = api.client.get(f"{API}/dead-letters", headers=headers)
    assert listed.status_code == 200 and listed.json() == []
    replayed = api.client.post(f"{API}/dead-letters/replay", json={"ids": [1, 2]}, headers=headers)
    assert replayed.status_code == 200 and replayed.json() == {"replayed": []}
