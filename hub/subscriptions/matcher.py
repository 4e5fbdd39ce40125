"""The ``syndication-matching`` consumer group: a published notice version becomes one delivery row
per matching subscription (plus its shared payload), in the consumer's unit of work.

Matching goes through the in-memory index, never a scan of the subscriptions table; an amendment or
cancellation also reaches every subscription that got an earlier version of the notice."""

from __future__ import annotations

import logging
import threading
from typing import Any

from hub.notices.events import NoticeVersionPublished
from hub.notices.model import NoticeContent
from hub.subscriptions.filters import NoticeFacts
from hub.subscriptions.index_cache import IndexCache
from hub.subscriptions.model import notice_routing_key
from hub.subscriptions.reader import NoticeReader
from hub.subscriptions.repository import SubscriptionsUnitOfWork

__all__ = ["build_payload", "match_notice_version"]

log = logging.getLogger(__name__)

EVENT_TYPES = {"original": "notice.published", "amendment": "notice.amended", "cancellation": "notice.cancelled"}


def build_payload(event: NoticeVersionPublished, content: dict[str, Any] | None,
                  metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Standard Webhooks-style body (``type``, ``timestamp``, ``data``) every channel sends. A
    cancellation has no ``notice`` content; its ``reason`` says why."""
    metadata = metadata or {}
    return {
        "type": EVENT_TYPES.get(event.kind, f"notice.{event.kind}"),
        "timestamp": event.published_at,
        "data": {
            "notice_id": event.notice_id,
            "version": event.version,
            "kind": event.kind,
            "seq": event.seq,
            "institution_org_id": event.institution_org_id,
            "category": event.category,
            "region": event.region,
            "published_at": event.published_at,
            "reason": metadata.get("reason"),
            "changed_fields": metadata.get("changed_fields", []),
            "notice": content,
        },
    }


def match_notice_version(
    event: NoticeVersionPublished,
    uow: SubscriptionsUnitOfWork,
    subscription_index: IndexCache,
    delivery_wake: threading.Event,
    notice_reader: NoticeReader | None = None,
) -> int:
    """``subscription_index`` and ``delivery_wake`` are the process's own, from bootstrap; the wake-up
    fires only once the new delivery rows are committed, so the dispatcher never wakes to find nothing."""
    reader = notice_reader or uow.notice_versions
    content, meta = reader.get_version(event.notice_id, event.version)
    subscription_index.sync(uow.subscriptions)
    matched: set[str] = set()
    if content is not None:
        facts = NoticeFacts.of(NoticeContent.parse(content), event.institution_org_id)
        matched = subscription_index.match(facts)
    if event.version > 1:
        matched |= uow.deliveries.earlier_recipients(event.notice_id, event.version)
    uow.deliveries.add_payload(event.notice_id, event.version, event.kind, event.seq,
                               notice_routing_key(event.category, event.region), build_payload(event, content, meta))
    created = uow.deliveries.add_deliveries(sorted(matched), event.notice_id, event.version, event.seq, event.kind)
    if created:
        uow.after_commit(delivery_wake.set)
    log.info("notice version matched", extra={"notice_id": event.notice_id, "version": event.version,
                                              "subscriptions": created})
    return created
