"""Token buckets: how much of a budget is left, and when more comes back.

A policy lets ``limit`` units through at once (the burst) and refills at ``limit / window_s`` units a
second, so a caller that spends evenly never waits and one that floods gets ``limit`` requests and then
one every ``window_s / limit`` seconds. The maths here is plain Python with the clock passed in, so it
is tested without sleeping; where the buckets live (one process's memory, a database row shared by
every process) is the store's business (:class:`BucketStore`).

Several buckets can be charged together (a key's and its organisation's): all of them or none, so a
refused request costs nothing.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "Bucket",
    "BucketStore",
    "Clock",
    "Decision",
    "InMemoryBuckets",
    "Policy",
    "charge",
    "most_restrictive",
    "rate_limit_headers",
    "refill",
]

Clock = Callable[[], float]

# Floating-point refill can leave 0.9999999 of a unit where 1 was meant.
_EPSILON = 1e-9


@dataclass(frozen=True)
class Policy:
    """``name`` is what the ``RateLimit-Policy`` header calls it (``"key-writes"``)."""

    name: str
    limit: int
    window_s: float

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_s <= 0:
            raise ValueError("a policy needs limit >= 1 and window_s > 0")

    @property
    def rate(self) -> float:
        """Units refilled per second."""
        return self.limit / self.window_s


@dataclass(frozen=True)
class Bucket:
    tokens: float
    updated_at: float  # seconds since the epoch: comparable across processes, unlike a monotonic clock


@dataclass(frozen=True)
class Decision:
    """One bucket's answer. ``remaining`` whole units are left after this request; ``reset_s`` is how
    long until one more unit is available (0 when the bucket is full); ``retry_after_s`` (refusals
    only) how long until this request would pass."""

    policy: Policy
    allowed: bool
    remaining: int
    reset_s: int
    retry_after_s: int = 0


def refill(policy: Policy, bucket: Bucket | None, now: float) -> Bucket:
    """The bucket as it stands at ``now``. A new bucket starts full; a clock that stepped back refills
    nothing (and never takes anything away)."""
    if bucket is None:
        return Bucket(float(policy.limit), now)
    elapsed = max(0.0, now - bucket.updated_at)
    tokens = min(float(policy.limit), bucket.tokens + elapsed * policy.rate)
    return Bucket(tokens, max(now, bucket.updated_at))


def _seconds_until(policy: Policy, tokens: float, wanted: float) -> int:
    missing = wanted - tokens
    if missing <= _EPSILON:
        return 0
    return max(1, math.ceil(missing / policy.rate - _EPSILON))


def _standing(policy: Policy, tokens: float) -> tuple[int, int]:
    """(whole units left, seconds until one more unit is there; 0 when full)."""
    whole = max(0, math.floor(tokens + _EPSILON))
    reset = 0 if whole >= policy.limit else _seconds_until(policy, tokens, whole + 1)
    return whole, reset


def _decide(policy: Policy, current: Bucket, cost: int) -> Decision:
    if current.tokens + _EPSILON >= cost:
        return Decision(policy, True, *_standing(policy, current.tokens - cost))
    return Decision(policy, False, *_standing(policy, current.tokens),
                    retry_after_s=_seconds_until(policy, current.tokens, cost))


def charge(
    wanted: Sequence[tuple[Policy, Bucket | None]], now: float, cost: int = 1
) -> tuple[list[Bucket], list[Decision]]:
    """Charge ``cost`` to every bucket, or to none when any of them lacks it. Returns the buckets to
    store (refilled, and charged if every one allowed) and one decision per bucket, in order."""
    if cost < 0:
        raise ValueError("cost must be >= 0")
    current = [refill(policy, bucket, now) for policy, bucket in wanted]
    decisions = [_decide(policy, bucket, cost) for (policy, _), bucket in zip(wanted, current, strict=True)]
    if all(d.allowed for d in decisions):
        return [Bucket(b.tokens - cost, b.updated_at) for b in current], decisions
    # Nothing is spent: a refused request costs the caller nothing, so the others report what stands.
    unspent = [d if not d.allowed else Decision(d.policy, True, *_standing(d.policy, b.tokens))
               for d, b in zip(decisions, current, strict=True)]
    return current, unspent


def most_restrictive(decisions: Sequence[Decision]) -> Decision:
    """The decision a client should heed: a refusal with the longest wait, else the fewest units left."""
    refused = [d for d in decisions if not d.allowed]
    if refused:
        return max(refused, key=lambda d: d.retry_after_s)
    return min(decisions, key=lambda d: (d.remaining, -d.reset_s))


def rate_limit_headers(decisions: Sequence[Decision]) -> dict[str, str]:
    """``RateLimit-Policy`` (every policy that applied) and ``RateLimit`` (the most restrictive one's
    state), as draft-ietf-httpapi-ratelimit-headers writes them (quoted policy names, ``q``/``w`` and
    ``r``/``t`` parameters); ``Retry-After`` on a refusal."""
    if not decisions:
        return {}
    seen: dict[str, Policy] = {}
    for decision in decisions:
        seen.setdefault(decision.policy.name, decision.policy)
    policies = ", ".join(f'"{p.name}";q={p.limit};w={_seconds(p.window_s)}' for p in seen.values())
    chosen = most_restrictive(decisions)
    headers = {
        "RateLimit-Policy": policies,
        "RateLimit": f'"{chosen.policy.name}";r={chosen.remaining};t={chosen.reset_s}',
    }
    if not chosen.allowed:
        headers["Retry-After"] = str(chosen.retry_after_s)
    return headers


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


class BucketStore(Protocol):
    """Where buckets live. ``take`` charges ``cost`` to every named bucket, or to none (see
    :func:`charge`), atomically with respect to every other caller sharing the store."""

    def take(self, wanted: Sequence[tuple[str, Policy]], cost: int = 1) -> list[Decision]: ...

    def peek(self, name: str, policy: Policy) -> Decision:
        """What charging one unit would answer, without charging it or writing anything."""
        ...

    def forget_idle(self, idle_s: float) -> int:
        """Drop buckets untouched for ``idle_s`` (past every window they are full: the same as none)."""
        ...


class InMemoryBuckets:
    """Buckets in this process's memory: for one process (the embedded SQLite default), where a
    database row per request would take SQLite's write lock. Several processes each keep their own
    budget. Full buckets are forgotten once there are more than ``max_buckets`` (a flood from many
    addresses cannot grow memory without bound; a full bucket is the same as none)."""

    def __init__(self, clock: Clock = time.time, max_buckets: int = 100_000) -> None:
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: dict[str, tuple[Policy, Bucket]] = {}
        self._lock = threading.Lock()

    def take(self, wanted: Sequence[tuple[str, Policy]], cost: int = 1) -> list[Decision]:
        with self._lock:
            now = self.clock()
            known = [(policy, self._current(name, policy)) for name, policy in wanted]
            buckets, decisions = charge(known, now, cost)
            for (name, policy), bucket in zip(wanted, buckets, strict=True):
                self._buckets[name] = (policy, bucket)
            if len(self._buckets) > self.max_buckets:
                self._forget_full(now)
            return decisions

    def peek(self, name: str, policy: Policy) -> Decision:
        with self._lock:
            return charge([(policy, self._current(name, policy))], self.clock())[1][0]

    def forget_idle(self, idle_s: float) -> int:
        with self._lock:
            cutoff = self.clock() - idle_s
            idle = [name for name, (_, bucket) in self._buckets.items() if bucket.updated_at < cutoff]
            for name in idle:
                del self._buckets[name]
            return len(idle)

    def _current(self, name: str, policy: Policy) -> Bucket | None:
        found = self._buckets.get(name)
        return found[1] if found is not None else None

    def _forget_full(self, now: float) -> None:
        for name, (policy, bucket) in list(self._buckets.items()):
            if refill(policy, bucket, now).tokens >= policy.limit:
                del self._buckets[name]
