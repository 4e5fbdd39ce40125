"""Commands of the register-once flow. Fetch results travel as :class:`FetchOutcome` so the handler
that records them stays free of I/O: the upstream calls happened before, outside any transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from hub.spine.messages import Command

__all__ = [
    "ClaimCredentialFetches",
    "ExpireCredentials",
    "FetchOutcome",
    "FetchedCredential",
    "GrantSupplierAccess",
    "RecordCredentialFetches",
    "RegisterSupplier",
    "RevokeSupplierAccess",
]

# ``throttled``: the hub's own budget for the system was spent, so no call was made; the slot keeps its
# state and attempt count and is due again when the budget has refilled (``retry_after_s``).
OutcomeKind = Literal["ok", "transient", "circuit_open", "deadline", "not_found", "permanent", "throttled"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RegisterSupplier(Command):
    org_id: str
    identifiers: dict[str, str]
    legal_name: str | None = None
    consent: bool
    claim_token: str  # the registering request fetches at once; its claim keeps the scheduler off
    actor_org_id: str | None = None


class FetchedCredential(_Frozen):
    type: str
    subject: str
    record_key: str
    status: str
    attributes: dict[str, Any]
    valid_from: datetime | None
    valid_until: datetime | None
    pointer: str


class FetchOutcome(_Frozen):
    fetch_id: str
    claim_token: str
    kind: OutcomeKind
    error_code: str | None = None
    error_detail: str | None = None
    retry_after_s: float | None = None
    fetched_at: datetime | None = None
    raw: bytes | None = None
    content_type: str | None = None
    raw_sha256: str | None = None
    response_sha256: str | None = None
    request_sha256: str | None = None
    credentials: list[FetchedCredential] = []


class RecordCredentialFetches(Command):
    outcomes: list[FetchOutcome]
    now: datetime | None = None
    actor_org_id: str | None = None


class ClaimCredentialFetches(Command):
    """Reserve due slots (or, with ``supplier_id`` and ``force``, every slot of one supplier)."""

    claim_token: str
    now: datetime | None = None
    limit: int = 1000
    supplier_id: str | None = None
    force: bool = False


class ExpireCredentials(Command):
    now: datetime | None = None
    limit: int = 1000


class GrantSupplierAccess(Command):
    supplier_id: str
    institution_org_id: str
    actor_org_id: str


class RevokeSupplierAccess(Command):
    supplier_id: str
    institution_org_id: str
    actor_org_id: str
