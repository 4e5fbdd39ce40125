"""Indexed subscription matching: which of (up to millions of) subscriptions want this notice.

:class:`SubscriptionIndex` sends filters with classification prefixes (the great majority) to the
combined-key :class:`~hub.subscriptions.classified_index.ClassifiedIndex`, and the rest (keyword, region or
institution followers, catch-alls) to the planned index below, and unions their answers.

Planned index: every filter dimension has an inverted index ``key → ids`` plus a wildcard list of the subscriptions
that do not constrain it. For a notice, each dimension's candidate count is known from bucket sizes
alone, so the most selective dimension generates candidates, other exact dimensions that are cheap
enough narrow them with C-level set intersections, and only the survivors are checked with the
reference predicate (``SubscriptionFilter.matches``) — the result equals the linear scan by
construction, and no per-notice work is proportional to the number of subscriptions.

Keys per dimension:
- classification: the filter's prefixes; the notice looks up every prefix of its codes (≤ 16 keys);
- category, region, institution: exact values (a notice's region also looks up its country);
- value: decades (⌊log10⌋, clamped to 0…15) spanned by a bounded range; wide ranges are wildcards;
- keywords: one 1-3 character gram of the filter's longest keyword (the rarest at insertion time);
  the notice looks up the grams of its text — computed only when this dimension could win.

Memory: subscriptions get dense int slots; buckets are ``array('I')`` (4 bytes an entry, no int
objects). Removal tombstones the slot and the index compacts itself when a quarter is dead.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Iterable, Iterator
from decimal import Decimal

from hub.notices.model import NoticeContent
from hub.subscriptions.classified_index import ClassifiedIndex
from hub.subscriptions.filters import NoticeFacts, SubscriptionFilter

__all__ = ["SubscriptionIndex"]

_MAX_DECADE = 15
_MAX_DECADE_SPAN = 8
_GRAM = 3
_INTERSECT_FACTOR = 24  # intersect when a dimension lists at most this x the current candidates: iterating
# an array in C costs ~20 ns an entry, a Python-level check ~1 µs a candidate
_CLASS, _CATEGORY, _REGION, _INSTITUTION, _VALUE, _KEYWORD = range(6)
# Dimensions whose buckets decide the predicate exactly, so a candidate drawn from (or intersected
# with) them needs no further check there. Category is exact too but is cheaper to test per slot.
_SET_RESOLVABLE = (_CLASS, _REGION, _INSTITUTION)
_VALUE_BIT = 1 << _VALUE
_DEAD = 1 << 6  # in the per-slot constraint mask: a removed subscription
_CATEGORY_BITS = {"goods": 1, "services": 2, "works": 4}


def _decade(value: Decimal) -> int:
    return 0 if value <= 0 else max(0, min(_MAX_DECADE, value.adjusted()))


def _value_keys(flt: SubscriptionFilter) -> tuple[int, ...]:
    if not flt.has_value_bounds:
        return ()
    low = 0 if flt.min_value is None else _decade(flt.min_value)
    high = _MAX_DECADE if flt.max_value is None else _decade(flt.max_value)
    if high - low + 1 > _MAX_DECADE_SPAN:
        return ()  # too wide to be selective: treat as unconstrained here, still verified exactly
    return tuple(range(low, high + 1))


def _grams(text: str, lengths: Iterable[int]) -> set[str]:
    found: set[str] = set()
    for n in lengths:
        found.update(text[i : i + n] for i in range(len(text) - n + 1))
    return found


class SubscriptionIndex:
    """Add, update and remove subscriptions; ``match`` returns the ids whose filters select a notice."""

    __slots__ = ("_classified", "_filters", "_planned")

    def __init__(self, subscriptions: Iterable[tuple[Hashable, SubscriptionFilter]] = ()) -> None:
        self._classified = ClassifiedIndex()
        self._planned = PlannedIndex()
        self._filters: dict[Hashable, SubscriptionFilter] = {}
        for subscription_id, flt in subscriptions:
            self.add(subscription_id, flt)

    def __len__(self) -> int:
        return len(self._filters)

    def __contains__(self, subscription_id: object) -> bool:
        return subscription_id in self._filters

    def __iter__(self) -> Iterator[tuple[Hashable, SubscriptionFilter]]:
        return iter(self._filters.items())

    def add(self, subscription_id: Hashable, flt: SubscriptionFilter) -> None:
        if subscription_id in self._filters:
            raise KeyError(f"subscription {subscription_id!r} is already indexed; use update")
        (self._classified if flt.classifications else self._planned).add(subscription_id, flt)
        self._filters[subscription_id] = flt

    def remove(self, subscription_id: Hashable) -> None:
        flt = self._filters.pop(subscription_id)  # KeyError for an unknown id, like dict
        (self._classified if flt.classifications else self._planned).remove(subscription_id)

    def update(self, subscription_id: Hashable, flt: SubscriptionFilter) -> None:
        if subscription_id in self._filters:
            self.remove(subscription_id)
        self.add(subscription_id, flt)

    def match(self, content: NoticeContent, institution_id: str) -> set[Hashable]:
        return self.match_facts(NoticeFacts.of(content, institution_id))

    def match_facts(self, facts: NoticeFacts) -> set[Hashable]:
        result = self._planned.match_facts(facts) if len(self._planned) else set()
        self._classified.match_into(facts, result)
        return result

    def stats(self) -> dict[str, int]:
        return {**self._planned.stats(), **self._classified.stats(), "subscriptions": len(self._filters)}


class PlannedIndex:
    """Per-dimension inverted indexes with a cost-based plan (see the module docstring)."""

    __slots__ = (
        "_buckets", "_categories", "_constrained", "_dead", "_filters", "_gram_lengths", "_ids", "_slots", "_wild"
    )

    def __init__(self, subscriptions: Iterable[tuple[Hashable, SubscriptionFilter]] = ()) -> None:
        self._filters: list[SubscriptionFilter | None] = []
        self._ids: list[Hashable] = []
        # One byte per slot each: which dimensions the filter constrains (bit per dimension, _DEAD when
        # removed) and its category bits; they let most candidates be accepted without calling matches().
        self._constrained = bytearray()
        self._categories = bytearray()
        self._slots: dict[Hashable, int] = {}
        self._buckets: tuple[dict[object, array[int]], ...] = tuple({} for _ in range(6))
        self._wild: tuple[array[int], ...] = tuple(array("I") for _ in range(6))
        self._gram_lengths: dict[int, int] = {}  # gram length → how many filters use it
        self._dead = 0
        for subscription_id, flt in subscriptions:
            self.add(subscription_id, flt)

    def __len__(self) -> int:
        return len(self._slots)

    def __iter__(self) -> Iterator[tuple[Hashable, SubscriptionFilter]]:
        for slot in self._slots.values():
            flt = self._filters[slot]
            assert flt is not None
            yield self._ids[slot], flt

    def add(self, subscription_id: Hashable, flt: SubscriptionFilter) -> None:
        if subscription_id in self._slots:
            raise KeyError(f"subscription {subscription_id!r} is already indexed; use update")
        slot = len(self._filters)
        self._filters.append(flt)
        self._ids.append(subscription_id)
        self._slots[subscription_id] = slot
        keys: tuple[Iterable[object], ...] = (
            flt.classifications,
            flt.categories,
            flt.regions,
            flt.institutions,
            _value_keys(flt),
            self._keyword_key(flt),
        )
        mask = 0
        for dimension, dimension_keys in enumerate(keys):
            placed = False
            buckets = self._buckets[dimension]
            for key in dimension_keys:
                bucket = buckets.get(key)
                if bucket is None:
                    bucket = buckets[key] = array("I")
                bucket.append(slot)
                placed = True
            if placed:
                mask |= 1 << dimension
            else:
                self._wild[dimension].append(slot)
        if flt.has_value_bounds:
            mask |= 1 << _VALUE  # bounds too wide to index are still checked
        self._constrained.append(mask)
        self._categories.append(sum(_CATEGORY_BITS[c] for c in flt.categories))

    def remove(self, subscription_id: Hashable) -> None:
        slot = self._slots.pop(subscription_id)  # KeyError for an unknown id, like dict
        flt = self._filters[slot]
        if flt is not None and flt.keywords:
            length = min(_GRAM, len(max(flt.keywords, key=len)))
            self._gram_lengths[length] -= 1
        self._filters[slot] = None
        self._ids[slot] = None
        self._constrained[slot] = _DEAD
        self._dead += 1
        if self._dead > max(1024, len(self._slots) // 3):
            self._compact()

    def match_facts(self, facts: NoticeFacts) -> set[Hashable]:
        plans = self._plans(facts)
        plans.sort(key=lambda plan: plan[0])
        _, generator, arrays = plans[0]
        candidates: set[int] = set()
        for bucket in arrays:
            candidates.update(bucket)
        resolved = 1 << generator if generator in _SET_RESOLVABLE else 0
        for estimate, dimension, dimension_arrays in plans[1:]:
            if not candidates or estimate > _INTERSECT_FACTOR * len(candidates):
                break
            if dimension in _SET_RESOLVABLE:
                narrowed: set[int] = set()
                for bucket in dimension_arrays:
                    narrowed.update(candidates.intersection(bucket))
                candidates = narrowed
                resolved |= 1 << dimension
        return self._verify(candidates, resolved, facts)

    def _verify(self, candidates: Iterable[int], resolved: int, facts: NoticeFacts) -> set[Hashable]:
        """Accept a candidate outright when every dimension it constrains is already decided; call the
        reference predicate only for the rest (value bounds, keywords, undecided dimensions)."""
        filters, ids = self._filters, self._ids
        constrained, categories = self._constrained, self._categories
        notice_category = _CATEGORY_BITS[facts.category]
        value = facts.value
        still_open = 0xFF & ~resolved & ~(1 << _CATEGORY)
        matched: list[Hashable] = []
        for slot in candidates:
            wanted = categories[slot]
            if wanted and not wanted & notice_category:
                continue
            open_bits = constrained[slot] & still_open
            if open_bits:
                flt = filters[slot]
                if flt is None:
                    continue
                if open_bits == _VALUE_BIT:  # the common case, inlined: only the bounds are left
                    if value is None or (flt.currency is not None and flt.currency != facts.currency):
                        continue
                    if (flt.min_value is not None and value < flt.min_value) or (
                        flt.max_value is not None and value > flt.max_value
                    ):
                        continue
                elif not flt.matches(facts):
                    continue
            matched.append(ids[slot])
        return set(matched)

    def _plans(self, facts: NoticeFacts) -> list[tuple[int, int, list[array[int]]]]:
        """(candidate count, dimension, arrays to union) per dimension; the keyword dimension only
        when its wildcard list alone does not already make it the worst choice."""
        lookups: list[tuple[int, Iterable[object]]] = [
            (_CLASS, facts.class_keys),
            (_CATEGORY, (facts.category,)),
            (_REGION, facts.region_keys),
            (_INSTITUTION, (facts.institution,)),
            (_VALUE, () if facts.value is None else (_decade(facts.value),)),
        ]
        plans = [self._plan(dimension, keys) for dimension, keys in lookups]
        best = min(plan[0] for plan in plans)
        if self._gram_lengths and len(self._wild[_KEYWORD]) < best:
            lengths = [n for n, count in self._gram_lengths.items() if count > 0]
            plans.append(self._plan(_KEYWORD, _grams(facts.text, lengths)))
        return plans

    def _plan(self, dimension: int, keys: Iterable[object]) -> tuple[int, int, list[array[int]]]:
        buckets = self._buckets[dimension]
        arrays = [self._wild[dimension]]
        for key in keys:
            bucket = buckets.get(key)
            if bucket is not None:
                arrays.append(bucket)
        return sum(len(a) for a in arrays), dimension, arrays

    def _keyword_key(self, flt: SubscriptionFilter) -> tuple[str, ...]:
        if not flt.keywords:
            return ()
        longest = max(flt.keywords, key=len)
        length = min(_GRAM, len(longest))
        self._gram_lengths[length] = self._gram_lengths.get(length, 0) + 1
        buckets = self._buckets[_KEYWORD]
        grams = {longest[i : i + length] for i in range(len(longest) - length + 1)}
        return (min(sorted(grams), key=lambda gram: len(buckets.get(gram, ()))),)

    def _compact(self) -> None:
        """Rebuild without tombstones; amortised O(1) per removal because it waits for many."""
        live = list(self)
        self.__init__(live)  # type: ignore[misc]

    def stats(self) -> dict[str, int]:
        return {
            "subscriptions": len(self._slots),
            "tombstones": self._dead,
            "bucket_entries": sum(len(b) for d in self._buckets for b in d.values())
            + sum(len(w) for w in self._wild),
            "buckets": sum(len(d) for d in self._buckets),
        }
