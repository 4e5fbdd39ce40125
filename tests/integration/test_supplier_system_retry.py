"""The system-wide retry and a refused key on the SQL repository, SQLite and PostgreSQL: which slots come
back (the system's failed ones, not_found on request, never a leased one), and a refused key leaving the
slot pending with its attempt count."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.suppliers.commands import (
    ClaimCredentialFetches,
    FetchOutcome,
    RecordCredentialFetches,
    RegisterSupplier,
    RetryFailedFetchesOfSystem,
)
from hub.suppliers.handlers import Registration

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BRNS = ["5647276302", "5636696245", "2952483885"]
SUPPLIERS = {"backoff": {"initial_s": 30, "jitter_ratio": 0, "misconfigured_retry_s": 300},
             "fetch": {"lease_s": 120}, "scheduler": {"enabled": False}}


@pytest.fixture(params=["sqlite", "postgres"])
def hub(request: pytest.FixtureRequest) -> Iterator[Hub]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    the_hub = bootstrap(Settings(database={"url": url}, broker={"kind": "inprocess"}, suppliers=SUPPLIERS,
                                 connectors={"national_certs": {"enabled": True}}), migrate=True)
    yield the_hub
    the_hub.close()


def register(hub: Hub, token: str, brn: str) -> Registration:
    org, _ = hub.bus.handle(CreateOrganisation(name=f"Supplier {token}", kind=OrgKind.SUPPLIER))
    registration: Registration = hub.bus.handle(RegisterSupplier(
        org_id=org.id, identifiers={"kr_brn": brn}, consent=True, claim_token=token))
    return registration


def outcome(registration: Registration, system: str, kind: str, code: str) -> FetchOutcome:
    slot = next(s for s in registration.claimed if s.system == system)
    return FetchOutcome(fetch_id=slot.id, claim_token=slot.claim_token or "", kind=kind,  # type: ignore[arg-type]
                        error_code=code)


def states(hub: Hub, registration: Registration) -> dict[str, tuple[str, int]]:
    with hub.uow() as uow:
        return {f.system: (f.state, f.attempts) for f in uow.suppliers.fetches_of(registration.supplier.id)}


def test_a_systems_failed_slots_come_back_and_a_refused_key_keeps_slots_pending(hub: Hub) -> None:
    registrations = [register(hub, f"t{n}", brn) for n, brn in enumerate(BRNS)]
    first, second, third = registrations
    hub.bus.handle(RecordCredentialFetches(now=NOW, outcomes=[
        outcome(first, "nts", "permanent", "http_401"), outcome(first, "national_certs", "not_found", "NF"),
        outcome(second, "nts", "permanent", "http_401"), outcome(second, "national_certs", "permanent", "X"),
        outcome(third, "nts", "misconfigured", "gateway-4"),
    ]))
    assert states(hub, third)["nts"] == ("pending", 0)
    with hub.uow() as uow:
        slot = next(f for f in uow.suppliers.fetches_of(third.supplier.id) if f.system == "nts")
        assert slot.next_attempt_at is not None
        assert slot.next_attempt_at.replace(tzinfo=UTC) == NOW + timedelta(seconds=300)
        assert (slot.last_error or "").startswith("misconfigured: gateway-4")

    # the third supplier's national_certs slot is still leased by its registration: left alone
    retried = hub.bus.handle(RetryFailedFetchesOfSystem(system="nts", reason="key set", requested_by="cli:x",
                                                        now=NOW))
    assert sorted(s.supplier_id for s in retried) == sorted([first.supplier.id, second.supplier.id])
    assert states(hub, first)["nts"] == states(hub, second)["nts"] == ("pending", 0)
    assert states(hub, second)["national_certs"] == ("failed_permanently", 1)  # another system
    later = NOW + timedelta(hours=1)
    assert len(hub.bus.handle(RetryFailedFetchesOfSystem(
        system="national_certs", reason="r", requested_by="cli:x", now=later, include_not_found=True))) == 2
    assert states(hub, first)["national_certs"] == ("pending", 0)
    claimed = hub.bus.handle(ClaimCredentialFetches(claim_token="sched", now=later))
    assert {(s.supplier_id, s.system) for s in claimed} >= {(first.supplier.id, "nts"), (second.supplier.id, "nts")}
