"""The production :class:`~hub.subscriptions.reader.NoticeReader` (``uow.notice_versions``): versions
straight from the tables the notices flow writes (``notice_versions`` — the changes feed — and
``notices``), in the consumer's own transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.notices.events import NoticeVersionPublished
from hub.notices.model import VersionKind
from hub.notices.tables import NoticeRow, NoticeVersionRow
from hub.subscriptions.reader import FeedVersion, NoticeUnavailable

__all__ = ["SqlNoticeReader"]


def _metadata(row: NoticeVersionRow) -> dict[str, Any]:
    return {"published_at": row.published_at.isoformat(), "reason": row.reason,
            "changed_fields": list(row.changed_fields or [])}


def _content(row: NoticeVersionRow) -> dict[str, Any] | None:
    """A cancellation carries no content to match on: it goes only to subscriptions that received, or
    are owed, an earlier version (a tombstone), never to new ones."""
    return None if row.kind == VersionKind.CANCELLATION.value else dict(row.content)


class SqlNoticeReader:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_version(self, notice_id: str, version: int) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        row = self.session.get(NoticeVersionRow, (notice_id, version))
        if row is None:
            raise NoticeUnavailable(f"notice {notice_id} version {version} is not stored")
        return _content(row), _metadata(row)

    def versions_after(self, seq: int, limit: int) -> list[FeedVersion]:
        stmt = (select(NoticeVersionRow, NoticeRow.institution_org_id)
                .join(NoticeRow, NoticeRow.id == NoticeVersionRow.notice_id)
                .where(NoticeVersionRow.seq > seq).order_by(NoticeVersionRow.seq).limit(limit))
        found = []
        for row, institution in self.session.execute(stmt).all():
            stored = dict(row.content)  # the event's facts come from the version, as the publisher's did
            event = NoticeVersionPublished(
                notice_id=row.notice_id, version=row.number, kind=row.kind, institution_org_id=institution,
                category=str(stored["category"]), region=stored.get("delivery_region"), seq=row.seq,
                published_at=row.published_at.isoformat(), actor_org_id=row.actor_org_id)
            found.append(FeedVersion(event, _content(row), _metadata(row)))
        return found
