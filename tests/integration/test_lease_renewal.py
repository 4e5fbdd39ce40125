"""Renewing and releasing leases (hub.spine.leases.renew / release) on both databases: a claimer
extends or frees only the rows its own token still holds — never rows that ran out and were claimed by
someone else, nor rows whose outcome was recorded meanwhile."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from hub.config import DatabaseSettings
from hub.spine import leases
from hub.spine.db import make_engine, make_session_factory
from hub.spine.tables import UTCDateTime

NOW = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=5)


class _Base(DeclarativeBase):
    pass


class Task(_Base):
    __tablename__ = "lease_renewal_test_tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    owner: Mapped[str | None] = mapped_column(String(32), nullable=True)


@pytest.fixture(params=["sqlite", "postgres"])
def sessions(request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    engine: Engine = make_engine(DatabaseSettings(url=str(request.getfixturevalue(f"{request.param}_url"))))
    _Base.metadata.create_all(engine)
    with make_session_factory(engine)() as session:
        session.add_all(Task(id=i) for i in range(1, 5))
        session.commit()
    yield make_session_factory(engine)
    engine.dispose()


def claim(sessions: sessionmaker[Session], owner: str, now: datetime) -> list[int]:
    with sessions() as session:
        ids = leases.claim(session, Task.id, Task.lease_until, owner=(Task.owner, owner), due=[],
                           order_by=[Task.id], limit=10, now=now, lease=LEASE)
        session.commit()
    return ids


def renew(sessions: sessionmaker[Session], owner: str, ids: list[int], now: datetime) -> int:
    with sessions() as session:
        held = leases.renew(session, Task.id, Task.lease_until, (Task.owner, owner), ids, now=now, lease=LEASE)
        session.commit()
    return held


def release(sessions: sessionmaker[Session], owner: str, ids: list[int]) -> int:
    with sessions() as session:
        freed = leases.release(session, Task.id, Task.lease_until, (Task.owner, owner), ids)
        session.commit()
    return freed


def state(sessions: sessionmaker[Session]) -> dict[int, tuple[datetime | None, str | None]]:
    with sessions() as session:
        return {t.id: (t.lease_until, t.owner) for t in session.scalars(select(Task).order_by(Task.id))}


def test_a_renewed_lease_keeps_the_rows_from_other_claimers(sessions: sessionmaker[Session]) -> None:
    assert claim(sessions, "a", NOW) == [1, 2, 3, 4]
    later = NOW + LEASE - timedelta(seconds=1)
    assert renew(sessions, "a", [1, 2, 3, 4], later) == 4
    assert claim(sessions, "b", NOW + LEASE) == []  # the first lease has run out, the renewed one not
    assert claim(sessions, "b", later + LEASE) == [1, 2, 3, 4]


def test_only_the_owner_renews_or_releases(sessions: sessionmaker[Session]) -> None:
    claim(sessions, "a", NOW)
    assert claim(sessions, "b", NOW + LEASE) == [1, 2, 3, 4]  # a's lease ran out: b took everything
    taken = state(sessions)
    assert renew(sessions, "a", [1, 2], NOW + LEASE) == 0
    assert release(sessions, "a", [1, 2]) == 0
    assert state(sessions) == taken


def test_release_frees_the_rows_at_once(sessions: sessionmaker[Session]) -> None:
    claim(sessions, "a", NOW)
    assert release(sessions, "a", [2, 3]) == 2
    assert state(sessions)[2] == (None, None)
    assert claim(sessions, "b", NOW) == [2, 3]  # no need to wait for the lease


def test_a_run_out_lease_nobody_took_is_still_the_owners(sessions: sessionmaker[Session]) -> None:
    claim(sessions, "a", NOW)
    late = NOW + 3 * LEASE
    assert renew(sessions, "a", [1], late) == 1
    assert state(sessions)[1] == (late + LEASE, "a")
    assert renew(sessions, "a", [], late) == 0 and release(sessions, "a", []) == 0
