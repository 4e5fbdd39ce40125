"""Per-notice order whatever order the broker hands the ``syndication-matching`` consumers their events:
driven through :meth:`MessageBus.consume` on the fake unit of work, with a fake dispatcher that leases
exactly what ``claim_due`` would and delivers it at once."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from hub.config import Settings
from hub.notices.events import NoticeVersionPublished
from hub.registry import CONSUMER_GROUPS
from hub.spine.bus import MessageBus
from hub.spine.messages import Envelope
from hub.subscriptions.commands import CreateSubscription
from hub.subscriptions.handlers import COMMAND_HANDLERS, EVENT_HANDLERS
from hub.subscriptions.index_cache import IndexCache
from tests.support.fakes import FakeUnitOfWork
from tests.support.subscriptions import content

GROUP = "syndication-matching"


def make_bus(uow: FakeUnitOfWork) -> MessageBus:
    return MessageBus(lambda: uow, COMMAND_HANDLERS, EVENT_HANDLERS, group_names=CONSUMER_GROUPS,
                      dependencies={"settings": Settings(), "subscription_index": IndexCache(),
                                    "delivery_wake": threading.Event()})


def subscribe(bus: MessageBus, sid: str, flt: dict[str, Any] | None = None) -> None:
    bus.handle(CreateSubscription(subscription_id=sid, org_id="org-a", filter=flt or {}, channel="webhook",
                                  url="https://hooks.example.kr/in"))


class Feed:
    """Versions stored as the notices flow stores them (content readable, seq in publication order) and
    the event each raised, to be consumed in whatever order a test likes."""

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow
        self.seq = 0
        self.events: list[Envelope] = []

    def publish(self, notice_id: str, version: int, kind: str = "original", **overrides: Any) -> Envelope:
        body = content(**overrides)
        self.seq += 1
        self.uow.notice_versions.put(notice_id, version, None if kind == "cancellation" else body)
        event = NoticeVersionPublished(notice_id=notice_id, version=version, kind=kind, institution_org_id="inst-1",
                                       category=body["category"], region=body.get("delivery_region"),
                                       seq=self.seq, published_at="2025-03-03T00:00:00+00:00")
        envelope = Envelope.wrap(event)
        self.events.append(envelope)
        return envelope


def dispatch(uow: FakeUnitOfWork, into: dict[str, list[tuple[str, int]]]) -> None:
    """Deliver everything claimable, round after round, as the dispatcher would."""
    while ids := uow.deliveries.claimable():
        for delivery_id in ids:
            sid, record = uow.deliveries.settle(delivery_id)
            into.setdefault(sid, []).append((record.notice_id, record.version))


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()



def test_an_amendment_consumed_before_its_original_is_still_sent_after_it(uow: FakeUnitOfWork) -> None:
    bus = make_bus(uow)
    subscribe(bus, "s1")
    feed = Feed(uow)
    original = feed.publish("N-1", 1)
    amendment = feed.publish("N-1", 2, "amendment")
    received: dict[str, list[tuple[str, int]]] = {}
    bus.consume(GROUP, amendment)  # the worker holding the original is slow
    dispatch(uow, received)
    bus.consume(GROUP, original)
    dispatch(uow, received)
    assert received == {"s1": [("N-1", 1), ("N-1", 2)]}



def test_a_cancellation_consumed_before_its_original_still_reaches_the_subscriber(uow: FakeUnitOfWork) -> None:
    bus = make_bus(uow)
    subscribe(bus, "s1", {"regions": ["KR-11"]})
    feed = Feed(uow)
    original = feed.publish("N-1", 1)
    cancellation = feed.publish("N-1", 2, "cancellation")
    received: dict[str, list[tuple[str, int]]] = {}
    bus.consume(GROUP, cancellation)
    bus.consume(GROUP, original)
    dispatch(uow, received)
    assert received == {"s1": [("N-1", 1), ("N-1", 2)]}
