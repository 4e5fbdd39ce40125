"""The ``syndication-matching`` consumer group: a published notice version becomes one delivery row
per matching subscription (plus its shared payload), in the consumer's unit of work.

Matching goes through the in-memory index, never a scan of the subscriptions table; an amendment or
cancellation also reaches every subscription that got an earlier version of the notice."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from hub.config import Settings
from hub.notices.events import NoticeVersionPublished
from hub.notices.model import NoticeContent
from hub.spine.unit_of_work import AbstractUnitOfWork, SqlAlchemyUnitOfWork
from hub.subscriptions import repository as store
from hub.subscriptions.filters import NoticeFacts
from hub.subscriptions.index_cache import index_cache_for
from hub.subscriptions.model import notice_routing_key
from hub.subscriptions.reader import NoticeReader, NoticeUnavailable

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


def default_notice_reader(session: Session) -> NoticeReader:
    """The notices flow's store, when it is installed."""
    try:
        from hub.subscriptions.notice_store import SqlNoticeReader
    except ImportError as exc:  # pragma: no cover - depends on the notices flow
        raise NoticeUnavailable("no NoticeReader configured (bootstrap dependency 'notice_reader')") from exc
    reader: NoticeReader = SqlNoticeReader(session)
    return reader


def match_notice_version(
    event: NoticeVersionPublished,
    uow: AbstractUnitOfWork,
    settings: Settings,
    notice_reader: NoticeReader | None = None,
) -> int:
    assert isinstance(uow, SqlAlchemyUnitOfWork), "syndication persists through SQLAlchemy"
    session = uow.session
    reader = notice_reader or default_notice_reader(session)
    content, meta = reader.get_version(event.notice_id, event.version)
    cache = index_cache_for(session.get_bind().engine)
    cache.sync(session)
    matched: set[str] = set()
    if content is not None:
        facts = NoticeFacts.of(NoticeContent.parse(content), event.institution_org_id)
        matched = cache.match(facts)
    if event.version > 1:
        matched |= store.earlier_recipients(session, event.notice_id, event.version)
    store.insert_payload(session, event.notice_id, event.version, event.kind, event.seq,
                         notice_routing_key(event.category, event.region), build_payload(event, content, meta))
    created = store.insert_deliveries(session, sorted(matched), event.notice_id, event.version, event.seq,
                                      event.kind)
    if created:
        sa_event.listen(session, "after_commit", lambda _s: cache.wake.set(), once=True)
    log.info("notice version matched", extra={"notice_id": event.notice_id, "version": event.version,
                                              "subscriptions": created})
    return created
