"""The bus with the in-memory unit of work: commands commit their events; consumers are idempotent."""

from __future__ import annotations

import pytest

from hub.organisations import events
from hub.organisations.commands import CreateOrganisation, IssueApiKey, RevokeApiKey
from hub.organisations.model import OrgKind
from hub.registry import COMMAND_HANDLERS
from hub.spine.audit import record_audit_entry
from hub.spine.bus import MessageBus, Outcome, consumer_groups
from hub.spine.errors import NotFound, Rejected
from hub.spine.messages import Envelope
from hub.spine.unit_of_work import AbstractUnitOfWork
from tests.support.fakes import FakeUnitOfWork

applied: list[str] = []


def count_orgs(event: events.OrganisationCreated, uow: AbstractUnitOfWork, envelope: Envelope) -> None:
    applied.append(envelope.message_id)


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def bus(uow: FakeUnitOfWork) -> MessageBus:
    applied.clear()
    return MessageBus(lambda: uow, COMMAND_HANDLERS, {events.OrganisationCreated: [count_orgs]})


def test_command_events_reach_the_outbox_only_on_commit(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    org, issued = bus.handle(CreateOrganisation(name="Gwangju", kind=OrgKind.INSTITUTION), correlation_id="r1")
    assert [e.message_type for e in uow.outbox] == ["OrganisationCreated", "ApiKeyIssued"]
    assert {e.correlation_id for e in uow.outbox} == {"r1"}
    assert uow.organisations.get(org.id) is org
    assert issued.key in org.api_keys


def test_failing_command_leaves_no_events(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    with pytest.raises(Rejected) as info:
        bus.handle(CreateOrganisation(name="   ", kind=OrgKind.AGENCY))
    assert info.value.field == "name"
    with pytest.raises(NotFound):
        bus.handle(IssueApiKey(org_id="missing"))
    assert uow.outbox == []
    assert uow.committed == 0


def test_revoke_raises_an_event(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    org, issued = bus.handle(CreateOrganisation(name="Ulsan", kind=OrgKind.SUPPLIER))
    bus.handle(RevokeApiKey(org_id=org.id, key_id=issued.key.id))
    assert uow.outbox[-1].message_type == "ApiKeyRevoked"
    assert not issued.key.active


def test_consume_applies_once_and_skips_redelivery(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    bus.handle(CreateOrganisation(name="Incheon", kind=OrgKind.AGENCY))
    created = uow.outbox[0]
    assert bus.consume("count_orgs", created) is Outcome.APPLIED
    assert bus.consume("count_orgs", created) is Outcome.DUPLICATE
    assert applied == [created.message_id]


def test_consume_ignores_events_the_group_does_not_take(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    bus.handle(CreateOrganisation(name="Jeju", kind=OrgKind.AGENCY))
    key_issued = uow.outbox[1]
    assert bus.consume("count_orgs", key_issued) is Outcome.IGNORED
    assert applied == []


def test_envelope_round_trips_through_bytes() -> None:
    env = Envelope.wrap(events.OrganisationCreated(org_id="o", name="n", kind="agency"), correlation_id="c")
    back = Envelope.from_body(env.body())
    assert back == env
    assert back.to_event() == events.OrganisationCreated(org_id="o", name="n", kind="agency")
    assert env.routing_key == "event.OrganisationCreated"


def test_consumer_group_names_must_be_unique() -> None:
    def handler(event: events.OrganisationCreated) -> None: ...

    def other(event: events.ApiKeyIssued) -> None: ...

    other.__name__ = "handler"
    with pytest.raises(ValueError, match="handler"):
        consumer_groups({events.OrganisationCreated: [handler], events.ApiKeyIssued: [other]})


def test_consumer_groups_are_named_by_the_registry_declaration() -> None:
    from hub.registry import CONSUMER_GROUPS, EVENT_HANDLERS

    bus = MessageBus(FakeUnitOfWork, {}, EVENT_HANDLERS, group_names=CONSUMER_GROUPS)
    assert set(bus.groups) == {"audit", "syndication-matching"}
    assert "event.OrganisationCreated.#" in bus.groups["audit"].binding_keys


def test_an_undeclared_handler_is_its_own_group_and_names_must_not_clash() -> None:
    bus = MessageBus(FakeUnitOfWork, {}, {events.OrganisationCreated: [count_orgs]})
    assert list(bus.groups) == ["count_orgs"]
    with pytest.raises(ValueError, match="share the consumer group name 'same'"):
        MessageBus(FakeUnitOfWork, {}, {events.OrganisationCreated: [count_orgs, record_audit_entry]},
                   group_names={count_orgs: "same", record_audit_entry: "same"})


def test_dependencies_are_bound_once_by_parameter_name() -> None:
    seen: list[tuple[str, object]] = []

    def handler(cmd: CreateOrganisation, uow: AbstractUnitOfWork, clock: str) -> None:
        seen.append((cmd.name, clock))

    bus = MessageBus(FakeUnitOfWork, {CreateOrganisation: handler}, {}, dependencies={"clock": "c1", "other": 1})
    bus.dependencies["clock"] = "changed later"  # bound at construction: later changes do not leak in
    bus.handle(CreateOrganisation(name="A", kind=OrgKind.INSTITUTION))
    assert seen == [("A", "c1")]


def test_before_commit_runs_last_and_may_still_change_the_pending_events(uow: FakeUnitOfWork) -> None:
    steps: list[str] = []
    with uow:
        envelope = uow.publish(events.OrganisationCreated(org_id="o1", name="Gwangju", kind="institution"))
        uow.before_commit(lambda: (steps.append("before"), envelope.payload.update(name="Gwangju city")))
        uow.after_commit(lambda: steps.append(f"after, {len(uow.outbox)} in the outbox"))
        assert steps == []
        uow.commit()
    assert steps == ["before", "after, 1 in the outbox"]
    assert uow.outbox[0].payload["name"] == "Gwangju city"


def test_before_commit_never_runs_when_the_unit_of_work_rolls_back(uow: FakeUnitOfWork) -> None:
    steps: list[str] = []
    with uow:
        uow.before_commit(lambda: steps.append("before"))
    with uow:
        uow.commit()
    assert steps == [] and uow.committed == 1
def test_a_batch_commits_once_and_a_redelivered_batch_changes_nothing(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    created = [Envelope.wrap(events.OrganisationCreated(org_id=f"o{i}", name=f"O{i}", kind="agency"))
               for i in range(3)]
    key_issued = Envelope.wrap(events.ApiKeyIssued(org_id="o", key_id="k", scopes=[]))
    batch = [created[0], key_issued, created[1], created[0], created[2]]  # a copy of one inside the batch
    assert bus.consume_batch("count_orgs", batch) == [
        Outcome.APPLIED, Outcome.IGNORED, Outcome.APPLIED, Outcome.DUPLICATE, Outcome.APPLIED]
    assert uow.committed == 1
    assert applied == [e.message_id for e in created]
    # the whole batch again, as after a consumer died before its ack
    assert bus.consume_batch("count_orgs", batch) == [
        Outcome.DUPLICATE, Outcome.IGNORED, Outcome.DUPLICATE, Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert applied == [e.message_id for e in created]


def test_a_failing_batch_keeps_no_inbox_mark(uow: FakeUnitOfWork) -> None:
    def picky(event: events.OrganisationCreated, uow: AbstractUnitOfWork, envelope: Envelope) -> None:
        if event.name == "poison":
            raise RuntimeError("bad message")

    bus = MessageBus(lambda: uow, COMMAND_HANDLERS, {events.OrganisationCreated: [picky]})
    good = Envelope.wrap(events.OrganisationCreated(org_id="a", name="good", kind="agency"))
    bad = Envelope.wrap(events.OrganisationCreated(org_id="b", name="poison", kind="agency"))
    with pytest.raises(RuntimeError):
        bus.consume_batch("picky", [good, bad])
    assert uow.inbox == set()
    assert bus.consume("picky", good) is Outcome.APPLIED  # one at a time, the good one goes through


def test_groups_can_take_their_messages_one_at_a_time(uow: FakeUnitOfWork) -> None:
    bus = MessageBus(lambda: uow, COMMAND_HANDLERS, {events.OrganisationCreated: [count_orgs, record_audit_entry]},
                     group_names={record_audit_entry: "audit"}, one_at_a_time={"audit"})
    assert bus.groups["count_orgs"].batched
    assert not bus.groups["audit"].batched
