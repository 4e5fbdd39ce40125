"""The hub on a database that is unavailable or refuses writes, on each backend: consumers hold their
messages through the outage instead of dead-lettering them, a handler's own failure still becomes a dead
letter, the API answers writes with 503 (never 500) and ``/readyz`` says the database is read-only."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from hub.api.app import create_app
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.organisations import events
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.registry import EVENT_HANDLERS
from hub.spine.audit import record_audit_entry
from hub.spine.db import WriteCheck
from hub.spine.messages import Envelope
from hub.spine.observability.metrics import REGISTRY
from hub.spine.tables import InboxRow
from hub.spine.unit_of_work import AbstractUnitOfWork
from tests.support.api import API
from tests.support.db import count
from tests.support.waiting import eventually

PROBLEM = "application/problem+json"


class Script:
    """What :func:`scripted` raises on its next calls (then it works), and how often it was called."""

    failures: list[BaseException] = []
    calls = 0
    lock = threading.Lock()

    @classmethod
    def reset(cls, failures: list[BaseException]) -> None:
        with cls.lock:
            cls.failures = list(failures)
            cls.calls = 0


def scripted(event: events.OrganisationCreated, uow: AbstractUnitOfWork, envelope: Envelope) -> None:
    with Script.lock:
        Script.calls += 1
        failure = Script.failures.pop(0) if Script.failures else None
    if failure is not None:
        raise failure
    derived = str(uuid.uuid5(uuid.NAMESPACE_URL, "scripted:" + envelope.message_id))
    record_audit_entry(event, uow, dataclasses.replace(envelope, message_id=derived))


def dropped_connection() -> sa_exc.OperationalError:
    return sa_exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"),
                                   connection_invalidated=True)


def no_such_table() -> sa_exc.OperationalError:
    return sa_exc.OperationalError("SELECT * FROM x", {}, sqlite3.OperationalError("no such table: x"))


def scripted_hub(make_hub: Callable[..., Hub]) -> Hub:
    return make_hub(event_handlers={**EVENT_HANDLERS, events.OrganisationCreated: [record_audit_entry, scripted]},
                    group_names={scripted: "scripted"})


def dead_letters(hub: Hub, group: str) -> list[Any]:
    with hub.uow() as uow:
        return list(uow.dead_letters.list(group=group))


def infrastructure_retries(group: str) -> float:
    return REGISTRY.get_sample_value("g2bhub_infrastructure_retries_total", {"group": group}) or 0.0


# -- consumers: an outage is not poison ---------------------------------------------------------------
def test_an_outage_longer_than_the_delivery_limit_dead_letters_nothing(make_hub: Callable[..., Hub]) -> None:
    hub = scripted_hub(make_hub)
    limit = hub.settings.broker.delivery_limit
    Script.reset([dropped_connection() for _ in range(limit + 4)])
    hub.make_worker().start()
    hub.bus.handle(CreateOrganisation(name="Through an outage", kind=OrgKind.AGENCY))

    eventually(lambda: count(hub, InboxRow, InboxRow.consumer_group == "scripted") == 1, timeout=60,
               what="the event applied once the database is back")
    assert Script.calls == limit + 5
    assert dead_letters(hub, "scripted") == []


def test_a_handler_that_keeps_failing_on_a_healthy_system_is_still_dead_lettered(
    make_hub: Callable[..., Hub],
) -> None:
    hub = scripted_hub(make_hub)
    limit = hub.settings.broker.delivery_limit
    # an outage first (not counted), then a bug; and a generic database error the database itself
    # does not confirm (a healthy database answering "no such table") is the handler's own failure
    Script.reset([dropped_connection(), dropped_connection(), no_such_table(),
                  *[ValueError("handler bug") for _ in range(limit + 5)]])
    hub.make_worker().start()
    hub.bus.handle(CreateOrganisation(name="Poison", kind=OrgKind.AGENCY))

    letters = eventually(lambda: dead_letters(hub, "scripted"), timeout=60, what="a dead letter")
    assert len(letters) == 1
    assert letters[0].delivery_count == limit + 1
    assert Script.calls == 2 + limit + 1
    assert count(hub, InboxRow, InboxRow.consumer_group == "scripted") == 0


def test_a_generic_database_error_while_the_database_refuses_writes_is_held(
    make_hub: Callable[..., Hub], monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub = scripted_hub(make_hub)
    limit = hub.settings.broker.delivery_limit
    Script.reset([no_such_table() for _ in range(limit + 3)])  # generic: the worker asks the database
    probes = {"left": limit + 3}

    def health() -> WriteCheck:
        if probes["left"]:
            probes["left"] -= 1
            return WriteCheck("unreachable", "OperationalError")
        return WriteCheck("ok")

    monkeypatch.setattr(hub, "database_health", health)
    hub.make_worker().start()
    hub.bus.handle(CreateOrganisation(name="Through a failover", kind=OrgKind.AGENCY))

    eventually(lambda: count(hub, InboxRow, InboxRow.consumer_group == "scripted") == 1, timeout=60,
               what="the event applied")
    assert dead_letters(hub, "scripted") == []


# -- a database that refuses writes --------------------------------------------------------------------
def _pg_run(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")  # this session writes, whatever the default
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def _pg_drop_other_connections(url: str) -> None:
    """Only this test's throw-away database: the pool reconnects and picks up the new default."""
    _pg_run(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@contextmanager
def read_only(hub: Hub) -> Iterator[None]:
    """Make the hub's database refuse writes from its next connection on, then writable again.
    PostgreSQL: ``default_transaction_read_only`` on the database (what a failover or an operator
    does); SQLite: ``PRAGMA query_only`` on every new connection (SQLITE_READONLY, like a read-only
    file)."""
    engine = hub.engine
    if engine.dialect.name == "postgresql":
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        name = engine.url.database
        _pg_run(url, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        _pg_drop_other_connections(url)
        try:
            yield
        finally:
            # no reconnect forced here: the hub must notice by itself (it drops its pool when a write
            # is refused as read-only)
            _pg_run(url, f'ALTER DATABASE "{name}" SET default_transaction_read_only = off')
        return

    def query_only(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA query_only = ON")

    event.listen(engine, "connect", query_only)
    engine.dispose()
    try:
        yield
    finally:
        event.remove(engine, "connect", query_only)
        engine.dispose()


def test_a_read_only_database_holds_consumed_messages_until_it_takes_writes(make_hub: Callable[..., Hub]) -> None:
    """Messages reach the consumer while the database refuses writes: each is held, retried with
    backoff well past the delivery limit, and applied once the database is writable again. The relay
    and the delivery dispatcher keep their loops through it."""
    hub = make_hub()
    limit = hub.settings.broker.delivery_limit
    worker = hub.make_worker()
    worker.start()
    # straight to the broker, as if relayed just before the database turned read-only
    envelope = dataclasses.replace(
        Envelope.wrap(events.OrganisationCreated(org_id="org-ro", name="Read-only", kind="agency")),
        target_group="audit",
    )
    before = infrastructure_retries("audit")
    with read_only(hub):
        # the in-process broker confirms a publish once it is settled; RabbitMQ once it is queued
        publisher = threading.Thread(target=lambda: _publish_quietly(hub, envelope), daemon=True)
        publisher.start()
        eventually(lambda: infrastructure_retries("audit") - before > limit + 1, timeout=60,
                   what="the consumer holding the message past its delivery limit")
    eventually(lambda: count(hub, InboxRow, InboxRow.message_id == envelope.message_id) == 1, timeout=60,
               what="the held message applied")
    publisher.join(30)
    assert dead_letters(hub, "audit") == []
    loops = [t for t in worker.threads if t.name != "dead-letter-archiver"]  # in-process: none to run
    assert {"outbox-relay", "delivery-dispatcher"} <= {t.name for t in loops}
    assert all(t.is_alive() for t in loops), [t.name for t in loops if not t.is_alive()]
    # and the relay took up its work again: a new event goes all the way through
    hub.bus.handle(CreateOrganisation(name="After", kind=OrgKind.AGENCY))
    eventually(lambda: count(hub, InboxRow, InboxRow.consumer_group == "audit") >= 3, timeout=60,
               what="events after the outage applied")


def _publish_quietly(hub: Hub, envelope: Envelope) -> None:
    with contextlib.suppress(Exception):  # the in-process broker may time out waiting; the message stays
        hub.broker.publish([envelope])


@pytest.fixture
def api(make_hub: Callable[..., Hub]) -> Iterator[tuple[Hub, TestClient, dict[str, str]]]:
    hub = make_hub()
    _, issued = hub.bus.handle(CreateOrganisation(name="Hub operations", kind=OrgKind.OPERATOR))
    with TestClient(create_app(hub=hub)) as client:
        yield hub, client, {"Authorization": f"Bearer {issued.plaintext}"}


def test_writes_answer_503_and_readiness_says_read_only_while_the_database_refuses_writes(
    api: tuple[Hub, TestClient, dict[str, str]],
) -> None:
    hub, client, auth = api
    with read_only(hub):
        refused = client.post(f"{API}/orgs", json={"name": "Blocked", "kind": "agency"}, headers=auth)
        ready = client.get("/readyz")
        assert client.get("/healthz").status_code == 200  # alive: no restart for a read-only database
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"] == PROBLEM
    assert int(refused.headers["retry-after"]) > 0
    problem = refused.json()
    assert problem["type"].endswith("/unavailable") and problem["status"] == 503
    assert "no writes" in problem["detail"]
    assert ready.status_code == 503
    database = ready.json()["checks"]["database"]
    assert database["status"] == "fail" and database["state"] == "read-only"

    assert client.post(f"{API}/orgs", json={"name": "Accepted", "kind": "agency"}, headers=auth).status_code == 201
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["database"]["state"] == "ok"


@pytest.mark.parametrize("backend", ["sqlite-inprocess"], indirect=True)
def test_readiness_reports_a_sqlite_database_locked_by_another_writer(
    api: tuple[Hub, TestClient, dict[str, str]],
) -> None:
    hub, client, _ = api
    path = hub.engine.url.database
    assert path
    holder = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        holder.execute("BEGIN IMMEDIATE")
        ready = client.get("/readyz")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert ready.status_code == 503
    database = ready.json()["checks"]["database"]
    assert database["state"] == "unreachable" and "lock" in database["detail"]
    assert client.get("/readyz").status_code == 200


def test_a_real_bug_in_a_write_is_still_a_500(api: tuple[Hub, TestClient, dict[str, str]],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the infrastructure's failures become 503: an integrity error nobody expected is a bug."""
    hub, client, auth = api

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key value violates unique constraint"))

    monkeypatch.setattr(hub.bus, "handle", broken)
    response = client.post(f"{API}/orgs", json={"name": "Bug", "kind": "agency"}, headers=auth)
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM


# -- a database that cannot be reached -----------------------------------------------------------------
class CuttableProxy:
    """A TCP proxy between the hub and PostgreSQL that the test can cut (live connections dropped, new
    ones closed at once: "server closed the connection unexpectedly") and restore."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.live: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.live += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open = False
        with self.lock:
            live, self.live = self.live, []
        for conn in live:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.parametrize("backend", ["postgres-rabbitmq"], indirect=True)
def test_an_unreachable_database_holds_messages_and_answers_503(
    settings_factory: Callable[..., Settings], postgres_url: str,
) -> None:
    server = make_url(postgres_url)
    proxy = CuttableProxy(server.host or "127.0.0.1", server.port or 5432)
    proxied = server.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    hub = bootstrap(settings_factory(database={"url": proxied, "connect_timeout_s": 2}), migrate=True)
    try:
        limit = hub.settings.broker.delivery_limit
        _, issued = hub.bus.handle(CreateOrganisation(name="Hub operations", kind=OrgKind.OPERATOR))
        auth = {"Authorization": f"Bearer {issued.plaintext}"}
        worker = hub.make_worker()
        worker.start()
        eventually(lambda: count(hub, InboxRow, InboxRow.consumer_group == "audit") >= 1, timeout=30,
                   what="the worker consuming")
        envelope = dataclasses.replace(
            Envelope.wrap(events.OrganisationCreated(org_id="org-down", name="Down", kind="agency")),
            target_group="audit",
        )
        before = infrastructure_retries("audit")
        with TestClient(create_app(hub=hub)) as client:
            proxy.cut()
            hub.broker.publish([envelope])  # relayed just before the outage
            eventually(lambda: infrastructure_retries("audit") - before > limit + 1, timeout=60,
                       what="the consumer holding the message past its delivery limit")
            refused = client.post(f"{API}/orgs", json={"name": "Blocked", "kind": "agency"}, headers=auth)
            ready = client.get("/readyz")
            proxy.restore()
            eventually(lambda: count(hub, InboxRow, InboxRow.message_id == envelope.message_id) == 1, timeout=60,
                       what="the held message applied after the outage")
            assert client.get("/readyz").status_code == 200
        assert refused.status_code == 503 and refused.headers["content-type"] == PROBLEM, refused.text
        assert "retry-after" in refused.headers
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"]["state"] == "unreachable"
        assert dead_letters(hub, "audit") == []
        assert all(t.is_alive() for t in worker.threads)
    finally:
        hub.close()
        proxy.close()
