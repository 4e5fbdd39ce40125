"""The requirement language: what parses, what it normalises, and every error naming its field."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from hub.eligibility.language import (
    MAX_DEPTH,
    MAX_REQUIREMENTS,
    AllOf,
    CertificateRequirement,
    NationalCertificateType,
    RequirementError,
    TaxStatus,
    TaxStatusRequirement,
    canonical_scheme,
    dump_requirements,
    parse_requirements,
    requirements_json_schema,
)

EVERY_KIND: list[dict[str, Any]] = [
    {"kind": "tax_status", "status": "active", "id": "tax", "label": "NTS: business active"},
    {"kind": "business_not_closed"},
    {"kind": "vat_registered", "country": "DE"},
    {"kind": "lei_valid"},
    {"kind": "company_active", "jurisdiction": "GB"},
    {"kind": "certificate", "scheme": "ISO 9001", "valid_on": "2026-12-31"},
    {"kind": "national_certificate", "type": "SME"},
    {
        "kind": "any_of",
        "id": "quality",
        "requirements": [
            {"kind": "certificate", "scheme": "ISO 14001"},
            {"kind": "all_of", "requirements": [{"kind": "national_certificate", "type": "WOMEN_OWNED"}]},
        ],
    },
]


def problems(data: object, prefix: str = "requirements") -> list[tuple[str, str]]:
    with pytest.raises(RequirementError) as caught:
        parse_requirements(data, prefix)
    return caught.value.problems


def nest(depth: int) -> dict[str, Any]:
    """A requirement ``depth`` levels deep: all_of → all_of → … → lei_valid."""
    node: dict[str, Any] = {"kind": "lei_valid"}
    for _ in range(depth - 1):
        node = {"kind": "all_of", "requirements": [node]}
    return node


def test_every_kind_parses_and_dumps_back_unchanged() -> None:
    parsed = parse_requirements(EVERY_KIND)
    assert [r.kind for r in parsed] == [item["kind"] for item in EVERY_KIND]
    assert dump_requirements(parsed) == EVERY_KIND
    assert parse_requirements(json.loads(json.dumps(dump_requirements(parsed)))) == parsed


def test_defaults_and_normalisation() -> None:
    tax, cert, sme, vat = parse_requirements(
        [
            {"kind": "tax_status"},
            {"kind": "certificate", "scheme": " iso9001:2015 ", "valid_on": "2026-12-31"},
            {"kind": "national_certificate", "type": "sme"},
            {"kind": "vat_registered", "country": "gr"},
        ]
    )
    assert isinstance(tax, TaxStatusRequirement) and tax.status is TaxStatus.ACTIVE
    assert isinstance(cert, CertificateRequirement) and cert.scheme == "ISO 9001"
    assert cert.valid_on == date(2026, 12, 31)
    assert sme.type is NationalCertificateType.SME  # type: ignore[union-attr]
    assert vat.country == "EL"  # type: ignore[union-attr]  # VIES calls Greece EL


@pytest.mark.parametrize(
    ("text", "scheme"),
    [
        ("ISO 9001:2015", "ISO 9001"),
        ("ISO9001", "ISO 9001"),
        ("iso 14001", "ISO 14001"),
        ("ISO/IEC 27001:2022", "ISO/IEC 27001"),
        ("ISO 27001", "ISO/IEC 27001"),
        ("ISO/IEC 20000-1:2018", "ISO/IEC 20000-1"),
        ("ISO 9999", None),
        ("", None),
    ],
)
def test_scheme_spellings(text: str, scheme: str | None) -> None:
    assert canonical_scheme(text) == scheme


def test_notices_carry_the_same_requirements_under_their_own_prefix() -> None:
    eligibility = ({"kind": "tax_status"}, {"kind": "certificate", "scheme": "ISO 9002"})  # a notice's tuple
    [(path, message)] = problems(eligibility, "eligibility")
    assert path == "eligibility.1.scheme" and message.startswith("unknown scheme 'ISO 9002'; known: ISO 9001,")


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ([{"kind": "iso"}], "requirements.0.kind", "unknown kind 'iso'; expected one of tax_status,"),
        ([{"status": "active"}], "requirements.0.kind", "missing; expected one of"),
        (["tax_status"], "requirements.0", "expected an object with a 'kind'"),
        ([{"kind": "tax_status", "status": "paid"}], "requirements.0.status", "Input should be 'active'"),
        ([{"kind": "lei_valid", "lei": "X"}], "requirements.0.lei", "Extra inputs are not permitted"),
        ([{"kind": "vat_registered", "country": "US"}], "requirements.0.country", "unknown VIES country 'US'"),
        ([{"kind": "company_active", "jurisdiction": "ZZ"}], "requirements.0.jurisdiction", "unknown country 'ZZ'"),
        ([{"kind": "certificate"}], "requirements.0.scheme", "Field required"),
        (
            [{"kind": "certificate", "scheme": "ISO 9001", "valid_on": "31/12/2026"}],
            "requirements.0.valid_on",
            "Input should be a valid date",
        ),
        (
            [{"kind": "national_certificate", "type": "ISO9001"}],
            "requirements.0.type",
            "'ISO9001' is a management-system scheme; use kind 'certificate'",
        ),
        ([{"kind": "national_certificate", "type": "VENTURE"}], "requirements.0.type", "unknown type 'VENTURE'"),
        ([{"kind": "lei_valid", "id": "has space"}], "requirements.0.id", "1-64 letters"),
        ([{"kind": "lei_valid", "label": ""}], "requirements.0.label", "String should have at least 1 character"),
        ([{"kind": "all_of", "requirements": []}], "requirements.0.requirements", "expected a non-empty list"),
        ([{"kind": "any_of"}], "requirements.0.requirements", "expected a non-empty list"),
        ({"kind": "tax_status"}, "requirements", "expected a list of requirements"),
    ],
)
def test_each_error_names_its_field(data: object, path: str, message: str) -> None:
    [(found_path, found_message)] = problems(data)
    assert found_path == path
    assert found_message.startswith(message), found_message


def test_nested_error_path_and_every_problem_in_one_answer() -> None:
    data = [
        {"kind": "tax_status"},
        {"kind": "lei_valid", "id": "a"},
        {
            "kind": "all_of",
            "label": "",
            "requirements": [{"kind": "certificate", "scheme": "ISO 9999"}, {"kind": "lei_valid", "id": "a"}],
        },
    ]
    found = problems(data)
    assert [path for path, _ in found] == [
        "requirements.2.requirements.0.scheme",
        "requirements.2.requirements.1.id",
        "requirements.2.label",
    ]
    assert found[1][1] == "duplicate id 'a' (also at requirements.1)"
    assert "requirements.2.requirements.0.scheme: unknown scheme 'ISO 9999'" in str(RequirementError(found))


def test_depth_limit() -> None:
    [deepest] = parse_requirements([nest(MAX_DEPTH)])
    assert isinstance(deepest, AllOf)
    found = problems([nest(MAX_DEPTH + 1)])
    assert found == [
        (
            "requirements.0.requirements.0.requirements.0.requirements",
            f"nested too deep: requirements may nest at most {MAX_DEPTH} levels",
        )
    ]


def test_size_limit_counts_every_node() -> None:
    assert len(parse_requirements([{"kind": "lei_valid"}] * MAX_REQUIREMENTS)) == MAX_REQUIREMENTS
    assert problems([{"kind": "lei_valid"}] * (MAX_REQUIREMENTS + 1)) == [
        ("requirements", f"too many requirements: at most {MAX_REQUIREMENTS} in all")
    ]
    # 2 combinators + 2 x 24 leaves = 50 nodes: fine; one more leaf is over.
    half = {"kind": "all_of", "requirements": [{"kind": "lei_valid"}] * 24}
    assert len(parse_requirements([half, half])) == 2
    over = {"kind": "all_of", "requirements": [{"kind": "lei_valid"}] * 25}
    [(path, message)] = problems([half, over])
    assert path == "requirements.1.requirements.24" and message.startswith("too many requirements")


def test_a_huge_input_is_refused_without_walking_it() -> None:
    huge = [{"kind": "lei_valid"}] * 1_000_000
    assert problems([{"kind": "all_of", "requirements": huge}]) == [
        ("requirements.0.requirements", f"too many requirements: at most {MAX_REQUIREMENTS} in all")
    ]
    assert len(problems(["x"] * 1_000_000)) == 1


def test_json_schema_names_every_kind() -> None:
    schema = json.dumps(requirements_json_schema())
    for kind in ("tax_status", "business_not_closed", "vat_registered", "lei_valid", "company_active"):
        assert f'"const": "{kind}"' in schema
    for kind in ("certificate", "national_certificate", "all_of", "any_of"):
        assert f'"const": "{kind}"' in schema


def test_every_requirement_example_in_the_docs_parses() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "eligibility.md").read_text(encoding="utf-8")
    blocks = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, flags=re.S)]
    requirement_lists = [block for block in blocks if isinstance(block, list)]
    assert len(requirement_lists) >= 5
    for block in requirement_lists:
        assert dump_requirements(parse_requirements(block))
