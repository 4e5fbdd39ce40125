"""What every publishing handler shares: storing versions and announcing them in one go, the receipts
it answers with, and amendments given as a merge patch.

Announcing here, beside the store, is what guarantees one ``NoticeVersionPublished`` per stored version
with the same seq: both happen in the handler's unit of work, so they commit (or vanish) together.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from hub.notices.events import NoticeVersionPublished
from hub.notices.idempotency import IdempotencyTicket, Receipt, remember
from hub.notices.links import notice_path, ocds_record_path, ocds_releases_path, version_path
from hub.notices.model import FieldProblem, Notice, NoticeContent, NoticeValidationError, NoticeVersion
from hub.notices.repository import NoticesUnitOfWork, StoredVersion

__all__ = [
    "announce",
    "answer",
    "merge_patch",
    "new_notice_id",
    "patched_content",
    "prefixed_problems",
    "version_receipt_body",
]


def new_notice_id() -> str:
    return str(uuid.uuid4())


def announce(
    uow: NoticesUnitOfWork,
    changes: Sequence[tuple[Notice, Sequence[NoticeVersion]]],
    actor_org_id: str | None,
) -> list[StoredVersion]:
    """Store the new versions and raise one event per version, in seq order. The seqs are final only
    when the unit of work commits (see :mod:`hub.notices.repository`): the events carry them through
    ``carry_seqs``, and so must any answer that quotes them (:func:`answer`)."""
    stored = uow.notices.record(changes, actor_org_id)
    if stored:
        uow.before_commit(uow.notices.settle_seqs)
    for item in stored:
        content = item.version.content
        envelope = uow.publish(
            NoticeVersionPublished(
                notice_id=item.notice.id,
                version=item.version.number,
                kind=item.version.kind.value,
                institution_org_id=item.notice.institution_id,
                category=content.category.value,
                region=content.delivery_region,
                seq=item.seq,
                published_at=item.version.published_at.isoformat(),
                actor_org_id=actor_org_id,
            )
        )
        uow.notices.carry_seqs(envelope.payload)
    return stored


def answer(uow: NoticesUnitOfWork, org_id: str, ticket: IdempotencyTicket | None, receipt: Receipt) -> Receipt:
    """The receipt a write answers, remembered for its Idempotency-Key; the seqs it quotes become the
    final ones when the unit of work commits, in the answer and in what is remembered alike."""
    uow.notices.carry_seqs(receipt.body)
    return remember(uow.idempotency, org_id, ticket, receipt)


def version_receipt_body(stored: StoredVersion) -> dict[str, Any]:
    """What a write answers (and an idempotent replay answers again): where the version lives."""
    notice, version = stored.notice, stored.version
    return {
        "id": notice.id,
        "version": version.number,
        "kind": version.kind.value,
        "status": notice.status.value,
        "seq": stored.seq,
        "published_at": version.published_at.isoformat(),
        "links": {
            "self": notice_path(notice.id),
            "version": version_path(notice.id, version.number),
            "ocds_releases": ocds_releases_path(notice.id),
            "ocds_record": ocds_record_path(notice.id),
        },
    }


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge, ``null`` removes, anything else replaces."""
    if not isinstance(patch, Mapping):
        return patch
    merged = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def patched_content(current: NoticeContent, changes: Mapping[str, Any]) -> NoticeContent:
    return NoticeContent.parse(merge_patch(current.model_dump(mode="json"), changes), prefix="changes")


def prefixed_problems(error: NoticeValidationError, prefix: str, keep: Sequence[str] = ()) -> NoticeValidationError:
    """Put content problems under the body member that carried the content; ``keep`` stay top level."""
    problems: list[FieldProblem] = [
        (path if path in keep or path.startswith(f"{prefix}.") else f"{prefix}.{path}", message)
        for path, message in error.problems
    ]
    return NoticeValidationError(problems)
