"""A refused key on the in-memory unit of work: the slot keeps its state and attempt count, is due again
at the fixed interval, raises one event when it starts waiting on the configuration (not one per retry);
and the system-wide retry brings back every slot of a system the hub gave up on, audited."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from connectors.sandbox.identifiers import generate_brn, generate_lei
from hub.organisations.model import OrgKind
from hub.registry import COMMAND_HANDLERS
from hub.spine.bus import MessageBus
from hub.spine.errors import Rejected
from hub.suppliers.commands import ClaimCredentialFetches, FetchOutcome, RetryFailedFetchesOfSystem
from hub.suppliers.config import SupplierSettings
from hub.suppliers.model import CredentialFetch
from tests.support.fakes import FakeUnitOfWork
from tests.unit.test_supplier_handlers import (
    NOW,
    SETTINGS,
    credential,
    events,
    failed,
    nts_slot,
    ok,
    org,
    record,
    register,
)

HELD = SupplierSettings.model_validate({**SETTINGS.model_dump(), "backoff": {
    **SETTINGS.backoff.model_dump(), "misconfigured_retry_s": 300}})


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def bus(uow: FakeUnitOfWork) -> MessageBus:
    return MessageBus(lambda: uow, COMMAND_HANDLERS, {}, dependencies={"supplier_settings": HELD})


def refused(slot: CredentialFetch) -> FetchOutcome:
    return FetchOutcome(fetch_id=slot.id, claim_token=slot.claim_token or "", kind="misconfigured",
                        error_code="gateway-4", error_detail="등록되지 않은 인증키 입니다.")


def claim_again(bus: MessageBus, slot: CredentialFetch, token: str) -> None:
    bus.handle(ClaimCredentialFetches(claim_token=token, now=NOW + timedelta(days=1), supplier_id=slot.supplier_id,
                                      force=True))
    assert slot.claim_token == token


def test_a_refused_key_keeps_the_slot_pending_and_retries_at_a_fixed_interval(
    bus: MessageBus, uow: FakeUnitOfWork,
) -> None:
    slot = nts_slot(register(bus, org(uow, OrgKind.SUPPLIER)))
    assert record(bus, refused(slot)) == {slot.id: "pending"}
    assert slot.attempts == 0 and slot.next_attempt_at == NOW + timedelta(seconds=300)
    assert slot.last_error == "misconfigured: gateway-4 (등록되지 않은 인증키 입니다.)"

    for n in range(3):  # still refused: same interval every time, no growing backoff, no more events
        claim_again(bus, slot, f"t{n}")
        later = NOW + timedelta(hours=n + 1)
        assert record(bus, refused(slot), now=later) == {slot.id: "pending"}
        assert slot.attempts == 0 and slot.next_attempt_at == later + timedelta(seconds=300)
    [event] = events(uow, "CredentialFetchFailed")
    assert event["outcome"] == "misconfigured" and event["state"] == "pending"

    claim_again(bus, slot, "fixed")
    assert record(bus, ok(slot, credential()), now=NOW + timedelta(hours=5)) == {slot.id: "verified"}
    assert slot.last_error is None


def test_a_verified_credential_stands_while_its_refresh_meets_a_refused_key(
    bus: MessageBus, uow: FakeUnitOfWork,
) -> None:
    slot = nts_slot(register(bus, org(uow, OrgKind.SUPPLIER)))
    record(bus, ok(slot, credential()))
    claim_again(bus, slot, "refresh")
    assert record(bus, refused(slot)) == {slot.id: "verified"}
    assert [c.status for c in uow.suppliers.credentials.values()] == ["active"]


def test_retry_of_a_system_requeues_every_slot_the_hub_gave_up_on(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    owner = org(uow, OrgKind.SUPPLIER)
    gave_up, rng = [], random.Random(7)
    for n in range(3):
        registration = register(bus, owner, token=f"t{n}", kr_brn=generate_brn(rng), lei=generate_lei(rng))
        slots = {s.system: s for s in registration.claimed}
        record(bus, failed(slots["nts"], "permanent", "refused"), failed(slots["gleif"], "not_found"),
               ok(slots["national_certs"]))
        gave_up.append(slots["nts"])
    with pytest.raises(Rejected):
        bus.handle(RetryFailedFetchesOfSystem(system="nts", reason=" ", requested_by="cli:alice", now=NOW))

    retried = bus.handle(RetryFailedFetchesOfSystem(system="nts", reason="key set", requested_by="cli:alice",
                                                    now=NOW))
    assert sorted(s.id for s in retried) == sorted(s.id for s in gave_up)
    assert all(s.state == "pending" and s.attempts == 0 and s.next_attempt_at == NOW for s in gave_up)
    audit = events(uow, "CredentialFetchRetried")
    assert len(audit) == 3 and {(e["system"], e["previous_state"], e["reason"]) for e in audit} == {
        ("nts", "failed_permanently", "key set")}
    assert bus.handle(RetryFailedFetchesOfSystem(system="nts", reason="again", requested_by="cli:alice",
                                                 now=NOW)) == []

    # not_found only on request, and only the system named
    assert bus.handle(RetryFailedFetchesOfSystem(system="gleif", reason="r", requested_by="x", now=NOW)) == []
    both = bus.handle(RetryFailedFetchesOfSystem(system="gleif", reason="r", requested_by="x", now=NOW,
                                                 include_not_found=True))
    assert len(both) == 3 and {s.system for s in both} == {"gleif"}
