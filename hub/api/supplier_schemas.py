"""Request and response bodies of the supplier routes. Inputs forbid unknown fields; outputs are
allow-lists that carry each credential's provenance (source, fetched_at, hashes, evidence pointer)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub.suppliers.model import CredentialFetch, CredentialVersion, Supplier
from hub.suppliers.queries import CredentialRecord

__all__ = [
    "CredentialOut",
    "FetchOut",
    "IdentifiersIn",
    "ProvenanceOut",
    "RegisterSupplierIn",
    "SupplierOut",
    "VersionOut",
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IdentifiersIn(_Input):
    kr_brn: str | None = Field(None, max_length=20, description="Korean business registration number")
    eu_vat: str | None = Field(None, max_length=20, description="EU VAT number with country prefix (VIES)")
    lei: str | None = Field(None, max_length=30, description="Legal Entity Identifier")
    gb_company_number: str | None = Field(None, max_length=12, description="UK Companies House number")
    iaf_ce_id: str | None = Field(None, max_length=64, description="IAF CertSearch certified-entity id")


class RegisterSupplierIn(_Input):
    identifiers: IdentifiersIn
    legal_name: str | None = Field(None, max_length=300)
    consent: bool | None = Field(
        None, description="Must be true: the supplier allows the hub to fetch its credentials at the sources"
    )


class ConsentOut(BaseModel):
    given_at: datetime
    text_version: str


class FetchOut(BaseModel):
    """One upstream system's slot: whether it answered and when it is asked again."""

    system: str
    scheme: str
    identifier: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None

    @classmethod
    def of(cls, slot: CredentialFetch) -> FetchOut:
        return cls(system=slot.system, scheme=slot.scheme, identifier=slot.identifier, state=slot.state,
                   attempts=slot.attempts, next_attempt_at=slot.next_attempt_at,
                   last_attempt_at=slot.last_attempt_at, last_success_at=slot.last_success_at,
                   last_error=slot.last_error)


class ProvenanceOut(BaseModel):
    source: str
    identifier: str
    fetched_at: datetime
    version_id: int | None
    response_sha256: str | None
    raw_sha256: str | None
    request_sha256: str | None
    evidence_pointer: str | None
    raw_url: str | None


class VersionOut(BaseModel):
    id: int
    fetched_at: datetime
    status: str
    attributes: dict[str, Any]
    valid_from: datetime | None
    valid_until: datetime | None
    change: str
    response_sha256: str
    raw_sha256: str
    request_sha256: str | None
    evidence_pointer: str
    raw_url: str

    @classmethod
    def of(cls, version: CredentialVersion, raw_url: str) -> VersionOut:
        assert version.id is not None
        return cls(id=version.id, fetched_at=version.fetched_at, status=version.status,
                   attributes=version.attributes, valid_from=version.valid_from, valid_until=version.valid_until,
                   change=version.change, response_sha256=version.response_sha256,
                   raw_sha256=version.raw_sha256, request_sha256=version.request_sha256,
                   evidence_pointer=version.evidence_pointer, raw_url=raw_url)


class CredentialOut(BaseModel):
    id: str
    system: str
    type: str
    subject: str
    record_key: str
    status: str
    attributes: dict[str, Any]
    valid_from: datetime | None
    valid_until: datetime | None
    expired_at: datetime | None
    fetch_state: str
    provenance: ProvenanceOut
    history: list[VersionOut] | None = None

    @classmethod
    def of(cls, record: CredentialRecord, raw_url: str | None) -> CredentialOut:
        return cls(
            id=record.id, system=record.system, type=record.type, subject=record.subject,
            record_key=record.record_key, status=record.status, attributes=record.attributes,
            valid_from=record.valid_from, valid_until=record.valid_until, expired_at=record.expired_at,
            fetch_state=record.fetch_state,
            provenance=ProvenanceOut(
                source=record.system, identifier=record.identifier, fetched_at=record.fetched_at,
                version_id=record.version_id, response_sha256=record.response_sha256,
                raw_sha256=record.raw_sha256, request_sha256=record.request_sha256,
                evidence_pointer=record.evidence_pointer, raw_url=raw_url,
            ),
        )


class SupplierOut(BaseModel):
    id: str
    org_id: str
    legal_name: str | None
    identifiers: dict[str, str]
    consent: ConsentOut
    created_at: datetime
    fetches: list[FetchOut]
    credentials: list[CredentialOut]

    @classmethod
    def of(cls, supplier: Supplier, fetches: list[FetchOut], credentials: list[CredentialOut]) -> SupplierOut:
        return cls(id=supplier.id, org_id=supplier.org_id, legal_name=supplier.legal_name,
                   identifiers=dict(supplier.identifiers),
                   consent=ConsentOut(given_at=supplier.consent_given_at,
                                      text_version=supplier.consent_text_version),
                   created_at=supplier.created_at, fetches=fetches, credentials=credentials)


class SupplierSummaryOut(BaseModel):
    id: str
    org_id: str
    legal_name: str | None
    identifiers: dict[str, str]
    created_at: datetime

    @classmethod
    def of(cls, supplier: Supplier) -> SupplierSummaryOut:
        return cls(id=supplier.id, org_id=supplier.org_id, legal_name=supplier.legal_name,
                   identifiers=dict(supplier.identifiers), created_at=supplier.created_at)


class GrantOut(BaseModel):
    supplier_id: str
    institution_org_id: str
    granted_at: datetime
