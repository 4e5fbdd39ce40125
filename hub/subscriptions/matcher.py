"""Matching: each published notice version becomes one delivery row per matching subscription (plus
its shared payload).

**In seq order, by construction.** Matching does not trust the order in which the broker hands events
to the ``syndication-matching`` consumers (several workers compete on that queue, one may be slow or
paused). It walks the changes feed — ``notice_versions`` in ``seq`` order, which is commit order — from
a persistent cursor, locked for the matching transaction so one matcher at a time walks it. Version n
of a notice is therefore always matched, and its delivery rows committed, before version n+1, and
``claim_due`` (n+1 waits while n is open for that subscriber) gives per-subscriber order. An amendment
or a cancellation also goes to every subscription that received, or is still owed, an earlier version
(``earlier_recipients``), which is complete because the earlier versions are matched already.

An event only says "the feed has grown up to seq N": its consumer matches from the cursor through N
(and on, up to a batch) unless the cursor is already past N, so it is idempotent and any order of
events gives the same deliveries. The periodic sweep (:func:`sweep`, a worker job) matches whatever a
lost or dead-lettered event left behind.

Matching goes through the in-memory index, never a scan of the subscriptions table."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from hub.notices.events import NoticeVersionPublished
from hub.notices.model import NoticeContent
from hub.subscriptions.batching import divert_batched
from hub.subscriptions.filters import NoticeFacts
from hub.subscriptions.index_cache import IndexCache
from hub.subscriptions.model import notice_routing_key
from hub.subscriptions.reader import FeedVersion, NoticeReader
from hub.subscriptions.repository import SubscriptionsUnitOfWork

__all__ = ["MATCH_BATCH", "build_payload", "match_feed", "match_notice_version", "sweep", "sweep_interval_s"]

log = logging.getLogger(__name__)

EVENT_TYPES = {"original": "notice.published", "amendment": "notice.amended", "cancellation": "notice.cancelled"}
MATCH_BATCH = 200  # feed versions per read (and per sweep transaction)
SWEEP_INTERVAL_S = 10.0  # the safety-net pass, multiplied by syndication.time_scale
MIN_SWEEP_INTERVAL_S = 0.5


class SweepUnitOfWork(SubscriptionsUnitOfWork, Protocol):
    """A unit of work the sweep opens itself, so it commits itself."""

    def commit(self) -> None: ...


def sweep_interval_s(time_scale: float) -> float:
    return max(MIN_SWEEP_INTERVAL_S, SWEEP_INTERVAL_S * time_scale)


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


def _match_version(item: FeedVersion, uow: SubscriptionsUnitOfWork, index: IndexCache) -> int:
    event = item.event
    matched: list[str] = []  # ids in any order, duplicates allowed: the writer orders and de-duplicates
    if item.content is not None:
        matched = index.match(NoticeFacts.of(NoticeContent.parse(item.content), event.institution_org_id))
    if event.version > 1:
        matched = [*matched, *uow.deliveries.earlier_recipients(event.notice_id, event.version)]
    uow.deliveries.add_payload(event.notice_id, event.version, event.kind, event.seq,
                               notice_routing_key(event.category, event.region),
                               build_payload(event, item.content, item.metadata))
    own, batched = divert_batched(uow, matched, event)  # subscriptions on endpoints: one per endpoint
    created = batched + uow.deliveries.add_deliveries(own, event.notice_id, event.version, event.seq,
                                                      event.kind)
    log.info("notice version matched", extra={"notice_id": event.notice_id, "version": event.version,
                                              "seq": event.seq, "subscriptions": created})
    return created


def match_feed(
    uow: SubscriptionsUnitOfWork,
    index: IndexCache,
    delivery_wake: threading.Event,
    reader: NoticeReader,
    *,
    through: int | None,
    wait: bool,
    batch: int = MATCH_BATCH,
) -> tuple[int, int]:
    """Match the feed after the cursor, in seq order, in ``uow``'s transaction: through ``through``
    (and the rest of that batch), or one batch when it is None. ``wait`` waits for a matcher ahead
    (a consumer must see its own version matched before it commits); without it, a held cursor means
    someone else is matching and nothing is done. Returns (versions matched, deliveries created)."""
    cursor = uow.matching_cursor.hold(wait=wait)
    if cursor is None or (through is not None and cursor >= through):
        return 0, 0
    index.sync(uow.subscriptions)
    versions = deliveries = 0
    while True:
        found = reader.versions_after(cursor, batch)
        for item in found:
            deliveries += _match_version(item, uow, index)
            cursor = item.event.seq
        versions += len(found)
        if len(found) < batch or through is None or cursor >= through:
            break
    if versions:
        uow.matching_cursor.advance(cursor)
    if deliveries:
        uow.after_commit(delivery_wake.set)  # only once the rows are committed can the dispatcher see them
    return versions, deliveries


def match_notice_version(
    event: NoticeVersionPublished,
    uow: SubscriptionsUnitOfWork,
    subscription_index: IndexCache,
    delivery_wake: threading.Event,
    notice_reader: NoticeReader | None = None,
) -> int:
    """The ``syndication-matching`` consumer: make sure the feed is matched through this version.
    ``subscription_index`` and ``delivery_wake`` are the process's own, from bootstrap. Returns the
    deliveries this call created (for this and any other version it matched)."""
    if uow.matching_cursor.position() >= event.seq:
        return 0  # matched already, by whichever consumer or sweep got there first
    _, created = match_feed(uow, subscription_index, delivery_wake, notice_reader or uow.notice_versions,
                            through=event.seq, wait=True)
    return created


def sweep(
    uow_factory: Callable[[], AbstractContextManager[SweepUnitOfWork]],
    index: IndexCache,
    delivery_wake: threading.Event,
    notice_reader: NoticeReader | None = None,
    batch: int = MATCH_BATCH,
) -> int:
    """The periodic safety net: match whatever the feed holds past the cursor, a batch per
    transaction, unless another matcher holds the cursor. Returns the versions matched."""
    total = 0
    while True:
        with uow_factory() as uow:
            versions, _ = match_feed(uow, index, delivery_wake, notice_reader or uow.notice_versions,
                                     through=None, wait=False, batch=batch)
            uow.commit()
        total += versions
        if versions < batch:
            return total
