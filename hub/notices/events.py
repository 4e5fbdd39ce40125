"""Events of publish-once: the contract between publishing (notices, feeds) and syndication
(subscriptions, deliveries). One event per notice version, whatever its kind, so consumers see the
versions of a notice in one stream and in order."""

from __future__ import annotations

from hub.spine.messages import Event

__all__ = ["NoticeVersionPublished"]


class NoticeVersionPublished(Event):
    """A version of a notice is public: original, amendment or cancellation.

    Carries what routing and matching need; the full unified notice is read from the store by
    (notice_id, version). ``seq`` is the version's position in the changes feed.
    """

    notice_id: str
    version: int
    kind: str  # original | amendment | cancellation
    institution_org_id: str
    category: str  # goods | services | works
    region: str | None = None  # ISO 3166-1/2, e.g. KR-11
    seq: int
    published_at: str  # ISO 8601
    actor_org_id: str | None = None

    def routing_suffix_for(self) -> str:
        # event.NoticeVersionPublished.<category>.<region or "none">: topic bindings can select both.
        return f"{self.category}.{self.region or 'none'}"

    @property
    def org_id(self) -> str:
        """Subject organisation for the audit trail."""
        return self.institution_org_id
