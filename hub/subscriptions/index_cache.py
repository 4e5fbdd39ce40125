"""Each worker process keeps one in-memory :class:`BitmapIndex` per database, in sync with it.

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
from collections.abc import Sequence
from typing import Protocol, cast

from hub.subscriptions.bitmap_index import BitmapIndex
from hub.subscriptions.filters import NoticeFacts, SubscriptionFilter

__all__ = ["RELOAD_ALL", "ChangeLog", "IndexCache"]

GAP_WINDOW = 256  # change ids below the high-water mark that are re-read for late commits
RELOAD_ALL = "*"  # a change-log entry for a bulk change: reload every subscription


class ChangeLog(Protocol):
    """What the cache reads, in the matching consumer's transaction (``uow.subscriptions`` has it)."""

    def last_change(self) -> int: ...
    def changes_after(self, floor: int) -> list[tuple[int, str]]: ...
    def matchable_filters(self, ids: Sequence[str] | None = None) -> dict[str, SubscriptionFilter]: ...


class IndexCache:
    """One per hub process, built by bootstrap and handed to the matching consumer."""

    def __init__(self) -> None:
        self.index = BitmapIndex()
        self.high_water: int | None = None
        self._applied: set[int] = set()
        self.lock = threading.Lock()

    def sync(self, log: ChangeLog) -> None:
        with self.lock:
            if self.high_water is None:
                self._load_all(log)
            else:
                self._apply_changes(log)

    def match(self, facts: NoticeFacts) -> list[str]:
        """The ids of the subscriptions selecting the notice, in slot order: the index's own id strings
        (no object made per match), looked up from the matched slots in one pass."""
        with self.lock:
            index = self.index
            return cast(list[str], index.ids_of(index.match_slots(facts)))

    def _load_all(self, log: ChangeLog) -> None:
        # The mark is read first: a change committed while loading is replayed on the next sync.
        mark = log.last_change()
        # The changes already visible are in the load; a late commit below the mark is not, and is
        # replayed (a full-reload entry among them must not reload again at the next sync).
        seen = {cid for cid, _ in log.changes_after(mark - GAP_WINDOW) if cid <= mark}
        self.index = BitmapIndex(log.matchable_filters().items())  # the filters are not kept
        self.high_water = mark
        self._applied = seen

    def _apply_changes(self, log: ChangeLog) -> None:
        assert self.high_water is not None
        changes = log.changes_after(self.high_water - GAP_WINDOW)
        fresh = [(cid, sid) for cid, sid in changes if cid > self.high_water or cid not in self._applied]
        if not fresh:
            return
        ids = list(dict.fromkeys(sid for _, sid in fresh))
        if RELOAD_ALL in ids:
            self._load_all(log)
            return
        filters = log.matchable_filters(ids)
        for sid in ids:
            if sid in filters:
                self.index.update(sid, filters[sid])
            elif sid in self.index:
                self.index.remove(sid)
        for cid, _ in fresh:
            self._applied.add(cid)
            self.high_water = max(self.high_water, cid)
        self._applied = {cid for cid in self._applied if cid > self.high_water - GAP_WINDOW}
