"""Read side of the flow: what a supplier's credentials say now, with their provenance.

:func:`current_credentials` is the entry point for eligibility: one record per credential the hub
holds for the supplier (including ``expired`` and ``absent`` ones: a verdict of "unknown" or "not met"
should be able to cite them), each with the evidence of the version it rests on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from hub.suppliers.model import Credential, CredentialFetch, CredentialVersion, Supplier, unproven_identifiers
from hub.suppliers.repository import SupplierRepository
from mappings.credentials import Credential as CanonicalCredential
from mappings.credentials import Evidence, Standing

__all__ = [
    "ControlState",
    "CredentialRecord",
    "control_states",
    "current_credentials",
    "legal_name",
    "unproven_credential_ids",
    "withheld_credential_ids",
]


@dataclass(frozen=True)
class CredentialRecord:
    id: str
    supplier_id: str
    system: str
    type: str
    subject: str
    record_key: str
    status: str
    attributes: dict[str, Any]
    valid_from: datetime | None
    valid_until: datetime | None
    fetched_at: datetime
    expired_at: datetime | None
    standing: str
    fetch_state: str
    version_id: int | None
    response_sha256: str | None
    raw_sha256: str | None
    request_sha256: str | None
    evidence_pointer: str | None
    identifier: str

    def as_canonical(self) -> CanonicalCredential:
        """The mapping engine's shape, for code that already speaks it."""
        return CanonicalCredential(
            type=self.type, subject=self.subject, status=self.status, attributes=dict(self.attributes),
            valid_from=self.valid_from, valid_until=self.valid_until, source=self.system,
            standing=_standing(self.standing),
            evidence=Evidence(system=self.system, identifier=self.identifier, fetched_at=self.fetched_at,
                              response_sha256=self.response_sha256, raw_sha256=self.raw_sha256,
                              pointer=self.evidence_pointer or ""),
        )


def _standing(value: str) -> Standing:
    try:
        return Standing(value)
    except ValueError:
        return Standing.UNKNOWN


def to_record(credential: Credential, slot: CredentialFetch | None,
              version: CredentialVersion | None) -> CredentialRecord:
    found = {f.name: getattr(credential, f.name) for f in fields(CredentialRecord) if hasattr(credential, f.name)}
    found |= {name: getattr(version, name, None)
              for name in ("response_sha256", "raw_sha256", "request_sha256", "evidence_pointer")}
    return CredentialRecord(**found | {
        "attributes": dict(credential.attributes), "version_id": credential.current_version_id,
        "fetch_state": slot.state if slot is not None else "unknown",
        "identifier": slot.identifier if slot is not None else credential.subject,
    })


def current_credentials(repo: SupplierRepository, supplier_id: str) -> list[CredentialRecord]:
    """Every credential held for ``supplier_id`` with the provenance of its current version (empty for an
    unknown supplier; access control is the caller's business)."""
    slots = {s.id: s for s in repo.fetches_of(supplier_id)}
    records = []
    for credential in repo.credentials_of(supplier_id):
        version = repo.version(credential.current_version_id) if credential.current_version_id else None
        records.append(to_record(credential, slots.get(credential.fetch_id), version))
    return records


# Where a supplier's legal name is read, in order of precedence: the first source that names the entity
# wins; the name the owner typed at registration is only the fallback. The Korean tax service (NTS)
# answers a business status without a name, so it names nobody.
LEGAL_NAME_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("gleif", "lei_registration", "legal_name"),
    ("companies_house", "company_registration", "company_name"),
    ("vies", "vat_registration", "name"),
)


def legal_name(supplier: Supplier, records: Iterable[Credential | CredentialRecord],
               hidden: set[str] | frozenset[str] = frozenset()) -> str | None:
    """The supplier's legal name as its registries state it (``LEGAL_NAME_SOURCES`` order), from the
    credentials the reader may see; else the name declared at registration."""
    held = list(records)
    for system, credential_type, attribute in LEGAL_NAME_SOURCES:
        for record in held:
            if record.id in hidden or record.system != system or record.type != credential_type:
                continue
            name = record.attributes.get(attribute)
            if isinstance(name, str) and name.strip():
                return name.strip()
    return supplier.legal_name


# -- proof of control ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ControlState:
    """Whether the supplier's organisation has proven control of one of its identifiers.
    ``state``: ``proven``; ``unproven`` (claimed, not proven yet); ``unclaimed`` (an operator released
    it); ``claimed_elsewhere`` (an operator transferred it to another organisation)."""

    scheme: str
    identifier: str
    state: str
    method: str | None
    proven_at: datetime | None


def control_states(repo: SupplierRepository, supplier: Supplier) -> list[ControlState]:
    claims = repo.claims_for(supplier.identifiers)
    states = []
    for scheme, value in sorted(supplier.identifiers.items()):
        claim = claims.get((scheme, value))
        if claim is None:
            states.append(ControlState(scheme, value, "unclaimed", None, None))
        elif claim.org_id != supplier.org_id:
            states.append(ControlState(scheme, value, "claimed_elsewhere", None, None))
        elif claim.proven:
            states.append(ControlState(scheme, value, "proven", claim.proof_method, claim.proven_at))
        else:
            states.append(ControlState(scheme, value, "unproven", None, None))
    return states


def unproven_credential_ids(repo: SupplierRepository, supplier: Supplier) -> set[str]:
    """Credentials fetched for an identifier whose control the supplier's organisation has not proven:
    they count for nothing (eligibility ``unknown``) and are shown to nobody but the owner and operators."""
    unproven = unproven_identifiers(supplier.org_id, supplier.identifiers, repo.claims_for(supplier.identifiers))
    if not unproven:
        return set()
    slots = {slot.id for slot in repo.fetches_of(supplier.id) if (slot.scheme, slot.identifier) in unproven}
    return {credential.id for credential in repo.credentials_of(supplier.id) if credential.fetch_id in slots}


def withheld_credential_ids(repo: SupplierRepository, supplier: Supplier, *, reader_org_id: str,
                            operator: bool) -> set[str]:
    """What ``reader_org_id`` may not see of the supplier's credentials: nothing for the owner and the
    operator; the unproven ones for anyone else (a granted institution)."""
    if operator or reader_org_id == supplier.org_id:
        return set()
    return unproven_credential_ids(repo, supplier)
