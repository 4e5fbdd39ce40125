"""Background freshness: expire what ran out, then claim due slots and fetch them, batched by system.

One run is: ``ExpireCredentials`` (credentials past ``valid_until`` whose refresh did not succeed
become ``expired``) → ``ClaimCredentialFetches`` (pending retries whose backoff has passed, verified
credentials inside their refresh margin, not-found re-checks; leased, so concurrent workers split the
work) → ``fetch_many`` per system → ``RecordCredentialFetches``. ``run_once(now=...)`` takes the
instant as an argument so tests move time instead of waiting.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from hub.suppliers.commands import ClaimCredentialFetches, ExpireCredentials, RecordCredentialFetches
from hub.suppliers.config import SupplierSettings
from hub.suppliers.model import new_id

if TYPE_CHECKING:
    from hub.suppliers.fetching import CredentialFetcher

__all__ = ["SCHEDULER_ORG", "CredentialScheduler", "SchedulerRun"]

log = logging.getLogger(__name__)

# Who the call records name as requester when no organisation asked: the hub itself.
SCHEDULER_ORG = "hub-scheduler"
_RECORD_CHUNK = 200


class CommandBus(Protocol):
    def handle(self, command: Any, correlation_id: str | None = None) -> Any: ...


class FetcherSource(Protocol):
    def __call__(self) -> CredentialFetcher: ...


@dataclass
class SchedulerRun:
    expired: int = 0
    claimed: int = 0
    by_system: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)


class CredentialScheduler:
    def __init__(self, bus: CommandBus, fetcher: FetcherSource, config: SupplierSettings) -> None:
        self.bus = bus
        self.fetcher = fetcher  # a factory: connectors are built only once something is due
        self.config = config

    def run_once(self, now: datetime | None = None, limit: int | None = None) -> SchedulerRun:
        run = SchedulerRun()
        expired = self.bus.handle(ExpireCredentials(now=now))
        run.expired = int(expired) if isinstance(expired, int) else 0
        token = new_id()
        claimed = self.bus.handle(ClaimCredentialFetches(
            claim_token=token, now=now, limit=limit or self.config.scheduler.max_claims_per_run,
        ))
        slots = list(claimed) if isinstance(claimed, list) else []
        run.claimed = len(slots)
        if not slots:
            return run
        run.by_system.update(s.system for s in slots)
        outcomes = self.fetcher().fetch_grouped(slots, purpose="refresh", requested_by=SCHEDULER_ORG)
        run.outcomes.update(o.kind for o in outcomes)
        for start in range(0, len(outcomes), _RECORD_CHUNK):
            self.bus.handle(RecordCredentialFetches(outcomes=outcomes[start : start + _RECORD_CHUNK], now=now),
                            correlation_id=token)
        log.info("credential scheduler run: %d expired, %d fetched %s", run.expired, run.claimed,
                 dict(run.outcomes), extra={"by_system": dict(run.by_system)})
        return run

    def __call__(self) -> None:
        """The periodic job's entry point."""
        self.run_once()
