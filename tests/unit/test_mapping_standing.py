"""Standing and validity of every shipped mapping at the edges real registries produce: registrations
that lapsed, were retired or closed, certificates withdrawn or expired, and stated dates in the past.

The rule under test (docs/register-once.md, "Standing and validity"): a status the mapping classes as
not in force gives ``not_in_force``; so does an end date the source states at or before the fetch;
the stated dates are kept as stated; ``valid_from`` never passes ``valid_until``.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mappings.credentials import Credential, Standing
from mappings.engine import MappingError, load_mapping
from tests.support.connectors import apply_raw
from tests.unit.test_mapping_sources import CH, FETCHED, GLEIF, NATIONAL, NTS, apply, iaf_cert, vies_body

IN, OUT, UNKNOWN = Standing.IN_FORCE, Standing.NOT_IN_FORCE, Standing.UNKNOWN


def ordered(credential: Credential) -> bool:
    return (
        credential.valid_from is None
        or credential.valid_until is None
        or credential.valid_from <= credential.valid_until
    )


# -- GLEIF ---------------------------------------------------------------------------------------------


def lei_record(
    status: str = "ISSUED",
    *,
    entity: str = "ACTIVE",
    renewal: str = "2026-12-01T00:00:00Z",
    initial: str = "2014-02-10T14:05:00Z",
) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(GLEIF)
    registration = record["data"]["attributes"]["registration"]
    registration.update(status=status, nextRenewalDate=renewal, initialRegistrationDate=initial)
    record["data"]["attributes"]["entity"]["status"] = entity
    return record


def test_gleif_issued_lei_runs_from_initial_registration_to_renewal() -> None:
    [cred] = apply("gleif", lei_record(), "5299000J2N45DDNE4Y28")
    assert cred.standing is IN
    assert cred.valid_from == datetime(2014, 2, 10, 14, 5, tzinfo=UTC)
    assert cred.valid_until == datetime(2026, 12, 1, tzinfo=UTC)


def test_gleif_lapsed_lei_with_a_renewal_date_two_years_back_keeps_it_and_is_not_in_force() -> None:
    [cred] = apply("gleif", lei_record("LAPSED", renewal="2024-03-01T00:00:00Z"), "5299000J2N45DDNE4Y28")
    assert (cred.status, cred.standing) == ("lapsed", OUT)
    assert cred.valid_until == datetime(2024, 3, 1, tzinfo=UTC)  # as the source states it, in the past
    assert cred.valid_from == datetime(2014, 2, 10, 14, 5, tzinfo=UTC) and ordered(cred)
    assert cred.attributes["next_renewal_date"] == "2024-03-01"


@pytest.mark.parametrize("status", ["RETIRED", "ANNULLED", "MERGED", "DUPLICATE", "CANCELLED"])
def test_gleif_ended_registrations_are_not_in_force(status: str) -> None:
    [cred] = apply("gleif", lei_record(status), "5299000J2N45DDNE4Y28")
    assert (cred.status, cred.standing) == (status.lower(), OUT)
    assert ordered(cred)


@pytest.mark.parametrize("status", ["PENDING_TRANSFER", "PENDING_ARCHIVAL"])
def test_gleif_pending_moves_of_an_issued_lei_are_in_force(status: str) -> None:
    [cred] = apply("gleif", lei_record(status), "5299000J2N45DDNE4Y28")
    assert cred.standing is IN


@pytest.mark.parametrize("status", ["PENDING_VALIDATION", "TRANSFERRED", "SOMETHING_NEW"])
def test_gleif_unsettled_statuses_are_unknown(status: str) -> None:
    [cred] = apply("gleif", lei_record(status), "5299000J2N45DDNE4Y28")
    assert cred.standing is UNKNOWN


def test_gleif_inactive_entity_puts_an_issued_lei_out_of_force() -> None:
    [cred] = apply("gleif", lei_record(entity="INACTIVE"), "5299000J2N45DDNE4Y28")
    assert (cred.status, cred.attributes["entity_status"], cred.standing) == ("issued", "inactive", OUT)


def test_gleif_issued_lei_whose_renewal_date_had_passed_is_not_in_force() -> None:
    [cred] = apply("gleif", lei_record(renewal="2026-02-01T00:00:00Z"), "5299000J2N45DDNE4Y28")
    assert (cred.status, cred.standing) == ("issued", OUT)
    assert cred.valid_until == datetime(2026, 2, 1, tzinfo=UTC) < FETCHED


def test_gleif_renewal_before_initial_registration_never_inverts_the_window() -> None:
    record = lei_record("LAPSED", renewal="2010-01-01T00:00:00Z", initial="2014-02-10T14:05:00Z")
    [cred] = apply("gleif", record, "5299000J2N45DDNE4Y28")
    assert cred.valid_from == cred.valid_until == datetime(2010, 1, 1, tzinfo=UTC)


# -- Companies House -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status", "standing"),
    [
        ("active", "active", IN),
        ("open", "active", IN),
        ("dissolved", "closed", OUT),
        ("closed", "closed", OUT),
        ("converted-closed", "closed", OUT),
        ("removed", "closed", OUT),
        ("liquidation", "insolvency", OUT),
        ("receivership", "insolvency", OUT),
        ("administration", "insolvency", OUT),
        ("voluntary-arrangement", "insolvency", OUT),
        ("insolvency-proceedings", "insolvency", OUT),
        ("registered", "registered", UNKNOWN),
    ],
)
def test_companies_house_standing(raw: str, status: str, standing: Standing) -> None:
    [cred] = apply("companies_house", {**CH, "company_status": raw, "date_of_cessation": "2024-05-02"}, "09446231")
    assert (cred.status, cred.standing, cred.attributes["company_status"]) == (status, standing, raw)
    assert cred.valid_from == FETCHED and cred.valid_until == FETCHED + timedelta(days=30)
    assert cred.attributes["ceased_on"] == "2024-05-02"


# -- NTS -----------------------------------------------------------------------------------------------


def test_nts_only_a_continuing_business_is_in_force() -> None:
    creds = {c.subject: c for c in apply("nts", NTS, "batch")}
    assert {s: (c.status, c.standing) for s, c in creds.items()} == {
        "1234567891": ("active", IN),
        "2208162517": ("suspended", OUT),  # 휴업자
        "1048137225": ("closed", OUT),  # 폐업자
        "1111111119": ("unregistered", OUT),
    }
    assert creds["1048137225"].attributes["status_name"] == "폐업자"


def test_nts_unknown_code_has_unknown_standing() -> None:
    [cred] = apply("nts", {"data": [{"b_no": "1234567891", "b_stt_cd": "09"}]}, "1234567891")
    assert cred.standing is UNKNOWN


# -- VIES ----------------------------------------------------------------------------------------------


def test_vies_valid_is_in_force_and_invalid_is_not() -> None:
    [valid] = apply("vies", vies_body("true", "ACME", "Street 1"), "DE123456788")
    [invalid] = apply("vies", vies_body("false", "---", "---", vat=""), "DE999999999")
    assert (valid.standing, invalid.standing) == (IN, OUT)
    assert invalid.status == "invalid" and ordered(invalid)


# -- IAF -----------------------------------------------------------------------------------------------


def iaf_body(*certificates: dict[str, object]) -> list[dict[str, object]]:
    return [{"ce_id": "ce-1", "name": "Example", "country": "GB", "certificates": list(certificates)}]


def test_iaf_validity_comes_from_the_certificate_dates_not_the_fetch() -> None:
    [cred] = apply("iaf", iaf_body(iaf_cert("Q-1", "ISO 9001:2015", "active", "2027-01-09")), "ce-1")
    assert cred.valid_from == datetime(2023, 1, 10, tzinfo=UTC)  # original_certification_date
    assert cred.valid_until == datetime(2027, 1, 10, tzinfo=UTC)  # through the expiry date
    assert cred.standing is IN


@pytest.mark.parametrize("status", ["withdrawn", "suspended", "Expired"])
def test_iaf_certificates_the_issuer_ended_are_not_in_force(status: str) -> None:
    [cred] = apply("iaf", iaf_body(iaf_cert("Q-1", "ISO 9001:2015", status, "2027-01-09")), "ce-1")
    assert (cred.status, cred.standing) == (status.lower(), OUT)
    assert cred.valid_from == datetime(2023, 1, 10, tzinfo=UTC) and ordered(cred)


def test_iaf_certificate_past_its_expiry_date_is_not_in_force_whatever_its_status() -> None:
    [cred] = apply("iaf", iaf_body(iaf_cert("Q-1", "ISO 9001:2015", "active", "2025-10-31")), "ce-1")
    assert (cred.status, cred.standing) == ("active", OUT)
    assert cred.valid_until == datetime(2025, 11, 1, tzinfo=UTC) and cred.attributes["expiry_date"] == "2025-10-31"


# -- national certificates -----------------------------------------------------------------------------


def test_national_certificates_standing_and_own_dates() -> None:
    sme, iso = apply("national_certs", NATIONAL, "1234567891")
    assert (sme.status, sme.standing) == ("valid", IN)
    assert (iso.status, iso.standing, iso.valid_until) == ("revoked", OUT, None)
    expired = NATIONAL.replace("<nc:status>valid</nc:status>", "<nc:status>expired</nc:status>").replace(
        "2026-03-31", "2025-12-31"
    )
    gone, _ = apply("national_certs", expired, "1234567891")
    assert (gone.status, gone.standing) == ("expired", OUT)
    assert (gone.valid_from, gone.valid_until) == (datetime(2025, 4, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


# -- the standing block --------------------------------------------------------------------------------


def write(tmp_path: Path, standing: object) -> Path:
    doc = {
        "source": "x",
        "format": "json",
        "credentials": [{"type": "tax_status", "status": {"path": "s"}, "standing": standing}],
    }
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("standing", "problem"),
    [
        ({"in_force": ["a"], "not_in_force": ["a"]}, "credentials[0].standing.not_in_force: 'a' is also listed"),
        ({"in_force": "a"}, "credentials[0].standing.in_force: must be a list"),
        ({"in_forse": ["a"]}, "credentials[0].standing.in_forse: unknown key"),
        ({"not_in_force_when": {"e": "x"}}, "credentials[0].standing.not_in_force_when.e: must be a list"),
    ],
)
def test_bad_standing_blocks_are_refused_at_load_naming_the_field(
    tmp_path: Path, standing: object, problem: str
) -> None:
    with pytest.raises(MappingError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        load_mapping(write(tmp_path, standing))


def test_a_mapping_without_a_standing_block_reads_unknown(tmp_path: Path) -> None:
    doc = {"source": "x", "format": "json", "credentials": [{"type": "tax_status", "status": {"path": "s"}}]}
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    [cred] = apply_raw(load_mapping(path), b'{"s": "active"}', identifier="x", fetched_at=FETCHED)
    assert cred.standing is UNKNOWN


# -- valid_from <= valid_until over every dated mapping ------------------------------------------------

days = st.dates(min_value=date(1990, 1, 1), max_value=date(2040, 12, 31))
words = st.sampled_from(["ISSUED", "LAPSED", "RETIRED", "PENDING_TRANSFER", "ANNULLED", "TRANSFERRED", ""])
cert_words = st.sampled_from(["active", "suspended", "withdrawn", "expired", "revoked", "valid", "odd"])


def check(cred: Credential) -> None:
    assert ordered(cred), (cred.valid_from, cred.valid_until)
    if cred.valid_until is not None and cred.valid_until <= FETCHED:
        assert cred.standing is OUT


@settings(max_examples=60, deadline=None)
@given(status=words, initial=days, renewal=days, entity=st.sampled_from(["ACTIVE", "INACTIVE"]))
def test_gleif_window_is_never_inverted(status: str, initial: date, renewal: date, entity: str) -> None:
    record = lei_record(status, entity=entity, renewal=f"{renewal}T00:00:00Z", initial=f"{initial}T00:00:00Z")
    [cred] = apply("gleif", record, "5299000J2N45DDNE4Y28")
    check(cred)


@settings(max_examples=60, deadline=None)
@given(status=cert_words, issued=days, expiry=days)
def test_iaf_window_is_never_inverted(status: str, issued: date, expiry: date) -> None:
    cert = {
        **iaf_cert("Q-1", "ISO 9001:2015", status, expiry.isoformat()),
        "original_certification_date": issued.isoformat(),
    }
    [cred] = apply("iaf", iaf_body(cert), "ce-1")
    check(cred)


@settings(max_examples=60, deadline=None)
@given(status=cert_words, start=days, end=days)
def test_national_certificate_window_is_never_inverted(status: str, start: date, end: date) -> None:
    body = (
        NATIONAL.replace("<nc:status>valid</nc:status>", f"<nc:status>{status}</nc:status>")
        .replace("2025-04-01", start.isoformat())
        .replace("2026-03-31", end.isoformat())
    )
    for cred in apply("national_certs", body, "1234567891"):
        check(cred)


@settings(max_examples=30, deadline=None)
@given(
    code=st.sampled_from(["01", "02", "03", "", "09"]),
    raw=st.sampled_from(sorted(["active", "dissolved", "liquidation", "removed", "registered", "converted-closed"])),
    valid=st.booleans(),
)
def test_fetch_dated_windows_are_never_inverted(code: str, raw: str, valid: bool) -> None:
    check(apply("nts", {"data": [{"b_no": "1234567891", "b_stt_cd": code}]}, "1234567891")[0])
    check(apply("companies_house", {**CH, "company_status": raw}, "09446231")[0])
    check(apply("vies", vies_body("true" if valid else "false", "X", "Y"), "DE123456788")[0])
