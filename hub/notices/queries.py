"""The read side of publish-once: filtered lists with keyset cursors, the changes feed, versions by seq,
and the JSON representations the open API serves.

The list is ordered newest first by ``created_seq`` (the seq of a notice's first version). It never
changes once given and is unique, so a cursor (the last one seen) pages without duplicates or skips,
even while notices are amended between two pages.

Links are path-absolute references (``/api/v1/notices/…``), resolved against the URL they came from,
so they are right behind any proxy; Atom and OCDS, which need absolute URIs, use the configured public
base URL instead.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, or_, select
from sqlalchemy.orm import Session

from hub.notices.codes import CLASSIFICATION_PREFIX_HINT, classification_prefix
from hub.notices.links import notice_path, ocds_record_path, ocds_releases_path, version_path
from hub.notices.model import Notice, NoticeValidationError, VersionKind
from hub.notices.repository import notice_from_rows
from hub.notices.tables import (
    FEED_COUNTER,
    NoticeClassificationRow,
    NoticeFeedCounterRow,
    NoticeRow,
    NoticeVersionRow,
)
from hub.organisations.tables import organisations

__all__ = [
    "NoticeQuery",
    "change_entry",
    "changes_after",
    "decimal_text",
    "decode_cursor",
    "encode_cursor",
    "feed_head",
    "institution_names",
    "list_notices",
    "load_notice",
    "load_notices",
    "notice_detail",
    "notice_summary",
    "version_detail",
    "version_summary",
    "versions_after",
    "versions_matching",
]

_CURSOR_PREFIX = "n1:"


def encode_cursor(created_seq: int) -> str:
    """Opaque to clients: they pass it back, never build it."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{created_seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The position a cursor names; ValueError for anything this hub did not hand out."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("not a cursor this API returned") from None
    number = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not number.isdigit() or len(number) > 19:
        raise ValueError("not a cursor this API returned")
    return int(number)


@dataclass(frozen=True)
class NoticeQuery:
    """The filters of the list and of the Atom feed; lists are any-of, dimensions combine with AND."""

    q: str | None = None
    categories: tuple[str, ...] = ()
    classifications: tuple[str, ...] = ()  # prefixes: "45", "CPV:4523", "UNSPSC:7214", "PPS-PUBLIC:7612"
    regions: tuple[str, ...] = ()  # "KR-11" exactly, "KR" = the whole country
    institutions: tuple[str, ...] = ()
    min_value: Decimal | None = None
    max_value: Decimal | None = None
    currency: str | None = None
    status: str | None = None
    published_from: datetime | None = None
    published_to: datetime | None = None
    deadline_from: datetime | None = None
    deadline_to: datetime | None = None
    _class_prefixes: tuple[tuple[str | None, str], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        problems = []
        prefixes: list[tuple[str | None, str]] = []
        for index, raw in enumerate(self.classifications):
            found = classification_prefix(raw)
            if found is None:
                problems.append((f"classification.{index}", CLASSIFICATION_PREFIX_HINT))
            else:
                prefixes.append(found)
        low, high = self.min_value, self.max_value
        if low is not None and high is not None and low > high:
            problems.append(("max_value", "must not be below min_value"))
        if problems:
            raise NoticeValidationError(problems)
        object.__setattr__(self, "_class_prefixes", tuple(prefixes))

    def conditions(self) -> list[ColumnElement[bool]]:
        n = NoticeRow
        found: list[ColumnElement[bool]] = []
        if self.q and self.q.strip():
            found.append(n.search_text.like(f"%{_escape_like(self.q.strip().casefold())}%", escape="\\"))
        if self.categories:
            found.append(n.category.in_(self.categories))
        if self.regions:
            found.append(or_(false(), *[_region(r.strip().upper()) for r in self.regions]))
        if self.institutions:
            found.append(n.institution_org_id.in_(self.institutions))
        if self._class_prefixes:
            c = NoticeClassificationRow
            matches = [
                and_(c.code.like(f"{digits}%"), *([c.scheme == scheme] if scheme else []))
                for scheme, digits in self._class_prefixes
            ]
            found.append(exists(select(c.notice_id).where(c.notice_id == n.id, or_(false(), *matches))))
        if self.min_value is not None:
            found.append(n.estimated_value >= float(self.min_value))
        if self.max_value is not None:
            found.append(n.estimated_value <= float(self.max_value))
        if self.currency:
            found.append(n.currency == self.currency.upper())
        if self.status:
            found.append(n.status == self.status)
        for column, low, high in (
            (n.published_at, self.published_from, self.published_to),
            (n.submission_deadline, self.deadline_from, self.deadline_to),
        ):
            if low is not None:
                found.append(column >= low)
            if high is not None:
                found.append(column <= high)
        return found


def _region(code: str) -> ColumnElement[bool]:
    if "-" in code:
        return NoticeRow.delivery_region == code
    return or_(NoticeRow.delivery_region == code, NoticeRow.delivery_region.like(f"{code}-%"))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_notices(session: Session, query: NoticeQuery, limit: int,
                 before: int | None = None) -> tuple[list[NoticeRow], int | None]:
    """A page, newest first, and the position after which the next page starts (None at the end)."""
    stmt = select(NoticeRow).where(*query.conditions()).order_by(NoticeRow.created_seq.desc()).limit(limit + 1)
    if before is not None:
        stmt = stmt.where(NoticeRow.created_seq < before)
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].created_seq if more and rows else None)


