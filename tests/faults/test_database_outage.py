"""The database taken from the workers: their sessions terminated (``pg_terminate_backend``), then
PostgreSQL unreachable for several seconds while a backlog of events sits on the broker. An unavailable
database is not a poison message: nothing may become a dead letter, and every version arrives."""

from __future__ import annotations

import time

import pytest

from tests.support.faults import Lab, assert_promise_kept
from tests.support.waiting import eventually

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]


def test_terminated_sessions_and_a_database_outage_lose_and_dead_letter_nothing(lab: Lab) -> None:
    with lab.stream(rate=25) as stream:
        time.sleep(2)
        assert lab.terminate_worker_sessions() > 0
        time.sleep(2)
        lab.terminate_worker_sessions()
        time.sleep(1)
        # a backlog on the broker: events relayed but not yet matched when the database goes away
        for _ in range(150):
            lab.publish()
        eventually(lambda: lab.unrelayed() < 10, timeout=30, what="the burst relayed to the broker")
        lab.cut_database()
        time.sleep(5)
        assert lab.pg_proxy.refused > 0, "no worker tried to reconnect while the database was away"
        lab.restore_database()
        time.sleep(2)
        stream.stop()
    assert_promise_kept(lab)
