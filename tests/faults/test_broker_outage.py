"""RabbitMQ unreachable for several seconds (the proxy between the workers and the broker cut): every
connection drops, reconnects are refused, writes go on; after it returns nothing is missing."""

from __future__ import annotations

import time

import pytest

from tests.support.faults import Lab, assert_promise_kept

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]


def test_a_broker_outage_loses_and_reorders_nothing(lab: Lab) -> None:
    with lab.stream(rate=25, writes=250) as stream:
        time.sleep(2)
        lab.cut_broker()
        time.sleep(5)
        assert lab.amqp_proxy.refused > 0, "no worker tried to reconnect while the broker was away"
        lab.restore_broker()
        assert stream.wait(60), "the publisher did not finish"
    assert_promise_kept(lab)
