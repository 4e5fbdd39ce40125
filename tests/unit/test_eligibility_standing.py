"""Eligibility on credentials the shipped mappings make of registrations that ended: a source that
says the registration is not in force is evidence for *not met*, with a reason naming its status;
certificates are judged on their own dates, also for a date before the fetch."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from hub.eligibility.evaluate import RequirementVerdict, Verdict, evaluate
from hub.eligibility.language import parse_requirements
from mappings.credentials import Credential
from tests.unit.test_mapping_sources import CH, FETCHED, NATIONAL, NTS, apply, iaf_cert, vies_body
from tests.unit.test_mapping_standing import iaf_body, lei_record

NOW = FETCHED + timedelta(days=1)
MET, NOT_MET, UNKNOWN = Verdict.MET, Verdict.NOT_MET, Verdict.UNKNOWN
LEI = "5299000J2N45DDNE4Y28"


def judge(
    requirement: dict[str, Any], credentials: list[Credential], *, on: date | datetime = NOW
) -> RequirementVerdict:
    [verdict] = evaluate(parse_requirements([requirement]), credentials, on=on, now=NOW).requirements
    return verdict


def lei(status: str = "ISSUED", **kwargs: str) -> list[Credential]:
    return apply("gleif", lei_record(status, **kwargs), LEI)


def test_lapsed_lei_with_a_renewal_date_two_years_back_is_not_met_naming_the_status() -> None:
    verdict = judge({"kind": "lei_valid"}, lei("LAPSED", renewal="2024-03-01T00:00:00Z"))
    assert (verdict.verdict, verdict.reason) == (
        NOT_MET,
        f"LEI {LEI} registration is lapsed (renewal was due 2024-03-01)",
    )
    [cited] = verdict.credentials
    assert cited.status == "lapsed" and cited.attributes["next_renewal_date"] == "2024-03-01" and cited.decisive


@pytest.mark.parametrize("status", ["RETIRED", "ANNULLED", "MERGED", "DUPLICATE"])
def test_ended_lei_registrations_are_not_met(status: str) -> None:
    verdict = judge({"kind": "lei_valid"}, lei(status, renewal="2025-01-01T00:00:00Z"))
    assert (verdict.verdict, verdict.reason) == (NOT_MET, f"LEI {LEI} registration is {status.lower()}")


def test_inactive_entity_is_not_met() -> None:
    verdict = judge({"kind": "lei_valid"}, lei(entity="INACTIVE"))
    assert (verdict.verdict, verdict.reason) == (NOT_MET, f"LEI {LEI} is issued but the legal entity is inactive")


def test_issued_lei_not_renewed_by_its_renewal_date_is_not_met() -> None:
    verdict = judge({"kind": "lei_valid"}, lei(renewal="2026-02-01T00:00:00Z"))
    assert (verdict.verdict, verdict.reason) == (
        NOT_MET,
        f"LEI {LEI} is issued but not renewed (renewal was due 2026-02-01)",
    )


def test_issued_lei_is_met_and_its_window_covers_a_date_before_the_fetch() -> None:
    assert judge({"kind": "lei_valid"}, lei()).verdict is MET
    assert judge({"kind": "lei_valid"}, lei(), on=date(2020, 6, 1)).verdict is MET


@pytest.mark.parametrize(
    ("raw", "requirement", "reason"),
    [
        ("dissolved", "company_active", "company 09446231 is dissolved since 2024-05-02, not active"),
        ("removed", "company_active", "company 09446231 is removed since 2024-05-02, not active"),
        ("liquidation", "company_active", "company 09446231 is liquidation since 2024-05-02, not active"),
        ("converted-closed", "business_not_closed", "company 09446231 is converted-closed since 2024-05-02"),
    ],
)
def test_companies_not_in_force_are_not_met(raw: str, requirement: str, reason: str) -> None:
    creds = apply("companies_house", {**CH, "company_status": raw, "date_of_cessation": "2024-05-02"}, "09446231")
    verdict = judge({"kind": requirement}, creds)
    assert (verdict.verdict, verdict.reason) == (NOT_MET, reason)


def test_company_status_the_rules_do_not_know_is_unknown_unless_classed_not_in_force() -> None:
    registered = apply("companies_house", {**CH, "company_status": "registered"}, "09446231")
    assert judge({"kind": "company_active"}, registered).verdict is UNKNOWN


def nts(subject: str) -> list[Credential]:
    return [c for c in apply("nts", NTS, "batch") if c.subject == subject]


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        ("2208162517", "tax status is suspended as of 2026-03-01T09:30Z, not active"),
        ("1048137225", "tax status is closed since 2025-01-31 as of 2026-03-01T09:30Z, not active"),
        ("1111111119", "business number 1111111119 is not registered with NTS"),
    ],
)
def test_korean_businesses_suspended_or_closed_are_not_met(subject: str, reason: str) -> None:
    verdict = judge({"kind": "tax_status", "status": "active"}, nts(subject))
    assert (verdict.verdict, verdict.reason) == (NOT_MET, reason)


def test_a_closed_business_read_weeks_ago_is_stale_evidence_not_a_verdict() -> None:
    verdict = judge({"kind": "tax_status", "status": "active"}, nts("1048137225"), on=FETCHED + timedelta(days=8))
    assert verdict.verdict is UNKNOWN and "awaiting refresh" in verdict.reason


def test_vies_invalid_is_not_met() -> None:
    creds = apply("vies", vies_body("false", "---", "---", vat=""), "DE999999999")
    verdict = judge({"kind": "vat_registered", "country": "DE"}, creds)
    assert (verdict.verdict, verdict.reason) == (
        NOT_MET,
        "VAT number DE999999999 is not valid in VIES as of 2026-03-01T09:30Z",
    )


def iaf(status: str, expiry: str) -> list[Credential]:
    return apply("iaf", iaf_body(iaf_cert("Q-1", "ISO 9001:2015", status, expiry)), "ce-1")


@pytest.mark.parametrize("status", ["withdrawn", "suspended"])
def test_iaf_certificate_withdrawn_or_suspended_is_not_met(status: str) -> None:
    verdict = judge({"kind": "certificate", "scheme": "ISO 9001"}, iaf(status, "2027-01-09"))
    assert (verdict.verdict, verdict.reason) == (NOT_MET, f"ISO 9001 certificate Q-1 is {status}")


def test_iaf_certificate_the_issuer_reports_expired_is_not_met_now_and_met_within_its_dates() -> None:
    creds = iaf("expired", "2025-10-31")
    now = judge({"kind": "certificate", "scheme": "ISO 9001"}, creds)
    assert (now.verdict, now.reason) == (NOT_MET, "ISO 9001 certificate Q-1 is expired (valid through 2025-10-31)")
    assert now.credentials[0].valid_until is not None
    then = judge({"kind": "certificate", "scheme": "ISO 9001"}, creds, on=date(2024, 6, 1))
    assert (then.verdict, then.reason) == (
        MET,
        "ISO 9001 certificate Q-1 (CB Ltd) was valid through 2025-10-31 (expired since)",
    )
    valid_on = judge({"kind": "certificate", "scheme": "ISO 9001", "valid_on": "2024-06-01"}, creds)
    assert valid_on.verdict is MET
    before_issue = judge({"kind": "certificate", "scheme": "ISO 9001"}, creds, on=date(2022, 6, 1))
    assert before_issue.verdict is UNKNOWN


def test_active_certificate_past_its_expiry_date_is_not_met() -> None:
    verdict = judge({"kind": "certificate", "scheme": "ISO 9001"}, iaf("active", "2025-10-31"))
    assert verdict.verdict is NOT_MET and verdict.reason.startswith("ISO 9001 certificate Q-1 expires 2025-10-31")


def test_active_certificate_answers_met_for_a_date_before_the_fetch_within_its_dates() -> None:
    verdict = judge({"kind": "certificate", "scheme": "ISO 9001"}, iaf("active", "2027-01-09"), on=date(2024, 6, 1))
    assert (verdict.verdict, verdict.reason) == (MET, "ISO 9001 certificate Q-1 (CB Ltd) is active through 2027-01-09")


def test_national_certificate_expired_by_its_issuer() -> None:
    body = NATIONAL.replace("<nc:status>valid</nc:status>", "<nc:status>expired</nc:status>").replace(
        "2026-03-31", "2025-12-31"
    )
    creds = apply("national_certs", body, "1234567891")
    now = judge({"kind": "national_certificate", "type": "SME"}, creds)
    assert (now.verdict, now.reason) == (NOT_MET, "SME certificate SME-1 is expired (valid through 2025-12-31)")
    then = judge({"kind": "national_certificate", "type": "SME"}, creds, on=date(2025, 6, 1))
    assert then.verdict is MET


def test_a_certificate_reported_expired_before_its_stated_expiry_date_is_not_met_from_the_fetch() -> None:
    creds = iaf("expired", "2027-01-09")
    assert judge({"kind": "certificate", "scheme": "ISO 9001"}, creds).verdict is NOT_MET
    assert judge({"kind": "certificate", "scheme": "ISO 9001"}, creds, on=date(2025, 6, 1)).verdict is MET
