"""The in-process TTL cache: entries expire exactly at their TTL, 0 keeps nothing, and it stays bounded."""

from __future__ import annotations

from hub.spine.ttl_cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_is_served_until_its_ttl_and_never_after() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(5.0, clock=clock)
    cache.put("k", 1)
    clock.now = 4.999
    assert cache.get("k") == 1
    clock.now = 5.0
    assert cache.get("k") is None
    assert len(cache) == 0


def test_a_zero_ttl_keeps_nothing() -> None:
    cache: TtlCache[str, int] = TtlCache(0.0)
    cache.put("k", 1)
    assert cache.get("k") is None


def test_a_full_cache_drops_expired_entries_first_and_never_grows_past_its_bound() -> None:
    clock = Clock()
    cache: TtlCache[int, int] = TtlCache(10.0, max_entries=3, clock=clock)
    cache.put(1, 1)
    clock.now = 5.0
    cache.put(2, 2)
    cache.put(3, 3)
    clock.now = 10.5  # 1 has expired
    cache.put(4, 4)
    assert (cache.get(1), cache.get(2), cache.get(4)) == (None, 2, 4)
    for key in range(5, 50):
        cache.put(key, key)
        assert len(cache) <= 3
    cache.clear()
    assert len(cache) == 0
