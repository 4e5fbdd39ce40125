"""Unit of work: one transaction per message. Events a handler raises are written to the outbox in the
same transaction as the state change, and a consumer's inbox mark commits with its effect. Nothing is
kept unless ``commit()`` is called.

A unit of work that only reads (``read_only=True``, on a read session factory) never commits, and on
SQLite takes no write lock. One request opens its units of work one after the other, never one inside
another (:func:`one_unit_at_a_time`): on SQLite a writer nested in a writer waits for itself."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, Self

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from hub.spine import outbox_signal
from hub.spine.messages import Envelope, Event
from hub.spine.records import SqlAuditLog, SqlDeadLetters
from hub.spine.tables import InboxRow, OutboxRow

__all__ = [
    "AbstractUnitOfWork",
    "NestedUnitOfWork",
    "ReadOnlyUnitOfWork",
    "SqlAlchemyUnitOfWork",
    "UnitOfWork",
    "one_unit_at_a_time",
    "outbox_row",
    "strict_unit_scopes",
]

log = logging.getLogger(__name__)


class NestedUnitOfWork(RuntimeError):
    """A unit of work was opened while another of the same scope (a request) was still open."""


class ReadOnlyUnitOfWork(RuntimeError):
    """``commit()`` on a unit of work opened for reading."""


class _UnitScope:
    """The units of work one scope (a request) holds open. Shared by reference: a worker thread runs in a
    copy of the request's context, so it sees, and counts in, the same object."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.open = 0


_scope: ContextVar[_UnitScope | None] = ContextVar("g2bhub_unit_scope", default=None)
_strict = False


def strict_unit_scopes(strict: bool) -> None:
    """True: a nested unit of work raises :class:`NestedUnitOfWork` (the tests run so). False (the
    default): it is logged as an error and goes ahead, so a path no test reached degrades, not fails."""
    global _strict
    _strict = strict


@contextmanager
def one_unit_at_a_time(name: str) -> Iterator[None]:
    """Within this block (an API request), a unit of work opened while another is still open is a
    defect: reported (or raised, see :func:`strict_unit_scopes`) when it is opened."""
    token = _scope.set(_UnitScope(name))
    try:
        yield
    finally:
        _scope.reset(token)


class UnitOfWork(Protocol):
    """What every handler may use of its unit of work. Each flow extends it with its repositories
    (``uow.notices``, ``uow.suppliers`` …) in its own ``repository`` module; the concrete unit of work
    that carries them all is composed above the flows, and tests hand in a fake."""

    correlation_id: str | None

    def publish(self, event: Event) -> Envelope: ...
    def enqueue(self, envelope: Envelope) -> None: ...
    def before_commit(self, callback: Callable[[], object]) -> None: ...
    def after_commit(self, callback: Callable[[], object]) -> None: ...


class AbstractUnitOfWork:
    dead_letters: SqlDeadLetters
    audit: SqlAuditLog
    correlation_id: str | None = None

    def __init__(self) -> None:
        self._pending: list[Envelope] = []
        self._before_commit: list[Callable[[], object]] = []
        self._after_commit: list[Callable[[], object]] = []

    def __enter__(self) -> Self:
        self._pending = []
        self._before_commit = []
        self._after_commit = []
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

    def before_commit(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` as the last step of the transaction, after the handler and before the outbox
        rows and the COMMIT: for work whose locks should be held as briefly as possible (the changes
        feed's counter row). Callbacks may still change the pending events; one that raises rolls the
        unit of work back like a failing handler."""
        self._before_commit.append(callback)

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` once this unit of work has committed (never if it rolls back): e.g. wake a
        worker that should now see the committed rows."""
        self._after_commit.append(callback)

    def commit(self) -> None:
        before, self._before_commit = self._before_commit, []
        for callback in before:
            callback()
        pending, self._pending = self._pending, []
        self._commit(pending)
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def rollback(self) -> None:
        self._pending = []
        self._before_commit = []
        self._after_commit = []
        self._rollback()

    def already_handled(self, consumer_group: str, message_id: str) -> bool:
        raise NotImplementedError

    def mark_handled(self, consumer_group: str, message_id: str) -> None:
        raise NotImplementedError

    def handled_among(self, consumer_group: str, message_ids: Sequence[str]) -> set[str]:
        """Which of ``message_ids`` the group has handled already (a batch's one inbox look-up)."""
        return {m for m in message_ids if self.already_handled(consumer_group, m)}

    def _commit(self, envelopes: list[Envelope]) -> None:
        raise NotImplementedError

    def _rollback(self) -> None:
        raise NotImplementedError


def _now() -> datetime:
    return datetime.now(UTC)


def outbox_row(env: Envelope) -> OutboxRow:
    """The outbox row of an envelope; added to a session, it commits (and is relayed) with that session."""
    return OutboxRow(**vars(env))


class SqlAlchemyUnitOfWork(AbstractUnitOfWork):
    session: Session

    def __init__(self, session_factory: sessionmaker[Session], *, read_only: bool = False) -> None:
        super().__init__()
        self.session_factory = session_factory
        self.read_only = read_only
        self._in_scope: _UnitScope | None = None

    def __enter__(self) -> Self:
        self._enter_scope()
        self.session = self.session_factory()
        self.attach_repositories(self.session)
        self.dead_letters = SqlDeadLetters(self.session)
        self.audit = SqlAuditLog(self.session)
        return super().__enter__()

    def attach_repositories(self, session: Session) -> None:
        """Hook for the composed unit of work: put each flow's SQL repository on ``self``."""

    def __exit__(self, *args: Any) -> None:
        try:
            super().__exit__(*args)
            self.session.close()
        finally:
            if self._in_scope is not None:
                self._in_scope.open -= 1
                self._in_scope = None

    def _enter_scope(self) -> None:
        scope = _scope.get()
        if scope is None:
            return
        if scope.open:
            message = (f"{scope.name} opened a unit of work while holding another: finish the read before "
                       "sending the command, or let the command do the read")
            if _strict:
                raise NestedUnitOfWork(message)
            log.error(message, stack_info=True)
        scope.open += 1
        self._in_scope = scope

    def commit(self) -> None:
        if self.read_only:
            raise ReadOnlyUnitOfWork("this unit of work was opened for reading; open a writing one to commit")
        super().commit()

    def _commit(self, envelopes: list[Envelope]) -> None:
        self.session.add_all([outbox_row(env) for env in envelopes])
        if not envelopes:
            self.session.commit()
            return
        engine = self.session.get_bind()
        self.session.commit()  # on PostgreSQL the outbox's trigger has queued a NOTIFY, sent on commit
        if isinstance(engine, Engine):
            outbox_signal.committed(engine)  # this process's relays: the rows are there now

    def _rollback(self) -> None:
        self.session.rollback()

    def already_handled(self, consumer_group: str, message_id: str) -> bool:
        stmt = select(InboxRow.message_id).where(
            InboxRow.consumer_group == consumer_group, InboxRow.message_id == message_id
        )
        return self.session.execute(stmt).first() is not None

    def handled_among(self, consumer_group: str, message_ids: Sequence[str]) -> set[str]:
        if not message_ids:
            return set()
        stmt = select(InboxRow.message_id).where(
            InboxRow.consumer_group == consumer_group, InboxRow.message_id.in_(list(message_ids))
        )
        return set(self.session.scalars(stmt))

    def mark_handled(self, consumer_group: str, message_id: str) -> None:
        self.session.add(InboxRow(consumer_group=consumer_group, message_id=message_id, handled_at=_now()))
