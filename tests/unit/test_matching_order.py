"""Per-notice order whatever order the broker hands the ``syndication-matching`` consumers their events:
driven through :meth:`MessageBus.consume` on the fake unit of work, with a fake dispatcher that leases
exactly what ``claim_due`` would and delivers it at once."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from hub.config import Settings
from hub.notices.events import NoticeVersionPublished
from hub.registry import CONSUMER_GROUPS
from hub.spine.bus import MessageBus, Outcome
from hub.spine.messages import Envelope
from hub.subscriptions.commands import CreateSubscription, UpdateSubscription
from hub.subscriptions.handlers import COMMAND_HANDLERS, EVENT_HANDLERS
from hub.subscriptions.index_cache import IndexCache
from hub.subscriptions.matcher import sweep
from tests.support.fakes import FakeUnitOfWork
from tests.support.ordering import FILTERS, owed, random_history
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


@pytest.mark.parametrize("seed", range(50))
def test_any_consumption_order_gives_every_owed_version_in_order(seed: int) -> None:
    rng = random.Random(seed)
    uow = FakeUnitOfWork()
    bus = make_bus(uow)
    for sid, flt in FILTERS.items():
        subscribe(bus, sid, flt)
    feed = Feed(uow)
    history = random_history(rng, notices=5)
    envelopes = [feed.publish(n, v, kind, **overrides) for n, v, kind, overrides in history]
    order = rng.sample(envelopes, len(envelopes)) + rng.sample(envelopes, 3)  # and a few redeliveries
    received: dict[str, list[tuple[str, int]]] = {}
    for envelope in order:
        bus.consume(GROUP, envelope)
        if rng.random() < 0.5:  # the dispatcher runs between consumers, taking some of what is claimable
            for delivery_id in rng.sample(claimable := uow.deliveries.claimable(), rng.randint(0, len(claimable))):
                sid, record = uow.deliveries.settle(delivery_id)
                received.setdefault(sid, []).append((record.notice_id, record.version))
    dispatch(uow, received)
    got = {(sid, notice): [v for n, v in items if n == notice]
           for sid, items in received.items() for notice in {n for n, _ in items}}
    assert got == owed(history)


def test_the_sweep_matches_what_no_event_triggered_unless_someone_is_matching(uow: FakeUnitOfWork) -> None:
    bus = make_bus(uow)
    subscribe(bus, "s1")
    feed = Feed(uow)
    for n in range(5):
        feed.publish(f"N-{n}", 1)  # their events were lost (say, dead-lettered)
    index, wake = bus.dependencies["subscription_index"], threading.Event()
    uow.matching_cursor.held = True  # another worker is matching: the sweep leaves it to them
    assert sweep(lambda: uow, index, wake) == 0 and uow.deliveries.rows == {}
    uow.matching_cursor.held = False
    assert sweep(lambda: uow, index, wake, batch=2) == 5  # batch by batch, one transaction each
    assert wake.is_set() and uow.matching_cursor.position() == 5
    assert sorted(r.notice_id for _, r in uow.deliveries.rows.values()) == [f"N-{n}" for n in range(5)]
    assert bus.consume(GROUP, feed.events[0]) is Outcome.APPLIED  # the late event finds it matched
    assert len(uow.deliveries.rows) == 5


def test_a_disabled_subscription_is_matched_and_catches_up_in_order_when_re_enabled(uow: FakeUnitOfWork) -> None:
    bus = make_bus(uow)
    subscribe(bus, "s1", {"regions": ["KR-11"]})
    subscribe(bus, "s2", {"regions": ["KR-11"]})
    feed = Feed(uow)
    for sid in ("s1", "s2"):
        bus.handle(UpdateSubscription(subscription_id=sid, org_id="org-a", disable=True))
    for envelope in [feed.publish("N-1", 1), feed.publish("N-2", 1), feed.publish("N-1", 2, "amendment",
                                                                                   delivery_region="KR-26"),
                     feed.publish("N-1", 3, "cancellation")][::-1]:
        bus.consume(GROUP, envelope)
    assert uow.deliveries.claimable() == []  # matched, but nothing goes to a disabled subscription
    assert uow.deliveries.counts("s1") == {"pending": 4}
    bus.handle(UpdateSubscription(subscription_id="s1", org_id="org-a", reactivate=True))
    bus.handle(UpdateSubscription(subscription_id="s2", org_id="org-a", reactivate=True, catch_up=False))
    received: dict[str, list[tuple[str, int]]] = {}
    dispatch(uow, received)
    assert received == {"s1": [("N-1", 1), ("N-2", 1), ("N-1", 2), ("N-1", 3)]}
    assert uow.deliveries.counts("s2") == {"skipped": 4}
    feed.publish("N-2", 2, "amendment")
    bus.consume(GROUP, feed.events[-1])
    dispatch(uow, received)
    assert received["s2"] == [("N-2", 2)] and received["s1"][-1] == ("N-2", 2)
