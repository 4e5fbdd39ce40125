"""JSON representations of published notices, as the open API serves them.

Links are path-absolute references (``/api/v1/notices/…``), resolved against the URL they came from,
so they are right behind any proxy; Atom and OCDS, which need absolute URIs, use the configured public
base URL instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub.notices.links import notice_path, ocds_record_path, ocds_releases_path, version_path
from hub.notices.model import VersionKind
from hub.notices.tables import NoticeRow, NoticeVersionRow

__all__ = ["change_entry", "notice_detail", "notice_summary", "version_detail", "version_summary"]


def notice_summary(row: NoticeRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "status": row.status,
        "category": row.category,
        "institution_org_id": row.institution_org_id,
        "delivery_region": row.delivery_region,
        "estimated_value": None if row.estimated_value is None else _number(row.estimated_value),
        "currency": row.currency,
        "published_at": row.published_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "submission_deadline": row.submission_deadline.isoformat() if row.submission_deadline else None,
        "current_version": row.current_version,
        "url": notice_path(row.id),
    }


def version_summary(row: NoticeVersionRow) -> dict[str, Any]:
    return {
        "number": row.number,
        "kind": row.kind,
        "published_at": row.published_at.isoformat(),
        "reason": row.reason,
        "changed_fields": list(row.changed_fields or ()),
        "seq": row.seq,
        "url": version_path(row.notice_id, row.number),
    }


def notice_detail(row: NoticeRow, versions: Sequence[NoticeVersionRow]) -> dict[str, Any]:
    current = next(v for v in versions if v.number == row.current_version)
    return {
        **notice_summary(row),
        "content": current.content,
        "versions": [version_summary(v) for v in versions],
        "links": {
            "self": notice_path(row.id),
            "ocds_releases": ocds_releases_path(row.id),
            "ocds_record": ocds_record_path(row.id),
        },
    }


def version_detail(row: NoticeVersionRow) -> dict[str, Any]:
    return {"notice_id": row.notice_id, **version_summary(row), "content": row.content,
            "links": {"notice": notice_path(row.notice_id)}}


def change_entry(seq: int, notice_id: str, number: int, kind: str, published_at: Any) -> dict[str, Any]:
    """One line of the changes feed; a cancellation is a tombstone (the notice is withdrawn)."""
    entry: dict[str, Any] = {
        "seq": seq,
        "notice_id": notice_id,
        "version": number,
        "kind": kind,
        "published_at": published_at.isoformat(),
        "url": version_path(notice_id, number),
    }
    if kind == VersionKind.CANCELLATION.value:
        entry["tombstone"] = True
    return entry


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)
