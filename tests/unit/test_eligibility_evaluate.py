"""The evaluator on credentials shaped as the shipped mappings yield them (see test_mapping_sources)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from hub.eligibility.evaluate import (
    EligibilityAnswer,
    RequirementVerdict,
    Verdict,
    combine_all,
    combine_any,
    evaluate,
)
from hub.eligibility.language import RequirementError, parse_requirements
from mappings.credentials import Credential, Evidence

FETCHED = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
MET, NOT_MET, UNKNOWN = Verdict.MET, Verdict.NOT_MET, Verdict.UNKNOWN


def midnight_after(day: date) -> datetime:
    """How the mapping engine stores "valid through ``day``" (exclusive bound)."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)


def credential(
    type_: str,
    subject: str,
    status: str,
    attributes: dict[str, Any],
    *,
    source: str,
    valid_from: datetime | None = FETCHED,
    valid_until: datetime | None = None,
    fetched: datetime = FETCHED,
    pointer: str = "",
) -> Credential:
    return Credential(
        type=type_,
        subject=subject,
        status=status,
        attributes=attributes,
        valid_from=valid_from,
        valid_until=valid_until,
        source=source,
        evidence=Evidence(source, subject, fetched, "a" * 64, "b" * 64, pointer),
    )


def tax(status: str, *, fetched: datetime = FETCHED, closed_on: str | None = None) -> Credential:
    names = {"active": "계속사업자", "suspended": "휴업자", "closed": "폐업자"}
    attributes = {"status_name": names.get(status), "closed_on": closed_on, "tax_type": "부가가치세 일반과세자"}
    return credential(
        "tax_status",
        "1234567891",
        status,
        attributes,
        source="nts",
        valid_from=fetched,
        valid_until=fetched + timedelta(days=7),
        fetched=fetched,
        pointer="data[][0]",
    )


def vat(status: str, country: str = "DE", number: str = "123456788") -> Credential:
    attributes = {"country_code": country, "vat_number": number, "name": "ACME GMBH"}
    return credential(
        "vat_registration",
        f"{country}{number}",
        status,
        attributes,
        source="vies",
        valid_until=FETCHED + timedelta(days=30),
        pointer="/soap:Envelope/soap:Body/v:checkVatResponse",
    )


def lei(status: str = "issued", entity: str | None = "active", renewal: date = date(2026, 12, 1)) -> Credential:
    attributes = {"entity_status": entity, "legal_name": "Beispiel Holding GmbH", "next_renewal_date": str(renewal)}
    until = datetime.combine(renewal, datetime.min.time(), UTC)
    return credential("lei_registration", "5299000J2N45DDNE4Y28", status, attributes, source="gleif", valid_until=until)


def company(status: str, raw: str, jurisdiction: str = "england-wales", ceased_on: str | None = None) -> Credential:
    attributes = {"company_status": raw, "jurisdiction": jurisdiction, "ceased_on": ceased_on, "company_name": "EX"}
    return credential(
        "company_registration",
        "09446231",
        status,
        attributes,
        source="companies_house",
        valid_until=FETCHED + timedelta(days=30),
    )


def iaf(number: str, standard: str, status: str = "active", expiry: date = date(2027, 1, 9)) -> Credential:
    attributes = {
        "certificate_number": number,
        "standard": standard,
        "scheme": standard.split(":")[0].strip(),
        "certification_body": "CB Ltd",
        "expiry_date": str(expiry),
    }
    return credential(
        "management_system_certificate",
        "ce-1",
        status,
        attributes,
        source="iaf",
        valid_until=midnight_after(expiry),
        pointer="[].certificates[][0]",
    )


def national(
    kind: str,
    status: str = "valid",
    valid_from: date = date(2025, 4, 1),
    valid_until: date | None = date(2027, 3, 31),
    number: str = "N-1",
) -> Credential:
    attributes = {"kind": kind, "number": number, "issuer": "중소벤처기업부", "valid_until": str(valid_until)}
    return credential(
        "national_certificate",
        "1234567891",
        status,
        attributes,
        source="national_certs",
        valid_from=datetime.combine(valid_from, datetime.min.time(), UTC),
        valid_until=midnight_after(valid_until) if valid_until else None,
    )


def judge(
    requirement: dict[str, Any],
    credentials: list[Credential],
    *,
    on: date | datetime = NOW,
    pending: tuple[str, ...] = (),
) -> RequirementVerdict:
    answer = evaluate(parse_requirements([requirement]), credentials, on=on, now=NOW, pending_systems=pending)
    [verdict] = answer.requirements
    return verdict


