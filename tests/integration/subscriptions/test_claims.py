"""Delivery claims recover fast, on SQLite and PostgreSQL: a dispatcher killed with deliveries in flight
leaves leases that run out within ``lease_s · time_scale``; a dispatcher that is still working renews
its leases, so a slow receiver is not sent the same delivery twice; a database connection lost between
claim and record neither abandons the claimed rows nor resends what was delivered; two dispatchers
never send one delivery twice.

Deliveries are written straight into the delivery tables (no matching consumer runs), so the only
thing at work is the dispatchers under test."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select

from hub.api.app import create_app
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.subscriptions import repository as store
from hub.subscriptions.dispatcher import DeliveryDispatcher
from hub.subscriptions.tables import DeliveryRow
from tests.support.fakes import InMemoryNoticeReader
from tests.support.receiver import Answer, Receiver
from tests.support.subscriptions import FAST, Env, Publisher, agency_key, new_notice_id
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[3]

# A 10 s lease at a twentieth of real time: 0.5 s. Slack covers the dispatcher's idle pause, a claim
# round and a send, never another lease.
TIMING = {"time_scale": 0.05, "lease_s": 10.0}
SLACK_S = 5.0


class CountingReceiver(Receiver):
    """Also counts requests as they arrive, before the (possibly slow) answer."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[str] = []

    def handle(self, request: Any, body: bytes, headers: dict[str, str]) -> None:
        with self.lock:
            self.arrived.append(headers.get("webhook-id", ""))
        super().handle(request, body, headers)

    def sends(self) -> Counter[str]:
        with self.lock:
            return Counter(self.arrived)


@dataclass
class Claims:
    env: Env
    data: dict[str, Any]
    dispatchers: list[tuple[DeliveryDispatcher, threading.Event, threading.Thread]] = field(default_factory=list)
    seq: int = 0

    @property
    def hub(self) -> Hub:
        return self.env.hub

    @property
    def lease_s(self) -> float:
        config = self.hub.settings.syndication
        return config.lease_s * config.time_scale

    def receiver(self) -> CountingReceiver:
        receiver = CountingReceiver()
        self.env.receivers.append(receiver)
        return receiver

    def owe(self, subscription_ids: list[str], notices: int, versions: int = 1) -> list[str]:
        """Due deliveries of ``versions`` versions of ``notices`` new notices to each subscription."""
        ids = [new_notice_id() for _ in range(notices)]
        with self.hub.uow() as uow:
            for version in range(1, versions + 1):
                for notice_id in ids:
                    self.seq += 1
                    body = {"type": "notice.published", "data": {"notice_id": notice_id, "version": version}}
                    uow.deliveries.add_payload(notice_id, version, "original", self.seq, "notice.works", body)
                    uow.deliveries.add_deliveries(subscription_ids, notice_id, version, self.seq, "original")
            uow.commit()
        return ids

    def dispatcher(self) -> DeliveryDispatcher:
        """A dispatcher running in a thread of this process, stopped at the end of the test."""
        dispatcher = DeliveryDispatcher(self.hub.session_factory, self.hub.settings, threading.Event(),
                                        self.hub.subscriptions.resolve)
        stop = threading.Event()
        thread = threading.Thread(target=dispatcher.run_forever, args=(stop,), daemon=True)
        thread.start()
        self.dispatchers.append((dispatcher, stop, thread))
        return dispatcher

    def rows(self) -> list[DeliveryRow]:
        with self.hub.session_factory() as session:
            return list(session.scalars(select(DeliveryRow).order_by(DeliveryRow.id)))

    def close(self) -> None:
        for dispatcher, stop, thread in self.dispatchers:
            stop.set()
            dispatcher.wake.set()
            thread.join(timeout=15)


@pytest.fixture(params=["sqlite", "postgres"])
def make_claims(request: pytest.FixtureRequest) -> Iterator[Callable[..., Claims]]:
    url = str(request.getfixturevalue(f"{request.param}_url"))
    made: list[Claims] = []

    def make(**syndication: Any) -> Claims:
        data: dict[str, Any] = {
            "database": {"url": url},
            "broker": {"kind": "inprocess", "namespace": f"t{uuid.uuid4().hex[:10]}"},
            "syndication": {**FAST, **TIMING, **syndication},
        }
        hub = bootstrap(Settings(**data), migrate=True, dependencies={"notice_reader": InMemoryNoticeReader()})
        _, key = agency_key(hub)
        client = TestClient(create_app(hub=hub))
        client.__enter__()
        claims = Claims(Env(hub, client, Publisher(hub, InMemoryNoticeReader()), key, []), data)
        made.append(claims)
        return claims

    yield make
    for claims in made:
        claims.close()
        claims.env.client.__exit__(None, None, None)
        claims.hub.close()
        for receiver in claims.env.receivers:
            receiver.close()


