"""Register once against the real sandbox twins over loopback HTTP, on SQLite: credentials from every
system with provenance, an outage leaving one pending until the scheduler recovers it, a change at the
source, NTS batching on refresh, expiry, and the upstream call records. Time is moved by passing
``now`` to the scheduler, never by waiting."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.sandbox.identifiers import generate_brn
from connectors.sandbox.server import SandboxServer
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.spine.tables import OutboxRow
from hub.suppliers.queries import current_credentials
from hub.suppliers.services import RegistrationResult
from hub.suppliers.tables import upstream_calls
from tests.support.sandbox import (
    FAST_SUPPLIERS,
    SANDBOX_QUOTAS,
    connector_overrides,
    control,
    full_identifiers,
    outage,
    reset,
)

ALL_SYSTEMS = {"nts", "national_certs", "vies", "gleif", "companies_house", "iaf"}


@pytest.fixture
def hub(sandbox: SandboxServer, sqlite_url: str) -> Iterator[Hub]:
    reset(sandbox)
    settings = Settings(database={"url": sqlite_url}, broker={"kind": "inprocess"},
                        connectors=connector_overrides(sandbox), suppliers=FAST_SUPPLIERS, quotas=SANDBOX_QUOTAS)
    the_hub = bootstrap(settings, migrate=True)
    yield the_hub
    the_hub.close()
    reset(sandbox)


def supplier_org(hub: Hub) -> str:
    org, _ = hub.bus.handle(CreateOrganisation(name="Supplier Co", kind=OrgKind.SUPPLIER))
    return str(org.id)


def register(hub: Hub, org_id: str, identifiers: dict[str, str]) -> RegistrationResult:
    return hub.suppliers.service.register(org_id=org_id, identifiers=identifiers, consent=True,
                                          actor_org_id=org_id)


def states(hub: Hub, supplier_id: str) -> dict[str, str]:
    with hub.uow() as uow:
        return {f.system: f.state for f in uow.suppliers.fetches_of(supplier_id)}


def outbox(hub: Hub, message_type: str) -> list[dict[str, Any]]:
    with hub.session_factory() as session:
        rows = session.scalars(select(OutboxRow).where(OutboxRow.message_type == message_type).order_by(OutboxRow.id))
        return [r.payload for r in rows]


def scheduler_run(hub: Hub, now: datetime | None = None) -> Any:
    return hub.suppliers.scheduler.run_once(now=now)


def test_register_fetches_every_system_with_provenance(hub: Hub, sandbox: SandboxServer) -> None:
    org = supplier_org(hub)
    result = register(hub, org, full_identifiers(sandbox))
    assert result.created
    assert states(hub, result.supplier.id) == dict.fromkeys(ALL_SYSTEMS, "verified")
    with hub.uow() as uow:
        records = current_credentials(uow.suppliers, result.supplier.id)
        repo = uow.suppliers
        assert {r.system for r in records} == ALL_SYSTEMS
        for record in records:
            assert record.fetch_state == "verified"
            assert record.raw_sha256 and record.response_sha256 and record.evidence_pointer
            assert record.as_canonical().evidence.raw_sha256 == record.raw_sha256
            stored = repo.raw(record.raw_sha256)
            assert stored is not None
            import hashlib
            assert hashlib.sha256(stored[1]).hexdigest() == record.raw_sha256
        tax = next(r for r in records if r.type == "tax_status")
        assert tax.status == "active" and tax.valid_until is not None
    verified = outbox(hub, "CredentialVerified")
    assert len(verified) == len(records)
    assert all(v["org_id"] == org for v in verified)
    assert outbox(hub, "SupplierRegistered")[0]["systems"] == sorted(ALL_SYSTEMS)
    hub.suppliers.flush_call_records()
    with hub.session_factory() as session:
        calls = session.execute(select(upstream_calls.c.system, upstream_calls.c.purpose,
                                       upstream_calls.c.requested_by, upstream_calls.c.outcome)).all()
    assert {c.system for c in calls} == ALL_SYSTEMS
    assert all(c.purpose == "registration" and c.requested_by == org and c.outcome == "ok" for c in calls)

    again = register(hub, org, full_identifiers(sandbox))
    assert not again.created and again.supplier.id == result.supplier.id


def test_outage_leaves_pending_then_scheduler_verifies(hub: Hub, sandbox: SandboxServer) -> None:
    org = supplier_org(hub)
    outage(sandbox, "gleif")
    result = register(hub, org, full_identifiers(sandbox, skip=1))
    slots = states(hub, result.supplier.id)
    assert slots["gleif"] == "pending"
    assert all(state == "verified" for system, state in slots.items() if system != "gleif")
    failed = outbox(hub, "CredentialFetchFailed")
    assert [f["system"] for f in failed] == ["gleif"] and failed[0]["outcome"] == "transient"

    run = scheduler_run(hub)  # still down: stays pending, one more attempt
    assert run.claimed == 1 and states(hub, result.supplier.id)["gleif"] == "pending"
    outage(sandbox, "gleif", on=False)
    run = scheduler_run(hub)
    assert run.by_system == {"gleif": 1} and run.outcomes == {"ok": 1}
    assert states(hub, result.supplier.id)["gleif"] == "verified"
    assert any(v["system"] == "gleif" for v in outbox(hub, "CredentialVerified"))
    assert scheduler_run(hub).claimed == 0  # nothing due any more


def test_status_change_at_source_emits_before_and_after(hub: Hub, sandbox: SandboxServer) -> None:
    org = supplier_org(hub)
    ids = full_identifiers(sandbox, skip=2)
    result = register(hub, org, {"kr_brn": ids["kr_brn"], "iaf_ce_id": ids["iaf_ce_id"]})
    control(sandbox, "nts", f"records/{ids['kr_brn']}", "PATCH", {"b_stt_cd": "03", "end_dt": "20250101"})
    cert = next(c for c in sandbox.dataset.iaf_certificates_of(ids["iaf_ce_id"]) if c.status == "active")
    control(sandbox, "iaf", f"records/{cert.cert_id}", "PATCH", {"status": "withdrawn"})

    hub.suppliers.service.refresh(result.supplier.id, requested_by=org)
    changed = {c["system"]: c for c in outbox(hub, "CredentialChanged")}
    assert changed["nts"]["before"]["status"] == "active" and changed["nts"]["after"]["status"] == "closed"
    assert changed["iaf"]["after"]["status"] == "withdrawn"
    with hub.uow() as uow:
        records = current_credentials(uow.suppliers, result.supplier.id)
        tax = next(r for r in records if r.type == "tax_status")
        assert tax.status == "closed"
        assert len(uow.suppliers.versions_of(tax.id)) == 2  # the first version is kept


def test_refresh_batches_nts_and_records_calls(hub: Hub, sandbox: SandboxServer) -> None:
    org = supplier_org(hub)
    brns = [s.identifiers["kr_brn"] for s in sandbox.dataset.suppliers if "kr_brn" in s.identifiers]
    rng = random.Random(7)  # top up with valid numbers NTS does not know (it answers "unregistered")
    while len(brns) < 150:
        brns.append(generate_brn(rng))
    brns = list(dict.fromkeys(brns))[:150]
    for brn in brns:
        register(hub, org, {"kr_brn": brn})
    control(sandbox, "nts", "stats", "DELETE")
    run = scheduler_run(hub, now=datetime.now(UTC) + timedelta(days=6))  # inside the 2-day refresh margin
    assert run.by_system["nts"] == 150
    stats = control(sandbox, "nts", "stats")
    assert stats.get("requests", stats.get("status_requests")) == 2, stats
    hub.suppliers.flush_call_records()
    with hub.session_factory() as session:
        batched = session.scalar(select(func.count()).select_from(upstream_calls).where(
            upstream_calls.c.system == "nts", upstream_calls.c.purpose == "refresh"))
    assert batched == 2


def test_expiry_without_successful_refresh(hub: Hub, sandbox: SandboxServer) -> None:
    org = supplier_org(hub)
    ids = full_identifiers(sandbox, skip=3)
    result = register(hub, org, {"kr_brn": ids["kr_brn"]})
    outage(sandbox, "nts")
    outage(sandbox, "national_certs")
    run = scheduler_run(hub, now=datetime.now(UTC) + timedelta(days=8))  # past the 7-day tax validity
    assert run.expired >= 1
    expired = outbox(hub, "CredentialExpired")
    assert any(e["type"] == "tax_status" and e["previous_status"] == "active" for e in expired)
    with hub.uow() as uow:
        tax = next(r for r in current_credentials(uow.suppliers, result.supplier.id) if r.type == "tax_status")
        assert tax.status == "expired"
    assert scheduler_run(hub, now=datetime.now(UTC) + timedelta(days=8)).expired == 0  # once only
