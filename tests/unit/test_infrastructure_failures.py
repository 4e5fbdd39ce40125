"""An unavailable database or broker is not a poison message: which failures count as infrastructure,
and how the brokers hold such a message (backing off, not spending its delivery limit) while a
handler's own failure is still dead-lettered at the limit."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pika.exceptions
import pytest
from sqlalchemy import exc as sa_exc

from hub.organisations import events
from hub.spine.brokers.base import BrokerUnavailable, InfrastructureUnavailable
from hub.spine.brokers.inprocess import InProcessBroker
from hub.spine.brokers.rabbitmq.consumer import hold_while_unavailable
from hub.spine.faults import Fault, classify, is_infrastructure_failure, is_read_only
from hub.spine.messages import Envelope
from hub.spine.retry import Backoff

FAST = Backoff(0.001, 0.005)


class PgError(Exception):
    """Stands in for a psycopg error: what the classifier reads is its ``sqlstate``."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


def dropped_connection() -> sa_exc.OperationalError:
    return sa_exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"),
                                   connection_invalidated=True)


def env(name: str = "x") -> Envelope:
    return Envelope.wrap(events.OrganisationCreated(org_id=name, name=name, kind="agency"))


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


# -- which failures are the infrastructure's -----------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (dropped_connection(), Fault.UNAVAILABLE),
        (sa_exc.DisconnectionError("gone"), Fault.UNAVAILABLE),
        (sa_exc.TimeoutError("QueuePool limit reached"), Fault.UNAVAILABLE),
        (sa_exc.InternalError("INSERT", {}, PgError("25006")), Fault.UNAVAILABLE),  # read-only transaction
        (sa_exc.OperationalError("SELECT", {}, PgError("57P01")), Fault.UNAVAILABLE),  # admin shutdown
        (sa_exc.OperationalError("SELECT", {}, PgError("08006")), Fault.UNAVAILABLE),  # connection failure
        (sa_exc.OperationalError("SELECT", {}, PgError("53100")), Fault.UNAVAILABLE),  # disk full
        (sa_exc.OperationalError("INSERT", {}, sqlite3.OperationalError("attempt to write a readonly database")),
         Fault.UNAVAILABLE),
        (sa_exc.OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked")), Fault.UNAVAILABLE),
        (pika.exceptions.StreamLostError("eof"), Fault.UNAVAILABLE),
        (pika.exceptions.AMQPConnectionError("refused"), Fault.UNAVAILABLE),
        (BrokerUnavailable("no confirm"), Fault.UNAVAILABLE),
        # a generic operational error may be the handler's own ("no such table"): ask the database
        (sa_exc.OperationalError("SELECT x", {}, sqlite3.OperationalError("no such table: x")), Fault.SUSPECT),
        (sa_exc.InterfaceError("SELECT", {}, Exception("?")), Fault.SUSPECT),
        (sa_exc.IntegrityError("INSERT", {}, PgError("23505")), None),
        (sa_exc.ProgrammingError("SELECT", {}, PgError("42P01")), None),
        (ValueError("handler bug"), None),
        (RuntimeError("handler bug"), None),
    ],
)
def test_classification(error: Exception, fault: Fault | None) -> None:
    assert classify(error) is fault
    assert is_infrastructure_failure(error) is (fault is not None)


def test_a_database_error_wrapped_by_a_handler_is_still_found() -> None:
    try:
        try:
            raise dropped_connection()
        except sa_exc.OperationalError as inner:
            raise RuntimeError("could not load the notice") from inner
    except RuntimeError as outer:
        assert classify(outer) is Fault.UNAVAILABLE


def test_read_only_is_told_apart() -> None:
    assert is_read_only(sa_exc.InternalError("INSERT", {}, PgError("25006")))
    assert is_read_only(sa_exc.OperationalError("INSERT", {}, sqlite3.OperationalError(
        "attempt to write a readonly database")))
    assert not is_read_only(dropped_connection())


# -- the in-process broker ----------------------------------------------------------------------------
def test_in_process_broker_holds_a_message_through_an_outage_without_counting(stop: threading.Event) -> None:
    """More unavailable failures than the delivery limit, then success: applied once, no dead letter."""
    broker = InProcessBroker(delivery_limit=3, unavailable_backoff=FAST)
    broker.setup({"a": ["event.#"]})
    outage = {"left": 10}
    applied: list[str] = []
    dead: list[Any] = []

    def handler(e: Envelope) -> None:
        if outage["left"]:
            outage["left"] -= 1
            raise InfrastructureUnavailable("database down") from dropped_connection()
        applied.append(e.message_id)

    threading.Thread(target=broker.consume, args=("a", handler, lambda *a: dead.append(a), stop),
                     daemon=True).start()
    first, second = env("1"), env("2")
    broker.publish([first, second])
    assert applied == [first.message_id, second.message_id]  # held in place: order kept
    assert dead == []


