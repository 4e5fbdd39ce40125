"""The bitmap matcher agrees with the linear scan: a property test over random subscriptions, notices,
removals and updates (every dimension, open ones included), and the value bands' edges."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.subscriptions.bitmap_index import TOP_BAND, BitmapIndex, value_band
from hub.subscriptions.filters import NoticeFacts, SubscriptionFilter
from hub.subscriptions.index_cache import IndexCache
from tests.support.subscriptions import linear_scan_match

SCHEMES = ["", "CPV:", "UNSPSC:", "PPS-GOODS:", "PPS-PUBLIC:"]
DIGITS = ["4523314", "4521", "3021", "7200", "4321150301", "7612159", "8111"]
REGIONS = ["KR-11", "KR-26", "KR-41", "KR", "JP-13", "JP"]
WORDS = ["도로", "포장", "road", "pav", "a", "청소", "software", "보안", "cctv", "ai"]
INSTITUTIONS = ["org-1", "org-2", "org-3"]
CURRENCIES = ["KRW", "USD"]
# values around band edges: powers of ten, band boundaries (2x, 5x), just off them, fractions
VALUES = [
    Decimal(v)
    for v in (
        "0",
        "0.5",
        "1",
        "1.99",
        "2",
        "4.999",
        "5",
        "9.99",
        "10",
        "1000000",
        "1999999.99",
        "2000000",
        "2000000.01",
        "5000000",
        "99999999",
        "100000000",
        "1e16",
        "3e17",
    )
]

prefixes = st.builds(
    lambda scheme, digits, n: scheme + digits[:n], st.sampled_from(SCHEMES), st.sampled_from(DIGITS), st.integers(1, 10)
)
values = st.one_of(st.sampled_from(VALUES), st.decimals(min_value=0, max_value=10**13, places=2))


@st.composite
def filters(draw: st.DrawFn) -> SubscriptionFilter:
    low = draw(st.none() | values)
    high = draw(st.none() | values)
    if low is not None and high is not None and low > high:
        low, high = high, low
    return SubscriptionFilter(
        classifications=tuple(draw(st.lists(prefixes, max_size=3))),
        categories=tuple(draw(st.lists(st.sampled_from(["goods", "services", "works"]), max_size=2))),
        regions=tuple(draw(st.lists(st.sampled_from(REGIONS), max_size=2))),
        institutions=tuple(draw(st.lists(st.sampled_from(INSTITUTIONS), max_size=2))),
        min_value=low,
        max_value=high,
        currency=draw(st.sampled_from([None, *CURRENCIES])),
        keywords=tuple(draw(st.lists(st.sampled_from(WORDS), max_size=3))),
    )


@st.composite
def notices(draw: st.DrawFn) -> NoticeFacts:
    keys: set[str] = set()
    for _ in range(draw(st.integers(0, 2))):
        scheme, digits = draw(st.sampled_from(SCHEMES[1:])), draw(st.sampled_from(DIGITS))
        for n in range(1, len(digits) + 1):
            keys |= {digits[:n], f"{scheme[:-1]}:{digits[:n]}"}
    region = draw(st.none() | st.sampled_from(["KR-11", "KR-26", "KR-41", "JP-13"]))
    value = draw(st.none() | values)
    return NoticeFacts(
        class_keys=frozenset(keys),
        category=draw(st.sampled_from(["goods", "services", "works"])),
        region_keys=() if region is None else (region, region[:2]),
        institution=draw(st.sampled_from(INSTITUTIONS)),
        value=value,
        currency=None if value is None else draw(st.none() | st.sampled_from(CURRENCIES)),
        text=" ".join(draw(st.lists(st.sampled_from([*WORDS, "paving", "Road", "other"]), max_size=6))).casefold(),
    )


# an operation on the subscription set: add/update ("put") a filter at a key, or remove a key
operations = st.lists(st.tuples(st.sampled_from(["put", "remove"]), st.integers(0, 40), filters()), max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(filters(), max_size=40), operations, st.lists(notices(), min_size=1, max_size=8))
def test_bitmap_index_agrees_with_linear_scan(
    initial: list[SubscriptionFilter], changes: list[tuple[str, int, SubscriptionFilter]], facts: list[NoticeFacts]
) -> None:
    current = dict(enumerate(initial))
    index = BitmapIndex(current.items())
    for notice in facts:
        assert index.match_facts(notice) == linear_scan_match(current.items(), notice)
    for operation, key, flt in changes:
        if operation == "put":
            index.update(key, flt)
            current[key] = flt
        elif key in current:
            index.remove(key)
            del current[key]
    assert len(index) == len(current)
    for notice in facts:
        assert index.match_facts(notice) == linear_scan_match(current.items(), notice)


def test_many_removals_are_purged_and_results_kept() -> None:
    index = BitmapIndex((i, SubscriptionFilter(keywords=("road",), min_value=Decimal(5))) for i in range(3000))
    for i in range(0, 3000, 2):
        index.remove(i)
    assert index.stats()["tombstones"] < 1500  # purged at least once
    facts = NoticeFacts(frozenset(), "works", (), "org-1", Decimal(7), "KRW", "road works")
    assert index.match_facts(facts) == set(range(1, 3000, 2))


def test_value_bands_are_monotonic_and_cover_the_edges() -> None:
    ordered = sorted({*VALUES, Decimal("0.001"), Decimal("123456789.123"), Decimal("1e15"), Decimal("9.99e15")})
    bands = [value_band(v) for v in ordered]
    assert bands == sorted(bands)
    assert value_band(Decimal("0.99")) == 0 < value_band(Decimal(1))
    assert value_band(Decimal("1.99")) < value_band(Decimal(2)) == value_band(Decimal("4.99")) < value_band(Decimal(5))
    assert value_band(Decimal("9.99")) < value_band(Decimal(10))
    assert value_band(Decimal("1e16")) == value_band(Decimal("1e30")) == TOP_BAND


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1999999.99"), set()),  # same band as the lower edge, below it
        (Decimal("2000000"), {"range", "from"}),  # exactly on the lower bound (inclusive)
        (Decimal("3000000"), {"range", "from"}),  # the lower edge's band, above the bound
        (Decimal("6000000"), {"range", "from"}),  # an interior band: decided by the band alone
        (Decimal("20000000"), {"range", "from"}),  # exactly the upper bound (inclusive)
        (Decimal("20000000.01"), {"from"}),  # upper edge's band, just above it
        (Decimal("1e20"), {"from"}),  # the top band, open-ended filter
    ],
)
def test_edge_bands_are_checked_exactly(value: Decimal, expected: set[str]) -> None:
    index = BitmapIndex(
        [
            ("range", SubscriptionFilter(min_value=Decimal(2_000_000), max_value=Decimal(20_000_000))),
            ("from", SubscriptionFilter(min_value=Decimal(2_000_000), currency="KRW")),
        ]
    )
    assert index.match_facts(NoticeFacts(frozenset(), "goods", (), "org-1", value, "KRW", "")) == expected
    assert index.match_facts(NoticeFacts(frozenset(), "goods", (), "org-1", value, "USD", "")) == expected - {"from"}


def test_bounds_that_are_not_floats_are_compared_as_decimals() -> None:
    low = Decimal("1000000.0000000000000000001")  # float(low) == 1000000.0
    index = BitmapIndex([("s", SubscriptionFilter(min_value=low))])
    at = NoticeFacts(frozenset(), "goods", (), "org-1", Decimal(1_000_000), None, "")
    assert index.match_facts(at) == set()
    above = NoticeFacts(frozenset(), "goods", (), "org-1", Decimal("1000000.0000000000000000002"), None, "")
    assert index.match_facts(above) == {"s"}


def test_kept_unions_follow_later_additions_and_removals() -> None:
    """Category and region unions are kept between notices: filters added after a match (open, by
    country, by region, by category) must be in the next match, removed ones not."""
    index = BitmapIndex([("seoul", SubscriptionFilter(regions=("KR-11",)))])
    facts = NoticeFacts(frozenset({"45", "CPV:45"}), "works", ("KR-11", "KR"), "org-1", None, None, "road")
    assert index.match_facts(facts) == {"seoul"}
    index.add("open", SubscriptionFilter())
    index.add("country", SubscriptionFilter(regions=("KR",), categories=("works",)))
    index.add("busan", SubscriptionFilter(regions=("KR-26",)))
    index.add("goods", SubscriptionFilter(categories=("goods",)))
    assert index.match_facts(facts) == {"seoul", "open", "country"}
    index.remove("seoul")
    index.update("country", SubscriptionFilter(regions=("JP",)))
    assert index.match_facts(facts) == {"open"}


def test_the_cache_hands_over_the_index_id_strings_once_each() -> None:
    filters = {f"sub-{n}": SubscriptionFilter(keywords=("road",) if n % 2 else ()) for n in range(50)}

    class Log:
        def last_change(self) -> int:
            return 0

        def changes_after(self, floor: int) -> list[tuple[int, str]]:
            return []

        def matchable_filters(self, ids: Sequence[str] | None = None) -> dict[str, SubscriptionFilter]:
            return {sid: flt for sid, flt in filters.items() if ids is None or sid in ids}

    cache = IndexCache()
    cache.sync(Log())
    facts = NoticeFacts(frozenset(), "works", (), "org-1", None, None, "a road")
    matched = cache.match(facts)
    assert isinstance(matched, list) and sorted(matched) == sorted(filters)
    assert cache.match(NoticeFacts(frozenset(), "works", (), "org-1", None, None, "")) == [
        f"sub-{n}" for n in range(0, 50, 2)]
