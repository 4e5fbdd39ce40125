"""The consuming side: a reconnecting loop on its own BlockingConnection (pika connections are not
thread-safe, so every consumer thread owns one), the group consumer and the dead-letter archiver."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from hub.spine.brokers.base import (
    BatchHandler,
    DeadLetterSink,
    InfrastructureUnavailable,
    MessageHandler,
    unavailable_backoff,
)
from hub.spine.messages import Envelope
from hub.spine.retry import Backoff, Jitter
from hub.spine.settings import BrokerSettings

__all__ = ["dead_letter_details", "hold_while_unavailable", "run_consumer", "subscribe_archiver",
           "subscribe_group"]

log = logging.getLogger(__name__)

# Starts consuming on a fresh channel; may return what to run after each round of deliveries (a
# batching consumer applies what the round brought).
Subscribe = Callable[[BlockingChannel], Callable[[], None] | None]
POLL_S = 0.5  # how often a consumer looks at its stop event


def run_consumer(settings: BrokerSettings, parameters: pika.ConnectionParameters, subscribe: Subscribe,
                 stop: threading.Event, name: str) -> None:
    """Consume until ``stop`` is set; on any broker or connection failure, wait (exponential backoff
    with jitter, capped at ``reconnect_max_backoff_s``) and start over on a new connection. Messages
    left unacked by a dropped connection go back to the queue: the inbox makes the rerun harmless."""
    # "Equal jitter": between half and all of the doubled delay, so consumers that lost one broker
    # together do not all reconnect in the same instant.
    backoff = Backoff(max(settings.retry_delay_s, 0.1), settings.reconnect_max_backoff_s, jitter=Jitter(0.5, 1.0))
    failures = 0  # in a row
    while not stop.is_set():
        connection: pika.BlockingConnection | None = None
        try:
            connection = pika.BlockingConnection(parameters)
            channel = connection.channel()
            channel.basic_qos(prefetch_count=settings.prefetch)
            after_round = subscribe(channel)
            failures = 0
            log.info("consumer connected", extra={"consumer": name})
            while not stop.is_set():
                connection.process_data_events(time_limit=POLL_S)
                if after_round is not None:
                    after_round()
        except Exception as exc:  # every failure means: reconnect later
            if stop.is_set():
                break
            failures += 1
            delay = backoff.delay(failures)
            level = logging.WARNING if isinstance(exc, pika.exceptions.AMQPError) else logging.ERROR
            log.log(level, "consumer lost its connection; reconnecting",
                    extra={"consumer": name, "error": repr(exc), "retry_in_s": round(delay, 3)},
                    exc_info=level == logging.ERROR)
            stop.wait(delay)
        finally:
            if connection is not None and connection.is_open:
                try:
                    connection.close()
                except Exception:  # closing a broken connection may fail too
                    log.debug("error closing consumer connection", exc_info=True)


def hold_while_unavailable(channel: BlockingChannel, attempt: Callable[[], object], backoff: Backoff,
                           stop: threading.Event, what: str) -> bool:
    """Run ``attempt`` until it does not raise :class:`InfrastructureUnavailable`; True once it has
    returned, False if ``stop`` was set first (the message stays unacked; closing the connection
    returns it). Any other exception propagates.

    The message is neither nacked nor requeued meanwhile: a quorum queue counts every return against
    ``x-delivery-limit`` (on RabbitMQ 3.x even a return on connection loss), so an outage answered
    with nacks would dead-letter every message in flight. The wait runs on ``connection.sleep``,
    which keeps heartbeats flowing (pika does not dispatch other deliveries from inside a callback;
    they wait in the prefetch buffer, in order)."""
    outage = 0
    while True:
        try:
            attempt()
            return True
        except InfrastructureUnavailable as exc:
            outage += 1
            delay = backoff.delay(outage)
            log.warning("database or broker unavailable; holding the message",
                        extra={"consumer": what, "error": repr(exc.__cause__ or exc), "retry_in_s": round(delay, 3)})
            deadline = time.monotonic() + delay
            while not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                channel.connection.sleep(min(POLL_S, remaining))
            if stop.is_set():
                return False


def subscribe_group(queue: str, group: str, handler: MessageHandler, backoff: Backoff | None = None,
                    stop: threading.Event | None = None, batch: BatchHandler | None = None) -> Subscribe:
    """Handler returns → ack. Handler raises → nack with requeue: the quorum queue counts the
    delivery and dead-letters the message at ``x-delivery-limit``. Handler raises
    :class:`InfrastructureUnavailable` → the message is held and the handler retried in place, which
    costs no delivery (:func:`hold_while_unavailable`). A body that is not an envelope can never
    succeed, so it is rejected straight to the dead-letter queue.

    With ``batch``, the deliveries of one round (at most the prefetch) go to ``batch`` together and
    one ``basic.ack`` with ``multiple`` settles them all. A batch held while the infrastructure is
    unavailable keeps its place (nothing is nacked); a batch that fails otherwise kept nothing, and its
    messages go through ``handler`` one at a time, in order, as above."""
    hold_backoff = backoff or unavailable_backoff(30.0)
    stopping = stop or threading.Event()

    def deliver_one(channel: BlockingChannel, tag: int, envelope: Envelope, properties: BasicProperties) -> bool:
        """False if stopping during an outage: unacked, the broker gives it to the next consumer."""
        try:
            if not hold_while_unavailable(channel, lambda: handler(envelope), hold_backoff, stopping,
                                          f"group:{group}"):
                return False
        except Exception as exc:  # the broker decides between retry and dead letter
            log.warning("handler failed; message goes back to the queue",
                        extra={"group": group, "message_id": envelope.message_id, "error": repr(exc),
                               "deliveries_before": (properties.headers or {}).get("x-delivery-count", 0)})
            channel.basic_nack(tag, requeue=True)
            return True
        channel.basic_ack(tag)
        return True

    def readable(channel: BlockingChannel, method: Basic.Deliver, properties: BasicProperties,
                 body: bytes) -> Envelope | None:
        try:
            return Envelope.from_body(body)
        except Exception as exc:  # any parse error makes it poison
            log.error("unreadable message rejected to the dead-letter queue",
                      extra={"group": group, "message_id": properties.message_id, "error": repr(exc)})
            channel.basic_reject(method.delivery_tag, requeue=False)
            return None

    def subscribe_single(channel: BlockingChannel) -> None:
        def on_message(channel: BlockingChannel, method: Basic.Deliver, properties: BasicProperties,
                       body: bytes) -> None:
            envelope = readable(channel, method, properties, body)
            if envelope is not None:
                deliver_one(channel, method.delivery_tag, envelope, properties)

        channel.basic_consume(queue, on_message)

    def subscribe_batched(apply: BatchHandler) -> Subscribe:
        def subscribe(channel: BlockingChannel) -> Callable[[], None]:
            arrived: list[tuple[int, Envelope, BasicProperties]] = []  # this connection's, in delivery order

            def on_message(channel: BlockingChannel, method: Basic.Deliver, properties: BasicProperties,
                           body: bytes) -> None:
                envelope = readable(channel, method, properties, body)
                if envelope is not None:
                    arrived.append((method.delivery_tag, envelope, properties))

            def apply_round() -> None:
                # Deliveries that arrive while a batch is held (the wait keeps dispatching) form the next.
                while arrived and not stopping.is_set():
                    taken = arrived[:]
                    arrived.clear()
                    if len(taken) == 1:
                        tag, envelope, properties = taken[0]
                        if not deliver_one(channel, tag, envelope, properties):
                            return
                        continue
                    envelopes = [envelope for _, envelope, _ in taken]
                    try:
                        if not hold_while_unavailable(channel, partial(apply, envelopes), hold_backoff, stopping,
                                                      f"group:{group}"):
                            return
                    except Exception as exc:
                        log.info("batch failed; delivering its messages one at a time",
                                 extra={"group": group, "messages": len(taken), "error": repr(exc)})
                        for tag, envelope, properties in taken:
                            if not deliver_one(channel, tag, envelope, properties):
                                return
                        continue
                    # Every earlier delivery on this channel is settled already: one ack settles the batch.
                    channel.basic_ack(taken[-1][0], multiple=True)

            channel.basic_consume(queue, on_message)
            return apply_round

        return subscribe

    return subscribe_single if batch is None else subscribe_batched(batch)


def dead_letter_details(headers: Mapping[str, Any] | None, delivery_limit: int) -> tuple[str, int]:
    """Why and after how many deliveries a message was dead-lettered, from the broker's headers."""
    headers = headers or {}
    deaths = headers.get("x-death") or []
    first = deaths[0] if deaths else {}
    reason = str(headers.get("x-first-death-reason") or first.get("reason") or "unknown")
    queue = headers.get("x-first-death-queue") or first.get("queue") or "?"
    # ``x-delivery-count`` on a dead letter counts deliveries from the dead-letter queue, not the
    # failures; a quorum queue dead-letters once the count of returns *exceeds* the limit, so the
    # message was delivered limit + 1 times. A consumer rejection is its one delivery.
    count = delivery_limit + 1 if reason == "delivery_limit" else int(first.get("count") or 1)
    if reason == "delivery_limit":
        text = f"delivered {count} times in {queue}, over its delivery limit {delivery_limit}"
    elif reason == "rejected":
        text = f"rejected by the consumer of {queue} (unreadable message)"
    else:
        text = f"dead-lettered by {queue}: {reason}"
    return text, count


