"""The canonical credential every mapping yields, whatever the source's protocol or shape.

Provenance travels with the value: which system, which fetch (by hash) and which record inside the
answer, so an eligibility verdict can always point at the evidence behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = ["CANONICAL_TYPES", "Credential", "Evidence", "Standing"]

CANONICAL_TYPES = frozenset(
    {
        "tax_status",
        "vat_registration",
        "lei_registration",
        "company_registration",
        "management_system_certificate",
        "national_certificate",
    }
)


class Standing(StrEnum):
    """Whether the source says the registration or certificate is in force, normalised across sources
    (the mapping's ``standing:`` block). The source's own status word stays in ``Credential.status``."""

    IN_FORCE = "in_force"  # issued, active, valid …
    NOT_IN_FORCE = "not_in_force"  # lapsed, retired, closed, invalid, withdrawn, expired by its issuer …
    UNKNOWN = "unknown"  # a status the mapping does not classify


@dataclass(frozen=True)
class Evidence:
    """Where a credential came from: the upstream answer (by hash) and the record within it."""

    system: str
    identifier: str
    fetched_at: datetime
    response_sha256: str | None
    raw_sha256: str | None
    pointer: str


@dataclass(frozen=True)
class Credential:
    type: str
    subject: str
    status: str
    attributes: dict[str, Any]
    valid_from: datetime | None  # never after valid_until
    valid_until: datetime | None  # exclusive; None = no expiry stated
    source: str
    evidence: Evidence
    standing: Standing = Standing.UNKNOWN
