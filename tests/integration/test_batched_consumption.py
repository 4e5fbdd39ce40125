"""Batched consumption on each backend: a consumer applies what is waiting in one transaction, a poison
message among good ones is isolated (the good ones applied once, the bad one dead-lettered after its
retries), and a batch delivered again changes nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.organisations import events
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.registry import EVENT_HANDLERS
from hub.spine.audit import record_audit_entry
from hub.spine.bus import MessageBus, Outcome
from hub.spine.messages import Envelope
from hub.spine.relay import OutboxRelay
from hub.spine.tables import AuditRow, InboxRow, OutboxRow
from hub.spine.unit_of_work import AbstractUnitOfWork
from hub.spine.worker import Worker
from tests.integration.dying_consumer import rebuild
from tests.support.db import count
from tests.support.waiting import eventually

GROUP = "picky"
POISON = "Poison Ltd"


def picky_audit(event: events.OrganisationCreated, uow: AbstractUnitOfWork, envelope: Envelope) -> None:
    """Writes an audit row, except for the one organisation whose event it can never handle."""
    if event.name == POISON:
        raise ValueError("this message can never be handled")
    record_audit_entry(event, uow, envelope)


class BatchRecordingBus(MessageBus):
    """Remembers every batch it was handed (the message ids), to show a batch really held the poison."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[list[str]] = []
        self._lock = threading.Lock()

    def consume_batch(self, group_name: str, envelopes: Sequence[Envelope]) -> list[Outcome]:
        with self._lock:
            self.batches.append([e.message_id for e in envelopes])
        return super().consume_batch(group_name, envelopes)


@pytest.fixture
def hub(settings_factory: Callable[..., Settings]) -> Iterator[Hub]:
    made = bootstrap(settings_factory(), migrate=True, event_handlers={events.OrganisationCreated: [picky_audit]},
                     group_names={picky_audit: GROUP})
    yield made
    made.close()


def created_ids(hub: Hub) -> dict[str, str]:
    """Organisation name → message id of its OrganisationCreated event."""
    with hub.session_factory() as session:
        rows = session.execute(select(OutboxRow.message_id, OutboxRow.payload)
                               .where(OutboxRow.message_type == "OrganisationCreated")).all()
    return {payload["name"]: message_id for message_id, payload in rows}


def queue_everything(hub: Hub) -> None:
    """Hand the outbox to the broker before any consumer runs, so the consumer finds a batch waiting.
    The embedded broker confirms only what its consumers settled, so there the worker's relay does it."""
    if hub.settings.broker.kind == "rabbitmq":
        hub.broker.setup({name: g.binding_keys for name, g in hub.bus.groups.items()})
        assert OutboxRelay(hub.session_factory, hub.broker).run_once() > 0


def test_a_poison_message_in_a_batch_is_isolated(hub: Hub) -> None:
    names = [f"Agency {i}" for i in range(4)] + [POISON] + [f"Agency {i}" for i in range(4, 8)]
    for name in names:
        hub.bus.handle(CreateOrganisation(name=name, kind=OrgKind.AGENCY))
    ids = created_ids(hub)
    poison = ids[POISON]
    queue_everything(hub)

    bus = rebuild(BatchRecordingBus, hub.bus)
    worker = Worker(bus, hub.broker, hub.session_factory,
                    OutboxRelay(hub.session_factory, hub.broker, poll_interval_s=0.05))
    worker.start()
    try:
        def dead() -> list[Any]:
            with hub.uow() as uow:
                return uow.dead_letters.list(group=GROUP)

        letters = eventually(dead, timeout=60, what="the poison message dead-lettered")
        eventually(lambda: count(hub, InboxRow) == len(names) - 1, what="every good message applied")
    finally:
        worker.stop()
    assert [letter.envelope.message_id for letter in letters] == [poison]
    # every retry was the message alone: the batch attempts are not counted against the limit
    assert letters[0].delivery_count == hub.settings.broker.delivery_limit + 1
    assert any(poison in batch and len(batch) > 1 for batch in bus.batches), bus.batches
    # the good ones, applied once each, whether in a batch or one by one after the batch failed
    assert count(hub, AuditRow) == len(names) - 1
    assert count(hub, InboxRow, InboxRow.message_id == poison) == 0
    with hub.session_factory() as session:
        applied = session.execute(select(AuditRow.message_id, func.count()).group_by(AuditRow.message_id)).all()
    assert sorted(applied) == sorted((ids[name], 1) for name in names if name != POISON)


def test_a_batch_delivered_again_changes_nothing(hub: Hub) -> None:
    for i in range(5):
        hub.bus.handle(CreateOrganisation(name=f"Agency {i}", kind=OrgKind.SUPPLIER))
    envelopes = [Envelope.wrap(events.OrganisationCreated(org_id=f"o{i}", name=f"Org {i}", kind="agency"))
                 for i in range(6)]
    first, second = envelopes[:4], envelopes[2:]
    assert hub.bus.consume_batch(GROUP, first) == [Outcome.APPLIED] * 4
    # the same batch again (a consumer died before its ack), then one that overlaps it
    assert hub.bus.consume_batch(GROUP, first) == [Outcome.DUPLICATE] * 4
    assert hub.bus.consume_batch(GROUP, second) == [Outcome.DUPLICATE] * 2 + [Outcome.APPLIED] * 2
    assert count(hub, AuditRow) == 6
    assert count(hub, InboxRow) == 6


def test_the_audit_group_consumes_in_batches(make_hub: Callable[..., Hub]) -> None:
    """The shipped groups batch (neither is declared one at a time): many events, every one applied once."""
    hub = make_hub(event_handlers=EVENT_HANDLERS)
    assert all(group.batched for group in hub.bus.groups.values())
    for i in range(30):
        hub.bus.handle(CreateOrganisation(name=f"Institution {i}", kind=OrgKind.INSTITUTION))
    hub.make_worker().start()
    eventually(lambda: count(hub, InboxRow, InboxRow.consumer_group == "audit") == 60, timeout=60,
               what="60 events applied")
    assert count(hub, AuditRow) == 60
