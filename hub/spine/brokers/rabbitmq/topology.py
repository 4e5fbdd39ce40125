"""Names and arguments of everything the hub declares on RabbitMQ, in one place.

Every name starts with the configured namespace, so several hubs (or test runs) share one broker
without seeing each other. AMQP cannot list queues, so the names a process declared are remembered
per namespace; :func:`delete_topology` uses that registry to clean up after tests."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from hub.spine.settings import BrokerSettings

__all__ = ["Topology", "connection_parameters", "delete_topology", "queue_arguments"]

log = logging.getLogger(__name__)

_declared: dict[str, set[str]] = {}  # namespace -> group names declared by this process
_declared_lock = threading.Lock()


@dataclass(frozen=True)
class Topology:
    namespace: str

    @property
    def events_exchange(self) -> str:
        return f"{self.namespace}.events"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.namespace}.dlx"

    def queue(self, group: str) -> str:
        return f"{self.namespace}.q.{group}"

    def dead_letter_queue(self, group: str) -> str:
        return f"{self.namespace}.dlq.{group}"


def queue_arguments(topology: Topology, group: str, delivery_limit: int) -> dict[str, Any]:
    """A group's work queue. The delivery limit is explicit (3.x has none, 4.x defaults to 20);
    at-least-once dead-lettering keeps a message in the queue until the DLQ has confirmed it, and
    RabbitMQ only honours that strategy together with ``reject-publish`` overflow. The dead-letter
    routing key is the group, so the DLQ (and the archiver) knows whose failure it holds."""
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": topology.dead_letter_exchange,
        "x-dead-letter-routing-key": group,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


DEAD_LETTER_QUEUE_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}


def connection_parameters(
    settings: BrokerSettings, *, attempts: int | None = None, socket_timeout_s: float = 10.0
) -> pika.URLParameters:
    """Every knob that keeps a connection from hanging: heartbeats, blocked-connection timeout
    (without it a publish waits forever on a resource alarm), socket and handshake timeouts."""
    params = pika.URLParameters(settings.url)
    params.heartbeat = settings.heartbeat_s
    params.blocked_connection_timeout = settings.blocked_connection_timeout_s
    params.connection_attempts = attempts if attempts is not None else settings.connection_attempts
    params.retry_delay = settings.retry_delay_s
    params.socket_timeout = socket_timeout_s
    params.stack_timeout = socket_timeout_s * 2
    params.client_properties = {"connection_name": f"g2bhub:{settings.namespace}"}
    return params


def declare(channel: BlockingChannel, topology: Topology, bindings: dict[str, list[str]],
            delivery_limit: int) -> None:
    """Idempotent: declaring again with the same arguments is a no-op; with different ones the
    broker refuses (406), which is what an operator must hear about."""
    channel.exchange_declare(topology.events_exchange, exchange_type="topic", durable=True)
    channel.exchange_declare(topology.dead_letter_exchange, exchange_type="direct", durable=True)
    for group, keys in bindings.items():
        dlq = topology.dead_letter_queue(group)
        channel.queue_declare(dlq, durable=True, arguments=DEAD_LETTER_QUEUE_ARGUMENTS)
        channel.queue_bind(dlq, topology.dead_letter_exchange, routing_key=group)
        queue = topology.queue(group)
        channel.queue_declare(queue, durable=True, arguments=queue_arguments(topology, group, delivery_limit))
        for key in keys:
            channel.queue_bind(queue, topology.events_exchange, routing_key=key)
    remember(topology.namespace, bindings)


def remember(namespace: str, groups: Iterable[str]) -> None:
    with _declared_lock:
        _declared.setdefault(namespace, set()).update(groups)


def delete_topology(settings: BrokerSettings, groups: Iterable[str] = ()) -> None:
    """Delete the namespace's queues (those this process declared, plus ``groups``) and exchanges."""
    topology = Topology(settings.namespace)
    with _declared_lock:
        names = set(_declared.pop(settings.namespace, set())) | set(groups)
    connection = pika.BlockingConnection(connection_parameters(settings, attempts=1, socket_timeout_s=5.0))
    try:
        channel = connection.channel()
        for group in sorted(names):
            channel.queue_delete(topology.queue(group))
            channel.queue_delete(topology.dead_letter_queue(group))
        channel.exchange_delete(topology.events_exchange)
        channel.exchange_delete(topology.dead_letter_exchange)
    finally:
        connection.close()
