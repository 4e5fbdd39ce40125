"""Builds the sandbox's seeded population: a few hundred suppliers spread over every state the hub
must handle (active, suspended, closed, VAT invalid, LEI lapsed, certificates withdrawn, unknown ...).

States are allocated by quota and then shuffled, not drawn independently, so every state appears for
any seed once the population is large enough; the same (seed, size, as_of) gives the same data.
Dates are relative to ``as_of`` so "valid until" stays meaningful whatever day the sandbox runs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial

from connectors.sandbox import identifiers as ids
from connectors.sandbox import names
from connectors.sandbox.records import (
    CompanyRecord,
    IafCertificate,
    LabelledIdentifier,
    LeiRecord,
    NationalCertificate,
    NtsRecord,
    Supplier,
    VatRecord,
)

__all__ = ["DEFAULT_SEED", "DatasetSnapshot", "generate"]

DEFAULT_SEED = 20261125

_IAF_STANDARDS = {
    "ISO 9001:2015": "QMS", "ISO 14001:2015": "EMS", "ISO 45001:2018": "OHSMS", "ISO/IEC 27001:2022": "ISMS",
}
_NATIONAL_ISSUERS = {
    "SME": ("중소벤처기업부", 365),
    "DIRECT_PRODUCTION": ("중소기업중앙회", 730),
    "WOMEN_OWNED": ("한국여성경제인협회", 1095),
    "ISO9001": ("한국인정지원센터", 1095),
    "ISO14001": ("한국인정지원센터", 1095),
}


@dataclass
class DatasetSnapshot:
    """Plain containers keyed the way each source looks records up."""

    seed: int
    as_of: date
    suppliers: list[Supplier] = field(default_factory=list)
    nts: dict[str, NtsRecord] = field(default_factory=dict)
    vies: dict[str, VatRecord] = field(default_factory=dict)
    gleif: dict[str, LeiRecord] = field(default_factory=dict)
    companies_house: dict[str, CompanyRecord] = field(default_factory=dict)
    iaf: dict[str, IafCertificate] = field(default_factory=dict)
    national_certs: dict[str, NationalCertificate] = field(default_factory=dict)
    national_holders: set[str] = field(default_factory=set)
    labelled: list[LabelledIdentifier] = field(default_factory=list)


@dataclass
class _Draft:
    """A supplier while its per-system states are being decided."""

    supplier_id: str
    name: str
    country: str
    ids: dict[str, str]
    scenario: list[str] = field(default_factory=list)


def _allocate(rng: random.Random, count: int, weights: dict[str, int]) -> list[str]:
    """Split ``count`` slots by weight, at least one per state when there is room, then shuffle."""
    total = sum(weights.values())
    states = list(weights)
    quota = {s: max(1, count * weights[s] // total) if count >= len(states) else 0 for s in states}
    slots = [s for s in states for _ in range(quota[s])]
    while len(slots) < count:
        slots.append(rng.choices(states, weights=list(weights.values()))[0])
    slots = slots[:count]
    rng.shuffle(slots)
    return slots


def _ymd(day: date) -> str:
    return day.strftime("%Y%m%d")


class _Builder:
    def __init__(self, seed: int, size: int, as_of: date) -> None:
        self.rng = random.Random(seed)
        self.size = size
        self.as_of = as_of
        self.snap = DatasetSnapshot(seed=seed, as_of=as_of)
        self.used: set[str] = set()

    def unique(self, make: Callable[[], str]) -> str:
        """Redraw on collision so one identifier never belongs to two suppliers."""
        while True:
            value = make()
            if value not in self.used:
                self.used.add(value)
                return value

    def _certificate_number(self, prefix: str) -> str:
        return f"{prefix}-{self.as_of.year}-{self.rng.randint(0, 9999999):07d}"

    def days_ago(self, low: int, high: int) -> date:
        return self.as_of - timedelta(days=self.rng.randint(low, high))

    def build(self) -> DatasetSnapshot:
        rng = self.rng
        countries = _allocate(rng, self.size, {"KR": 45, "DE": 9, "FR": 9, "NL": 9, "EL": 8, "GB": 20})
        drafts: list[_Draft] = []
        for index, country in enumerate(countries):
            name = names.company_name(rng, country)
            idents: dict[str, str] = {}
            if country == "KR":
                idents["kr_brn"] = self.unique(lambda: ids.generate_brn(rng))
            elif country == "GB":
                idents["gb_company_number"] = self.unique(lambda: ids.generate_gb_company_number(rng))
            else:
                idents["eu_vat"] = country + self.unique(partial(ids.generate_vat, country, rng))
            if rng.random() < {"KR": 0.3, "GB": 0.5}.get(country, 0.6):
                idents["lei"] = self.unique(lambda: ids.generate_lei(rng))
            if rng.random() < {"KR": 0.4}.get(country, 0.5):
                idents["iaf_ce_id"] = self.unique(lambda: f"{rng.getrandbits(96):024x}")
            drafts.append(_Draft(f"SUP-{index + 1:04d}", name, country, idents))
        self._korea(drafts)
        self._vies(drafts)
        self._companies_house(drafts)
        self._gleif(drafts)
        self._iaf([d for d in drafts if "iaf_ce_id" in d.ids])
        for d in drafts:
            self.snap.suppliers.append(Supplier(
                supplier_id=d.supplier_id, name=d.name, country=d.country, identifiers=d.ids, scenario=d.scenario))
        self._invalid_identifiers()
        return self.snap

    def _known(self, drafts: list[_Draft], system: str, scheme: str, weights: dict[str, int],
               unknown: str = "unknown") -> Iterator[tuple[_Draft, str, str]]:
        """The drafts with a ``scheme`` identifier, each given a state at ``system`` (kept in its scenario);
        those in the ``unknown`` state are labelled as such and not yielded."""
        drafts = [d for d in drafts if scheme in d.ids]
        for draft, state in zip(drafts, _allocate(self.rng, len(drafts), weights), strict=True):
            draft.scenario.append(f"{system}:{state}")
            if state != unknown:
                yield draft, state, draft.ids[scheme]
            else:
                self.snap.labelled.append(LabelledIdentifier(
                    scheme=scheme, value=draft.ids[scheme], label="unknown", supplier_id=draft.supplier_id))

    def _korea(self, drafts: list[_Draft]) -> None:
        rng = self.rng
        weights = {"active": 60, "suspended": 12, "closed": 13, "unregistered": 15}
        for draft, state, brn in self._known(drafts, "nts", "kr_brn", weights, unknown="unregistered"):
            start = self.days_ago(400, 9000)
            code = {"active": "01", "suspended": "02", "closed": "03"}[state]
            self.snap.nts[brn] = NtsRecord(
                b_no=brn, b_stt_cd=code,
                tax_type_cd=rng.choices(["01", "02", "04", "07"], weights=[70, 15, 10, 5])[0],
                end_dt=_ymd(self.days_ago(1, 365)) if state == "closed" else "",
                tax_type_change_dt=_ymd(self.days_ago(30, 399)) if rng.random() < 0.2 else "",
                invoice_apply_dt=_ymd(start) if rng.random() < 0.5 else "",
                start_dt=_ymd(start), p_nm=names.korean_person(rng), b_nm=draft.name,
            )
            self.snap.national_holders.add(brn)
            self._national_certificates(draft, brn)

    def _national_certificates(self, draft: _Draft, brn: str) -> None:
        rng = self.rng
        kinds = [k for k in _NATIONAL_ISSUERS if rng.random() < 0.45]
        for kind in kinds:
            status = rng.choices(["valid", "expired", "revoked", "suspended"], weights=[60, 15, 10, 15])[0]
            issuer, lifetime = _NATIONAL_ISSUERS[kind]
            start = self.days_ago(lifetime + 1, lifetime + 400) if status == "expired" else self.days_ago(
                1, lifetime - 30)
            number = self.unique(partial(self._certificate_number, kind[:3]))
            self.snap.national_certs[number] = NationalCertificate(
                number=number, holder_brn=brn, type=kind, issuer=issuer, status=status,
                valid_from=start, valid_until=start + timedelta(days=lifetime),
                scope=names.scope(rng) if kind.startswith("ISO") or kind == "DIRECT_PRODUCTION" else None,
            )
            draft.scenario.append(f"national:{kind}:{status}")

    def _vies(self, drafts: list[_Draft]) -> None:
        for draft, _, vat in self._known(drafts, "vies", "eu_vat", {"valid": 80, "invalid": 20}, unknown="invalid"):
            country = vat[:2]
            hidden = country == "DE"
            self.snap.vies[vat] = VatRecord(
                country_code=country, vat_number=vat[2:], valid=True,
                name="---" if hidden else draft.name.upper(),
                address="---" if hidden else names.address(self.rng, country).upper(),
            )

    def _companies_house(self, drafts: list[_Draft]) -> None:
        rng = self.rng
        weights = {"active": 65, "dissolved": 15, "liquidation": 10, "unknown": 10}
        for draft, state, number in self._known(drafts, "companies_house", "gb_company_number", weights):
            created = self.days_ago(400, 12000)
            jurisdiction = {"SC": "scotland", "NI": "northern-ireland"}.get(number[:2], "england-wales")
            line, locality, postcode = names.gb_address(rng)
            self.snap.companies_house[number] = CompanyRecord(
                company_number=number, company_name=draft.name.upper(), company_status=state,
                type=rng.choice(["ltd", "ltd", "plc", "llp"]), jurisdiction=jurisdiction,
                date_of_creation=created, date_of_cessation=self.days_ago(1, 300) if state == "dissolved" else None,
                sic_codes=[rng.choice(["41201", "42990", "62020", "71122", "43210", "33120"])],
                address_line_1=line, locality=locality, postal_code=postcode,
                has_insolvency_history=state == "liquidation",
                accounts_next_due=self.as_of + timedelta(days=rng.randint(10, 300)),
                confirmation_statement_next_due=self.as_of + timedelta(days=rng.randint(10, 360)),
            )

    def _gleif(self, drafts: list[_Draft]) -> None:
        rng = self.rng
        weights = {"issued": 55, "lapsed": 15, "retired": 10, "inactive": 5, "unknown": 10}
        for draft, state, lei in self._known(drafts, "gleif", "lei", weights):
            country = draft.country
            registered = self.days_ago(800, 4000)
            renewal = self.days_ago(1, 300) if state == "lapsed" else self.as_of + timedelta(days=rng.randint(20, 360))
            line, city, postcode = names.street_city(rng, country)
            self.snap.gleif[lei] = LeiRecord(
                lei=lei, legal_name=draft.name, legal_name_language=names.language(country),
                country="GR" if country == "EL" else country, city=city, postal_code=postcode,
                address_lines=[line], legal_form_id=rng.choice(["8888", "2HBR", "6QQB", "XTIQ"]),
                registered_at_id=rng.choice(["RA000401", "RA000585", "RA000242", "RA000665"]),
                registered_as=f"{rng.randint(10**7, 10**8 - 1)}",
                entity_status="INACTIVE" if state in ("retired", "inactive") else "ACTIVE",
                registration_status={"issued": "ISSUED", "inactive": "ISSUED", "lapsed": "LAPSED",
                                     "retired": "RETIRED"}[state],
                creation_date=registered - timedelta(days=rng.randint(100, 5000)),
                initial_registration_date=registered, last_update_date=self.days_ago(1, 380),
                next_renewal_date=renewal, managing_lou=lei[:4] + "00" + "0" * 12 + "00",
            )

    def _iaf(self, drafts: list[_Draft]) -> None:
        rng = self.rng
        counts = [rng.randint(1, 3) for _ in drafts]
        states = iter(_allocate(rng, sum(counts), {"active": 60, "suspended": 15, "withdrawn": 10, "expired": 15}))
        for draft, count in zip(drafts, counts, strict=True):
            for standard in rng.sample(sorted(_IAF_STANDARDS), count):
                status = next(states)
                issued = self.days_ago(1200, 2000) if status == "expired" else self.days_ago(30, 1000)
                cert_id = self.unique(partial(self._certificate_number, _IAF_STANDARDS[standard]))
                self.snap.iaf[cert_id] = IafCertificate(
                    cert_id=cert_id, ce_id=draft.ids["iaf_ce_id"],
                    entity_name=draft.name, country="GR" if draft.country == "EL" else draft.country,
                    standard=standard, scheme=_IAF_STANDARDS[standard], status=status,
                    scope=names.scope(rng), certification_body=rng.choice(names.CERTIFICATION_BODIES),
                    accreditation_body=rng.choice(names.ACCREDITATION_BODIES), original_issue_date=issued,
                    expiry_date=issued + timedelta(days=1095), updated_at=self.days_ago(0, 29),
                )
                draft.scenario.append(f"iaf:{standard}:{status}")

    def _invalid_identifiers(self) -> None:
        rng = self.rng
        samples = {
            "kr_brn": [ids.generate_brn(rng) for _ in range(2)],
            "eu_vat": ["DE" + ids.generate_vat("DE", rng) for _ in range(2)],
            "lei": [ids.generate_lei(rng) for _ in range(2)],
        }
        for scheme, values in samples.items():
            for value in values:
                self.snap.labelled.append(LabelledIdentifier(
                    scheme=scheme, value=ids.corrupt_check_digit(value), label="invalid-checksum"))


def generate(seed: int = DEFAULT_SEED, size: int = 300, as_of: date | None = None) -> DatasetSnapshot:
    """The whole population for one (seed, size, as_of); ``as_of`` defaults to today."""
    if size < 20:
        raise ValueError("size must be at least 20 so every state can appear")
    return _Builder(seed, size, as_of or date.today()).build()
