"""Database access of the subscriptions flow: subscriptions, their change log, payloads, deliveries.

Inserts of matched deliveries use ``ON CONFLICT DO NOTHING`` (PostgreSQL and SQLite both have it):
a notice version matched twice — a replayed event under a new message id — adds nothing and does not
abort the unit of work, while the inbox already absorbs plain redeliveries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from hub.subscriptions.model import OPEN, DeliveryStatus
from hub.subscriptions.secret_box import SecretBox
from hub.subscriptions.tables import DeliveryRow, PayloadRow, SubscriptionChangeRow, SubscriptionRow

__all__ = [
    "active_secrets",
    "claim_due",
    "insert_deliveries",
    "insert_payload",
    "note_change",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table))


def note_change(session: Session, subscription_id: str) -> None:
    """Append to the change log every worker's index replays (same transaction as the change)."""
    session.add(SubscriptionChangeRow(subscription_id=subscription_id, changed_at=utcnow()))


def active_secrets(row: SubscriptionRow, box: SecretBox, now: datetime | None = None) -> list[str]:
    """Newest first, decrypted; a rotated-out secret signs until its overlap window ends."""
    now = now or utcnow()
    keep = []
    for item in row.secrets or []:
        expires = item.get("expires_at")
        if expires is None or datetime.fromisoformat(expires) > now:
            keep.append(box.open(item))
    return keep


def insert_payload(session: Session, notice_id: str, version: int, kind: str, seq: int, routing_key: str,
                   body: dict[str, Any]) -> None:
    stmt = _insert(session, PayloadRow).values(
        notice_id=notice_id, version=version, kind=kind, seq=seq, routing_key=routing_key, body=body,
        created_at=utcnow(),
    )
    session.execute(stmt.on_conflict_do_nothing())


def insert_deliveries(session: Session, subscription_ids: Iterable[str], notice_id: str, version: int,
                      seq: int, kind: str) -> int:
    now = utcnow()
    rows = [
        {"subscription_id": sid, "notice_id": notice_id, "version": version, "seq": seq, "kind": kind,
         "status": DeliveryStatus.PENDING.value, "attempts": 0, "next_attempt_at": now,
         "created_at": now, "updated_at": now}
        for sid in subscription_ids
    ]
    if rows:
        session.execute(_insert(session, DeliveryRow).on_conflict_do_nothing(), rows)
    return len(rows)


def earlier_recipients(session: Session, notice_id: str, version: int) -> set[str]:
    """Who got an earlier version of this notice: they hear of its amendments and cancellation even
    when the new version falls outside their filter (otherwise they would keep a stale notice)."""
    stmt = (
        select(DeliveryRow.subscription_id).distinct()
        .join(SubscriptionRow, SubscriptionRow.id == DeliveryRow.subscription_id)
        .where(DeliveryRow.notice_id == notice_id, DeliveryRow.version < version,
               SubscriptionRow.status == "active")
    )
    return set(session.scalars(stmt))


def claim_due(session: Session, limit: int, lease: timedelta, now: datetime | None = None) -> list[int]:
    """Due deliveries of active subscriptions whose earlier versions of the same notice are all
    settled, leased so no other dispatcher takes them (SKIP LOCKED on PostgreSQL; SQLite has one
    writer at a time anyway). Caller commits."""
    now = now or utcnow()
    earlier = aliased(DeliveryRow)
    blocked = exists().where(
        earlier.subscription_id == DeliveryRow.subscription_id,
        earlier.notice_id == DeliveryRow.notice_id,
        earlier.version < DeliveryRow.version,
        earlier.status.in_(OPEN),
    )
    stmt = (
        select(DeliveryRow.id)
        .join(SubscriptionRow, SubscriptionRow.id == DeliveryRow.subscription_id)
        .where(
            DeliveryRow.status.in_(OPEN),
            DeliveryRow.next_attempt_at <= now,
            (DeliveryRow.lease_until.is_(None)) | (DeliveryRow.lease_until < now),
            SubscriptionRow.status == "active",
            ~blocked,
        )
        .order_by(DeliveryRow.next_attempt_at, DeliveryRow.seq)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=DeliveryRow)
    ids = list(session.scalars(stmt))
    if ids:
        session.execute(update(DeliveryRow).where(DeliveryRow.id.in_(ids)).values(lease_until=now + lease))
    return ids


def load_claimed(session: Session, ids: Sequence[int]) -> list[tuple[DeliveryRow, SubscriptionRow, PayloadRow]]:
    stmt = (
        select(DeliveryRow, SubscriptionRow, PayloadRow)
        .join(SubscriptionRow, SubscriptionRow.id == DeliveryRow.subscription_id)
        .join(PayloadRow, and_(PayloadRow.notice_id == DeliveryRow.notice_id,
                               PayloadRow.version == DeliveryRow.version))
        .where(DeliveryRow.id.in_(ids))
        .order_by(DeliveryRow.seq)
    )
    return [(d, s, p) for d, s, p in session.execute(stmt).all()]


def list_deliveries(session: Session, subscription_id: str, status: str | None, after: int | None,
                    limit: int) -> list[DeliveryRow]:
    stmt = select(DeliveryRow).where(DeliveryRow.subscription_id == subscription_id)
    if status is not None:
        stmt = stmt.where(DeliveryRow.status == status)
    if after is not None:
        stmt = stmt.where(DeliveryRow.id > after)
    return list(session.scalars(stmt.order_by(DeliveryRow.id).limit(limit)))


def count_by_status(session: Session, subscription_id: str) -> dict[str, int]:
    stmt = (select(DeliveryRow.status, func.count()).where(DeliveryRow.subscription_id == subscription_id)
            .group_by(DeliveryRow.status))
    return {str(status): int(n) for status, n in session.execute(stmt).all()}
