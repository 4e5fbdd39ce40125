"""The requirement language: what an institution may demand of a supplier, stated as JSON.

Why a closed, small language rather than free expressions: every kind has a meaning the hub can
explain with evidence (see ``docs/eligibility.md``), a notice carries the same JSON, and a bad input is
answered with one problem per field. Parsing walks the input itself instead of handing the whole tree
to pydantic so that the size and depth limits are enforced before anything deep is validated (OWASP
API4, resource consumption), and so that field paths come out without pydantic's union tags.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

import pycountry
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

__all__ = [
    "KNOWN_SCHEMES",
    "MAX_DEPTH",
    "MAX_REQUIREMENTS",
    "VIES_COUNTRIES",
    "AllOf",
    "AnyOf",
    "BusinessNotClosed",
    "CertificateRequirement",
    "CompanyActive",
    "FieldProblem",
    "LeiValid",
    "NationalCertificateRequirement",
    "NationalCertificateType",
    "Requirement",
    "RequirementError",
    "TaxStatus",
    "TaxStatusRequirement",
    "VatRegistered",
    "canonical_scheme",
    "dump_requirements",
    "parse_requirements",
    "requirements_json_schema",
]

MAX_DEPTH = 3  # a top-level requirement is depth 1; all_of → any_of → leaf is as deep as it goes
MAX_REQUIREMENTS = 50  # every node counts, combinators included

FieldProblem = tuple[str, str]  # (dotted path such as "requirements.2.scheme", message): as notices use

# Management-system schemes the hub recognises; extend when an institution needs another. Matching
# ignores the edition year and spelling variants ("ISO 9001:2015", "ISO9001", "ISO/IEC 27001:2022").
KNOWN_SCHEMES = (
    "ISO 9001",
    "ISO 14001",
    "ISO 45001",
    "ISO/IEC 27001",
    "ISO/IEC 20000-1",
    "ISO 50001",
    "ISO 22000",
    "ISO 22301",
    "ISO 13485",
    "ISO 37001",
    "ISO 39001",
    "ISO 28000",
    "IATF 16949",
    "FSSC 22000",
)

# VIES member-state prefixes: EL is Greece, XI Northern Ireland (goods only).
VIES_COUNTRIES = frozenset(
    {"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU"}
    | {"IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "XI"}
)
_COUNTRY_ALIASES = {"GR": "EL", "UK": "GB"}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _scheme_key(text: str) -> str:
    head = text.split(":", 1)[0].upper().replace("/IEC", "")
    return re.sub(r"\s+", "", head)


_SCHEMES_BY_KEY = {_scheme_key(name): name for name in KNOWN_SCHEMES}


def canonical_scheme(text: str | None) -> str | None:
    """The recognised scheme ``text`` names ("iso9001:2015" → "ISO 9001"), else None."""
    return _SCHEMES_BY_KEY.get(_scheme_key(text)) if text else None


class TaxStatus(StrEnum):
    """The statuses the NTS mapping yields (b_stt_cd 01/02/03, empty = unregistered)."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"
    UNREGISTERED = "unregistered"


class NationalCertificateType(StrEnum):
    """National certificate kinds that are not management-system schemes (those use ``certificate``)."""

    SME = "SME"
    DIRECT_PRODUCTION = "DIRECT_PRODUCTION"
    WOMEN_OWNED = "WOMEN_OWNED"


