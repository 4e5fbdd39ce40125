"""The matcher: compressed bitmaps (pyroaring) of integer subscription slots, one per key per dimension.

Every subscription gets a dense integer slot once, when it is added; from then on matching works on
slots only and maps the final bitmap back to subscription ids once per notice.

Per dimension, a bitmap per key and one ``open`` bitmap of the subscriptions that leave the dimension
unconstrained. A notice's candidates in a dimension are ``open | bitmaps of its keys``; dimensions
combine by intersection (smallest first):
- classification: one bitmap per filter prefix (``CPV:452``, ``452``, ``PPS-PUBLIC:7612`` …); the notice
  looks up every prefix of its codes, bare and scheme-qualified (:class:`NoticeFacts.class_keys`);
- category, region, institution: exact values (a notice's region also looks up its country);
- value: bands of a third of a decade. A bounded filter sits in the *interior* bitmaps of the bands
  strictly between its bounds' bands (decided by the band alone) and, at each bound's own band (the
  edge), in a bitmap per distinct bound value: the notice compares its value with each distinct bound
  of its band (few: bounds are round numbers) instead of with each filter; keyed by currency (``None``
  for any);
- keywords: a vocabulary of every filter's keywords under their first 1 to 3 characters; the notice finds
  the keywords its text holds (each distinct keyword checked once, as a case-insensitive substring).
  A filter's sorted keywords are in one bitmap per (position, keyword), its keyword count in another;
  at position i a candidate passes if it has at most i keywords or its i-th keyword is in the text, so
  passing every position is exactly "all keywords occur", with no per-filter check.
The result is exactly the linear scan's (:meth:`SubscriptionFilter.matches`), by construction.

Memory: no filter object is kept: bounds live only as bitmap keys, keywords in a dict for the
subscriptions that have any. Removal marks
the slot dead (masked out of every result) and purges dead slots from all bitmaps in bulk.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Hashable, Iterable, Iterator
from decimal import Decimal

from pyroaring import BitMap

from hub.notices.model import NoticeContent
from hub.subscriptions.filters import MAX_KEYWORDS, NoticeFacts, SubscriptionFilter

__all__ = ["BitmapIndex", "value_band"]

_CLASS, _CATEGORY, _REGION, _INSTITUTION, _VALUE, _KEYWORD = range(6)
_OPEN = None  # the key of a dimension's open bitmap
_INTERIOR, _LOW, _HIGH = "interior", "low", "high"
_TOP_DECADE = 15
TOP_BAND = 1 + (_TOP_DECADE + 1) * 3  # values of 10^16 and above share it
_GRAM = 3
_COUNT = "count"
_MIN_PURGE = 1024

Key = tuple[int, object]


def value_band(value: Decimal) -> int:
    """A non-decreasing step function of the value: 0 below 1, then three bands a decade (leading
    digit 1, 2 to 4, 5 to 9) up to 10^16, then :data:`TOP_BAND`. Exact on Decimals (no float rounding)."""
    if value < 1:
        return 0
    exponent = value.adjusted()
    if exponent > _TOP_DECADE:
        return TOP_BAND
    lead = value.as_tuple().digits[0]
    return 1 + exponent * 3 + (0 if lead < 2 else 1 if lead < 5 else 2)


def _grams(text: str, lengths: Iterable[int]) -> set[str]:
    found: set[str] = set()
    for n in lengths:
        found.update(text[i : i + n] for i in range(len(text) - n + 1))
    return found


class BitmapIndex:
    """Add, update and remove subscriptions; ``match_facts`` returns the ids whose filters select a
    notice (``match_slots`` the integer slots). The same interface as the planned index it replaces."""

    __slots__ = ("_bounds", "_dead", "_ids", "_maps", "_slots", "_vocabulary")

    def __init__(self, subscriptions: Iterable[tuple[Hashable, SubscriptionFilter]] = ()) -> None:
        self._ids: list[Hashable | None] = []
        self._slots: dict[Hashable, int] = {}
        self._maps: dict[Key, BitMap] = {}
        # (low or high, currency, band) -> the distinct bounds of that edge, each with its own bitmap
        self._bounds: dict[tuple[str, str | None, int], set[Decimal]] = {}
        # the keywords of every filter, under their first (up to 3) characters: a notice finds the
        # keywords its text holds by its grams, checking each distinct keyword once
        self._vocabulary: dict[str, set[str]] = {}
        self._dead = BitMap()
        self._bulk_add(subscriptions)

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, subscription_id: object) -> bool:
        return subscription_id in self._slots

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._slots)

    # -- writes -------------------------------------------------------------------------------------

    def add(self, subscription_id: Hashable, flt: SubscriptionFilter) -> None:
        maps = self._maps
        for key in self._place(subscription_id, flt):
            bitmap = maps.get(key)
            if bitmap is None:
                bitmap = maps[key] = BitMap()
            bitmap.add(len(self._ids) - 1)

    def remove(self, subscription_id: Hashable) -> None:
        slot = self._slots.pop(subscription_id)  # KeyError for an unknown id, like dict
        self._ids[slot] = None
        self._dead.add(slot)
        if len(self._dead) >= max(_MIN_PURGE, len(self._slots) // 8):
            self._purge()

    def update(self, subscription_id: Hashable, flt: SubscriptionFilter) -> None:
        if subscription_id in self._slots:
            self.remove(subscription_id)
        self.add(subscription_id, flt)

    def _bulk_add(self, subscriptions: Iterable[tuple[Hashable, SubscriptionFilter]]) -> None:
        pending: defaultdict[Key, array[int]] = defaultdict(lambda: array("I"))
        for subscription_id, flt in subscriptions:
            for key in self._place(subscription_id, flt):
                pending[key].append(len(self._ids) - 1)
        for key, slots in pending.items():
            bitmap = self._maps.get(key)
            if bitmap is None:
                self._maps[key] = BitMap(slots)
            else:
                bitmap.update(slots)

    def _place(self, subscription_id: Hashable, flt: SubscriptionFilter) -> list[Key]:
        """Give the subscription a slot, keep what verification needs, and return its bitmap keys."""
        if subscription_id in self._slots:
            raise KeyError(f"subscription {subscription_id!r} is already indexed; use update")
        slot = len(self._ids)
        self._ids.append(subscription_id)
        self._slots[subscription_id] = slot
        keys: list[Key] = []
        for dimension, values in (
            (_CLASS, flt.classifications),
            (_CATEGORY, flt.categories),
            (_REGION, flt.regions),
            (_INSTITUTION, flt.institutions),
        ):
            if values:
                keys.extend((dimension, value) for value in values)
            else:
                keys.append((dimension, _OPEN))
        if flt.has_value_bounds:
            first = -1 if flt.min_value is None else value_band(flt.min_value)
            last = TOP_BAND + 1 if flt.max_value is None else value_band(flt.max_value)
            currency = flt.currency
            keys.extend((_VALUE, (_INTERIOR, currency, band)) for band in range(first + 1, min(last, TOP_BAND + 1)))
            for side, band, bound in ((_LOW, first, flt.min_value), (_HIGH, last, flt.max_value)):
                if bound is not None and band <= TOP_BAND:
                    keys.append((_VALUE, (side, currency, band)))  # every filter with an edge here
                    keys.append((_VALUE, (side, currency, band, bound)))  # those with this very bound
                    self._bounds.setdefault((side, currency, band), set()).add(bound)
        else:
            keys.append((_VALUE, _OPEN))
        # keywords, sorted: the i-th in a bitmap of position i; the keyword count in its own bitmap
        for position, keyword in enumerate(sorted(flt.keywords)):
            self._vocabulary.setdefault(keyword[:_GRAM], set()).add(keyword)
            keys.append((_KEYWORD, (position, keyword)))
        keys.append((_KEYWORD, (_COUNT, len(flt.keywords))))
        return keys

    def _purge(self) -> None:
        dead = self._dead
        for key in list(self._maps):
            bitmap = self._maps[key]
            bitmap.difference_update(dead)
            if not bitmap:
                del self._maps[key]
                _, value_key = key
                if key[0] == _VALUE and isinstance(value_key, tuple) and len(value_key) == 4:
                    side, currency, band, bound = value_key
                    self._bounds[(side, currency, band)].discard(bound)
        self._dead = BitMap()

    # -- matching -----------------------------------------------------------------------------------

    def match(self, content: NoticeContent, institution_id: str) -> set[Hashable]:
        return self.match_facts(NoticeFacts.of(content, institution_id))

    def match_facts(self, facts: NoticeFacts) -> set[Hashable]:
        ids = self._ids
        return {ids[slot] for slot in self.match_slots(facts)}

    def match_slots(self, facts: NoticeFacts) -> BitMap:
        """The slots of the subscriptions selecting the notice (see :meth:`ids_of`)."""
        get = self._maps.get
        per_dimension: list[tuple[int, list[BitMap]]] = []
        for dimension, keys in (
            (_CLASS, facts.class_keys),
            (_CATEGORY, (facts.category,)),
            (_REGION, facts.region_keys),
            (_INSTITUTION, (facts.institution,)),
        ):
            found = [bitmap for key in (_OPEN, *keys) if (bitmap := get((dimension, key))) is not None]
            if not found:
                return BitMap()
            per_dimension.append((sum(len(bitmap) for bitmap in found), found))
        # the most selective dimension generates the candidates; the others only restrict them, which
        # costs in proportion to the candidates, never a copy of a large (open) bitmap
        per_dimension.sort(key=lambda sized: sized[0])
        candidates = _union(per_dimension[0][1])
        for _, found in per_dimension[1:]:
            candidates = _restrict(candidates, found)
            if not candidates:
                return candidates
        if self._dead:
            candidates = candidates - self._dead
        candidates = self._by_value(candidates, facts)
        return self._by_keywords(candidates, facts) if candidates else candidates

    def ids_of(self, slots: Iterable[int]) -> list[Hashable]:
        ids = self._ids
        return [ids[slot] for slot in slots]

    def _by_value(self, candidates: BitMap, facts: NoticeFacts) -> BitMap:
        get = self._maps.get
        value = facts.value
        open_ = get((_VALUE, _OPEN))
        if value is None:
            return candidates & open_ if open_ is not None else BitMap()
        # the filters without bounds are decided already; only the rest (usually few) go on
        rest = candidates - open_ if open_ is not None else candidates
        if not rest:
            return candidates
        band = value_band(value)
        decided: list[BitMap] = []
        low_edge: list[BitMap] = []  # filters whose lower bound is in this band
        high_edge: list[BitMap] = []
        low_ok: list[BitMap] = []  # ... and whose lower bound the value meets
        high_ok: list[BitMap] = []
        for currency in (None,) if facts.currency is None else (None, facts.currency):
            if (bitmap := get((_VALUE, (_INTERIOR, currency, band)))) is not None:
                decided.append(bitmap)
            for side, edge, ok in ((_LOW, low_edge, low_ok), (_HIGH, high_edge, high_ok)):
                if (bitmap := get((_VALUE, (side, currency, band)))) is None:
                    continue
                edge.append(bitmap)
                for bound in self._bounds.get((side, currency, band), ()):
                    if (value >= bound if side == _LOW else value <= bound) and (
                        found := get((_VALUE, (side, currency, band, bound)))
                    ) is not None:
                        ok.append(found)
        matched = _restrict(rest, decided)
        if low_ok or high_ok:
            # a filter with an edge in this band matches when it meets the bound(s) it has here
            lows, highs = _restrict(rest, low_ok), _restrict(rest, high_ok)
            matched |= (lows - _restrict(rest, high_edge)) | (highs - _restrict(rest, low_edge)) | (lows & highs)
        return (candidates & open_) | matched if open_ is not None else matched

    def _by_keywords(self, candidates: BitMap, facts: NoticeFacts) -> BitMap:
        """Exact, by bitmaps only: at each position i, a candidate passes when it has at most i keywords
        or its i-th keyword (in sorted order) occurs in the text; passing every position means having
        every keyword in the text."""
        get = self._maps.get
        by_count = [get((_KEYWORD, (_COUNT, count))) for count in range(MAX_KEYWORDS + 1)]
        most = max((count for count, bitmap in enumerate(by_count) if bitmap is not None), default=0)
        if not most:
            return candidates
        without = by_count[0]  # no keywords: decided already; only the rest (usually few) go on
        rest = candidates - without if without is not None else candidates
        if not rest:
            return candidates
        present = self._present_keywords(facts.text)
        for position in range(most):
            fewer = [bitmap for bitmap in by_count[1 : position + 1] if bitmap is not None]
            here = [bitmap for keyword in present if (bitmap := get((_KEYWORD, (position, keyword)))) is not None]
            rest = _restrict(rest, fewer + here)
            if not rest:
                break
        return (candidates & without) | rest if without is not None else rest

    def _present_keywords(self, text: str) -> set[str]:
        vocabulary = self._vocabulary
        if not vocabulary:
            return set()
        present: set[str] = set()
        for gram in _grams(text, range(1, _GRAM + 1)):
            for keyword in vocabulary.get(gram, ()):
                if keyword in text:
                    present.add(keyword)
        return present

    def stats(self) -> dict[str, int]:
        return {
            "subscriptions": len(self._slots),
            "slots": len(self._ids),
            "tombstones": len(self._dead),
            "bitmaps": len(self._maps),
            "bitmap_entries": sum(len(b) for b in self._maps.values()),
            "bitmap_bytes": sum(_bytes(b) for b in self._maps.values()),
        }


def _bytes(bitmap: BitMap) -> int:
    statistics = bitmap.get_statistics()
    return int(
        statistics["n_bytes_array_containers"]
        + statistics["n_bytes_run_containers"]
        + statistics["n_bytes_bitset_containers"]
    )


def _union(bitmaps: list[BitMap]) -> BitMap:
    return BitMap.union(*bitmaps) if bitmaps else BitMap()


def _restrict(candidates: BitMap, bitmaps: list[BitMap]) -> BitMap:
    """The candidates in any of the bitmaps. The first (an open bitmap, often most of the
    subscriptions) is intersected on its own rather than copied into a union; the rest, per-key
    bitmaps, are unioned in one call first."""
    if not bitmaps:
        return BitMap()
    result = candidates & bitmaps[0]
    if len(bitmaps) == 2:
        result |= candidates & bitmaps[1]
    elif len(bitmaps) > 2:
        result |= candidates & BitMap.union(*bitmaps[1:])
    return result
