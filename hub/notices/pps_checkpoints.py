"""Where the PPS puller stands, per operation, durably: the ``pps_checkpoints`` table and its SQL.

``window_start`` is the end of the last window fully imported (nothing before it is left to pull);
``window_end`` and ``pages_done`` describe the window in progress, so a restart asks the same window
again from the page after the last one imported. A row is leased (``leased_until`` / ``lease_owner``,
:mod:`hub.spine.leases`) by the puller working on it, so two workers never pull one operation at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from hub.spine import leases
from hub.spine.tables import Base, UTCDateTime

__all__ = ["Checkpoint", "PpsCheckpointRow", "SqlPpsCheckpoints", "start_mappers"]


class PpsCheckpointRow(Base):
    __tablename__ = "pps_checkpoints"
    operation: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    pages_done: Mapped[int] = mapped_column(Integer, default=0)
    page_size: Mapped[int | None] = mapped_column(Integer, nullable=True)  # of the pages counted in pages_done
    total_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)


def start_mappers() -> None:
    """Nothing to map imperatively: a declarative row."""


@dataclass(frozen=True)
class Checkpoint:
    operation: str
    window_start: datetime
    window_end: datetime | None
    pages_done: int
    page_size: int | None
    total_count: int | None
    last_error: str | None


def _snapshot(row: PpsCheckpointRow) -> Checkpoint:
    return Checkpoint(
        row.operation, row.window_start, row.window_end, row.pages_done, row.page_size, row.total_count, row.last_error
    )


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql.insert(PpsCheckpointRow) if dialect == "postgresql" else sqlite.insert(PpsCheckpointRow)


def _now() -> datetime:
    return datetime.now(UTC)


class SqlPpsCheckpoints:
    """Each method is its own short transaction: the imports between them commit on their own."""

    def __init__(self, session_factory: sessionmaker[Session], lease: timedelta) -> None:
        self.session_factory = session_factory
        self.lease = lease

    def claim(self, operations: list[str], owner: str, first_start: datetime) -> list[Checkpoint]:
        """Lease the rows of ``operations`` nobody holds (creating missing ones at ``first_start``)."""
        now = _now()
        with self.session_factory() as session:
            session.execute(
                _insert(session)
                .values(
                    [
                        {"operation": op, "window_start": first_start, "pages_done": 0, "updated_at": now}
                        for op in operations
                    ]
                )
                .on_conflict_do_nothing()
            )
            claimed = leases.claim(
                session,
                PpsCheckpointRow.operation,
                PpsCheckpointRow.leased_until,
                due=[PpsCheckpointRow.operation.in_(operations)],
                order_by=[PpsCheckpointRow.operation],
                limit=len(operations),
                now=now,
                lease=self.lease,
                owner=(PpsCheckpointRow.lease_owner, owner),
            )
            session.commit()
            rows = session.scalars(
                select(PpsCheckpointRow)
                .where(PpsCheckpointRow.operation.in_(claimed))
                .order_by(PpsCheckpointRow.operation)
            ).all()
            return [_snapshot(row) for row in rows]

    def _update(self, operation: str, owner: str, **values: Any) -> bool:
        """Write ``values`` (and renew the lease) while ``owner`` still holds the row."""
        now = _now()
        with self.session_factory() as session:
            result = session.execute(
                update(PpsCheckpointRow)
                .where(PpsCheckpointRow.operation == operation, PpsCheckpointRow.lease_owner == owner)
                .values(updated_at=now, leased_until=now + self.lease, **values)
                .execution_options(synchronize_session=False)
            )
            session.commit()
            return int(result.rowcount) == 1  # type: ignore[attr-defined]

    def page_done(
        self, operation: str, owner: str, window_end: datetime, pages_done: int, page_size: int, total_count: int
    ) -> bool:
        """Pages ``1..pages_done`` of the window ending at ``window_end`` are imported."""
        return self._update(
            operation,
            owner,
            window_end=window_end,
            pages_done=pages_done,
            page_size=page_size,
            total_count=total_count,
            last_error=None,
        )

    def renew(self, operation: str, owner: str) -> bool:
        return self._update(operation, owner)

    def window_done(self, operation: str, owner: str, window_end: datetime) -> bool:
        """Everything before ``window_end`` is imported: the next window starts there, at page 1."""
        return self._update(
            operation,
            owner,
            window_start=window_end,
            window_end=None,
            pages_done=0,
            page_size=None,
            total_count=None,
            last_error=None,
        )

    def failed(self, operation: str, owner: str, error: str) -> bool:
        return self._update(operation, owner, last_error=error[:300])

    def release(self, operation: str, owner: str) -> None:
        with self.session_factory() as session:
            leases.release(
                session,
                PpsCheckpointRow.operation,
                PpsCheckpointRow.leased_until,
                (PpsCheckpointRow.lease_owner, owner),
                [operation],
            )
            session.commit()

    def all(self) -> list[Checkpoint]:
        with self.session_factory() as session:
            rows = session.scalars(select(PpsCheckpointRow).order_by(PpsCheckpointRow.operation)).all()
            return [_snapshot(row) for row in rows]
