"""The RabbitMQ broker adapter (quorum queues, publisher confirms, broker-side dead-lettering)."""

from hub.adapters.brokers.rabbitmq.broker import RabbitMQBroker
from hub.adapters.brokers.rabbitmq.topology import delete_topology

__all__ = ["RabbitMQBroker", "delete_topology"]