class _Requirement(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    id: str | None = Field(default=None, description="Stable name to refer to this requirement in answers")
    label: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str | None) -> str | None:
        if value is not None and not _ID.match(value):
            raise ValueError("1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value


class TaxStatusRequirement(_Requirement):
    """NTS business status equals ``status`` (normally active: not suspended, closed or unregistered)."""

    kind: Literal["tax_status"]
    status: TaxStatus = TaxStatus.ACTIVE


class BusinessNotClosed(_Requirement):
    """No source says the business is closed: NTS not closed, company registration not dissolved."""

    kind: Literal["business_not_closed"]


class VatRegistered(_Requirement):
    """A VIES-valid VAT registration, optionally in one member state."""

    kind: Literal["vat_registered"]
    country: str | None = None

    @field_validator("country")
    @classmethod
    def _vies_country(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = _COUNTRY_ALIASES.get(value.upper(), value.upper())
        if code not in VIES_COUNTRIES:
            raise ValueError(f"unknown VIES country {value!r}; expected one of {' '.join(sorted(VIES_COUNTRIES))}")
        return code


class LeiValid(_Requirement):
    """A GLEIF LEI that is issued, for a legal entity that is active."""

    kind: Literal["lei_valid"]


class CompanyActive(_Requirement):
    """The company registry says active (not closed, not in insolvency), optionally in one country."""

    kind: Literal["company_active"]
    jurisdiction: str | None = Field(default=None, description="ISO 3166-1 alpha-2 country, e.g. GB")

    @field_validator("jurisdiction")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = _COUNTRY_ALIASES.get(value.upper(), value.upper())
        if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
            raise ValueError(f"unknown country {value!r}; expected an ISO 3166-1 alpha-2 code such as GB")
        return code


class CertificateRequirement(_Requirement):
    """A management-system certificate of ``scheme`` (IAF, or held nationally) valid on ``valid_on``."""

    kind: Literal["certificate"]
    scheme: str
    valid_on: date | None = Field(default=None, description="Default: the evaluation date")

    @field_validator("scheme")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = canonical_scheme(value)
        if scheme is None:
            raise ValueError(f"unknown scheme {value!r}; known: {', '.join(KNOWN_SCHEMES)}")
        return scheme


class NationalCertificateRequirement(_Requirement):
    """A national certificate of ``type`` (SME confirmation, direct production, women-owned) valid on
    ``valid_on``."""

    kind: Literal["national_certificate"]
    type: NationalCertificateType
    valid_on: date | None = Field(default=None, description="Default: the evaluation date")

    @field_validator("type", mode="before")
    @classmethod
    def _known_type(cls, value: Any) -> Any:
        if isinstance(value, str):
            upper = value.strip().upper()
            if canonical_scheme(upper) is not None:
                raise ValueError(f"{value!r} is a management-system scheme; use kind 'certificate' for it")
            if upper not in NationalCertificateType.__members__:
                raise ValueError(f"unknown type {value!r}; expected one of {', '.join(NationalCertificateType)}")
            return upper
        return value


class StatedCondition(_Requirement):
    """A condition the publishing system states but no fetched credential can decide (a PPS region or
    industry restriction, a registration deadline). Carried so it is never lost, and always answered
    ``unknown`` with the condition spelled out, so a person checks it."""

    kind: Literal["stated_condition"]
    condition: str = Field(min_length=1, max_length=100, pattern=r"^[a-z][a-z0-9_]*$")
    details: dict[str, str] = Field(default_factory=dict, max_length=20)


class AllOf(_Requirement):
    """Met when every part is met; not met when any part is not met; otherwise unknown."""

    kind: Literal["all_of"]
    requirements: tuple[Requirement, ...] = Field(min_length=1)


class AnyOf(_Requirement):
    """Met when any part is met; not met when every part is not met; otherwise unknown."""

    kind: Literal["any_of"]
    requirements: tuple[Requirement, ...] = Field(min_length=1)


Requirement = Annotated[
    TaxStatusRequirement
    | BusinessNotClosed
    | VatRegistered
    | LeiValid
    | CompanyActive
    | CertificateRequirement
    | NationalCertificateRequirement
    | StatedCondition
    | AllOf
    | AnyOf,
    Field(discriminator="kind"),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()

_LEAVES: dict[str, type[_Requirement]] = {
    "tax_status": TaxStatusRequirement,
    "business_not_closed": BusinessNotClosed,
    "vat_registered": VatRegistered,
    "lei_valid": LeiValid,
    "company_active": CompanyActive,
    "certificate": CertificateRequirement,
    "national_certificate": NationalCertificateRequirement,
    "stated_condition": StatedCondition,
}
_COMBINATORS: dict[str, type[AllOf] | type[AnyOf]] = {"all_of": AllOf, "any_of": AnyOf}
KINDS = (*_LEAVES, *_COMBINATORS)
_LIST_ADAPTER: TypeAdapter[list[Requirement]] = TypeAdapter(list[Requirement])


class RequirementError(Exception):
    """Every problem in one requirement list, each naming its field. Not a ValueError, so that pydantic
    lets it through unchanged when a notice validator calls the parser (as ``NoticeValidationError``)."""

    def __init__(self, problems: Iterable[FieldProblem]) -> None:
        self.problems: list[FieldProblem] = list(problems)
        super().__init__("; ".join(f"{path}: {message}" for path, message in self.problems))


def _path(location: Sequence[str | int]) -> str:
    return ".".join(str(part) for part in location if part != "")


class _Parse:
    """One parse: the node budget and the problems and ids seen so far."""

    def __init__(self) -> None:
        self.nodes = 0
        self.problems: list[FieldProblem] = []
        self.ids: dict[str, str] = {}
        self.over_budget = False

    def problem(self, location: Sequence[str | int], message: str) -> None:
        self.problems.append((_path(location), message))

    def node(self, item: object, location: tuple[str | int, ...], depth: int) -> Requirement | None:
        if self.over_budget:
            return None
        self.nodes += 1
        if self.nodes > MAX_REQUIREMENTS:
            self.over_budget = True
            self.problem(location, f"too many requirements: at most {MAX_REQUIREMENTS} in all, combinators included")
            return None
        if not isinstance(item, dict):
            self.problem(location, "expected an object with a 'kind'")
            return None
        kind = item.get("kind")
        if not isinstance(kind, str) or kind not in KINDS:
            shown = "missing" if kind is None else f"unknown kind {kind!r}"
            self.problem((*location, "kind"), f"{shown}; expected one of {', '.join(KINDS)}")
            return None
        identifier = item.get("id")
        if isinstance(identifier, str) and (identifier := identifier.strip()):
            if identifier in self.ids:
                self.problem((*location, "id"), f"duplicate id {identifier!r} (also at {self.ids[identifier]})")
            else:
                self.ids[identifier] = _path(location)
        return self._combinator(item, location, depth) if kind in _COMBINATORS else self._leaf(item, location)

    def _leaf(self, item: dict[str, Any], location: tuple[str | int, ...]) -> Requirement | None:
        try:
            return _LEAVES[item["kind"]].model_validate(item)  # type: ignore[return-value]
        except ValidationError as error:
            self._pydantic(error, location)
            return None

    def _combinator(self, item: dict[str, Any], location: tuple[str | int, ...], depth: int) -> Requirement | None:
        model = _COMBINATORS[item["kind"]]
        parts_location = (*location, "requirements")
        parts = item.get("requirements")
        children: list[Requirement | None] = []
        if depth >= MAX_DEPTH:
            self.problem(parts_location, f"nested too deep: requirements may nest at most {MAX_DEPTH} levels")
        elif not isinstance(parts, list) or not parts:
            self.problem(parts_location, "expected a non-empty list of requirements")
        elif len(parts) > MAX_REQUIREMENTS:
            self.over_budget = True
            self.problem(parts_location, f"too many requirements: at most {MAX_REQUIREMENTS} in all")
        else:
            children = [self.node(part, (*parts_location, index), depth + 1) for index, part in enumerate(parts)]
        complete = bool(children) and all(child is not None for child in children)
        # Validate the combinator's own fields (id, label, extras) even when a part failed, with a
        # stand-in part, so that one answer lists every problem.
        stand_in: list[Requirement] = [LeiValid(kind="lei_valid")]
        try:
            combinator = model.model_validate({**item, "requirements": children if complete else stand_in})
        except ValidationError as error:
            self._pydantic(error, location)
            return None
        return combinator if complete else None

    def _pydantic(self, error: ValidationError, location: tuple[str | int, ...]) -> None:
        for item in error.errors(include_url=False):
            message = item["msg"].removeprefix("Value error, ")
            self.problem((*location, *item["loc"]), message)


def parse_requirements(data: object, prefix: str = "requirements") -> list[Requirement]:
    """Parse and validate a requirement list (the JSON an institution sends, or a notice's
    ``eligibility``); raise ``RequirementError`` naming every bad field under ``prefix``."""
    if not isinstance(data, list | tuple):
        raise RequirementError([(prefix, "expected a list of requirements")])
    if len(data) > MAX_REQUIREMENTS:
        raise RequirementError([(prefix, f"too many requirements: at most {MAX_REQUIREMENTS} in all")])
    parse = _Parse()
    parsed = [parse.node(item, (prefix, index), 1) for index, item in enumerate(data)]
    if parse.problems:
        raise RequirementError(parse.problems)
    return [requirement for requirement in parsed if requirement is not None]


def dump_requirements(requirements: Sequence[Requirement]) -> list[dict[str, Any]]:
    """The JSON form that ``parse_requirements`` reads back unchanged (unset optional fields left out)."""
    return [requirement.model_dump(mode="json", exclude_none=True) for requirement in requirements]


def requirements_json_schema() -> dict[str, Any]:
    """JSON Schema of a requirement list, for API documentation (limits are enforced by the parser)."""
    return _LIST_ADAPTER.json_schema()
