"""The message bus end to end on each backend: commit → outbox → relay → broker → consumer effect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.bootstrap import Hub
from hub.organisations import events
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.registry import COMMAND_HANDLERS, EVENT_HANDLERS
from hub.spine.audit import record_audit_entry
from hub.spine.bus import Outcome
from hub.spine.dead_letters import ReplayDeadLetters
from hub.spine.messages import Command, Envelope
from hub.spine.tables import AuditRow, InboxRow, OutboxRow
from hub.spine.unit_of_work import AbstractUnitOfWork
from tests.support.db import count
from tests.support.fragile_handler import Switch, fragile_audit
from tests.support.waiting import eventually


def test_committed_events_are_handled(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub()
    hub.make_worker().start()
    org, _ = hub.bus.handle(CreateOrganisation(name="Seoul Metro", kind=OrgKind.INSTITUTION))
    eventually(lambda: count(hub, AuditRow) == 2, what="two audit rows")
    with hub.uow() as uow:
        rows = uow.audit.list(org_id=org.id)
    assert {r["event_type"] for r in rows} == {"OrganisationCreated", "ApiKeyIssued"}
    # The relay marks rows published only after the broker took them, and the in-process consumers may
    # apply them before that mark commits: wait for it rather than assume it came first.
    eventually(lambda: count(hub, OutboxRow, OutboxRow.published_at.is_(None)) == 0, what="outbox marked published")


class Boom(Exception):
    pass


class CreateThenFail(Command):
    name: str


def create_then_fail(cmd: CreateThenFail, uow: AbstractUnitOfWork) -> None:
    uow.publish(events.OrganisationCreated(org_id="x", name=cmd.name, kind="agency"))
    raise Boom("after the event was raised")


def test_rolled_back_change_publishes_nothing(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(command_handlers={**COMMAND_HANDLERS, CreateThenFail: create_then_fail})
    hub.make_worker().start()
    with pytest.raises(Boom):
        hub.bus.handle(CreateThenFail(name="never"))
    # a later committed change proves the pipeline runs; only its events arrive
    hub.bus.handle(CreateOrganisation(name="Busan Port", kind=OrgKind.AGENCY))
    eventually(lambda: count(hub, AuditRow) == 2, what="audit rows of the committed change")
    assert count(hub, OutboxRow) == 2
    assert count(hub, AuditRow, AuditRow.data["name"].as_string() == "never") == 0


def test_redelivery_after_effect_changes_nothing(make_hub: Callable[..., Hub]) -> None:
    """A consumer that applied a message but died before acking: the broker delivers it again."""
    hub = make_hub()
    hub.bus.handle(CreateOrganisation(name="Daegu", kind=OrgKind.SUPPLIER))
    with hub.session_factory() as session:
        first = session.scalars(select(OutboxRow).order_by(OutboxRow.id)).first()
        assert first is not None
        envelope = Envelope(first.message_id, first.message_type, first.routing_key, first.payload,
                            first.occurred_at, first.correlation_id)
    # the effect commits (as the dying consumer did), the ack never happens
    assert hub.bus.consume("audit", envelope) is Outcome.APPLIED
    assert count(hub, AuditRow) == 1
    hub.make_worker().start()  # relay + consumer deliver both events, the first one a second time
    eventually(lambda: count(hub, InboxRow) == 2, what="both events handled")
    assert count(hub, AuditRow) == 2
    assert count(hub, AuditRow, AuditRow.message_id == envelope.message_id) == 1


def test_competing_workers_apply_each_event_once(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub()
    # two workers on one queue; one relay is enough (a second one is exercised in the RabbitMQ tier)
    first = hub.make_worker(concurrency=2)
    second = hub.make_worker(concurrency=2, with_relay=False, broker=hub.broker)
    first.start()
    second.start()
    for i in range(40):
        hub.bus.handle(CreateOrganisation(name=f"Agency {i}", kind=OrgKind.AGENCY))
    eventually(lambda: count(hub, InboxRow) == 80, timeout=30, what="80 events handled")
    assert count(hub, AuditRow) == 80
    with hub.session_factory() as session:
        dupes = session.execute(
            select(AuditRow.message_id).group_by(AuditRow.message_id).having(func.count() > 1)
        ).all()
    assert dupes == []


def test_events_committed_while_no_worker_runs_arrive_later(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub()
    for i in range(5):
        hub.bus.handle(CreateOrganisation(name=f"Early {i}", kind=OrgKind.SUPPLIER))
    assert count(hub, OutboxRow, OutboxRow.published_at.is_(None)) == 10
    hub.make_worker().start()
    eventually(lambda: count(hub, AuditRow) == 10, what="all ten delivered")


def test_poison_message_is_dead_lettered_and_replayed(make_hub: Callable[..., Hub]) -> None:
    Switch.broken = True
    handlers = {**EVENT_HANDLERS, events.OrganisationCreated: [record_audit_entry, fragile_audit]}
    hub = make_hub(event_handlers=handlers, group_names={fragile_audit: "fragile"})
    hub.make_worker().start()
    hub.bus.handle(CreateOrganisation(name="Poison", kind=OrgKind.AGENCY))

    def dead() -> list[Any]:
        with hub.uow() as uow:
            return uow.dead_letters.list(group="fragile")

    letters = eventually(dead, timeout=30, what="a dead letter")
    assert len(letters) == 1
    assert letters[0].envelope.message_type == "OrganisationCreated"
    assert letters[0].delivery_count == hub.settings.broker.delivery_limit + 1
    # the healthy group was not held back by the failing one
    eventually(lambda: count(hub, AuditRow) == 2, what="audit rows of the healthy group")

    Switch.broken = False
    replayed = hub.bus.handle(ReplayDeadLetters(consumer_group="fragile"))
    assert replayed == [letters[0].id]
    eventually(lambda: count(hub, InboxRow, InboxRow.consumer_group == "fragile") == 1, what="replay applied")
    # replay reached only the fragile group: audit has its one extra row (plus the DeadLetterReplayed one)
    eventually(lambda: count(hub, AuditRow) == 4, what="replayed effect + replay audit")
    assert count(hub, AuditRow, AuditRow.event_type == "DeadLetterReplayed") == 1
    # the audit group, which had applied the original, saw nothing twice
    assert count(hub, InboxRow, InboxRow.consumer_group == "audit") == 3
    assert dead() == []
