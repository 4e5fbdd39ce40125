"""The RabbitMQ tier on PostgreSQL: crashes between effect and ack, competing workers and relays, a
broker restart, dead-lettering by the quorum queue, and the queue arguments themselves."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pika
import pika.exceptions
import pytest
from sqlalchemy import func, select

from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.organisations import events
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.registry import EVENT_HANDLERS
from hub.spine.audit import record_audit_entry
from hub.spine.brokers.rabbitmq.consumer import run_consumer, subscribe_group
from hub.spine.brokers.rabbitmq.topology import Topology, connection_parameters, queue_arguments
from hub.spine.bus import MessageBus, Outcome
from hub.spine.dead_letters import ReplayDeadLetters
from hub.spine.messages import Envelope
from hub.spine.relay import OutboxRelay
from hub.spine.tables import AuditRow, InboxRow, OutboxRow
from hub.spine.worker import Worker
from tests.integration.dying_consumer import DIED_AFTER_EFFECT, rebuild
from tests.support.db import count
from tests.support.environment import ROOT, service_missing
from tests.support.fragile_handler import Switch, fragile_audit
from tests.support.waiting import eventually

pytestmark = [
    pytest.mark.rabbitmq,
    pytest.mark.postgres,
    pytest.mark.parametrize("backend", ["postgres-rabbitmq"], indirect=True),
]


@pytest.fixture
def hubs(settings_factory: Callable[..., Settings]) -> Iterator[Callable[..., Hub]]:
    """``hubs()`` → a hub on a fresh namespace and database; ``hubs(settings)`` → another process-like
    hub (own engine, own broker connections) on the same ones."""
    made: list[Hub] = []

    def make(settings: Settings | None = None, **kwargs: Any) -> Hub:
        hub = bootstrap(settings or settings_factory(), migrate=not made, **kwargs)
        made.append(hub)
        return hub

    yield make
    for hub in made:
        hub.close()


def duplicated_audit_ids(hub: Hub) -> list[Any]:
    with hub.session_factory() as session:
        return list(session.execute(
            select(AuditRow.message_id).group_by(AuditRow.message_id).having(func.count() > 1)
        ).all())


class RecordingBus(MessageBus):
    """Remembers what each delivery came to, so a test can see a redelivery arrive."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outcomes: list[tuple[str, Outcome]] = []
        self._lock = threading.Lock()

    def consume(self, group_name: str, envelope: Envelope) -> Outcome:
        outcome = super().consume(group_name, envelope)
        with self._lock:
            self.outcomes.append((envelope.message_id, outcome))
        return outcome

    def consume_batch(self, group_name: str, envelopes: Sequence[Envelope]) -> list[Outcome]:
        outcomes = super().consume_batch(group_name, envelopes)
        with self._lock:
            self.outcomes.extend((e.message_id, o) for e, o in zip(envelopes, outcomes, strict=True))
        return outcomes


