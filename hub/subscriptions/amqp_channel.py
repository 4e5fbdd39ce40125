"""The AMQP channel: each subscriber's own durable queue ``<ns>.sub.<id>``, the notices topic
exchange ``<ns>.notices``, and confirmed, persistent publishing of deliveries.

How to consume (documented to subscribers in the create response): connect to the hub's RabbitMQ
with the credentials the operator issues, ``basic_consume`` on the queue, manual acks. Each message is
the webhook JSON body; ``message_id`` (also header ``webhook-id``) identifies the delivery — dedupe
on it, delivery is at-least-once. Routing key of exchange fan-out: ``notice.<category>.<country>.<region>``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import BasicProperties

from hub.spine.brokers.rabbitmq.publisher import ConfirmingPublisher, Outgoing
from hub.spine.brokers.rabbitmq.topology import connection_parameters
from hub.spine.settings import BrokerSettings
from hub.subscriptions.model import SubscriberTopology

__all__ = ["AmqpChannel", "RabbitSubscriberQueues"]


@contextmanager
def _short_channel(settings: BrokerSettings) -> Iterator[BlockingChannel]:
    """A connection for one topology change (API side: rare, so not kept open)."""
    connection = pika.BlockingConnection(connection_parameters(settings, attempts=1, socket_timeout_s=5.0))
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            connection.close()


class RabbitSubscriberQueues:
    """:class:`~hub.subscriptions.services.SubscriberQueues` on RabbitMQ: each subscriber's durable queue
    ``<ns>.sub.<id>``, its dead-letter queue, and its bindings to ``<ns>.notices``."""

    def __init__(self, settings: BrokerSettings, delivery_limit: int) -> None:
        self.settings = settings
        self.delivery_limit = delivery_limit
        self.topology = SubscriberTopology(settings.namespace)

    def declare(self, subscription_id: str, binding_keys: Sequence[str]) -> None:
        """Idempotent. Quorum queue with an explicit delivery limit (the subscriber's own nacks); past it a
        message is dead-lettered, at least once, into the subscriber's ``<queue>.dlq`` — parked, never lost."""
        queue = self.topology.queue(subscription_id)
        dead_letters = self.topology.dead_letter_queue(subscription_id)
        with _short_channel(self.settings) as channel:
            channel.exchange_declare(self.topology.notices_exchange, exchange_type="topic", durable=True)
            channel.queue_declare(dead_letters, durable=True, arguments={"x-queue-type": "quorum"})
            channel.queue_declare(queue, durable=True, arguments={
                "x-queue-type": "quorum", "x-delivery-limit": self.delivery_limit,
                "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead_letters,
                "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"})
            self._each(channel, subscription_id, binding_keys, channel.queue_bind)

    def bind(self, subscription_id: str, binding_keys: Sequence[str]) -> None:
        with _short_channel(self.settings) as channel:
            self._each(channel, subscription_id, binding_keys, channel.queue_bind)

    def unbind(self, subscription_id: str, binding_keys: Sequence[str]) -> None:
        with _short_channel(self.settings) as channel:
            self._each(channel, subscription_id, binding_keys, channel.queue_unbind)

    def delete(self, subscription_id: str) -> None:
        with _short_channel(self.settings) as channel:
            channel.queue_delete(self.topology.queue(subscription_id))
            channel.queue_delete(self.topology.dead_letter_queue(subscription_id))

    def _each(self, channel: BlockingChannel, subscription_id: str, keys: Sequence[str],
              operation: Callable[..., object]) -> None:
        for key in keys:
            operation(self.topology.queue(subscription_id), self.topology.notices_exchange, routing_key=key)


class AmqpChannel:
    """Confirmed, persistent publishing of deliveries (the dispatcher's side, one thread)."""

    def __init__(self, settings: BrokerSettings, confirm_timeout_s: float = 30.0) -> None:
        self.topology = SubscriberTopology(settings.namespace)
        self._publisher = ConfirmingPublisher(connection_parameters(settings), confirm_timeout_s)
        self._lock = threading.Lock()

    def direct(self, subscription_id: str, msg_id: str, body: bytes) -> Outgoing:
        return Outgoing("", self.topology.queue(subscription_id), body, self._properties(msg_id))

    def fanout(self, routing_key: str, msg_id: str, body: bytes) -> Outgoing:
        return Outgoing(self.topology.notices_exchange, routing_key, body, self._properties(msg_id))

    @staticmethod
    def _properties(msg_id: str) -> BasicProperties:
        return BasicProperties(content_type="application/json", delivery_mode=2, message_id=msg_id,
                               app_id="g2bhub", headers={"webhook-id": msg_id})

    def publish(self, messages: Sequence[Outgoing]) -> set[str]:
        """Confirmed or raises; returns the message ids the broker returned as unroutable."""
        with self._lock:
            returned = self._publisher.publish(messages)
        return {message_id for message_id, _ in returned}

    def close(self) -> None:
        with self._lock:
            self._publisher.close()
