"""Commands of the register-once flow. Fetch results travel as :class:`FetchOutcome` so the handler
that records them stays free of I/O: the upstream calls happened before, outside any transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from hub.spine.messages import Command

__all__ = [
    "CONSENT_REQUIRED",
    "ApproveControlManually",
    "ClaimCredentialFetches",
    "ExpireCredentials",
    "FetchOutcome",
    "FetchedCredential",
    "GrantSupplierAccess",
    "RecordClaimRefusal",
    "RecordCredentialFetches",
    "RegisterSupplier",
    "ReleaseIdentifierClaim",
    "RequestControlChallenge",
    "RetryCredentialFetches",
    "RetryFailedFetchesOfSystem",
    "RevokeSupplierAccess",
    "SubmitControlProof",
    "TransferIdentifierClaim",
]

# ``throttled``: the hub's own budget for the system was spent, so no call was made; the slot keeps its
# state and attempt count and is due again when the budget has refilled (``retry_after_s``).
# ``misconfigured``: the system refused the hub's own key; the slot keeps its state and attempt count and is
# asked again at ``backoff.misconfigured_retry_s`` until the key works.
OutcomeKind = Literal["ok", "transient", "circuit_open", "deadline", "not_found", "permanent", "throttled",
                      "misconfigured"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


CONSENT_REQUIRED = "explicit consent to fetch credentials from the issuing systems is required"


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
    standing: str = "unknown"  # mappings.credentials.Standing: in_force | not_in_force | unknown


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


class RetryCredentialFetches(Command):
    """An operator's way back for slots the source refused (or does not know, or that wait on a long
    backoff): put them back to ``pending``, due now. ``fetch_id`` or ``system`` picks one slot;
    neither picks every failed, not-found or pending slot of the supplier."""

    supplier_id: str
    reason: str
    requested_by: str
    fetch_id: str | None = None
    system: str | None = None
    actor_org_id: str | None = None
    now: datetime | None = None
class RetryFailedFetchesOfSystem(Command):
    """After a fix at the hub (a key set, a mapping corrected): every slot of ``system`` the hub gave up
    on (``failed_permanently``, or also ``not_found`` with ``include_not_found``) back to ``pending``,
    due now, at most ``limit`` of them per command."""

    system: str
    reason: str
    requested_by: str
    include_not_found: bool = False
    limit: int = 10_000
    actor_org_id: str | None = None
    now: datetime | None = None


# -- proof of control ---------------------------------------------------------------------------------


class RecordClaimRefusal(Command):
    """Audit a registration refused because another organisation holds the identifier (the refused
    registration itself rolled back, so the attempt is recorded in a transaction of its own)."""

    org_id: str
    scheme: str
    identifier: str
    actor_org_id: str | None = None


class RequestControlChallenge(Command):
    supplier_id: str
    scheme: str
    actor_org_id: str
    now: datetime | None = None


class SubmitControlProof(Command):
    """Answer a challenge with the evidence the scheme ``method`` reads (for ``x509``:
    ``certificate_chain`` as PEM, leaf first, and ``signature`` as base64 over the challenge text)."""

    supplier_id: str
    challenge_id: str
    method: str
    evidence: dict[str, Any]
    actor_org_id: str
    now: datetime | None = None


class ApproveControlManually(Command):
    """An operator checked control by hand (a call to the business, a registry extract, a notarised
    letter) and records what the check rested on."""

    supplier_id: str
    scheme: str
    evidence: str
    reference: str | None = None
    approved_by: str | None = None  # the person who checked, as the operator names them
    actor_org_id: str


class ReleaseIdentifierClaim(Command):
    """An operator frees an identifier (a dispute decided against its holder): the holder's credentials
    for it stop counting, and another organisation may register it."""

    scheme: str
    identifier: str
    reason: str
    actor_org_id: str


class TransferIdentifierClaim(Command):
    """An operator hands an identifier to another supplier organisation, which must still prove control."""

    scheme: str
    identifier: str
    to_org_id: str
    reason: str
    actor_org_id: str