@contextmanager
def connection_lost(engine: Engine, when: Callable[[str], bool], times: int = 1) -> Iterator[list[str]]:
    """The first ``times`` statements for which ``when`` holds fail because the connection is gone: on
    PostgreSQL the server really terminates it (``pg_terminate_backend``) just before the statement
    runs; SQLite has no server, so the driver's own ``OperationalError`` is raised in its place."""
    fired: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if len(fired) >= times or not when(statement):
            return
        fired.append(statement)
        if conn.dialect.name == "postgresql":
            import psycopg

            pid = conn.connection.dbapi_connection.info.backend_pid
            admin = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            with psycopg.connect(admin, autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(%s)", (pid,))
                eventually(lambda: other.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                                                 (pid,)).fetchone() == (0,), what="the connection gone")
            return
        raise conn.dialect.dbapi.OperationalError("connection lost (injected by the test)")

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield fired
    finally:
        event.remove(engine, "before_cursor_execute", before)


def recording_a_success(statement: str) -> bool:
    return statement.lstrip().upper().startswith("UPDATE DELIVERIES") and "delivered_at" in statement.lower()


def test_a_killed_dispatchers_claims_are_taken_over_within_the_scaled_lease(make_claims: Callable[..., Claims]) -> None:
    claims = make_claims(subscription_concurrency=3)  # all three in flight at once
    receiver = claims.receiver()
    receiver.default = Answer(200, delay_s=120)  # the doomed dispatcher's requests never complete
    sid = claims.env.subscribe_webhook(receiver)
    notices = claims.owe([sid], 3)
    doomed = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.subscriptions.lone_dispatcher", json.dumps(claims.data)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        eventually(lambda: len(receiver.sends()) == 3 or doomed.poll() is not None, timeout=60,
                   what="the doomed dispatcher sending all three")
    finally:
        doomed.kill()  # SIGKILL: no cleanup, no release
        _, stderr = doomed.communicate(timeout=30)
    assert len(receiver.sends()) == 3, stderr[-3000:]
    assert all(row.lease_until is not None for row in claims.rows())  # claimed, never recorded

    receiver.default = Answer(200)
    claims.dispatcher()
    eventually(lambda: len(receiver.delivered()) == 3, timeout=claims.lease_s + SLACK_S,
               what="another dispatcher taking the dead one's claims within the lease")
    assert sorted(receiver.versions()) == sorted((n, 1) for n in notices)
    eventually(lambda: all(row.status == "delivered" for row in claims.rows()), what="outcomes recorded")
    assert set(receiver.sends().values()) == {2}  # once by the dead dispatcher, once by its successor


def test_losing_the_connection_between_claim_and_record_neither_abandons_nor_resends(
    make_claims: Callable[..., Claims],
) -> None:
    claims = make_claims()
    receiver = claims.receiver()
    sid = claims.env.subscribe_webhook(receiver)
    claims.owe([sid], 3)
    with connection_lost(claims.hub.engine, when=recording_a_success) as fired:
        claims.dispatcher()
        eventually(lambda: [r.status for r in claims.rows()] == ["delivered"] * 3,
                   timeout=claims.lease_s + SLACK_S, what="outcomes recorded despite the lost connection")
    assert fired, "the connection was never cut"
    assert sorted(receiver.sends().values()) == [1, 1, 1]  # the sends happened once; their outcome was kept
    assert all(row.lease_until is None and row.attempts == 1 for row in claims.rows())


def test_a_renewing_dispatcher_keeps_its_claims_while_a_receiver_is_slow(make_claims: Callable[..., Claims]) -> None:
    claims = make_claims(read_timeout_s=10.0)
    receiver = claims.receiver()
    receiver.default = Answer(200, delay_s=3 * claims.lease_s)  # answers well after the lease would end
    sid = claims.env.subscribe_webhook(receiver)
    claims.owe([sid], 4)
    claims.dispatcher()
    claims.dispatcher()
    eventually(lambda: [r.status for r in claims.rows()] == ["delivered"] * 4, timeout=30,
               what="four slow deliveries")
    assert sorted(receiver.sends().values()) == [1, 1, 1, 1]  # the other dispatcher never took one over


