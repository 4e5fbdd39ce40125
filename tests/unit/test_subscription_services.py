"""The subscriptions service around the commands, with a fake resolver and recorded subscriber queues:
DNS is checked before the transaction, a queue exists before its subscription commits, bindings are
added before and removed after the commit (and taken back when it fails)."""

from __future__ import annotations

from typing import Any

import pytest

from hub.config import Settings
from hub.spine.bus import MessageBus
from hub.spine.errors import NotFound, Rejected
from hub.subscriptions.commands import CreateSubscription, DeleteSubscription, UpdateSubscription
from hub.subscriptions.handlers import COMMAND_HANDLERS
from hub.subscriptions.services import SubscriptionService
from tests.support.fakes import FakeResolver, FakeUnitOfWork, RecordingSubscriberQueues


class Journal:
    """Resolver, queues and bus calls in the order they happened."""

    def __init__(self) -> None:
        self.entries: list[str] = []


class JournalBus:
    def __init__(self, bus: MessageBus, journal: Journal) -> None:
        self.bus, self.journal, self.fail = bus, journal, False

    def handle(self, command: Any) -> Any:
        self.journal.entries.append(f"handle {type(command).__name__}")
        if self.fail:
            raise RuntimeError("the database went away")
        return self.bus.handle(command)


class JournalQueues(RecordingSubscriberQueues):
    def __init__(self, journal: Journal) -> None:
        super().__init__()
        self.journal = journal

    def declare(self, subscription_id: str, binding_keys: Any) -> None:
        self.journal.entries.append(f"declare {list(binding_keys)}")
        super().declare(subscription_id, binding_keys)

    def bind(self, subscription_id: str, binding_keys: Any) -> None:
        self.journal.entries.append(f"bind {list(binding_keys)}")
        super().bind(subscription_id, binding_keys)

    def unbind(self, subscription_id: str, binding_keys: Any) -> None:
        self.journal.entries.append(f"unbind {list(binding_keys)}")
        super().unbind(subscription_id, binding_keys)

    def delete(self, subscription_id: str) -> None:
        self.journal.entries.append("delete")
        super().delete(subscription_id)


class World:
    def __init__(self, **answers: list[str]) -> None:
        self.uow = FakeUnitOfWork()
        self.journal = Journal()
        self.resolver = FakeResolver(answers)
        self.queues = JournalQueues(self.journal)
        inner = MessageBus(lambda: self.uow, COMMAND_HANDLERS, {},
                           dependencies={"settings": Settings(broker={"kind": "rabbitmq"})})
        self.bus = JournalBus(inner, self.journal)

        def resolve(host: str, port: int) -> list[str]:
            self.journal.entries.append(f"resolve {host}")
            return self.resolver(host, port)

        self.service = SubscriptionService(uow_factory=lambda: self.uow, queues=self.queues, resolve=resolve)

    def create(self, sid: str = "s1", **fields: Any) -> Any:
        data: dict[str, Any] = {"filter": {}, "channel": "webhook", **fields}
        return self.service.create(self.bus, CreateSubscription(subscription_id=sid, org_id="org-a", **data))


def test_a_webhook_target_is_resolved_and_checked_before_the_command() -> None:
    world = World(**{"hooks.example.kr": ["211.234.10.20"]})
    sub, secret = world.create(url="https://hooks.example.kr/in")
    assert sub.url == "https://hooks.example.kr/in" and secret
    assert world.journal.entries == ["resolve hooks.example.kr", "handle CreateSubscription"]
    assert world.queues.calls == []


@pytest.mark.parametrize(("answers", "why"), [
    ({"hooks.example.kr": ["10.0.0.5"]}, "private or reserved"),
    ({"hooks.example.kr": ["211.234.10.20", "127.0.0.1"]}, "private or reserved"),  # one bad address is enough
    ({}, "does not resolve"),
])
def test_a_private_or_unresolvable_target_is_refused_without_a_transaction(answers: dict[str, list[str]],
                                                                            why: str) -> None:
    world = World(**answers)
    with pytest.raises(Rejected) as caught:
        world.create(url="https://hooks.example.kr/in")
    assert caught.value.field == "channel.url" and why in caught.value.message
    assert world.journal.entries == ["resolve hooks.example.kr"]  # the command was never sent
    assert world.uow.committed == 0


def test_private_targets_pass_when_configuration_allows_them() -> None:
    world = World(localhost=["127.0.0.1"])
    service = SubscriptionService(uow_factory=lambda: world.uow, queues=world.queues, resolve=world.resolver,
                                  allow_private_targets=True)
    sub, _ = service.create(world.bus, CreateSubscription(subscription_id="s1", org_id="org-a", filter={},
                                                          channel="webhook", url="http://localhost:8080/hook"))
    assert sub.url == "http://localhost:8080/hook"


