"""When to try a delivery again, and what a receiver's answer means."""

from __future__ import annotations

import random

from connectors.rest import parse_retry_after
from hub.spine.retry import Jitter, Schedule
from hub.subscriptions.config import SyndicationSettings

__all__ = ["delivery_schedule", "is_success", "next_delay_s", "parse_retry_after"]


def is_success(status: int) -> bool:
    """Only 2xx: a redirect is not followed (SSRF) and so is not a delivery."""
    return 200 <= status < 300


def delivery_schedule(settings: SyndicationSettings) -> Schedule:
    """The configured (Standard Webhooks) schedule, compressed by ``time_scale``. Jitter spreads a
    burst of failures so a recovering receiver is not hit by all retries at once."""
    return Schedule(tuple(s * settings.time_scale for s in settings.retry_schedule_s),
                    Jitter.around(settings.jitter))


def next_delay_s(
    attempts_made: int,
    settings: SyndicationSettings,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Delay before the next attempt after ``attempts_made`` attempts; None once the schedule is
    spent (the delivery is dead). ``Retry-After`` can only lengthen the wait (capped), never shorten it."""
    delay = delivery_schedule(settings).delay(attempts_made, rng)
    if delay is not None and retry_after_s is not None:
        delay = max(delay, min(retry_after_s, settings.max_retry_after_s))
    return delay
