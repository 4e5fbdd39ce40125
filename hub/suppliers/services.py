"""Use cases that span a transaction, the upstream calls and another transaction: register a supplier
and refresh one on demand. The API, the demo and the benchmarks call these without HTTP and without
ever touching a connector: bootstrap builds the service with the fetcher.

Why not one handler: upstream calls must never run inside a database transaction (a slow registry
would hold a connection and a lock for its whole latency). So: command (commit the claim) → fetch all
applicable systems at once → command (record outcomes). A crash in between leaves claimed slots
whose lease simply runs out; the scheduler then fetches them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hub.suppliers.commands import (
    ClaimCredentialFetches,
    FetchOutcome,
    RecordClaimRefusal,
    RecordCredentialFetches,
    RegisterSupplier,
)
from hub.suppliers.control import IdentifierTaken
from hub.suppliers.model import CredentialFetch, Supplier, new_id
from hub.suppliers.scheduler import CommandBus

if TYPE_CHECKING:
    from hub.suppliers.fetching import CredentialFetcher

__all__ = ["RegistrationResult", "SupplierService"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegistrationResult:
    supplier: Supplier
    created: bool


class SupplierService:
    def __init__(self, bus: CommandBus, fetcher: Callable[[], CredentialFetcher]) -> None:
        self.bus = bus
        self.fetcher = fetcher  # a factory: connectors are built on the first fetch, not at start-up

    def register(
        self,
        *,
        org_id: str,
        identifiers: dict[str, str],
        consent: bool,
        legal_name: str | None = None,
        actor_org_id: str | None = None,
    ) -> RegistrationResult:
        """Register (or find again) the supplier and, when new, fetch its credentials from every
        applicable system at once. Never fails because an upstream is down."""
        try:
            registration = self.bus.handle(RegisterSupplier(
                org_id=org_id, identifiers=identifiers, legal_name=legal_name, consent=consent,
                claim_token=new_id(), actor_org_id=actor_org_id or org_id,
            ))
        except IdentifierTaken as taken:
            # The registration rolled back; the attempt itself still belongs in the audit trail.
            self.bus.handle(RecordClaimRefusal(org_id=org_id, scheme=taken.scheme, identifier=taken.identifier,
                                               actor_org_id=actor_org_id or org_id))
            raise
        self._fetch_and_record(registration.claimed, purpose="registration", requested_by=actor_org_id or org_id)
        return RegistrationResult(supplier=registration.supplier, created=registration.created)

    def refresh(self, supplier_id: str, *, requested_by: str) -> int:
        """Re-fetch every slot of one supplier now (those another worker holds are left to it).
        Returns how many slots were fetched."""
        claimed: list[CredentialFetch] = self.bus.handle(ClaimCredentialFetches(
            claim_token=new_id(), supplier_id=supplier_id, force=True,
        ))
        self._fetch_and_record(claimed, purpose="refresh", requested_by=requested_by)
        return len(claimed)

    def _fetch_and_record(self, slots: Sequence[CredentialFetch], *, purpose: str, requested_by: str) -> None:
        """Fetch every claimed slot at once (bounded by the configured deadline) and record each outcome
        as it arrives. Even when no connector can be built, the claims are released as transient
        failures, so the scheduler retries them instead of waiting for the lease to run out."""
        if not slots:
            return
        recorded: set[str] = set()

        def record(outcome: FetchOutcome) -> None:
            # One small transaction per answer, as it arrives: the fast systems are recorded while the
            # slowest is still answering.
            self.bus.handle(RecordCredentialFetches(outcomes=[outcome], actor_org_id=requested_by))
            recorded.add(outcome.fetch_id)

        try:
            self.fetcher().fetch_each(slots, purpose=purpose, requested_by=requested_by, on_outcome=record)
        except Exception as exc:
            log.exception("credential fetch failed before every answer was recorded")
            left = [_unavailable(slot, exc) for slot in slots if slot.id not in recorded]
            if left:
                self.bus.handle(RecordCredentialFetches(outcomes=left, actor_org_id=requested_by))


def _unavailable(slot: CredentialFetch, exc: Exception) -> FetchOutcome:
    return FetchOutcome(fetch_id=slot.id, claim_token=slot.claim_token or "", kind="transient",
                        error_code="connectors_unavailable", error_detail=type(exc).__name__)
