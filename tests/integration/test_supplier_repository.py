"""The SQL supplier repository behind the handlers, on SQLite and PostgreSQL: which fetch slots a claim
takes (due, unleased, forced, refused), which credentials expire, and the order reads return. The unit
tests drive the same handlers on the in-memory repository; these hold the SQL to the same rules."""

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
    ExpireCredentials,
    FetchedCredential,
    FetchOutcome,
    RecordCredentialFetches,
    RegisterSupplier,
)
from hub.suppliers.handlers import Registration

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BRN = "1157750731"
OTHER_BRN = "2208162517"  # an identifier belongs to one organisation: another org needs its own
LEI = "213800VN0A3M6L5X2X86"
SUPPLIERS = {"backoff": {"initial_s": 30, "jitter_ratio": 0}, "fetch": {"lease_s": 120},
             "scheduler": {"enabled": False}}


@pytest.fixture(params=["sqlite", "postgres"])
def hub(request: pytest.FixtureRequest) -> Iterator[Hub]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    # national_certs (off in the shipped config) switched on: Korean numbers get two slots
    the_hub = bootstrap(Settings(database={"url": url}, broker={"kind": "inprocess"}, suppliers=SUPPLIERS,
                                 connectors={"national_certs": {"enabled": True}}), migrate=True)
    yield the_hub
    the_hub.close()


def register(hub: Hub, token: str, **identifiers: str) -> Registration:
    org, _ = hub.bus.handle(CreateOrganisation(name=f"Supplier {token}", kind=OrgKind.SUPPLIER))
    registration: Registration = hub.bus.handle(RegisterSupplier(
        org_id=org.id, identifiers=identifiers, consent=True, claim_token=token))
    return registration


def claim(hub: Hub, token: str, now: datetime, limit: int = 1000, supplier_id: str | None = None,
          force: bool = False) -> list[str]:
    claimed = hub.bus.handle(ClaimCredentialFetches(claim_token=token, now=now, limit=limit,
                                                    supplier_id=supplier_id, force=force))
    return sorted(s.system for s in claimed)


def test_claims_take_due_unleased_slots_once(hub: Hub) -> None:
    registration = register(hub, "t1", kr_brn=BRN, lei=LEI)
    assert claim(hub, "sched", NOW) == []  # the registering request holds them
    hub.bus.handle(RecordCredentialFetches(now=NOW, outcomes=[
        FetchOutcome(fetch_id=s.id, claim_token="t1", kind="transient", error_code="x") for s in registration.claimed
    ]))
    assert claim(hub, "sched", NOW) == []  # backing off for 30 s
    later = NOW + timedelta(seconds=30)
    first = claim(hub, "a", later, limit=2)
    assert len(first) == 2
    rest = claim(hub, "b", later)
    assert len(rest) == 1 and sorted(first + rest) == ["gleif", "national_certs", "nts"]
    assert claim(hub, "c", later + timedelta(seconds=119)) == []  # still leased
    assert len(claim(hub, "d", later + timedelta(seconds=120))) == 3  # the leases ran out
    with hub.uow() as uow:
        slots = uow.suppliers.fetches_of(registration.supplier.id)
        assert [s.system for s in slots] == ["gleif", "national_certs", "nts"]
        assert {s.claim_token for s in slots} == {"d"}
        assert {s.claimed_until for s in slots} == {later + timedelta(seconds=240)}


def test_a_forced_claim_takes_refused_slots_too_but_skips_leased_ones(hub: Hub) -> None:
    registration = register(hub, "t1", kr_brn=BRN)
    other = register(hub, "t2", kr_brn=OTHER_BRN)
    slots = {s.system: s for s in registration.claimed}
    hub.bus.handle(RecordCredentialFetches(now=NOW, outcomes=[
        FetchOutcome(fetch_id=slots["national_certs"].id, claim_token="t1", kind="permanent", error_code="x"),
        FetchOutcome(fetch_id=slots["nts"].id, claim_token="t1", kind="not_found", error_code="x"),
    ]))
    forced = claim(hub, "refresh", NOW, supplier_id=registration.supplier.id, force=True)
    # Not due for a week, or never (refused), but forced: a refresh asks both again.
    assert sorted(forced) == ["national_certs", "nts"]
    assert claim(hub, "again", NOW, supplier_id=registration.supplier.id, force=True) == []  # leased now
    assert claim(hub, "x", NOW, supplier_id=other.supplier.id, force=True) == []  # held by its registration


def test_expiry_takes_what_ran_out_and_not_what_is_absent(hub: Hub) -> None:
    registration = register(hub, "t1", kr_brn=BRN)
    nts = next(s for s in registration.claimed if s.system == "nts")

    def found(key: str, days: int) -> FetchedCredential:
        return FetchedCredential(type="tax_status", subject=BRN, record_key=key, status="active", attributes={},
                                 valid_from=NOW, valid_until=NOW + timedelta(days=days), pointer="/")

    def answer(token: str, *credentials: FetchedCredential) -> FetchOutcome:
        return FetchOutcome(fetch_id=nts.id, claim_token=token, kind="ok", fetched_at=NOW, raw=b"{}",
                            content_type="application/json", raw_sha256="a" * 64, response_sha256="b" * 64,
                            credentials=list(credentials))

    hub.bus.handle(RecordCredentialFetches(now=NOW, outcomes=[
        answer("t1", found("short", 1), found("gone", 1), found("long", 30))]))
    claim(hub, "t2", NOW, supplier_id=registration.supplier.id, force=True)
    hub.bus.handle(RecordCredentialFetches(now=NOW, outcomes=[answer("t2", found("short", 1), found("long", 30))]))
    later = NOW + timedelta(days=2)
    assert hub.bus.handle(ExpireCredentials(now=later)) == 1
    assert hub.bus.handle(ExpireCredentials(now=later)) == 0
    with hub.uow() as uow:
        statuses = {c.record_key: c.status for c in uow.suppliers.credentials_of(registration.supplier.id)}
        assert statuses == {"gone": "absent", "long": "active", "short": "expired"}
        assert uow.suppliers.raw("a" * 64) == ("application/json", b"{}")
