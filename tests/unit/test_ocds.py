"""OCDS 1.1 output: one release per version, packages valid against the official schemas, OCDS merging."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from hub.notices.model import Notice, NoticeContent
from hub.notices.ocds import (
    LOTS_EXTENSION,
    compile_releases,
    merge_releases,
    record_package,
    release_package,
    releases_for,
)
from tests.support import environment
from tests.support.ocds_validation import SCHEMA_DIR_ENV, ocds_schema_dir, required_schema_dir, validate_package

KST = timezone(timedelta(hours=9))
PREFIX = "ocds-g2bhub"
needs_schemas = pytest.mark.usefixtures("ocds_schemas")


def content(**overrides: Any) -> NoticeContent:
    data: dict[str, Any] = {
        "title": "Office furniture for the Daejeon government complex",
        "description": "Desks and chairs",
        "category": "goods",
        "classifications": [{"scheme": "CPV", "code": "39130000-2"}, {"scheme": "UNSPSC", "code": "56101700"}],
        "delivery_region": "KR-30",
        "estimated_value": "84500000",
        "currency": "KRW",
        "procedure": "selective",
        "procedure_details": "제한경쟁",
        "dates": {
            "published": "2025-04-01T10:00:00+09:00",
            "clarification_deadline": "2025-04-07T18:00:00+09:00",
            "submission_start": "2025-04-02T09:00:00+09:00",
            "submission_deadline": "2025-04-14T10:00:00+09:00",
            "opening": "2025-04-14T11:00:00+09:00",
        },
        "lots": [{"id": "L1", "title": "Desks", "value": "50000000"}, {"id": "L2", "title": "Chairs"}],
        "eligibility": [{"kind": "national_certificate", "type": "SME"}],
        "documents": [
            {"title": "Specification", "url": "https://files.example.kr/spec.pdf", "sha256": "0f" * 32},
            {"title": "Drawings", "url": "http://files.example.kr/drawings.zip"},
        ],
        "buyer": {"id": "KR-GOV-1230000", "name": "Public Procurement Service"},
        "procuring_entity": {"id": "KR-GOV-1230000", "name": "Public Procurement Service"},
    }
    data.update(overrides)
    return NoticeContent.parse(data)


@pytest.fixture
def notice() -> Notice:
    notice = Notice.publish("R25BK00012345", "org-pps", content(), at=datetime(2025, 4, 1, 10, tzinfo=KST))
    extended = content(
        dates={
            "published": "2025-04-01T10:00:00+09:00",
            "submission_deadline": "2025-04-21T10:00:00+09:00",
            "opening": "2025-04-21T11:00:00+09:00",
        },
        lots=[{"id": "L1", "title": "Desks", "value": "52000000"}],
    )
    notice.amend(extended, "Deadline extended by one week", at=datetime(2025, 4, 8, 9, tzinfo=KST))
    notice.cancel("Budget withdrawn", at=datetime(2025, 4, 9, 15, tzinfo=KST))
    return notice


def package(releases: list[dict[str, Any]]) -> dict[str, Any]:
    return release_package(
        releases, "https://hub.example/api/v1/ocds/p1", "g2b-hub", datetime(2025, 4, 9, 15, tzinfo=KST)
    )


def test_each_version_is_one_release_with_its_tag(notice: Notice) -> None:
    releases = releases_for(notice, PREFIX)
    assert [r["tag"] for r in releases] == [["tender"], ["tenderAmendment"], ["tenderCancellation"]]
    assert {r["ocid"] for r in releases} == {"ocds-g2bhub-R25BK00012345"}
    assert len({r["id"] for r in releases}) == 3
    assert [r["date"] for r in releases] == [
        "2025-04-01T10:00:00+09:00",
        "2025-04-08T09:00:00+09:00",
        "2025-04-09T15:00:00+09:00",
    ]
    assert all(r["initiationType"] == "tender" for r in releases)


def test_first_release_fields(notice: Notice) -> None:
    release = releases_for(notice, PREFIX)[0]
    tender = release["tender"]
    assert release["parties"] == [
        {"id": "KR-GOV-1230000", "name": "Public Procurement Service", "roles": ["buyer", "procuringEntity"]}
    ]
    assert release["buyer"] == {"id": "KR-GOV-1230000", "name": "Public Procurement Service"}
    assert tender["status"] == "active"
    assert tender["mainProcurementCategory"] == "goods"
    assert tender["procurementMethod"] == "selective"
    assert tender["procurementMethodDetails"] == "제한경쟁"
    assert tender["value"] == {"amount": 84500000, "currency": "KRW"}
    assert [i["classification"] for i in tender["items"]] == [
        {"scheme": "CPV", "id": "39130000-2"},
        {"scheme": "UNSPSC", "id": "56101700"},
    ]
    assert tender["tenderPeriod"] == {"startDate": "2025-04-02T09:00:00+09:00", "endDate": "2025-04-14T10:00:00+09:00"}
    assert tender["enquiryPeriod"]["endDate"] == "2025-04-07T18:00:00+09:00"
    assert tender["awardPeriod"] == {"startDate": "2025-04-14T11:00:00+09:00"}
    assert tender["lots"][0] == {"id": "L1", "title": "Desks", "status": "active",
                                 "value": {"amount": 50000000, "currency": "KRW"}}
    assert tender["documents"][0]["description"] == "sha256:" + "0f" * 32
    assert "description" not in tender["documents"][1]
    assert "amendments" not in tender


def test_amendment_and_cancellation_carry_the_amendment_trail(notice: Notice) -> None:
    _, amended, cancelled = releases_for(notice, PREFIX)
    assert amended["tender"]["amendments"] == [
        {
            "id": "1",
            "date": "2025-04-08T09:00:00+09:00",
            "rationale": "Deadline extended by one week",
            "amendsReleaseID": "R25BK00012345-v1",
            "releaseID": "R25BK00012345-v2",
        }
    ]
    assert amended["tender"]["tenderPeriod"]["endDate"] == "2025-04-21T10:00:00+09:00"
    assert cancelled["tender"]["status"] == "cancelled"
    assert [a["rationale"] for a in cancelled["tender"]["amendments"]] == [
        "Deadline extended by one week",
        "Budget withdrawn",
    ]
    assert cancelled["tender"]["amendments"][1]["amendsReleaseID"] == amended["id"]
    assert {lot["status"] for lot in cancelled["tender"]["lots"]} == {"cancelled"}
    # a document keeps the date it first appeared
    assert cancelled["tender"]["documents"][0]["datePublished"] == "2025-04-01T10:00:00+09:00"


@needs_schemas
@pytest.mark.parametrize("upto", [1, 2, 3], ids=["tender", "amendment", "cancellation"])
def test_release_packages_validate_against_the_official_schema(notice: Notice, upto: int) -> None:
    releases = releases_for(notice, PREFIX)[:upto]
    pkg = package(releases[-1:])
    assert validate_package(pkg) == []
    assert pkg["version"] == "1.1" and pkg["extensions"] == [LOTS_EXTENSION]
    assert validate_package(package(releases)) == []


@needs_schemas
def test_record_package_compiles_and_validates(notice: Notice) -> None:
    releases = releases_for(notice, PREFIX)
    published = datetime(2025, 4, 9, 15, tzinfo=KST)
    pkg = record_package(releases, "https://hub.example/api/v1/ocds/records/1", "g2b-hub", published)
    assert validate_package(pkg) == []
    (record,) = pkg["records"]
    compiled = record["compiledRelease"]
    assert record["ocid"] == "ocds-g2bhub-R25BK00012345" and len(record["releases"]) == 3
    assert compiled["tag"] == ["compiled"]
    assert compiled["date"] == "2025-04-09T15:00:00+09:00"
    assert compiled["tender"]["status"] == "cancelled"
    assert compiled["tender"]["tenderPeriod"]["endDate"] == "2025-04-21T10:00:00+09:00"
    # v2 dropped the clarification deadline: its release nulls the period, so the compiled one has none
    assert releases[1]["tender"]["enquiryPeriod"] == {"startDate": None, "endDate": None}
    assert compiled["tender"]["enquiryPeriod"] == {}
    lots = {lot["id"]: lot for lot in compiled["tender"]["lots"]}
    assert lots["L1"]["value"]["amount"] == 52000000 and lots["L2"]["title"] == "Chairs"


def pps_notice(classifications: list[dict[str, str]]) -> Notice:
    return Notice.publish("R25BK00054321", "org-pps", content(classifications=classifications, lots=[]),
                          at=datetime(2025, 4, 1, 10, tzinfo=KST))


def test_pps_classifications_are_additional_classifications_of_the_unspsc_item() -> None:
    goods = pps_notice([{"scheme": "UNSPSC", "code": "43211503"}, {"scheme": "PPS-GOODS", "code": "4321150301"}])
    (item,) = releases_for(goods, PREFIX)[0]["tender"]["items"]
    assert item["id"] == "UNSPSC-43211503"
    assert item["classification"] == {"scheme": "UNSPSC", "id": "43211503"}
    assert item["additionalClassifications"] == [{"scheme": "PPS-GOODS", "id": "4321150301"}]


def test_a_notice_classified_only_by_pps_has_one_item_under_that_scheme() -> None:
    services = pps_notice([{"scheme": "PPS-PUBLIC", "code": "76121598"}])
    (item,) = releases_for(services, PREFIX)[0]["tender"]["items"]
    assert item["classification"] == {"scheme": "PPS-PUBLIC", "id": "76121598"}
    assert "additionalClassifications" not in item
    both = pps_notice([{"scheme": "PPS-GOODS", "code": "4321150301"}, {"scheme": "PPS-PUBLIC", "code": "43211503"}])
    (item,) = releases_for(both, PREFIX)[0]["tender"]["items"]
    assert item["classification"]["scheme"] == "PPS-GOODS"
    assert item["additionalClassifications"] == [{"scheme": "PPS-PUBLIC", "id": "43211503"}]


@needs_schemas
def test_pps_classified_releases_validate_against_the_official_schema() -> None:
    goods = pps_notice([{"scheme": "UNSPSC", "code": "43211503"}, {"scheme": "PPS-GOODS", "code": "4321150301"},
                        {"scheme": "PPS-PUBLIC", "code": "76121598"}])
    assert validate_package(package(releases_for(goods, PREFIX))) == []


@needs_schemas
def test_validator_reports_violations_offline(notice: Notice) -> None:
    release = releases_for(notice, PREFIX)[0]
    release["tag"] = ["notATag"]
    release["tender"]["value"]["currency"] = "WON"
    release["date"] = "2025-04-01 10:00"
    problems = validate_package(package([release]))
    assert any("/releases/0/tag/0" in p for p in problems)
    assert any("/releases/0/tender/value/currency" in p for p in problems)
    assert any("/releases/0/date" in p for p in problems)


def test_schema_dir_from_argument_or_environment(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ocds_schema_dir(tmp_path) is None
    monkeypatch.setenv(SCHEMA_DIR_ENV, str(tmp_path))
    assert ocds_schema_dir() is None
    with pytest.raises(FileNotFoundError):
        validate_package({"releases": []})


def test_missing_schemas_fail_under_ci_and_skip_elsewhere(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SCHEMA_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(environment, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="OCDS schemas unavailable"):
        required_schema_dir()
    monkeypatch.setattr(environment, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="OCDS schemas unavailable"):
        required_schema_dir()


def test_merge_rules() -> None:
    first = {"ocid": "o", "id": "1", "date": "2025-01-01T00:00:00Z", "tag": ["tender"],
             "tender": {"id": "t", "title": "A", "description": "gone later",
                        "items": [{"id": "i1", "quantity": 1, "additionalClassifications": [{"id": "x"}]},
                                  {"id": "i2", "quantity": 2}],
                        "submissionMethod": ["electronicSubmission", "written"]}}
    second = {"ocid": "o", "id": "2", "date": "2025-01-02T00:00:00Z", "tag": ["tenderAmendment"],
              "tender": {"title": "B", "description": None,
                         "items": [{"id": "i1", "quantity": 5, "additionalClassifications": [{"id": "y"}]}],
                         "submissionMethod": ["electronicSubmission"]}}
    merged = merge_releases([first, second])
    assert "id" not in merged and "tag" not in merged and "date" not in merged
    tender = merged["tender"]
    assert tender["title"] == "B" and "description" not in tender
    assert tender["items"] == [
        {"id": "i1", "quantity": 5, "additionalClassifications": [{"id": "y"}]},  # whole-list field replaced
        {"id": "i2", "quantity": 2},
    ]
    assert tender["submissionMethod"] == ["electronicSubmission"]  # plain arrays are replaced
    compiled = compile_releases([second, first])  # order by date, not by argument order
    assert compiled["tender"]["title"] == "B" and compiled["id"] == "o-2025-01-02T00:00:00Z"
    assert first["tender"]["description"] == "gone later"  # inputs untouched
