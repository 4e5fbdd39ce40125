"""The AMQP channel: each subscriber's own durable queue ``<ns>.sub.<id>``, the notices topic
exchange ``<ns>.notices``, and confirmed, persistent publishing of deliveries.

How to consume (documented to subscribers in the create response): connect to the hub's RabbitMQ
with the credentials the operator issues, ``basic_consume`` on the queue, manual acks. Each message is
the webhook JSON body; ``message_id`` (also header ``webhook-id``) identifies the delivery — dedupe
on it, delivery is at-least-once. Routing key of exchange fan-out: ``notice.<category>.<country>.<region>``."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import pika
from pika.spec import BasicProperties

from hub.spine.brokers.rabbitmq.publisher import ConfirmingPublisher, Outgoing
from hub.spine.brokers.rabbitmq.topology import connection_parameters
from hub.spine.settings import BrokerSettings

__all__ = ["AmqpChannel", "SubscriberTopology"]


@dataclass(frozen=True)
class SubscriberTopology:
    namespace: str

    @property
    def notices_exchange(self) -> str:
        return f"{self.namespace}.notices"

    def queue(self, subscription_id: str) -> str:
        return f"{self.namespace}.sub.{subscription_id}"

    def dead_letter_queue(self, subscription_id: str) -> str:
        return f"{self.queue(subscription_id)}.dlq"


class AmqpChannel:
    """Declares subscriber queues (API side) and publishes deliveries (dispatcher side, one thread)."""

    def __init__(self, settings: BrokerSettings, delivery_limit: int, confirm_timeout_s: float = 30.0) -> None:
        self.settings = settings
        self.delivery_limit = delivery_limit
        self.topology = SubscriberTopology(settings.namespace)
        self._publisher = ConfirmingPublisher(connection_parameters(settings), confirm_timeout_s)
        self._lock = threading.Lock()

    def _connection(self) -> pika.BlockingConnection:
        return pika.BlockingConnection(connection_parameters(self.settings, attempts=1, socket_timeout_s=5.0))

    def declare_queue(self, subscription_id: str, bind: Sequence[str] = (), unbind: Sequence[str] = ()) -> str:
        """Idempotent. Quorum queue with an explicit delivery limit (the subscriber's own nacks); past it a
        message is dead-lettered, at least once, into the subscriber's ``<queue>.dlq`` — parked, never lost."""
        queue = self.topology.queue(subscription_id)
        dead_letters = self.topology.dead_letter_queue(subscription_id)
        connection = self._connection()
        try:
            channel = connection.channel()
            channel.exchange_declare(self.topology.notices_exchange, exchange_type="topic", durable=True)
            channel.queue_declare(dead_letters, durable=True, arguments={"x-queue-type": "quorum"})
            channel.queue_declare(queue, durable=True, arguments={
                "x-queue-type": "quorum", "x-delivery-limit": self.delivery_limit,
                "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead_letters,
                "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"})
            for key in unbind:
                if key not in bind:
                    channel.queue_unbind(queue, self.topology.notices_exchange, routing_key=key)
            for key in bind:
                channel.queue_bind(queue, self.topology.notices_exchange, routing_key=key)
        finally:
            if connection.is_open:
                connection.close()
        return queue

    def delete_queue(self, subscription_id: str) -> None:
        connection = self._connection()
        try:
            channel = connection.channel()
            channel.queue_delete(self.topology.queue(subscription_id))
            channel.queue_delete(self.topology.dead_letter_queue(subscription_id))
        finally:
            if connection.is_open:
                connection.close()

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