# -- combinators --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), list(itertools.product(Verdict, repeat=2)))
def test_three_valued_logic(a: Verdict, b: Verdict) -> None:
    both = {a, b}
    expected_all = NOT_MET if NOT_MET in both else UNKNOWN if UNKNOWN in both else MET
    expected_any = MET if MET in both else UNKNOWN if UNKNOWN in both else NOT_MET
    assert combine_all([a, b]) is expected_all and combine_any([a, b]) is expected_any


# -- tax status ---------------------------------------------------------------------------------------


def test_tax_status_active_is_met_with_its_evidence() -> None:
    verdict = judge({"kind": "tax_status", "status": "active", "id": "tax"}, [tax("active")])
    assert (verdict.verdict, verdict.id, verdict.path) == (MET, "tax", "requirements.0")
    assert verdict.reason == "tax status is active as of 2026-03-01T09:30Z"
    [cited] = verdict.credentials
    assert (cited.type, cited.source, cited.status, cited.decisive, cited.verdict) == (
        "tax_status",
        "nts",
        "active",
        True,
        MET,
    )
    assert cited.valid_until == FETCHED + timedelta(days=7)
    assert (cited.evidence.fetched_at, cited.evidence.response_sha256, cited.evidence.pointer) == (
        FETCHED,
        "a" * 64,
        "data[][0]",
    )
    assert cited.attributes["status_name"] == "계속사업자"


@pytest.mark.parametrize(
    ("credential_", "reason"),
    [
        (
            tax("closed", closed_on="2026-02-27"),
            "tax status is closed since 2026-02-27 as of 2026-03-01T09:30Z, not active",
        ),
        (tax("suspended"), "tax status is suspended as of 2026-03-01T09:30Z, not active"),
        (tax("unregistered"), "business number 1234567891 is not registered with NTS"),
    ],
)
def test_tax_status_not_met_says_why(credential_: Credential, reason: str) -> None:
    verdict = judge({"kind": "tax_status"}, [credential_])
    assert (verdict.verdict, verdict.reason) == (NOT_MET, reason)


def test_tax_status_unknown_when_missing_pending_stale_not_yet_valid_or_not_understood() -> None:
    assert judge({"kind": "tax_status"}, []).reason == "no tax status on record"
    pending = judge({"kind": "tax_status"}, [], pending=("nts", "vies"))
    assert (pending.verdict, pending.reason) == (UNKNOWN, "no tax status on record; fetch still pending from nts")
    stale = judge({"kind": "tax_status"}, [tax("active")], on=FETCHED + timedelta(days=8))
    assert stale.verdict is UNKNOWN
    assert stale.reason == (
        "tax status evidence expired: valid through 2026-03-08 (fetched 2026-03-01T09:30Z, "
        "last known status active); awaiting refresh"
    )
    early = judge({"kind": "tax_status"}, [tax("active")], on=date(2026, 2, 1))
    assert early.verdict is UNKNOWN and "valid only from 2026-03-01T09:30Z, after 2026-02-01" in early.reason
    odd = judge({"kind": "tax_status"}, [tax("unknown")])
    assert (odd.verdict, odd.reason) == (UNKNOWN, "nts reported tax status 'unknown', not understood")
    slot = judge({"kind": "tax_status"}, [tax("pending")])
    assert (slot.verdict, slot.reason) == (UNKNOWN, "tax status from nts is pending (fetch not completed)")


def test_a_later_fetch_supersedes_an_earlier_one_and_both_are_shown() -> None:
    later = FETCHED + timedelta(days=1)
    verdict = judge({"kind": "tax_status"}, [tax("active"), tax("closed", fetched=later, closed_on="2026-03-01")])
    assert verdict.verdict is NOT_MET and verdict.reason.startswith("tax status is closed since 2026-03-01")
    newest, oldest = verdict.credentials
    assert (newest.status, newest.decisive, oldest.status, oldest.verdict, oldest.decisive) == (
        "closed",
        True,
        "active",
        None,
        False,
    )
    assert oldest.note == "superseded by the fetch of 2026-03-02T09:30Z"


# -- business not closed ------------------------------------------------------------------------------


DISSOLVED = company("closed", "dissolved", ceased_on="2026-01-15")
LIQUIDATION = company("insolvency", "liquidation")
AS_OF = "as of 2026-03-01T09:30Z"
NEITHER = "no tax status or company registration on record (needs an NTS tax status or a company registration)"


