"""Claiming due rows: the one way competing workers split a table of work between them (outbox rows,
supplier fetch slots, deliveries).

On PostgreSQL the candidate rows are read ``FOR UPDATE SKIP LOCKED``: each claimer takes rows nobody else
holds, without waiting for them. SQLite transactions begin ``IMMEDIATE`` (``hub.spine.db``), so one
claimer at a time holds the database and no lock clause is needed. A *lease* (an expiry column written
with the claim) outlives the transaction: the claimer can commit, do slow work — call a supplier's
registry, a subscriber's webhook — and record the outcome later; a claimer that dies lets its lease run
out and the row becomes claimable again. Work finished inside one transaction (the outbox relay on
PostgreSQL) needs only the row locks.

A short lease makes a dead claimer's rows free again within seconds; a claimer whose work takes longer
*renews* its lease while it works (:func:`renew`) and *releases* rows it will not finish
(:func:`release`). Both are keyed by the claim's owner token, so a claimer only ever extends or frees
its own claims — never rows that ran out and were claimed by someone else meanwhile."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql.selectable import GenerativeSelect

__all__ = ["claim", "holds_row_locks", "lease_free", "release", "renew", "skip_locked"]

S = TypeVar("S", bound=GenerativeSelect)


def holds_row_locks(session: Session) -> bool:
    """Whether a ``skip_locked`` read locks its rows until commit (PostgreSQL) or relies on the
    database-wide writer lock (SQLite)."""
    return session.get_bind().dialect.name == "postgresql"


def skip_locked(session: Session, stmt: S, of: Any = None) -> S:
    """``stmt`` reading only rows no other transaction holds, and locking them until this one ends."""
    if holds_row_locks(session):
        return stmt.with_for_update(skip_locked=True, of=of)
    return stmt


def lease_free(until: QueryableAttribute[Any], now: datetime) -> ColumnElement[bool]:
    """Never leased, or the lease has run out."""
    return or_(until.is_(None), until <= now)


def claim(
    session: Session,
    key: QueryableAttribute[Any],
    until: QueryableAttribute[Any],
    *,
    due: Sequence[ColumnElement[bool]],
    order_by: Sequence[Any],
    limit: int,
    now: datetime,
    lease: timedelta,
    owner: tuple[QueryableAttribute[Any], str] | None = None,
    joins: Sequence[tuple[Any, Any]] = (),
) -> list[Any]:
    """Lease up to ``limit`` rows that are ``due`` and not leased, first by ``order_by``; return their
    ``key`` values in that order. ``until`` is set to ``now + lease`` and the ``owner`` column, if any,
    to the claimer's token (its outcome is recorded only while the token still matches). ``joins``
    (target, on clause) let ``due`` look at other tables; only the claimed table is locked.
    The claim holds once the caller commits."""
    entity = key.class_
    stmt = select(key).where(*due, lease_free(until, now)).order_by(*order_by).limit(limit)
    for target, onclause in joins:
        stmt = stmt.join(target, onclause)
    keys = list(session.scalars(skip_locked(session, stmt, of=entity)))
    if keys:
        values: dict[str, Any] = {until.key: now + lease}
        if owner is not None:
            values[owner[0].key] = owner[1]
        session.execute(update(entity).where(key.in_(keys)).values(values))
    return keys


def renew(
    session: Session,
    key: QueryableAttribute[Any],
    until: QueryableAttribute[Any],
    owner: tuple[QueryableAttribute[Any], str],
    keys: Sequence[Any],
    *,
    now: datetime,
    lease: timedelta,
) -> int:
    """Extend the lease of those of ``keys`` still held by ``owner`` to ``now + lease``; return how many
    are. Rows another claimer took over, or whose outcome was recorded meanwhile (no owner), are left
    alone. A lease that ran out with nobody claiming the row is renewed: the row is still ours.
    Caller commits."""
    if not keys:
        return 0
    column, token = owner
    result = session.execute(
        update(key.class_).where(key.in_(keys), column == token).values({until.key: now + lease})
        .execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


def release(
    session: Session,
    key: QueryableAttribute[Any],
    until: QueryableAttribute[Any],
    owner: tuple[QueryableAttribute[Any], str],
    keys: Sequence[Any],
) -> int:
    """Free those of ``keys`` still held by ``owner`` at once (lease and owner cleared), so the next
    claimer need not wait for the lease to run out; return how many were. Caller commits."""
    if not keys:
        return 0
    column, token = owner
    result = session.execute(
        update(key.class_).where(key.in_(keys), column == token).values({until.key: None, column.key: None})
        .execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]
