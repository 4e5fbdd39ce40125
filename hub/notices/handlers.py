"""Handlers of publish-once: publish, amend, cancel, PPS import and CSV bulk upload.

Each runs in one unit of work: the Idempotency-Key check, the new versions, their seqs, their
``NoticeVersionPublished`` events and the stored receipt commit together. An institution reaches only
its own notices: anyone else's id answers 404 exactly as an unknown id does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.config import Settings
from hub.notices.commands import AmendNotice, BulkPublishNotices, CancelNotice, ImportPpsNotices, PublishNotice
from hub.notices.csv_upload import CsvTooLarge, parse_csv
from hub.notices.events import NoticeVersionPublished
from hub.notices.idempotency import Receipt, remember, replay
from hub.notices.links import notice_path, version_path
from hub.notices.model import Notice, NoticeStateError, NoticeValidationError, NoticeVersion, VersionKind
from hub.notices.pps import PpsNotice, map_pps_item
from hub.notices.publication import publication_settings
from hub.notices.repository import NoticeRepository, NoticesUnitOfWork
from hub.notices.services import (
    ContentTooLarge,
    announce,
    new_notice_id,
    patched_content,
    prefixed_problems,
    version_receipt_body,
)
from hub.spine import audit
from hub.spine.errors import Conflict, NotFound
from hub.spine.messages import Command, Event

PPS_SOURCE = "pps"


def _replay(uow: NoticesUnitOfWork, settings: Settings, cmd: Any) -> Receipt | None:
    ttl = timedelta(hours=publication_settings(settings).idempotency_ttl_h)
    return replay(uow.idempotency, cmd.institution_org_id, cmd.idempotency, ttl)


def publish_notice(cmd: PublishNotice, uow: NoticesUnitOfWork, settings: Settings) -> Receipt:
    if (prior := _replay(uow, settings, cmd)) is not None:
        return prior
    notice = Notice.publish(new_notice_id(), cmd.institution_org_id, cmd.content)
    [stored] = announce(uow, [(notice, notice.versions)], cmd.actor_org_id)
    receipt = Receipt(201, version_receipt_body(stored), location=notice_path(notice.id))
    return remember(uow.idempotency, cmd.institution_org_id, cmd.idempotency, receipt)


def _owned(repo: NoticeRepository, notice_id: str, institution_org_id: str) -> Notice:
    notice = repo.get_owned(notice_id, institution_org_id)
    if notice is None:
        raise NotFound("notice", notice_id)
    return notice


def amend_notice(cmd: AmendNotice, uow: NoticesUnitOfWork, settings: Settings) -> Receipt:
    if (prior := _replay(uow, settings, cmd)) is not None:
        return prior
    notice = _owned(uow.notices, cmd.notice_id, cmd.institution_org_id)
    if (cmd.content is None) == (cmd.changes is None):
        raise NoticeValidationError([("content", "give exactly one of content (the whole notice) or changes")])
    member = "content" if cmd.content is not None else "changes"
    try:
        if cmd.content is not None:
            content = cmd.content
        else:
            assert cmd.changes is not None
            content = patched_content(notice.content, cmd.changes)
        version = notice.amend(content, cmd.reason)
    except NoticeValidationError as error:
        raise prefixed_problems(error, member, keep=("reason", "published_at")) from None
    except NoticeStateError as error:
        raise Conflict(str(error)) from None
    return _stored_version(uow, cmd, notice, version)


def cancel_notice(cmd: CancelNotice, uow: NoticesUnitOfWork, settings: Settings) -> Receipt:
    if (prior := _replay(uow, settings, cmd)) is not None:
        return prior
    notice = _owned(uow.notices, cmd.notice_id, cmd.institution_org_id)
    try:
        version = notice.cancel(cmd.reason)
    except NoticeStateError as error:
        raise Conflict(str(error)) from None
    return _stored_version(uow, cmd, notice, version)


def _stored_version(uow: NoticesUnitOfWork, cmd: AmendNotice | CancelNotice, notice: Notice,
                    version: NoticeVersion) -> Receipt:
    [stored] = announce(uow, [(notice, [version])], cmd.actor_org_id)
    receipt = Receipt(201, version_receipt_body(stored), location=version_path(notice.id, version.number))
    return remember(uow.idempotency, cmd.institution_org_id, cmd.idempotency, receipt)


def import_pps_notices(cmd: ImportPpsNotices, uow: NoticesUnitOfWork, settings: Settings) -> Receipt:
    """Items in (bidNtceNo, bidNtceOrd) order; an order already imported is reported ``unchanged``, so
    importing the same PPS page twice adds nothing."""
    if (prior := _replay(uow, settings, cmd)) is not None:
        return prior
    repo = uow.notices
    report: list[dict[str, Any]] = [{} for _ in cmd.items]
    mapped: list[tuple[int, PpsNotice]] = []
    for index, item in enumerate(cmd.items):
        entry = report[index]
        entry.update(index=index, bidNtceNo=str(item.get("bidNtceNo", "")), bidNtceOrd=str(item.get("bidNtceOrd", "")))
        try:
            mapped.append((index, map_pps_item(item, cmd.operation)))
        except NoticeValidationError as error:
            entry.update(status="rejected", errors=[{"field": f, "message": m} for f, m in error.problems])

    notices: dict[str, tuple[Notice, int]] = {}  # bidNtceNo → (notice, last order) as of this import
    changes: list[tuple[Notice, list[NoticeVersion]]] = []
    placed: dict[int, tuple[Notice, NoticeVersion]] = {}
    for index, pps in sorted(mapped, key=lambda pair: (pair[1].notice_no, pair[1].order)):
        entry = report[index]
        if pps.notice_no not in notices and (ref := repo.external_ref(cmd.institution_org_id, PPS_SOURCE,
                                                                        pps.notice_no)) is not None:
            loaded = repo.get(ref.notice_id, for_update=True)
            if loaded is not None:
                notices[pps.notice_no] = (loaded, ref.last_order)
        notice, last_order = notices.get(pps.notice_no, (None, -1))
        try:
            if notice is not None and pps.order <= last_order:
                entry.update(status="unchanged", notice_id=notice.id)
                continue
            if notice is None:
                if pps.kind is VersionKind.CANCELLATION:
                    raise NoticeStateError("cancels a notice this hub has not imported")
                notice = Notice.publish(new_notice_id(), cmd.institution_org_id, pps.content, at=pps.published_at)
                version, status = notice.current, "created"
            else:
                at = max(pps.published_at, notice.current.published_at)
                reason = pps.reason or f"PPS order {pps.order}"
                if pps.kind is VersionKind.CANCELLATION:
                    version, status = notice.cancel(reason, at=at), "cancelled"
                else:
                    version, status = notice.amend(pps.content, reason, at=at), "amended"
        except (NoticeValidationError, NoticeStateError) as error:
            problems = error.problems if isinstance(error, NoticeValidationError) else [("bidNtceOrd", str(error))]
            entry.update(status="rejected", errors=[{"field": f, "message": m} for f, m in problems])
            continue
        notices[pps.notice_no] = (notice, pps.order)
        changes.append((notice, [version]))
        placed[index] = (notice, version)
        entry.update(status=status)

    seqs = {(s.notice.id, s.version.number): s for s in announce(uow, changes, cmd.actor_org_id)}
    for notice_no, (notice, order) in notices.items():  # after the notices rows exist
        repo.link_external(cmd.institution_org_id, PPS_SOURCE, notice_no, notice.id, order)
    for index, (notice, version) in placed.items():
        stored = seqs[(notice.id, version.number)]
        report[index].update(notice_id=notice.id, version=version.number, seq=stored.seq)
    receipt = Receipt(200, {"items": report, **_counts(report)})
    return remember(uow.idempotency, cmd.institution_org_id, cmd.idempotency, receipt)


def bulk_publish_notices(cmd: BulkPublishNotices, uow: NoticesUnitOfWork, settings: Settings) -> Receipt:
    """Valid rows are published even when others are rejected; each row is reported."""
    if (prior := _replay(uow, settings, cmd)) is not None:
        return prior
    limits = publication_settings(settings)
    try:
        rows = parse_csv(cmd.csv_text, max_rows=limits.csv_max_rows, now=datetime.now(UTC))
    except CsvTooLarge as error:
        raise ContentTooLarge(str(error)) from None
    published: dict[int, Notice] = {}
    for row in rows:
        if row.content is not None:
            published[row.row] = Notice.publish(new_notice_id(), cmd.institution_org_id, row.content)
    stored = {
        s.notice.id: s
        for s in announce(uow, [(n, n.versions) for n in published.values()],
                          cmd.actor_org_id)
    }
    report: list[dict[str, Any]] = []
    for row in rows:
        if row.row in published:
            notice = published[row.row]
            report.append({"row": row.row, "status": "created", "notice_id": notice.id,
                           "seq": stored[notice.id].seq, "url": notice_path(notice.id)})
        else:
            report.append({"row": row.row, "status": "rejected",
                           "errors": [{"column": c, "message": m} for c, m in row.errors]})
    receipt = Receipt(200, {"rows": report, **_counts(report)})
    return remember(uow.idempotency, cmd.institution_org_id, cmd.idempotency, receipt)


def _counts(report: Sequence[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for entry in report:
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    return {"counts": counts}


COMMAND_HANDLERS: dict[type[Command], Callable[..., Any]] = {
    PublishNotice: publish_notice,
    AmendNotice: amend_notice,
    CancelNotice: cancel_notice,
    ImportPpsNotices: import_pps_notices,
    BulkPublishNotices: bulk_publish_notices,
}
# Who published which version, in the audit trail like every spine event (syndication adds its own).
EVENT_HANDLERS: dict[type[Event], Sequence[Callable[..., Any]]] = {
    NoticeVersionPublished: [audit.record_audit_entry],
}
