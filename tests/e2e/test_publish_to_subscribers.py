"""Publish once, end to end with nothing faked: notices published, amended and cancelled through the
API reach a webhook subscriber (and, on RabbitMQ, an AMQP subscriber) in order, through the outbox,
the matching consumer, the notice store and the delivery dispatcher; the changes feed replays the same
history from any cursor."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from tests.support.api import API, bearer
from tests.support.notices import notice_body
from tests.support.receiver import Receiver
from tests.support.subscriptions import FAST, drain
from tests.support.waiting import eventually


@pytest.fixture
def running(settings_factory: Callable[..., Settings]) -> Iterator[tuple[Hub, TestClient]]:
    hub = bootstrap(settings_factory(syndication=FAST), migrate=True)  # the real notice reader
    hub.make_worker().start()
    try:
        with TestClient(create_app(hub=hub)) as client:
            yield hub, client
    finally:
        hub.close()


def key_for(hub: Hub, kind: OrgKind) -> str:
    _, issued = hub.bus.handle(CreateOrganisation(name=f"{kind} {uuid.uuid4().hex[:6]}", kind=kind))
    return issued.plaintext


def publish_amend_cancel(client: TestClient, key: str, **overrides: Any) -> str:
    created = client.post(f"{API}/notices", json=notice_body(**overrides), headers=bearer(key))
    assert created.status_code == 201, created.text
    notice_id = str(created.json()["id"])
    amended = client.post(f"{API}/notices/{notice_id}/amendments", headers=bearer(key), json={
        "reason": "deadline moved", "changes": {"dates": {"submission_deadline": "2026-03-20T10:00:00+09:00",
                                                          "opening": "2026-03-20T11:00:00+09:00"}}})
    assert amended.status_code == 201, amended.text
    cancelled = client.post(f"{API}/notices/{notice_id}/cancellation", json={"reason": "budget withdrawn"},
                            headers=bearer(key))
    assert cancelled.status_code == 201, cancelled.text
    return notice_id


def test_published_versions_reach_a_webhook_subscriber_in_order(running: tuple[Hub, TestClient]) -> None:
    hub, client = running
    institution, agency = key_for(hub, OrgKind.INSTITUTION), key_for(hub, OrgKind.AGENCY)
    receiver = Receiver()
    try:
        subscribed = client.post(f"{API}/subscriptions", headers=bearer(agency), json={
            "name": "Seoul works", "filter": {"categories": ["works"], "regions": ["KR-11"]},
            "channel": {"type": "webhook", "url": receiver.url}})
        assert subscribed.status_code == 201, subscribed.text
        receiver.secrets.append(subscribed.json()["secret"])

        wanted = publish_amend_cancel(client, institution)
        publish_amend_cancel(client, institution, delivery_region="KR-26")  # Busan: not for this filter

        eventually(lambda: len(receiver.delivered()) >= 3, timeout=30, what="three webhook deliveries")
        got = receiver.delivered()
        assert [(r.body["data"]["notice_id"], r.body["data"]["version"]) for r in got] == [
            (wanted, 1), (wanted, 2), (wanted, 3)]
        assert [r.body["type"] for r in got] == ["notice.published", "notice.amended", "notice.cancelled"]
        assert all(r.verified_with == [0] for r in got) and receiver.unverified == 0
        assert got[0].body["data"]["notice"]["title"] == notice_body()["title"]
        assert "dates.submission_deadline" in got[1].body["data"]["changed_fields"]
        assert got[2].body["data"]["notice"] is None and got[2].body["data"]["reason"] == "budget withdrawn"

        # the pull side tells the same story: the changes feed from any cursor, tombstone included
        feed = client.get(f"{API}/feeds/changes", params={"after": 0, "limit": 100}).json()
        mine = [c for c in feed["changes"] if c["notice_id"] == wanted]
        assert [c["version"] for c in mine] == [1, 2, 3]
        assert mine[-1].get("tombstone") is True
        cursor = mine[0]["seq"]
        resumed = client.get(f"{API}/feeds/changes", params={"after": cursor, "limit": 100}).json()
        assert [c["seq"] for c in resumed["changes"]] == [c["seq"] for c in feed["changes"] if c["seq"] > cursor]
    finally:
        receiver.close()


@pytest.mark.parametrize("backend", ["postgres-rabbitmq"], indirect=True)
def test_published_versions_reach_an_amqp_subscriber_in_order(running: tuple[Hub, TestClient]) -> None:
    hub, client = running
    institution, agency = key_for(hub, OrgKind.INSTITUTION), key_for(hub, OrgKind.AGENCY)
    subscribed = client.post(f"{API}/subscriptions", headers=bearer(agency), json={
        "name": "roads", "filter": {"classifications": ["45233"]}, "channel": {"type": "amqp"}})
    assert subscribed.status_code == 201, subscribed.text
    queue = subscribed.json()["subscription"]["channel"]["queue"]

    wanted = publish_amend_cancel(client, institution)
    publish_amend_cancel(client, institution, classifications=[{"scheme": "CPV", "code": "30192000-1"}])

    received: list[dict[str, Any]] = []
    eventually(lambda: len(drain(hub.settings.broker.url, queue, received)) >= 3, timeout=30,
               what="three AMQP messages")
    assert [(m["data"]["notice_id"], m["data"]["version"]) for m in received] == [
        (wanted, 1), (wanted, 2), (wanted, 3)]
