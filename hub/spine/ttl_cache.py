"""A small in-process cache whose entries expire a fixed time after they were stored.

For answers that are asked for on every request and change rarely (an authenticated API key), where a
change may take effect a few seconds late but not later: an entry is never served past ``ttl_s``.
Thread-safe (the API answers from a thread pool); the clock can be replaced (tests move it by hand).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["TtlCache"]

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """``ttl_s`` 0 turns the cache off (nothing is kept). At most ``max_entries`` are held: when full,
    expired entries are dropped first, and if none has expired everything is (the next requests refill
    it), so an attacker sending many distinct keys cannot grow it without bound."""

    def __init__(self, ttl_s: float, *, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        if self.clock() >= expires:
            with self._lock:
                if self._entries.get(key) is found:
                    del self._entries[key]
            return None
        return value

    def put(self, key: K, value: V) -> None:
        if self.ttl_s <= 0:
            return
        now = self.clock()
        with self._lock:
            if len(self._entries) >= self.max_entries and key not in self._entries:
                self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
                if len(self._entries) >= self.max_entries:
                    self._entries = {}
            self._entries[key] = (now + self.ttl_s, value)

    def clear(self) -> None:
        with self._lock:
            self._entries = {}

    def __len__(self) -> int:
        return len(self._entries)