def test_a_changed_url_is_checked_too() -> None:
    world = World(**{"hooks.example.kr": ["211.234.10.20"], "inside.example.kr": ["192.168.1.9"]})
    world.create(url="https://hooks.example.kr/in")
    with pytest.raises(Rejected):
        world.service.update(world.bus, UpdateSubscription(subscription_id="s1", org_id="org-a",
                                                           url="https://inside.example.kr/in"))
    assert world.uow.subscriptions.get("s1").url == "https://hooks.example.kr/in"  # type: ignore[union-attr]


def test_the_queue_exists_before_the_subscription_commits() -> None:
    world = World()
    sub, secret = world.create(channel="amqp", filter={"regions": ["KR-11"]})
    assert secret is None and sub.bindings == ["notice.*.*.KR-11"]
    assert world.journal.entries == ["declare ['notice.*.*.KR-11']", "handle CreateSubscription"]
    assert world.queues.queues == {"s1": {"notice.*.*.KR-11"}}
    world.create("s2", channel="amqp", filter={"keywords": ["road"]})  # not routable: an unbound queue
    assert world.queues.queues["s2"] == set()


def test_a_failed_create_takes_its_queue_back() -> None:
    world = World()
    world.bus.fail = True
    with pytest.raises(RuntimeError):
        world.create(channel="amqp", filter={})
    assert world.journal.entries == ["declare ['notice.*.*.*']", "handle CreateSubscription", "delete"]
    assert world.queues.queues == {}


def test_a_bad_filter_is_refused_before_any_queue_is_made() -> None:
    world = World()
    with pytest.raises(Rejected):
        world.create(channel="amqp", filter={"regions": ["nowhere"]})
    assert world.journal.entries == []


def test_new_bindings_come_before_the_commit_and_stale_ones_go_after() -> None:
    world = World()
    world.create(channel="amqp", filter={"regions": ["KR-11"]})
    world.journal.entries.clear()
    moved = world.service.update(world.bus, UpdateSubscription(subscription_id="s1", org_id="org-a",
                                                               filter={"regions": ["KR-26"]}))
    assert moved.bindings == ["notice.*.*.KR-26"]
    assert world.journal.entries == ["bind ['notice.*.*.KR-26']", "handle UpdateSubscription",
                                     "unbind ['notice.*.*.KR-11']"]
    assert world.queues.queues == {"s1": {"notice.*.*.KR-26"}}

    world.journal.entries.clear()  # finer: no longer routable, every binding goes after the commit
    world.service.update(world.bus, UpdateSubscription(subscription_id="s1", org_id="org-a",
                                                       filter={"regions": ["KR-26"], "classifications": ["45"]}))
    assert world.journal.entries == ["handle UpdateSubscription", "unbind ['notice.*.*.KR-26']"]
    assert world.queues.queues == {"s1": set()}


def test_a_failed_update_takes_back_the_bindings_it_added() -> None:
    world = World()
    world.create(channel="amqp", filter={"regions": ["KR-11"]})
    world.journal.entries.clear()
    world.bus.fail = True
    with pytest.raises(RuntimeError):
        world.service.update(world.bus, UpdateSubscription(subscription_id="s1", org_id="org-a",
                                                           filter={"regions": ["KR-11", "KR-26"]}))
    assert world.journal.entries == ["bind ['notice.*.*.KR-26']", "handle UpdateSubscription",
                                     "unbind ['notice.*.*.KR-26']"]
    assert world.queues.queues == {"s1": {"notice.*.*.KR-11"}}


def test_another_organisations_subscription_is_not_found_before_anything_happens() -> None:
    world = World()
    world.create(channel="amqp", filter={"regions": ["KR-11"]})
    world.journal.entries.clear()
    with pytest.raises(NotFound):
        world.service.update(world.bus, UpdateSubscription(subscription_id="s1", org_id="org-b",
                                                           filter={"regions": ["KR-26"]}))
    assert world.journal.entries == []


def test_deleting_an_amqp_subscription_deletes_its_queue_after_the_commit() -> None:
    world = World(**{"hooks.example.kr": ["211.234.10.20"]})
    world.create(channel="amqp")
    world.create("hook", url="https://hooks.example.kr/in")
    world.journal.entries.clear()
    world.service.delete(world.bus, DeleteSubscription(subscription_id="s1", org_id="org-a"))
    world.service.delete(world.bus, DeleteSubscription(subscription_id="hook", org_id="org-a"))
    assert world.journal.entries == ["handle DeleteSubscription", "delete", "handle DeleteSubscription"]
    assert world.queues.queues == {}
