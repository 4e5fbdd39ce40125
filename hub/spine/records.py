"""Repositories for the hub's own records: dead letters and the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.spine.messages import Envelope
from hub.spine.tables import AuditRow, DeadLetterRow

__all__ = ["DeadLetter", "SqlAuditLog", "SqlDeadLetters"]

IdList = list[int]


@dataclass(frozen=True)
class DeadLetter:
    id: int
    consumer_group: str
    envelope: Envelope
    reason: str
    delivery_count: int
    dead_at: datetime
    replayed_at: datetime | None


def _to_dead_letter(row: DeadLetterRow) -> DeadLetter:
    return DeadLetter(id=row.id, consumer_group=row.consumer_group,
                      envelope=Envelope.read(row, target_group=row.consumer_group), reason=row.reason,
                      delivery_count=row.delivery_count, dead_at=row.dead_at, replayed_at=row.replayed_at)


DeadLetterList = list[DeadLetter]


class SqlDeadLetters:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, group: str, envelope: Envelope, reason: str, delivery_count: int) -> bool:
        """Keep a dead letter once: a second copy of one still open (not replayed) is dropped."""
        open_row = self.session.execute(
            select(DeadLetterRow.id).where(
                DeadLetterRow.consumer_group == group,
                DeadLetterRow.message_id == envelope.message_id,
                DeadLetterRow.replayed_at.is_(None),
            )
        ).first()
        if open_row is not None:
            return False
        kept = {name: value for name, value in vars(envelope).items() if name != "target_group"}
        self.session.add(DeadLetterRow(**kept, consumer_group=group, reason=reason[:4000],
                                       delivery_count=delivery_count, dead_at=datetime.now(UTC)))
        return True

    def list(
        self, group: str | None = None, include_replayed: bool = False, limit: int = 100
    ) -> DeadLetterList:
        stmt = select(DeadLetterRow).order_by(DeadLetterRow.id).limit(limit)
        if group:
            stmt = stmt.where(DeadLetterRow.consumer_group == group)
        if not include_replayed:
            stmt = stmt.where(DeadLetterRow.replayed_at.is_(None))
        return [_to_dead_letter(r) for r in self.session.scalars(stmt)]

    def take_for_replay(self, ids: IdList | None, group: str | None) -> DeadLetterList:
        stmt = select(DeadLetterRow).where(DeadLetterRow.replayed_at.is_(None)).order_by(DeadLetterRow.id)
        if ids is not None:
            stmt = stmt.where(DeadLetterRow.id.in_(ids))
        if group:
            stmt = stmt.where(DeadLetterRow.consumer_group == group)
        rows = list(self.session.scalars(stmt.with_for_update()))
        now = datetime.now(UTC)
        for row in rows:
            row.replayed_at = now
        return [_to_dead_letter(r) for r in rows]


class SqlAuditLog:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, envelope: Envelope, actor_org_id: str | None, subject_org_id: str | None) -> None:
        self.session.add(
            AuditRow(
                message_id=envelope.message_id,
                event_type=envelope.message_type,
                occurred_at=envelope.occurred_at,
                actor_org_id=actor_org_id,
                subject_org_id=subject_org_id,
                correlation_id=envelope.correlation_id,
                data=envelope.payload,
            )
        )

    def list(self, org_id: str | None = None, limit: int = 100, before_id: int | None = None) -> list[dict[str, Any]]:
        stmt = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if org_id is not None:
            stmt = stmt.where((AuditRow.actor_org_id == org_id) | (AuditRow.subject_org_id == org_id))
        if before_id is not None:
            stmt = stmt.where(AuditRow.id < before_id)
        return [
            {
                "id": r.id,
                "message_id": r.message_id,
                "event_type": r.event_type,
                "occurred_at": r.occurred_at.isoformat(),
                "actor_org_id": r.actor_org_id,
                "subject_org_id": r.subject_org_id,
                "correlation_id": r.correlation_id,
                "data": r.data,
            }
            for r in self.session.scalars(stmt)
        ]
