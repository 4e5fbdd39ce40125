"""The embedded broker: topic routing, one queue per consumer group, competing consumers, redelivery
up to a limit and dead-lettering, all in memory.

It is durable because the outbox is: :meth:`publish` returns only once every queue the message was
routed to has settled it (applied, skipped as duplicate, or dead-lettered). Until then the relay leaves
the outbox row unpublished, so a crash loses nothing; the inbox makes the re-delivery harmless."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hub.spine.brokers.base import (
    BatchHandler,
    BrokerUnavailable,
    DeadLetterSink,
    InfrastructureUnavailable,
    MessageHandler,
    topic_regex,
    unavailable_backoff,
)
from hub.spine.messages import Envelope
from hub.spine.retry import Backoff

__all__ = ["InProcessBroker"]

log = logging.getLogger(__name__)


@dataclass
class _Ticket:
    """Settles when every queue holding a copy of one publish has finished with it."""

    remaining: int
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def settle(self) -> None:
        with self.lock:
            self.remaining -= 1
            if self.remaining <= 0:
                self.done.set()


@dataclass
class _Delivery:
    envelope: Envelope
    tickets: list[_Ticket]
    attempts: int = 0


class _Queue:
    def __init__(self, name: str, patterns: list[re.Pattern[str]]) -> None:
        self.name = name
        self.patterns = patterns
        self.items: deque[_Delivery] = deque()
        self.by_id: dict[str, _Delivery] = {}  # queued or in flight, by message id
        self.cond = threading.Condition()

    def routes(self, key: str) -> bool:
        return any(p.match(key) for p in self.patterns)


UNAVAILABLE_BACKOFF = unavailable_backoff(5.0)


class InProcessBroker:
    def __init__(self, delivery_limit: int = 5, confirm_timeout_s: float = 30.0, retry_delay_s: float = 0.0,
                 unavailable_backoff: Backoff = UNAVAILABLE_BACKOFF, batch_limit: int = 32) -> None:
        self.delivery_limit = delivery_limit
        self.batch_limit = max(1, batch_limit)  # at most this many messages per batch, like a prefetch
        self.confirm_timeout_s = confirm_timeout_s
        self.retry_delay_s = retry_delay_s
        self.unavailable_backoff = unavailable_backoff
        self._queues: dict[str, _Queue] = {}
        self._lock = threading.Lock()

    def setup(self, bindings: Mapping[str, Sequence[str]]) -> None:
        with self._lock:
            for group, keys in bindings.items():
                patterns = [topic_regex(k) for k in keys]
                if group in self._queues:
                    self._queues[group].patterns = patterns
                else:
                    self._queues[group] = _Queue(group, patterns)

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        tickets: list[_Ticket] = []
        for env in envelopes:
            if env.target_group is not None:
                queue = self._queues.get(env.target_group)
                targets = [queue] if queue else []
            else:
                targets = [q for q in self._queues.values() if q.routes(env.routing_key)]
            if not targets:
                continue
            ticket = _Ticket(remaining=len(targets))
            tickets.append(ticket)
            for queue in targets:
                with queue.cond:
                    existing = queue.by_id.get(env.message_id)
                    if existing is not None:  # a re-publish of a copy still queued: wait on that one
                        existing.tickets.append(ticket)
                        continue
                    delivery = _Delivery(envelope=env, tickets=[ticket])
                    queue.by_id[env.message_id] = delivery
                    queue.items.append(delivery)
                    queue.cond.notify()
        deadline = time.monotonic() + self.confirm_timeout_s
        for ticket in tickets:
            if not ticket.done.wait(max(0.0, deadline - time.monotonic())):
                raise BrokerUnavailable("in-process consumers did not settle the batch in time")

    def consume(
        self, group: str, handler: MessageHandler, dead_letter: DeadLetterSink, stop: threading.Event,
        batch: BatchHandler | None = None,
    ) -> None:
        queue = self._queues[group]
        limit = self.batch_limit if batch is not None else 1
        while not stop.is_set():
            with queue.cond:
                if not queue.items:
                    queue.cond.wait(timeout=0.1)
                    continue
                taken = [queue.items.popleft() for _ in range(min(limit, len(queue.items)))]
            if batch is None or len(taken) == 1:
                self._deliver(queue, taken[0], handler, dead_letter, stop)
            else:
                self._deliver_batch(queue, taken, handler, batch, dead_letter, stop)

    def _deliver_batch(self, queue: _Queue, taken: list[_Delivery], handler: MessageHandler,
                       batch: BatchHandler, dead_letter: DeadLetterSink, stop: threading.Event) -> None:
        """Several messages in one call of ``batch``, all settled once it returns. While it reports the
        infrastructure unavailable the batch is held (no attempt counted); any other failure means
        nothing of it was kept, and each message goes through :meth:`_deliver` alone."""
        group = queue.name
        outage = 0
        while True:
            try:
                batch([d.envelope for d in taken])
            except InfrastructureUnavailable as exc:
                outage += 1
                delay = self.unavailable_backoff.delay(outage)
                log.warning("database or broker unavailable; holding the batch",
                            extra={"group": group, "messages": len(taken),
                                   "error": repr(exc.__cause__ or exc), "retry_in_s": round(delay, 3)})
                if stop.wait(delay):
                    self._requeue_front(queue, taken)
                    return
                continue
            except Exception as exc:
                log.info("batch failed; delivering its messages one at a time",
                         extra={"group": group, "messages": len(taken), "error": repr(exc)})
                for i, delivery in enumerate(taken):
                    if stop.is_set():
                        self._requeue_front(queue, taken[i:])
                        return
                    if self._deliver(queue, delivery, handler, dead_letter, stop, behind=taken[i + 1:]):
                        return  # stopped while holding it: it and the rest are back at the head
                return
            for delivery in taken:
                self._settle(queue, delivery)
            return

    def _deliver(self, queue: _Queue, delivery: _Delivery, handler: MessageHandler, dead_letter: DeadLetterSink,
                 stop: threading.Event, behind: Sequence[_Delivery] = ()) -> bool:
        """One message until it is settled, back in the queue for a later attempt, or (on stop) back
        at the head of the queue, followed by ``behind`` (the rest of its batch). While the handler
        reports the infrastructure unavailable, the message stays with this consumer, ahead of
        everything behind it, and no attempt is counted. True when stopped with the message held."""
        group = queue.name
        outage = 0  # consecutive "unavailable" failures of this message
        while True:
            try:
                handler(delivery.envelope)
            except InfrastructureUnavailable as exc:
                outage += 1
                delay = self.unavailable_backoff.delay(outage)
                log.warning("database or broker unavailable; holding the message",
                            extra={"group": group, "message_id": delivery.envelope.message_id,
                                   "error": repr(exc.__cause__ or exc), "retry_in_s": round(delay, 3)})
                if stop.wait(delay):
                    self._requeue_front(queue, [delivery, *behind])
                    return True
                continue
            except Exception as exc:
                delivery.attempts += 1
                log.warning(
                    "handler failed",
                    extra={"group": group, "message_id": delivery.envelope.message_id,
                           "attempt": delivery.attempts, "error": repr(exc)},
                )
                # Like RabbitMQ's x-delivery-limit, the limit counts redeliveries: a message is
                # tried delivery_limit + 1 times before it is dead-lettered.
                if delivery.attempts > self.delivery_limit:
                    return self._dead_letter(queue, delivery, dead_letter, exc, stop, behind)
                if self.retry_delay_s:
                    stop.wait(self.retry_delay_s)
                self._requeue(queue, delivery)
                return False
            self._settle(queue, delivery)
            return False

    def _dead_letter(self, queue: _Queue, delivery: _Delivery, dead_letter: DeadLetterSink, exc: Exception,
                     stop: threading.Event, behind: Sequence[_Delivery] = ()) -> bool:
        reason = f"delivery limit {self.delivery_limit} exceeded; last error: {exc!r}"
        outage = 0
        while True:
            try:
                dead_letter(queue.name, delivery.envelope, reason, delivery.attempts)
            except InfrastructureUnavailable:
                outage += 1
                if stop.wait(self.unavailable_backoff.delay(outage)):
                    self._requeue_front(queue, [delivery, *behind])
                    return True
                continue
            except Exception:
                log.exception("could not store dead letter; will redeliver")
                self._requeue(queue, delivery)
                return False
            self._settle(queue, delivery)
            return False

    @staticmethod
    def _requeue(queue: _Queue, delivery: _Delivery) -> None:
        with queue.cond:
            queue.items.append(delivery)
            queue.cond.notify()

    @staticmethod
    def _requeue_front(queue: _Queue, deliveries: Sequence[_Delivery]) -> None:
        """Put ``deliveries`` back at the head of the queue, in their order (a stopping consumer's)."""
        if not deliveries:
            return
        with queue.cond:
            queue.items.extendleft(reversed(deliveries))
            queue.cond.notify_all()

    @staticmethod
    def _settle(queue: _Queue, delivery: _Delivery) -> None:
        with queue.cond:
            queue.by_id.pop(delivery.envelope.message_id, None)
        for ticket in delivery.tickets:
            ticket.settle()

    def archive_dead_letters(self, dead_letter: DeadLetterSink, stop: threading.Event) -> None:
        return None  # dead letters go straight to the sink in consume()

    def queue_depths(self, groups: Sequence[str] = ()) -> dict[str, int]:
        return {name: len(q.by_id) for name, q in self._queues.items()}

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        return None
