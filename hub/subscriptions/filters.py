"""Subscription filters and the reference (linear scan) semantics of matching a notice against them.

Semantics, shared by the index in ``matching.py`` (which must return exactly what the scan returns):
- dimensions combine with AND; an empty dimension does not constrain;
- classifications: any prefix matches a code of the notice; ``CPV:45`` only CPV codes, a bare ``45``
  codes of any scheme (CPV, UNSPSC and the PPS schemes' digits mean different things, so qualify when it
  matters: ``PPS-PUBLIC:7612`` for Korean services by 공공조달분류번호);
- categories, institutions: any-of, exact;
- regions: any-of; ``KR-11`` matches exactly, a country code ``KR`` matches every ``KR-*`` region and
  ``KR`` itself; a notice without a region only matches filters without regions;
- value: ``min_value``/``max_value`` inclusive, in ``currency`` when given; a notice without a value
  only matches filters without bounds;
- keywords: all must occur (case-insensitive substring, so Korean words with particles still match)
  in title + description.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from hub.notices.codes import (
    CLASSIFICATION_PREFIX_HINT,
    check_currency,
    check_region,
    classification_digits,
    classification_prefix,
    region_country,
)
from hub.notices.model import Category, FieldProblem, NoticeContent, NoticeValidationError

__all__ = ["NoticeFacts", "SubscriptionFilter"]

MAX_KEYWORDS = 20


@dataclass(frozen=True, slots=True)
class NoticeFacts:
    """What matching needs from a notice, computed once per notice instead of once per filter."""

    class_keys: frozenset[str]
    category: str
    region_keys: tuple[str, ...]
    institution: str
    value: Decimal | None
    currency: str | None
    text: str

    @classmethod
    def of(cls, content: NoticeContent, institution_id: str) -> NoticeFacts:
        keys: set[str] = set()
        for item in content.classifications:
            digits = classification_digits(item.code)
            for length in range(1, len(digits) + 1):
                keys.add(digits[:length])
                keys.add(f"{item.scheme.value}:{digits[:length]}")
        region = content.delivery_region
        region_keys: tuple[str, ...] = ()
        if region is not None:
            country = region_country(region)
            region_keys = (region,) if country == region else (region, country)
        return cls(
            class_keys=frozenset(keys),
            category=content.category.value,
            region_keys=region_keys,
            institution=institution_id,
            value=content.estimated_value,
            currency=content.currency,
            text=f"{content.title}\n{content.description}".casefold(),
        )


@dataclass(frozen=True, slots=True)
class SubscriptionFilter:
    """Normalised on construction (upper-case schemes, casefolded keywords, no duplicates)."""

    classifications: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    institutions: tuple[str, ...] = ()
    min_value: Decimal | None = None
    max_value: Decimal | None = None
    currency: str | None = None
    keywords: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems: list[FieldProblem] = []
        prefixes = []
        for index, raw in enumerate(self.classifications):
            found = classification_prefix(raw)
            if found is None:
                problems.append((f"classifications.{index}", CLASSIFICATION_PREFIX_HINT))
            else:
                scheme, digits = found
                prefixes.append(f"{scheme}:{digits}" if scheme else digits)
        categories = [str(c) for c in self.categories]
        for index, category in enumerate(categories):
            if category not in Category.__members__.values():
                problems.append((f"categories.{index}", "expected goods, services or works"))
        regions = [r.strip().upper() for r in self.regions]
        for index, region in enumerate(regions):
            if problem := check_region(region):
                problems.append((f"regions.{index}", problem))
        for index, institution in enumerate(self.institutions):
            if not institution:
                problems.append((f"institutions.{index}", "must not be empty"))
        for name in ("min_value", "max_value"):
            bound = getattr(self, name)
            if bound is not None and (not isinstance(bound, Decimal) or not bound.is_finite() or bound < 0):
                problems.append((name, "expected a non-negative decimal"))
        low, high = self.min_value, self.max_value
        numbers = isinstance(low, Decimal) and isinstance(high, Decimal)
        if numbers and low.is_finite() and high.is_finite() and low > high:  # type: ignore[union-attr,operator]
            problems.append(("max_value", "must not be below min_value"))
        if self.currency is not None and (problem := check_currency(self.currency)):
            problems.append(("currency", problem))
        keywords = [k.strip().casefold() for k in self.keywords]
        if any(not k for k in keywords):
            problems.append(("keywords", "keywords must not be empty"))
        if len(keywords) > MAX_KEYWORDS:
            problems.append(("keywords", f"at most {MAX_KEYWORDS} keywords"))
        if problems:
            raise NoticeValidationError(problems)
        object.__setattr__(self, "classifications", _unique(prefixes))
        object.__setattr__(self, "categories", _unique(categories))
        object.__setattr__(self, "regions", _unique(regions))
        object.__setattr__(self, "institutions", _unique(self.institutions))
        object.__setattr__(self, "keywords", _unique(keywords))

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> SubscriptionFilter:
        """From API JSON: lists for the dimensions, strings or numbers for the bounds."""
        problems: list[FieldProblem] = []
        known = {f for f in cls.__dataclass_fields__}
        problems += [(name, "unknown field") for name in data if name not in known]
        bounds: dict[str, Decimal | None] = {}
        for name in ("min_value", "max_value"):
            raw = data.get(name)
            try:
                bounds[name] = None if raw is None else Decimal(str(raw))
            except InvalidOperation:
                problems.append((name, "expected a number"))
        lists: dict[str, tuple[str, ...]] = {}
        for name in ("classifications", "categories", "regions", "institutions", "keywords"):
            raw = data.get(name, [])
            if not isinstance(raw, list | tuple) or not all(isinstance(v, str) for v in raw):
                problems.append((name, "expected a list of strings"))
            else:
                lists[name] = tuple(raw)
        if problems:
            raise NoticeValidationError(problems)
        return cls(**lists, **bounds, currency=data.get("currency"))  # type: ignore[arg-type]

    @property
    def has_value_bounds(self) -> bool:
        return self.min_value is not None or self.max_value is not None

    def matches(self, facts: NoticeFacts) -> bool:
        if self.classifications and facts.class_keys.isdisjoint(self.classifications):
            return False
        if self.categories and facts.category not in self.categories:
            return False
        if self.regions and not any(key in self.regions for key in facts.region_keys):
            return False
        if self.institutions and facts.institution not in self.institutions:
            return False
        if self.min_value is not None or self.max_value is not None:
            if facts.value is None or (self.currency is not None and facts.currency != self.currency):
                return False
            if self.min_value is not None and facts.value < self.min_value:
                return False
            if self.max_value is not None and facts.value > self.max_value:
                return False
        return all(keyword in facts.text for keyword in self.keywords)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))

