"""Sample notices for ``g2bhub demo``: three realistic notices of the demo institution, one amended and
one cancelled, so every feed has something to show.

Re-running the demo publishes nothing new: each write carries a fixed Idempotency-Key (with a fixed
request hash, because the dates are relative to today), so a second run gets the stored answers back.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.cli.demo_components import DEMO_ORGANISATIONS, DemoComponent, DemoContext
from hub.notices.commands import AmendNotice, CancelNotice, PublishNotice
from hub.notices.idempotency import IdempotencyTicket
from hub.notices.links import API_PREFIX
from hub.notices.model import NoticeContent
from hub.organisations.model import OrgKind

__all__ = ["DemoNotices"]

log = logging.getLogger("hub.cli.demo")


def _ticket(key: str) -> IdempotencyTicket:
    return IdempotencyTicket(key=key, request_hash=f"demo-v1:{key}")


def _samples(today: datetime) -> list[dict[str, Any]]:
    def at(days: int, hour: int) -> str:
        return (today + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0).isoformat()

    buyer = {"id": "KR-GOV-6110000", "name": "Seoul Metropolitan Government"}
    return [
        {"title": "Resurfacing of district roads in Jongno-gu", "category": "works",
         "description": "Milling and resurfacing of 12 km of district roads, drainage included.",
         "classifications": [{"scheme": "CPV", "code": "45233140-2"}], "delivery_region": "KR-11",
         "estimated_value": "1250000000", "currency": "KRW", "procedure": "selective", "procedure_details": "제한경쟁",
         "dates": {"published": at(0, 0), "clarification_deadline": at(7, 9), "submission_deadline": at(14, 1),
                   "opening": at(14, 2)},
         "documents": [{"title": "Specification", "url": "https://files.example.kr/demo/roads-spec.pdf"}],
         "buyer": buyer},
        {"title": "Ergonomic office chairs for City Hall", "category": "goods",
         "description": "Supply and delivery of 400 ergonomic chairs.",
         "classifications": [{"scheme": "UNSPSC", "code": "56112100"}], "delivery_region": "KR-11",
         "estimated_value": "84500000", "currency": "KRW",
         "dates": {"published": at(0, 0), "submission_deadline": at(10, 1), "opening": at(10, 2)}, "buyer": buyer},
        {"title": "Cleaning services for Seoul Citizens Hall", "category": "services",
         "description": "Daily cleaning of public areas for 24 months.",
         "classifications": [{"scheme": "CPV", "code": "90910000-9"}], "delivery_region": "KR-11",
         "estimated_value": "300000000", "currency": "KRW",
         "dates": {"published": at(0, 0), "submission_deadline": at(21, 1), "opening": at(21, 2)}, "buyer": buyer},
    ]


class DemoNotices(DemoComponent):
    name = "notices"

    def start(self, ctx: DemoContext) -> None:
        bus = ctx.hub.bus
        with ctx.hub.uow() as uow:
            name = DEMO_ORGANISATIONS[OrgKind.INSTITUTION]
            org_id = next((o.id for o in uow.organisations.list(OrgKind.INSTITUTION) if o.name == name), None)
        if org_id is None:
            log.warning("demo notices skipped: no demo institution")
            return
        today = datetime.now(UTC)
        ids = []
        for index, data in enumerate(_samples(today), start=1):
            receipt = bus.handle(PublishNotice(institution_org_id=org_id, content=NoticeContent.parse(data),
                                               actor_org_id=org_id, idempotency=_ticket(f"demo-notice-{index}")))
            ids.append(receipt.body["id"])
        deadline = (today + timedelta(days=21)).replace(hour=1, minute=0, second=0, microsecond=0)
        bus.handle(AmendNotice(
            notice_id=ids[0], institution_org_id=org_id, reason="Submission deadline extended by one week",
            changes={"dates": {"submission_deadline": deadline.isoformat(),
                               "opening": (deadline + timedelta(hours=1)).isoformat()}},
            actor_org_id=org_id, idempotency=_ticket("demo-notice-1-amendment")))
        bus.handle(CancelNotice(notice_id=ids[2], institution_org_id=org_id, reason="Budget withdrawn",
                                actor_org_id=org_id, idempotency=_ticket("demo-notice-3-cancellation")))
        base = ctx.base_url + API_PREFIX
        ctx.add_section("Open publication (no key needed)", [
            f"curl -s '{base}/notices?category=works'",
            f"curl -s {base}/notices/{ids[0]}",
            f"curl -s {base}/notices/{ids[0]}/ocds/record",
            f"curl -s '{base}/feeds/changes?after=0'",
            f"curl -s {base}/feeds/notices.atom",
            f"curl -s '{base}/ocds/releases?after=0'",
        ])
