"""The index of filters that follow classification codes (97 % of them in practice): one bucket per
combined key (classification prefix x region x category), so a single dictionary lookup answers
three dimensions at once and exactly — no candidate set is intersected or re-checked for them.

A notice looks up every (prefix of its codes) x (its region, its country, "any") x (its category,
"any") key: at most 16 x 3 x 2 = 96 lookups, whatever the number of subscriptions. Each bucket keeps
its subscriptions in three groups by what is left to decide:
- ``exact``: nothing (the key decided everything) — merged into the result by one C-level set union;
- ``bounded``: only the value range — checked inline from a (min, max, currency) tuple;
- ``other``: institution or keywords — checked with the reference predicate.
So Python-level work per notice is proportional to the matches that need a value or keyword check,
not to the subscriptions, nor even to the matches.
"""

from __future__ import annotations

from collections.abc import Hashable
from decimal import Decimal
from itertools import product

from hub.subscriptions.filters import NoticeFacts, SubscriptionFilter

__all__ = ["ClassifiedIndex"]

Key = tuple[str, str | None, str | None]
Bounds = tuple[Decimal | None, Decimal | None, str | None]


class _Bucket:
    __slots__ = ("bounded", "exact", "other")

    def __init__(self) -> None:
        self.exact: set[Hashable] = set()
        self.bounded: dict[Hashable, Bounds] = {}
        self.other: dict[Hashable, SubscriptionFilter] = {}

    def __bool__(self) -> bool:
        return bool(self.exact or self.bounded or self.other)


class ClassifiedIndex:
    """Only for filters with at least one classification prefix."""

    __slots__ = ("_buckets", "_keys")

    def __init__(self) -> None:
        self._buckets: dict[Key, _Bucket] = {}
        self._keys: dict[Hashable, tuple[Key, ...]] = {}

    def add(self, subscription_id: Hashable, flt: SubscriptionFilter) -> None:
        assert flt.classifications, "unclassified filters belong to the planned index"
        keys: tuple[Key, ...] = tuple(product(flt.classifications, flt.regions or (None,), flt.categories or (None,)))
        self._keys[subscription_id] = keys
        other = bool(flt.institutions or flt.keywords)
        for key in keys:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket()
            if other:
                bucket.other[subscription_id] = flt
            elif flt.has_value_bounds:
                bucket.bounded[subscription_id] = (flt.min_value, flt.max_value, flt.currency)
            else:
                bucket.exact.add(subscription_id)

    def remove(self, subscription_id: Hashable) -> None:
        for key in self._keys.pop(subscription_id):
            bucket = self._buckets[key]
            bucket.exact.discard(subscription_id)
            bucket.bounded.pop(subscription_id, None)
            bucket.other.pop(subscription_id, None)
            if not bucket:
                del self._buckets[key]

    def match_into(self, facts: NoticeFacts, result: set[Hashable]) -> None:
        buckets = self._buckets
        regions: tuple[str | None, ...] = (*facts.region_keys, None)
        categories = (facts.category, None)
        value, currency = facts.value, facts.currency
        for prefix in facts.class_keys:
            for region in regions:
                for category in categories:
                    bucket = buckets.get((prefix, region, category))
                    if bucket is None:
                        continue
                    if bucket.exact:
                        result |= bucket.exact
                    if bucket.bounded and value is not None:
                        for sid, (low, high, wanted) in bucket.bounded.items():
                            if (wanted is None or wanted == currency) and (low is None or value >= low) and (
                                high is None or value <= high
                            ):
                                result.add(sid)
                    for sid, flt in bucket.other.items():
                        if sid not in result and flt.matches(facts):
                            result.add(sid)

    def stats(self) -> dict[str, int]:
        return {
            "classified": len(self._keys),
            "classified_buckets": len(self._buckets),
            "classified_entries": sum(len(b.exact) + len(b.bounded) + len(b.other) for b in self._buckets.values()),
        }
