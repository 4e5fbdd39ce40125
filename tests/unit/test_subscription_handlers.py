"""Every subscriptions handler on the fake unit of work: commands through the bus (so their audit events
land in ``uow.outbox`` only on commit) and the matching consumer with its index and wake-up."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet

from hub.config import Settings
from hub.notices.events import NoticeVersionPublished
from hub.spine.bus import MessageBus
from hub.spine.errors import NotFound, Rejected
from hub.subscriptions.commands import (
    CreateSubscription,
    DeleteSubscription,
    ReplayDeliveries,
    RotateSubscriptionSecret,
    UpdateSubscription,
)
from hub.subscriptions.handlers import COMMAND_HANDLERS
from hub.subscriptions.index_cache import IndexCache
from hub.subscriptions.matcher import match_notice_version
from hub.subscriptions.model import FANOUT_SUBSCRIPTION_ID, DeliveryStatus, Subscription
from tests.support.fakes import FakeUnitOfWork
from tests.support.subscriptions import content

HOOK = "https://hooks.example.kr/in"


def make_bus(uow: FakeUnitOfWork, **settings: Any) -> MessageBus:
    return MessageBus(lambda: uow, COMMAND_HANDLERS, {}, dependencies={"settings": Settings(**settings)})


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def bus(uow: FakeUnitOfWork) -> MessageBus:
    return make_bus(uow, syndication={"time_scale": 0.5, "secret_overlap_s": 100})


def changes(uow: FakeUnitOfWork) -> list[tuple[str, str, dict[str, Any]]]:
    return [(e.payload["subscription_id"], e.payload["change"], e.payload["details"]) for e in uow.outbox]


def create(bus: MessageBus, sid: str = "s1", org: str = "org-a", **fields: Any) -> tuple[Subscription, str | None]:
    data: dict[str, Any] = {"filter": {}, "channel": "webhook", "url": HOOK, **fields}
    result: tuple[Subscription, str | None] = bus.handle(CreateSubscription(subscription_id=sid, org_id=org, **data))
    return result


def test_create_stores_a_webhook_subscription_with_its_secret_and_audits_it(
    bus: MessageBus, uow: FakeUnitOfWork
) -> None:
    _, secret = create(bus, name="  roads ", filter={"classifications": ["cpv:4523"], "regions": ["KR-11"]})
    stored = uow.subscriptions.get("s1")
    assert stored is not None and stored.name == "roads" and stored.url == HOOK and stored.org_id == "org-a"
    assert secret is not None and secret.startswith("whsec_")
    assert stored.secrets == [{"secret": secret, "expires_at": None}]  # no keys configured: stored as is
    assert not stored.routable and stored.matchable
    assert uow.subscriptions.changes_after(0) == [(1, "s1")]  # the matching indexes will see it
    [(sid, change, details)] = changes(uow)
    assert (sid, change) == ("s1", "created")
    assert details == {"filter": {"classifications": ["CPV:4523"], "categories": [], "regions": ["KR-11"],
                                  "institutions": [], "keywords": []}, "url": HOOK}
    assert secret not in str(uow.outbox[0].payload)


def test_secrets_are_sealed_when_keys_are_configured(uow: FakeUnitOfWork) -> None:
    bus = make_bus(uow, syndication={"secret_keys": [Fernet.generate_key().decode()]})
    _, secret = create(bus)
    stored = uow.subscriptions.get("s1")
    assert stored is not None and secret is not None
    assert "enc" in stored.secrets[0] and secret not in str(stored.secrets)


@pytest.mark.parametrize(("fields", "field"), [
    ({"filter": {"classifications": ["x"]}}, "filter.classifications.0"),
    ({"filter": {"colour": "red"}}, "filter.colour"),
    ({"channel": "sms"}, "channel.type"),
    ({"url": None}, "channel.url"),
    ({"url": "http://user:pw@hooks.example.kr/"}, "channel.url"),
    ({"url": "ftp://hooks.example.kr/"}, "channel.url"),
    ({"channel": "amqp", "url": None}, "channel.type"),  # this hub runs the in-process broker
])
def test_create_rejects_bad_input_and_keeps_nothing(
    bus: MessageBus, uow: FakeUnitOfWork, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(Rejected) as caught:
        create(bus, **fields)
    assert caught.value.field == field
    assert uow.committed == 0 and uow.outbox == []
    assert uow.subscriptions.get("s1") is None


def test_amqp_subscriptions_add_the_hub_fanout_once_and_know_if_they_are_routable(uow: FakeUnitOfWork) -> None:
    bus = make_bus(uow, broker={"kind": "rabbitmq"})
    routable, secret = create(bus, "q1", channel="amqp", url=None, filter={"regions": ["KR"]})
    finer, _ = create(bus, "q2", channel="amqp", url=None, filter={"regions": ["KR"], "keywords": ["road"]})
    assert secret is None and routable.url is None
    assert routable.routable and routable.bindings == ["notice.*.KR.*"] and not routable.matchable
    assert not finer.routable and finer.bindings == [] and finer.matchable
    fanout = uow.subscriptions.get(FANOUT_SUBSCRIPTION_ID)
    assert fanout is not None and fanout.org_id is None and fanout.matchable
    assert sorted(uow.subscriptions.stored) == sorted([FANOUT_SUBSCRIPTION_ID, "q1", "q2"])


def test_update_changes_what_it_is_told_and_audits_it(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    create(bus)
    updated = bus.handle(UpdateSubscription(subscription_id="s1", org_id="org-a", name="works",
                                            filter={"categories": ["works"]}, url="https://other.example.kr/x"))
    stored = uow.subscriptions.get("s1")
    assert stored == updated
    assert stored is not None and stored.name == "works" and stored.url == "https://other.example.kr/x"
    assert stored.filter.categories == ("works",)
    assert changes(uow)[-1] == ("s1", "updated", {"name": "works", "filter": {"categories": ["works"]},
                                                  "url": "https://other.example.kr/x", "reactivated": False})


def test_update_reactivates_a_disabled_subscription(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    sub, _ = create(bus)
    sub.disable("the endpoint answered 410 Gone", datetime.now(UTC))
    uow.subscriptions.save(sub)
    bus.handle(UpdateSubscription(subscription_id="s1", org_id="org-a", reactivate=True))
    stored = uow.subscriptions.get("s1")
    assert stored is not None and stored.status == "active" and stored.disabled_reason is None
    assert changes(uow)[-1] == ("s1", "updated", {"reactivated": True, "catch_up": True, "resumed": 0})
    bus.handle(UpdateSubscription(subscription_id="s1", org_id="org-a", reactivate=True))  # active already
    assert changes(uow)[-1] == ("s1", "updated", {"reactivated": True})


def test_the_owner_disables_once_and_cannot_disable_and_re_enable_at_once(bus: MessageBus, uow: FakeUnitOfWork
                                                                         ) -> None:
    create(bus)
    bus.handle(UpdateSubscription(subscription_id="s1", org_id="org-a", disable=True))
    stored = uow.subscriptions.get("s1")
    assert stored is not None and stored.status == "disabled" and stored.disabled_reason == "disabled by its owner"
    assert changes(uow)[-1] == ("s1", "updated", {"reactivated": False, "disabled": True})
    bus.handle(UpdateSubscription(subscription_id="s1", org_id="org-a", disable=True))
    assert changes(uow)[-1] == ("s1", "updated", {"reactivated": False})  # no second transition
    with pytest.raises(Rejected) as caught:
        bus.handle(UpdateSubscription(subscription_id="s1", org_id="org-a", disable=True, reactivate=True))
    assert caught.value.field == "status"


def test_an_amqp_subscription_has_no_url_to_change(uow: FakeUnitOfWork) -> None:
    bus = make_bus(uow, broker={"kind": "rabbitmq"})
    create(bus, "q1", channel="amqp", url=None)
    with pytest.raises(Rejected) as caught:
        bus.handle(UpdateSubscription(subscription_id="q1", org_id="org-a", url=HOOK))
    assert caught.value.field == "channel.url"


@pytest.mark.parametrize("command", [
    UpdateSubscription(subscription_id="s1", org_id="org-b", name="mine now"),
    DeleteSubscription(subscription_id="s1", org_id="org-b"),
    RotateSubscriptionSecret(subscription_id="s1", org_id="org-b"),
    ReplayDeliveries(subscription_id="s1", org_id="org-b"),
    DeleteSubscription(subscription_id="missing", org_id="org-a"),
    DeleteSubscription(subscription_id=FANOUT_SUBSCRIPTION_ID, org_id="org-a"),  # hub-owned: nobody's
])
def test_another_organisations_subscription_is_not_found(bus: MessageBus, uow: FakeUnitOfWork,
                                                         command: Any) -> None:
    create(bus)
    uow.subscriptions.add(Subscription.fanout(datetime.now(UTC)))
    before = uow.subscriptions.get("s1")
    with pytest.raises(NotFound):
        bus.handle(command)
    assert uow.subscriptions.get("s1") == before
    assert uow.committed == 1  # only the creation


def deliver(uow: FakeUnitOfWork, sid: str, *statuses: str) -> list[int]:
    ids = []
    for version, status in enumerate(statuses, start=1):
        uow.deliveries.add_deliveries([sid], "N-1", version, version, "original")
        delivery_id = max(uow.deliveries.rows)
        uow.deliveries._set(delivery_id, status=status, attempts=3)
        ids.append(delivery_id)
    return ids


def test_delete_ends_open_deliveries_and_removes_the_subscription(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    create(bus)
    done, waiting, retrying = deliver(uow, "s1", "delivered", "pending", "failed")
    deleted = bus.handle(DeleteSubscription(subscription_id="s1", org_id="org-a"))
    assert deleted.id == "s1" and uow.subscriptions.get("s1") is None
    rows = {i: r for i, (_, r) in uow.deliveries.rows.items()}
    assert rows[done].status == "delivered"
    assert {rows[waiting].status, rows[retrying].status} == {"dead"}
    assert rows[waiting].last_error == "subscription deleted"
    assert changes(uow)[-1][:2] == ("s1", "deleted")
    assert uow.subscriptions.changes_after(1) == [(2, "s1")]


def test_rotation_keeps_the_old_secret_signing_through_the_overlap(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    sub, first = create(bus)
    long_gone = {"secret": "whsec_old", "expires_at": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()}
    sub.secrets.append(long_gone)
    uow.subscriptions.save(sub)
    started = datetime.now(UTC)
    second, until = bus.handle(RotateSubscriptionSecret(subscription_id="s1", org_id="org-a"))
    stored = uow.subscriptions.get("s1")
    assert stored is not None
    assert stored.secrets == [{"secret": second, "expires_at": None}, {"secret": first, "expires_at": until}]
    window = (datetime.fromisoformat(until) - started).total_seconds()
    assert 49 <= window <= 51  # secret_overlap_s * time_scale
    assert changes(uow)[-1] == ("s1", "secret_rotated", {"previous_valid_until": until})


def test_only_webhooks_have_a_secret_to_rotate(uow: FakeUnitOfWork) -> None:
    bus = make_bus(uow, broker={"kind": "rabbitmq"})
    create(bus, "q1", channel="amqp", url=None)
    with pytest.raises(Rejected) as caught:
        bus.handle(RotateSubscriptionSecret(subscription_id="q1", org_id="org-a"))
    assert caught.value.field == "channel"


def test_replay_puts_dead_deliveries_back_and_audits_which(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    create(bus)
    first_dead, delivered, second_dead = deliver(uow, "s1", "dead", "delivered", "dead")
    assert bus.handle(ReplayDeliveries(subscription_id="s1", org_id="org-a", delivery_ids=[second_dead,
                                                                                           delivered])) == [second_dead]
    rows = {i: r for i, (_, r) in uow.deliveries.rows.items()}
    assert rows[second_dead].status == "pending" and rows[second_dead].attempts == 0
    assert rows[first_dead].status == "dead" and rows[delivered].status == "delivered"
    assert changes(uow)[-1] == ("s1", "deliveries_replayed", {"delivery_ids": [second_dead]})
    assert bus.handle(ReplayDeliveries(subscription_id="s1", org_id="org-a")) == [first_dead]
    assert bus.handle(ReplayDeliveries(subscription_id="s1", org_id="org-a")) == []
    assert [c for _, c, _ in changes(uow)].count("deliveries_replayed") == 2  # nothing replayed: no event


def published(notice_id: str, version: int, kind: str = "original", seq: int | None = None,
              **overrides: Any) -> NoticeVersionPublished:
    body = content(**overrides)
    return NoticeVersionPublished(notice_id=notice_id, version=version, kind=kind, institution_org_id="inst-1",
                                  category=body["category"], region=body.get("delivery_region"),
                                  seq=seq or version,
                                  published_at="2025-03-03T00:00:00+00:00")


def test_matching_writes_deliveries_and_wakes_the_dispatcher_only_after_commit(
    bus: MessageBus, uow: FakeUnitOfWork
) -> None:
    create(bus, "seoul", filter={"regions": ["KR-11"]})
    create(bus, "busan", filter={"regions": ["KR-26"]})
    index, wake = IndexCache(), threading.Event()
    uow.notice_versions.put("N-1", 1, content())

    with uow:
        assert match_notice_version(published("N-1", 1), uow, index, wake) == 1
        assert not wake.is_set()  # nothing the dispatcher could see yet
        uow.commit()
    assert wake.is_set()
    assert [(sid, r.version) for sid, r in uow.deliveries.rows.values()] == [("seoul", 1)]
    assert uow.deliveries.payloads[("N-1", 1)]["routing_key"] == "notice.works.KR.KR-11"

    wake.clear()
    uow.notice_versions.put("N-1", 2, content(delivery_region="KR-26"))
    with uow:  # an amendment moving out of Seoul still reaches Seoul, and now Busan too
        assert match_notice_version(published("N-1", 2, "amendment", delivery_region="KR-26"), uow, index, wake) == 2
        uow.rollback()
    assert not wake.is_set()  # rolled back: no wake-up


def test_the_index_follows_changes_without_a_rebuild(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    index, wake = IndexCache(), threading.Event()
    create(bus, "seoul", filter={"regions": ["KR-11"]})
    uow.notice_versions.put("N-1", 1, content())
    assert match_notice_version(published("N-1", 1, seq=1), uow, index, wake) == 1
    bus.handle(UpdateSubscription(subscription_id="seoul", org_id="org-a", filter={"regions": ["KR-26"]}))
    uow.notice_versions.put("N-2", 1, content())
    assert match_notice_version(published("N-2", 1, seq=2), uow, index, wake) == 0
    create(bus, "korea", filter={"regions": ["KR"]})
    uow.notice_versions.put("N-3", 1, content())
    assert match_notice_version(published("N-3", 1, seq=3), uow, index, wake) == 1
    assert uow.matching_cursor.position() == 3
    assert sorted({sid for sid, _ in uow.deliveries.rows.values()}) == ["korea", "seoul"]
    assert {r.status for _, r in uow.deliveries.rows.values()} == {DeliveryStatus.PENDING.value}
