"""Plausible names and addresses, so payloads look like the real systems' and mappings meet
non-ASCII text (Hangul, Greek) and upper-cased registry spellings early."""

from __future__ import annotations

import random

__all__ = [
    "ACCREDITATION_BODIES",
    "CERTIFICATION_BODIES",
    "address",
    "company_name",
    "gb_address",
    "korean_person",
    "language",
    "scope",
    "street_city",
]

_KO_SYLLABLES = "한빛대성동아세진미래우리신성태양금강현대청운삼진광명새롬"
_KO_TRADES = ("건설", "전자", "소프트", "기계", "산업", "정보통신", "환경", "식품", "엔지니어링", "테크")
_KO_FAMILY = "김이박최정강조윤장임한오서신권황안송류홍"
_KO_GIVEN = "민서준지현우수영하은도윤채원태호성진"
_EN_WORDS = ("Northwind", "Blue Harbour", "Granite", "Meridian", "Oakfield", "Silverline", "Crestview",
             "Lindqvist", "Aurora", "Fenwick", "Atlas", "Beacon", "Kestrel", "Riverside", "Summit")
_EN_TRADES = ("Construction", "Engineering", "Systems", "Medical Supplies", "Logistics", "Software",
              "Facilities", "Energy", "Consulting")
_LEGAL_FORMS = {"DE": "GmbH", "FR": "SAS", "NL": "B.V.", "EL": "\u0391.\u0395.", "GB": "Ltd"}
_CITIES = {
    "KR": (("서울특별시 중구 세종대로 110", "Seoul", "04524"), ("부산광역시 해운대구 센텀중앙로 79", "Busan", "48058"),
           ("대전광역시 유성구 대학로 99", "Daejeon", "34134")),
    "DE": (("Friedrichstraße 68", "Berlin", "10117"), ("Marienplatz 8", "München", "80331")),
    "FR": (("12 Rue de Rivoli", "Paris", "75004"), ("5 Quai Jules Courmont", "Lyon", "69002")),
    "NL": (("Damrak 70", "Amsterdam", "1012 LM"), ("Coolsingel 40", "Rotterdam", "3011 AD")),
    "EL": (("Οδός Ερμού 15", "Αθήνα", "10563"), ("Λεωφόρος Νίκης 3", "Θεσσαλονίκη", "54624")),
    "GB": (("1 Victoria Street", "London", "SW1H 0ET"), ("22 Deansgate", "Manchester", "M3 1RH"),
           ("5 George Street", "Edinburgh", "EH2 2PF")),
}
_SCOPES = ("Design and construction of civil engineering works", "Manufacture of medical devices",
           "Software development and IT services", "Supply of office furniture",
           "Facility management and cleaning services", "Production of precast concrete elements")
CERTIFICATION_BODIES = ("BSI Group", "TÜV SÜD", "Bureau Veritas Certification", "DNV", "한국품질재단", "LRQA")
ACCREDITATION_BODIES = ("UKAS", "DAkkS", "COFRAC", "RvA", "KAB", "ESYD")


def company_name(rng: random.Random, country: str) -> str:
    if country == "KR":
        return "(주)" + "".join(rng.sample(_KO_SYLLABLES, 2)) + rng.choice(_KO_TRADES)
    return f"{rng.choice(_EN_WORDS)} {rng.choice(_EN_TRADES)} {_LEGAL_FORMS.get(country, 'Ltd')}"


def korean_person(rng: random.Random) -> str:
    return rng.choice(_KO_FAMILY) + "".join(rng.sample(_KO_GIVEN, 2))


def street_city(rng: random.Random, country: str) -> tuple[str, str, str]:
    """(street line, city, postal code) for a country the sandbox populates."""
    return rng.choice(_CITIES.get(country, _CITIES["GB"]))


def address(rng: random.Random, country: str) -> str:
    """One-line address, VIES style."""
    line, city, postcode = street_city(rng, country)
    return f"{line}\n{postcode} {city}"


def gb_address(rng: random.Random) -> tuple[str, str, str]:
    return street_city(rng, "GB")


def language(country: str) -> str:
    return {"KR": "ko", "DE": "de", "FR": "fr", "NL": "nl", "EL": "el"}.get(country, "en")


def scope(rng: random.Random) -> str:
    return rng.choice(_SCOPES)
