"""Claiming due rows with a lease (hub.spine.leases) on both databases: only due, unleased rows are
claimed, in order; a lease keeps a row from other claimers until it runs out; competing claimers
never get the same row. Then the deliveries' own rule on top of it: a subscriber never gets version
n+1 of a notice while version n is still open. (Fetch slots: tests/integration/test_supplier_repository.py.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, ForeignKey, String, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from hub.config import DatabaseSettings
from hub.spine import leases
from hub.spine.db import make_engine, make_session_factory
from hub.spine.tables import Base, UTCDateTime
from hub.subscriptions import repository as deliveries
from hub.subscriptions.tables import DeliveryRow, SubscriptionRow

NOW = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


class _Base(DeclarativeBase):
    pass


class Queue(_Base):
    __tablename__ = "lease_test_queues"
    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    paused: Mapped[bool] = mapped_column(default=False)


class Job(_Base):
    __tablename__ = "lease_test_jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    queue: Mapped[str] = mapped_column(ForeignKey("lease_test_queues.name"), default="main")
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    owner: Mapped[str | None] = mapped_column(String(20), nullable=True)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    made = make_engine(DatabaseSettings(url=str(request.getfixturevalue(f"{request.param}_url")), pool_size=8))
    _Base.metadata.create_all(made)
    Base.metadata.create_all(made, tables=[Base.metadata.tables[t] for t in ("subscriptions", "deliveries")])
    yield made
    made.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


def add_jobs(sessions: sessionmaker[Session], *due_offsets_s: float | None) -> None:
    with sessions() as session:
        session.add(Queue(name="main"))
        session.add(Queue(name="paused", paused=True))
        session.flush()
        for i, offset in enumerate(due_offsets_s, start=1):
            session.add(Job(id=i, due_at=None if offset is None else NOW + timedelta(seconds=offset)))
        session.commit()


def claim(sessions: sessionmaker[Session], now: datetime, limit: int = 10, owner: str = "w1") -> list[int]:
    with sessions() as session:
        ids = leases.claim(session, Job.id, Job.lease_until, owner=(Job.owner, owner), due=[Job.due_at <= now],
                           order_by=[Job.due_at, Job.id], limit=limit, now=now, lease=LEASE)
        session.commit()
    return ids


def test_only_due_rows_are_claimed_first_due_first(sessions: sessionmaker[Session]) -> None:
    add_jobs(sessions, 0, -30, 1, None, -30)
    assert claim(sessions, NOW, limit=2) == [2, 5]
    assert claim(sessions, NOW) == [1]  # 3 is due in a second, 4 never
    with sessions() as session:
        held = {j.id: (j.lease_until, j.owner) for j in session.scalars(select(Job)) if j.lease_until}
    assert held == {i: (NOW + LEASE, "w1") for i in (1, 2, 5)}


def test_a_leased_row_comes_back_only_when_its_lease_runs_out(sessions: sessionmaker[Session]) -> None:
    add_jobs(sessions, 0)
    assert claim(sessions, NOW) == [1]
    assert claim(sessions, NOW + timedelta(seconds=59), owner="w2") == []
    assert claim(sessions, NOW + LEASE, owner="w2") == [1]  # the first claimer died: w2 takes over
    with sessions() as session:
        assert session.get(Job, 1).owner == "w2"  # type: ignore[union-attr]


def test_the_due_condition_may_look_at_a_joined_table(sessions: sessionmaker[Session]) -> None:
    add_jobs(sessions, 0, 0)
    with sessions() as session:
        session.get(Job, 2).queue = "paused"  # type: ignore[union-attr]
        session.commit()
        ids = leases.claim(session, Job.id, Job.lease_until, due=[Job.due_at <= NOW, Queue.paused.is_(False)],
                           order_by=[Job.id], limit=10, now=NOW, lease=LEASE, joins=[(Queue, Queue.name == Job.queue)])
        session.commit()
    assert ids == [1]


def test_competing_claimers_never_get_the_same_row(sessions: sessionmaker[Session]) -> None:
    add_jobs(sessions, *[-i for i in range(120)])
    claimers = 6
    start = threading.Barrier(claimers)
    got: dict[str, list[int]] = {}

    def work(name: str) -> None:
        mine: list[int] = []
        start.wait()
        for _ in range(120):  # bounded: a claim that leased nothing would hand out the same rows forever
            batch = claim(sessions, NOW, limit=4, owner=name)
            if not batch:
                break
            mine.extend(batch)
        got[name] = mine

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(claimers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    everything = [i for ids in got.values() for i in ids]
    assert len(got) == claimers and sorted(everything) == list(range(1, 121))  # each row exactly once
    with sessions() as session:
        owners = {j.id: j.owner for j in session.scalars(select(Job))}
    assert all(owners[i] == name for name, ids in got.items() for i in ids)


def test_on_postgresql_a_row_locked_by_an_open_claim_is_skipped_not_waited_for(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as probe:
        if not leases.holds_row_locks(probe):
            pytest.skip("SQLite serialises claimers with its writer lock instead")
    add_jobs(sessions, 0, 0)
    with sessions() as first, sessions() as second:
        assert leases.claim(first, Job.id, Job.lease_until, due=[Job.due_at <= NOW], order_by=[Job.id],
                            limit=1, now=NOW, lease=LEASE) == [1]
        second.execute(text("SET LOCAL lock_timeout = '5s'"))  # waiting on row 1 would fail, not hang
        # Row 1 is locked but its lease not yet committed: the second claimer passes it by.
        assert leases.claim(second, Job.id, Job.lease_until, due=[Job.due_at <= NOW], order_by=[Job.id],
                            limit=1, now=NOW, lease=LEASE) == [2]
        first.commit()
        second.commit()


# -- deliveries: the per-notice order on top of the generic claim ---------------------------------------


def deliver(sessions: sessionmaker[Session], rows: list[tuple[str, int, str]], status: str = "active") -> None:
    with sessions() as session:
        session.add(SubscriptionRow(id="s1", channel="webhook", filter={}, status=status, created_at=NOW,
                                    updated_at=NOW))
        for seq, (notice, version, state) in enumerate(rows, start=1):
            session.add(DeliveryRow(subscription_id="s1", notice_id=notice, version=version, seq=seq,
                                    kind="notice", status=state, attempts=0, next_attempt_at=NOW,
                                    created_at=NOW, updated_at=NOW))
        session.commit()


def claimed_deliveries(sessions: sessionmaker[Session]) -> set[tuple[str, int]]:
    with sessions() as session:
        ids = deliveries.claim_due(session, 100, LEASE, now=NOW)
        session.commit()
        return {(d.notice_id, d.version) for d in session.scalars(select(DeliveryRow).where(DeliveryRow.id.in_(ids)))}


def test_a_version_waits_for_every_earlier_one_to_settle(sessions: sessionmaker[Session]) -> None:
    deliver(sessions, [
        ("A", 1, "pending"),                                          # alone: goes
        ("B", 1, "delivered"), ("B", 2, "pending"), ("B", 3, "pending"),  # v3 waits behind open v2
        ("C", 1, "failed"), ("C", 2, "pending"),                      # a failed v1 holds v2 back
        ("D", 1, "delivered"), ("D", 2, "dead"), ("D", 3, "pending"),  # settled (even dead) frees v3
        ("E", 2, "pending"), ("E", 3, "delivered"),                   # later versions never block earlier
    ])
    assert claimed_deliveries(sessions) == {("A", 1), ("B", 2), ("C", 1), ("D", 3), ("E", 2)}


def test_deliveries_of_a_disabled_subscription_are_not_claimed(sessions: sessionmaker[Session]) -> None:
    deliver(sessions, [("A", 1, "pending")], status="disabled")
    assert claimed_deliveries(sessions) == set()

