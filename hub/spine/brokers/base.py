"""The small interface every broker implements, and topic matching shared by the embedded one."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from hub.spine.messages import Envelope

__all__ = ["Broker", "BrokerUnavailable", "DeadLetterSink", "MessageHandler", "topic_regex"]

MessageHandler = Callable[[Envelope], object]
DeadLetterSink = Callable[[str, Envelope, str, int], None]


class BrokerUnavailable(Exception):
    """The broker could not take or confirm a publish; the relay keeps the rows and retries."""


class Broker(Protocol):
    def setup(self, bindings: Mapping[str, Sequence[str]]) -> None:
        """Declare one durable queue per consumer group, bound to the given topic keys."""

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Return only once the broker has taken responsibility for every envelope; raise
        :class:`BrokerUnavailable` otherwise. Envelopes with ``target_group`` go to that queue only."""

    def consume(
        self, group: str, handler: MessageHandler, dead_letter: DeadLetterSink, stop: threading.Event
    ) -> None:
        """Deliver the group's messages to ``handler`` until ``stop`` is set. A handler that raises gets
        the message again, up to the delivery limit; then it is dead-lettered."""

    def archive_dead_letters(self, dead_letter: DeadLetterSink, stop: threading.Event) -> None:
        """Move dead-lettered messages from the broker into ``dead_letter`` (no-op if none kept there)."""

    def queue_depths(self, groups: Sequence[str] = ()) -> dict[str, int]:
        """Messages waiting per consumer group: the ones this process declared plus ``groups`` (so an
        API process, which declares nothing, can still report them)."""

    def ping(self) -> bool: ...

    def close(self) -> None: ...


def topic_regex(binding_key: str) -> re.Pattern[str]:
    """AMQP topic semantics: ``*`` is exactly one word, ``#`` zero or more words."""
    parts = binding_key.split(".")
    pattern = ""
    for i, part in enumerate(parts):
        if part == "#":
            if i == 0:
                pattern += r"(?:[^.]+(?:\.[^.]+)*)?"
            else:
                pattern += r"(?:\.[^.]+)*"
            continue
        token = r"[^.]+" if part == "*" else re.escape(part)
        pattern += (r"\." if i > 0 and pattern else "") + token
    return re.compile(f"^{pattern}$")
