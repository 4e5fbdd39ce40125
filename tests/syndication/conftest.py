"""Fixtures: a hub on the chosen backend with a running worker (relay, matching consumer, delivery
dispatcher), its API, a fake notice reader (the notices slice's store is not wired yet) and a loopback
webhook receiver."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.api.app import create_app
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.subscriptions.reader import InMemoryNoticeReader
from hub.subscriptions.tables import DeliveryRow
from tests.syndication.receiver import Receiver
from tests.syndication.support import FAST, Publisher, agency_key

API = "/api/v1"


@dataclass
class Env:
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


@pytest.fixture
def make_env(settings_factory: Callable[..., Settings]) -> Iterator[Callable[..., Env]]:
    made: list[Env] = []

    def make(**syndication: Any) -> Env:
        reader = InMemoryNoticeReader()
        hub = bootstrap(settings_factory(syndication={**FAST, **syndication}), migrate=True,
                        dependencies={"notice_reader": reader})
        _, key = agency_key(hub)
        client = TestClient(create_app(hub=hub))
        client.__enter__()
        hub.make_worker().start()
        env = Env(hub, client, Publisher(hub, reader), key, [])
        made.append(env)
        return env

    yield make
    for env in made:
        env.client.__exit__(None, None, None)
        env.hub.close()
        for receiver in env.receivers:
            receiver.close()
