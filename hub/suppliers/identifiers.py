"""Identifier schemes a supplier registers with, validated and normalised before anything is fetched.

Checksums are python-stdnum's; the Korean BRN also gets the NTS check digit that stdnum does not test
(defined here, and imported by the sandbox twins, which must issue numbers the hub accepts). A bad identifier is refused
at the door (422 naming it) instead of costing an upstream call that would fail anyway.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from stdnum import lei as stdnum_lei
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.kr import brn as kr_brn

from hub.spine.errors import Rejected, RejectedFields

__all__ = [
    "SCHEMES",
    "IdentifierError",
    "brn_check_digit",
    "identifier_problems",
    "is_valid_brn",
    "normalise_identifier",
    "rejection",
    "validate_identifiers",
]

_BRN_WEIGHTS = (1, 3, 7, 1, 3, 7, 1, 3, 5)

_GB_COMPANY = re.compile(r"^(?:\d{8}|[A-Z]{2}\d{6})$")
_IAF_CE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class IdentifierError(ValueError):
    """The identifier fails its format or checksum."""


def brn_check_digit(first_nine: str) -> int:
    """The NTS check digit; python-stdnum checks only length and components."""
    digits = [int(c) for c in first_nine]
    total = sum(d * w for d, w in zip(digits, _BRN_WEIGHTS, strict=True)) + (digits[8] * 5) // 10
    return (10 - total % 10) % 10


def is_valid_brn(number: str) -> bool:
    """stdnum's format/component check plus the check digit."""
    if not kr_brn.is_valid(number):
        return False
    compact = kr_brn.compact(number)
    return brn_check_digit(compact[:9]) == int(compact[9])


def _kr_brn(value: str) -> str:
    compact = kr_brn.compact(value)
    if not is_valid_brn(compact):
        raise IdentifierError("not a valid Korean business registration number (format or check digit)")
    return compact


def _eu_vat(value: str) -> str:
    try:
        compact = eu_vat.compact(value)
        if compact.startswith("GR"):  # VIES writes Greece as EL
            compact = "EL" + compact[2:]
        eu_vat.validate(compact)
    except StdnumError as exc:
        raise IdentifierError(f"not a valid EU VAT number with its country prefix ({exc})") from exc
    return compact


def _lei(value: str) -> str:
    try:
        return str(stdnum_lei.validate(value))
    except StdnumError as exc:
        raise IdentifierError(f"not a valid LEI ({exc})") from exc


def _gb_company_number(value: str) -> str:
    compact = value.replace(" ", "").upper()
    if not _GB_COMPANY.fullmatch(compact):
        raise IdentifierError("a UK company number is 8 digits or 2 letters and 6 digits")
    return compact


def _iaf_ce_id(value: str) -> str:
    compact = value.strip()
    if not _IAF_CE_ID.fullmatch(compact):
        raise IdentifierError("an IAF certified-entity id is 1-64 letters, digits, '_' or '-'")
    return compact


SCHEMES: dict[str, Callable[[str], str]] = {
    "kr_brn": _kr_brn,
    "eu_vat": _eu_vat,
    "lei": _lei,
    "gb_company_number": _gb_company_number,
    "iaf_ce_id": _iaf_ce_id,
}


def normalise_identifier(scheme: str, value: str) -> str:
    """The canonical form of ``value`` in ``scheme``; IdentifierError if it is not valid."""
    if not isinstance(value, str) or not value.strip():
        raise IdentifierError("must not be blank")
    return SCHEMES[scheme](value.strip())


def identifier_problems(identifiers: Mapping[str, str | None]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The given identifiers normalised, and a (``identifiers.<scheme>``, message) problem for each bad
    one: every bad identifier is named at once, not only the first."""
    clean: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for scheme, value in identifiers.items():
        if value is None:
            continue
        if scheme not in SCHEMES:
            problems.append((f"identifiers.{scheme}", "unknown identifier scheme"))
            continue
        try:
            clean[scheme] = normalise_identifier(scheme, value)
        except IdentifierError as exc:
            problems.append((f"identifiers.{scheme}", str(exc)))
    if not clean and not problems:
        problems.append(("identifiers", f"give at least one of {', '.join(SCHEMES)}"))
    return clean, problems


def rejection(problems: list[tuple[str, str]]) -> Rejected | RejectedFields:
    """One problem: Rejected naming its field; several: RejectedFields naming each."""
    if len(problems) == 1:
        return Rejected(*problems[0])
    return RejectedFields(problems)


def validate_identifiers(identifiers: Mapping[str, str | None]) -> dict[str, str]:
    """Normalise every given identifier; Rejected naming ``identifiers.<scheme>`` for a bad one,
    RejectedFields naming each when several are bad."""
    clean, problems = identifier_problems(identifiers)
    if problems:
        raise rejection(problems)
    return clean
