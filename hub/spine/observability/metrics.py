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
INFRASTRUCTURE_RETRIES = Counter(
    "g2bhub_infrastructure_retries_total",
    "Deliveries (and dead-letter filings) retried in place because the database or broker was unavailable;"
    " they do not count against the delivery limit",
    ["group"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "g2bhub_dead_letters_total", "Messages dead-lettered after the delivery limit", ["group"], registry=REGISTRY
)
DEAD_LETTERS_OPEN = Gauge("g2bhub_dead_letters_open", "Dead letters not yet replayed", registry=REGISTRY)

# Connectors (upstream tax / registry / certification systems).
CONNECTOR_CALLS = Counter(
    "g2bhub_connector_calls_total", "Logical upstream calls by outcome", ["system", "outcome"], registry=REGISTRY
)
CONNECTOR_ATTEMPTS = Counter(
    "g2bhub_connector_attempts_total", "Upstream attempts including retries", ["system"], registry=REGISTRY
)
CONNECTOR_LATENCY = Histogram(
    "g2bhub_connector_call_duration_seconds",
    "Upstream call latency including retries",
    ["system"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
CONNECTOR_BREAKER_STATE = Gauge(
    "g2bhub_connector_breaker_state",
    "Circuit breaker state per upstream system and breaker key (empty: the system's own breaker;"
    " e.g. a member state for VIES): 0 closed, 1 half-open, 2 open",
    ["system", "key"],
    registry=REGISTRY,
)
UPSTREAM_MISCONFIGURED = Gauge(
    "g2bhub_upstream_misconfigured",
    "1 while the upstream system refuses the hub's key (401/403, a gateway key error), else 0",
    ["system"],
    registry=REGISTRY,
)

# Quotas: requests, refreshes and upstream calls refused because a budget ran out.
THROTTLED = Counter(
    "g2bhub_throttled_total",
    "Requests, refreshes and upstream calls refused because a budget (RateLimit-Policy name) ran out",
    ["budget"],
    registry=REGISTRY,
)
