"""The relay is woken by commits, not only by its poll: with a poll interval of a minute, a committed
event is still handled long before the minute is up — through the in-process signal for a writer in the
relay's process, and on PostgreSQL through NOTIFY/LISTEN for a writer elsewhere, also after the
listener's connection was cut."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import text

from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.spine import outbox_signal
from hub.spine.tables import AuditRow
from tests.support.db import count
from tests.support.waiting import eventually

POLL_S = 60.0
WITHIN_S = 30.0  # well inside one poll interval: only a wake-up explains the event arriving in time


@pytest.fixture
def hubs(settings_factory: Callable[..., Settings]) -> Iterator[Callable[[], Hub]]:
    """Hubs on one database and broker namespace, each with its own engine (like separate processes)."""
    settings = settings_factory(relay={"poll_interval_s": POLL_S})
    made: list[Hub] = []

    def make() -> Hub:
        hub = bootstrap(settings, migrate=not made)
        made.append(hub)
        return hub

    yield make
    for hub in made:
        hub.close()


def create_and_wait(writer: Hub, reader: Hub, name: str) -> None:
    before = count(reader, AuditRow)
    writer.bus.handle(CreateOrganisation(name=name, kind=OrgKind.AGENCY))
    eventually(lambda: count(reader, AuditRow) == before + 2, timeout=WITHIN_S, what=f"the events of {name}")


def test_a_commit_wakes_the_relay_of_its_process(hubs: Callable[[], Hub]) -> None:
    hub = hubs()
    hub.make_worker().start()
    # The relay's first pass runs at start; every later event waits on a wake-up (or a minute).
    create_and_wait(hub, hub, "First")
    for i in range(3):
        create_and_wait(hub, hub, f"Next {i}")


@pytest.mark.parametrize("backend", ["postgres-rabbitmq"], indirect=True)
def test_a_commit_in_another_process_wakes_the_relay_through_notify(hubs: Callable[[], Hub]) -> None:
    worker_side = hubs()
    api_side = hubs()  # its own engine: its commits reach the worker's relay only through PostgreSQL
    worker_side.make_worker().start()
    create_and_wait(worker_side, worker_side, "First")
    create_and_wait(api_side, worker_side, "From elsewhere")

    # Cut the listener's connection: it reconnects (and the relay runs once on reconnecting).
    def listener_pids() -> list[int]:
        with worker_side.engine.connect() as connection:
            return list(connection.scalars(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = :listen"),
                {"listen": f"LISTEN {outbox_signal.CHANNEL}"}))

    pids = eventually(listener_pids, what="the relay's listening connection")
    with worker_side.engine.connect() as connection:
        for pid in pids:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    eventually(lambda: listener_pids() and listener_pids() != pids, timeout=WITHIN_S, what="the listener back")
    create_and_wait(api_side, worker_side, "After the cut")