@pytest.mark.parametrize(
    ("credentials", "expected", "reason"),
    [
        ([tax("suspended")], MET, "tax status is suspended (not closed) as of 2026-03-01T09:30Z"),
        ([tax("closed", closed_on="2026-02-27")], NOT_MET, "tax status is closed since 2026-02-27"),
        ([tax("active"), DISSOLVED], NOT_MET, "company 09446231 is dissolved since 2026-01-15"),
        ([LIQUIDATION], MET, f"company 09446231 is liquidation (not closed) {AS_OF}"),
        ([tax("pending"), LIQUIDATION], UNKNOWN, "tax status from nts is pending (fetch not completed)"),
        ([], UNKNOWN, NEITHER),
    ],
)  # fmt: skip
def test_business_not_closed(credentials: list[Credential], expected: Verdict, reason: str) -> None:
    verdict = judge({"kind": "business_not_closed"}, credentials)
    assert (verdict.verdict, verdict.reason) == (expected, reason)


# -- VAT, LEI, company --------------------------------------------------------------------------------


def test_vat_registered() -> None:
    assert judge({"kind": "vat_registered", "country": "DE"}, [vat("valid")]).verdict is MET
    invalid = judge({"kind": "vat_registered"}, [vat("invalid")])
    assert (invalid.verdict, invalid.reason) == (
        NOT_MET,
        "VAT number DE123456788 is not valid in VIES as of 2026-03-01T09:30Z",
    )
    # any valid registration will do when no country is asked for
    assert judge({"kind": "vat_registered"}, [vat("invalid"), vat("valid", "FR", "40303265045")]).verdict is MET
    elsewhere = judge({"kind": "vat_registered", "country": "FR"}, [vat("valid")])
    assert (elsewhere.verdict, elsewhere.reason) == (
        UNKNOWN,
        "no VAT registration in FR on record (1 other credential considered)",
    )
    [aside] = elsewhere.credentials
    assert (aside.verdict, aside.note, aside.decisive) == (None, "country DE, not FR", False)
    assert judge({"kind": "vat_registered", "country": "GR"}, [vat("valid", "EL", "094259216")]).verdict is MET


@pytest.mark.parametrize(
    ("credential_", "expected", "reason"),
    [
        (lei(), MET, "LEI 5299000J2N45DDNE4Y28 is issued, entity active as of 2026-03-01T09:30Z"),
        (lei("lapsed"), NOT_MET, "LEI 5299000J2N45DDNE4Y28 registration is lapsed"),
        (lei(entity="inactive"), NOT_MET, "LEI 5299000J2N45DDNE4Y28 is issued but the legal entity is inactive"),
        (lei(entity=None), UNKNOWN, "LEI 5299000J2N45DDNE4Y28 is issued; entity status not stated"),
        (lei(renewal=date(2026, 3, 2)), UNKNOWN, "LEI registration evidence expired: valid through 2026-03-01"),
    ],
)
def test_lei_valid(credential_: Credential, expected: Verdict, reason: str) -> None:
    verdict = judge({"kind": "lei_valid"}, [credential_])
    assert verdict.verdict is expected and verdict.reason.startswith(reason), verdict.reason


def test_company_active() -> None:
    assert judge({"kind": "company_active", "jurisdiction": "GB"}, [company("active", "active")]).verdict is MET
    assert (
        judge({"kind": "company_active", "jurisdiction": "UK"}, [company("active", "active", "scotland")]).verdict
        is MET
    )
    wound_up = judge({"kind": "company_active"}, [company("insolvency", "liquidation")])
    assert (wound_up.verdict, wound_up.reason) == (NOT_MET, "company 09446231 is liquidation, not active")
    elsewhere = judge({"kind": "company_active", "jurisdiction": "DE"}, [company("active", "active")])
    assert elsewhere.verdict is UNKNOWN and elsewhere.credentials[0].note == "jurisdiction GB, not DE"
    odd = judge({"kind": "company_active"}, [company("registered", "registered")])
    assert odd.verdict is UNKNOWN and "'registered', not understood" in odd.reason


# -- certificates -------------------------------------------------------------------------------------


def test_certificate_picks_the_best_of_several_and_shows_the_others() -> None:
    certificates = [
        iaf("Q-0", "ISO 9001:2015", "withdrawn"),
        iaf("Q-1", "ISO 9001:2015", "active"),
        iaf("E-2", "ISO 14001:2015", "active"),
        national("SME"),  # not a management-system certificate: not even listed
    ]
    verdict = judge({"kind": "certificate", "scheme": "ISO 9001"}, certificates)
    assert verdict.verdict is MET
    assert verdict.reason == "ISO 9001 certificate Q-1 (CB Ltd) is active through 2027-01-09"
    assert len(verdict.credentials) == 3
    by_number = {c.attributes["certificate_number"]: c for c in verdict.credentials}
    assert by_number["Q-1"].decisive and by_number["Q-1"].verdict is MET
    assert by_number["Q-0"].verdict is NOT_MET and not by_number["Q-0"].decisive
    assert (by_number["E-2"].verdict, by_number["E-2"].note) == (None, "scheme ISO 14001, not ISO 9001")


