"""The production :class:`~hub.subscriptions.reader.NoticeReader` (``uow.notice_versions``): versions
straight from the table the notices flow writes (``notice_versions``), in the consumer's own transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hub.notices.model import VersionKind
from hub.notices.tables import NoticeVersionRow
from hub.subscriptions.reader import NoticeUnavailable

__all__ = ["SqlNoticeReader"]


class SqlNoticeReader:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_version(self, notice_id: str, version: int) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """A cancellation carries no content to match on: it goes only to subscriptions that received an
        earlier version (a tombstone), never to new ones."""
        row = self.session.get(NoticeVersionRow, (notice_id, version))
        if row is None:
            raise NoticeUnavailable(f"notice {notice_id} version {version} is not stored")
        metadata = {
            "published_at": row.published_at.isoformat(),
            "reason": row.reason,
            "changed_fields": list(row.changed_fields or []),
        }
        content = None if row.kind == VersionKind.CANCELLATION.value else dict(row.content)
        return content, metadata
