"""The small interface every broker implements, and topic matching shared by the embedded one."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from hub.spine.messages import Envelope
from hub.spine.retry import Backoff, Jitter

__all__ = ["BatchHandler", "Broker", "BrokerUnavailable", "DeadLetterSink", "InfrastructureUnavailable",
           "MessageHandler", "topic_regex", "unavailable_backoff"]

MessageHandler = Callable[[Envelope], object]
# Applies several messages at once, all or nothing (:meth:`hub.spine.bus.MessageBus.consume_batch`).
BatchHandler = Callable[[Sequence[Envelope]], object]
DeadLetterSink = Callable[[str, Envelope, str, int], None]


class BrokerUnavailable(Exception):
    """The broker could not take or confirm a publish; the relay keeps the rows and retries."""


class InfrastructureUnavailable(Exception):
    """Raised by a consumer's handler (or dead-letter sink) when it failed because the database or the
    broker is unavailable, not because of the message. The broker keeps the message where it is, waits
    (backing off) and calls the handler again, without counting the attempt against the delivery
    limit: an outage must not turn every message in flight into a dead letter."""


def unavailable_backoff(max_s: float) -> Backoff:
    """How long a consumer holds a message between attempts while the infrastructure is unavailable:
    from a tenth of a second, doubling up to ``max_s`` (the broker's ``reconnect_max_backoff_s``),
    jittered so the consumers that met one outage do not all return in the same instant."""
    return Backoff(0.1, max(0.1, max_s), jitter=Jitter(0.5, 1.0))


class Broker(Protocol):
    def setup(self, bindings: Mapping[str, Sequence[str]]) -> None:
        """Declare one durable queue per consumer group, bound to the given topic keys."""

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Return only once the broker has taken responsibility for every envelope; raise
        :class:`BrokerUnavailable` otherwise. Envelopes with ``target_group`` go to that queue only."""

    def consume(
        self, group: str, handler: MessageHandler, dead_letter: DeadLetterSink, stop: threading.Event,
        batch: BatchHandler | None = None,
    ) -> None:
        """Deliver the group's messages to ``handler`` until ``stop`` is set. A handler that raises gets
        the message again, up to the delivery limit; then it is dead-lettered. A handler (or sink) that
        raises :class:`InfrastructureUnavailable` gets the same message again after a backoff, and that
        attempt does not count.

        With ``batch``, the messages waiting (up to the prefetch) go to ``batch`` together and are
        acknowledged together once it returns. If it raises :class:`InfrastructureUnavailable` the
        whole batch is held and retried the same way; if it raises anything else, nothing of it was
        kept, and each message of the batch goes to ``handler`` on its own, as above (so a poison
        message is retried and dead-lettered alone, and the batch attempt is not counted)."""

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