def load_notice(session: Session, notice_id: str) -> tuple[NoticeRow, list[NoticeVersionRow]] | None:
    row = session.get(NoticeRow, notice_id)
    if row is None:
        return None
    stmt = select(NoticeVersionRow).where(NoticeVersionRow.notice_id == notice_id).order_by(NoticeVersionRow.number)
    return row, list(session.scalars(stmt))


def load_notices(session: Session, notice_ids: Sequence[str]) -> dict[str, Notice]:
    """Whole aggregates (every version), for building OCDS releases that carry the amendment trail."""
    if not notice_ids:
        return {}
    rows = {r.id: r for r in session.scalars(select(NoticeRow).where(NoticeRow.id.in_(set(notice_ids))))}
    versions: dict[str, list[NoticeVersionRow]] = {}
    for version in session.scalars(select(NoticeVersionRow).where(NoticeVersionRow.notice_id.in_(rows))):
        versions.setdefault(version.notice_id, []).append(version)
    return {nid: notice_from_rows(row, versions.get(nid, [])) for nid, row in rows.items()}


def notice_last_seq(session: Session, notice_id: str) -> int | None:
    """The seq of a notice's newest version (None for an unknown notice): what its reads depend on."""
    value = session.scalar(select(NoticeRow.last_seq).where(NoticeRow.id == notice_id))
    return None if value is None else int(value)


def feed_head(session: Session) -> int:
    """The highest committed seq (0 before the first publication)."""
    value = session.scalar(select(NoticeFeedCounterRow.value).where(NoticeFeedCounterRow.name == FEED_COUNTER))
    return int(value or 0)


_CHANGE_COLUMNS = (
    NoticeVersionRow.seq, NoticeVersionRow.notice_id, NoticeVersionRow.number, NoticeVersionRow.kind,
    NoticeVersionRow.published_at, NoticeVersionRow.recorded_at,
)


def changes_after(session: Session, after: int, limit: int) -> list[Any]:
    """Feed rows (seq, notice_id, number, kind, published_at, recorded_at) with seq > ``after``, in seq order."""
    stmt = select(*_CHANGE_COLUMNS).where(NoticeVersionRow.seq > after).order_by(NoticeVersionRow.seq).limit(limit)
    return list(session.execute(stmt))


def versions_after(session: Session, after: int, limit: int) -> list[NoticeVersionRow]:
    stmt = select(NoticeVersionRow).where(NoticeVersionRow.seq > after).order_by(NoticeVersionRow.seq).limit(limit)
    return list(session.scalars(stmt))


def versions_matching(session: Session, query: NoticeQuery, limit: int) -> list[tuple[NoticeVersionRow, NoticeRow]]:
    """The latest versions (newest first) of notices the filters select: the Atom feed's entries."""
    stmt = (
        select(NoticeVersionRow, NoticeRow)
        .join(NoticeRow, NoticeRow.id == NoticeVersionRow.notice_id)
        .where(*query.conditions())
        .order_by(NoticeVersionRow.seq.desc())
        .limit(limit)
    )
    return [(version, notice) for version, notice in session.execute(stmt)]


def institution_names(session: Session, org_ids: Sequence[str]) -> dict[str, str]:
    if not org_ids:
        return {}
    stmt = select(organisations.c.id, organisations.c.name).where(organisations.c.id.in_(set(org_ids)))
    return {org_id: name for org_id, name in session.execute(stmt)}


# -- JSON representations -----------------------------------------------------------------------------
def notice_summary(row: NoticeRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "status": row.status,
        "category": row.category,
        "institution_org_id": row.institution_org_id,
        "delivery_region": row.delivery_region,
        "estimated_value": None if row.estimated_value is None else decimal_text(row.estimated_value),
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
        "received_at": row.recorded_at.isoformat(),
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


def change_entry(seq: int, notice_id: str, number: int, kind: str, published_at: Any,
                 received_at: Any) -> dict[str, Any]:
    """One line of the changes feed; a cancellation is a tombstone (the notice is withdrawn).
    ``published_at`` is when the source says the version was published; ``received_at`` when the hub
    stored it (the feed's order)."""
    entry: dict[str, Any] = {
        "seq": seq,
        "notice_id": notice_id,
        "version": number,
        "kind": kind,
        "published_at": published_at.isoformat(),
        "received_at": received_at.isoformat(),
        "url": version_path(notice_id, number),
    }
    if kind == VersionKind.CANCELLATION.value:
        entry["tombstone"] = True
    return entry


def decimal_text(value: float | Decimal) -> str:
    """A money amount as the API writes it everywhere: a JSON string holding a plain decimal
    (``"1250000000"``, ``"1500000.5"``), never a binary float and never an exponent."""
    exact = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    text = format(exact.normalize(), "f")
    return "0" if text in ("-0", "") else text
