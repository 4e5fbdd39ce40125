"""PPS import through the real API, on SQLite and PostgreSQL: the stated change reason becomes the
amendment's reason, PPS classifications (세부품명번호, 공공조달분류번호) are searchable and reach the
subscriptions that filter on them, and an imported error answer from the PPS gateway or data.go.kr is
refused with its result code and message (NODATA is an empty import)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import feedparser
import pytest
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from tests.support.api import API, bearer
from tests.support.notices import NoticesClient, notices_client
from tests.support.receiver import Receiver
from tests.support.subscriptions import FAST
from tests.support.waiting import eventually

GOODS = f"{API}/notices/import/pps?operation=getBidPblancListInfoThng"
SERVICES = f"{API}/notices/import/pps?operation=getBidPblancListInfoServc"
KEY_ERROR = {
    "nkoneps.com.response.ResponseError": {
        "header": {"resultCode": "30", "resultMsg": "SERVICE KEY IS NOT REGISTERED ERROR"}
    }
}


@pytest.fixture(params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest) -> Iterator[NoticesClient]:
    with notices_client(str(request.getfixturevalue(f"{request.param}_url"))) as client:
        yield client


def item(number: str, order: str = "000", kind: str = "등록공고", **overrides: str) -> dict[str, str]:
    fields = {
        "bidNtceNo": number,
        "bidNtceOrd": order,
        "ntceKindNm": kind,
        "bidNtceDt": f"2026-03-0{3 + int(order)} 09:30:00",
        "bidNtceNm": f"공고 {number}",
        "ntceInsttCd": "1230000",
        "ntceInsttNm": "조달청",
        "dminsttCd": "1230000",
        "dminsttNm": "조달청",
        "cntrctCnclsMthdNm": "일반경쟁",
        "bidClseDt": "2026-03-20 10:00:00",
        "opengDt": "2026-03-20 11:00:00",
        "asignBdgtAmt": "88000000",
        "prtcptLmtRgnNm": "",
        "chgNtceRsn": "",
    }
    fields.update(overrides)
    return fields


def services_item(order: str = "000", kind: str = "등록공고", **overrides: str) -> dict[str, str]:
    return item(
        "R26BK00077001",
        order,
        kind,
        pubPrcrmntLrgClsfcNm="폐기물 처리 및 재활용서비스",
        pubPrcrmntClsfcNo="76121598",
        pubPrcrmntClsfcNm="건설폐기물처리서비스",
        **overrides,
    )


def goods_item(**overrides: str) -> dict[str, str]:
    return item("R26BK00077002", dtilPrdctClsfcNo="4321150301", dtilPrdctClsfcNoNm="노트북컴퓨터", **overrides)


def page(items: list[dict[str, str]], code: str = "00") -> dict[str, Any]:
    return {
        "response": {
            "header": {"resultCode": code, "resultMsg": "NORMAL SERVICE."},
            "body": {"items": {"item": items}, "numOfRows": 100, "pageNo": 1, "totalCount": len(items)},
        }
    }


def imported(api: NoticesClient, url: str, document: Any, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = api.http.post(url, json=document, headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def found(api: NoticesClient, classification: str) -> set[str]:
    response = api.http.get(f"{API}/notices", params={"classification": classification, "limit": 100})
    assert response.status_code == 200, response.text
    return {entry["id"] for entry in response.json()["items"]}


def test_pps_classifications_are_searchable_under_their_own_schemes(api: NoticesClient) -> None:
    _, headers = api.org()
    [services] = imported(api, SERVICES, page([services_item()]), headers)
    [goods] = imported(api, GOODS, page([goods_item()]), headers)
    services_id, goods_id = services["notice_id"], goods["notice_id"]

    assert found(api, "PPS-PUBLIC:7612") == {services_id}
    assert found(api, "pps-public:76121598") == {services_id}
    assert found(api, "PPS-GOODS:4321150301") == {goods_id}
    assert found(api, "PPS-GOODS:432115") == {goods_id}
    assert found(api, "UNSPSC:43211503") == {goods_id}  # 세부품명번호's UNSPSC-based class
    assert found(api, "UNSPSC:7612") == set()  # 공공조달분류 digits are not UNSPSC
    assert found(api, "4321150301") == {goods_id}  # ten bare digits
    bad = api.http.get(f"{API}/notices", params={"classification": "PPS-GOODS:12345678901"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "#/query/classification/0"

    detail = api.http.get(f"{API}/notices/{services_id}").json()
    assert detail["category"] == "services"
    assert detail["content"]["classifications"] == [{"scheme": "PPS-PUBLIC", "code": "76121598"}]
    feed = api.http.get(f"{API}/feeds/notices.atom", params={"classification": "PPS-PUBLIC:7612"})
    atom = feedparser.parse(feed.text)
    [entry] = atom.entries
    assert ("76121598", "PPS-PUBLIC") in {(tag.term, tag.label) for tag in entry.tags}
    [release] = api.http.get(f"{API}/notices/{goods_id}/ocds/releases").json()["releases"]
    [ocds_item] = release["tender"]["items"]
    assert ocds_item["classification"] == {"scheme": "UNSPSC", "id": "43211503"}
    assert ocds_item["additionalClassifications"] == [{"scheme": "PPS-GOODS", "id": "4321150301"}]


def test_amendments_carry_the_reason_pps_states(api: NoticesClient) -> None:
    _, headers = api.org()
    imported(api, SERVICES, [services_item()], headers)
    stated = services_item(
        "001",
        "변경공고",
        chgNtceRsn="입찰서 제출 마감일시 연장",
        bidClseDt="2026-03-24 10:00:00",
        opengDt="2026-03-24 11:00:00",
        chgDt="2026-03-04 09:30:00",
    )
    unstated = services_item("002", "변경공고", bidClseDt="2026-03-25 10:00:00", opengDt="2026-03-25 11:00:00")
    cancelled = services_item("003", "취소공고", chgNtceRsn="사업계획 변경")
    report = imported(api, SERVICES, page([stated, unstated, cancelled]), headers)
    assert [entry["status"] for entry in report] == ["amended", "amended", "cancelled"]
    versions = api.http.get(f"{API}/notices/{report[0]['notice_id']}").json()["versions"]
    assert [(v["kind"], v["reason"]) for v in versions] == [
        ("original", None),
        ("amendment", "입찰서 제출 마감일시 연장"),
        ("amendment", "변경공고 (차수 002)"),
        ("cancellation", "사업계획 변경"),
    ]


def problem(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return dict(response.json())


def test_gateway_and_data_go_kr_errors_are_answered_with_their_code_and_message(api: NoticesClient) -> None:
    _, headers = api.org()
    key_error = problem(api.http.post(SERVICES, json=KEY_ERROR, headers=headers))
    assert key_error["type"] == "https://g2b-hub.dev/problems/pps-gateway-error"
    assert (key_error["pps_result_code"], key_error["pps_result_message"]) == (
        "30",
        "SERVICE KEY IS NOT REGISTERED ERROR",
    )
    assert "30" in key_error["detail"] and "SERVICE KEY IS NOT REGISTERED ERROR" in key_error["detail"]
    assert key_error["errors"][0]["pointer"] == "#/body/nkoneps.com.response.ResponseError/header/resultCode"

    quota = problem(
        api.http.post(
            SERVICES,
            json={
                "response": {
                    "header": {"resultCode": "22", "resultMsg": "LIMITED NUMBER OF SERVICE REQUESTS EXCEEDS ERROR."}
                }
            },
            headers=headers,
        )
    )
    assert quota["pps_result_code"] == "22" and quota["errors"][0]["pointer"] == "#/body/response/header/resultCode"

    data_go_kr = problem(
        api.http.post(
            SERVICES,
            headers=headers,
            json={
                "OpenAPI_ServiceResponse": {
                    "cmmMsgHeader": {
                        "errMsg": "SERVICE ERROR",
                        "returnAuthMsg": "SERVICE_KEY_IS_NOT_REGISTERED_ERROR",
                        "returnReasonCode": "30",
                    }
                }
            },
        )
    )
    assert (data_go_kr["pps_result_code"], data_go_kr["pps_result_message"]) == (
        "30",
        "SERVICE_KEY_IS_NOT_REGISTERED_ERROR",
    )

    nodata = api.http.post(
        SERVICES, json={"response": {"header": {"resultCode": "03", "resultMsg": "NODATA_ERROR"}}}, headers=headers
    )
    assert nodata.status_code == 200 and nodata.json() == {"items": [], "counts": {}}
    assert api.events() == []  # nothing was stored by any of them


@pytest.fixture
def running(settings_factory: Callable[..., Settings]) -> Iterator[tuple[Hub, TestClient]]:
    hub = bootstrap(settings_factory(syndication=FAST), migrate=True)
    hub.make_worker().start()
    try:
        with TestClient(create_app(hub=hub)) as client:
            yield hub, client
    finally:
        hub.close()


def key_for(hub: Hub, kind: OrgKind) -> str:
    _, issued = hub.bus.handle(CreateOrganisation(name=f"{kind} {uuid.uuid4().hex[:6]}", kind=kind))
    return str(issued.plaintext)


def test_subscriptions_filtering_on_pps_classifications_receive_imported_notices(
    running: tuple[Hub, TestClient],
) -> None:
    hub, client = running
    institution, agency = key_for(hub, OrgKind.INSTITUTION), key_for(hub, OrgKind.AGENCY)
    services_receiver, goods_receiver = Receiver(), Receiver()
    try:
        for receiver, classification in (
            (services_receiver, "PPS-PUBLIC:761215"),
            (goods_receiver, "PPS-GOODS:4321150301"),
        ):
            subscribed = client.post(
                f"{API}/subscriptions",
                headers=bearer(agency),
                json={
                    "name": classification,
                    "filter": {"classifications": [classification]},
                    "channel": {"type": "webhook", "url": receiver.url},
                },
            )
            assert subscribed.status_code == 201, subscribed.text
            receiver.secrets.append(subscribed.json()["secret"])

        for url, document in ((SERVICES, [services_item()]), (GOODS, [goods_item()])):
            response = client.post(url, json=document, headers=bearer(institution))
            assert response.status_code == 200 and response.json()["counts"] == {"created": 1}, response.text
        amended = client.post(
            SERVICES, headers=bearer(institution), json=[services_item("001", "변경공고", chgNtceRsn="개찰일시 변경")]
        )
        assert amended.json()["counts"] == {"amended": 1}, amended.text

        eventually(
            lambda: len(services_receiver.delivered()) >= 2 and len(goods_receiver.delivered()) >= 1,
            timeout=30,
            what="the imported notices at their subscribers",
        )
        services_got, goods_got = services_receiver.delivered(), goods_receiver.delivered()
        assert [r.body["data"]["notice"]["title"] for r in services_got] == ["공고 R26BK00077001"] * 2
        assert services_got[1].body["data"]["reason"] == "개찰일시 변경"
        assert [r.body["data"]["notice"]["title"] for r in goods_got] == ["공고 R26BK00077002"]
    finally:
        services_receiver.close()
        goods_receiver.close()
