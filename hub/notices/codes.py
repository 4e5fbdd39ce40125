"""Checks for the codes a notice carries: classifications (CPV, UNSPSC and the Korean PPS schemes),
regions (ISO 3166) and currencies (ISO 4217).

They live apart from the models because subscription filters validate the same codes (as prefixes).
pycountry is used when installed; without it only the shape of region and currency codes is checked,
so the domain still works on a minimal install.
"""

from __future__ import annotations

import importlib
import re
from enum import StrEnum
from functools import lru_cache
from typing import Any

__all__ = [
    "CLASSIFICATION_PREFIX_HINT",
    "ClassificationScheme",
    "check_classification_code",
    "check_currency",
    "check_region",
    "classification_digits",
    "classification_prefix",
    "region_country",
]

try:  # pragma: no cover - exercised by whichever branch is installed
    pycountry: Any = importlib.import_module("pycountry")
except ImportError:  # pragma: no cover
    pycountry = None


class ClassificationScheme(StrEnum):
    CPV = "CPV"  # EU Common Procurement Vocabulary: 8 digits, hyphen, check digit
    UNSPSC = "UNSPSC"  # UN Standard Products and Services Code: 8 digits (segment/family/class/commodity)
    # Korean Public Procurement Service (조달청, 나라장터) schemes, as its open API gives them:
    PPS_GOODS = "PPS-GOODS"  # 세부품명번호 (dtilPrdctClsfcNo): 10 digits, the 8-digit UNSPSC-based 물품분류번호 + 2
    PPS_PUBLIC = "PPS-PUBLIC"  # 공공조달분류번호 (pubPrcrmntClsfcNo): 8 digits, services' public-procurement class


# The EU publishes CPV codes with their check digit but not the algorithm that derives it, so only the
# shape is checked; a code without the check digit is accepted because many sources drop it.
_CPV = re.compile(r"^\d{8}(-\d)?$")
_UNSPSC = re.compile(r"^\d{8}$")
_PPS_GOODS = re.compile(r"^\d{10}$")
_PPS_PUBLIC = re.compile(r"^\d{8}(\d{2})?$")
_MAX_DIGITS = 10
_PREFIX = re.compile(
    rf"^(?:({'|'.join(re.escape(scheme.value) for scheme in ClassificationScheme)}):)?(\d{{1,{_MAX_DIGITS}}})(?:-\d)?$")
CLASSIFICATION_PREFIX_HINT = (f"expected 1-{_MAX_DIGITS} digits, optionally after a scheme: "
                              + ", ".join(f"{s.value}:" for s in ClassificationScheme))
_REGION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def check_classification_code(scheme: ClassificationScheme, code: str) -> str | None:
    """Return a problem message, or None when ``code`` is a well-formed code of ``scheme``."""
    if scheme is ClassificationScheme.CPV and not _CPV.match(code):
        return "a CPV code is 8 digits, optionally followed by a hyphen and its check digit, e.g. 45000000-7"
    if scheme is ClassificationScheme.UNSPSC and not _UNSPSC.match(code):
        return "a UNSPSC code is 8 digits, e.g. 72141100"
    if scheme is ClassificationScheme.PPS_GOODS and not _PPS_GOODS.match(code):
        return "a PPS-GOODS code (세부품명번호) is 10 digits, e.g. 4321150201"
    if scheme is ClassificationScheme.PPS_PUBLIC and not _PPS_PUBLIC.match(code):
        return "a PPS-PUBLIC code (공공조달분류번호) is 8 digits, e.g. 76121598"
    return None


def classification_digits(code: str) -> str:
    """The hierarchical digits of a code (CPV check digit dropped): prefixes of these are its ancestors."""
    return code.partition("-")[0][:_MAX_DIGITS]


def classification_prefix(raw: str) -> tuple[str | None, str] | None:
    """A search or filter prefix (``45``, ``CPV:4523``, ``pps-public:7612``) as (scheme or None, digits);
    None when it is not one (see :data:`CLASSIFICATION_PREFIX_HINT`)."""
    found = _PREFIX.match(raw.strip().upper())
    return None if found is None else (found.group(1), found.group(2))


@lru_cache(maxsize=4096)
def check_region(code: str) -> str | None:
    """ISO 3166-2 subdivision (``KR-11``) or, for a whole country, ISO 3166-1 alpha-2 (``KR``)."""
    if not _REGION.match(code):
        return "expected an ISO 3166-2 code such as KR-11 (or a country code such as KR)"
    if pycountry is None:
        return None
    if "-" in code:
        if pycountry.subdivisions.get(code=code) is None:
            return f"{code} is not an ISO 3166-2 subdivision"
    elif pycountry.countries.get(alpha_2=code) is None:
        return f"{code} is not an ISO 3166-1 country"
    return None


def region_country(code: str) -> str:
    return code.split("-", 1)[0]


@lru_cache(maxsize=512)
def check_currency(code: str) -> str | None:
    if not _CURRENCY.match(code):
        return "expected an ISO 4217 currency code such as KRW"
    if pycountry is not None and pycountry.currencies.get(alpha_3=code) is None:
        return f"{code} is not an ISO 4217 currency"
    return None
