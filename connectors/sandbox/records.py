"""What each source system holds about a supplier, one frozen model per system.

Records are pydantic models so a runtime change (``/_control/records``) is validated against the same
allowed states the generator uses: a test cannot put a twin into a state the real system never reports.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "CompanyRecord",
    "IafCertificate",
    "LabelledIdentifier",
    "LeiRecord",
    "NationalCertificate",
    "NtsRecord",
    "Supplier",
    "VatRecord",
]

NtsStatusCode = Literal["01", "02", "03"]
TaxTypeCode = Literal["01", "02", "03", "04", "05", "06", "07"]
LeiRegistrationStatus = Literal[
    "ISSUED", "LAPSED", "RETIRED", "PENDING_TRANSFER", "PENDING_ARCHIVAL", "DUPLICATE", "ANNULLED", "MERGED"
]
LeiEntityStatus = Literal["ACTIVE", "INACTIVE"]
CompanyStatus = Literal[
    "active", "dissolved", "liquidation", "receivership", "administration", "voluntary-arrangement",
    "converted-closed", "insolvency-proceedings", "registered", "removed", "closed", "open",
]
IafStatus = Literal["active", "suspended", "withdrawn", "expired"]
NationalCertificateType = Literal["SME", "DIRECT_PRODUCTION", "WOMEN_OWNED", "ISO9001", "ISO14001"]
NationalCertificateStatus = Literal["valid", "expired", "revoked", "suspended"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NtsRecord(_Record):
    """One row of the NTS register; absence from the register is how "unregistered" is modelled."""

    b_no: str
    b_stt_cd: NtsStatusCode
    tax_type_cd: TaxTypeCode
    end_dt: str = ""
    utcc_yn: Literal["Y", "N"] = "N"
    tax_type_change_dt: str = ""
    invoice_apply_dt: str = ""
    rbf_tax_type_cd: str = "99"
    start_dt: str
    p_nm: str
    b_nm: str


class VatRecord(_Record):
    """A VIES answer; Germany does not disclose name/address, so those read ``---`` there."""

    country_code: str
    vat_number: str
    valid: bool
    name: str = ""
    address: str = ""


class LeiRecord(_Record):
    lei: str
    legal_name: str
    legal_name_language: str
    country: str
    city: str
    region: str | None = None
    postal_code: str | None = None
    address_lines: list[str]
    legal_form_id: str
    registered_at_id: str
    registered_as: str
    category: str = "GENERAL"
    entity_status: LeiEntityStatus
    registration_status: LeiRegistrationStatus
    creation_date: date
    initial_registration_date: date
    last_update_date: date
    next_renewal_date: date
    managing_lou: str
    corroboration_level: str = "FULLY_CORROBORATED"


class CompanyRecord(_Record):
    company_number: str
    company_name: str
    company_status: CompanyStatus
    type: str
    jurisdiction: str
    date_of_creation: date
    date_of_cessation: date | None = None
    sic_codes: list[str]
    address_line_1: str
    locality: str
    postal_code: str
    has_insolvency_history: bool = False
    accounts_next_due: date
    confirmation_statement_next_due: date


class IafCertificate(_Record):
    cert_id: str
    ce_id: str
    entity_name: str
    country: str
    standard: str
    scheme: str
    status: IafStatus
    scope: str
    certification_body: str
    accreditation_body: str
    original_issue_date: date
    expiry_date: date
    updated_at: date


class NationalCertificate(_Record):
    number: str
    holder_brn: str
    type: NationalCertificateType
    issuer: str
    status: NationalCertificateStatus
    valid_from: date
    valid_until: date
    scope: str | None = None


class Supplier(_Record):
    """A company as the sandbox knows it; ``identifiers`` keys are the hub's scheme names."""

    supplier_id: str
    name: str
    country: str
    identifiers: dict[str, str]
    scenario: list[str]


class LabelledIdentifier(_Record):
    """An identifier kept for negative tests: ``unknown`` passes its checksum but no source knows it;
    ``invalid-checksum`` fails python-stdnum (or the BRN check digit) on purpose."""

    scheme: str
    value: str
    label: Literal["unknown", "invalid-checksum"]
    supplier_id: str | None = None
