"""The hub's budgets by name: which buckets a request, a refresh or an upstream call is charged to.

Bucket names say whose budget it is (``key:<key id>:writes``, ``org:<org id>:reads``,
``addr:<address>``, ``failed-auth:<address>``, ``refresh:<supplier id>``, ``upstream:<system>``); the
policy names are what clients see in ``RateLimit-Policy``. Every refusal is counted in
``g2bhub_throttled_total{budget=…}`` and logged at INFO with whose budget ran out (a key id, never a
secret).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from hub.spine.observability.metrics import THROTTLED
from hub.spine.quota_config import QuotaSettings
from hub.spine.quotas import BucketStore, Decision, Policy

__all__ = ["Budgets"]

log = logging.getLogger(__name__)


class Budgets:
    def __init__(self, settings: QuotaSettings, store: BucketStore) -> None:
        self.settings = settings
        self.store = store

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def caller(self, key_id: str, org_id: str, *, write: bool) -> list[Decision]:
        """A request made with a valid key: the key's budget and its organisation's, both or neither."""
        s = self.settings
        kind = "writes" if write else "reads"
        key_budget, org_budget = (s.key_writes, s.org_writes) if write else (s.key_reads, s.org_reads)
        return self._take([(f"key:{key_id}:{kind}", key_budget.policy(f"key-{kind}")),
                           (f"org:{org_id}:{kind}", org_budget.policy(f"org-{kind}"))],
                          subject={"key_id": key_id, "org_id": org_id})

    def anonymous(self, address: str) -> list[Decision]:
        """A request without a key, by client address."""
        return self._take([(f"addr:{address}", self.settings.anonymous.policy("anonymous"))],
                          subject={"client": address})

    def failed_auth(self, address: str, *, spend: bool) -> Decision | None:
        """The budget of failed authentications from one address: looked at before a key is checked
        (``spend=False``, a read only: an exhausted address is refused without hashing anything) and
        charged when the check fails."""
        name, policy = f"failed-auth:{address}", self.settings.failed_auth.policy("failed-auth")
        if spend:
            found = self._take([(name, policy)], subject={"client": address})
            return found[0] if found else None
        if not self.settings.enabled:
            return None
        decision = self.store.peek(name, policy)
        self._refused([decision] if not decision.allowed else [], {"client": address})
        return decision

    def refresh(self, supplier_id: str) -> Decision | None:
        """An on-demand refresh of one supplier."""
        found = self._take([(f"refresh:{supplier_id}", self.settings.refresh_per_supplier.policy("refresh"))],
                           subject={"supplier_id": supplier_id})
        return found[0] if found else None

    def upstream(self, system: str) -> Decision | None:
        """One call to an upstream system (a batch call counts once)."""
        found = self._take([(f"upstream:{system}", self.settings.upstream_policy(system))],
                           subject={"system": system})
        return found[0] if found else None

    def longest_window_s(self) -> float:
        s = self.settings
        budgets = [s.key_reads, s.key_writes, s.org_reads, s.org_writes, s.anonymous, s.failed_auth,
                   s.refresh_per_supplier, s.upstream_default, *s.upstream.values()]
        return max(b.window_s for b in budgets)

    def forget_idle(self) -> int:
        """Drop stored buckets idle for longer than the longest window (they are full again anyway)."""
        return self.store.forget_idle(self.longest_window_s())

    def _take(self, wanted: Sequence[tuple[str, Policy]], *, subject: dict[str, str], cost: int = 1) -> list[Decision]:
        if not self.settings.enabled:
            return []
        decisions = self.store.take(wanted, cost)
        self._refused([d for d in decisions if not d.allowed], subject)
        return decisions

    @staticmethod
    def _refused(refused: Sequence[Decision], subject: dict[str, str]) -> None:
        for decision in refused:
            THROTTLED.labels(budget=decision.policy.name).inc()
            log.info("throttled: %s budget exhausted", decision.policy.name,
                     extra={"budget": decision.policy.name, "retry_after_s": decision.retry_after_s, **subject})
