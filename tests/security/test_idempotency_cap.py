"""One organisation cannot grow the remembered ``Idempotency-Key`` values without bound: past the
per-organisation cap a new key is refused with a problem naming the header, before anything is stored
(never an accepted notice whose key was silently dropped); replays, requests without a key and other
organisations are unaffected, and keys free up as they expire."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from hub.api.app import create_app
from hub.bootstrap import bootstrap
from hub.config import Settings
from hub.notices.tables import IdempotencyRow
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.spine.tables import OutboxRow
from tests.support.api import API
from tests.support.notices import NoticesClient, notice_body

CAP = 3


@pytest.fixture(params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest) -> Iterator[NoticesClient]:
    url = str(request.getfixturevalue(f"{request.param}_url"))
    settings = Settings(database={"url": url}, broker={"kind": "inprocess"},
                        syndication={"publication": {"idempotency_max_keys_per_org": CAP}})
    hub = bootstrap(settings, migrate=True)
    _, issued = hub.bus.handle(CreateOrganisation(name="Hub operations", kind=OrgKind.OPERATOR))
    try:
        with TestClient(create_app(hub=hub)) as http:
            yield NoticesClient(hub, http, issued.plaintext)
    finally:
        hub.close()


def publish(api: NoticesClient, headers: dict[str, str], key: str | None, title: str = "Works") -> Any:
    extra = {"Idempotency-Key": key} if key is not None else {}
    return api.http.post(f"{API}/notices", json=notice_body(title=title), headers={**headers, **extra})


def published(api: NoticesClient) -> int:
    with api.hub.session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(OutboxRow)
                                  .where(OutboxRow.message_type == "NoticeVersionPublished")) or 0)


def test_a_new_key_past_the_cap_is_refused_before_anything_is_stored(api: NoticesClient) -> None:
    org_id, headers = api.org()
    for i in range(CAP):
        assert publish(api, headers, f"key-{i}", f"Works {i}").status_code == 201
    before = published(api)

    refused = publish(api, headers, "key-over", "One too many")
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["type"].endswith("/idempotency-key-limit") and "Idempotency-Key" in problem["detail"]
    assert str(CAP) in problem["detail"]
    assert published(api) == before  # nothing accepted, nothing dropped silently
    with api.hub.session_factory() as session:
        assert session.get(IdempotencyRow, (org_id, "key-over")) is None

    # A remembered key still replays; the same notice without a key is accepted; amendments with a new
    # key are held to the same cap.
    again = publish(api, headers, "key-0", "Works 0")
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    created = publish(api, headers, None, "No key")
    assert created.status_code == 201
    amend = api.http.post(f"{API}/notices/{created.json()['id']}/amendments",
                          json={"reason": "typo", "changes": {"title": "Fixed"}},
                          headers={**headers, "Idempotency-Key": "amend-1"})
    assert amend.status_code == 409 and "Idempotency-Key" in amend.json()["detail"]

    # Another organisation has its own budget.
    _, other = api.org()
    assert publish(api, other, "key-over").status_code == 201


def test_expired_keys_free_the_budget_and_are_purged(api: NoticesClient) -> None:
    org_id, headers = api.org()
    for i in range(CAP):
        assert publish(api, headers, f"old-{i}", f"Works {i}").status_code == 201
    assert publish(api, headers, "fresh").status_code == 409
    ttl_h = api.hub.settings.syndication.publication.idempotency_ttl_h
    with api.hub.session_factory() as session:
        session.execute(update(IdempotencyRow).where(IdempotencyRow.org_id == org_id)
                        .values(created_at=datetime.now(UTC) - timedelta(hours=ttl_h + 1)))
        session.commit()
    assert publish(api, headers, "fresh").status_code == 201
    assert api.hub.purge_idempotency_keys() == CAP
    with api.hub.session_factory() as session:
        keys = session.scalars(select(IdempotencyRow.key).where(IdempotencyRow.org_id == org_id)).all()
    assert keys == ["fresh"]


def test_the_openapi_documents_the_limit_on_every_write_that_takes_a_key(api: NoticesClient) -> None:
    paths = api.http.get("/openapi.json").json()["paths"]
    for path in ("/notices", "/notices/{notice_id}/amendments", "/notices/{notice_id}/cancellation",
                 "/notices/import/pps", "/notices/import/ocds", "/notices/bulk"):
        documented = paths[f"{API}{path}"]["post"]["responses"]["409"]
        assert "Idempotency-Key" in documented["description"], path
        assert "application/problem+json" in documented["content"], path
