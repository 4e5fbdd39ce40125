"""When to try a delivery again, and what a receiver's answer means."""

from __future__ import annotations

import random

from connectors.rest import parse_retry_after
from hub.subscriptions.config import SyndicationSettings

__all__ = ["is_success", "next_delay_s", "parse_retry_after"]


def is_success(status: int) -> bool:
    """Only 2xx: a redirect is not followed (SSRF) and so is not a delivery."""
    return 200 <= status < 300


def next_delay_s(
    attempts_made: int,
    settings: SyndicationSettings,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Delay before the next attempt after ``attempts_made`` attempts; None once the schedule is
    spent (the delivery is dead). Jitter spreads a burst of failures so a recovering receiver is not
    hit by all retries at once; ``Retry-After`` can only lengthen the wait (capped), never shorten it."""
    schedule = settings.retry_schedule_s
    if attempts_made >= len(schedule):
        return None
    base = schedule[attempts_made] * settings.time_scale
    spread = (rng or random).uniform(-settings.jitter, settings.jitter)
    delay = max(0.0, base * (1 + spread))
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, settings.max_retry_after_s))
    return delay
