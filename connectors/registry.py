"""Build every configured connector, with its own breaker, semaphore and retry policy, from config.

The registry is what the rest of the hub holds: a read-only mapping ``system → Connector`` plus the
breaker states that ``/readyz`` and the metrics gauge report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from connectors.base import Connector
from connectors.config import PROJECT_ROOT, ConnectorsConfig, RestSystemConfig, SoapSystemConfig, SystemConfig
from connectors.resilience import (
    AuthGuard,
    BreakerState,
    CallRecorder,
    CircuitBreaker,
    KeyedBreakers,
    LoggingCallRecorder,
    ResiliencePolicy,
)
from connectors.rest import RestConnector
from connectors.soap import SoapConnector, resolve_wsdl
from hub.spine.observability import metrics

__all__ = ["ConnectorRegistry", "build_connectors", "build_from_settings"]

_GAUGE_VALUE = {"closed": 0, "half_open": 1, "open": 2}


def _publish_breaker_state(system: str, state: BreakerState) -> None:
    metrics.CONNECTOR_BREAKER_STATE.labels(system, "").set(_GAUGE_VALUE[state])


def _publish_key_state(system: str, key: str, state: BreakerState) -> None:
    metrics.CONNECTOR_BREAKER_STATE.labels(system, key).set(_GAUGE_VALUE[state])


def _publish_misconfigured(system: str, misconfigured: bool) -> None:
    metrics.UPSTREAM_MISCONFIGURED.labels(system).set(1 if misconfigured else 0)


def _key_hint(cfg: SystemConfig) -> str:
    where = [f"environment variable {cfg.key_env}"] if cfg.key_env else []
    if cfg.key_file is not None:
        where.append(f"key file {cfg.key_file}")
    return "check the key in " + " or ".join(where) if where else "check the system's key configuration"


class ConnectorRegistry(Mapping[str, Connector]):
    """Read-only ``system → Connector`` with breaker introspection and a single ``close()``."""

    def __init__(self, connectors: dict[str, Connector], config: ConnectorsConfig) -> None:
        self._connectors = connectors
        self.config = config

    def __getitem__(self, system: str) -> Connector:
        return self._connectors[system]

    def __iter__(self) -> Iterator[str]:
        return iter(self._connectors)

    def __len__(self) -> int:
        return len(self._connectors)

    def breaker_states(self) -> dict[str, BreakerState]:
        """The system's own breaker per system (and the gauge refreshed)."""
        states = {system: c.breaker_state for system, c in self._connectors.items()}
        for system, state in states.items():
            _publish_breaker_state(system, state)
        return states

    def breaker_key_states(self) -> dict[str, dict[str, BreakerState]]:
        """Keyed systems only: state per key seen so far (and the gauge refreshed)."""
        out: dict[str, dict[str, BreakerState]] = {}
        for system, connector in self._connectors.items():
            keys = connector.breaker_keys
            if keys is not None:
                out[system] = keys
                for key, state in keys.items():
                    _publish_key_state(system, key, state)
        return out

    def misconfigured(self) -> dict[str, dict[str, object]]:
        """Systems whose upstream refuses the hub's key, with since when and the code it answered."""
        out: dict[str, dict[str, object]] = {}
        for system, connector in self._connectors.items():
            status = connector.misconfigured
            _publish_misconfigured(system, status is not None)
            if status is not None:
                out[system] = status
        return out

    def mapping_path(self, system: str) -> Path | None:
        """The mapping file configured for ``system`` (resolved), for the mapping engine to load."""
        mapping = self.config.systems[system].mapping
        return self.config.resolve_path(mapping) if mapping is not None else None

    def close(self) -> None:
        for connector in self._connectors.values():
            connector.close()


def build_connectors(
    config: ConnectorsConfig,
    *,
    recorder: CallRecorder | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ConnectorRegistry:
    """One connector per enabled system. ``clock`` drives the breakers and ``sleep`` the retry backoff,
    so tests can move time without waiting."""
    recorder = recorder or LoggingCallRecorder()
    connectors: dict[str, Connector] = {}
    try:
        for system, cfg in config.systems.items():
            if not cfg.enabled:
                continue
            breaker = CircuitBreaker(system, cfg.breaker, clock=clock, on_change=_publish_breaker_state)
            _publish_breaker_state(system, "closed")
            _publish_misconfigured(system, False)
            keyed = (KeyedBreakers(system, cfg.breaker, clock=clock, on_change=_publish_key_state)
                     if cfg.breaker.key_by is not None else None)
            policy = ResiliencePolicy(
                system=system,
                retry=cfg.retry,
                breaker=breaker,
                concurrency=cfg.concurrency,
                concurrency_wait_s=cfg.concurrency_wait_s,
                sleep=sleep,
                keyed=keyed,
                key_concurrency=cfg.key_concurrency,
                auth=AuthGuard(system, cfg.breaker.auth_probe_s, clock=clock, on_change=_publish_misconfigured,
                               hint=_key_hint(cfg)),
            )
            key = cfg.resolve_key()
            if isinstance(cfg, RestSystemConfig):
                connectors[system] = RestConnector(system, cfg, policy, recorder, key)
            elif isinstance(cfg, SoapSystemConfig):
                wsdl = resolve_wsdl(cfg.wsdl, PROJECT_ROOT)
                connectors[system] = SoapConnector(system, cfg, policy, recorder, key, wsdl_location=wsdl)
    except Exception:
        for connector in connectors.values():
            connector.close()
        raise
    return ConnectorRegistry(connectors, config)


def build_from_settings(systems: Mapping[str, SystemConfig], **kwargs: Any) -> ConnectorRegistry:
    """The registry of the hub's ``connectors`` section (``Settings.connectors``)."""
    return build_connectors(ConnectorsConfig(systems=dict(systems)), **kwargs)
