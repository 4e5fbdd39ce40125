"""Generators for identifiers that pass the same checks the hub applies on registration.

The twins must hand out numbers a real registry could have issued; otherwise the hub's own checksum
validation (python-stdnum, plus the BRN check digit the sandbox takes from the hub) would reject sandbox
suppliers before any connector is exercised. Each generator takes the caller's seeded ``random.Random``
so the dataset stays reproducible.
"""

from __future__ import annotations

import random
import string

from stdnum import lei as stdnum_lei
from stdnum import luhn
from stdnum.eu import vat as eu_vat
from stdnum.gr import vat as gr_vat
from stdnum.iso7064 import mod_11_10, mod_97_10

from hub.suppliers.identifiers import brn_check_digit, is_valid_brn

__all__ = [
    "brn_check_digit",
    "corrupt_check_digit",
    "generate_brn",
    "generate_gb_company_number",
    "generate_lei",
    "generate_vat",
    "is_valid_brn",
]

_LEI_LOUS = ("5299", "3912", "9845", "2138", "8945", "9695")
_ALNUM = string.digits + string.ascii_uppercase


def generate_brn(rng: random.Random) -> str:
    """Office code 101-999, type 01-99, serial 0001-9999, then the check digit."""
    body = f"{rng.randint(101, 999):03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
    return body + str(brn_check_digit(body))


def _vat_candidate(country: str, rng: random.Random) -> str:
    if country == "DE":
        body = str(rng.randint(1, 9)) + "".join(rng.choice(string.digits) for _ in range(7))
        return body + mod_11_10.calc_check_digit(body)
    if country == "FR":
        siren = str(rng.randint(1, 9)) + "".join(rng.choice(string.digits) for _ in range(7))
        siren += luhn.calc_check_digit(siren)
        return f"{int(siren + '12') % 97:02d}{siren}"
    if country == "EL":
        body = "".join(rng.choice(string.digits) for _ in range(8))
        return body + gr_vat.calc_check_digit(body)
    if country == "NL":
        # No public generator for the RSIN-style check; sample until stdnum accepts (about 1 in 11).
        rsin = "".join(rng.choice(string.digits) for _ in range(9))
        return f"{rsin}B{rng.randint(1, 99):02d}"
    raise ValueError(f"no VAT generator for {country}")


def generate_vat(country: str, rng: random.Random) -> str:
    """A VAT number (without country prefix) that ``stdnum.eu.vat`` accepts for ``country``."""
    for _ in range(1000):
        candidate = _vat_candidate(country, rng)
        if eu_vat.is_valid(country + candidate):
            return candidate
    raise RuntimeError(f"could not generate a valid {country} VAT number")  # pragma: no cover


def generate_lei(rng: random.Random) -> str:
    """LOU prefix, reserved ``00``, 12 entity characters, ISO 7064 mod 97-10 check digits."""
    body = rng.choice(_LEI_LOUS) + "00" + "".join(rng.choice(_ALNUM) for _ in range(12))
    lei = body + mod_97_10.calc_check_digits(body)
    assert stdnum_lei.is_valid(lei)
    return lei


def generate_gb_company_number(rng: random.Random) -> str:
    """England & Wales numbers are 8 digits; Scottish and Northern Irish ones carry SC/NI prefixes."""
    prefix = rng.choices(("", "SC", "NI"), weights=(8, 1, 1))[0]
    width = 8 - len(prefix)
    return prefix + f"{rng.randint(1, 10**width - 1):0{width}d}"


def corrupt_check_digit(number: str) -> str:
    """Flip the last digit so the number keeps its shape but fails its checksum."""
    last = number[-1]
    if last.isdigit():
        return number[:-1] + str((int(last) + 1) % 10)
    return number[:-1] + ("A" if last != "A" else "B")
