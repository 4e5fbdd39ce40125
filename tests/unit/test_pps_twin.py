"""The PPS twin speaks BidPublicInfoService as ../shared/contracts/pps/SPEC.md describes it: windows and
paging, NODATA, the one-month limit, bad dates, the key check (and the gateway envelope of a key
error), both ``items`` shapes, XML without ``type=json``, and scheduled quota answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from lxml import etree
from starlette.testclient import TestClient

from connectors.sandbox.config import DEFAULT_API_KEYS, SandboxConfig
from connectors.sandbox.pps import BASE_PATH, pps_dataset
from connectors.sandbox.server import build_sandbox

KEY = DEFAULT_API_KEYS["pps"]
GOODS = f"/pps{BASE_PATH}/getBidPblancListInfoThng"
WEEK = {"inqryBgnDt": "202603020000", "inqryEndDt": "202603082359"}


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(build_sandbox(SandboxConfig(suppliers=20)).app) as http:
        yield http


def ask(client: TestClient, path: str = GOODS, key: str | None = KEY, **params: Any) -> Any:
    query = {"type": "json", "pageNo": 1, "numOfRows": 10, "inqryDiv": 3, **WEEK, **params}
    if key is not None:
        query["serviceKey"] = key
    return client.get(path, params=query)


def header(answer: Any) -> dict[str, str]:
    document = answer.json()
    envelope = document.get("response") or document["nkoneps.com.response.ResponseError"]
    return dict(envelope["header"])


def test_pages_through_a_window_up_to_total_count(client: TestClient) -> None:
    goods = pps_dataset()["getBidPblancListInfoThng"]
    seen: list[tuple[str, str]] = []
    for page in (1, 2, 3):
        body = ask(client, pageNo=page, numOfRows=10).json()["response"]["body"]
        assert body["totalCount"] == len(goods) and body["pageNo"] == page
        items = body["items"]["item"] if body["items"] else []
        seen += [(it["bidNtceNo"], it["bidNtceOrd"]) for it in (items if isinstance(items, list) else [items])]
    assert sorted(seen) == sorted((it["bidNtceNo"], it["bidNtceOrd"]) for it in goods)
    assert len(set(seen)) == len(seen)
    assert ask(client, pageNo=4).json()["response"]["body"]["items"] == ""


def test_the_dataset_has_amendments_and_a_cancellation_across_days() -> None:
    for items in pps_dataset().values():
        assert {"000", "001", "002"} <= {it["bidNtceOrd"] for it in items}
        assert sum(it["ntceKindNm"] == "취소공고" for it in items) == 1
        assert len({it["rgstDt"][:10] for it in items}) >= 3


def test_registration_and_change_windows_differ_for_corrected_notices(client: TestClient) -> None:
    # Notice 1 is registered at 09:00 and corrected in place at 09:30.
    window = {"inqryBgnDt": "202603020900", "inqryEndDt": "202603020910"}
    by_registration = ask(client, inqryDiv=1, **window).json()["response"]["body"]
    assert by_registration["totalCount"] == 1
    assert header(ask(client, inqryDiv=3, **window))["resultCode"] == "03"
    later = {"inqryBgnDt": "202603020930", "inqryEndDt": "202603020930"}  # both ends are inclusive
    assert ask(client, inqryDiv=3, **later).json()["response"]["body"]["items"]["item"]["bidNtceOrd"] == "000"


def test_nodata_bad_dates_and_the_one_month_limit(client: TestClient) -> None:
    assert header(ask(client, inqryBgnDt="202601010000", inqryEndDt="202601020000"))["resultCode"] == "03"
    assert header(ask(client, inqryBgnDt="2026-03-01", inqryEndDt="202603020000"))["resultCode"] == "06"
    assert header(ask(client, inqryBgnDt="202603020000", inqryEndDt="202603010000"))["resultCode"] == "06"
    assert header(ask(client, inqryBgnDt="202601310000", inqryEndDt="202602280000"))["resultCode"] == "03"
    assert header(ask(client, inqryBgnDt="202601310000", inqryEndDt="202603010000"))["resultCode"] == "07"
    assert header(ask(client, inqryDiv=""))["resultCode"] == "11"
    assert header(ask(client, inqryDiv=2))["resultCode"] == "10"
    assert header(ask(client, path=f"/pps{BASE_PATH}/getSomethingElse"))["resultCode"] == "12"


def test_the_key_is_compared_decoded_and_a_double_encoded_key_is_refused(client: TestClient) -> None:
    assert header(ask(client))["resultCode"] == "00"
    refused = ask(client, key=quote(KEY, safe=""))  # encoded by the caller, then again by the client
    assert refused.json() == {
        "nkoneps.com.response.ResponseError": {
            "header": {"resultCode": "30", "resultMsg": "SERVICE KEY IS NOT REGISTERED ERROR"}
        }
    }
    assert header(ask(client, key=None))["resultCode"] == "30"


def test_items_shapes(client: TestClient) -> None:
    single = {"inqryBgnDt": "202603020900", "inqryEndDt": "202603020900"}
    assert isinstance(ask(client, inqryDiv=1, **single).json()["response"]["body"]["items"]["item"], dict)
    assert client.post("/pps/_control/pps", json={"items_shape": "list"}).json()["items_shape"] == "list"
    listed = ask(client, inqryDiv=1, **single).json()["response"]["body"]["items"]
    assert isinstance(listed, list) and len(listed) == 1
    assert client.post("/pps/_control/pps", json={"items_shape": "other"}).status_code == 422
    client.post("/_control/reset")
    assert client.get("/pps/_control/pps").json()["items_shape"] == "item"


def test_xml_without_type_json(client: TestClient) -> None:
    answer = ask(client, type="", numOfRows=2)
    assert answer.headers["content-type"].startswith("application/xml")
    root = etree.fromstring(answer.content)
    assert root.findtext("header/resultCode") == "00"
    assert len(root.findall("body/items/item")) == 2 and root.findtext("body/totalCount") == "23"


def test_scheduled_quota_answers_then_recovery(client: TestClient) -> None:
    client.post("/pps/_control/pps", json={"fail_after": 1, "fail_code": "22", "fail_count": 2})
    assert header(ask(client))["resultCode"] == "00"
    assert [header(ask(client))["resultCode"] for _ in range(3)] == ["22", "22", "00"]
    client.post("/pps/_control/pps", json={"fail_after": 0, "fail_code": "503", "fail_count": 1})
    assert ask(client).status_code == 503
    assert client.get("/pps/_control/stats").json()["fault:scheduled:22"] == 2


def test_injected_faults_use_the_shared_knobs(client: TestClient) -> None:
    client.post("/pps/_control/faults", json={"error_rate": 1.0, "fault_code": "22"})
    assert header(ask(client))["resultCode"] == "22"
    client.post("/pps/_control/faults", json={"error_rate": 0.0, "outage": True})
    assert ask(client).status_code == 503
