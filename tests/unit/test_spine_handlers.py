"""The spine's own handlers and the organisation handlers, on the fake unit of work: dead-letter replay,
the audit consumer, API keys."""

from __future__ import annotations

import pytest

from hub.organisations import events
from hub.organisations.commands import CreateOrganisation, IssueApiKey
from hub.organisations.model import OrgKind
from hub.registry import COMMAND_HANDLERS, CONSUMER_GROUPS, EVENT_HANDLERS
from hub.spine.bus import MessageBus, Outcome
from hub.spine.dead_letters import ReplayDeadLetters
from hub.spine.errors import NotFound, Rejected
from hub.spine.messages import Envelope
from tests.support.fakes import FakeUnitOfWork


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def bus(uow: FakeUnitOfWork) -> MessageBus:
    return MessageBus(lambda: uow, COMMAND_HANDLERS, EVENT_HANDLERS, group_names=CONSUMER_GROUPS)


def _dead(uow: FakeUnitOfWork, group: str, org_id: str) -> Envelope:
    envelope = Envelope.wrap(events.OrganisationCreated(org_id=org_id, name="A", kind="institution"))
    assert uow.dead_letters.add(group, envelope, "boom", 5)
    return envelope


def test_replay_readdresses_each_dead_letter_to_its_group_with_its_original_id(
    bus: MessageBus, uow: FakeUnitOfWork
) -> None:
    first = _dead(uow, "audit", "o1")
    _dead(uow, "syndication-matching", "o2")
    replayed = bus.handle(ReplayDeadLetters(consumer_group="audit", actor_org_id="op"))
    assert replayed == [1]
    again, announced = uow.outbox
    assert (again.message_id, again.target_group) == (first.message_id, "audit")
    assert announced.message_type == "DeadLetterReplayed"
    assert announced.payload["original_message_id"] == first.message_id
    assert announced.payload["actor_org_id"] == "op"
    # replayed letters are taken once; the other group's letter is still open
    assert bus.handle(ReplayDeadLetters(consumer_group="audit")) == []
    assert bus.handle(ReplayDeadLetters(ids=[2])) == [2]


def test_the_audit_group_records_actor_and_subject_once(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    envelope = Envelope.wrap(events.ApiKeyRevoked(org_id="subject", key_id="k1", actor_org_id="actor"))
    assert bus.consume("audit", envelope) is Outcome.APPLIED
    assert bus.consume("audit", envelope) is Outcome.DUPLICATE
    assert [(e.message_id, actor, subject) for e, actor, subject in uow.audit.entries] == [
        (envelope.message_id, "actor", "subject")
    ]


def test_create_organisation_refuses_a_blank_name(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    with pytest.raises(Rejected) as refused:
        bus.handle(CreateOrganisation(name="   ", kind=OrgKind.SUPPLIER))
    assert refused.value.field == "name"
    assert uow.outbox == [] and uow.organisations.orgs == {}


def test_issue_api_key_limits_scopes_to_the_kind_and_announces_the_key(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    org, _first = bus.handle(CreateOrganisation(name="Supplier Co", kind=OrgKind.SUPPLIER))
    issued = bus.handle(IssueApiKey(org_id=org.id, label="ci", actor_org_id="op"))
    assert issued.key in uow.organisations.get(org.id).api_keys
    assert "orgs:admin" not in issued.key.scopes
    announced = uow.outbox[-1]
    assert announced.message_type == "ApiKeyIssued"
    assert announced.payload["key_id"] == issued.key.id and announced.payload["actor_org_id"] == "op"
    with pytest.raises(Rejected):
        bus.handle(IssueApiKey(org_id=org.id, scopes=["orgs:admin"]))
    with pytest.raises(NotFound):
        bus.handle(IssueApiKey(org_id="nobody"))
