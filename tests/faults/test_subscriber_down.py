"""A subscriber answering 503 past several retries: its versions wait, in order, and all arrive once
it is back; the other subscriber is not held up; nothing is given up on."""

from __future__ import annotations

import time

import pytest

from tests.support.faults import Lab, assert_promise_kept
from tests.support.waiting import eventually

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]


def test_a_subscriber_down_past_several_retries_gets_everything_in_order(lab: Lab) -> None:
    with lab.stream(rate=25, writes=200) as stream:
        time.sleep(1)
        lab.subscriber_down("everything")
        # Down until some delivery has failed past the attempts at 0, 5 ms, 0.3 s and 1.8 s of the
        # time-scaled schedule: waited for, not slept, so a loaded machine cannot cut the outage short.
        eventually(lambda: lab.most_attempts() >= 5, timeout=60, interval=0.2,
                   what="a delivery past four failed attempts")
        lab.subscriber_up("everything")
        assert stream.wait(60), "the publisher did not finish"
    verdict = assert_promise_kept(lab)
    down = next(t for t in verdict.tallies if t.subscription == "everything")
    assert down.refused > 0, "the subscriber was never called while it was down"
    assert lab.most_attempts() >= 5, "no delivery went past four failed attempts"
