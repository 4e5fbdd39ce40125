"""Competing workers, one paused and one killed mid-stream: no version lost, duplicated in effect or
reordered, whichever worker took which event or delivery."""

from __future__ import annotations

import time

import pytest

from tests.support.faults import Lab, assert_promise_kept
from tests.support.receiver import Answer

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]


def test_a_paused_worker_and_a_killed_worker_lose_and_reorder_nothing(lab: Lab) -> None:
    with lab.stream(rate=25, writes=250) as stream:
        time.sleep(2)
        lab.workers[0].pause()  # holds the events it prefetched while the other worker carries on
        time.sleep(4)
        lab.workers[0].resume()
        time.sleep(1)
        for name in lab.receivers:  # slow answers, so the killed worker dies holding claimed deliveries
            lab.answer(name, Answer(delay_s=0.3))
        time.sleep(1)
        lab.workers[1].kill()
        for name in lab.receivers:
            lab.answer(name, Answer())
        time.sleep(1)
        lab.workers[1].start()
        assert stream.wait(60), "the publisher did not finish"
    assert_promise_kept(lab)
