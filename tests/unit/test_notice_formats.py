"""Inbound notice formats: the format registry, the engine's ``notices:`` mappings (checked at start-up
like the connector mappings) and the OCDS release package read through ``mappings/ocds_release.yaml``."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hub.notices.formats import FORMATS, DocumentError, check_formats
from hub.notices.formats.mapped import load_notice_mapping, mapping_path
from hub.notices.model import Notice, NoticeContent, VersionKind
from hub.notices.ocds import release_package, releases_for
from hub.notices.publication import PublicationSettings
from mappings.engine import MappingError, load_mapping

KST = timezone(timedelta(hours=9))
LIMITS = PublicationSettings()
OCDS = FORMATS["ocds"]


def content(**overrides: Any) -> NoticeContent:
    data: dict[str, Any] = {
        "title": "Office furniture for the Daejeon government complex",
        "description": "Desks and chairs",
        "category": "goods",
        "classifications": [{"scheme": "CPV", "code": "39130000-2"}, {"scheme": "UNSPSC", "code": "56101700"}],
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
        "procuring_entity": {"id": "KR-GOV-3000000", "name": "Daejeon City"},
    }
    data.update(overrides)
    return NoticeContent.parse(data)


def hub_package() -> dict[str, Any]:
    """What a hub serves for one notice amended once and then cancelled."""
    notice = Notice.publish("n-1", "org", content(), at=datetime(2025, 4, 1, 10, tzinfo=KST))
    notice.amend(content(title="Office furniture (revised)"), "title corrected", at=datetime(2025, 4, 3, tzinfo=KST))
    notice.cancel("budget withdrawn", at=datetime(2025, 4, 5, tzinfo=KST))
    return release_package(releases_for(notice, "ocds-abc123"), "https://hub.example/p", "Hub", datetime.now(UTC))


# -- the registry and the start-up check ----------------------------------------------------------------
def test_every_format_is_registered_and_its_mapping_passes_the_start_up_check() -> None:
    assert check_formats() == ["pps", "csv", "ocds"]
    for name in ("pps_notice.yaml", "ocds_release.yaml"):
        assert load_mapping(mapping_path(name)).notices is not None


@pytest.mark.parametrize(("old", "new", "named"), [
    ("transform: decimal}  # 추정가격", "transform: no_such_transform}  # 추정가격", "estimated_value.transform[0]"),
    ("    title: bidNtceNm\n", "    titel: bidNtceNm\n", "notices.titel: unknown target"),
    ("match: contains\n      map: {일반경쟁", "match: anywhere\n      map: {일반경쟁", "procedure.match"),
    ("{path: bidNtceDt,", "{path: \"bidNtceDt[\",", "dates.published.path: bad JMESPath"),
])
def test_a_broken_notice_mapping_names_file_and_field(tmp_path: Path, old: str, new: str, named: str) -> None:
    text = Path(mapping_path("pps_notice.yaml")).read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "pps_notice.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(MappingError) as error:
        load_notice_mapping(str(path))
    assert str(error.value).startswith(f"{path}: ") and named in str(error.value)


def test_a_mapping_file_declares_credentials_or_notices_not_both(tmp_path: Path) -> None:
    path = tmp_path / "both.yaml"
    path.write_text("source: x\nformat: json\ncredentials: []\nnotices: {fields: {title: t}}\n", encoding="utf-8")
    with pytest.raises(MappingError, match="exactly one of 'credentials' or 'notices'"):
        load_mapping(path)


# -- OCDS release packages ---------------------------------------------------------------------------------
def test_a_hubs_own_release_package_reads_back_as_the_same_notice() -> None:
    items = OCDS.read(hub_package(), {}, LIMITS)
    assert [(i.external_id, i.kind, i.problems) for i in items] == [
        ("ocds-abc123-n-1", VersionKind.ORIGINAL, ()),
        ("ocds-abc123-n-1", VersionKind.AMENDMENT, ()),
        ("ocds-abc123-n-1", VersionKind.CANCELLATION, ()),
    ]
    assert [i.ref for i in items][1] == {"index": 1, "ocid": "ocds-abc123-n-1", "release_id": "n-1-v2"}
    first, amended, cancelled = items
    assert first.order < amended.order < cancelled.order
    assert first.published_at == datetime(2025, 4, 1, 10, tzinfo=KST)
    assert (amended.reason, cancelled.reason) == ("title corrected", "budget withdrawn")
    assert first.institution_code == "KR-GOV-1230000"
    original = content()
    assert first.content is not None and amended.content is not None
    assert first.content.model_dump(exclude={"delivery_region"}) == original.model_dump(exclude={"delivery_region"})
    assert amended.content.title == "Office furniture (revised)"


def test_ocds_fields_map_onto_the_notice() -> None:
    release = {
        "ocid": "ocds-xyz-42", "id": "42-1", "date": "2026-05-01T09:00:00Z", "tag": ["tender"],
        "buyer": {"id": 7, "name": "City of Busan"},
        "tender": {
            "id": "T-42", "title": "Bridge inspection", "status": "active", "mainProcurementCategory": "services",
            "value": {"amount": 1500000.5, "currency": "KRW"},
            "tenderPeriod": {"endDate": "2026-05-20T09:00:00Z"},
            "items": [{"id": "1", "classification": {"scheme": "CPV", "id": "71631450-0"}},
                      {"id": "2", "classification": {"scheme": "XYZ", "id": "abc"}},
                      {"id": "3", "classification": {"scheme": "UNSPSC", "id": 72141100}}],
            "documents": [{"id": "d1", "url": "https://portal.example/files/terms.pdf"}],
            "eligibilityCriteria": "Registered engineering firms only",
        },
    }
    [item] = OCDS.read({"version": "1.1", "releases": [release]}, {}, LIMITS)
    assert item.problems == () and item.content is not None
    notice = item.content
    assert (notice.title, notice.category.value, notice.procedure.value) == ("Bridge inspection", "services", "open")
    assert notice.estimated_value == Decimal("1500000.5") and notice.currency == "KRW"
    assert notice.dates.published == datetime(2026, 5, 1, 9, tzinfo=UTC)  # no tender period start: the release date
    assert [(c.scheme.value, c.code) for c in notice.classifications] == [("CPV", "71631450-0"), ("UNSPSC", "72141100")]
    assert notice.buyer is not None and (notice.buyer.id, notice.buyer.name) == ("7", "City of Busan")
    assert notice.procuring_entity is None
    assert [(d.title, d.sha256) for d in notice.documents] == [("terms.pdf", None)]
    assert notice.eligibility == ({"kind": "stated_condition", "condition": "eligibility_criteria",
                                   "details": {"text": "Registered engineering firms only"}},)


def test_ocds_problems_name_the_release_fields() -> None:
    package = hub_package()
    broken = copy.deepcopy(package["releases"][0])
    broken["tender"]["tenderPeriod"]["endDate"] = "next week"
    del broken["tender"]["title"]
    award = {**copy.deepcopy(package["releases"][0]), "tag": ["award"]}
    undated = {k: v for k, v in copy.deepcopy(package["releases"][0]).items() if k != "date"}
    items = OCDS.read({"releases": [broken, award, undated, "x"]}, {}, LIMITS)
    assert {path for path, _ in items[0].problems} == {"tender.tenderPeriod.endDate"}
    assert [path for path, _ in items[1].problems] == ["tag"]
    assert [path for path, _ in items[2].problems] == ["date"]
    assert [path for path, _ in items[3].problems] == ["releases"]
    del broken["tender"]["tenderPeriod"]
    [untitled] = OCDS.read({"releases": [broken]}, {}, LIMITS)
    assert [path for path, _ in untitled.problems] == ["tender.title"]


@pytest.mark.parametrize(("document", "path"), [
    ([], ""), ({"records": []}, "records"), ({"releases": {}}, "releases"), ({"version": "2.0", "releases": []},
                                                                               "version"),
])
def test_what_is_not_a_release_package_is_refused_whole(document: Any, path: str) -> None:
    with pytest.raises(DocumentError) as caught:
        OCDS.read(document, {}, LIMITS)
    assert caught.value.problems[0][0] == path


# -- the engine's extension, on its own ------------------------------------------------------------------
def mapping_of(tmp_path: Path, body: str) -> Any:
    path = tmp_path / "m.yaml"
    path.write_text("source: t\nformat: json\nnotices:\n" + body, encoding="utf-8")
    return load_mapping(path)


def test_first_of_takes_the_first_non_empty_value_and_names_it(tmp_path: Path) -> None:
    spec = mapping_of(tmp_path, "  fields:\n    amount: {first_of: [a, b, c], transform: decimal}\n").notices
    assert spec.read({"a": "", "b": "1,200", "c": "9"}).data == {"amount": Decimal(1200)}
    bad = spec.read({"a": None, "b": "", "c": "lots"})
    assert bad.data == {} and [source for source, _ in bad.problems] == ["c"]


def test_contains_and_prefix_maps_and_the_one_distinct_rule(tmp_path: Path) -> None:
    spec = mapping_of(tmp_path, """  fields:
    how: {path: how, match: contains, map: {경쟁: open, 수의: direct}, default: unknown}
    where: {path: where, transform: "split_any:,/", match: prefix, map: {서울: KR-11, 경기: KR-41}, default: KR}