def test_certificate_on_a_date_after_it_expires_is_not_met() -> None:
    requirement = {"kind": "certificate", "scheme": "ISO 9001", "valid_on": "2026-12-31"}
    verdict = judge(requirement, [iaf("Q-1", "ISO 9001:2015", expiry=date(2026, 6, 30))])
    assert (verdict.verdict, verdict.reason) == (
        NOT_MET,
        "ISO 9001 certificate Q-1 expires 2026-06-30, before 2026-12-31",
    )
    # the first day after expiry is already outside; the last covered day is fine
    day_after = judge({**requirement, "valid_on": "2026-07-01"}, [iaf("Q-1", "ISO 9001", expiry=date(2026, 6, 30))])
    assert day_after.verdict is NOT_MET
    # a second certificate that lasts longer wins
    assert (
        judge({**requirement, "valid_on": "2026-06-30"}, [iaf("Q-1", "ISO 9001", expiry=date(2026, 6, 30))]).verdict
        is MET
    )
    both = judge(requirement, [iaf("Q-1", "ISO 9001", expiry=date(2026, 6, 30)), iaf("Q-9", "ISO 9001")])
    assert both.verdict is MET and [c.decisive for c in both.credentials] == [False, True]


def test_certificate_held_nationally_counts_and_bad_statuses_do_not() -> None:
    assert judge({"kind": "certificate", "scheme": "ISO 9001"}, [national("ISO9001")]).verdict is MET
    revoked = judge({"kind": "certificate", "scheme": "ISO 9001"}, [national("ISO9001", "revoked", number="ISO-2")])
    assert (revoked.verdict, revoked.reason) == (NOT_MET, "ISO 9001 certificate ISO-2 is revoked")
    suspended = judge({"kind": "certificate", "scheme": "ISO 14001"}, [iaf("E-2", "ISO 14001", "suspended")])
    assert suspended.verdict is NOT_MET


def test_certificate_unknown_when_expired_missing_or_not_yet_valid() -> None:
    expired = judge({"kind": "certificate", "scheme": "ISO 9001"}, [iaf("Q-1", "ISO 9001", expiry=date(2026, 2, 28))])
    assert expired.verdict is UNKNOWN and expired.reason.startswith(
        "ISO 9001 certificate evidence expired: valid through 2026-02-28"
    )
    missing = judge(
        {"kind": "certificate", "scheme": "ISO 45001"}, [iaf("Q-1", "ISO 9001")], pending=("national_certs",)
    )
    assert (
        missing.reason
        == "no ISO 45001 certificate on record (1 other credential considered); fetch still pending from national_certs"
    )
    future = national("ISO9001", valid_from=date(2026, 5, 1))
    assert judge({"kind": "certificate", "scheme": "ISO 9001"}, [future]).verdict is UNKNOWN


def test_national_certificate() -> None:
    sme = {"kind": "national_certificate", "type": "SME"}
    assert judge(sme, [national("SME")]).reason == "SME certificate N-1 (중소벤처기업부) is valid through 2027-03-31"
    assert judge(sme, [national("SME", "revoked")]).verdict is NOT_MET
    lapsed = judge(sme, [national("SME", valid_until=date(2026, 2, 28))])
    assert lapsed.verdict is UNKNOWN and "evidence expired: valid through 2026-02-28" in lapsed.reason
    future = judge({**sme, "valid_on": "2027-06-01"}, [national("SME")])
    assert (future.verdict, future.reason) == (NOT_MET, "SME certificate N-1 expires 2027-03-31, before 2027-06-01")
    direct = judge({"kind": "national_certificate", "type": "DIRECT_PRODUCTION"}, [national("SME")])
    assert (direct.verdict, direct.reason) == (
        UNKNOWN,
        "no DIRECT_PRODUCTION certificate on record (1 other credential considered)",
    )
    assert judge(sme, [national("SME", valid_until=None)]).reason.endswith("with no stated expiry")


# -- the answer ---------------------------------------------------------------------------------------

