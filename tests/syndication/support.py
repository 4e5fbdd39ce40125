"""Shared test helpers of the syndication slice: a hub with a fake notice reader, an agency with a
key, and a way to publish notice versions as the publishing slice does (store + event in one
transaction)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from hub.bootstrap import Hub
from hub.notices.events import NoticeVersionPublished
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.subscriptions.reader import InMemoryNoticeReader

FAST = {
    "time_scale": 0.0002,  # 5 s → 1 ms, 24 h → 17 s
    "jitter": 0.1,
    "allow_private_targets": True,
    "dispatch_interval_s": 0.05,
    "read_timeout_s": 1.0,
    "connect_timeout_s": 1.0,
    "max_retry_after_s": 1.0,
}


def content(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "Road paving of Gangnam-daero",
        "description": "Resurfacing 2 km of road",
        "category": "works",
        "classifications": [{"scheme": "CPV", "code": "45233222"}],
        "delivery_region": "KR-11",
        "estimated_value": "1250000000",
        "currency": "KRW",
        "dates": {"published": "2025-03-03T09:00:00+09:00"},
    }
    data.update(overrides)
    return data


@dataclass
class Publisher:
    hub: Hub
    reader: InMemoryNoticeReader
    institution: str = "inst-1"
    seq: int = 0

    def publish(self, notice_id: str, version: int, kind: str = "original", **overrides: Any) -> None:
        body = content(**overrides)
        self.reader.put(notice_id, version, body)
        self.seq += 1
        event = NoticeVersionPublished(
            notice_id=notice_id, version=version, kind=kind, institution_org_id=self.institution,
            category=body["category"], region=body.get("delivery_region"), seq=self.seq,
            published_at="2025-03-03T00:00:00+00:00",
        )
        with self.hub.uow() as uow:
            uow.publish(event)
            uow.commit()


def new_notice_id() -> str:
    return f"N-{uuid.uuid4().hex[:10]}"


def agency_key(hub: Hub) -> tuple[str, str]:
    org, issued = hub.bus.handle(CreateOrganisation(name=f"agency {uuid.uuid4().hex[:6]}", kind=OrgKind.AGENCY))
    return org.id, issued.plaintext
