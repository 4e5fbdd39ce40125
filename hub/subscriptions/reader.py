"""Where subscriptions read notice versions: a narrow protocol, so matching does not depend on how the
notices flow stores notices (and tests can hand in a fake).

Matching walks the changes feed (``versions_after``) rather than trusting the order events arrive in:
the feed's ``seq`` order is commit order, so walking it matches every version of a notice after the
ones before it, whatever the number of consumers and however the broker interleaves their events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from hub.notices.events import NoticeVersionPublished

__all__ = ["FeedVersion", "NoticeReader", "NoticeUnavailable"]


class NoticeUnavailable(LookupError):
    """The version is not (yet) readable; the consumer retries the event later."""


@dataclass(frozen=True)
class FeedVersion:
    """One version of the changes feed: the facts its event carries, its content (None for a
    cancellation, which has nothing to match on) and its metadata (reason, changed fields)."""

    event: NoticeVersionPublished
    content: dict[str, Any] | None
    metadata: dict[str, Any]


class NoticeReader(Protocol):
    def get_version(self, notice_id: str, version: int) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """(unified notice content as JSON — None for a cancellation without content —, metadata)."""
        ...

    def versions_after(self, seq: int, limit: int) -> list[FeedVersion]:
        """Up to ``limit`` versions with a seq above ``seq``, in seq order. A version with seq N is
        visible only once every version below N is (publishers allocate seqs under one row lock held
        until commit), so a reader never skips a version that commits later."""
        ...