""").notices
    def read(how: str, where: str) -> dict[str, Any]:
        return dict(spec.read({"how": how, "where": where}).data)

    assert read("제한경쟁", "서울특별시") == {"how": "open", "where": "KR-11"}
    assert read("수의계약", "경기도/서울특별시") == {"how": "direct", "where": "KR"}  # two regions: ambiguous
    assert read("기타", "경기도, 경기 광주") == {"how": "unknown", "where": "KR-41"}  # one distinct region
    assert read("", "") == {"how": "unknown", "where": "KR"}


def test_lists_and_text_collect_groups_and_every_problem(tmp_path: Path) -> None:
    spec = mapping_of(tmp_path, """  fields:
    when: {path: at, transform: "local_datetime:+09:00"}
    size: {path: n, transform: int}
  lists:
    docs:
      - {when: u1, fields: {url: u1, title: t1}}
      - {when: "flag == 'Y'", fields: {url: {const: "https://x.example/std"}}}
  text:
    notes: [{label: A, field: a}, {label: B, field: b}]
""").notices
    reading = spec.read({"at": "202603141000", "n": "x", "u1": "", "flag": "Y", "a": "one", "b": ""})
    assert reading.data == {"when": datetime(2026, 3, 14, 10, tzinfo=KST), "docs": [{"url": "https://x.example/std"}],
                            "notes": "A: one"}
    assert [source for source, _ in reading.problems] == ["n"]
    assert reading.sources["docs.0.url"] == "docs.0.url"  # a constant names its target


def test_national_classifications_survive_a_round_trip_through_ocds() -> None:
    codes = [{"scheme": "UNSPSC", "code": "43211503"}, {"scheme": "PPS-GOODS", "code": "4321150301"},
             {"scheme": "PPS-PUBLIC", "code": "76121598"}]
    notice = Notice.publish("n-2", "org", content(classifications=codes, lots=[]), at=datetime(2025, 4, 1, tzinfo=KST))
    served = release_package(releases_for(notice, "ocds-abc123"), "https://hub.example/p", "Hub", datetime.now(UTC))
    (item,) = OCDS.read(served, {}, LIMITS)
    assert item.problems == () and item.content is not None
    assert [(c.scheme.value, c.code) for c in item.content.classifications] == [
        ("UNSPSC", "43211503"), ("PPS-GOODS", "4321150301"), ("PPS-PUBLIC", "76121598")]


def test_a_code_repeated_across_items_is_kept_once_and_unknown_schemes_are_left_out() -> None:
    package = hub_package()
    (release, *_) = package["releases"]
    release["tender"]["items"] = [
        {"id": "1", "classification": {"scheme": "CPV", "id": "39130000-2"},
         "additionalClassifications": [{"scheme": "PPS-PUBLIC", "id": "76121598"}, {"scheme": "XYZ", "id": "1"}]},
        {"id": "2", "classification": {"scheme": "CPV", "id": "39130000-2"},
         "additionalClassifications": [{"scheme": "PPS-PUBLIC", "id": "76121598"}]},
    ]
    first = OCDS.read(package, {}, LIMITS)[0]
    assert first.content is not None
    assert [(c.scheme.value, c.code) for c in first.content.classifications] == [
        ("CPV", "39130000-2"), ("PPS-PUBLIC", "76121598")]
