"""Every register-once command handler on the in-memory unit of work: what it stores, which events reach
the outbox, and what it refuses. Time is passed in (``now``), so retries and expiry need no waiting."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.organisations.model import Organisation, OrgKind
from hub.registry import COMMAND_HANDLERS
from hub.spine.bus import MessageBus
from hub.spine.errors import Conflict, NotFound, Rejected, RejectedFields
from hub.suppliers.commands import (
    ClaimCredentialFetches,
    ExpireCredentials,
    FetchedCredential,
    FetchOutcome,
    GrantSupplierAccess,
    RecordCredentialFetches,
    RegisterSupplier,
    RetryCredentialFetches,
    RevokeSupplierAccess,
)
from hub.suppliers.config import SupplierSettings
from hub.suppliers.control import IdentifierTaken
from hub.suppliers.handlers import Registration
from hub.suppliers.model import CredentialFetch
from tests.support.fakes import FakeUnitOfWork

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BRN = "1157750731"
LEI = "213800VN0A3M6L5X2X86"
SETTINGS = SupplierSettings(
    applicable_systems={"kr_brn": ["nts", "national_certs"], "lei": ["gleif"]},
    backoff={"initial_s": 30, "multiplier": 2, "max_s": 600, "jitter_ratio": 0},
    fetch={"lease_s": 120},
    freshness={"default_refresh_s": 86400, "refresh_margin_s": 3600, "refresh_margin_ratio": 0,
               "not_found_recheck_s": 7 * 86400},
)


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def bus(uow: FakeUnitOfWork) -> MessageBus:
    return MessageBus(lambda: uow, COMMAND_HANDLERS, {}, dependencies={"supplier_settings": SETTINGS})


def events(uow: FakeUnitOfWork, message_type: str | None = None) -> list[dict[str, Any]]:
    return [e.payload for e in uow.outbox if message_type in (None, e.message_type)]


def org(uow: FakeUnitOfWork, kind: OrgKind, name: str = "Org") -> str:
    created = Organisation.new(name, kind)
    uow.organisations.add(created)
    return created.id


def register(bus: MessageBus, org_id: str, token: str = "t-register", **identifiers: str) -> Registration:
    registration: Registration = bus.handle(RegisterSupplier(
        org_id=org_id, identifiers=identifiers or {"kr_brn": BRN}, consent=True, claim_token=token,
        actor_org_id=org_id,
    ))
    return registration


def credential(status: str = "active", valid_until: datetime | None = NOW + timedelta(days=7),
               record_key: str = "") -> FetchedCredential:
    return FetchedCredential(type="tax_status", subject=BRN, record_key=record_key, status=status,
                             attributes={"status": status}, valid_from=NOW, valid_until=valid_until,
                             pointer="/body/0")


def ok(slot: CredentialFetch, *found: FetchedCredential, token: str | None = None) -> FetchOutcome:
    raw = repr(found).encode()
    digest = hashlib.sha256(raw).hexdigest()
    return FetchOutcome(fetch_id=slot.id, claim_token=token or slot.claim_token or "", kind="ok", fetched_at=NOW,
                        raw=raw, content_type="application/json", raw_sha256=digest, response_sha256=digest,
                        credentials=list(found))


def failed(slot: CredentialFetch, kind: Any, code: str = "boom") -> FetchOutcome:
    return FetchOutcome(fetch_id=slot.id, claim_token=slot.claim_token or "", kind=kind, error_code=code)


def record(bus: MessageBus, *outcomes: FetchOutcome, now: datetime = NOW) -> dict[str, str | None]:
    result: dict[str, str | None] = bus.handle(RecordCredentialFetches(outcomes=list(outcomes), now=now))
    return result


def nts_slot(registration: Registration) -> CredentialFetch:
    return next(s for s in registration.claimed if s.system == "nts")


# -- RegisterSupplier ---------------------------------------------------------------------------------


def test_register_creates_the_supplier_and_a_claimed_slot_per_system(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    owner = org(uow, OrgKind.SUPPLIER)
    registration = register(bus, owner, kr_brn="115-77-50731", lei=LEI)
    supplier = registration.supplier
    assert registration.created
    assert uow.suppliers.get(supplier.id) is supplier
    assert supplier.identifiers == {"kr_brn": BRN, "lei": LEI}  # normalised before it is stored
    assert sorted(s.system for s in uow.suppliers.fetches_of(supplier.id)) == ["gleif", "national_certs", "nts"]
    assert {s.claim_token for s in registration.claimed} == {"t-register"}  # the scheduler keeps off them
    assert all(s.claimed_until is not None and s.state == "pending" for s in registration.claimed)
    [registered] = events(uow, "SupplierRegistered")
    assert registered["supplier_id"] == supplier.id and registered["org_id"] == owner
    claimed = events(uow, "IdentifierClaimed")  # each identifier now belongs to the owner (unproven)
    assert sorted((e["scheme"], e["identifier"], e["org_id"]) for e in claimed) == [("kr_brn", BRN, owner),
                                                                                   ("lei", LEI, owner)]
    assert registered["systems"] == ["gleif", "national_certs", "nts"]
    assert registered["consent_text_version"] == SETTINGS.consent.text_version


def test_registering_the_same_identifiers_again_returns_the_supplier(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    owner = org(uow, OrgKind.SUPPLIER)
    first = register(bus, owner, lei=LEI, kr_brn=BRN)
    again = register(bus, owner, token="t-again", kr_brn="115-77-50731", lei=LEI)
    assert not again.created and again.claimed == []
    assert again.supplier is first.supplier
    assert len(uow.suppliers.suppliers) == 1 and len(uow.suppliers.fetches) == 3
    assert len(events(uow, "SupplierRegistered")) == 1
    with pytest.raises(IdentifierTaken) as taken:  # another organisation: the identifier is not its to take
        register(bus, org(uow, OrgKind.SUPPLIER), kr_brn=BRN)
    assert taken.value.field == "identifiers.kr_brn"
    assert len(uow.suppliers.suppliers) == 1


def test_register_refuses_without_consent_or_with_a_bad_identifier(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    owner = org(uow, OrgKind.SUPPLIER)
    with pytest.raises(Rejected) as info:
        bus.handle(RegisterSupplier(org_id=owner, identifiers={"kr_brn": BRN}, consent=False, claim_token="t"))
    assert info.value.field == "consent"
    with pytest.raises(Rejected) as info:
        register(bus, owner, kr_brn="1157750732")  # wrong check digit
    assert info.value.field == "identifiers.kr_brn"
    with pytest.raises(RejectedFields) as every:  # every problem at once, not the first one
        bus.handle(RegisterSupplier(org_id=owner, identifiers={"kr_brn": "1157750732", "lei": "x", "eu_vat": "DE1"},
                                    consent=False, claim_token="t"))
    assert [field for field, _ in every.value.problems] == [
        "consent", "identifiers.kr_brn", "identifiers.lei", "identifiers.eu_vat"]
    assert uow.suppliers.suppliers == {} and uow.outbox == [] and uow.committed == 0


# -- RecordCredentialFetches ----------------------------------------------------------------------------


def test_recording_an_answer_verifies_the_credential_with_its_provenance(
    bus: MessageBus, uow: FakeUnitOfWork
) -> None:
    registration = register(bus, org(uow, OrgKind.SUPPLIER))
    slot = nts_slot(registration)
    outcome = ok(slot, credential())
    assert record(bus, outcome) == {slot.id: "verified"}
    [stored] = uow.suppliers.credentials_of(registration.supplier.id)
    assert stored.status == "active" and stored.fetch_id == slot.id
    [version] = uow.suppliers.versions_of(stored.id)
    assert stored.current_version_id == version.id and version.change == "new"
    assert version.raw_sha256 == outcome.raw_sha256
    assert uow.suppliers.raw(version.raw_sha256) == ("application/json", outcome.raw)
    assert slot.claim_token is None and slot.claimed_until is None and slot.attempts == 1
    # Refreshed ahead of valid_until by the margin (an hour), as the settings say.
    assert slot.next_attempt_at == NOW + timedelta(days=1)
    [verified] = events(uow, "CredentialVerified")
    assert verified["credential_id"] == stored.id and verified["version_id"] == version.id


def test_a_changed_answer_is_a_new_version_and_an_event(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    registration = register(bus, org(uow, OrgKind.SUPPLIER))
    slot = nts_slot(registration)
    record(bus, ok(slot, credential("active")))
    [claimed] = bus.handle(ClaimCredentialFetches(claim_token="t2", supplier_id=registration.supplier.id,
                                                  force=True, limit=1, now=NOW))
    record(bus, ok(claimed, credential("active")))  # the same answer: a version, no event
    assert events(uow, "CredentialChanged") == []
    bus.handle(ClaimCredentialFetches(claim_token="t3", supplier_id=registration.supplier.id, force=True, now=NOW))
    record(bus, ok(slot, credential("closed")))
    [changed] = events(uow, "CredentialChanged")
    assert changed["before"]["status"] == "active" and changed["after"]["status"] == "closed"
    [stored] = uow.suppliers.credentials_of(registration.supplier.id)
    assert stored.status == "closed"
    assert [v.change for v in uow.suppliers.versions_of(stored.id)] == ["changed", "unchanged", "new"]


def test_a_credential_the_source_no_longer_reports_becomes_absent(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    registration = register(bus, org(uow, OrgKind.SUPPLIER))
    slot = nts_slot(registration)
    record(bus, ok(slot, credential(record_key="a"), credential(record_key="b")))
    bus.handle(ClaimCredentialFetches(claim_token="t2", supplier_id=registration.supplier.id, force=True, now=NOW))
    record(bus, ok(slot, credential(record_key="a")))
    statuses = {c.record_key: c.status for c in uow.suppliers.credentials_of(registration.supplier.id)}
    assert statuses == {"a": "active", "b": "absent"}
    [changed] = events(uow, "CredentialChanged")
    assert changed["after"]["status"] == "absent" and changed["version_id"] is None


def test_failures_schedule_a_retry_a_recheck_or_nothing(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    registration = register(bus, org(uow, OrgKind.SUPPLIER), lei=LEI, kr_brn=BRN)
    slots = {s.system: s for s in registration.claimed}
    states = record(bus, failed(slots["nts"], "transient"), failed(slots["gleif"], "not_found"),
                    failed(slots["national_certs"], "permanent", "refused"))
    assert states == {slots["nts"].id: "pending", slots["gleif"].id: "not_found",
                      slots["national_certs"].id: "failed_permanently"}
    assert slots["nts"].attempts == 1 and slots["nts"].next_attempt_at == NOW + timedelta(seconds=30)
    assert slots["gleif"].next_attempt_at == NOW + timedelta(days=7)
    assert slots["national_certs"].next_attempt_at is None
    assert all(s.claim_token is None for s in slots.values())
    failures = {e["system"]: e for e in events(uow, "CredentialFetchFailed")}
    assert failures["nts"]["outcome"] == "transient" and failures["nts"]["attempts"] == 1
    assert failures["national_certs"]["error_code"] == "refused"
    assert uow.suppliers.credentials == {}


def test_attempts_count_every_call_of_a_round_the_successful_one_included(
    bus: MessageBus, uow: FakeUnitOfWork
) -> None:
    registration = register(bus, org(uow, OrgKind.SUPPLIER))
    slot = nts_slot(registration)
    supplier_id = registration.supplier.id

    def again(token: str) -> None:
        bus.handle(ClaimCredentialFetches(claim_token=token, supplier_id=supplier_id, force=True, now=NOW))

    record(bus, failed(slot, "transient"))
    again("t2")
    record(bus, failed(slot, "transient"))
    again("t3")
    record(bus, ok(slot, credential()))
    assert (slot.state, slot.attempts, slot.last_error) == ("verified", 3, None)
    again("t4")
    record(bus, ok(slot, credential()))  # a refresh that succeeds at once: a round of one
    assert slot.attempts == 1
    again("t5")
    record(bus, failed(slot, "transient"))  # the failures in a row start again, and so does the backoff
    assert (slot.state, slot.attempts) == ("verified", 1)
    assert slot.next_attempt_at == NOW + timedelta(seconds=30)


def test_an_outcome_under_a_lost_claim_is_dropped(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    registration = register(bus, org(uow, OrgKind.SUPPLIER))
    slot = nts_slot(registration)
    before = len(uow.outbox)
    assert record(bus, ok(slot, credential(), token="someone-else")) == {slot.id: None}
    assert slot.claim_token == "t-register"  # still the registering request's
    assert uow.suppliers.credentials == {} and len(uow.outbox) == before


# -- ClaimCredentialFetches ---------------------------------------------------------------------------


def test_claim_takes_due_unleased_slots_for_the_configured_lease(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    registration = register(bus, org(uow, OrgKind.SUPPLIER))
    assert bus.handle(ClaimCredentialFetches(claim_token="sched", now=NOW)) == []  # the registration holds them
    record(bus, *(failed(s, "transient") for s in registration.claimed))
    assert bus.handle(ClaimCredentialFetches(claim_token="sched", now=NOW)) == []  # not due for 30 s
    later = NOW + timedelta(seconds=30)
    claimed = bus.handle(ClaimCredentialFetches(claim_token="sched", now=later, limit=1))
    assert len(claimed) == 1
    assert claimed[0].claim_token == "sched" and claimed[0].claimed_until == later + timedelta(seconds=120)
    rest = bus.handle(ClaimCredentialFetches(claim_token="other", now=later))
    assert [s.id for s in rest] != [claimed[0].id] and len(rest) == 1  # a leased slot is not claimed twice


def test_a_forced_claim_takes_every_slot_of_one_supplier_refused_ones_included(
    bus: MessageBus, uow: FakeUnitOfWork
) -> None:
    owner = org(uow, OrgKind.SUPPLIER)
    first = register(bus, owner, token="t1")
    other = register(bus, owner, token="t2", lei=LEI)
    slots = {s.system: s for s in first.claimed}
    record(bus, ok(slots["nts"], credential()), failed(slots["national_certs"], "permanent"))
    record(bus, *(failed(s, "transient") for s in other.claimed))
    claimed = bus.handle(ClaimCredentialFetches(claim_token="refresh", supplier_id=first.supplier.id, force=True,
                                                now=NOW))
    # Not due, but forced: a refresh asks the refused one again too (its cause may be fixed); the other
    # supplier's slots are not touched.
    assert sorted(s.system for s in claimed) == ["national_certs", "nts"]


def test_an_unreadable_reply_stays_pending_and_keeps_its_bytes(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    slot = nts_slot(register(bus, org(uow, OrgKind.SUPPLIER)))
    page = b"<html><body>maintenance</body></html>"
    digest = hashlib.sha256(page).hexdigest()
    states = record(bus, FetchOutcome(fetch_id=slot.id, claim_token=slot.claim_token or "", kind="transient",
                                      error_code="unreadable_reply", raw=page, content_type="text/html",
                                      raw_sha256=digest, fetched_at=NOW))
    assert states == {slot.id: "pending"} and slot.next_attempt_at == NOW + timedelta(seconds=30)
    assert uow.suppliers.credentials_of_fetch(slot.id) == []
    assert uow.suppliers.raws[digest] == ("text/html", page)
    [failure] = events(uow, "CredentialFetchFailed")
    assert failure["error_code"] == "unreadable_reply" and failure["raw_sha256"] == digest


def test_retry_puts_a_refused_slot_back_to_pending_and_says_who_and_why(
    bus: MessageBus, uow: FakeUnitOfWork
) -> None:
    registration = register(bus, org(uow, OrgKind.SUPPLIER))
    slots = {s.system: s for s in registration.claimed}
    record(bus, ok(slots["nts"], credential()), failed(slots["national_certs"], "permanent", "INVALID_INPUT"))
    supplier_id = registration.supplier.id
    with pytest.raises(Rejected):
        bus.handle(RetryCredentialFetches(supplier_id=supplier_id, reason=" ", requested_by="cli:alice", now=NOW))
    with pytest.raises(Conflict):  # verified: a refresh asks it again, not a retry
        bus.handle(RetryCredentialFetches(supplier_id=supplier_id, system="nts", reason="r",
                                          requested_by="cli:alice", now=NOW))
    with pytest.raises(NotFound):
        bus.handle(RetryCredentialFetches(supplier_id=supplier_id, system="vies", reason="r",
                                          requested_by="cli:alice", now=NOW))
    later = NOW + timedelta(hours=1)
    retried = bus.handle(RetryCredentialFetches(supplier_id=supplier_id, reason="registry fixed",
                                                requested_by="cli:alice", now=later))
    assert [s.system for s in retried] == ["national_certs"]
    slot = slots["national_certs"]
    assert (slot.state, slot.attempts, slot.next_attempt_at) == ("pending", 0, later)
    [event] = events(uow, "CredentialFetchRetried")
    assert event["previous_state"] == "failed_permanently" and "INVALID_INPUT" in event["previous_error"]
    assert event["reason"] == "registry fixed" and event["requested_by"] == "cli:alice"
    claimed = bus.handle(ClaimCredentialFetches(claim_token="sched", now=later))
    assert [s.id for s in claimed] == [slot.id]  # due for the scheduler again
    with pytest.raises(Conflict):  # now claimed: being fetched
        bus.handle(RetryCredentialFetches(supplier_id=supplier_id, fetch_id=slot.id, reason="r",
                                          requested_by="cli:alice", now=later))
    record(bus, ok(slot, credential()), now=later)
    with pytest.raises(Conflict):  # nothing left to retry: every slot is verified
        bus.handle(RetryCredentialFetches(supplier_id=supplier_id, reason="r", requested_by="cli:alice",
                                          now=later + timedelta(hours=1)))


# -- ExpireCredentials ----------------------------------------------------------------------------------


def test_expire_marks_what_ran_out_once(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    owner = org(uow, OrgKind.SUPPLIER)
    registration = register(bus, owner)
    record(bus, ok(nts_slot(registration), credential(valid_until=NOW + timedelta(days=1), record_key="short"),
                   credential(valid_until=NOW + timedelta(days=30), record_key="long")))
    later = NOW + timedelta(days=2)
    assert bus.handle(ExpireCredentials(now=later)) == 1
    by_key = {c.record_key: c for c in uow.suppliers.credentials_of(registration.supplier.id)}
    assert by_key["short"].status == "expired" and by_key["short"].expired_at == later
    assert by_key["long"].status == "active" and by_key["long"].expired_at is None
    [expired] = events(uow, "CredentialExpired")
    assert expired["credential_id"] == by_key["short"].id and expired["org_id"] == owner
    assert expired["previous_status"] == "active"
    assert bus.handle(ExpireCredentials(now=later)) == 0  # already expired: no second event
    assert len(events(uow, "CredentialExpired")) == 1


# -- GrantSupplierAccess / RevokeSupplierAccess ---------------------------------------------------------


def test_the_owner_grants_an_institution_once(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    owner = org(uow, OrgKind.SUPPLIER)
    institution = org(uow, OrgKind.INSTITUTION)
    supplier_id = register(bus, owner).supplier.id
    grant = bus.handle(GrantSupplierAccess(supplier_id=supplier_id, institution_org_id=institution,
                                           actor_org_id=owner))
    assert grant.granted_by == owner
    assert uow.suppliers.grant(supplier_id, institution) is grant
    assert uow.suppliers.list_granted_to(institution) == [uow.suppliers.get(supplier_id)]
    again = bus.handle(GrantSupplierAccess(supplier_id=supplier_id, institution_org_id=institution,
                                           actor_org_id=owner))
    assert again is grant
    [granted] = events(uow, "SupplierAccessGranted")
    assert granted["institution_org_id"] == institution and granted["org_id"] == owner


def test_grants_are_refused_to_strangers_and_to_non_institutions(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    owner = org(uow, OrgKind.SUPPLIER)
    supplier_id = register(bus, owner).supplier.id
    institution = org(uow, OrgKind.INSTITUTION)
    with pytest.raises(NotFound) as info:  # not the owner: as if the supplier did not exist
        bus.handle(GrantSupplierAccess(supplier_id=supplier_id, institution_org_id=institution,
                                       actor_org_id=org(uow, OrgKind.SUPPLIER)))
    assert info.value.what == "supplier"
    for not_an_institution in (org(uow, OrgKind.AGENCY), "missing"):
        with pytest.raises(NotFound) as info:
            bus.handle(GrantSupplierAccess(supplier_id=supplier_id, institution_org_id=not_an_institution,
                                           actor_org_id=owner))
        assert info.value.what == "institution"
    assert uow.suppliers.grants == {} and events(uow, "SupplierAccessGranted") == []


def test_revoke_removes_the_grant_once(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    owner = org(uow, OrgKind.SUPPLIER)
    institution = org(uow, OrgKind.INSTITUTION)
    supplier_id = register(bus, owner).supplier.id
    bus.handle(GrantSupplierAccess(supplier_id=supplier_id, institution_org_id=institution, actor_org_id=owner))
    revoke = RevokeSupplierAccess(supplier_id=supplier_id, institution_org_id=institution, actor_org_id=owner)
    assert bus.handle(revoke) is True
    assert uow.suppliers.grant(supplier_id, institution) is None
    assert bus.handle(revoke) is False
    [revoked] = events(uow, "SupplierAccessRevoked")
    assert revoked["institution_org_id"] == institution
    with pytest.raises(NotFound):
        bus.handle(RevokeSupplierAccess(supplier_id=supplier_id, institution_org_id=institution,
                                        actor_org_id=institution))
