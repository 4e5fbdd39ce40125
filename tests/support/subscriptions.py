"""Shared helpers of the subscriptions tests: a hub with a fake notice reader, an agency with a key, a
way to publish notice versions as the notices flow does (store + event in one transaction), and the
:class:`Env` the ``make_env`` fixture (tests/integration/subscriptions/conftest.py) hands out."""

from __future__ import annotations

import json
import uuid
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pika
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.bootstrap import Hub
from hub.notices.events import NoticeVersionPublished
from hub.notices.model import NoticeContent
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.subscriptions.filters import NoticeFacts, SubscriptionFilter
from hub.subscriptions.tables import DeliveryRow
from tests.support.fakes import InMemoryNoticeReader
from tests.support.receiver import Receiver

API = "/api/v1"

FAST = {
    "time_scale": 0.0002,  # 5 s → 1 ms, 24 h → 17 s
    "jitter": 0.1,
    "allow_private_targets": True,
    "dispatch_interval_s": 0.05,
    "read_timeout_s": 1.0,
    "connect_timeout_s": 1.0,
    "max_retry_after_s": 1.0,
}


def content(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "Road paving of Gangnam-daero",
        "description": "Resurfacing 2 km of road",
        "category": "works",
        "classifications": [{"scheme": "CPV", "code": "45233222"}],
        "delivery_region": "KR-11",
        "estimated_value": "1250000000",
        "currency": "KRW",
        "dates": {"published": "2025-03-03T09:00:00+09:00"},
    }
    data.update(overrides)
    return data


@dataclass
class Publisher:
    hub: Hub
    reader: InMemoryNoticeReader
    institution: str = "inst-1"
    seq: int = 0

    def publish(self, notice_id: str, version: int, kind: str = "original", **overrides: Any) -> None:
        body = content(**overrides)
        self.seq += 1
        self.reader.put(notice_id, version, body, kind=kind, seq=self.seq, institution_org_id=self.institution)
        event = NoticeVersionPublished(
            notice_id=notice_id, version=version, kind=kind, institution_org_id=self.institution,
            category=body["category"], region=body.get("delivery_region"), seq=self.seq,
            published_at="2025-03-03T00:00:00+00:00",
        )
        with self.hub.uow() as uow:
            uow.publish(event)
            uow.commit()


def new_notice_id() -> str:
    return f"N-{uuid.uuid4().hex[:10]}"


def agency_key(hub: Hub) -> tuple[str, str]:
    org, issued = hub.bus.handle(CreateOrganisation(name=f"agency {uuid.uuid4().hex[:6]}", kind=OrgKind.AGENCY))
    return org.id, issued.plaintext


def drain(url: str, queue: str, into: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every message waiting in ``queue`` (acknowledged), appended to ``into``."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        while True:
            method, _props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                break
            into.append(json.loads(body))
    finally:
        connection.close()
    return into


@dataclass
class Env:
    """A hub on the chosen backend with a running worker (relay, matching consumer, delivery dispatcher),
    its API, a fake notice reader and loopback webhook receivers."""

    hub: Hub
    client: TestClient
    publisher: Publisher
    key: str
    receivers: list[Receiver]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def receiver(self) -> Receiver:
        receiver = Receiver()
        self.receivers.append(receiver)
        return receiver

    def subscribe_webhook(self, receiver: Receiver, flt: dict[str, Any] | None = None) -> str:
        response = self.client.post(f"{API}/subscriptions", headers=self.auth, json={
            "name": "test", "filter": flt or {}, "channel": {"type": "webhook", "url": receiver.url}})
        assert response.status_code == 201, response.text
        body = response.json()
        receiver.secrets.append(body["secret"])
        return str(body["subscription"]["id"])

    def deliveries(self, subscription_id: str, status: str | None = None) -> list[dict[str, Any]]:
        params = {"status": status} if status else {}
        response = self.client.get(f"{API}/subscriptions/{subscription_id}/deliveries", headers=self.auth,
                                   params=params)
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    def rows(self, subscription_id: str) -> list[DeliveryRow]:
        with self.hub.session_factory() as session:
            return list(session.scalars(select(DeliveryRow).where(DeliveryRow.subscription_id == subscription_id)))


def linear_scan_match(
    filters: Mapping[Hashable, SubscriptionFilter] | Iterable[tuple[Hashable, SubscriptionFilter]],
    notice: NoticeContent | NoticeFacts,
    institution_id: str = "",
) -> set[Hashable]:
    """The reference: test every filter. Correct by definition, O(subscriptions) per notice."""
    facts = notice if isinstance(notice, NoticeFacts) else NoticeFacts.of(notice, institution_id)
    pairs = filters.items() if isinstance(filters, Mapping) else filters
    return {subscription_id for subscription_id, flt in pairs if flt.matches(facts)}
