"""SQLite's one write lock (hub.spine.db, hub.spine.unit_of_work): a session that only reads begins
deferred, so it neither waits for a writer nor holds one up, while writers still queue on the busy
timeout; a unit of work opened for reading cannot commit; and within one request scope a unit of work
opened while another is still open is refused. The busy timeout is 1 s here, so a read that took the
write lock would fail these tests with ``database is locked`` instead of hanging them."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from hub.config import DatabaseSettings
from hub.spine.db import make_engine, make_read_session_factory, make_session_factory
from hub.spine.unit_of_work import (
    NestedUnitOfWork,
    ReadOnlyUnitOfWork,
    SqlAlchemyUnitOfWork,
    one_unit_at_a_time,
    strict_unit_scopes,
)


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    made = make_engine(DatabaseSettings(url=sqlite_url, sqlite_busy_timeout_s=1))
    with made.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE marks (n INTEGER NOT NULL)")
        conn.exec_driver_sql("INSERT INTO marks VALUES (1)")
    yield made
    made.dispose()


def count(session: object) -> int:
    return int(session.scalar(text("SELECT count(*) FROM marks")))  # type: ignore[attr-defined]


def test_a_reader_holding_its_transaction_open_does_not_block_a_writer(engine: Engine) -> None:
    reads, writes = make_read_session_factory(engine), make_session_factory(engine)
    with reads() as reader:
        assert count(reader) == 1  # the read transaction is open from here on, with its snapshot
        with writes() as writer:
            writer.execute(text("INSERT INTO marks VALUES (2)"))  # BEGIN IMMEDIATE: takes the write lock
            writer.commit()
        assert count(reader) == 1  # still its own snapshot
    with reads() as later:
        assert count(later) == 2


def test_a_reader_does_not_wait_for_a_writer_holding_the_lock(engine: Engine) -> None:
    reads, writes = make_read_session_factory(engine), make_session_factory(engine)
    with writes() as writer:
        writer.execute(text("INSERT INTO marks VALUES (2)"))  # not committed: the write lock stays taken
        with reads() as reader:
            assert count(reader) == 1  # at once: the last committed state
        writer.commit()


def test_writers_still_take_turns_on_the_write_lock(engine: Engine) -> None:
    """The contrast that makes the two tests above meaningful: the lock and the 1 s timeout are real."""
    writes = make_session_factory(engine)
    with writes() as first:
        first.execute(text("INSERT INTO marks VALUES (2)"))
        with writes() as second, pytest.raises(OperationalError, match="database is locked"):
            second.execute(text("INSERT INTO marks VALUES (3)"))
        first.commit()
    with writes() as third:
        third.execute(text("INSERT INTO marks VALUES (3)"))
        third.commit()
        assert count(third) == 3


def test_a_unit_of_work_opened_for_reading_cannot_commit(engine: Engine) -> None:
    with SqlAlchemyUnitOfWork(make_read_session_factory(engine), read_only=True) as uow:
        assert count(uow.session) == 1
        with pytest.raises(ReadOnlyUnitOfWork):
            uow.commit()


def test_a_request_holds_one_unit_of_work_at_a_time(engine: Engine) -> None:
    reads, writes = make_read_session_factory(engine), make_session_factory(engine)
    with one_unit_at_a_time("PATCH /api/v1/subscriptions/s1"):
        with SqlAlchemyUnitOfWork(reads, read_only=True) as read:
            count(read.session)
        with SqlAlchemyUnitOfWork(writes) as write:  # after the read closed: fine
            write.session.execute(text("INSERT INTO marks VALUES (2)"))
            write.commit()
        with SqlAlchemyUnitOfWork(reads, read_only=True) as held:
            count(held.session)
            with pytest.raises(NestedUnitOfWork, match="PATCH /api/v1/subscriptions/s1"), SqlAlchemyUnitOfWork(writes):
                pass
        with SqlAlchemyUnitOfWork(writes) as again:  # the refused one left nothing open behind it
            again.commit()
    # Outside a request (workers, the command line) units of work are not policed.
    with SqlAlchemyUnitOfWork(reads, read_only=True), SqlAlchemyUnitOfWork(writes) as inner:
        inner.commit()


def test_out_of_tests_a_nested_unit_of_work_is_logged_and_goes_ahead(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    reads, writes = make_read_session_factory(engine), make_session_factory(engine)
    strict_unit_scopes(False)
    try:
        with (
            caplog.at_level(logging.ERROR, "hub.spine.unit_of_work"),
            one_unit_at_a_time("GET /x"),
            SqlAlchemyUnitOfWork(reads, read_only=True),
            SqlAlchemyUnitOfWork(writes) as inner,
        ):
            inner.session.execute(text("INSERT INTO marks VALUES (2)"))
            inner.commit()
    finally:
        strict_unit_scopes(True)
    assert [r.getMessage() for r in caplog.records if r.name == "hub.spine.unit_of_work"] == [
        "GET /x opened a unit of work while holding another: finish the read before sending the command, "
        "or let the command do the read"
    ]
    with make_read_session_factory(engine)() as reader:
        assert count(reader) == 2