def _as_envelope(properties: BasicProperties, routing_key: str, body: bytes) -> Envelope:
    try:
        return Envelope.from_body(body)
    except Exception:  # keep the raw message so an operator can look at it
        return Envelope(
            message_id=str(properties.message_id or uuid.uuid4()),
            message_type=str(properties.type or "unreadable"),
            routing_key=routing_key,
            payload={"unreadable_body": body.decode("utf-8", errors="replace")[:100_000]},
        )


def subscribe_archiver(queues: Mapping[str, str], sink: DeadLetterSink, delivery_limit: int,
                       backoff: Backoff | None = None, stop: threading.Event | None = None) -> Subscribe:
    """``queues`` maps group -> its dead-letter queue. The sink is idempotent, so ack after it; while
    the database cannot take a dead letter, the archiver holds it (the dead-letter queues have no
    delivery limit, so nothing is lost either way)."""
    hold_backoff = backoff or unavailable_backoff(30.0)
    stopping = stop or threading.Event()

    def subscribe(channel: BlockingChannel) -> None:
        for group, queue in queues.items():
            channel.basic_consume(queue, _archiver_callback(group, sink, delivery_limit, hold_backoff, stopping))

    return subscribe


def _archiver_callback(group: str, sink: DeadLetterSink, delivery_limit: int, backoff: Backoff,
                       stop: threading.Event) -> Callable[..., None]:
    def on_message(channel: BlockingChannel, method: Basic.Deliver, properties: BasicProperties,
                   body: bytes) -> None:
        reason, count = dead_letter_details(properties.headers, delivery_limit)
        envelope = _as_envelope(properties, str(method.routing_key), body)
        # Any other sink failure raises: the consumer reconnects and the message stays in the DLQ.
        if hold_while_unavailable(channel, lambda: sink(group, envelope, reason, count), backoff, stop,
                                  f"dead-letter-archiver:{group}"):
            channel.basic_ack(method.delivery_tag)

    return on_message