def test_consumer_killed_between_effect_and_ack(hubs: Callable[..., Hub], amqp_url: str) -> None:
    """The dying worker takes what is queued (a batch, when several messages arrive together), commits
    it and dies before its ack: every message of that commit comes back, and none is applied twice."""
    hub = hubs()
    hub.broker.setup({name: g.binding_keys for name, g in hub.bus.groups.items()})
    for name in ("Incheon Airport", "Gimpo Airport", "Jeju Airport"):  # two events each
        hub.bus.handle(CreateOrganisation(name=name, kind=OrgKind.INSTITUTION))
    relay = OutboxRelay(hub.session_factory, hub.broker)
    assert relay.run_once() == 6

    dying = subprocess.run(
        [sys.executable, "-m", "tests.integration.dying_consumer",
         hub.settings.database.url, amqp_url, hub.settings.broker.namespace],
        cwd=ROOT, capture_output=True, text=True, timeout=90, check=False,
    )
    assert dying.returncode == DIED_AFTER_EFFECT, dying.stderr[-3000:]
    applied_then_died = dying.stdout.split()
    assert applied_then_died
    assert count(hub, AuditRow) == len(applied_then_died)
    assert count(hub, InboxRow, InboxRow.message_id.in_(applied_then_died)) == len(applied_then_died)

    bus = rebuild(RecordingBus, hub.bus)
    fresh = Worker(bus, hub.broker, hub.session_factory, relay=None)
    fresh.start()
    try:
        eventually(lambda: all((m, Outcome.DUPLICATE) in bus.outcomes for m in applied_then_died), timeout=30,
                   what="every unacked message redelivered to the fresh worker")
        eventually(lambda: count(hub, InboxRow) == 6, what="the other events applied")
    finally:
        fresh.stop()
    assert count(hub, AuditRow) == 6
    assert duplicated_audit_ids(hub) == []
    assert not any((m, Outcome.APPLIED) in bus.outcomes for m in applied_then_died)


def test_two_workers_with_two_relays_apply_every_event_once(hubs: Callable[..., Hub]) -> None:
    first = hubs()
    second = hubs(first.settings)  # own engine, own broker connections: like a second machine
    first.make_worker(concurrency=2).start()
    second.make_worker(concurrency=2).start()
    for i in range(100):  # 200 events, committed through both API-side buses
        (first if i % 2 else second).bus.handle(CreateOrganisation(name=f"Agency {i}", kind=OrgKind.AGENCY))
    eventually(lambda: count(first, InboxRow) == 200, timeout=90, what="200 events handled")
    assert count(first, AuditRow) == 200
    assert duplicated_audit_ids(first) == []
    eventually(lambda: count(first, OutboxRow, OutboxRow.published_at.is_(None)) == 0,
               what="every outbox row marked published")


def rabbitmqctl(*args: str) -> None:
    if shutil.which("rabbitmqctl") is None:
        service_missing("rabbitmqctl", "not on PATH; cannot restart the broker")
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, timeout=120, capture_output=True)


def wait_for_broker() -> None:
    def answers() -> bool:
        probe = subprocess.run(["rabbitmq-diagnostics", "-q", "ping"], capture_output=True, timeout=30,
                               check=False)
        return probe.returncode == 0

    eventually(answers, timeout=120, interval=0.5, what="rabbitmq-diagnostics ping")


def test_relay_and_consumer_survive_a_broker_restart(hubs: Callable[..., Hub]) -> None:
    hub = hubs()
    hub.make_worker().start()
    hub.bus.handle(CreateOrganisation(name="Before", kind=OrgKind.SUPPLIER))
    eventually(lambda: count(hub, AuditRow) == 2, what="pipeline running before the restart")
    if shutil.which("rabbitmqctl") is None:
        service_missing("rabbitmqctl", "not on PATH; cannot restart the broker")
    try:
        rabbitmqctl("stop_app")
        for i in range(5):
            hub.bus.handle(CreateOrganisation(name=f"During {i}", kind=OrgKind.SUPPLIER))
        assert hub.broker.ping() is False
        assert count(hub, OutboxRow, OutboxRow.published_at.is_(None)) == 10
    finally:
        rabbitmqctl("start_app")
        wait_for_broker()
    # the same worker's relay and consumer reconnect by themselves
    eventually(lambda: count(hub, AuditRow) == 12, timeout=120, what="all events after the restart")
    # consumers may apply a row before the relay's "published" mark commits
    eventually(lambda: count(hub, OutboxRow, OutboxRow.published_at.is_(None)) == 0, what="outbox marked published")
    assert duplicated_audit_ids(hub) == []


