"""Subscription matching: the indexes (the bitmap matcher the hub uses, and the planned index) return
exactly what the linear scan returns, without scanning."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from hub.notices.model import NoticeContent, NoticeValidationError
from hub.subscriptions.bitmap_index import BitmapIndex
from hub.subscriptions.filters import NoticeFacts, SubscriptionFilter
from hub.subscriptions.matching import SubscriptionIndex
from tests.support.subscriptions import linear_scan_match

CPV = ["45233140-2", "45233120-6", "45210000-2", "30213100-6", "72000000-5", "79710000-4", "90910000-9"]
UNSPSC = ["43211503", "72141100", "56101700", "80111600"]
PPS_GOODS = ["4321150301", "4321150302", "5610170001"]  # 세부품명번호: UNSPSC + 2 digits
PPS_PUBLIC = ["76121598", "81112299", "72101599"]  # 공공조달분류번호
REGIONS = ["KR-11", "KR-26", "KR-41", "KR-49", "KR", "JP-13"]
INDEXES = [BitmapIndex, SubscriptionIndex]
WORDS = ["도로", "포장", "road", "Paving", "청소", "software", "보안", "cctv", "유지보수", "desk"]


def notice(**overrides: Any) -> NoticeContent:
    data: dict[str, Any] = {
        "title": "서울 도로 포장 공사 (Road paving)",
        "description": "Arterial road resurfacing",
        "category": "works",
        "classifications": [{"scheme": "CPV", "code": "45233140-2"}],
        "delivery_region": "KR-11",
        "estimated_value": "1250000000",
        "currency": "KRW",
        "dates": {"published": "2025-03-03T09:00:00+09:00"},
    }
    data.update(overrides)
    return NoticeContent.parse(data)


def both(filters: dict[str, SubscriptionFilter], content: NoticeContent, institution: str = "org-1") -> set[Any]:
    expected = linear_scan_match(filters, content, institution)
    for kind in INDEXES:
        assert kind(filters.items()).match(content, institution) == expected, kind.__name__
    return expected


def test_classification_prefix_matches_descendant_codes() -> None:
    filters = {
        "division": SubscriptionFilter(classifications=("45",)),
        "group": SubscriptionFilter(classifications=("CPV:452",)),
        "exact-with-check-digit": SubscriptionFilter(classifications=("45233140-2",)),
        "other-division": SubscriptionFilter(classifications=("30",)),
        "unspsc-only": SubscriptionFilter(classifications=("UNSPSC:45",)),
        "any-of": SubscriptionFilter(classifications=("30", "4523")),
    }
    assert both(filters, notice()) == {"division", "group", "exact-with-check-digit", "any-of"}
    unspsc = notice(classifications=[{"scheme": "UNSPSC", "code": "45111600"}])
    assert both(filters, unspsc) == {"division", "unspsc-only"}
    assert both(filters, notice(classifications=[])) == set()


def test_unconstrained_dimensions_are_wildcards() -> None:
    filters = {
        "everything": SubscriptionFilter(),
        "works": SubscriptionFilter(categories=("works",)),
        "goods": SubscriptionFilter(categories=("goods",)),
        "seoul": SubscriptionFilter(regions=("KR-11",)),
        "korea": SubscriptionFilter(regions=("KR",)),
        "busan": SubscriptionFilter(regions=("KR-26",)),
        "institution": SubscriptionFilter(institutions=("org-1", "org-9")),
        "other-institution": SubscriptionFilter(institutions=("org-2",)),
    }
    assert both(filters, notice()) == {"everything", "works", "seoul", "korea", "institution"}
    assert both(filters, notice(delivery_region="KR")) == {"everything", "works", "korea", "institution"}
    assert both(filters, notice(delivery_region=None)) == {"everything", "works", "institution"}


def test_value_bounds_and_notices_without_value() -> None:
    filters = {
        "none": SubscriptionFilter(),
        "at-least-1e9": SubscriptionFilter(min_value=Decimal("1000000000")),
        "at-most-1e9": SubscriptionFilter(max_value=Decimal("1000000000")),
        "band": SubscriptionFilter(min_value=Decimal("1e9"), max_value=Decimal("2e9"), currency="KRW"),
        "band-usd": SubscriptionFilter(min_value=Decimal("1e9"), max_value=Decimal("2e9"), currency="USD"),
        "inclusive": SubscriptionFilter(min_value=Decimal("1250000000"), max_value=Decimal("1250000000")),
        "huge": SubscriptionFilter(min_value=Decimal("1e20")),
    }
    assert both(filters, notice()) == {"none", "at-least-1e9", "band", "inclusive"}
    assert both(filters, notice(estimated_value=None, currency=None)) == {"none"}
    assert both(filters, notice(estimated_value="0")) == {"none", "at-most-1e9"}
    assert both(filters, notice(estimated_value="1e21")) == {"none", "at-least-1e9", "huge"}


def test_keywords_are_all_of_and_case_insensitive_substrings() -> None:
    filters = {
        "road": SubscriptionFilter(keywords=("ROAD",)),
        "road-and-paving": SubscriptionFilter(keywords=("road", "paving")),
        "road-and-cctv": SubscriptionFilter(keywords=("road", "cctv")),
        "korean-substring": SubscriptionFilter(keywords=("도로",)),  # "도로" inside "도로를" matches too
        "in-description": SubscriptionFilter(keywords=("resurfacing",)),
        "one-char": SubscriptionFilter(keywords=("서",)),
    }
    assert both(filters, notice()) == {"road", "road-and-paving", "korean-substring", "in-description", "one-char"}
    assert both(filters, notice(title="도로를 정비", description="")) == {"korean-substring"}


def test_all_dimensions_combine_with_and() -> None:
    precise = SubscriptionFilter(
        classifications=("CPV:4523",), categories=("works",), regions=("KR-11",), institutions=("org-1",),
        min_value=Decimal("1e9"), keywords=("paving",),
    )
    assert both({"p": precise}, notice()) == {"p"}
    assert both({"p": precise}, notice(), institution="org-2") == set()
    assert both({"p": precise}, notice(delivery_region="KR-26")) == set()


@pytest.mark.parametrize("kind", INDEXES)
def test_remove_and_update(kind: type[BitmapIndex | SubscriptionIndex]) -> None:
    index = kind()
    index.add("a", SubscriptionFilter(classifications=("45",)))
    index.add("b", SubscriptionFilter(regions=("KR-11",)))
    assert index.match(notice(), "org-1") == {"a", "b"}
    index.remove("a")
    assert "a" not in index and len(index) == 1
    assert index.match(notice(), "org-1") == {"b"}
    index.update("b", SubscriptionFilter(regions=("KR-26",)))
    assert index.match(notice(), "org-1") == set()
    index.update("a", SubscriptionFilter(keywords=("road",)))  # update of an absent id adds it
    assert index.match(notice(), "org-1") == {"a"}
    with pytest.raises(KeyError):
        index.add("a", SubscriptionFilter())
    with pytest.raises(KeyError):
        index.remove("missing")


@pytest.mark.parametrize("kind", INDEXES)
def test_compaction_after_many_removals_keeps_results(kind: type[BitmapIndex | SubscriptionIndex]) -> None:
    index = kind((i, SubscriptionFilter(classifications=("45",))) for i in range(3000))
    for i in range(0, 3000, 2):
        index.remove(i)
    assert index.stats()["tombstones"] < 1500  # compacted at least once
    assert index.match(notice(), "org-1") == set(range(1, 3000, 2))


def test_pps_schemes_match_by_their_own_prefixes() -> None:
    filters = {
        "public-class": SubscriptionFilter(classifications=("PPS-PUBLIC:7612",)),
        "public-exact": SubscriptionFilter(classifications=("pps-public:76121598",)),
        "bare-digits": SubscriptionFilter(classifications=("7612",)),
        "unspsc-digits": SubscriptionFilter(classifications=("UNSPSC:7612",)),
        "goods-detail": SubscriptionFilter(classifications=("PPS-GOODS:4321150301",)),
        "goods-class": SubscriptionFilter(classifications=("PPS-GOODS:43211503",)),
        "other-detail": SubscriptionFilter(classifications=("PPS-GOODS:4321150302",)),
        "bare-detail": SubscriptionFilter(classifications=("4321150301",)),
        "unspsc-class": SubscriptionFilter(classifications=("UNSPSC:43211503",)),
    }
    services = notice(category="services", classifications=[{"scheme": "PPS-PUBLIC", "code": "76121598"}])
    assert both(filters, services) == {"public-class", "public-exact", "bare-digits"}
    goods = notice(category="goods", classifications=[{"scheme": "UNSPSC", "code": "43211503"},
                                                      {"scheme": "PPS-GOODS", "code": "4321150301"}])
    assert both(filters, goods) == {"goods-detail", "goods-class", "bare-detail", "unspsc-class"}


def test_filter_validation_names_fields() -> None:
    with pytest.raises(NoticeValidationError) as caught:
        SubscriptionFilter(classifications=("45", "CPV:abc"), categories=("food",), regions=("Seoul",),
                           min_value=Decimal(5), max_value=Decimal(1), currency="XYZ", keywords=(" ",))
    assert {p for p, _ in caught.value.problems} == {
        "classifications.1", "categories.0", "regions.0", "max_value", "currency", "keywords"}
    parsed = SubscriptionFilter.parse({"classifications": ["cpv:45", "45233140-2"], "min_value": "1e6",
                                       "keywords": ["Road", "road"]})
    assert parsed.classifications == ("CPV:45", "45233140") and parsed.keywords == ("road",)
    assert parsed.min_value == Decimal("1e6")
    with pytest.raises(NoticeValidationError) as caught:
        SubscriptionFilter(classifications=("PPS-GOODS:43211503011", "PPS:7612", "PPS-PUBLIC:"))
    assert {p for p, _ in caught.value.problems} == {"classifications.0", "classifications.1", "classifications.2"}
    assert "PPS-PUBLIC:" in caught.value.problems[0][1]  # the message lists the schemes
    with pytest.raises(NoticeValidationError) as caught:
        SubscriptionFilter.parse({"regions": "KR-11", "min_value": "lots", "colour": "red"})
    assert {p for p, _ in caught.value.problems} == {"regions", "min_value", "colour"}


def random_filter(rng: random.Random) -> SubscriptionFilter:
    def some(pool: list[str], most: int) -> tuple[str, ...]:
        return tuple(rng.sample(pool, rng.randint(1, most))) if rng.random() < 0.6 else ()

    prefixes = tuple(
        rng.choice(["", "CPV:", "UNSPSC:", "PPS-GOODS:", "PPS-PUBLIC:"]) + code.replace("-", "")[: rng.randint(1, 10)]
        for code in (some(CPV + UNSPSC + PPS_GOODS + PPS_PUBLIC, 3))
    )
    low = Decimal(10) ** rng.randint(5, 11) if rng.random() < 0.3 else None
    high = (low or Decimal(1)) * rng.choice([1, 10, 1000, 10**9]) if rng.random() < 0.3 else None
    return SubscriptionFilter(
        classifications=prefixes,
        categories=some(["goods", "services", "works"], 2),
        regions=some(REGIONS, 2),
        institutions=tuple(f"org-{i}" for i in rng.sample(range(6), rng.randint(1, 2))) if rng.random() < 0.2 else (),
        min_value=low,
        max_value=high,
        currency=rng.choice([None, "KRW", "USD"]),
        keywords=tuple(rng.sample(WORDS, rng.randint(1, 2))) if rng.random() < 0.25 else (),
    )


def random_notice(rng: random.Random) -> tuple[NoticeContent, str]:
    codes = rng.sample(CPV, rng.randint(0, 2))
    classifications = [{"scheme": "CPV", "code": c} for c in codes]
    classifications += [{"scheme": "UNSPSC", "code": c} for c in rng.sample(UNSPSC, rng.randint(0, 1))]
    classifications += [{"scheme": "PPS-GOODS", "code": c} for c in rng.sample(PPS_GOODS, rng.randint(0, 1))]
    classifications += [{"scheme": "PPS-PUBLIC", "code": c} for c in rng.sample(PPS_PUBLIC, rng.randint(0, 1))]
    has_value = rng.random() < 0.8
    content = NoticeContent.parse({
        "title": " ".join(rng.sample(WORDS, 3)),
        "description": " ".join(rng.sample(WORDS, 2)).upper(),
        "category": rng.choice(["goods", "services", "works"]),
        "classifications": classifications,
        "delivery_region": rng.choice([*REGIONS, None]),
        "estimated_value": str(rng.randint(0, 10**12)) if has_value else None,
        "currency": rng.choice(["KRW", "USD"]) if has_value else None,
        "dates": {"published": "2025-03-03T09:00:00+09:00"},
    })
    return content, f"org-{rng.randrange(6)}"


@pytest.mark.parametrize("kind", INDEXES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_index_equals_linear_scan_on_random_subscriptions(
    seed: int, kind: type[BitmapIndex | SubscriptionIndex]
) -> None:
    rng = random.Random(seed)
    filters = {f"s{i}": random_filter(rng) for i in range(2000)}
    index = kind(filters.items())
    total = 0
    for _ in range(120):
        content, institution = random_notice(rng)
        expected = linear_scan_match(filters, content, institution)
        assert index.match(content, institution) == expected
        total += len(expected)
    assert total > 0  # the generator produces matches, so the comparison is not vacuous
    # churn: remove a third, update a third, then compare again
    for i, key in enumerate(list(filters)):
        if i % 3 == 0:
            index.remove(key)
            del filters[key]
        elif i % 3 == 1:
            filters[key] = random_filter(rng)
            index.update(key, filters[key])
    for _ in range(100):
        content, institution = random_notice(rng)
        facts = NoticeFacts.of(content, institution)
        assert index.match_facts(facts) == linear_scan_match(filters.items(), facts)
