"""Commands of publish-once. Each names the institution acting: handlers refuse (404) a notice that
institution did not publish. ``idempotency`` is set when the caller sent an ``Idempotency-Key``."""

from __future__ import annotations

from typing import Any

from hub.notices.idempotency import IdempotencyTicket
from hub.notices.model import NoticeContent
from hub.spine.messages import Command

__all__ = ["AmendNotice", "BulkPublishNotices", "CancelNotice", "ImportPpsNotices", "PublishNotice"]


class PublishNotice(Command):
    institution_org_id: str
    content: NoticeContent
    actor_org_id: str | None = None
    idempotency: IdempotencyTicket | None = None


class AmendNotice(Command):
    """A new version: either the complete new ``content`` or ``changes``, an RFC 7396 merge patch of the
    current content (``{"dates": {"submission_deadline": "…"}}`` moves a deadline)."""

    notice_id: str
    institution_org_id: str
    reason: str
    content: NoticeContent | None = None
    changes: dict[str, Any] | None = None
    actor_org_id: str | None = None
    idempotency: IdempotencyTicket | None = None


class CancelNotice(Command):
    notice_id: str
    institution_org_id: str
    reason: str
    actor_org_id: str | None = None
    idempotency: IdempotencyTicket | None = None


class ImportPpsNotices(Command):
    """PPS open-API items; each becomes a new notice or a new version of the one with its bidNtceNo."""

    institution_org_id: str
    items: tuple[dict[str, Any], ...]
    operation: str | None = None
    actor_org_id: str | None = None
    idempotency: IdempotencyTicket | None = None


class BulkPublishNotices(Command):
    """A CSV upload (``docs/notices-csv.md``): one new notice per valid row, in one transaction."""

    institution_org_id: str
    csv_text: str
    actor_org_id: str | None = None
    idempotency: IdempotencyTicket | None = None