def test_failing_handler_dead_letters_then_replays_once(hubs: Callable[..., Hub]) -> None:
    Switch.broken = True
    hub = hubs(event_handlers={**EVENT_HANDLERS, events.OrganisationCreated: [record_audit_entry, fragile_audit]},
               group_names={fragile_audit: "fragile"})
    hub.make_worker().start()
    hub.bus.handle(CreateOrganisation(name="Poison", kind=OrgKind.AGENCY))

    def dead() -> list[Any]:
        with hub.uow() as uow:
            return uow.dead_letters.list(group="fragile")

    letters = eventually(dead, timeout=60, what="the archiver to file the dead letter")
    limit = hub.settings.broker.delivery_limit
    assert len(letters) == 1
    assert letters[0].delivery_count == limit + 1  # the quorum queue gives up once returns exceed it
    assert f"delivery limit {limit}" in letters[0].reason
    assert f"{hub.settings.broker.namespace}.q.fragile" in letters[0].reason
    eventually(lambda: hub.broker.queue_depths()["fragile.dlq"] == 0, what="archived messages acked")

    Switch.broken = False
    assert hub.bus.handle(ReplayDeadLetters(consumer_group="fragile")) == [letters[0].id]
    eventually(lambda: count(hub, InboxRow, InboxRow.consumer_group == "fragile") == 1, what="replay applied")
    eventually(lambda: count(hub, AuditRow) == 4, what="replayed effect + the replay's own audit row")
    assert count(hub, InboxRow, InboxRow.consumer_group == "audit") == 3
    assert dead() == []


def test_unreadable_message_goes_straight_to_the_dead_letters(hubs: Callable[..., Hub]) -> None:
    hub = hubs()
    hub.make_worker().start()
    topology = Topology(hub.settings.broker.namespace)
    connection = pika.BlockingConnection(connection_parameters(hub.settings.broker))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(topology.events_exchange, "event.OrganisationCreated", b"{not json",
                              pika.BasicProperties(message_id="garbage-1", delivery_mode=2), mandatory=True)
    finally:
        connection.close()

    def dead() -> list[Any]:
        with hub.uow() as uow:
            return uow.dead_letters.list(group="audit")

    letters = eventually(dead, timeout=30, what="the unreadable message filed")
    assert [d.envelope.message_id for d in letters] == ["garbage-1"]
    assert letters[0].delivery_count == 1
    assert "rejected" in letters[0].reason
    assert letters[0].envelope.payload == {"unreadable_body": "{not json"}
    assert count(hub, InboxRow) == 0


def test_queues_are_quorum_queues_with_the_configured_arguments(hubs: Callable[..., Hub]) -> None:
    hub = hubs()
    settings = hub.settings.broker
    hub.broker.setup({name: g.binding_keys for name, g in hub.bus.groups.items()})
    topology = Topology(settings.namespace)
    expected = queue_arguments(topology, "audit", settings.delivery_limit)
    assert expected["x-queue-type"] == "quorum"
    assert expected["x-delivery-limit"] == settings.delivery_limit

    def declare(name: str, arguments: dict[str, Any], passive: bool = False) -> str | None:
        """None if the broker accepts the declaration, else its refusal."""
        connection = pika.BlockingConnection(connection_parameters(settings))
        try:
            connection.channel().queue_declare(name, passive=passive, durable=True, arguments=arguments)
            return None
        except pika.exceptions.ChannelClosedByBroker as exc:
            return f"{exc.reply_code} {exc.reply_text}"
        finally:
            if connection.is_open:
                connection.close()

    queue, dlq = topology.queue("audit"), topology.dead_letter_queue("audit")
    assert declare(queue, {}, passive=True) is None
    assert declare(dlq, {}, passive=True) is None
    assert declare(queue, expected) is None  # same arguments: accepted as equivalent
    # any other value of an argument the queue was declared with is refused as inequivalent
    for key, other in [("x-queue-type", "classic"), ("x-delivery-limit", settings.delivery_limit + 1),
                       ("x-dead-letter-strategy", "at-most-once"), ("x-overflow", "drop-head"),
                       ("x-dead-letter-exchange", "elsewhere")]:
        refusal = declare(queue, {**expected, key: other})
        assert refusal is not None and refusal.startswith("406"), (key, refusal)
        assert key in refusal, (key, refusal)
    assert declare(dlq, {"x-queue-type": "classic"}) is not None


