"""Prometheus metrics, one registry per process, served at ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_LATENCY = Histogram(
    "g2bhub_http_request_duration_seconds",
    "API request latency",
    ["method", "route", "status"],
    registry=REGISTRY,
)
OUTBOX_PENDING = Gauge("g2bhub_outbox_pending", "Outbox rows not yet handed to the broker", registry=REGISTRY)
OUTBOX_LAG = Gauge(
    "g2bhub_outbox_lag_seconds", "Age of the oldest outbox row not yet handed to the broker", registry=REGISTRY
)
EVENTS_RELAYED = Counter("g2bhub_events_relayed_total", "Outbox rows handed to the broker", registry=REGISTRY)
RELAY_FAILURES = Counter("g2bhub_relay_failures_total", "Relay batches the broker refused", registry=REGISTRY)
QUEUE_DEPTH = Gauge("g2bhub_queue_depth", "Messages waiting in a consumer group's queue", ["group"], registry=REGISTRY)
EVENTS_HANDLED = Counter(
    "g2bhub_events_handled_total", "Deliveries a consumer group settled", ["group", "outcome"], registry=REGISTRY
)
HANDLER_FAILURES = Counter(
    "g2bhub_handler_failures_total", "Deliveries whose handler raised", ["group"], registry=REGISTRY
)
DEAD_LETTERS = Counter(
    "g2bhub_dead_letters_total", "Messages dead-lettered after the delivery limit", ["group"], registry=REGISTRY
)
DEAD_LETTERS_OPEN = Gauge("g2bhub_dead_letters_open", "Dead letters not yet replayed", registry=REGISTRY)
