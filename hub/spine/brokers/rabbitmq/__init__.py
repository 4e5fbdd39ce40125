"""The RabbitMQ broker adapter (quorum queues, publisher confirms, broker-side dead-lettering)."""

from hub.spine.brokers.rabbitmq.broker import RabbitMQBroker
from hub.spine.brokers.rabbitmq.topology import delete_topology

__all__ = ["RabbitMQBroker", "delete_topology"]
