"""Fault injection shared by every twin: outage switch, error/timeout/malformed rates, latency.

Each twin owns one ``FaultInjector`` with its own seeded RNG, so a run with the same settings and the
same request order injects the same faults. Rates and the outage switch can be changed while the
sandbox runs (``/_control/faults``) so an integration test can cause an outage and then recover.
How a decided fault looks on the wire (SOAP fault, 503, 429 with Retry-After, RFC 7807 problem) is
each twin's business; this module only decides.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FaultDecision", "FaultInjector", "FaultKind", "FaultSettings", "TwinStats"]

FaultKind = Literal["none", "outage", "html", "error", "timeout", "malformed"]


class FaultSettings(BaseModel):
    """Per-twin fault knobs; every rate is a probability per request."""

    model_config = ConfigDict(extra="forbid")

    outage: bool = False
    # Every request answers 200 with a gateway's maintenance page (well-formed XHTML, text/html) instead
    # of the contract's body: what a portal or a misrouted proxy returns, readable by no mapping.
    html_page: bool = False
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    timeout_rate: float = Field(0.0, ge=0.0, le=1.0)
    malformed_rate: float = Field(0.0, ge=0.0, le=1.0)
    # The system's own fault code to return for injected errors (VIES faultstring such as MS_UNAVAILABLE,
    # an NTS status_code, "429" for Companies House, an IAF problem code); None = the twin's default.
    fault_code: str | None = None
    # Faults strike only requests for these keys (VIES: member states, e.g. ["DE"]); empty: every request.
    only_for: list[str] = []
    latency_min_ms: float = Field(0.0, ge=0.0)
    latency_max_ms: float = Field(0.0, ge=0.0)
    latency_distribution: Literal["fixed", "uniform", "triangular", "lognormal"] = "uniform"
    # How long an injected timeout hangs before answering; set it above the client's read timeout.
    hang_s: float = Field(30.0, gt=0.0, le=600.0)
    retry_after_s: int = Field(1, ge=0, le=3600)
    seed: int | None = None

    def fault_fields(self) -> dict[str, Any]:
        return self.model_dump(include=set(FaultSettings.model_fields))


@dataclass(frozen=True)
class FaultDecision:
    kind: FaultKind
    latency_s: float
    hang_s: float
    fault_code: str | None
    retry_after_s: int
    draw: float  # a uniform number the twin may use to pick among its fault codes, reproducibly


class FaultInjector:
    """Decides, per request, whether and how to misbehave."""

    def __init__(self, settings: FaultSettings, default_seed: int) -> None:
        self._configured = FaultSettings.model_validate(settings.fault_fields())
        self._default_seed = default_seed
        self._lock = threading.Lock()
        self._settings = self._configured
        self._rng = random.Random(self._seed_of(self._configured))

    def _seed_of(self, settings: FaultSettings) -> int:
        return settings.seed if settings.seed is not None else self._default_seed

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def update(self, changes: dict[str, Any]) -> FaultSettings:
        """Merge ``changes`` into the live settings (validated); a new ``seed`` restarts the RNG."""
        with self._lock:
            merged = FaultSettings.model_validate({**self._settings.model_dump(), **changes})
            if "seed" in changes:
                self._rng = random.Random(self._seed_of(merged))
            self._settings = merged
            return merged

    def reset(self) -> FaultSettings:
        """Back to the configured settings and the initial RNG state."""
        with self._lock:
            self._settings = self._configured
            self._rng = random.Random(self._seed_of(self._configured))
            return self._settings

    def decide(self, key: str | None = None) -> FaultDecision:
        """This request's fault; ``key`` (VIES: the member state) is checked against ``only_for``."""
        with self._lock:
            s, rng = self._settings, self._rng
            # Always draw the same count so one knob does not shift the others' sequence.
            u_timeout, u_error, u_malformed, u_pick = rng.random(), rng.random(), rng.random(), rng.random()
            latency = self._latency(s, rng)
        if s.only_for and key not in s.only_for:
            kind: FaultKind = "none"
        elif s.outage:
            kind = "outage"
        elif s.html_page:
            kind = "html"
        elif u_timeout < s.timeout_rate:
            kind = "timeout"
        elif u_error < s.error_rate:
            kind = "error"
        elif u_malformed < s.malformed_rate:
            kind = "malformed"
        else:
            kind = "none"
        return FaultDecision(kind, latency, s.hang_s, s.fault_code, s.retry_after_s, u_pick)

    @staticmethod
    def _latency(s: FaultSettings, rng: random.Random) -> float:
        low, high = s.latency_min_ms, max(s.latency_min_ms, s.latency_max_ms)
        draw = rng.random()
        if high <= 0:
            return 0.0
        if s.latency_distribution == "fixed" or high == low:
            ms = low
        elif s.latency_distribution == "uniform":
            ms = low + (high - low) * draw
        elif s.latency_distribution == "triangular":
            ms = rng.triangular(low, high, low + (high - low) / 4)
        else:  # lognormal between the bounds: median at their geometric mean, long right tail, clipped
            median = math.sqrt(max(low, 1.0) * high)
            ms = min(high, max(low, rng.lognormvariate(math.log(median), 0.5)))
        return ms / 1000.0

    async def delay(self, decision: FaultDecision) -> None:
        """Sleep the injected latency, and for a timeout hang on top of it."""
        wait = decision.latency_s + (decision.hang_s if decision.kind == "timeout" else 0.0)
        if wait > 0:
            await asyncio.sleep(wait)


class TwinStats:
    """Request and item counters, so a test can prove e.g. that NTS lookups were batched."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, key: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[key] += amount

    def count(self, key: str) -> int:
        with self._lock:
            return self._counts[key]

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
