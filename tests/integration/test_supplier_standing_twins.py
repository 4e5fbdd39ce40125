"""Registrations that ended, fetched from the sandbox twins over loopback HTTP and judged the way the
eligibility endpoint judges them: a lapsed or retired LEI, a closed Korean business, an invalid VAT
number, a dissolved company and a certificate its issuer reports expired are each *not met*, with the
source's status in the reason; the scheduler never turns them into ``expired``; and an LEI the hub had
expired reads lapsed once a newer fetch says so."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from connectors.sandbox.records import IafCertificate
from connectors.sandbox.server import SandboxServer
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.eligibility.evaluate import RequirementVerdict, Verdict, evaluate
from hub.eligibility.language import parse_requirements
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.suppliers.queries import current_credentials
from tests.support.sandbox import (
    FAST_SUPPLIERS,
    SANDBOX_QUOTAS,
    connector_overrides,
    control,
    first_with,
    outage,
    reset,
)


@pytest.fixture
def hub(sandbox: SandboxServer, sqlite_url: str) -> Iterator[Hub]:
    reset(sandbox)
    settings = Settings(
        database={"url": sqlite_url},
        broker={"kind": "inprocess"},
        connectors=connector_overrides(sandbox),
        suppliers=FAST_SUPPLIERS,
        quotas=SANDBOX_QUOTAS,
    )
    the_hub = bootstrap(settings, migrate=True)
    yield the_hub
    the_hub.close()
    reset(sandbox)


def register(hub: Hub, identifiers: dict[str, str]) -> str:
    org, _ = hub.bus.handle(CreateOrganisation(name="Supplier Co", kind=OrgKind.SUPPLIER))
    result = hub.suppliers.service.register(org_id=org.id, identifiers=identifiers, consent=True, actor_org_id=org.id)
    return str(result.supplier.id)


def judge(
    hub: Hub, supplier_id: str, requirements: list[dict[str, Any]], on: date | datetime | None = None
) -> list[RequirementVerdict]:
    with hub.uow() as uow:
        credentials = [record.as_canonical() for record in current_credentials(uow.suppliers, supplier_id)]
    now = datetime.now(UTC)
    return evaluate(parse_requirements(requirements), credentials, on=on or now, now=now).requirements


def expired_iso9001_holder(sandbox: SandboxServer) -> tuple[str, IafCertificate]:
    """A certified entity whose every ISO 9001 certificate its issuer reports expired."""
    for supplier in sandbox.dataset.suppliers:
        ce_id = supplier.identifiers.get("iaf_ce_id")
        if ce_id is None:
            continue
        certs = [c for c in sandbox.dataset.iaf_certificates_of(ce_id) if c.standard.startswith("ISO 9001")]
        if certs and all(c.status == "expired" for c in certs):
            return ce_id, certs[0]
    raise AssertionError("the sandbox dataset has no entity with only expired ISO 9001 certificates")


def test_ended_registrations_from_the_twins_are_not_met_with_the_source_status(
    hub: Hub, sandbox: SandboxServer
) -> None:
    lei = first_with(sandbox, "lei", "gleif:lapsed")
    record = sandbox.dataset.lei(lei)
    assert record is not None and record.next_renewal_date < date.today()  # the twin's lapsed LEI is dated past
    ce_id, cert = expired_iso9001_holder(sandbox)
    supplier = register(
        hub,
        {
            "kr_brn": first_with(sandbox, "kr_brn", "nts:closed"),
            "eu_vat": first_with(sandbox, "eu_vat", "vies:invalid"),
            "lei": lei,
            "gb_company_number": first_with(sandbox, "gb_company_number", "companies_house:dissolved"),
            "iaf_ce_id": ce_id,
        },
    )
    verdicts = judge(
        hub,
        supplier,
        [
            {"kind": "tax_status", "status": "active"},
            {"kind": "vat_registered"},
            {"kind": "lei_valid"},
            {"kind": "company_active"},
            {"kind": "certificate", "scheme": "ISO 9001"},
            {"kind": "business_not_closed"},
        ],
    )
    assert [v.verdict for v in verdicts] == [Verdict.NOT_MET] * 6, [v.reason for v in verdicts]
    tax, vat, lei_verdict, company, certificate, not_closed = (v.reason for v in verdicts)
    assert "tax status is closed" in tax and "is not valid in VIES" in vat
    assert lei_verdict == f"LEI {lei} registration is lapsed (renewal was due {record.next_renewal_date})"
    assert "is dissolved" in company and "is closed" in not_closed
    assert f"is expired (valid through {cert.expiry_date})" in certificate

    # Within the certificate's own dates it was met, though fetched today.
    within = cert.expiry_date - timedelta(days=1)
    [then] = judge(hub, supplier, [{"kind": "certificate", "scheme": "ISO 9001", "valid_on": within.isoformat()}])
    assert then.verdict is Verdict.MET and "expired since" in then.reason

    # Nothing the source says ended is turned into the hub's "expired", however far the clock runs.
    hub.suppliers.scheduler.run_once(now=datetime.now(UTC) + timedelta(days=3))
    with hub.uow() as uow:
        by_type = {r.type: r for r in current_credentials(uow.suppliers, supplier)}
    assert (by_type["lei_registration"].status, by_type["lei_registration"].standing) == ("lapsed", "not_in_force")
    assert by_type["management_system_certificate"].status == "expired"
    assert by_type["management_system_certificate"].expired_at is None  # the issuer's word, not the hub's


def test_an_expired_lei_reads_lapsed_once_the_source_says_so(hub: Hub, sandbox: SandboxServer) -> None:
    lei = first_with(sandbox, "lei", "gleif:issued")
    record = sandbox.dataset.lei(lei)
    assert record is not None
    supplier = register(hub, {"lei": lei})
    past_renewal = datetime.combine(record.next_renewal_date, datetime.min.time(), UTC) + timedelta(days=2)
    outage(sandbox, "gleif")
    run = hub.suppliers.scheduler.run_once(now=past_renewal)  # the refresh fails: the hub expires it
    assert run.expired == 1
    with hub.uow() as uow:
        [row] = current_credentials(uow.suppliers, supplier)
    assert (row.status, row.standing) == ("expired", "in_force")
    outage(sandbox, "gleif", on=False)
    renewal_due = date.today() - timedelta(days=30)
    control(
        sandbox,
        "gleif",
        f"records/{lei}",
        "PATCH",
        {"registration_status": "LAPSED", "next_renewal_date": renewal_due.isoformat()},
    )
    hub.suppliers.service.refresh(supplier, requested_by="operator")
    with hub.uow() as uow:
        [row] = current_credentials(uow.suppliers, supplier)
    assert (row.status, row.standing, row.expired_at) == ("lapsed", "not_in_force", None)
    [verdict] = judge(hub, supplier, [{"kind": "lei_valid"}])
    assert (verdict.verdict, verdict.reason) == (
        Verdict.NOT_MET,
        f"LEI {lei} registration is lapsed (renewal was due {renewal_due})",
    )