NOTICE_REQUIREMENTS = [
    {"kind": "tax_status", "id": "tax"},
    {"kind": "business_not_closed", "id": "open"},
    {
        "kind": "any_of",
        "id": "quality",
        "label": "ISO 9001 or an SME confirmation",
        "requirements": [
            {"kind": "certificate", "scheme": "ISO 9001", "id": "iso", "valid_on": "2026-12-31"},
            {"kind": "national_certificate", "type": "SME", "id": "sme"},
        ],
    },
    {"kind": "all_of", "id": "eu", "requirements": [{"kind": "vat_registered"}, {"kind": "lei_valid"}]},
]


def test_answer_per_requirement_with_combinator_parts_and_summary() -> None:
    credentials = [tax("active"), iaf("Q-1", "ISO 9001", expiry=date(2026, 6, 30)), national("SME"), vat("valid")]
    answer = evaluate(parse_requirements(NOTICE_REQUIREMENTS), credentials, on=NOW, now=NOW)
    assert [(r.id, r.verdict) for r in answer.requirements] == [
        ("tax", MET),
        ("open", MET),
        ("quality", MET),
        ("eu", UNKNOWN),
    ]
    quality, eu = answer.requirements[2], answer.requirements[3]
    assert [(p.id, p.verdict) for p in quality.parts] == [("iso", NOT_MET), ("sme", MET)]
    assert quality.reason == "met by sme" and quality.parameters == {}
    assert quality.parts[0].parameters == {"scheme": "ISO 9001", "valid_on": "2026-12-31"}
    assert eu.reason == "1 of 2 unknown (requirements.3.requirements.1: no LEI registration on record)"
    assert (answer.verdict, answer.counts) == (UNKNOWN, {"met": 3, "not_met": 0, "unknown": 1})
    assert answer.summary == (
        "1 of 4 unknown (eu: 1 of 2 unknown (requirements.3.requirements.1: no LEI registration on record))"
    )
    closed = evaluate(
        parse_requirements(NOTICE_REQUIREMENTS), [tax("closed"), iaf("Q-1", "ISO 9001", "withdrawn")], on=NOW, now=NOW
    )
    assert closed.verdict is NOT_MET and closed.counts == {"met": 0, "not_met": 2, "unknown": 2}
    assert closed.requirements[2].reason == ("none of 2 met, 1 unknown (sme: no SME certificate on record)")
    assert closed.summary.startswith("2 of 4 not met (tax: tax status is closed")


def test_no_requirements_is_met_and_says_so() -> None:
    answer = evaluate([], [tax("active")], on=NOW, now=NOW)
    assert (answer.verdict, answer.summary, answer.requirements) == (MET, "no requirements stated", [])


def test_answer_round_trips_through_json() -> None:
    credentials = [tax("active"), iaf("Q-1", "ISO 9001"), national("SME"), vat("valid"), lei()]
    answer = evaluate(parse_requirements(NOTICE_REQUIREMENTS), credentials, on=NOW, now=NOW)
    text = json.dumps(answer.to_dict(), ensure_ascii=False)
    assert EligibilityAnswer.model_validate_json(text) == answer
    assert answer.verdict is MET and '"verdict": "met"' in text and '"response_sha256": "' in text


def test_evaluation_instant_from_a_date() -> None:
    requirements = parse_requirements([{"kind": "tax_status"}])
    today = evaluate(requirements, [tax("active")], on=NOW.date(), now=NOW)
    assert today.on == NOW and today.verdict is MET  # today means now, not midnight before the fetch
    later = evaluate(requirements, [tax("active")], on=date(2026, 3, 5), now=NOW)
    assert later.on == datetime(2026, 3, 5, tzinfo=UTC) and later.verdict is MET
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(requirements, [], on=datetime(2026, 3, 2), now=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(requirements, [], on=NOW, now=datetime(2026, 3, 2))


# -- conditions only the source states ------------------------------------------------------------------


def test_a_stated_condition_is_unknown_with_the_condition_spelled_out() -> None:
    requirement = {
        "kind": "stated_condition",
        "condition": "region_restriction",
        "details": {"regions": "서울특별시"},
    }
    verdict = judge(requirement, [tax("active")])
    assert verdict.verdict is UNKNOWN
    assert "region_restriction" in verdict.reason and "서울특별시" in verdict.reason
    assert "manual check" in verdict.reason
    assert verdict.credentials == []
    # inside all_of it keeps the whole answer unknown even when everything checkable is met
    both = judge({"kind": "all_of", "requirements": [{"kind": "tax_status", "status": "active"}, requirement]},
                 [tax("active")])
    assert both.verdict is UNKNOWN


def test_a_stated_condition_must_name_its_condition() -> None:
    with pytest.raises(RequirementError) as error:
        parse_requirements([{"kind": "stated_condition", "condition": "Region Restriction!"}])
    assert [path for path, _ in error.value.problems] == ["requirements.0.condition"]
