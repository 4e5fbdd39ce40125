"""Every notices command handler on the fake unit of work, driven through the message bus as the API
drives it: the versions stored, the events in the outbox, idempotent replays, ownership."""

from __future__ import annotations

from typing import Any

import pytest

from hub.config import Settings
from hub.notices.commands import AmendNotice, CancelNotice, ImportNotices, PublishNotice
from hub.notices.handlers import COMMAND_HANDLERS
from hub.notices.idempotency import IdempotencyKeyReused, IdempotencyTicket, Receipt
from hub.notices.model import NoticeContent, NoticeValidationError, VersionKind
from hub.spine.bus import MessageBus
from hub.spine.errors import Conflict, NotFound, Rejected
from tests.support.fakes import FakeUnitOfWork

ORG = "org-seoul"


def content(**overrides: Any) -> NoticeContent:
    data: dict[str, Any] = {
        "title": "Road resurfacing", "category": "works", "delivery_region": "KR-11",
        "estimated_value": "1250000000", "currency": "KRW",
        "dates": {"published": "2026-03-02T09:00:00+09:00", "submission_deadline": "2026-03-16T10:00:00+09:00"},
    }
    data.update(overrides)
    return NoticeContent.parse(data)


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def bus(uow: FakeUnitOfWork) -> MessageBus:
    return MessageBus(lambda: uow, COMMAND_HANDLERS, {}, dependencies={"settings": Settings()})


def published(uow: FakeUnitOfWork) -> list[tuple[str, int, str, int]]:
    return [(e.payload["notice_id"], e.payload["version"], e.payload["kind"], e.payload["seq"]) for e in uow.outbox
            if e.message_type == "NoticeVersionPublished"]


def publish(bus: MessageBus, key: str | None = None, org: str = ORG, **overrides: Any) -> Receipt:
    ticket = IdempotencyTicket(key=key, request_hash=f"h-{key}") if key else None
    receipt: Receipt = bus.handle(PublishNotice(institution_org_id=org, content=content(**overrides),
                                                actor_org_id=org, idempotency=ticket))
    return receipt


