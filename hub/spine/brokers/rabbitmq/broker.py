"""RabbitMQ behind the :class:`~hub.spine.brokers.base.Broker` interface: a durable topic exchange,
one quorum queue per consumer group with an explicit delivery limit, and at-least-once
dead-lettering into one quorum dead-letter queue per group."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence

import pika
import pika.exceptions
from pika.spec import BasicProperties

from hub.spine.brokers.base import (
    BatchHandler,
    BrokerUnavailable,
    DeadLetterSink,
    MessageHandler,
    unavailable_backoff,
)
from hub.spine.brokers.rabbitmq.consumer import (
    run_consumer,
    subscribe_archiver,
    subscribe_group,
)
from hub.spine.brokers.rabbitmq.publisher import (
    ConfirmingPublisher,
    ConnectionLost,
    Outgoing,
    PublishRefused,
)
from hub.spine.brokers.rabbitmq.topology import Topology, connection_parameters, declare
from hub.spine.messages import Envelope
from hub.spine.settings import BrokerSettings, redact_url

__all__ = ["RabbitMQBroker"]

log = logging.getLogger(__name__)


class RabbitMQBroker:
    def __init__(self, settings: BrokerSettings, confirm_timeout_s: float = 30.0) -> None:
        self.settings = settings
        self.topology = Topology(settings.namespace)
        self._bindings: dict[str, list[str]] = {}
        self._publisher = ConfirmingPublisher(connection_parameters(settings), confirm_timeout_s)
        self._publish_lock = threading.Lock()  # the relay is the only publisher, but be safe

    def _blocking(self, attempts: int | None = None, socket_timeout_s: float = 10.0) -> pika.BlockingConnection:
        return pika.BlockingConnection(
            connection_parameters(self.settings, attempts=attempts, socket_timeout_s=socket_timeout_s)
        )

    # -- topology ---------------------------------------------------------------------------------
    def setup(self, bindings: Mapping[str, Sequence[str]]) -> None:
        wanted = {group: list(keys) for group, keys in bindings.items()}
        try:
            connection = self._blocking()
        except pika.exceptions.AMQPError as exc:
            raise BrokerUnavailable(f"cannot declare topology: {exc!r}") from exc
        try:
            declare(connection.channel(), self.topology, wanted, self.settings.delivery_limit)
        finally:
            if connection.is_open:
                connection.close()
        self._bindings.update(wanted)

    # -- publishing -------------------------------------------------------------------------------
    def _outgoing(self, envelope: Envelope) -> Outgoing:
        properties = BasicProperties(
            content_type="application/json",
            delivery_mode=2,
            message_id=envelope.message_id,
            type=envelope.message_type,
            correlation_id=envelope.correlation_id,
            timestamp=int(envelope.occurred_at.timestamp()),
            app_id="g2bhub",
        )
        if envelope.target_group is not None:  # a replay for one group: straight into its queue
            return Outgoing("", self.topology.queue(envelope.target_group), envelope.body(), properties)
        return Outgoing(self.topology.events_exchange, envelope.routing_key, envelope.body(), properties)

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Confirmed or :class:`BrokerUnavailable`. A stale connection (idle past its heartbeat, or
        the broker restarted) gets one fresh retry; after that the relay's own backoff takes over and
        the outbox rows stay pending. A retried batch may reach a queue twice; inboxes absorb that."""
        if not envelopes:
            return
        messages = [self._outgoing(e) for e in envelopes]
        with self._publish_lock:
            for attempt in (1, 2):
                try:
                    returned = self._publisher.publish(messages)
                    break
                except ConnectionLost as exc:
                    log.warning("publish failed", extra={"attempt": attempt, "error": str(exc),
                                                         "broker": redact_url(self.settings.url)})
                    if attempt == 2:
                        raise BrokerUnavailable(str(exc)) from exc
                except PublishRefused as exc:
                    raise BrokerUnavailable(str(exc)) from exc
        for message_id, routing_key in returned:
            # no queue bound for this key: no group wants the event (or a replayed group is gone)
            log.info("event routed to no consumer group",
                     extra={"message_id": message_id, "routing_key": routing_key})

    # -- consuming --------------------------------------------------------------------------------
    def consume(
        self, group: str, handler: MessageHandler, dead_letter: DeadLetterSink, stop: threading.Event,
        batch: BatchHandler | None = None,
    ) -> None:
        """Dead letters are kept by RabbitMQ itself; :meth:`archive_dead_letters` files them. A batch
        is at most ``broker.prefetch`` messages (what the channel may hold unacknowledged)."""
        run_consumer(self.settings, connection_parameters(self.settings),
                     subscribe_group(self.topology.queue(group), group, handler,
                                     unavailable_backoff(self.settings.reconnect_max_backoff_s), stop, batch),
                     stop, f"group:{group}")

    def archive_dead_letters(self, dead_letter: DeadLetterSink, stop: threading.Event) -> None:
        queues = {group: self.topology.dead_letter_queue(group) for group in self._bindings}
        if not queues:
            stop.wait()
            return
        run_consumer(self.settings, connection_parameters(self.settings),
                     subscribe_archiver(queues, dead_letter, self.settings.delivery_limit,
                                        unavailable_backoff(self.settings.reconnect_max_backoff_s), stop),
                     stop, "dead-letter-archiver")

    # -- operations -------------------------------------------------------------------------------
    def queue_depths(self, groups: Sequence[str] = ()) -> dict[str, int]:
        """Ready messages per group queue and per dead-letter queue (``<group>.dlq``). A queue that
        does not exist yet (no worker has declared it) is left out."""
        depths: dict[str, int] = {}
        connection = self._blocking(attempts=1, socket_timeout_s=3.0)
        try:
            channel = connection.channel()
            for group in dict.fromkeys([*self._bindings, *groups]):
                for name, queue in ((group, self.topology.queue(group)),
                                    (f"{group}.dlq", self.topology.dead_letter_queue(group))):
                    try:
                        depths[name] = channel.queue_declare(queue, passive=True).method.message_count
                    except pika.exceptions.ChannelClosedByBroker:  # 404: not declared yet
                        channel = connection.channel()
        finally:
            if connection.is_open:
                connection.close()
        return depths

    def ping(self) -> bool:
        try:
            connection = self._blocking(attempts=1, socket_timeout_s=2.0)
        except Exception:  # any failure means "not reachable"
            return False
        try:
            connection.channel().close()
            return True
        except Exception:
            return False
        finally:
            if connection.is_open:
                connection.close()

    def close(self) -> None:
        with self._publish_lock:
            self._publisher.close()