def test_a_process_that_declared_nothing_still_reports_queue_depths(hubs: Callable[..., Hub]) -> None:
    """An API process never declares the topology; /metrics must still show the groups' backlog."""
    worker_hub = hubs()
    worker_hub.broker.setup({name: g.binding_keys for name, g in worker_hub.bus.groups.items()})
    for i in range(3):
        worker_hub.bus.handle(CreateOrganisation(name=f"Queued {i}", kind=OrgKind.AGENCY))
    relay = OutboxRelay(worker_hub.session_factory, worker_hub.broker)
    assert relay.run_once() == 6  # published, but no consumer runs: the messages wait in the queue

    from hub.spine.brokers.rabbitmq import RabbitMQBroker

    api_side = RabbitMQBroker(worker_hub.settings.broker)  # fresh: knows no groups
    try:
        assert api_side.queue_depths() == {}
        depths = eventually(lambda: api_side.queue_depths(list(worker_hub.bus.groups)).get("audit") == 6 and
                            api_side.queue_depths(list(worker_hub.bus.groups)), what="six queued audit messages")
        assert (depths["audit"], depths["audit.dlq"]) == (6, 0)
        assert set(depths) == {name for group in worker_hub.bus.groups for name in (group, f"{group}.dlq")}
        assert "nobody" not in api_side.queue_depths(["nobody"])  # undeclared queues are left out
    finally:
        api_side.close()


class AckRecorder:
    """The consumer's real channel, with its acks written down on the way through."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.acks: list[tuple[int, bool]] = []

    def basic_ack(self, delivery_tag: int = 0, multiple: bool = False) -> None:
        self.acks.append((delivery_tag, multiple))
        self.channel.basic_ack(delivery_tag, multiple=multiple)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.channel, name)


def test_a_batch_is_settled_with_one_multiple_ack(hubs: Callable[..., Hub]) -> None:
    hub = hubs()
    hub.broker.setup({name: g.binding_keys for name, g in hub.bus.groups.items()})
    for i in range(10):
        hub.bus.handle(CreateOrganisation(name=f"Agency {i}", kind=OrgKind.AGENCY))
    assert OutboxRelay(hub.session_factory, hub.broker).run_once() == 20  # all queued before consuming

    settings = hub.settings.broker
    batches: list[int] = []
    recorders: list[AckRecorder] = []
    subscribe = subscribe_group(Topology(settings.namespace).queue("audit"), "audit",
                                handler=lambda e: hub.bus.consume("audit", e),
                                batch=lambda envelopes: batches.append(len(hub.bus.consume_batch("audit", envelopes))))

    def recorded(channel: Any) -> Callable[[], None] | None:
        recorders.append(AckRecorder(channel))
        return subscribe(recorders[-1])

    stop = threading.Event()
    consumer = threading.Thread(target=run_consumer,
                                args=(settings, connection_parameters(settings), recorded, stop, "ack-recorder"))
    consumer.start()
    try:
        eventually(lambda: count(hub, InboxRow) == 20, what="20 events applied")
    finally:
        stop.set()
        consumer.join(10)
    acks = [ack for recorder in recorders for ack in recorder.acks]
    assert sum(batches) + sum(1 for _, multiple in acks if not multiple) == 20
    assert batches and max(batches) > 1
    assert sum(1 for _, multiple in acks if multiple) == len(batches)  # one ack per batch
    assert len(acks) < 20
    # nothing was left unacknowledged: the closed connection gave nothing back to the queue
    assert hub.broker.queue_depths()["audit"] == 0
    assert count(hub, AuditRow) == 20
