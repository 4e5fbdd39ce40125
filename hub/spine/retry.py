"""The one backoff policy: how long to wait after the n-th failed attempt, for every retry in the hub.

Two shapes cover every retry we make: an exponential backoff (``Backoff``: connector calls, supplier
fetches, the relay, the dispatcher and consumer reconnects) and a fixed list of delays (``Schedule``:
the Standard Webhooks delivery schedule). Both jitter the same way (``Jitter``), so retries of callers
that failed together — one outage — spread out instead of returning in the same second.

Standard library only, on purpose: ``connectors`` uses it too and must not pull the hub in with it."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["NO_JITTER", "Backoff", "Jitter", "Schedule"]


@dataclass(frozen=True)
class Jitter:
    """A delay is multiplied by a factor drawn from [``low``, ``high``], then up to ``extra_s``
    seconds are added; the identity jitter draws nothing."""

    low: float = 1.0
    high: float = 1.0
    extra_s: float = 0.0

    @classmethod
    def around(cls, ratio: float) -> Jitter:
        """± ``ratio`` of the delay (0.2: between 80 % and 120 %)."""
        return cls(1.0 - ratio, 1.0 + ratio)

    def apply(self, delay: float, rng: random.Random | None = None) -> float:
        draw = rng or random
        if self.low != 1.0 or self.high != 1.0:
            delay *= draw.uniform(self.low, self.high)
        if self.extra_s:
            delay += draw.uniform(0.0, self.extra_s)
        return max(0.0, delay)


NO_JITTER = Jitter()


@dataclass(frozen=True)
class Backoff:
    """``initial_s · multiplier^(n-1)`` after the n-th consecutive failure, capped at ``max_s``, then
    jittered. It never gives up: the caller decides how many attempts it makes."""

    initial_s: float
    max_s: float
    multiplier: float = 2.0
    jitter: Jitter = NO_JITTER

    def base(self, failures: int) -> float:
        try:
            grown = self.initial_s * self.multiplier ** max(0, failures - 1)
        except OverflowError:  # a long outage: the cap has applied for a while already
            return self.max_s
        return min(self.max_s, grown)

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        return self.jitter.apply(self.base(failures), rng)


@dataclass(frozen=True)
class Schedule:
    """Fixed delays: ``delays_s[n]`` after ``n`` attempts, jittered; ``None`` once the list is spent,
    which tells the caller to give up."""

    delays_s: tuple[float, ...]
    jitter: Jitter = NO_JITTER

    def delay(self, attempts: int, rng: random.Random | None = None) -> float | None:
        if not 0 <= attempts < len(self.delays_s):
            return None
        return self.jitter.apply(self.delays_s[attempts], rng)
