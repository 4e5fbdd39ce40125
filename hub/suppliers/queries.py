"""Read side of the flow: what a supplier's credentials say now, with their provenance.

:func:`current_credentials` is the entry point for eligibility: one record per credential the hub
holds for the supplier (including ``expired`` and ``absent`` ones: a verdict of "unknown" or "not met"
should be able to cite them), each with the evidence of the version it rests on.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from hub.suppliers.model import Credential, CredentialFetch, CredentialVersion
from hub.suppliers.repository import SupplierRepository
from mappings.credentials import Credential as CanonicalCredential
from mappings.credentials import Evidence

__all__ = ["CredentialRecord", "current_credentials"]


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
            evidence=Evidence(system=self.system, identifier=self.identifier, fetched_at=self.fetched_at,
                              response_sha256=self.response_sha256, raw_sha256=self.raw_sha256,
                              pointer=self.evidence_pointer or ""),
        )


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
