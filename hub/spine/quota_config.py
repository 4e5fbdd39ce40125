"""The ``quotas`` section of the hub's settings (defaults in ``config/default.yaml``).

Each budget is a token bucket (:mod:`hub.spine.quotas`): ``limit`` requests at once, refilled evenly
over ``window_s``. The defaults are what a public deployment would start from; a deployment raises or
lowers any of them in its own config file (``quotas: {key_writes: {limit: 600}}``) or the environment
(``G2BHUB_QUOTAS__KEY_WRITES__LIMIT=600``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hub.spine.quotas import Policy
from hub.spine.settings import Section

__all__ = ["BudgetSettings", "QuotaSettings"]


class BudgetSettings(Section):
    limit: int = Field(ge=1, le=10_000_000)
    window_s: float = Field(gt=0, le=31 * 86400)

    def policy(self, name: str) -> Policy:
        return Policy(name, self.limit, self.window_s)


def _budget(limit: int, window_s: float) -> BudgetSettings:
    return BudgetSettings(limit=limit, window_s=window_s)


class QuotaSettings(Section):
    enabled: bool = True
    # Where buckets live. "auto": in the database on PostgreSQL (every process shares one budget), in
    # this process's memory on SQLite (one process; a row per request would take SQLite's write lock).
    store: Literal["auto", "memory", "database"] = "auto"
    # Per API key and per organisation (all its keys together); writes (POST/PUT/PATCH/DELETE) apart.
    key_reads: BudgetSettings = _budget(600, 60)
    key_writes: BudgetSettings = _budget(120, 60)
    org_reads: BudgetSettings = _budget(1200, 60)
    org_writes: BudgetSettings = _budget(240, 60)
    # Per client address: requests without a key (public feeds, docs), and failed authentications.
    anonymous: BudgetSettings = _budget(300, 60)
    failed_auth: BudgetSettings = _budget(30, 60)
    # On-demand refresh of one supplier (each calls every applicable upstream system).
    refresh_per_supplier: BudgetSettings = _budget(6, 3600)
    # Calls to each upstream system, paid with the hub's own keys; ``upstream`` overrides per system.
    upstream_default: BudgetSettings = _budget(120, 60)
    upstream: dict[str, BudgetSettings] = {}
    # Paths never limited (the probes an orchestrator polls from one address).
    exempt_paths: list[str] = Field(default_factory=lambda: ["/healthz", "/readyz", "/metrics"])

    def upstream_policy(self, system: str) -> Policy:
        return self.upstream.get(system, self.upstream_default).policy(f"upstream-{system}")
