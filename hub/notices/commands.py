"""Commands of publish-once. Each names the institution acting: handlers refuse (404) a notice that
institution did not publish. ``idempotency`` is set when the caller sent an ``Idempotency-Key``."""

from __future__ import annotations

from typing import Any

from hub.notices.idempotency import IdempotencyTicket
from hub.notices.model import NoticeContent
from hub.spine.messages import Command

__all__ = ["AmendNotice", "CancelNotice", "ImportNotices", "PublishNotice"]


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


class ImportNotices(Command):
    """A document in an inbound format (``hub.notices.formats``: ``pps``, ``csv``, ``ocds``). Each item
    becomes a new notice, or a new version of the notice with the same source identifier; valid items
    are stored even when others are rejected, and every item is reported."""

    institution_org_id: str
    format: str
    document: Any  # what the format reads: a JSON document, or the CSV text
    options: dict[str, str] = {}  # e.g. PPS: {"operation": "getBidPblancListInfoCnstwk"}
    actor_org_id: str | None = None
    idempotency: IdempotencyTicket | None = None
