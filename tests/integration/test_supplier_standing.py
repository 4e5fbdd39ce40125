"""The hub-assigned ``expired`` status against what the source says, on SQLite and PostgreSQL: a newer
fetch saying the registration ended (LAPSED) is read as lapsed and not met, never masked by
``expired``; a credential the source says is not in force is never expired by the scheduler."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from hub.bootstrap import Hub
from hub.eligibility.evaluate import Verdict, evaluate
from hub.eligibility.language import parse_requirements
from hub.suppliers.commands import ExpireCredentials, FetchedCredential, FetchOutcome, RecordCredentialFetches
from hub.suppliers.queries import current_credentials
from mappings.credentials import Credential, Standing
from tests.integration.test_supplier_repository import LEI, claim, register
from tests.integration.test_supplier_repository import hub as hub  # the fixture, on SQLite and PostgreSQL
from tests.unit.test_mapping_sources import apply
from tests.unit.test_mapping_standing import lei_record

# The mapping tests' fetch instant: a record fetched then has a renewal date a year ahead.
FETCHED = datetime.fromisoformat("2026-03-01T09:30:00+00:00")


def gleif(status: str, renewal: str) -> Credential:
    record = lei_record(status, renewal=f"{renewal}T00:00:00Z")
    record["data"]["id"] = record["data"]["attributes"]["lei"] = LEI
    [credential] = apply("gleif", record, LEI)
    return credential


def answer(slot_id: str, token: str, fetched_at: datetime, credential: Credential) -> FetchOutcome:
    fetched = FetchedCredential(
        type=credential.type,
        subject=credential.subject,
        record_key="",
        status=credential.status,
        attributes=credential.attributes,
        valid_from=credential.valid_from,
        valid_until=credential.valid_until,
        pointer=credential.evidence.pointer,
        standing=credential.standing.value,
    )
    raw = json.dumps(lei_record(credential.status.upper())).encode()
    digest = hashlib.sha256(raw).hexdigest()
    return FetchOutcome(
        fetch_id=slot_id,
        claim_token=token,
        kind="ok",
        fetched_at=fetched_at,
        raw=raw,
        content_type="application/json",
        raw_sha256=digest,
        response_sha256=digest,
        credentials=[fetched],
    )


def lei_verdict(the_hub: Hub, supplier_id: str, now: datetime) -> tuple[Verdict, str]:
    with the_hub.uow() as uow:
        held = [
            record.as_canonical()
            for record in current_credentials(uow.suppliers, supplier_id)
            if record.type == "lei_registration"
        ]
    [verdict] = evaluate(parse_requirements([{"kind": "lei_valid"}]), held, on=now, now=now).requirements
    return verdict.verdict, verdict.reason


def test_a_newer_lapsed_version_is_read_as_lapsed_not_expired(hub: Hub) -> None:
    registration = register(hub, "t1", lei=LEI)
    slot = next(s for s in registration.claimed if s.system == "gleif")
    issued = gleif("ISSUED", "2026-03-05")  # renewal due four days after the fetch
    hub.bus.handle(RecordCredentialFetches(now=FETCHED, outcomes=[answer(slot.id, "t1", FETCHED, issued)]))
    later = FETCHED + timedelta(days=10)
    assert hub.bus.handle(ExpireCredentials(now=later)) == 1
    with hub.uow() as uow:
        [row] = uow.suppliers.credentials_of(registration.supplier.id)
        assert (row.status, row.standing, row.expired_at) == ("expired", "in_force", later)
    assert lei_verdict(hub, registration.supplier.id, later)[0] is Verdict.UNKNOWN  # stale, awaiting refresh

    claim(hub, "t2", later, supplier_id=registration.supplier.id, force=True)
    lapsed = gleif("LAPSED", "2026-03-05")
    hub.bus.handle(RecordCredentialFetches(now=later, outcomes=[answer(slot.id, "t2", later, lapsed)]))
    with hub.uow() as uow:
        [row] = uow.suppliers.credentials_of(registration.supplier.id)
        assert (row.status, row.standing, row.expired_at) == ("lapsed", "not_in_force", None)
        [record] = current_credentials(uow.suppliers, registration.supplier.id)
        assert record.as_canonical().standing is Standing.NOT_IN_FORCE
    assert hub.bus.handle(ExpireCredentials(now=later + timedelta(days=1))) == 0
    assert lei_verdict(hub, registration.supplier.id, later + timedelta(days=1)) == (
        Verdict.NOT_MET,
        f"LEI {LEI} registration is lapsed (renewal was due 2026-03-05)",
    )


def test_a_refresh_repeating_an_ended_validity_in_force_stays_expired(hub: Hub) -> None:
    registration = register(hub, "t1", lei=LEI)
    slot = next(s for s in registration.claimed if s.system == "gleif")
    issued = gleif("ISSUED", "2026-03-05")
    hub.bus.handle(RecordCredentialFetches(now=FETCHED, outcomes=[answer(slot.id, "t1", FETCHED, issued)]))
    later = FETCHED + timedelta(days=10)
    assert hub.bus.handle(ExpireCredentials(now=later)) == 1
    claim(hub, "t2", later, supplier_id=registration.supplier.id, force=True)
    # The same record again (fetched before the renewal date, so the source still says in force).
    hub.bus.handle(RecordCredentialFetches(now=later, outcomes=[answer(slot.id, "t2", FETCHED, issued)]))
    with hub.uow() as uow:
        [row] = uow.suppliers.credentials_of(registration.supplier.id)
        assert (row.status, row.expired_at) == ("expired", later)


def test_a_credential_first_recorded_as_lapsed_is_never_expired(hub: Hub) -> None:
    registration = register(hub, "t1", lei=LEI)
    slot = next(s for s in registration.claimed if s.system == "gleif")
    lapsed = gleif("LAPSED", "2024-03-01")  # two years before the fetch
    assert lapsed.valid_until is not None and lapsed.valid_from is not None and lapsed.valid_from <= lapsed.valid_until
    hub.bus.handle(RecordCredentialFetches(now=FETCHED, outcomes=[answer(slot.id, "t1", FETCHED, lapsed)]))
    assert hub.bus.handle(ExpireCredentials(now=FETCHED + timedelta(days=1))) == 0
    with hub.uow() as uow:
        [row] = uow.suppliers.credentials_of(registration.supplier.id)
        assert (row.status, row.standing, row.expired_at) == ("lapsed", "not_in_force", None)
        [version] = uow.suppliers.versions_of(row.id)
        assert (version.status, version.standing) == ("lapsed", "not_in_force")
    assert lei_verdict(hub, registration.supplier.id, FETCHED + timedelta(days=1))[0] is Verdict.NOT_MET
