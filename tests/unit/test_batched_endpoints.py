"""Registered webhook endpoints and batched matching on the fake unit of work: the endpoint aggregate,
its commands through the bus, the collapse of matched subscriptions into one delivery per endpoint per
version, amendments reaching earlier recipients, and the bulk loader."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from hub.config import Settings
from hub.spine.bus import MessageBus
from hub.spine.errors import NotFound, Rejected
from hub.subscriptions.batching import batched_body
from hub.subscriptions.bulk_load import load_subscriptions
from hub.subscriptions.commands import (
    CreateSubscription,
    DeleteSubscription,
    RegisterEndpoint,
    ReplayDeliveries,
    RotateSubscriptionSecret,
    UpdateSubscription,
)
from hub.subscriptions.handlers import COMMAND_HANDLERS
from hub.subscriptions.index_cache import RELOAD_ALL, IndexCache
from hub.subscriptions.matcher import match_notice_version
from hub.subscriptions.model import Channel, Subscription
from tests.support.fakes import FakeUnitOfWork
from tests.support.subscriptions import content
from tests.unit.test_subscription_handlers import published

HOOK = "https://alerts.example.kr/batch"


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def bus(uow: FakeUnitOfWork) -> MessageBus:
    settings = Settings(syndication={"secret_overlap_s": 100})
    return MessageBus(lambda: uow, COMMAND_HANDLERS, {}, dependencies={"settings": settings})


def register(bus: MessageBus, endpoint_id: str = "ep1", org: str = "org-a") -> tuple[Subscription, str]:
    result: tuple[Subscription, str] = bus.handle(RegisterEndpoint(endpoint_id=endpoint_id, org_id=org,
                                                                   name="alerts", url=HOOK))
    return result


def on(bus: MessageBus, sid: str, endpoint_id: str = "ep1", org: str = "org-a", **flt: Any) -> Subscription:
    sub, secret = bus.handle(CreateSubscription(subscription_id=sid, org_id=org, filter=flt, channel="endpoint",
                                                endpoint_id=endpoint_id))
    assert secret is None  # the endpoint signs
    result: Subscription = sub
    return result


def hook(bus: MessageBus, sid: str, **flt: Any) -> None:
    bus.handle(CreateSubscription(subscription_id=sid, org_id="org-a", filter=flt, channel="webhook",
                                  url="https://agency.example.kr/in"))


def match(uow: FakeUnitOfWork, index: IndexCache, notice_id: str, version: int, seq: int, **overrides: Any) -> int:
    kind = "original" if version == 1 else "amendment"
    uow.notice_versions.put(notice_id, version, content(**overrides), seq=seq)
    with uow:
        created = match_notice_version(published(notice_id, version, kind, seq=seq, **overrides), uow, index,
                                       threading.Event())
        uow.commit()
    return created


def deliveries(uow: FakeUnitOfWork) -> list[tuple[str, str, int, list[str] | None]]:
    """(target, notice, version, recipients) of every delivery row, in id order."""
    return [(sid, r.notice_id, r.version, uow.endpoints.recipients.get(i))
            for i, (sid, r) in sorted(uow.deliveries.rows.items())]


def test_an_endpoint_is_a_signed_webhook_target_with_no_filter_of_its_own(bus: MessageBus,
                                                                          uow: FakeUnitOfWork) -> None:
    _, secret = register(bus)
    assert secret.startswith("whsec_")
    stored = uow.subscriptions.stored["ep1"]
    assert stored.batch and stored.channel is Channel.WEBHOOK and stored.url == HOOK and len(stored.secrets) == 1
    assert not stored.matchable  # never matched itself: its subscriptions are
    assert uow.subscriptions.list_for("org-a") == []  # listed with the endpoints, not the subscriptions
    assert [e.id for e in uow.endpoints.list_for("org-a")] == ["ep1"]
    assert uow.outbox[-1].payload["change"] == "endpoint_registered"
    with pytest.raises(Rejected) as caught:
        bus.handle(RegisterEndpoint(endpoint_id="ep2", org_id="org-a", url="ftp://x.example.kr/"))
    assert caught.value.field == "url"


def test_subscriptions_on_an_endpoint_belong_to_its_owner_and_carry_no_url(bus: MessageBus,
                                                                           uow: FakeUnitOfWork) -> None:
    register(bus)
    sub = on(bus, "s1", regions=["KR-11"])
    assert sub.channel is Channel.ENDPOINT and sub.endpoint_id == "ep1" and sub.url is None and sub.matchable
    with pytest.raises(NotFound):  # another organisation's endpoint looks missing
        on(bus, "s2", org="org-b")
    with pytest.raises(NotFound):  # an ordinary subscription is not an endpoint
        hook(bus, "w1")
        on(bus, "s3", endpoint_id="w1")
    with pytest.raises(Rejected) as caught:
        bus.handle(CreateSubscription(subscription_id="s4", org_id="org-a", filter={}, channel="endpoint"))
    assert caught.value.field == "channel.endpoint_id"
    with pytest.raises(Rejected) as caught:
        bus.handle(UpdateSubscription(subscription_id="s1", org_id="org-a", disable=True))
    assert caught.value.field == "status"


def test_endpoint_commands_reach_endpoints_only(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    register(bus)
    hook(bus, "w1")
    with pytest.raises(NotFound):  # an endpoint is not a subscription to the subscription commands
        bus.handle(RotateSubscriptionSecret(subscription_id="ep1", org_id="org-a"))
    with pytest.raises(NotFound):
        bus.handle(RotateSubscriptionSecret(subscription_id="w1", org_id="org-a", endpoint=True))
    secret, _ = bus.handle(RotateSubscriptionSecret(subscription_id="ep1", org_id="org-a", endpoint=True))
    assert secret.startswith("whsec_") and len(uow.subscriptions.stored["ep1"].secrets) == 2
    with pytest.raises(Rejected) as caught:
        bus.handle(UpdateSubscription(subscription_id="ep1", org_id="org-a", endpoint=True, filter={}))
    assert caught.value.field == "filter"
    assert bus.handle(ReplayDeliveries(subscription_id="ep1", org_id="org-a", endpoint=True)) == []


def test_matching_collapses_an_endpoints_subscriptions_into_one_delivery_per_version(
    bus: MessageBus, uow: FakeUnitOfWork
) -> None:
    register(bus)
    register(bus, "ep2")
    on(bus, "s-b", regions=["KR-11"])
    on(bus, "s-a", categories=["works"])
    on(bus, "s-c", regions=["KR-26"])  # not matched
    on(bus, "t-1", "ep2", regions=["KR-11"])
    hook(bus, "w1", regions=["KR-11"])
    index = IndexCache()
    assert match(uow, index, "N-1", 1, seq=1) == 3  # ep1, ep2, and w1 on its own
    assert deliveries(uow) == [("ep1", "N-1", 1, ["s-a", "s-b"]), ("ep2", "N-1", 1, ["t-1"]),
                               ("w1", "N-1", 1, None)]
    assert match(uow, index, "N-2", 1, seq=2, delivery_region="KR-26", category="goods") == 1
    assert deliveries(uow)[-1] == ("ep1", "N-2", 1, ["s-c"])


def test_an_amendment_reaches_the_earlier_recipients_still_on_the_endpoint(bus: MessageBus,
                                                                           uow: FakeUnitOfWork) -> None:
    register(bus)
    on(bus, "seoul", regions=["KR-11"])
    on(bus, "gone", regions=["KR-11"])
    on(bus, "busan", regions=["KR-26"])
    index = IndexCache()
    match(uow, index, "N-1", 1, seq=1)
    bus.handle(DeleteSubscription(subscription_id="gone", org_id="org-a"))
    # The amendment moves the notice to Busan: Seoul's subscriber still hears of it, the deleted one not.
    assert match(uow, index, "N-1", 2, seq=2, delivery_region="KR-26") == 1
    assert deliveries(uow) == [("ep1", "N-1", 1, ["gone", "seoul"]), ("ep1", "N-1", 2, ["busan", "seoul"])]
    # Version 2 waits for version 1 at the endpoint, like any subscriber's.
    assert uow.deliveries.claimable() == [1]


def test_matching_a_version_twice_adds_no_second_batch(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    register(bus)
    on(bus, "s1")
    index = IndexCache()
    match(uow, index, "N-1", 1, seq=1)
    uow.matching_cursor.seq = 0  # as if the cursor had not advanced: the version is matched again
    with uow:
        match_notice_version(published("N-1", 1, seq=1), uow, index, threading.Event())
        uow.commit()
    assert len(uow.deliveries.rows) == 1


def test_deleting_an_endpoint_deletes_its_subscriptions_and_ends_its_open_deliveries(
    bus: MessageBus, uow: FakeUnitOfWork
) -> None:
    register(bus)
    on(bus, "s1")
    on(bus, "s2")
    match(uow, IndexCache(), "N-1", 1, seq=1)
    bus.handle(DeleteSubscription(subscription_id="ep1", org_id="org-a", endpoint=True))
    assert uow.subscriptions.stored == {}
    assert [r.status for _, r in uow.deliveries.rows.values()] == ["dead"]
    assert uow.outbox[-1].payload["details"] == {"subscriptions_deleted": 2}
    assert uow.subscriptions.change_log[-2][1] == RELOAD_ALL  # every index forgets them at once


def test_the_batched_body_is_the_notice_payload_plus_the_sorted_ids() -> None:
    body = {"type": "notice.published", "data": {"notice_id": "N-1"}}
    assert batched_body(body, None) is body
    assert batched_body(body, ["a", "b"]) == {**body, "subscription_ids": ["a", "b"]}


def test_bulk_load_checks_every_line_and_makes_every_index_reload_once(bus: MessageBus,
                                                                       uow: FakeUnitOfWork) -> None:
    register(bus)
    index = IndexCache()
    match(uow, index, "N-0", 1, seq=1, delivery_region="KR-49")  # the index is built before the load
    lines = [json.dumps({"regions": ["KR-11"]}), "",
             json.dumps({"id": "sup-7", "name": "supplier 7", "filter": {"categories": ["works"]}})]
    with uow:
        assert load_subscriptions(uow, "ep1", "org-a", lines, chunk=1) == 2
        uow.commit()
    assert uow.subscriptions.stored["sup-7"].endpoint_id == "ep1"
    assert uow.subscriptions.change_log[-1][1] == RELOAD_ALL
    assert uow.outbox[-1].payload["change"] == "subscriptions_loaded"
    assert uow.outbox[-1].payload["details"] == {"count": 2}
    match(uow, index, "N-1", 1, seq=2)
    recipients = deliveries(uow)[-1][3]
    assert recipients is not None and "sup-7" in recipients and len(recipients) == 2

    for bad, field in [("[1]", "line 1"), ('{"regions": ["XX-99"]}', "line 1.filter.regions"),
                       ('{"id": "no spaces", "filter": {}}', "line 1.id")]:
        with pytest.raises(Rejected) as caught, uow:
            load_subscriptions(uow, "ep1", "org-a", [bad])
        assert caught.value.field.startswith(field), caught.value.field
    with pytest.raises(NotFound), uow:
        load_subscriptions(uow, "ep1", "org-b", ["{}"])
