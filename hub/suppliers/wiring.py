"""The flow's adapters, built once by bootstrap and lazily from settings: a hub that never registers a
supplier never loads a WSDL or opens an upstream connection pool, so the spine runs without any
connector configured. The service and the scheduler get the fetcher from here; routes and handlers
never see it."""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from hub.suppliers.config import SupplierSettings
from hub.suppliers.fetching import CredentialFetcher
from hub.suppliers.repository import SqlUpstreamCallRepository
from hub.suppliers.scheduler import CommandBus, CredentialScheduler
from hub.suppliers.services import SupplierService

if TYPE_CHECKING:
    from connectors.registry import ConnectorRegistry

__all__ = ["SupplierAdapters", "check_sources"]


class SupplierAdapters:
    def __init__(
        self,
        config: SupplierSettings,
        connectors_section: dict[str, Any],
        bus: CommandBus,
        session_factory: sessionmaker[Session],
        connectors: ConnectorRegistry | None = None,
    ) -> None:
        self.config = config
        self._section = connectors_section
        self._session_factory = session_factory
        self._connectors = connectors
        self._owns_connectors = connectors is None
        self._fetcher: CredentialFetcher | None = None
        self._calls: SqlUpstreamCallRepository | None = None
        self._lock = threading.Lock()
        self.service = SupplierService(bus, self.fetcher)
        self.scheduler = CredentialScheduler(bus, self.fetcher, config)

    @property
    def connectors(self) -> ConnectorRegistry:
        with self._lock:
            if self._connectors is None:
                from connectors.registry import build_from_settings

                self._calls = SqlUpstreamCallRepository(self._session_factory)
                self._connectors = build_from_settings(self._section, recorder=self._calls)
            return self._connectors

    def fetcher(self) -> CredentialFetcher:
        registry = self.connectors
        with self._lock:
            if self._fetcher is None:
                self._fetcher = CredentialFetcher(registry, self.config)
            return self._fetcher

    def breaker_states(self) -> dict[str, str] | None:
        """Breaker state per system (and the gauge refreshed), or None before any connector was built."""
        if self._connectors is None:
            return None
        return dict(self._connectors.breaker_states())

    def flush_call_records(self) -> None:
        """Wait until every upstream call made so far is in ``upstream_calls``."""
        if self._calls is not None:
            self._calls.flush()

    def close(self) -> None:
        with self._lock:
            if self._fetcher is not None:
                self._fetcher.close()
                self._fetcher = None
            if self._connectors is not None and self._owns_connectors:
                self._connectors.close()
                self._connectors = None
            if self._calls is not None:
                self._calls.close()
                self._calls = None


def check_sources(connectors_section: dict[str, Any]) -> list[str]:
    """Once per distinct configuration in a process (see :func:`_check_sources`)."""
    return list(_check_sources(json.dumps(connectors_section, sort_keys=True, default=str)))


@lru_cache(maxsize=32)
def _check_sources(section_json: str) -> tuple[str, ...]:
    """Validate at start-up what the hub would otherwise meet at its first fetch: the connector
    configuration and every enabled system's mapping file. Raises with the file and the field named;
    returns the systems checked. Builds no HTTP client."""
    from connectors.config import load_connectors_config
    from mappings.engine import load_mapping

    config = load_connectors_config(overrides=json.loads(section_json))
    checked = []
    for system, system_config in config.systems.items():
        if not system_config.enabled:
            continue
        if system_config.mapping is None:
            raise ValueError(f"connectors.{system}.mapping: an enabled system needs a mapping file")
        load_mapping(str(config.resolve_path(system_config.mapping)))
        checked.append(system)
    return tuple(checked)
