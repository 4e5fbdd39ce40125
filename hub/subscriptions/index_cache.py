"""Each worker process keeps one in-memory :class:`SubscriptionIndex` per database, in sync with it.

Choice: a change log, not events. Every subscription write appends a row to ``subscription_changes``
in the same transaction; before matching, the cache asks for rows after the last one it applied (one
indexed query, usually empty) and re-reads just those subscriptions. Events would need every worker
to consume every subscription change (a fan-out queue per process) and could race the notice events;
the log cannot be missed and is as fresh as the database at the moment of matching.

Sequence values become visible out of commit order on PostgreSQL (a transaction holding id 41 may
commit after one holding 42), so the cache re-reads a small window below its high-water mark and
skips the ids it already applied: a slow writer's change is picked up by the next match.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from hub.subscriptions.filters import NoticeFacts, SubscriptionFilter
from hub.subscriptions.matching import SubscriptionIndex
from hub.subscriptions.model import Channel
from hub.subscriptions.tables import SubscriptionChangeRow, SubscriptionRow

__all__ = ["IndexCache", "index_cache_for"]

GAP_WINDOW = 256  # change ids below the high-water mark that are re-read for late commits


def _matchable(row: SubscriptionRow) -> bool:
    """Routable AMQP subscriptions are served by exchange bindings, not by per-subscription rows."""
    return row.status == "active" and not (row.channel == Channel.AMQP.value and row.routable)


class IndexCache:
    def __init__(self) -> None:
        self.index = SubscriptionIndex()
        self.high_water: int | None = None
        self._applied: set[int] = set()
        self.lock = threading.Lock()
        self.wake = threading.Event()  # set after a commit that created deliveries

    def sync(self, session: Session) -> None:
        with self.lock:
            if self.high_water is None:
                self._load_all(session)
            else:
                self._apply_changes(session)

    def match(self, facts: NoticeFacts) -> set[str]:
        with self.lock:
            return {str(sid) for sid in self.index.match_facts(facts)}

    def _load_all(self, session: Session) -> None:
        # The mark is read first: a change committed while loading is replayed on the next sync.
        mark = session.scalar(select(func.max(SubscriptionChangeRow.id))) or 0
        index = SubscriptionIndex()
        rows = session.execute(
            select(SubscriptionRow.id, SubscriptionRow.filter, SubscriptionRow.status, SubscriptionRow.channel,
                   SubscriptionRow.routable).where(SubscriptionRow.status == "active")
        )
        for sid, data, status, channel, routable in rows:
            if status == "active" and not (channel == Channel.AMQP.value and routable):
                index.add(sid, SubscriptionFilter.parse(data))
        self.index = index
        self.high_water = int(mark)
        self._applied = set()

    def _apply_changes(self, session: Session) -> None:
        assert self.high_water is not None
        floor = self.high_water - GAP_WINDOW
        changes = session.execute(
            select(SubscriptionChangeRow.id, SubscriptionChangeRow.subscription_id)
            .where(SubscriptionChangeRow.id > floor).order_by(SubscriptionChangeRow.id)
        ).all()
        fresh = [(int(cid), sid) for cid, sid in changes if int(cid) > self.high_water or int(cid) not in self._applied]
        if not fresh:
            return
        self._reload(session, {sid for _, sid in fresh})
        for cid, _ in fresh:
            self._applied.add(cid)
            self.high_water = max(self.high_water, cid)
        self._applied = {cid for cid in self._applied if cid > self.high_water - GAP_WINDOW}

    def _reload(self, session: Session, subscription_ids: Iterable[str]) -> None:
        ids = list(subscription_ids)
        rows = {r.id: r for r in session.scalars(select(SubscriptionRow).where(SubscriptionRow.id.in_(ids)))}
        for sid in ids:
            row = rows.get(sid)
            if row is not None and _matchable(row):
                self.index.update(sid, SubscriptionFilter.parse(row.filter))
            elif sid in self.index:
                self.index.remove(sid)


_caches: weakref.WeakKeyDictionary[Engine, IndexCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def index_cache_for(engine: Engine) -> IndexCache:
    with _caches_lock:
        cache = _caches.get(engine)
        if cache is None:
            cache = _caches[engine] = IndexCache()
        return cache
