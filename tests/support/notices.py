"""What the notice tests share: a valid notice body, and a client that creates organisations and
publishes notices through the real API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.api.app import create_app
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.spine.tables import OutboxRow
from tests.support.api import API, bearer

__all__ = ["NoticesClient", "notice_body", "notices_client"]


def notice_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Road resurfacing in Jongno-gu",
        "description": "Resurfacing of 12 km of district roads, including drainage works",
        "category": "works",
        "classifications": [{"scheme": "CPV", "code": "45233140-2"}],
        "delivery_region": "KR-11",
        "estimated_value": "1250000000",
        "currency": "KRW",
        "procedure": "open",
        "dates": {
            "published": "2026-03-02T09:00:00+09:00",
            "clarification_deadline": "2026-03-09T18:00:00+09:00",
            "submission_deadline": "2026-03-16T10:00:00+09:00",
            "opening": "2026-03-16T11:00:00+09:00",
        },
        "lots": [{"id": "L1", "title": "North section", "value": "700000000"}],
        "documents": [{"title": "Specification", "url": "https://files.example.kr/spec.pdf", "sha256": "ab" * 32}],
        "buyer": {"id": "KR-GOV-3000000", "name": "Jongno-gu Office"},
    }
    body.update(overrides)
    return body


@dataclass
class NoticesClient:
    hub: Hub
    http: TestClient
    operator_key: str

    def org(self, kind: str = "institution") -> tuple[str, dict[str, str]]:
        response = self.http.post(f"{API}/orgs", json={"name": f"{kind} {uuid.uuid4().hex[:6]}", "kind": kind},
                                  headers=bearer(self.operator_key))
        assert response.status_code == 201, response.text
        return response.json()["organisation"]["id"], bearer(response.json()["api_key"])

    def publish(self, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
        response = self.http.post(f"{API}/notices", json=notice_body(**overrides), headers=headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def events(self) -> list[dict[str, Any]]:
        with self.hub.session_factory() as session:
            rows = session.scalars(select(OutboxRow).where(OutboxRow.message_type == "NoticeVersionPublished")
                                   .order_by(OutboxRow.id))
            return [dict(r.payload) for r in rows]


@contextmanager
def notices_client(url: str) -> Iterator[NoticesClient]:
    """A hub on ``url`` with an operator key and the API in a test client; no worker runs."""
    hub = bootstrap(Settings(database={"url": url}, broker={"kind": "inprocess"}), migrate=True)
    _, issued = hub.bus.handle(CreateOrganisation(name="Hub operations", kind=OrgKind.OPERATOR))
    try:
        with TestClient(create_app(hub=hub)) as http:
            yield NoticesClient(hub, http, issued.plaintext)
    finally:
        hub.close()
