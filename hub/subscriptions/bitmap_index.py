"""The matcher: compressed bitmaps (pyroaring) of integer subscription slots, one per key per dimension.

Every subscription gets a dense integer slot once, when it is added; from then on matching works on
slots only and maps the final bitmap back to subscription ids once per notice.

Per dimension, a bitmap per key, one ``open`` bitmap of the subscriptions that leave the dimension
unconstrained and one of those that constrain it. A notice's candidates in a dimension are ``open |
bitmaps of its keys``; the most selective dimension generates the candidates, every other one only
drops some: category and region by one intersection with a kept union (their keys are few), the
others by removing "candidates constraining the dimension minus those with one of the notice's keys"
(which touches only the constraining filters); a dimension nobody constrains is skipped.
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
  A filter's sorted keywords are in one bitmap per (position, keyword), and it is in the bitmap of the
  filters having an i-th keyword for each of its positions; at position i a candidate with an i-th
  keyword fails unless that keyword is in the text, so passing every position is exactly "all
  keywords occur", with no per-filter check.
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
from hub.subscriptions.filters import NoticeFacts, SubscriptionFilter

__all__ = ["BitmapIndex", "value_band"]

_CLASS, _CATEGORY, _REGION, _INSTITUTION, _VALUE, _KEYWORD = range(6)
_OPEN = None  # the key of a dimension's open bitmap
_CONSTRAINED = ("constrained",)  # the key of the bitmap of every filter constraining a dimension
_INTERIOR, _LOW, _HIGH = "interior", "low", "high"
_TOP_DECADE = 15
TOP_BAND = 1 + (_TOP_DECADE + 1) * 3  # values of 10^16 and above share it
_GRAM = 3
_MIN_PURGE = 1024
_KEPT_UNIONS = frozenset({_CATEGORY, _REGION})  # dimensions with few keys: their unions are kept
_MAX_KEPT_UNIONS = 512

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


class BitmapIndex:
    """Add, update and remove subscriptions; ``match_facts`` returns the ids whose filters select a
    notice (``match_slots`` the integer slots). The same interface as the planned index it replaces."""

    __slots__ = ("_bounds", "_dead", "_ids", "_maps", "_slots", "_unions", "_vocabulary")

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
        # (category or region, the notice's keys) -> open | their bitmaps, kept up to date by add
        self._unions: dict[tuple[int, tuple[str, ...]], BitMap] = {}
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
        keys = self._place(subscription_id, flt)
        slot = len(self._ids) - 1
        for key in keys:
            bitmap = maps.get(key)
            if bitmap is None:
                bitmap = maps[key] = BitMap()
            bitmap.add(slot)
        if self._unions:
            placed = set(keys)
            for (dimension, union_keys), union in self._unions.items():
                if (dimension, _OPEN) in placed or any((dimension, key) in placed for key in union_keys):
                    union.add(slot)

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
        self._unions.clear()
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
                keys.append((dimension, _CONSTRAINED))
            else:
                keys.append((dimension, _OPEN))
        if flt.has_value_bounds:
            first = -1 if flt.min_value is None else value_band(flt.min_value)
            last = TOP_BAND + 1 if flt.max_value is None else value_band(flt.max_value)
            currency = flt.currency
            keys.append((_VALUE, _CONSTRAINED))
            keys.extend((_VALUE, (_INTERIOR, currency, band)) for band in range(first + 1, min(last, TOP_BAND + 1)))
            for side, band, bound in ((_LOW, first, flt.min_value), (_HIGH, last, flt.max_value)):
                if bound is not None and band <= TOP_BAND:
                    keys.append((_VALUE, (side, currency, band)))  # every filter with an edge here
                    keys.append((_VALUE, (side, currency, band, bound)))  # those with this very bound
                    self._bounds.setdefault((side, currency, band), set()).add(bound)
        else:
            keys.append((_VALUE, _OPEN))
        # keywords, sorted: the i-th in a bitmap of (position i, keyword) and in the bitmap of the filters
        # having an i-th keyword (position 0: every filter with keywords, the dimension's constrained set)
        for position, keyword in enumerate(sorted(flt.keywords)):
            self._vocabulary.setdefault(keyword[:_GRAM], set()).add(keyword)
            keys.append((_KEYWORD, (position, keyword)))
            keys.append((_KEYWORD, _CONSTRAINED if position == 0 else position))
        if not flt.keywords:
            keys.append((_KEYWORD, _OPEN))
        return keys

    def _purge(self) -> None:
        dead = self._dead
        self._unions.clear()
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
        """The slots of the subscriptions selecting the notice (see :meth:`ids_of`).

        The most selective dimension generates the candidates; every other one only drops some. A
        dimension that no filter constrains is skipped. Category and region, whose keys are few, are
        each one intersection with a kept union (open | the notice's keys); classification and
        institution drop "the candidates constraining the dimension minus those with a key", which
        touches only the constraining filters. Operations build new bitmaps: pyroaring's in-place
        forms measured slower here."""
        get = self._maps.get
        steps: list[tuple[int, int, tuple[str, ...], BitMap | None, list[BitMap], BitMap]] = []
        everyone: BitMap | None = None
        for dimension, keys in (
            (_CLASS, tuple(facts.class_keys)),
            (_CATEGORY, (facts.category,)),
            (_REGION, facts.region_keys),
            (_INSTITUTION, (facts.institution,)),
        ):
            open_ = get((dimension, _OPEN))
            constrained = get((dimension, _CONSTRAINED))
            if constrained is None:
                everyone = open_  # nobody constrains it: its open bitmap holds every slot
                continue
            found = [bitmap for key in keys if (bitmap := get((dimension, key))) is not None]
            size = (0 if open_ is None else len(open_)) + sum(len(bitmap) for bitmap in found)
            if not size:
                return BitMap()
            steps.append((size, dimension, keys, open_, found, constrained))
        if steps:
            steps.sort(key=lambda step: step[0])
            _, dimension, keys, open_, found, _ = steps[0]
            candidates = self._allowed(dimension, keys, open_, found)
            # one intersection each first (they shrink the candidates most), then the others
            steps[1:] = sorted(steps[1:], key=lambda step: step[1] not in _KEPT_UNIONS)
            for _, dimension, keys, open_, found, constrained in steps[1:]:
                if dimension in _KEPT_UNIONS:
                    candidates = candidates & self._allowed(dimension, keys, open_, found)
                else:
                    unmatched = candidates & constrained
                    for bitmap in found:
                        unmatched = unmatched - bitmap
                    candidates = candidates - unmatched
                if not candidates:
                    return candidates
        elif everyone is None:
            return BitMap()  # nothing indexed
        else:
            candidates = everyone
        if self._dead:
            candidates = candidates - self._dead
        candidates = self._by_value(candidates, facts)
        return self._by_keywords(candidates, facts) if candidates else candidates

    def _allowed(self, dimension: int, keys: tuple[str, ...], open_: BitMap | None, found: list[BitMap]) -> BitMap:
        """The filters of the dimension that leave it open or have one of the keys (not to be changed:
        it may be a kept union, updated as filters are added)."""
        if dimension in _KEPT_UNIONS:
            kept = self._unions.get((dimension, keys))
            if kept is not None:
                return kept
        bitmaps = found if open_ is None else [open_, *found]
        allowed = BitMap.union(*bitmaps) if len(bitmaps) > 1 else BitMap(bitmaps[0])
        if dimension in _KEPT_UNIONS:
            if len(self._unions) >= _MAX_KEPT_UNIONS:
                self._unions.clear()
            self._unions[(dimension, keys)] = allowed
        return allowed

    def ids_of(self, slots: Iterable[int]) -> list[Hashable]:
        ids = self._ids
        return [ids[slot] for slot in slots]

    def _by_value(self, candidates: BitMap, facts: NoticeFacts) -> BitMap:
        """The candidates whose value bounds (if any) the notice's value meets."""
        get = self._maps.get
        constrained = get((_VALUE, _CONSTRAINED))
        if constrained is None:
            return candidates
        rest = candidates & constrained  # the filters without bounds are decided already
        if not rest:
            return candidates
        value = facts.value
        if value is None:
            return candidates - rest
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
        return candidates - (rest - matched)

    def _by_keywords(self, candidates: BitMap, facts: NoticeFacts) -> BitMap:
        """The candidates whose keywords (if any) all occur in the text, by bitmaps only: at each
        position i, a filter with an i-th keyword (in sorted order) fails unless that keyword occurs in
        the text; passing every position means having every keyword in the text."""
        get = self._maps.get
        constrained = get((_KEYWORD, _CONSTRAINED))
        if constrained is None:
            return candidates
        rest = candidates & constrained  # those without keywords are decided already
        if not rest:
            return candidates
        present = self._present_keywords(facts.text)
        if not present:
            return candidates - rest
        passing, position = rest, 0
        having: BitMap | None = constrained
        while having is not None and passing:
            failing = passing & having
            for keyword in present:
                if failing and (bitmap := get((_KEYWORD, (position, keyword)))) is not None:
                    failing = failing - bitmap
            passing = passing - failing
            position += 1
            having = get((_KEYWORD, position))
        return candidates - (rest - passing)

    def _present_keywords(self, text: str) -> set[str]:
        """The vocabulary's keywords occurring in the text: each keyword under a prefix the text
        holds is checked once, as a substring."""
        vocabulary = self._vocabulary
        if not vocabulary:
            return set()
        grams = {text[i : i + n] for n in range(1, _GRAM + 1) for i in range(len(text) - n + 1)}
        return {keyword for gram in grams & vocabulary.keys() for keyword in vocabulary[gram] if keyword in text}

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


def _restrict(candidates: BitMap, bitmaps: list[BitMap]) -> BitMap:
    """The candidates in any of the bitmaps, without building their (possibly large) union."""
    if not bitmaps:
        return BitMap()
    result = candidates & bitmaps[0]
    for bitmap in bitmaps[1:]:
        result |= candidates & bitmap
    return result
