"""The hub's ``expired`` against the source's own word, on the in-memory unit of work: expiry skips what
the source says is not in force, and a newer version saying so replaces ``expired``."""

from __future__ import annotations

from datetime import datetime, timedelta

from hub.organisations.model import OrgKind
from hub.spine.bus import MessageBus
from hub.suppliers.commands import ClaimCredentialFetches, ExpireCredentials, FetchedCredential, FetchOutcome
from hub.suppliers.model import CredentialFetch
from tests.support.fakes import FakeUnitOfWork
from tests.unit.test_supplier_handlers import BRN, NOW, nts_slot, ok, org, record, register
from tests.unit.test_supplier_handlers import bus as bus  # the fixtures
from tests.unit.test_supplier_handlers import uow as uow


def tax(status: str, standing: str, valid_until: datetime) -> FetchedCredential:
    return FetchedCredential(
        type="tax_status",
        subject=BRN,
        record_key="",
        status=status,
        attributes={},
        valid_from=NOW - timedelta(days=1),
        valid_until=valid_until,
        pointer="/",
        standing=standing,
    )


def refetch(bus: MessageBus, supplier_id: str, token: str, now: datetime) -> CredentialFetch:
    claimed = bus.handle(ClaimCredentialFetches(claim_token=token, now=now, supplier_id=supplier_id, force=True))
    return next(slot for slot in claimed if slot.system == "nts")


def answer(outcome: FetchOutcome, fetched_at: datetime) -> FetchOutcome:
    return outcome.model_copy(update={"fetched_at": fetched_at})


def test_expiry_skips_a_credential_the_source_says_is_not_in_force(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    registration = register(bus, org(uow, OrgKind.SUPPLIER))
    record(bus, ok(nts_slot(registration), tax("closed", "not_in_force", NOW + timedelta(days=1))))
    assert bus.handle(ExpireCredentials(now=NOW + timedelta(days=2))) == 0
    [credential] = uow.suppliers.credentials_of(registration.supplier.id)
    assert (credential.status, credential.standing, credential.expired_at) == ("closed", "not_in_force", None)


def test_a_newer_version_not_in_force_replaces_the_hubs_expired(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    registration = register(bus, org(uow, OrgKind.SUPPLIER))
    slot = nts_slot(registration)
    record(bus, ok(slot, tax("active", "in_force", NOW + timedelta(days=1))))
    later = NOW + timedelta(days=2)
    assert bus.handle(ExpireCredentials(now=later)) == 1
    claimed = refetch(bus, registration.supplier.id, "again", later)
    # The same ended window, still in force per the source: stays expired.
    record(bus, answer(ok(claimed, tax("active", "in_force", NOW + timedelta(days=1))), later), now=later)
    [credential] = uow.suppliers.credentials_of(registration.supplier.id)
    assert (credential.status, credential.expired_at) == ("expired", later)
    claimed = refetch(bus, registration.supplier.id, "third", later)
    # The same ended window, now said to be closed: the source's word wins.
    record(bus, answer(ok(claimed, tax("closed", "not_in_force", NOW + timedelta(days=1))), later), now=later)
    [credential] = uow.suppliers.credentials_of(registration.supplier.id)
    assert (credential.status, credential.standing, credential.expired_at) == ("closed", "not_in_force", None)
    versions = sorted(uow.suppliers.versions_of(credential.id), key=lambda v: v.id or 0)
    assert [(v.status, v.standing) for v in versions] == [
        ("active", "in_force"),
        ("active", "in_force"),
        ("closed", "not_in_force"),
    ]
