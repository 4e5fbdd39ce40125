"""The upstream budget on the fetch path: a refused call is not made, and the slot it was for is
postponed (still pending, attempts unspent, no failure event) until the budget has refilled."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.errors import NotFoundUpstream, UpstreamError
from hub.organisations.model import Organisation, OrgKind
from hub.registry import COMMAND_HANDLERS
from hub.spine.bus import MessageBus
from hub.spine.quotas import Decision, InMemoryBuckets, Policy
from hub.suppliers.commands import FetchOutcome, RecordCredentialFetches, RegisterSupplier
from hub.suppliers.config import SupplierSettings
from hub.suppliers.fetching import CredentialFetcher
from tests.support.fakes import FakeUnitOfWork

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SETTINGS = SupplierSettings(applicable_systems={"kr_brn": ["nts"], "lei": ["gleif"]},
                            backoff={"initial_s": 30, "jitter_ratio": 0})


@dataclass
class Slot:
    id: str
    system: str
    identifier: str
    claim_token: str | None = "claim"


class CountingConnector:
    """Knows nobody; counts the calls it was asked to make."""

    def __init__(self, system: str, batch_size: int) -> None:
        self.system = system
        self.supports_batch = batch_size > 1
        self.batch_size = batch_size
        self.calls = 0

    def fetch(self, identifier: str, *, purpose: str, requested_by: str) -> Any:
        self.calls += 1
        raise NotFoundUpstream(self.system, "not_found")

    def fetch_many(self, identifiers: Iterable[str], *, purpose: str, requested_by: str
                   ) -> dict[str, UpstreamError]:
        unique = list(dict.fromkeys(identifiers))
        self.calls += -(-len(unique) // self.batch_size)
        return {i: NotFoundUpstream(self.system, "not_found") for i in unique}


class Registry:
    def __init__(self, *connectors: CountingConnector) -> None:
        self.by_system = {c.system: c for c in connectors}

    def __contains__(self, system: object) -> bool:
        return system in self.by_system

    def __getitem__(self, system: str) -> Any:
        return self.by_system[system]

    def mapping_path(self, system: str) -> object:
        return None


def budget_of(limit: int) -> Any:
    store = InMemoryBuckets(clock=lambda: 0.0)
    policy = Policy("upstream", limit, 60)

    def take(system: str) -> Decision | None:
        return store.take([(f"upstream:{system}", policy)])[0]

    return take


def test_a_batched_system_is_called_as_often_as_its_budget_allows() -> None:
    nts = CountingConnector("nts", batch_size=100)
    fetcher = CredentialFetcher(Registry(nts), SETTINGS, budget=budget_of(2))
    try:
        slots = [Slot(f"s{i}", "nts", f"{i:010d}") for i in range(250)]
        outcomes = fetcher.fetch_grouped(slots, purpose="refresh", requested_by="hub-scheduler")
    finally:
        fetcher.close()
    assert nts.calls == 2
    kinds = [o.kind for o in outcomes]
    assert kinds.count("not_found") == 200 and kinds.count("throttled") == 50
    throttled = [o for o in outcomes if o.kind == "throttled"]
    assert {o.retry_after_s for o in throttled} == {30.0}  # one call's worth back every 30 s
    assert all(o.error_code == "upstream_budget" for o in throttled)


def test_a_refused_call_on_registration_is_not_made() -> None:
    gleif = CountingConnector("gleif", batch_size=1)
    fetcher = CredentialFetcher(Registry(gleif), SETTINGS, budget=budget_of(1))
    try:
        outcomes = fetcher.fetch_each([Slot("a", "gleif", "LEI-A"), Slot("b", "gleif", "LEI-B")],
                                      purpose="registration", requested_by="org")
    finally:
        fetcher.close()
    assert gleif.calls == 1
    assert sorted(o.kind for o in outcomes) == ["not_found", "throttled"]


def test_without_a_budget_every_call_is_made() -> None:
    gleif = CountingConnector("gleif", batch_size=1)
    fetcher = CredentialFetcher(Registry(gleif), SETTINGS)
    try:
        fetcher.fetch_grouped([Slot(f"s{i}", "gleif", f"L{i}") for i in range(5)], purpose="refresh",
                              requested_by="hub-scheduler")
    finally:
        fetcher.close()
    assert gleif.calls == 5


def test_a_throttled_slot_stays_pending_with_its_attempts_and_no_event() -> None:
    uow = FakeUnitOfWork()
    bus = MessageBus(lambda: uow, COMMAND_HANDLERS, {}, dependencies={"supplier_settings": SETTINGS})
    org = Organisation.new("Supplier", OrgKind.SUPPLIER)
    uow.organisations.add(org)
    registration = bus.handle(RegisterSupplier(org_id=org.id, identifiers={"kr_brn": "1157750731"}, consent=True,
                                               claim_token="t1", actor_org_id=org.id))
    (slot,) = registration.claimed
    bus.handle(RecordCredentialFetches(now=NOW, outcomes=[FetchOutcome(
        fetch_id=slot.id, claim_token="t1", kind="transient", error_code="http_503")]))
    assert slot.attempts == 1
    events_before = len(uow.outbox)
    slot.claim_token = "t2"  # claimed again by the scheduler
    later = NOW + timedelta(minutes=5)
    bus.handle(RecordCredentialFetches(now=later, outcomes=[FetchOutcome(
        fetch_id=slot.id, claim_token="t2", kind="throttled", error_code="upstream_budget", retry_after_s=42)]))
    assert slot.state == "pending"
    assert slot.attempts == 1  # not spent: no call was made
    assert slot.next_attempt_at == later + timedelta(seconds=42)
    assert slot.last_attempt_at == NOW
    assert slot.last_error is not None and slot.last_error.startswith("throttled")
    assert slot.claim_token is None
    assert len(uow.outbox) == events_before  # not a failure: nothing for the audit trail
