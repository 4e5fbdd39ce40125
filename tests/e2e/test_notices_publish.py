"""Publishing notices through the real API on SQLite and PostgreSQL: versions, ownership, validation
problems, Idempotency-Key, PPS import and CSV bulk upload. No worker runs: events stay in the outbox,
where each stored version must have exactly one NoticeVersionPublished with its seq."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.api import API
from tests.support.notices import NoticesClient, notice_body, notices_client


@pytest.fixture(params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest) -> Iterator[NoticesClient]:
    with notices_client(str(request.getfixturevalue(f"{request.param}_url"))) as client:
        yield client


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return dict(response.json())


def test_publish_amend_cancel_keeps_every_version(api: NoticesClient) -> None:
    org_id, headers = api.org()
    created = api.publish(headers)
    notice_id = created["id"]
    assert created["version"] == 1 and created["kind"] == "original" and created["status"] == "active"

    amended = api.http.post(
        f"{API}/notices/{notice_id}/amendments",
        json={"reason": "deadline extended", "changes": {"dates": {"submission_deadline": "2026-03-20T10:00:00+09:00",
                                                                    "opening": "2026-03-20T11:00:00+09:00"}}},
        headers=headers,
    )
    assert amended.status_code == 201, amended.text
    assert amended.headers["location"] == f"{API}/notices/{notice_id}/versions/2"
    full = notice_body(title="Road resurfacing in Jongno-gu (revised)")
    full["dates"]["submission_deadline"] = "2026-03-20T10:00:00+09:00"
    full["dates"]["opening"] = "2026-03-20T11:00:00+09:00"
    replaced = api.http.post(f"{API}/notices/{notice_id}/amendments", json={"reason": "title", "content": full},
                             headers=headers)
    assert replaced.status_code == 201, replaced.text
    cancelled = api.http.post(f"{API}/notices/{notice_id}/cancellation", json={"reason": "budget withdrawn"},
                              headers=headers)
    assert cancelled.status_code == 201 and cancelled.json()["status"] == "cancelled"

    detail = api.http.get(f"{API}/notices/{notice_id}").json()
    assert detail["status"] == "cancelled" and detail["current_version"] == 4
    assert [(v["number"], v["kind"]) for v in detail["versions"]] == [
        (1, "original"), (2, "amendment"), (3, "amendment"), (4, "cancellation")]
    assert detail["versions"][1]["changed_fields"] == ["dates.submission_deadline", "dates.opening"]
    assert detail["versions"][2]["changed_fields"] == ["title"]
    assert detail["content"]["title"].endswith("(revised)")
    second = api.http.get(f"{API}/notices/{notice_id}/versions/2").json()
    assert second["content"]["dates"]["submission_deadline"] == "2026-03-20T10:00:00+09:00"
    assert second["reason"] == "deadline extended"
    assert api.http.get(f"{API}/notices/{notice_id}/versions/9").status_code == 404

    again = api.http.post(f"{API}/notices/{notice_id}/amendments", json={"reason": "x", "changes": {"title": "y"}},
                          headers=headers)
    assert problem(again, 409)["type"].endswith("/conflict")

    events = api.events()
    seqs = [v["seq"] for v in detail["versions"]]
    assert [(e["notice_id"], e["version"], e["kind"], e["seq"]) for e in events] == [
        (notice_id, v["number"], v["kind"], v["seq"]) for v in detail["versions"]]
    assert all(e["institution_org_id"] == org_id and e["actor_org_id"] == org_id for e in events)
    assert events[0]["category"] == "works" and events[0]["region"] == "KR-11"
    assert seqs == sorted(seqs) and len(set(seqs)) == 4


def test_only_the_owning_institution_changes_a_notice(api: NoticesClient) -> None:
    _, owner = api.org()
    _, other = api.org()
    _, agency = api.org("agency")
    notice_id = api.publish(owner)["id"]
    missing = str(uuid.uuid4())
    for target in (notice_id, missing):
        amend = api.http.post(f"{API}/notices/{target}/amendments", json={"reason": "r", "changes": {"title": "t"}},
                              headers=other)
        cancel = api.http.post(f"{API}/notices/{target}/cancellation", json={"reason": "r"}, headers=other)
        assert problem(amend, 404)["type"].endswith("/not-found")
        assert problem(cancel, 404)["detail"].replace(target, "ID") == "notice 'ID' not found"
    assert problem(api.http.post(f"{API}/notices", json=notice_body(), headers=agency), 403)
    assert problem(api.http.post(f"{API}/notices", json=notice_body()), 401)
    assert api.http.get(f"{API}/notices/{notice_id}").json()["current_version"] == 1


def test_validation_names_each_bad_field(api: NoticesClient) -> None:
    _, headers = api.org()
    body = notice_body(currency="WON", delivery_region="Seoul", category="furniture")
    del body["title"]
    body["dates"]["submission_deadline"] = "not a date"
    found = problem(api.http.post(f"{API}/notices", json=body, headers=headers), 422)
    pointers = {e["pointer"] for e in found["errors"]}
    assert {"#/body/title", "#/body/currency", "#/body/delivery_region", "#/body/category",
            "#/body/dates/submission_deadline"} <= pointers

    crossed = notice_body(lots=[{"id": "L1", "title": "a"}, {"id": "L1", "title": "b"}])
    crossed["dates"]["opening"] = "2026-03-10T11:00:00+09:00"  # before the submission deadline
    found = problem(api.http.post(f"{API}/notices", json=crossed, headers=headers), 422)
    assert {e["pointer"] for e in found["errors"]} == {"#/body/dates/opening", "#/body/lots/1/id"}

    # eligibility speaks the requirement language (docs/eligibility.md), on publish and on amendment
    unknown_kind = notice_body(eligibility=[{"kind": "sme_only"}])
    found = problem(api.http.post(f"{API}/notices", json=unknown_kind, headers=headers), 422)
    assert [e["pointer"] for e in found["errors"]] == ["#/body/eligibility/0/kind"]

    notice_id = api.publish(headers)["id"]
    bad_scheme = {"reason": "r", "content": notice_body(eligibility=[{"kind": "certificate", "scheme": "ISO 1"}])}
    found = problem(api.http.post(f"{API}/notices/{notice_id}/amendments", json=bad_scheme, headers=headers), 422)
    assert [e["pointer"] for e in found["errors"]] == ["#/body/content/eligibility/0/scheme"]
    patch = {"reason": "move", "changes": {"dates": {"opening": "2026-03-01T00:00:00+09:00"}, "currency": "XX"}}
    found = problem(api.http.post(f"{API}/notices/{notice_id}/amendments", json=patch, headers=headers), 422)
    # the bad currency and the dates out of order, in one answer
    assert {e["pointer"] for e in found["errors"]} == {"#/body/changes/currency", "#/body/changes/dates/opening"}
    patch = {"reason": "move", "changes": {"dates": {"opening": "2026-03-01T00:00:00+09:00"}}}
    found = problem(api.http.post(f"{API}/notices/{notice_id}/amendments", json=patch, headers=headers), 422)
    assert [e["pointer"] for e in found["errors"]] == ["#/body/changes/dates/opening"]
    both = api.http.post(f"{API}/notices/{notice_id}/amendments", json={"reason": " "}, headers=headers)
    assert problem(both, 422)["errors"]
    assert problem(api.http.post(f"{API}/notices/{notice_id}/cancellation", json={}, headers=headers), 422)[
        "errors"][0]["pointer"] == "#/body/reason"
    assert len(api.events()) == 1


def test_idempotency_key_replays_and_refuses_reuse(api: NoticesClient) -> None:
    _, headers = api.org()
    _, other = api.org()
    keyed = {**headers, "Idempotency-Key": "publish-0001"}
    first = api.http.post(f"{API}/notices", json=notice_body(), headers=keyed)
    second = api.http.post(f"{API}/notices", json=notice_body(), headers=keyed)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() and first.headers["location"] == second.headers["location"]
    assert second.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert len(api.http.get(f"{API}/notices").json()["items"]) == 1

    reused = api.http.post(f"{API}/notices", json=notice_body(title="Another"), headers=keyed)
    assert problem(reused, 422)["type"].endswith("/idempotency-key-reused")
    # keys belong to an institution: another one may use the same key for its own notice
    theirs = api.http.post(f"{API}/notices", json=notice_body(), headers={**other, "Idempotency-Key": "publish-0001"})
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]

    notice_id = first.json()["id"]
    cancel_key = {**headers, "Idempotency-Key": "cancel-0001"}
    cancelled = [api.http.post(f"{API}/notices/{notice_id}/cancellation", json={"reason": "gone"}, headers=cancel_key)
                 for _ in range(2)]
    assert [c.status_code for c in cancelled] == [201, 201] and cancelled[0].json() == cancelled[1].json()
    bad_key = api.http.post(f"{API}/notices", json=notice_body(), headers={**headers, "Idempotency-Key": "two words"})
    assert problem(bad_key, 422)["errors"][0]["pointer"] == "#/header/Idempotency-Key"
    assert len(api.events()) == 3


def test_an_expired_idempotency_key_is_free_again_and_purged(api: NoticesClient) -> None:

    from sqlalchemy import func, update

    from hub.notices.tables import IdempotencyRow

    _, headers = api.org()
    keyed = {**headers, "Idempotency-Key": "daily-0001"}
    first = api.http.post(f"{API}/notices", json=notice_body(), headers=keyed)
    fresh = api.http.post(f"{API}/notices", json=notice_body(), headers={**headers, "Idempotency-Key": "fresh"})
    assert first.status_code == fresh.status_code == 201

    def keys() -> int:
        with api.hub.session_factory() as session:
            return int(session.scalar(select(func.count()).select_from(IdempotencyRow)) or 0)

    with api.hub.session_factory() as session:  # age one key past the 48 h it is remembered
        session.execute(update(IdempotencyRow).where(IdempotencyRow.key == "daily-0001")
                        .values(created_at=datetime.now(UTC) - timedelta(hours=49)))
        session.commit()
    again = api.http.post(f"{API}/notices", json=notice_body(), headers=keyed)
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]  # a new request, a new notice

    with api.hub.session_factory() as session:
        session.execute(update(IdempotencyRow).where(IdempotencyRow.key == "fresh")
                        .values(created_at=datetime.now(UTC) - timedelta(hours=49)))
        session.commit()
    assert keys() == 2
    assert api.hub.purge_idempotency_keys() == 1  # the worker's periodic job: only the expired one goes
    assert keys() == 1


def pps_item(order: str, kind: str = "등록공고", **overrides: str) -> dict[str, str]:
    item = {
        "bidNtceNo": "R26BK00012345", "bidNtceOrd": order, "ntceKindNm": kind,
        "bidNtceDt": f"2026-03-0{3 + int(order)} 09:30:12", "bidNtceNm": "2026년 관내 도로 재포장 공사",
        "ntceInsttCd": "6110000", "ntceInsttNm": "서울특별시", "dminsttCd": "3000000", "dminsttNm": "서울특별시 종로구",
        "bidMethdNm": "전자입찰", "cntrctCnclsMthdNm": "제한경쟁", "bidBeginDt": "2026-03-10 09:00:00",
        "bidClseDt": "2026-03-14 10:00:00", "opengDt": "2026-03-14 11:00:00", "presmptPrce": "1250000000",
        "prtcptLmtRgnNm": "서울특별시", "indstrytyLmtYn": "Y",
    }
    item.update(overrides)
    return item


def test_pps_import_maps_orders_to_versions(api: NoticesClient) -> None:
    started = datetime.now(UTC)
    _, headers = api.org()
    envelope = {"response": {"header": {"resultCode": "00", "resultMsg": "정상"}, "body": {"items": [
        pps_item("001", "변경공고", bidClseDt="2026-03-17 10:00:00", opengDt="2026-03-17 11:00:00"),
        pps_item("000"),
        {**pps_item("000"), "bidNtceNo": "R26BK00099999", "bidClseDt": "soon"},
    ], "totalCount": 3}}}
    url = f"{API}/notices/import/pps?operation=getBidPblancListInfoCnstwk"
    report = api.http.post(url, json=envelope, headers=headers)
    assert report.status_code == 200, report.text
    items = report.json()["items"]
    assert [i["status"] for i in items] == ["amended", "created", "rejected"]
    assert items[2]["errors"][0]["field"] == "bidClseDt"
    notice_id = items[1]["notice_id"]
    assert items[0]["notice_id"] == notice_id and (items[1]["version"], items[0]["version"]) == (1, 2)
    assert report.json()["counts"] == {"amended": 1, "created": 1, "rejected": 1}

    again = api.http.post(url, json=envelope, headers=headers).json()["items"]
    assert [i["status"] for i in again[:2]] == ["unchanged", "unchanged"]
    cancel = api.http.post(url, json=[pps_item("002", "취소공고")], headers=headers).json()["items"]
    assert cancel[0]["status"] == "cancelled" and cancel[0]["version"] == 3
    stray = api.http.post(url, json={"items": [{**pps_item("001", "취소공고"), "bidNtceNo": "R26BK00000001"}]},
                          headers=headers).json()["items"]
    assert stray[0]["status"] == "rejected"

    detail = api.http.get(f"{API}/notices/{notice_id}").json()
    assert [v["kind"] for v in detail["versions"]] == ["original", "amendment", "cancellation"]
    # published_at: when PPS says each order was published (bidNtceDt, KST); received_at: when the hub got it
    original = detail["versions"][0]
    assert datetime.fromisoformat(original["published_at"]) == datetime(2026, 3, 3, 0, 30, 12, tzinfo=UTC)
    assert detail["published_at"] == original["published_at"]
    assert started <= datetime.fromisoformat(original["received_at"]) <= datetime.now(UTC)
    feed = api.http.get(f"{API}/feeds/changes", params={"after": 0}).json()["changes"]
    entry = next(c for c in feed if c["notice_id"] == notice_id and c["version"] == 1)
    assert (entry["published_at"], entry["received_at"]) == (original["published_at"], original["received_at"])
    assert detail["category"] == "works" and detail["delivery_region"] == "KR-11"
    assert detail["versions"][1]["changed_fields"] == [
        "dates.published", "dates.submission_deadline", "dates.opening"]
    # another institution's identical bidNtceNo is its own notice
    _, other = api.org()
    theirs = api.http.post(url, json=[pps_item("000")], headers=other).json()["items"]
    assert theirs[0]["status"] == "created" and theirs[0]["notice_id"] != notice_id
    failed = api.http.post(url, json={"response": {"header": {"resultCode": "22", "resultMsg": "LIMITED"}}},
                           headers=headers)
    assert problem(failed, 422)["errors"][0]["pointer"] == "#/body/response/header/resultCode"
    assert len(api.events()) == 4


CSV = (
    "title,category,classifications,delivery_region,estimated_value,currency,published,submission_deadline,"
    "opening,buyer_id,buyer_name,document_url\n"
    "Office chairs,goods,CPV:39113000-7,KR-30,\"84,500,000\",KRW,2026-04-01T10:00:00+09:00,"
    "2026-04-14T10:00:00+09:00,2026-04-14T11:00:00+09:00,KR-GOV-1,Daejeon City,https://files.example.kr/c.pdf\n"
    "Broken row,food,45,Seoul,-3,KRW,2026-04-01T10:00:00+09:00,2026-03-01T10:00:00+09:00,,,,\n"
    ",,,,,,,,,,,\n"
    "Cleaning services,services,UNSPSC:76111500,KR-11,,,,2036-05-01T10:00:00+09:00,,,,\n"
)


def test_csv_bulk_publishes_valid_rows_and_reports_bad_ones(api: NoticesClient) -> None:
    _, headers = api.org()
    response = api.http.post(f"{API}/notices/bulk", content=CSV.encode(),
                             headers={**headers, "Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    assert [(r["row"], r["status"]) for r in rows] == [(2, "created"), (3, "rejected"), (5, "created")]
    columns = {e["column"] for e in rows[1]["errors"]}
    assert {"category", "classifications", "delivery_region", "estimated_value"} <= columns
    detail = api.http.get(f"{API}/notices/{rows[0]['notice_id']}").json()
    # money is one representation everywhere: a decimal in a JSON string, in the content and the summaries
    assert detail["content"]["estimated_value"] == detail["estimated_value"] == "84500000"
    listed = api.http.get(f"{API}/notices").json()["items"]
    assert [n["estimated_value"] for n in listed if n["id"] == rows[0]["notice_id"]] == ["84500000"]

    multipart = api.http.post(f"{API}/notices/bulk", files={"file": ("n.csv", CSV.encode(), "text/csv")},
                              headers=headers)
    assert multipart.status_code == 200 and response.json()["counts"] == multipart.json()["counts"]
    unknown = api.http.post(f"{API}/notices/bulk", content=b"title,category,colour\nA,goods,red\n",
                            headers={**headers, "Content-Type": "text/csv"})
    assert problem(unknown, 422)["errors"][0]["field"] == "colour"
    wrong_type = api.http.post(f"{API}/notices/bulk", content=b"{}", headers={**headers, "Content-Type": "image/png"})
    assert problem(wrong_type, 415)
    many = "title,category\n" + "x,goods\n" * 1001
    assert problem(api.http.post(f"{API}/notices/bulk", content=many.encode(),
                                 headers={**headers, "Content-Type": "text/csv"}), 413)
    assert len(api.events()) == 4


def test_openapi_declares_the_notice_routes(api: NoticesClient) -> None:
    spec = api.http.get("/openapi.json").json()
    assert {"ApiKeyBearer": ["notices:write"]} in spec["paths"][f"{API}/notices"]["post"]["security"]
    assert spec["paths"][f"{API}/notices"]["get"]["x-public"] is True
    assert "text/csv" in spec["paths"][f"{API}/notices/bulk"]["post"]["requestBody"]["content"]


def test_stored_versions_survive_a_round_trip(api: NoticesClient) -> None:
    _, headers = api.org()
    sme = {"kind": "national_certificate", "type": "SME"}
    body = notice_body(eligibility=[sme], procedure_details="제한경쟁")
    notice_id = api.publish(headers, **copy.deepcopy(body))["id"]
    content = api.http.get(f"{API}/notices/{notice_id}").json()["content"]
    assert content["eligibility"] == [sme] and content["lots"][0]["value"] == "700000000"
