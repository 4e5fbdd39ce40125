"""Calling the upstream systems for claimed slots and turning answers into :class:`FetchOutcome`.

This is the flow's edge: it runs outside any transaction, so a slow registry never holds a database
connection. Registration and on-demand refresh fan out one call per slot, all at once, bounded by an
overall deadline (registration takes as long as the slowest system, not the sum); the scheduler groups
slots by system and uses ``fetch_many``, so NTS answers 100 numbers per call. Answers are mapped here,
with the system's declarative mapping, so the recording handler only sees canonical credentials.

Before each call the system's budget (``quotas.upstream``) is charged: the hub's keys for government
systems carry quotas of their own, and a flood of registrations or refreshes must not spend them. A
slot whose call the budget refuses is not called at all; it comes back ``throttled`` with the wait,
and stays ``pending`` (or keeps its verified credential) until the scheduler tries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from typing import Protocol

from connectors.base import Connector, FetchResult
from connectors.errors import UpstreamError
from hub.spine.quotas import Decision
from hub.suppliers.commands import FetchedCredential, FetchOutcome, OutcomeKind
from hub.suppliers.config import SupplierSettings
from mappings.engine import MappingDataError, SourceMapping, UnreadableReply, load_mapping

__all__ = ["ConnectorSource", "CredentialFetcher", "SlotRef", "UpstreamBudget"]

# Charges one call to a system's budget; None when quotas are off.
UpstreamBudget = Callable[[str], Decision | None]

log = logging.getLogger(__name__)

_KIND_OF_OUTCOME: dict[str, OutcomeKind] = {
    "transient": "transient", "circuit_open": "circuit_open", "not_found": "not_found",
    "misconfigured": "misconfigured",
}


class SlotRef(Protocol):
    """What the fetcher needs of a claimed slot (a detached ``CredentialFetch`` fits)."""

    id: str
    system: str
    identifier: str
    claim_token: str | None


class ConnectorSource(Protocol):
    """The connector registry as the fetcher sees it."""

    def __contains__(self, system: object) -> bool: ...
    def __getitem__(self, system: str) -> Connector: ...
    def mapping_path(self, system: str) -> object: ...


class CredentialFetcher:
    def __init__(self, connectors: ConnectorSource, config: SupplierSettings,
                 budget: UpstreamBudget | None = None) -> None:
        self.connectors = connectors
        self.config = config
        self.budget = budget
        self._mappings: dict[str, SourceMapping] = {}
        self._lock = threading.Lock()
        # Long-lived, so a registration that hit its deadline returns at once while the stragglers
        # finish in the background (their answers are dropped; the scheduler fetches again).
        self._pool = ThreadPoolExecutor(max_workers=config.fetch.max_parallel, thread_name_prefix="fetch")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- fan-out, one call per slot ------------------------------------------------------------------
    def fetch_each(
        self,
        slots: Sequence[SlotRef],
        *,
        purpose: str,
        requested_by: str,
        deadline_s: float | None = None,
        on_outcome: Callable[[FetchOutcome], None] | None = None,
    ) -> list[FetchOutcome]:
        """One call per slot, all at once. ``on_outcome`` sees each outcome as soon as it arrives, in
        this thread, so the caller can record the fast systems while the slow one is still answering
        (the registration then ends right after the slowest answer, not after recording them all)."""
        deadline = self.config.fetch.deadline_s if deadline_s is None else deadline_s
        futures: dict[Future[FetchResult], SlotRef] = {}
        outcomes: list[FetchOutcome] = []

        def emit(outcome: FetchOutcome) -> None:
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)

        for slot in slots:
            connector = self._connector(slot.system)
            if connector is None:
                emit(self._unavailable(slot))
                continue
            refused = self._refused_by_budget(slot.system)
            if refused is not None:
                emit(self._throttled(slot, refused))
                continue
            futures[self._pool.submit(connector.fetch, slot.identifier, purpose=purpose,
                                      requested_by=requested_by)] = slot
        pending = set(futures)
        try:
            for future in as_completed(futures, timeout=deadline):
                pending.discard(future)
                exc = future.exception()
                emit(self._from_result(futures[future], exc if exc is not None else future.result()))
        except TimeoutError:
            for future in pending:
                future.cancel()
                emit(self._failure(futures[future], "deadline", "deadline_exceeded",
                                   f"no answer within {deadline:g} s"))
        return outcomes

    # -- batched by system (scheduler) ---------------------------------------------------------------
    def fetch_grouped(self, slots: Sequence[SlotRef], *, purpose: str, requested_by: str) -> list[FetchOutcome]:
        by_system: dict[str, list[SlotRef]] = {}
        for slot in slots:
            by_system.setdefault(slot.system, []).append(slot)
        outcomes: list[FetchOutcome] = []
        futures: dict[Future[dict[str, FetchResult | UpstreamError]], list[SlotRef]] = {}
        for system, group in by_system.items():
            connector = self._connector(system)
            if connector is None:
                outcomes.extend(self._unavailable(s) for s in group)
                continue
            group, postponed = self._within_budget(system, group, connector.batch_size
                                                   if connector.supports_batch else 1)
            outcomes.extend(postponed)
            if not group:
                continue
            identifiers = [s.identifier for s in group]
            futures[self._pool.submit(connector.fetch_many, identifiers, purpose=purpose,
                                      requested_by=requested_by)] = group
        # Bounded by the claim lease: past it the slots are someone else's anyway.
        done, _ = wait(futures, timeout=self.config.fetch.lease_s)
        for future, group in futures.items():
            if future not in done or future.exception() is not None:
                exc = None if future not in done else future.exception()
                outcomes.extend(self._failure(s, "deadline" if exc is None else "transient",
                                              "deadline_exceeded" if exc is None else type(exc).__name__, "")
                                for s in group)
                continue
            answers = future.result()
            outcomes.extend(self._from_result(s, answers.get(s.identifier) or UpstreamError(
                s.system, "missing_answer")) for s in group)
        return outcomes

    # -- upstream budget -----------------------------------------------------------------------------
    def _refused_by_budget(self, system: str) -> Decision | None:
        decision = self.budget(system) if self.budget is not None else None
        return decision if decision is not None and not decision.allowed else None

    def _within_budget(
        self, system: str, group: list[SlotRef], per_call: int
    ) -> tuple[list[SlotRef], list[FetchOutcome]]:
        """The slots the budget pays for, one call (``per_call`` identifiers) at a time, and the others
        postponed until it has refilled."""
        admitted: list[SlotRef] = []
        for start in range(0, len(group), max(1, per_call)):
            refused = self._refused_by_budget(system)
            if refused is not None:
                return admitted, [self._throttled(s, refused) for s in group[start:]]
            admitted.extend(group[start : start + per_call])
        return admitted, []

    @staticmethod
    def _throttled(slot: SlotRef, decision: Decision) -> FetchOutcome:
        return FetchOutcome(fetch_id=slot.id, claim_token=slot.claim_token or "", kind="throttled",
                            error_code="upstream_budget", retry_after_s=float(decision.retry_after_s),
                            error_detail=f"the hub's budget for {slot.system} is spent; retrying in "
                                         f"{decision.retry_after_s} s")

    # -- mapping -------------------------------------------------------------------------------------
    def _connector(self, system: str) -> Connector | None:
        return self.connectors[system] if system in self.connectors else None  # noqa: SIM401

    def mapping(self, system: str) -> SourceMapping:
        with self._lock:
            if system not in self._mappings:
                path = self.connectors.mapping_path(system)
                if path is None:
                    raise MappingDataError(f"no mapping configured for {system}")
                self._mappings[system] = load_mapping(str(path))
            return self._mappings[system]

    def _from_result(self, slot: SlotRef, result: FetchResult | BaseException) -> FetchOutcome:
        if isinstance(result, UpstreamError):
            kind = _KIND_OF_OUTCOME.get(result.outcome, "permanent")
            return self._failure(slot, kind, result.code, result.detail)
        if isinstance(result, BaseException):
            log.error("fetch of %s failed unexpectedly", slot.system, exc_info=result)
            return self._failure(slot, "transient", type(result).__name__, "")
        try:
            credentials = self.mapping(slot.system).apply(result)
        except MappingDataError as exc:
            # A reply the mapping cannot read says nothing about the supplier's credentials: it is a
            # fault of this exchange (a gateway's HTML page, a half-deployed upstream), retried with
            # backoff like any transient one. The bytes are kept as evidence of what came back.
            code = "unreadable_reply" if isinstance(exc, UnreadableReply) else "mapping_error"
            return FetchOutcome(
                fetch_id=slot.id, claim_token=slot.claim_token or "", kind="transient", error_code=code,
                error_detail=str(exc)[:300] or None, fetched_at=result.fetched_at, raw=result.raw,
                content_type=result.content_type, raw_sha256=result.raw_sha256,
            )
        keys = self.config.record_keys
        return FetchOutcome(
            fetch_id=slot.id, claim_token=slot.claim_token or "", kind="ok", fetched_at=result.fetched_at,
            raw=result.raw, content_type=result.content_type, raw_sha256=result.raw_sha256,
            response_sha256=result.response_sha256, request_sha256=result.request_sha256,
            credentials=[
                FetchedCredential(
                    type=c.type, subject=c.subject or slot.identifier,
                    record_key=str(c.attributes.get(keys[c.type]) or "") if c.type in keys else "",
                    status=c.status, attributes=c.attributes, valid_from=c.valid_from,
                    valid_until=c.valid_until, pointer=c.evidence.pointer,
                )
                for c in credentials
            ],
        )

    @staticmethod
    def _failure(slot: SlotRef, kind: OutcomeKind, code: str, detail: str) -> FetchOutcome:
        return FetchOutcome(fetch_id=slot.id, claim_token=slot.claim_token or "", kind=kind,
                            error_code=code[:100], error_detail=detail[:300] or None)

    def _unavailable(self, slot: SlotRef) -> FetchOutcome:
        return self._failure(slot, "transient", "system_not_configured",
                             f"no enabled connector for {slot.system}")

