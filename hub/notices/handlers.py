"""Handlers of publish-once: publish, amend, cancel, and import in any inbound format (PPS, CSV, OCDS).

Each runs in one unit of work: the Idempotency-Key check, the new versions, their seqs, their
``NoticeVersionPublished`` events and the stored receipt commit together. An institution reaches only
its own notices: anyone else's id answers 404 exactly as an unknown id does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.config import Settings
from hub.notices.commands import AmendNotice, CancelNotice, ImportNotices, PublishNotice
from hub.notices.events import NoticeVersionPublished
from hub.notices.formats import FORMATS, ImportedNotice
from hub.notices.idempotency import Receipt, replay
from hub.notices.links import notice_path, version_path
from hub.notices.model import (
    Notice,
    NoticeStateError,
    NoticeStatus,
    NoticeValidationError,
    NoticeVersion,
    VersionKind,
    unchanged,
)
from hub.notices.repository import NoticeRepository, NoticesUnitOfWork
from hub.notices.services import (
    announce,
    answer,
    new_notice_id,
    patched_content,
    prefixed_problems,
    version_receipt_body,
)
from hub.spine import audit
from hub.spine.errors import Conflict, NotFound, Rejected
from hub.spine.messages import Command, Event


def _replay(uow: NoticesUnitOfWork, settings: Settings, cmd: Any) -> Receipt | None:
    publication = settings.syndication.publication
    ttl = timedelta(hours=publication.idempotency_ttl_h)
    return replay(uow.idempotency, cmd.institution_org_id, cmd.idempotency, ttl,
                  max_keys=publication.idempotency_max_keys_per_org)


def publish_notice(cmd: PublishNotice, uow: NoticesUnitOfWork, settings: Settings) -> Receipt:
    if (prior := _replay(uow, settings, cmd)) is not None:
        return prior
    notice = Notice.publish(new_notice_id(), cmd.institution_org_id, cmd.content)
    [stored] = announce(uow, [(notice, notice.versions)], cmd.actor_org_id)
    receipt = Receipt(201, version_receipt_body(stored), location=notice_path(notice.id))
    return answer(uow, cmd.institution_org_id, cmd.idempotency, receipt)


def _owned(repo: NoticeRepository, notice_id: str, institution_org_id: str) -> Notice:
    notice = repo.get_owned(notice_id, institution_org_id)
    if notice is None:
        raise NotFound("notice", notice_id)
    return notice


def amend_notice(cmd: AmendNotice, uow: NoticesUnitOfWork, settings: Settings) -> Receipt:
    """An amendment must change something: an empty merge patch, or content equal to the current
    version's, is refused (422 naming the member) rather than stored as a version every subscriber is
    sent. Imports keep their own rule (an order the source amended is a version, whatever it changed)."""
    if (prior := _replay(uow, settings, cmd)) is not None:
        return prior
    notice = _owned(uow.notices, cmd.notice_id, cmd.institution_org_id)
    if (cmd.content is None) == (cmd.changes is None):
        raise NoticeValidationError([("content", "give exactly one of content (the whole notice) or changes")])
    if cmd.changes is not None and not cmd.changes:
        raise NoticeValidationError([("changes", "no change: name at least one field to change")])
    member = "content" if cmd.content is not None else "changes"
    try:
        if cmd.content is not None:
            content = cmd.content
        else:
            assert cmd.changes is not None
            content = patched_content(notice.content, cmd.changes)
        if notice.status is NoticeStatus.ACTIVE and unchanged(notice.content, content):
            raise NoticeValidationError([(member, f"no change: version {notice.current.number} already has "
                                                  "this content")])
        version = notice.amend(content, cmd.reason)
    except NoticeValidationError as error:
        raise prefixed_problems(error, member, keep=("reason", "published_at", member)) from None
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
    return answer(uow, cmd.institution_org_id, cmd.idempotency, receipt)


def import_notices(cmd: ImportNotices, uow: NoticesUnitOfWork, settings: Settings) -> Receipt:
    """Items in (source identifier, order) order, so a document may list a notice's orders in any
    order; an order already imported is reported ``unchanged``, so importing the same page twice adds
    nothing. Items without a source identifier (CSV rows) are each a new notice."""
    if (prior := _replay(uow, settings, cmd)) is not None:
        return prior
    fmt = FORMATS.get(cmd.format)
    if fmt is None:
        raise Rejected("format", f"unknown notice format {cmd.format!r} (known: {', '.join(FORMATS)})")
    items = fmt.read(cmd.document, cmd.options, settings.syndication.publication)
    report: list[dict[str, Any]] = [dict(item.ref) for item in items]
    known: dict[str, tuple[Notice, int]] = {}  # external id → (notice, last order) as of this import
    changes: list[tuple[Notice, list[NoticeVersion]]] = []
    placed: dict[int, tuple[Notice, NoticeVersion]] = {}
    ordered = sorted(enumerate(items), key=lambda pair: (pair[1].external_id or "", pair[1].order, pair[0]))
    for index, item in ordered:
        entry = report[index]
        try:
            if item.problems:
                raise NoticeValidationError(item.problems)
            assert item.content is not None
            notice, last_order = _imported(uow, cmd.institution_org_id, fmt.name, item, known)
            if notice is not None and item.order <= last_order:
                entry.update(status="unchanged", notice_id=notice.id)
                continue
            if notice is None:
                if item.kind is VersionKind.CANCELLATION:
                    raise NoticeStateError("cancels a notice this hub has not imported")
                notice = Notice.publish(new_notice_id(), cmd.institution_org_id, item.content, at=item.published_at)
                version, status = notice.current, "created"
            else:
                at = max(item.published_at or datetime.now(UTC), notice.current.published_at)
                reason = item.reason or f"{fmt.name.upper()} order {item.order}"
                if item.kind is VersionKind.CANCELLATION:
                    version, status = notice.cancel(reason, at=at), "cancelled"
                else:
                    version, status = notice.amend(item.content, reason, at=at), "amended"
        except (NoticeValidationError, NoticeStateError) as error:
            problems = error.problems if isinstance(error, NoticeValidationError) else [(fmt.order_field, str(error))]
            entry.update(status="rejected", errors=[{fmt.problem_key: f, "message": m} for f, m in problems])
            continue
        if item.external_id is not None:
            known[item.external_id] = (notice, item.order)
        changes.append((notice, [version]))
        placed[index] = (notice, version)
        entry.update(status=status)

    seqs = {(s.notice.id, s.version.number): s for s in announce(uow, changes, cmd.actor_org_id)}
    for external_id, (notice, order) in known.items():  # after the notices rows exist
        uow.notices.link_external(cmd.institution_org_id, fmt.name, external_id, notice.id, order)
    for index, (notice, version) in placed.items():
        stored = seqs[(notice.id, version.number)]
        report[index].update(notice_id=notice.id, version=version.number, seq=stored.seq, url=notice_path(notice.id))
    receipt = Receipt(200, {fmt.report_key: report, **_counts(report)})
    return answer(uow, cmd.institution_org_id, cmd.idempotency, receipt)


def _imported(uow: NoticesUnitOfWork, institution_org_id: str, source: str, item: ImportedNotice,
              known: dict[str, tuple[Notice, int]]) -> tuple[Notice | None, int]:
    """The notice an item's source identifier became (locked), and the last order imported for it."""
    if item.external_id is None:
        return None, -1
    if item.external_id not in known and (ref := uow.notices.external_ref(institution_org_id, source,
                                                                           item.external_id)) is not None:
        loaded = uow.notices.get(ref.notice_id, for_update=True)
        if loaded is not None:
            known[item.external_id] = (loaded, ref.last_order)
    return known.get(item.external_id, (None, -1))


def _counts(report: Sequence[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for entry in report:
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    return {"counts": counts}


COMMAND_HANDLERS: dict[type[Command], Callable[..., Any]] = {
    PublishNotice: publish_notice,
    AmendNotice: amend_notice,
    CancelNotice: cancel_notice,
    ImportNotices: import_notices,
}
# Who published which version, in the audit trail like every spine event (syndication adds its own).
EVENT_HANDLERS: dict[type[Event], Sequence[Callable[..., Any]]] = {
    NoticeVersionPublished: [audit.record_audit_entry],
}
