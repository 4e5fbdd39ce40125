"""Tables of notices, their versions, the changes feed and the Idempotency-Key store.

The aggregate (:class:`hub.notices.model.Notice`) is rebuilt from ``notice_versions`` by the repository
rather than mapped: its versions are frozen pydantic models, and a version, once stored, never changes.
``notices`` is the current state of each notice, denormalised for the open-publication filters.

``notice_versions.seq`` *is* the changes feed. Its values come from the single row of
``notice_feed_counter``, incremented in the publishing transaction: the row lock makes concurrent
publishers commit in seq order, so a reader never sees seq N+1 before N (no skipped rows), and a
rolled-back publisher gives its number back (no gaps).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.spine.tables import Base, BigId, JsonDoc, UTCDateTime

__all__ = [
    "FEED_COUNTER",
    "IdempotencyRow",
    "NoticeClassificationRow",
    "NoticeExternalRefRow",
    "NoticeFeedCounterRow",
    "NoticeRow",
    "NoticeVersionRow",
    "start_mappers",
]

FEED_COUNTER = "notice_changes"


class NoticeRow(Base):
    """Current state of a notice: what the list filters and the keyset pagination read."""

    __tablename__ = "notices"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    institution_org_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    status: Mapped[str] = mapped_column(String(20), index=True)
    current_version: Mapped[int] = mapped_column(Integer())
    title: Mapped[str] = mapped_column(String(1000))
    search_text: Mapped[str] = mapped_column(Text())  # casefolded title + description
    category: Mapped[str] = mapped_column(String(20), index=True)
    delivery_region: Mapped[str | None] = mapped_column(String(10), nullable=True, index=True)
    # Only filtered on, never read back (the content JSON is the truth), so floats on SQLite are fine.
    estimated_value: Mapped[float | None] = mapped_column(Numeric(24, 4, asdecimal=False), nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)  # first version
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())  # current version
    submission_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    created_seq: Mapped[int] = mapped_column(BigId, unique=True)  # immutable: the list's keyset
    last_seq: Mapped[int] = mapped_column(BigId)


class NoticeVersionRow(Base):
    """One version, never updated; ordered by ``seq`` it is the changes feed."""

    __tablename__ = "notice_versions"
    notice_id: Mapped[str] = mapped_column(String(36), ForeignKey("notices.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    content: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text(), nullable=True)
    changed_fields: Mapped[list[str]] = mapped_column(JSON())
    seq: Mapped[int] = mapped_column(BigId, unique=True)
    actor_org_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class NoticeClassificationRow(Base):
    """Codes of the current version, digits only, so a prefix filter is an indexed ``LIKE 'p%'``."""

    __tablename__ = "notice_classifications"
    notice_id: Mapped[str] = mapped_column(String(36), ForeignKey("notices.id", ondelete="CASCADE"), primary_key=True)
    scheme: Mapped[str] = mapped_column(String(10), primary_key=True)
    code: Mapped[str] = mapped_column(String(20), primary_key=True)

    __table_args__ = (Index("ix_notice_classifications_code", "code", "scheme"),)


class NoticeFeedCounterRow(Base):
    """The changes feed's sequence: one row, incremented under its row lock by each publisher."""

    __tablename__ = "notice_feed_counter"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigId)


class NoticeExternalRefRow(Base):
    """An institution's own identifier (PPS ``bidNtceNo``, OCDS ``ocid``) → hub notice, and the last
    order imported (a PPS ``bidNtceOrd``, or an OCDS release date in microseconds)."""

    __tablename__ = "notice_external_refs"
    institution_org_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(20), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    notice_id: Mapped[str] = mapped_column(String(36), ForeignKey("notices.id", ondelete="CASCADE"), index=True)
    last_order: Mapped[int] = mapped_column(BigId)


class IdempotencyRow(Base):
    """``Idempotency-Key`` of one organisation → the request it answered and the response it got.

    Written in the same transaction as the effect, so a stored key always means the effect happened."""

    __tablename__ = "idempotency_keys"
    org_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer())
    body: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    location: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


def start_mappers() -> None:
    """Nothing to map imperatively: these are declarative rows, translated by the repository."""
