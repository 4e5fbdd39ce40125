"""The one backoff policy: exponential growth, caps, jitter ranges and the fixed (Standard Webhooks)
schedule, as each caller configures it, and the relay's loop waiting by it."""

from __future__ import annotations

import ast
import random
import subprocess
import sys
import threading
from typing import Any

from hub.spine.brokers.inprocess import InProcessBroker
from hub.spine.relay import OutboxRelay
from hub.spine.retry import NO_JITTER, Backoff, Jitter, Schedule
from hub.subscriptions.config import STANDARD_RETRY_SCHEDULE_S, SyndicationSettings
from hub.subscriptions.retry import delivery_schedule
from hub.suppliers.config import BackoffSettings
from hub.suppliers.recording import fetch_backoff


def test_backoff_grows_exponentially_and_caps() -> None:
    plain = Backoff(initial_s=30, max_s=300)
    assert [plain.delay(n) for n in range(1, 7)] == [30, 60, 120, 240, 300, 300]
    assert Backoff(initial_s=1, max_s=100, multiplier=3).delay(3) == 9
    assert plain.delay(10_000) == 300  # an overflowing exponent is the cap, not an error


def test_backoff_without_jitter_draws_nothing() -> None:
    class NoDraws(random.Random):
        def random(self) -> float:
            raise AssertionError("no jitter configured, yet a number was drawn")

    assert Backoff(1, 10, jitter=NO_JITTER).delay(2, NoDraws()) == 2


def test_proportional_jitter_stays_within_its_ratio() -> None:
    rng = random.Random(1)
    jittered = {Backoff(30, 300, jitter=Jitter.around(0.2)).delay(3, rng) for _ in range(200)}
    assert len(jittered) > 150 and all(96 <= d <= 144 for d in jittered)
    assert min(jittered) < 105 and max(jittered) > 135  # spread over the range, not huddled
    capped = {Backoff(30, 300, jitter=Jitter.around(0.2)).delay(9, rng) for _ in range(200)}
    assert all(240 <= d <= 360 for d in capped)  # the jitter applies to the capped delay


def test_equal_jitter_waits_between_half_and_all_of_the_delay() -> None:
    rng = random.Random(2)
    policy = Backoff(1, 30, jitter=Jitter(0.5, 1.0))
    delays = [policy.delay(4, rng) for _ in range(200)]
    assert all(4 <= d <= 8 for d in delays) and min(delays) < 4.5 and max(delays) > 7.5


def test_added_jitter_only_lengthens_by_at_most_its_seconds() -> None:
    rng = random.Random(3)
    policy = Backoff(0.5, 1.5, jitter=Jitter(extra_s=0.2))
    delays = [policy.delay(5, rng) for _ in range(200)]
    assert all(1.5 <= d <= 1.7 for d in delays) and max(delays) > 1.6


def test_a_delay_is_never_negative() -> None:
    assert Backoff(1, 10, jitter=Jitter(-3.0, -2.0)).delay(1, random.Random(4)) == 0.0


def test_schedule_gives_each_delay_then_gives_up() -> None:
    schedule = Schedule((0, 5, 300))
    assert [schedule.delay(n) for n in range(3)] == [0, 5, 300]
    assert schedule.delay(3) is None and schedule.delay(-1) is None


def test_the_delivery_schedule_is_standard_webhooks_compressed_and_jittered() -> None:
    assert delivery_schedule(SyndicationSettings(jitter=0)).delays_s == STANDARD_RETRY_SCHEDULE_S
    fast = delivery_schedule(SyndicationSettings(time_scale=0.001, jitter=0.1))
    rng = random.Random(5)
    for attempts, base in enumerate(STANDARD_RETRY_SCHEDULE_S):
        delay = fast.delay(attempts, rng)
        assert delay is not None and base * 0.001 * 0.9 <= delay <= base * 0.001 * 1.1


def test_supplier_fetch_backoff_as_configured() -> None:
    exact = fetch_backoff(BackoffSettings(initial_s=30, multiplier=2, max_s=300, jitter_ratio=0))
    assert [exact.delay(n) for n in range(1, 7)] == [30, 60, 120, 240, 300, 300]
    rng = random.Random(6)
    jittered = {fetch_backoff(BackoffSettings(initial_s=30, max_s=300)).delay(3, rng) for _ in range(50)}
    assert len(jittered) > 40 and all(96 <= d <= 144 for d in jittered)  # the default ±20 %


class _RecordingStop(threading.Event):
    """A stop event that records each wait and stops the loop after ``limit`` of them."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.waits: list[float] = []
        self.limit = limit

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(float(timeout or 0))
        if len(self.waits) >= self.limit:
            self.set()
        return self.is_set()


def test_the_relay_backs_off_while_failures_last() -> None:
    def database_down() -> Any:
        raise ConnectionError("database unreachable")

    relay = OutboxRelay(database_down, InProcessBroker(), poll_interval_s=0.2, max_backoff_s=5)  # type: ignore[arg-type]
    stop = _RecordingStop(limit=7)
    relay.run_forever(stop)
    assert stop.waits == [0.5, 1, 2, 4, 5, 5, 5]


def test_the_policy_module_pulls_in_nothing_but_the_standard_library() -> None:
    """``connectors`` imports it: it must not drag the hub (or SQLAlchemy, pika, …) in with it."""
    code = "import sys; before = set(sys.modules); import hub.spine.retry; print(sorted(set(sys.modules) - before))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    outside = [m for m in ast.literal_eval(loaded) if m.split(".")[0] not in sys.stdlib_module_names]
    assert outside == ["hub", "hub.spine", "hub.spine.retry"]
