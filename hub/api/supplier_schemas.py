"""Request and response bodies of the supplier routes. Inputs forbid unknown fields; outputs are
allow-lists that carry each credential's provenance (source, fetched_at, hashes, evidence pointer)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from hub.api.schemas import Input, Out, Text
from hub.suppliers.commands import CONSENT_REQUIRED
from hub.suppliers.identifiers import IdentifierError, normalise_identifier

__all__ = [
    "ControlStateOut",
    "CredentialOut",
    "FetchOut",
    "IdentifiersIn",
    "ProvenanceOut",
    "RegisterSupplierIn",
    "RetryFetchIn",
    "SupplierOut",
    "VersionOut",
]


class IdentifiersIn(Input):
    """Each identifier is checked (format and checksum) with the other fields, so one answer names every
    bad identifier together with any other bad field."""

    kr_brn: Text | None = Field(None, max_length=20, description="Korean business registration number")
    eu_vat: Text | None = Field(None, max_length=20, description="EU VAT number with country prefix (VIES)")
    lei: Text | None = Field(None, max_length=30, description="Legal Entity Identifier")
    gb_company_number: Text | None = Field(None, max_length=12, description="UK Companies House number")
    iaf_ce_id: Text | None = Field(None, max_length=64, description="IAF CertSearch certified-entity id")

    @field_validator("*")
    @classmethod
    def _well_formed(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.field_name is not None:
            try:
                normalise_identifier(info.field_name, value)
            except IdentifierError as exc:
                raise ValueError(str(exc)) from None
        return value


class RegisterSupplierIn(Input):
    identifiers: IdentifiersIn
    legal_name: Text | None = Field(None, max_length=300)
    consent: bool | None = Field(
        None, validate_default=True,
        description="Must be true: the supplier allows the hub to fetch its credentials at the sources",
    )

    @field_validator("consent")
    @classmethod
    def _given(cls, consent: bool | None) -> bool | None:
        if consent is not True:
            raise ValueError(CONSENT_REQUIRED)
        return consent


class RetryFetchIn(Input):
    reason: Text = Field(min_length=1, max_length=500,
                         description="Why the slot is retried (what was fixed); kept in the audit trail")


class ConsentOut(Out):
    given_at: datetime
    text_version: str


class FetchOut(Out):
    """One upstream system's slot: whether it answered and when it is asked again."""

    id: str
    system: str
    scheme: str
    identifier: str
    state: str
    attempts: int = Field(description="Attempts of the current round (a success ends one), the successful "
                                      "one included: 1 after a first-time success, 3 after two failures "
                                      "and a success. A refused key or a throttled attempt does not count")
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None



class ProvenanceOut(Out):
    source: str
    identifier: str
    fetched_at: datetime
    version_id: int | None
    response_sha256: str | None
    raw_sha256: str | None
    request_sha256: str | None
    evidence_pointer: str | None
    raw_url: str | None


class VersionOut(Out):
    id: int
    fetched_at: datetime
    status: str
    attributes: dict[str, Any]
    valid_from: datetime | None
    valid_until: datetime | None
    standing: str
    change: str
    response_sha256: str
    raw_sha256: str
    request_sha256: str | None
    evidence_pointer: str
    raw_url: str



class CredentialOut(Out):
    id: str
    system: str
    type: str
    subject: str
    record_key: str
    status: str
    attributes: dict[str, Any]
    valid_from: datetime | None
    valid_until: datetime | None
    standing: str  # in_force | not_in_force | unknown: the source's status, normalised
    expired_at: datetime | None
    fetch_state: str
    provenance: ProvenanceOut
    history: list[VersionOut] | None = None



class ControlStateOut(Out):
    """Whether the owner has proven control of one identifier (docs/identifier-control.md): ``proven``,
    ``unproven``, ``unclaimed`` (released by the operator) or ``claimed_elsewhere`` (transferred)."""

    scheme: str
    identifier: str
    state: str
    method: str | None
    proven_at: datetime | None


class SupplierOut(Out):
    id: str
    org_id: str
    legal_name: Text | None
    identifiers: dict[str, str]
    consent: ConsentOut
    created_at: datetime
    fetches: list[FetchOut]
    credentials: list[CredentialOut]
    control: list[ControlStateOut] = Field(
        default_factory=list,
        description="Control per identifier. Credentials of an identifier not proven count for nothing in "
                    "eligibility and are omitted for every reader but the owner and the operator",
    )



class SupplierSummaryOut(Out):
    id: str
    org_id: str
    legal_name: Text | None
    identifiers: dict[str, str]
    created_at: datetime



class GrantOut(Out):
    supplier_id: str
    institution_org_id: str
    granted_at: datetime