def test_publish_stores_the_first_version_and_announces_it(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    receipt = publish(bus)
    notice_id = receipt.body["id"]
    assert receipt.status_code == 201 and receipt.location == f"/api/v1/notices/{notice_id}"
    assert (receipt.body["version"], receipt.body["kind"], receipt.body["seq"]) == (1, "original", 1)
    stored = uow.notices.get(notice_id)
    assert stored is not None and stored.institution_id == ORG and stored.content.title == "Road resurfacing"
    assert published(uow) == [(notice_id, 1, "original", 1)]
    [event] = uow.outbox
    assert event.payload["category"] == "works" and event.payload["region"] == "KR-11"
    assert uow.committed == 1


def test_publish_with_a_key_replays_and_refuses_another_request(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    first = publish(bus, key="k1")
    again = publish(bus, key="k1")
    assert again.replayed and not first.replayed and again.body == first.body
    assert len(uow.notices.notices) == 1 and len(published(uow)) == 1
    with pytest.raises(IdempotencyKeyReused):
        bus.handle(PublishNotice(institution_org_id=ORG, content=content(title="Other"),
                                 idempotency=IdempotencyTicket(key="k1", request_hash="different")))
    assert publish(bus, key="k1", org="org-busan").body["id"] != first.body["id"]  # keys are per institution


def test_amend_by_merge_patch_appends_a_version(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    notice_id = publish(bus).body["id"]
    receipt = bus.handle(AmendNotice(notice_id=notice_id, institution_org_id=ORG, reason="deadline extended",
                                     changes={"dates": {"submission_deadline": "2026-03-20T10:00:00+09:00"}}))
    assert receipt.location == f"/api/v1/notices/{notice_id}/versions/2"
    notice = uow.notices.get(notice_id)
    assert notice is not None and notice.current.kind is VersionKind.AMENDMENT
    assert notice.current.changed_fields == ("dates.submission_deadline",)
    assert published(uow) == [(notice_id, 1, "original", 1), (notice_id, 2, "amendment", 2)]
    with pytest.raises(NoticeValidationError) as caught:
        bus.handle(AmendNotice(notice_id=notice_id, institution_org_id=ORG, reason="r", changes={"currency": "XX"}))
    assert [path for path, _ in caught.value.problems] == ["changes.currency"]
    with pytest.raises(NoticeValidationError):
        bus.handle(AmendNotice(notice_id=notice_id, institution_org_id=ORG, reason="r"))  # neither content nor changes


def test_amend_and_cancel_answer_404_for_another_institutions_notice(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    notice_id = publish(bus).body["id"]
    with pytest.raises(NotFound):
        bus.handle(AmendNotice(notice_id=notice_id, institution_org_id="org-busan", reason="r",
                               content=content(title="Taken over")))
    with pytest.raises(NotFound):
        bus.handle(CancelNotice(notice_id=notice_id, institution_org_id="org-busan", reason="r"))
    with pytest.raises(NotFound):
        bus.handle(CancelNotice(notice_id="no-such-notice", institution_org_id=ORG, reason="r"))
    notice = uow.notices.get(notice_id)
    assert notice is not None and len(notice.versions) == 1 and len(published(uow)) == 1


def test_cancel_is_the_last_version_and_replays(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    notice_id = publish(bus).body["id"]
    ticket = IdempotencyTicket(key="c1", request_hash="h")
    first = bus.handle(CancelNotice(notice_id=notice_id, institution_org_id=ORG, reason="budget withdrawn",
                                    idempotency=ticket))
    again = bus.handle(CancelNotice(notice_id=notice_id, institution_org_id=ORG, reason="budget withdrawn",
                                    idempotency=ticket))
    assert first.body["status"] == "cancelled" and again.replayed and again.body == first.body
    assert published(uow)[-1] == (notice_id, 2, "cancellation", 2) and len(published(uow)) == 2
    with pytest.raises(Conflict):
        bus.handle(CancelNotice(notice_id=notice_id, institution_org_id=ORG, reason="again"))
    with pytest.raises(Conflict):
        bus.handle(AmendNotice(notice_id=notice_id, institution_org_id=ORG, reason="r", changes={"title": "t"}))


# -- ImportNotices: one handler for every inbound format ---------------------------------------------------
def pps_item(order: str, kind: str = "등록공고", **overrides: str) -> dict[str, str]:
    item = {"bidNtceNo": "R26BK00012345", "bidNtceOrd": order, "ntceKindNm": kind,
            "bidNtceDt": f"2026-03-0{3 + int(order)} 09:30:12", "bidNtceNm": "도로 재포장 공사",
            "ntceInsttCd": "6110000", "ntceInsttNm": "서울특별시", "bidClseDt": "2026-03-14 10:00:00",
            "presmptPrce": "1250000000"}
    item.update(overrides)
    return item


def import_pps(bus: MessageBus, items: list[dict[str, str]], key: str | None = None) -> Receipt:
    ticket = IdempotencyTicket(key=key, request_hash=f"h-{key}") if key else None
    receipt: Receipt = bus.handle(ImportNotices(institution_org_id=ORG, format="pps", document={"items": items},
                                                options={"operation": "getBidPblancListInfoCnstwk"},
                                                idempotency=ticket))
    return receipt


def test_pps_orders_become_versions_in_order_and_a_second_import_changes_nothing(
    bus: MessageBus, uow: FakeUnitOfWork,
) -> None:
    report = import_pps(bus, [pps_item("001", "변경공고", bidClseDt="2026-03-17 10:00:00"), pps_item("000"),
                              pps_item("000", bidNtceNo="R26BK00099999", bidClseDt="soon")]).body
    assert [(i["index"], i["status"]) for i in report["items"]] == [(0, "amended"), (1, "created"), (2, "rejected")]
    assert report["items"][2]["errors"][0]["field"] == "bidClseDt" and report["counts"]["rejected"] == 1
    notice_id = report["items"][1]["notice_id"]
    assert uow.notices.refs[(ORG, "pps", "R26BK00012345")].last_order == 1
    assert published(uow) == [(notice_id, 1, "original", 1), (notice_id, 2, "amendment", 2)]
    notice = uow.notices.get(notice_id)
    assert notice is not None and notice.current.reason == "변경공고 (차수 001)"

    again = import_pps(bus, [pps_item("001", "변경공고"), pps_item("000")]).body
    assert [i["status"] for i in again["items"]] == ["unchanged", "unchanged"] and len(published(uow)) == 2
    cancelled = import_pps(bus, [pps_item("002", "취소공고")]).body["items"][0]
    assert (cancelled["status"], cancelled["version"]) == ("cancelled", 3)
    stray = import_pps(bus, [pps_item("001", "취소공고", bidNtceNo="R26BK00000001")]).body["items"][0]
    assert stray["status"] == "rejected" and stray["errors"][0]["field"] == "bidNtceOrd"


def test_an_import_with_a_key_replays(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    first = import_pps(bus, [pps_item("000")], key="pps-1")
    again = import_pps(bus, [pps_item("000")], key="pps-1")
    assert again.replayed and again.body == first.body and len(published(uow)) == 1


def test_csv_rows_are_each_a_new_notice(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    text = "title,category,delivery_region\nDesks,goods,KR-30\nChairs,furniture,KR-30\nDesks,goods,KR-30\n"
    report = bus.handle(ImportNotices(institution_org_id=ORG, format="csv", document=text)).body
    assert [(r["row"], r["status"]) for r in report["rows"]] == [(2, "created"), (3, "rejected"), (4, "created")]
    assert report["rows"][1]["errors"] == [{"column": "category", "message": report["rows"][1]["errors"][0]["message"]}]
    assert report["rows"][0]["notice_id"] != report["rows"][2]["notice_id"]  # no source identifier: always new
    assert report["rows"][0]["url"] == f"/api/v1/notices/{report['rows'][0]['notice_id']}"
    assert [kind for _, _, kind, _ in published(uow)] == ["original", "original"] and not uow.notices.refs


def test_an_ocds_package_creates_amends_and_cancels(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    def release(number: int, tag: str, status: str = "active", **tender: Any) -> dict[str, Any]:
        return {"ocid": "ocds-xyz-1", "id": f"r{number}", "date": f"2026-05-0{number}T09:00:00Z", "tag": [tag],
                "tender": {"id": "t", "title": "Bridge inspection", "status": status,
                           "mainProcurementCategory": "services", **tender}}

    package = {"releases": [release(2, "tenderAmendment", title="Bridge inspection (14 bridges)",
                                    amendments=[{"id": "1", "rationale": "scope"}]),
                            release(1, "tender")]}
    report = bus.handle(ImportNotices(institution_org_id=ORG, format="ocds", document=package)).body
    assert [r["status"] for r in report["releases"]] == ["amended", "created"]
    notice = uow.notices.get(report["releases"][1]["notice_id"])
    assert notice is not None and notice.current.reason == "scope" and notice.content.title.endswith("bridges)")
    assert notice.versions[0].published_at.isoformat() == "2026-05-01T09:00:00+00:00"
    cancel = {"releases": [release(3, "tenderUpdate", status="cancelled")]}
    [done] = bus.handle(ImportNotices(institution_org_id=ORG, format="ocds", document=cancel)).body["releases"]
    assert done["status"] == "cancelled" and published(uow)[-1][2] == "cancellation"


def test_an_unknown_format_is_refused(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    with pytest.raises(Rejected, match="eforms"):
        bus.handle(ImportNotices(institution_org_id=ORG, format="eforms", document={}))
    assert uow.outbox == []
