"""Unit of work: one transaction per message. Events a handler raises are written to the outbox in the
same transaction as the state change, and a consumer's inbox mark commits with its effect. Nothing is
kept unless ``commit()`` is called."""

from __future__ import annotations

from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.adapters.orm import InboxRow, OutboxRow
from hub.adapters.records import SqlAuditLog, SqlDeadLetters
from hub.adapters.repositories import (
    InMemoryOrganisationRepository,
    OrganisationRepository,
    SqlOrganisationRepository,
)
from hub.domain.messages import Envelope, Event

__all__ = ["AbstractUnitOfWork", "FakeUnitOfWork", "SqlAlchemyUnitOfWork", "outbox_row"]


class AbstractUnitOfWork:
    organisations: OrganisationRepository
    dead_letters: SqlDeadLetters
    audit: SqlAuditLog
    correlation_id: str | None = None

    def __init__(self) -> None:
        self._pending: list[Envelope] = []

    def __enter__(self) -> Self:
        self._pending = []
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()

    def publish(self, event: Event) -> Envelope:
        """Record an event; it reaches the outbox only if this unit of work commits."""
        envelope = Envelope.wrap(event, correlation_id=self.correlation_id)
        self._pending.append(envelope)
        return envelope

    def enqueue(self, envelope: Envelope) -> None:
        """Record a ready-made envelope (replays keep their original message id)."""
        self._pending.append(envelope)

    def commit(self) -> None:
        pending, self._pending = self._pending, []
        self._commit(pending)

    def rollback(self) -> None:
        self._pending = []
        self._rollback()

    def already_handled(self, consumer_group: str, message_id: str) -> bool:
        raise NotImplementedError

    def mark_handled(self, consumer_group: str, message_id: str) -> None:
        raise NotImplementedError

    def _commit(self, envelopes: list[Envelope]) -> None:
        raise NotImplementedError

    def _rollback(self) -> None:
        raise NotImplementedError


def _now() -> datetime:
    return datetime.now(UTC)


def outbox_row(env: Envelope) -> OutboxRow:
    """The outbox row of an envelope; added to a session, it commits (and is relayed) with that session."""
    return OutboxRow(
        message_id=env.message_id,
        message_type=env.message_type,
        routing_key=env.routing_key,
        payload=env.payload,
        correlation_id=env.correlation_id,
        target_group=env.target_group,
        occurred_at=env.occurred_at,
    )


class SqlAlchemyUnitOfWork(AbstractUnitOfWork):
    session: Session

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        super().__init__()
        self.session_factory = session_factory

    def __enter__(self) -> Self:
        self.session = self.session_factory()
        self.organisations = SqlOrganisationRepository(self.session)
        self.dead_letters = SqlDeadLetters(self.session)
        self.audit = SqlAuditLog(self.session)
        return super().__enter__()

    def __exit__(self, *args: Any) -> None:
        super().__exit__(*args)
        self.session.close()

    def _commit(self, envelopes: list[Envelope]) -> None:
        self.session.add_all([outbox_row(env) for env in envelopes])
        self.session.commit()

    def _rollback(self) -> None:
        self.session.rollback()

    def already_handled(self, consumer_group: str, message_id: str) -> bool:
        stmt = select(InboxRow.message_id).where(
            InboxRow.consumer_group == consumer_group, InboxRow.message_id == message_id
        )
        return self.session.execute(stmt).first() is not None

    def mark_handled(self, consumer_group: str, message_id: str) -> None:
        self.session.add(InboxRow(consumer_group=consumer_group, message_id=message_id, handled_at=_now()))


class FakeUnitOfWork(AbstractUnitOfWork):
    """In-memory twin for unit tests: same contract, no database."""

    def __init__(self) -> None:
        super().__init__()
        self.organisations = InMemoryOrganisationRepository()
        self.outbox: list[Envelope] = []
        self.inbox: set[tuple[str, str]] = set()
        self._inbox_pending: set[tuple[str, str]] = set()
        self.committed = 0

    def _commit(self, envelopes: list[Envelope]) -> None:
        self.outbox.extend(envelopes)
        self.inbox |= self._inbox_pending
        self._inbox_pending = set()
        self.committed += 1

    def _rollback(self) -> None:
        self._inbox_pending = set()

    def already_handled(self, consumer_group: str, message_id: str) -> bool:
        return (consumer_group, message_id) in self.inbox

    def mark_handled(self, consumer_group: str, message_id: str) -> None:
        self._inbox_pending.add((consumer_group, message_id))
