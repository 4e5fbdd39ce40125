"""The embedded broker's contract: routing, settle-before-confirm, redelivery limit, competing consumers."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from hub.organisations import events
from hub.spine.brokers.base import BrokerUnavailable, topic_regex
from hub.spine.brokers.inprocess import InProcessBroker
from hub.spine.messages import Envelope


def env(name: str = "x") -> Envelope:
    return Envelope.wrap(events.OrganisationCreated(org_id=name, name=name, kind="agency"))


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def run(broker: InProcessBroker, group: str, handler, dead, stop: threading.Event) -> threading.Thread:  # type: ignore[no-untyped-def]
    thread = threading.Thread(target=broker.consume, args=(group, handler, dead, stop), daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("binding", "key", "matches"),
    [
        ("event.A.#", "event.A", True),
        ("event.A.#", "event.A.goods.KR-11", True),
        ("event.A.#", "event.AB", False),
        ("notice.*.KR-11", "notice.goods.KR-11", True),
        ("notice.*.KR-11", "notice.goods.x.KR-11", False),
        ("#", "anything.at.all", True),
    ],
)
def test_topic_matching(binding: str, key: str, matches: bool) -> None:
    assert bool(topic_regex(binding).match(key)) is matches


def test_publish_confirms_only_after_every_bound_group_settled(stop: threading.Event) -> None:
    broker = InProcessBroker()
    broker.setup({"a": ["event.OrganisationCreated.#"], "b": ["event.#"], "c": ["event.Other.#"]})
    seen: dict[str, list[str]] = {"a": [], "b": [], "c": []}
    for group in seen:
        run(broker, group, lambda e, g=group: seen[g].append(e.message_id), lambda *a: None, stop)
    message = env()
    broker.publish([message])
    assert seen == {"a": [message.message_id], "b": [message.message_id], "c": []}


def test_publish_times_out_when_no_consumer_settles() -> None:
    broker = InProcessBroker(confirm_timeout_s=0.2)
    broker.setup({"a": ["event.#"]})
    message = env()
    with pytest.raises(BrokerUnavailable):
        broker.publish([message])
    # the relay's retry of the same message joins the queued copy instead of duplicating it
    with pytest.raises(BrokerUnavailable):
        broker.publish([message])
    assert broker.queue_depths() == {"a": 1}


def test_failing_handler_is_dead_lettered_at_the_limit(stop: threading.Event) -> None:
    broker = InProcessBroker(delivery_limit=3)
    broker.setup({"a": ["event.#"]})
    attempts: list[str] = []
    dead: list[tuple[str, str, int]] = []

    def failing(e: Envelope) -> None:
        attempts.append(e.message_id)
        raise RuntimeError("boom")

    run(broker, "a", failing, lambda g, e, reason, n: dead.append((g, e.message_id, n)), stop)
    message = env()
    broker.publish([message])
    assert len(attempts) == 4  # the first delivery plus three redeliveries, as RabbitMQ counts
    assert dead == [("a", message.message_id, 4)]


def test_targeted_envelope_reaches_only_its_group(stop: threading.Event) -> None:
    broker = InProcessBroker()
    broker.setup({"a": ["event.#"], "b": ["event.#"]})
    seen: list[str] = []
    run(broker, "a", lambda e: seen.append("a"), lambda *a: None, stop)
    run(broker, "b", lambda e: seen.append("b"), lambda *a: None, stop)
    from dataclasses import replace

    broker.publish([replace(env(), target_group="b")])
    assert seen == ["b"]


def test_competing_consumers_share_a_queue(stop: threading.Event) -> None:
    broker = InProcessBroker()
    broker.setup({"a": ["event.#"]})
    by_thread: dict[str, int] = {}
    lock = threading.Lock()
    gate = threading.Barrier(2, timeout=5)

    def handler(e: Envelope) -> None:
        name = threading.current_thread().name
        with lock:
            first = name not in by_thread
            by_thread[name] = by_thread.get(name, 0) + 1
        if first:
            gate.wait()  # both consumers must be busy at once: they compete for the same queue

    for _ in range(2):
        run(broker, "a", handler, lambda *a: None, stop)
    broker.publish([env(str(i)) for i in range(50)])
    assert sum(by_thread.values()) == 50
    assert len(by_thread) == 2


def run_batched(broker: InProcessBroker, group: str, handler, batch, dead, stop: threading.Event) -> threading.Thread:  # type: ignore[no-untyped-def]
    thread = threading.Thread(target=broker.consume, args=(group, handler, dead, stop, batch), daemon=True)
    thread.start()
    return thread


class AllOrNothing:
    """A batch applier like the bus's: keeps nothing of a batch that holds the poison message."""

    def __init__(self, poison: set[str]) -> None:
        self.poison = poison
        self.applied: list[str] = []
        self.batches: list[list[str]] = []
        self.single_attempts: list[str] = []

    def batch(self, envelopes: list[Envelope]) -> None:
        ids = [e.message_id for e in envelopes]
        self.batches.append(ids)
        if self.poison & set(ids):
            raise RuntimeError("poison in the batch")
        self.applied.extend(ids)

    def one(self, envelope: Envelope) -> None:
        self.single_attempts.append(envelope.message_id)
        if envelope.message_id in self.poison:
            raise RuntimeError("poison")
        self.applied.append(envelope.message_id)


def test_a_poison_message_in_a_batch_is_isolated_and_dead_lettered(stop: threading.Event) -> None:
    broker = InProcessBroker(delivery_limit=2, batch_limit=32)
    broker.setup({"a": ["event.#"]})
    messages = [env(str(i)) for i in range(10)]
    poison = messages[4].message_id
    applier = AllOrNothing({poison})
    dead: list[tuple[str, int]] = []
    run_batched(broker, "a", applier.one, applier.batch, lambda g, e, reason, n: dead.append((e.message_id, n)),
                stop)
    broker.publish(messages)
    assert any(poison in b and len(b) > 1 for b in applier.batches)  # it did arrive in a batch
    assert sorted(applier.applied) == sorted(m.message_id for m in messages if m.message_id != poison)
    assert applier.single_attempts.count(poison) == 3  # the batch attempt is not counted
    assert dead == [(poison, 3)]


def test_a_batch_is_held_while_the_infrastructure_is_unavailable(stop: threading.Event) -> None:
    from hub.spine.brokers.base import InfrastructureUnavailable
    from hub.spine.retry import Backoff

    broker = InProcessBroker(delivery_limit=1, batch_limit=32, unavailable_backoff=Backoff(0.01, 0.01))
    broker.setup({"a": ["event.#"]})
    outages = [3]
    batches: list[list[str]] = []

    def batch(envelopes: list[Envelope]) -> None:
        if outages[0]:
            outages[0] -= 1
            raise InfrastructureUnavailable("database down")
        batches.append([e.message_id for e in envelopes])

    singles: list[str] = []
    dead: list[str] = []
    messages = [env(str(i)) for i in range(5)]
    run_batched(broker, "a", lambda e: singles.append(e.message_id), batch,
                lambda g, e, reason, n: dead.append(e.message_id), stop)
    broker.publish(messages)
    applied = [m for b in batches for m in b] + singles
    assert sorted(applied) == sorted(m.message_id for m in messages)
    assert outages == [0] and batches  # the held batch went through once the outage was over
    assert dead == []  # three failed attempts, delivery limit 1: none of them counted
