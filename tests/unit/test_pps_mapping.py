"""PPS BidPublicInfoService items → unified notice versions, driven by mappings/pps_notice.yaml.

Fixtures follow ../shared/contracts/pps/SPEC.md: every value a string, "" for absent, dates as
"YYYY-MM-DD HH:MM:SS" (KST), amounts as digit strings, orders as "000", "001"….
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from hub.notices.formats.base import DocumentError, ImportedNotice
from hub.notices.formats.pps import PpsError, PpsFormat, PpsGatewayError, map_pps_item, pps_items
from hub.notices.model import Category, Notice, NoticeValidationError, Procedure, VersionKind
from hub.notices.publication import PublicationSettings

KST = timezone(timedelta(hours=9))
CNSTWK = "getBidPblancListInfoCnstwk"
SERVC = "getBidPblancListInfoServcPPSSrch"


def cnstwk_item(**overrides: str) -> dict[str, str]:
    item = {
        "bidNtceNo": "R25BK00012345",
        "bidNtceOrd": "000",
        "reNtceYn": "N",
        "rgstTyNm": "조달청 또는 나라장터 자체 공고건",
        "ntceKindNm": "등록공고",
        "intrbidYn": "N",
        "bidNtceDt": "2025-03-03 09:30:12",
        "refNo": "도로과-1234",
        "bidNtceNm": "2025년 관내 도로 재포장 공사",
        "ntceInsttCd": "6110000",
        "ntceInsttNm": "서울특별시",
        "dminsttCd": "3000000",
        "dminsttNm": "서울특별시 종로구",
        "bidMethdNm": "전자입찰",
        "cntrctCnclsMthdNm": "제한경쟁",
        "ntceInsttOfclNm": "홍길동",
        "ntceInsttOfclTelNo": "02-123-4567",
        "ntceInsttOfclEmailAdrs": "road@example.go.kr",
        "bidQlfctRgstDt": "2025-03-13 18:00:00",
        "bidBeginDt": "2025-03-10 09:00:00",
        "bidClseDt": "2025-03-14 10:00:00",
        "opengDt": "2025-03-14 11:00:00",
        "bdgtAmt": "1375000000",
        "presmptPrce": "1250000000",
        "VAT": "125000000",
        "sucsfbidMthdNm": "적격심사제",
        "sucsfbidLwltRate": "86.745",
        "prearngPrceDcsnMthdNm": "복수예가",
        "indstrytyLmtYn": "Y",
        "rgnLmtBidLocplcJdgmBssNm": "본사 소재지",
        "prtcptLmtRgnNm": "서울특별시",
        "ntceSpecDocUrl1": "https://www.g2b.go.kr/pn/pnp/pnpe/UntyAtchFile/downloadFile.do?fileSeq=1",
        "ntceSpecFileNm1": "공고문.hwp",
        "ntceSpecDocUrl2": "https://www.g2b.go.kr/pn/pnp/pnpe/UntyAtchFile/downloadFile.do?fileSeq=2",
        "ntceSpecFileNm2": "내역서.xlsx",
        "ntceSpecDocUrl3": "",
        "ntceSpecFileNm3": "",
        "stdNtceDocUrl": "https://www.g2b.go.kr/pt/menu/selectSubFrame.do?bidno=R25BK00012345",
        "bidNtceDtlUrl": "https://www.g2b.go.kr/link/PNPE027_01/single/?bidPbancNo=R25BK00012345",
        "rgstDt": "2025-03-03 09:30:12",
        "chgDt": "",
    }
    item.update(overrides)
    return item


def servc_item(**overrides: str) -> dict[str, str]:
    item = {
        "bidNtceNo": "20240512345",
        "bidNtceOrd": "00",
        "ntceKindNm": "일반",
        "bidNtceDt": "202405201400",  # the compact form some sources use
        "bidNtceNm": "청사 시설관리 용역",
        "ntceInsttCd": "1230000",
        "ntceInsttNm": "조달청",
        "dminsttCd": "1230000",
        "dminsttNm": "조달청",
        "bidMethdNm": "전자입찰",
        "cntrctCnclsMthdNm": "일반경쟁",
        "bidBeginDt": "",
        "bidClseDt": "202406031000",
        "opengDt": "202406031100",
        "asignBdgtAmt": "480,000,000",
        "presmptPrce": "",
        "prtcptLmtRgnNm": "",
        "indstrytyLmtYn": "N",
    }
    item.update(overrides)
    return item


def test_construction_item_maps_every_field() -> None:
    mapped = map_pps_item(cnstwk_item(), CNSTWK)
    content = mapped.content
    assert (mapped.external_id, mapped.order, mapped.kind, mapped.reason) == (
        "R25BK00012345", 0, VersionKind.ORIGINAL, None)
    assert mapped.institution_code == "6110000"
    assert content.title == "2025년 관내 도로 재포장 공사"
    assert content.category is Category.WORKS
    assert content.procedure is Procedure.SELECTIVE and content.procedure_details == "제한경쟁"
    assert content.estimated_value == Decimal("1250000000") and content.currency == "KRW"
    assert content.delivery_region == "KR-11"
    assert content.dates.published == datetime(2025, 3, 3, 9, 30, 12, tzinfo=KST)
    assert content.dates.submission_start == datetime(2025, 3, 10, 9, tzinfo=KST)
    assert content.dates.submission_deadline == datetime(2025, 3, 14, 10, tzinfo=KST)
    assert content.dates.opening == datetime(2025, 3, 14, 11, tzinfo=KST)
    assert mapped.published_at == content.dates.published
    assert content.buyer is not None and (content.buyer.id, content.buyer.name) == ("3000000", "서울특별시 종로구")
    assert content.procuring_entity is not None and content.procuring_entity.name == "서울특별시"
    assert [d.title for d in content.documents] == ["공고문.hwp", "내역서.xlsx", "표준공고서"]
    assert all(d.sha256 is None for d in content.documents)
    assert {r["kind"] for r in content.eligibility} == {"stated_condition"}
    assert {r["condition"] for r in content.eligibility} == {
        "industry_restriction", "region_restriction", "qualification_registration"}
    assert "낙찰방법: 적격심사제" in content.description
    assert "홍길동" not in content.description  # officer's personal data is not copied


def test_service_item_with_compact_dates_comma_amounts_and_budget_fallback() -> None:
    mapped = map_pps_item(servc_item(), SERVC)
    content = mapped.content
    assert content.category is Category.SERVICES
    assert content.procedure is Procedure.OPEN
    assert content.estimated_value == Decimal("480000000")  # 추정가격 empty → 배정예산
    assert content.delivery_region == "KR"  # no participation region limit: the whole country
    assert content.dates.published == datetime(2024, 5, 20, 14, 0, tzinfo=KST)
    assert content.dates.submission_start is None
    assert content.eligibility == ()
    assert mapped.order == 0 and mapped.kind is VersionKind.ORIGINAL


@pytest.mark.parametrize(
    ("operation", "field", "expected"),
    [
        ("getBidPblancListInfoThng", "", Category.GOODS),
        ("getBidPblancListInfoFrgcpt", "", Category.GOODS),
        ("getBidPblancListInfoServc", "", Category.SERVICES),
        (None, "공사", Category.WORKS),
        (None, "물품", Category.GOODS),
    ],
)
def test_category_from_operation_or_business_division(operation: str | None, field: str, expected: Category) -> None:
    assert map_pps_item(servc_item(bsnsDivNm=field), operation).content.category is expected


def classes(mapped: ImportedNotice) -> list[tuple[str, str]]:
    assert mapped.content is not None
    return [(c.scheme.value, c.code) for c in mapped.content.classifications]


def test_goods_item_classification_from_detailed_product_number() -> None:
    mapped = map_pps_item(servc_item(dtilPrdctClsfcNo="4321150101", bidNtceNm="노트북컴퓨터 구매"),
                          "getBidPblancListInfoThng")
    # the whole 세부품명번호 under its own scheme, and its 8-digit 물품분류번호 as the UNSPSC class
    assert classes(mapped) == [("UNSPSC", "43211501"), ("PPS-GOODS", "4321150101")]


def test_goods_item_with_only_the_product_class_number() -> None:
    mapped = map_pps_item(servc_item(prdctClsfcNo="43211501"), "getBidPblancListInfoThng")
    assert classes(mapped) == [("UNSPSC", "43211501")]
    both = map_pps_item(servc_item(prdctClsfcNo="43211501", dtilPrdctClsfcNo="4321150101"), "getBidPblancListInfoThng")
    assert classes(both) == [("UNSPSC", "43211501"), ("PPS-GOODS", "4321150101")]  # not listed twice


def test_service_item_public_procurement_classification() -> None:
    mapped = map_pps_item(servc_item(pubPrcrmntLrgClsfcNm="폐기물 처리 및 재활용서비스", pubPrcrmntClsfcNo="76121598",
                                     pubPrcrmntClsfcNm="건설폐기물처리서비스"), SERVC)
    assert classes(mapped) == [("PPS-PUBLIC", "76121598")]
    assert classes(map_pps_item(servc_item(pubPrcrmntClsfcNo=""), SERVC)) == []  # "" is absent


def test_every_classification_an_item_gives_is_kept() -> None:
    mapped = map_pps_item(servc_item(dtilPrdctClsfcNo="4321150101", pubPrcrmntClsfcNo="43211501"),
                          "getBidPblancListInfoThng")
    assert classes(mapped) == [("UNSPSC", "43211501"), ("PPS-GOODS", "4321150101"), ("PPS-PUBLIC", "43211501")]


def test_malformed_classification_numbers_name_their_pps_fields() -> None:
    with pytest.raises(NoticeValidationError) as caught:
        map_pps_item(servc_item(dtilPrdctClsfcNo="43211501", pubPrcrmntClsfcNo="7612"), "getBidPblancListInfoThng")
    assert {path for path, _ in caught.value.problems} == {"dtilPrdctClsfcNo", "pubPrcrmntClsfcNo"}


def test_amendment_order_becomes_a_new_version() -> None:
    original = map_pps_item(cnstwk_item(), CNSTWK)
    changed = map_pps_item(
        cnstwk_item(bidNtceOrd="001", ntceKindNm="변경공고", bidNtceDt="2025-03-07 16:00:00",
                    bidClseDt="2025-03-21 10:00:00", opengDt="2025-03-21 11:00:00", chgDt="2025-03-07 16:00:00"),
        CNSTWK,
    )
    # PPS gave no 변경공고사유: the notice kind and order stand in
    assert (changed.order, changed.kind, changed.reason) == (1, VersionKind.AMENDMENT, "변경공고 (차수 001)")
    notice = Notice.publish(original.external_id or "", "org-seoul", original.content, at=original.published_at)
    version = notice.amend(changed.content, changed.reason or "", at=changed.published_at)
    assert version.number == 2
    assert "dates.submission_deadline" in version.changed_fields


def test_amendment_reason_is_the_stated_change_reason() -> None:
    changed = map_pps_item(cnstwk_item(bidNtceOrd="001", ntceKindNm="변경공고", chgDt="2025-03-07 16:00:00",
                                       chgNtceRsn=" 입찰서 제출 마감일시 연장(현장설명 추가) "), CNSTWK)
    assert (changed.kind, changed.reason) == (VersionKind.AMENDMENT, "입찰서 제출 마감일시 연장(현장설명 추가)")
    history = map_pps_item(cnstwk_item(bidNtceOrd="002", ntceKindNm="변경공고", chgNtceRsnNm="개찰일시 변경"), CNSTWK)
    assert history.reason == "개찰일시 변경"  # the change-history operation's name for it
    blank = map_pps_item(cnstwk_item(bidNtceOrd="001", ntceKindNm="정정공고", chgNtceRsn=""), CNSTWK)
    assert blank.reason == "정정공고 (차수 001)"


def test_cancellation_reason_is_the_stated_one_when_given() -> None:
    cancelled = map_pps_item(cnstwk_item(bidNtceOrd="002", ntceKindNm="취소공고", chgNtceRsn="사업계획 변경"), CNSTWK)
    assert (cancelled.kind, cancelled.reason) == (VersionKind.CANCELLATION, "사업계획 변경")


def test_the_original_carries_no_reason_even_when_the_field_is_filled() -> None:
    assert map_pps_item(cnstwk_item(chgNtceRsn="최초 공고"), CNSTWK).reason is None


def test_cancellation_is_recognised_from_the_notice_kind() -> None:
    cancelled = map_pps_item(cnstwk_item(bidNtceOrd="002", ntceKindNm="취소공고"), CNSTWK)
    assert cancelled.kind is VersionKind.CANCELLATION and cancelled.order == 2
    assert cancelled.reason == "취소공고 (차수 002)"


def test_region_prefixes_and_ambiguity() -> None:
    assert map_pps_item(servc_item(prtcptLmtRgnNm="경기도 광주시"), SERVC).content.delivery_region == "KR-41"
    assert map_pps_item(servc_item(prtcptLmtRgnNm="전북특별자치도"), SERVC).content.delivery_region == "KR-45"
    both = map_pps_item(servc_item(prtcptLmtRgnNm="서울특별시, 경기도"), SERVC)
    assert both.content.delivery_region == "KR"


def test_problems_name_the_pps_source_fields() -> None:
    with pytest.raises(NoticeValidationError) as caught:
        map_pps_item(cnstwk_item(bidClseDt="2025/13/45", presmptPrce="약 1억", bidNtceOrd="1차"), CNSTWK)
    assert {path for path, _ in caught.value.problems} == {"bidClseDt", "presmptPrce", "bidNtceOrd"}


def test_content_rule_violations_are_reported_against_source_fields() -> None:
    with pytest.raises(NoticeValidationError) as caught:
        map_pps_item(cnstwk_item(opengDt="2025-03-13 11:00:00", bidNtceNm=""), CNSTWK)
    # a field error and a cross-field rule (opening before the deadline) in one report
    assert {path for path, _ in caught.value.problems} == {"bidNtceNm", "opengDt"}
    with pytest.raises(NoticeValidationError) as caught:
        map_pps_item(cnstwk_item(opengDt="2025-03-13 11:00:00"), CNSTWK)
    assert [path for path, _ in caught.value.problems] == ["opengDt"]
    with pytest.raises(NoticeValidationError) as caught:
        map_pps_item(cnstwk_item(bidNtceDt=""), CNSTWK)
    assert [path for path, _ in caught.value.problems] == ["bidNtceDt"]


def test_unknown_category_is_a_problem() -> None:
    with pytest.raises(NoticeValidationError) as caught:
        map_pps_item(servc_item(), None)
    assert caught.value.problems[0][0] == "category"


def envelope(items: Any, code: str = "00") -> dict[str, Any]:
    return {"response": {"header": {"resultCode": code, "resultMsg": "정상"},
                         "body": {"items": items, "numOfRows": 10, "pageNo": 1, "totalCount": 1}}}


def test_every_items_shape_is_accepted() -> None:
    one = cnstwk_item()
    assert pps_items(envelope([one])) == [one]
    assert pps_items(envelope({"item": [one, one]})) == [one, one]
    assert pps_items(envelope({"item": one})) == [one]
    assert pps_items(envelope("")) == []
    assert pps_items(envelope(None, code="03")) == []


def test_error_envelopes_raise_with_the_result_code() -> None:
    with pytest.raises(PpsError) as caught:
        pps_items(envelope("", code="22"))
    assert caught.value.code == "22"
    gateway = {"nkoneps.com.response.ResponseError": {"header": {"resultCode": "30",
                                                                 "resultMsg": "SERVICE KEY IS NOT REGISTERED ERROR"}}}
    with pytest.raises(PpsError) as caught:
        pps_items(gateway)
    assert caught.value.code == "30" and "NOT REGISTERED" in caught.value.message


def test_nodata_is_no_items_whatever_the_body() -> None:
    nodata = {"response": {"header": {"resultCode": "03", "resultMsg": "NODATA_ERROR"}}}
    assert pps_items(nodata) == []
    assert PpsFormat().read(nodata, {}, PublicationSettings()) == []


@pytest.mark.parametrize(
    ("document", "code", "message"),
    [
        ({"nkoneps.com.response.ResponseError": {"header": {"resultCode": "30",
                                                            "resultMsg": "SERVICE KEY IS NOT REGISTERED ERROR"}}},
         "30", "SERVICE KEY IS NOT REGISTERED ERROR"),
        ({"response": {"header": {"resultCode": "22", "resultMsg": "LIMITED NUMBER OF SERVICE REQUESTS"}}},
         "22", "LIMITED NUMBER OF SERVICE REQUESTS"),
        ({"OpenAPI_ServiceResponse": {"cmmMsgHeader": {"errMsg": "SERVICE ERROR",
                                                       "returnAuthMsg": "SERVICE_KEY_IS_NOT_REGISTERED_ERROR",
                                                       "returnReasonCode": "30"}}},
         "30", "SERVICE_KEY_IS_NOT_REGISTERED_ERROR"),
        ({"response": {"header": {"resultCode": "07", "resultMsg": "입력범위값 초과 에러"}, "body": None}},
         "07", "입력범위값 초과 에러"),
    ],
)
def test_an_imported_error_answer_is_refused_with_its_code_and_message(document: Any, code: str, message: str) -> None:
    with pytest.raises(PpsGatewayError) as caught:
        PpsFormat().read(document, {}, PublicationSettings())
    assert (caught.value.status.code, caught.value.status.message) == (code, message)
    assert caught.value.problem_extensions == {"pps_result_code": code, "pps_result_message": message}
    [(location, named)] = caught.value.problem_locations
    assert location[-1] in {"resultCode", "returnReasonCode"} and named == f"PPS result {code}: {message}"
    assert code in str(caught.value) and message in str(caught.value)


def test_a_document_that_is_no_pps_answer_still_says_what_was_expected() -> None:
    with pytest.raises(DocumentError) as caught:
        PpsFormat().read({"bidNtceNo": "R25BK00012345"}, {}, PublicationSettings())
    assert "expected a PPS response" in str(caught.value)