def test_two_dispatchers_never_send_one_delivery_twice(make_claims: Callable[..., Claims]) -> None:
    claims = make_claims(dispatch_batch=7)
    receivers = [claims.receiver(), claims.receiver()]
    for receiver in receivers:
        receiver.default = Answer(200, delay_s=0.01)
    sids = [claims.env.subscribe_webhook(receiver) for receiver in receivers]
    notices = claims.owe(sids, 15, versions=3)
    claims.dispatcher()
    claims.dispatcher()
    eventually(lambda: all(r.status == "delivered" for r in claims.rows()), timeout=60,
               what="every delivery recorded")
    assert len(claims.rows()) == 2 * 15 * 3
    for receiver in receivers:
        assert set(receiver.sends().values()) == {1} and len(receiver.sends()) == 45
        for notice in notices:  # and each subscriber saw every notice's versions in order
            assert [v for n, v in receiver.versions() if n == notice] == [1, 2, 3]


def test_when_recording_keeps_failing_the_leases_run_out_and_the_rows_are_sent_again(
    make_claims: Callable[..., Claims],
) -> None:
    """At-least-once: an outcome that could not be recorded within ``record_retry_s`` is lost, so the
    delivery is sent a second time (same ``webhook-id``) once the unrenewed lease runs out."""
    claims = make_claims(record_retry_s=0.3)
    receiver = claims.receiver()
    sid = claims.env.subscribe_webhook(receiver)
    claims.owe([sid], 1)  # outcomes are recorded as attempts complete: one row, one recording given up
    gave_up = threading.Event()

    class GiveUpWatch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR and "could not record" in record.getMessage():
                gave_up.set()

    watch = GiveUpWatch()
    logging.getLogger("hub.subscriptions.dispatcher").addHandler(watch)
    try:
        with connection_lost(claims.hub.engine, when=lambda s: not gave_up.is_set() and recording_a_success(s),
                             times=10_000) as fired:
            claims.dispatcher()
            eventually(gave_up.is_set, timeout=30, what="the dispatcher giving up recording")
            assert len(fired) > 1  # it did retry before giving up
            eventually(lambda: [r.status for r in claims.rows()] == ["delivered"],
                       timeout=claims.lease_s + SLACK_S, what="the row sent again once its lease ran out")
    finally:
        logging.getLogger("hub.subscriptions.dispatcher").removeHandler(watch)
    assert list(receiver.sends().values()) == [2]
    assert all(row.lease_until is None and row.lease_owner is None for row in claims.rows())


def test_one_subscribers_huge_backlog_does_not_keep_anothers_delivery_from_being_claimed(
    make_claims: Callable[..., Claims],
) -> None:
    """A claim reads a bounded window of due rows; a subscriber whose backlog fills many windows ahead
    of everyone else, and who is at its cap, neither fills the claim nor hides the others' rows."""
    cap = 2
    claims = make_claims(subscription_concurrency=cap)
    busy, quiet = claims.receiver(), claims.receiver()
    busy_sid, quiet_sid = claims.env.subscribe_webhook(busy), claims.env.subscribe_webhook(quiet)
    backlog = 20 * store.WINDOW_PER_CAP * cap * store.CLAIM_PAGES
    claims.owe([busy_sid], backlog)
    claims.owe([quiet_sid], 1)  # due after the whole backlog, in claim order
    lease = timedelta(seconds=60)

    def claim() -> list[tuple[str, int]]:
        with claims.hub.session_factory() as session:
            ids = store.claim_due(session, 5, lease, owner=uuid.uuid4().hex, webhooks=True, webhook_cap=cap)
            session.commit()
            rows = session.execute(select(DeliveryRow.subscription_id, DeliveryRow.id)
                                   .where(DeliveryRow.id.in_(ids))).all()
            return [(sid, did) for sid, did in rows]

    first = claim()
    assert Counter(sid for sid, _ in first) == {busy_sid: cap, quiet_sid: 1}
    assert claim() == []  # the busy one is at its cap and the quiet one has nothing more
    claims.owe([quiet_sid], 1)
    assert [sid for sid, _ in claim()] == [quiet_sid]  # still claimed past the capped backlog
    rows = claims.rows()
    assert sum(1 for r in rows if r.subscription_id == busy_sid and r.lease_until is None) == backlog - cap
