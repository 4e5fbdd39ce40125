"""Register and refresh (command → fetch outside the transaction → command) on the in-memory unit of work,
with a stand-in for the fetcher bootstrap injects: what reaches the repository when the upstreams answer,
and when no connector can even be built."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from hub.organisations.model import Organisation, OrgKind
from hub.registry import COMMAND_HANDLERS
from hub.spine.bus import MessageBus
from hub.suppliers.commands import FetchOutcome
from hub.suppliers.config import SupplierSettings
from hub.suppliers.model import CredentialFetch
from hub.suppliers.services import SupplierService
from tests.support.fakes import FakeUnitOfWork

BRN = "1157750731"
SETTINGS = SupplierSettings(applicable_systems={"kr_brn": ["nts", "national_certs"]},
                            backoff={"initial_s": 30, "jitter_ratio": 0})


class StubFetcher:
    """Answers every slot with ``kind`` and remembers what it was asked."""

    def __init__(self, kind: str = "not_found") -> None:
        self.kind = kind
        self.calls: list[tuple[list[str], str, str]] = []

    def fetch_each(self, slots: Sequence[CredentialFetch], *, purpose: str, requested_by: str,
                   on_outcome: Callable[[FetchOutcome], None]) -> list[FetchOutcome]:
        self.calls.append((sorted(s.system for s in slots), purpose, requested_by))
        outcomes = [FetchOutcome(fetch_id=s.id, claim_token=s.claim_token or "", kind=self.kind,  # type: ignore[arg-type]
                                 error_code="unknown") for s in slots]
        for outcome in outcomes:
            on_outcome(outcome)
        return outcomes


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


def service(uow: FakeUnitOfWork, fetcher: Callable[[], Any]) -> SupplierService:
    bus = MessageBus(lambda: uow, COMMAND_HANDLERS, {}, dependencies={"supplier_settings": SETTINGS})
    return SupplierService(bus, fetcher)


def supplier_org(uow: FakeUnitOfWork) -> str:
    org = Organisation.new("Supplier Co", OrgKind.SUPPLIER)
    uow.organisations.add(org)
    return org.id


def test_registration_fetches_every_slot_and_records_each_answer(uow: FakeUnitOfWork) -> None:
    fetcher = StubFetcher("not_found")
    owner = supplier_org(uow)
    result = service(uow, lambda: fetcher).register(org_id=owner, identifiers={"kr_brn": BRN}, consent=True)
    assert result.created
    assert fetcher.calls == [(["national_certs", "nts"], "registration", owner)]
    slots = uow.suppliers.fetches_of(result.supplier.id)
    assert {s.state for s in slots} == {"not_found"} and {s.claim_token for s in slots} == {None}
    again = service(uow, lambda: fetcher).register(org_id=owner, identifiers={"kr_brn": BRN}, consent=True)
    assert not again.created and len(fetcher.calls) == 1  # nothing claimed, nothing fetched


def test_without_connectors_the_claims_are_released_as_transient_failures(uow: FakeUnitOfWork) -> None:
    def broken() -> Any:
        raise RuntimeError("no connector configuration")

    result = service(uow, broken).register(org_id=supplier_org(uow), identifiers={"kr_brn": BRN}, consent=True)
    slots = uow.suppliers.fetches_of(result.supplier.id)
    assert {s.state for s in slots} == {"pending"} and {s.claim_token for s in slots} == {None}
    assert {s.last_error for s in slots} == {"transient: connectors_unavailable (RuntimeError)"}
    failures = [e.payload for e in uow.outbox if e.message_type == "CredentialFetchFailed"]
    assert sorted(f["system"] for f in failures) == ["national_certs", "nts"]


def test_refresh_claims_and_fetches_one_suppliers_slots(uow: FakeUnitOfWork) -> None:
    fetcher = StubFetcher("transient")
    owner = supplier_org(uow)
    supplier = service(uow, lambda: fetcher).register(org_id=owner, identifiers={"kr_brn": BRN},
                                                      consent=True).supplier
    assert service(uow, lambda: fetcher).refresh(supplier.id, requested_by="operator") == 2
    assert fetcher.calls[-1] == (["national_certs", "nts"], "refresh", "operator")
    assert {s.attempts for s in uow.suppliers.fetches_of(supplier.id)} == {2}
    assert service(uow, lambda: fetcher).refresh("unknown", requested_by="operator") == 0
    assert len(fetcher.calls) == 2