def test_in_process_broker_still_dead_letters_a_handler_failure(stop: threading.Event) -> None:
    broker = InProcessBroker(delivery_limit=3, unavailable_backoff=FAST)
    broker.setup({"a": ["event.#"]})
    calls: list[str] = []
    dead: list[tuple[str, str, int]] = []

    def handler(e: Envelope) -> None:
        calls.append(e.message_id)
        if len(calls) <= 5:  # an outage first: not counted
            raise InfrastructureUnavailable("database down")
        raise ValueError("handler bug")

    threading.Thread(target=broker.consume,
                     args=("a", handler, lambda g, e, reason, n: dead.append((g, e.message_id, n)), stop),
                     daemon=True).start()
    message = env()
    broker.publish([message])
    assert len(calls) == 5 + 4  # five held attempts, then the first delivery plus three redeliveries
    assert dead == [("a", message.message_id, 4)]


def test_in_process_broker_keeps_a_dead_letter_the_database_cannot_file_yet(stop: threading.Event) -> None:
    broker = InProcessBroker(delivery_limit=1, unavailable_backoff=FAST)
    broker.setup({"a": ["event.#"]})
    sink_down = {"left": 4}
    filed: list[str] = []

    def sink(group: str, e: Envelope, reason: str, count: int) -> None:
        if sink_down["left"]:
            sink_down["left"] -= 1
            raise InfrastructureUnavailable("database down")
        filed.append(e.message_id)

    def handler(e: Envelope) -> None:
        raise ValueError("handler bug")

    threading.Thread(target=broker.consume, args=("a", handler, sink, stop), daemon=True).start()
    message = env()
    broker.publish([message])
    assert filed == [message.message_id]


def test_a_stopped_consumer_puts_a_held_message_back_at_the_head(stop: threading.Event) -> None:
    broker = InProcessBroker(delivery_limit=3, unavailable_backoff=Backoff(0.05, 0.05), confirm_timeout_s=0.3)
    broker.setup({"a": ["event.#"]})
    started = threading.Event()

    def handler(e: Envelope) -> None:
        started.set()
        raise InfrastructureUnavailable("database down")

    consumer_stop = threading.Event()
    thread = threading.Thread(target=broker.consume, args=("a", handler, lambda *a: None, consumer_stop),
                              daemon=True)
    thread.start()
    first, second = env("1"), env("2")
    with pytest.raises(BrokerUnavailable):  # never settled while the database is down
        broker.publish([first, second])
    assert started.is_set()
    consumer_stop.set()
    thread.join(5)
    seen: list[str] = []
    threading.Thread(target=broker.consume, args=("a", lambda e: seen.append(e.message_id), lambda *a: None, stop),
                     daemon=True).start()
    broker.publish([first, second])  # the relay's retry (it may find them consumed already)
    assert seen[:2] == [first.message_id, second.message_id]  # the held message first, order kept


# -- the RabbitMQ consumer's hold ----------------------------------------------------------------------
class FakeConnection:
    def __init__(self) -> None:
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:  # pika's: processes I/O (heartbeats) while waiting
        self.slept.append(seconds)


class FakeChannel:
    def __init__(self) -> None:
        self.connection = FakeConnection()


def test_rabbitmq_consumer_holds_the_message_on_the_connection_while_unavailable() -> None:
    channel = FakeChannel()
    failures = {"left": 7}

    def attempt() -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise InfrastructureUnavailable("database down")

    done = hold_while_unavailable(channel, attempt, FAST, threading.Event(), "group:a")  # type: ignore[arg-type]
    assert done is True and failures["left"] == 0
    assert channel.connection.slept  # waited through pika, never time.sleep


def test_rabbitmq_consumer_lets_a_handler_failure_through_and_gives_up_holding_on_stop() -> None:
    def bug() -> None:
        raise ValueError("handler bug")

    with pytest.raises(ValueError):
        hold_while_unavailable(FakeChannel(), bug, FAST, threading.Event(), "group:a")  # type: ignore[arg-type]

    stop = threading.Event()

    def down() -> None:
        stop.set()
        raise InfrastructureUnavailable("database down")

    assert hold_while_unavailable(FakeChannel(), down, FAST, stop, "group:a") is False  # type: ignore[arg-type]
