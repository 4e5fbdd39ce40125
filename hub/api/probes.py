"""Readiness checks and scrape-time gauges.

Readiness is a registry on ``app.state.readiness`` so any flow adds its own dependency (a
connector's upstream, say) with one call, and ``/readyz`` reports each by name::

    app.state.readiness.register("tax-service", lambda hub: tax_client.ping())

A check returns a truthy value when ready, or returns falsy / raises when not; or a dict
``{"ready": bool, ...}`` whose other keys are shown as detail. Failure details go to the
log; the unauthenticated probe answers only the exception type, never hosts or credentials.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from hub.bootstrap import Hub
from hub.spine.observability import metrics
from hub.spine.relay import OutboxRelay
from hub.spine.tables import DeadLetterRow

__all__ = ["GaugeRefresher", "ReadinessCheck", "ReadinessChecks", "default_readiness_checks"]

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[Hub], Any]

# One broker conversation at a time from the API's threads: pika connections are not thread-safe,
# and a burst of probes must not pile up connections to a broker that is struggling.
_broker_lock = threading.Lock()


def _database(hub: Hub) -> dict[str, Any]:
    """Ready only if the database would take a write: a read-only database (failover in progress, a
    standby, ``default_transaction_read_only``) answers ``SELECT 1`` yet fails every write request."""
    health = hub.database_health()
    report: dict[str, Any] = {"ready": health.writable, "state": health.state}
    if health.detail:
        report["detail"] = health.detail
    return report


def _broker(hub: Hub) -> bool:
    with _broker_lock:
        return bool(hub.broker.ping())


class ReadinessChecks:
    def __init__(self) -> None:
        self._checks: dict[str, ReadinessCheck] = {}

    def register(self, name: str, check: ReadinessCheck) -> None:
        self._checks[name] = check

    @property
    def names(self) -> list[str]:
        return list(self._checks)

    def run(self, hub: Hub) -> tuple[bool, dict[str, dict[str, Any]]]:
        """Run every check (one failing does not hide the others); (all ready, per-check report)."""
        report: dict[str, dict[str, Any]] = {}
        for name, check in self._checks.items():
            started = time.perf_counter()
            entry: dict[str, Any]
            try:
                result = check(hub)
                if isinstance(result, dict):  # a check may report detail: {"ready": bool, ...}
                    entry = {"status": "ok" if result.get("ready", True) else "fail",
                             **{k: v for k, v in result.items() if k != "ready"}}
                else:
                    entry = {"status": "ok"} if result else {"status": "fail", "detail": "not ready"}
            except Exception as exc:
                log.warning("readiness check %s failed", name, exc_info=True)
                entry = {"status": "fail", "detail": type(exc).__name__}
            entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
            report[name] = entry
        return all(e["status"] == "ok" for e in report.values()), report


def default_readiness_checks() -> ReadinessChecks:
    checks = ReadinessChecks()
    checks.register("database", _database)
    checks.register("broker", _broker)
    checks.register("connectors", _connectors)
    return checks


def _connectors(hub: Hub) -> dict[str, Any]:
    """Breaker state per upstream system, and per key for keyed breakers (VIES: per member state), and
    the systems that refuse the hub's key (refreshing the gauges). Neither makes the hub unready:
    registrations still succeed and leave that system's credentials pending. ``degraded`` names the
    open breakers (``vies/DE`` for a key); ``misconfigured`` the systems whose key must be fixed."""
    suppliers = hub.suppliers
    puller = getattr(hub, "pps", None)
    pps = puller.status() if puller is not None else None  # the PPS puller's key or importing organisation
    states = suppliers.breaker_states() if suppliers is not None else None
    if suppliers is None or states is None:
        return {"ready": True, "detail": "no upstream called yet", **({"misconfigured": {"pps": pps}} if pps else {})}
    keyed = suppliers.breaker_key_states() or {}
    misconfigured = suppliers.misconfigured() or {}
    if pps is not None:
        misconfigured["pps"] = pps
    degraded = [s for s, v in states.items() if v != "closed"]
    degraded += [f"{s}/{key}" for s, keys in keyed.items() for key, v in keys.items() if v != "closed"]
    report: dict[str, Any] = {"ready": True, "breakers": states, "degraded": sorted(degraded),
                              "misconfigured": misconfigured}
    if keyed:
        report["breaker_keys"] = keyed
    return report


class GaugeRefresher:
    """Refresh the outbox, queue and dead-letter gauges when ``/metrics`` is scraped, at most once per
    ``min_interval_s`` however many scrapers there are: three cheap queries, not one per scrape."""

    def __init__(self, min_interval_s: float = 5.0) -> None:
        self.min_interval_s = min_interval_s
        self._last = float("-inf")
        self._lock = threading.Lock()

    def refresh(self, hub: Hub) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.min_interval_s:
                return
            self._last = now
        self._refresh_database(hub)
        try:
            with _broker_lock:
                depths = hub.broker.queue_depths(list(hub.bus.groups))
            for group, depth in depths.items():
                metrics.QUEUE_DEPTH.labels(group=group).set(depth)
        except Exception:
            log.warning("could not read queue depths", exc_info=True)

    def _refresh_database(self, hub: Hub) -> None:
        try:
            # measure_lag reads only the outbox; the broker is never touched, so pass none.
            OutboxRelay(hub.read_session_factory, broker=None).measure_lag()  # type: ignore[arg-type]
            with hub.read_session_factory() as session:
                open_count = session.scalar(
                    select(func.count()).select_from(DeadLetterRow).where(DeadLetterRow.replayed_at.is_(None))
                )
                session.rollback()
            metrics.DEAD_LETTERS_OPEN.set(int(open_count or 0))
        except Exception:
            log.warning("could not refresh outbox / dead-letter gauges", exc_info=True)
