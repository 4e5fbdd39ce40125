"""The flow's adapters, built once by bootstrap and lazily from settings: a hub that never registers a
supplier never loads a WSDL or opens an upstream connection pool, so the spine runs without any
connector configured. The service and the scheduler get the fetcher from here; routes and handlers
never see it."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from connectors.config import ConnectorsConfig, SystemConfig
from hub.suppliers.config import SupplierSettings
from hub.suppliers.fetching import CredentialFetcher, UpstreamBudget
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
        connectors_section: Mapping[str, SystemConfig],
        bus: CommandBus,
        session_factory: sessionmaker[Session],
        connectors: ConnectorRegistry | None = None,
        budget: UpstreamBudget | None = None,
    ) -> None:
        self.config = config
        self._section = connectors_section
        self._session_factory = session_factory
        self._connectors = connectors
        self._owns_connectors = connectors is None
        self._budget = budget
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
                self._fetcher = CredentialFetcher(registry, self.config, budget=self._budget)
            return self._fetcher

    def breaker_states(self) -> dict[str, str] | None:
        """Breaker state per system (and the gauge refreshed), or None before any connector was built."""
        if self._connectors is None:
            return None
        return dict(self._connectors.breaker_states())

    def breaker_key_states(self) -> dict[str, dict[str, str]] | None:
        """Keyed breakers (VIES per member state): state per key seen so far, or None before any
        connector was built."""
        if self._connectors is None:
            return None
        return {system: dict(keys) for system, keys in self._connectors.breaker_key_states().items()}

    def misconfigured(self) -> dict[str, dict[str, object]] | None:
        """Systems that refuse the hub's key in this process, or None before any connector was built."""
        if self._connectors is None:
            return None
        return self._connectors.misconfigured()

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


def check_sources(systems: Mapping[str, SystemConfig]) -> list[str]:
    """Once per distinct set of mapping files in a process (see :func:`_check_sources`)."""
    config = ConnectorsConfig(systems=dict(systems))
    wanted = tuple((name, str(config.resolve_path(entry.mapping)) if entry.mapping is not None else None)
                   for name, entry in systems.items() if entry.enabled)
    return list(_check_sources(wanted))


@lru_cache(maxsize=32)
def _check_sources(mappings: tuple[tuple[str, str | None], ...]) -> tuple[str, ...]:
    """Validate at start-up what the hub would otherwise meet at its first fetch: every enabled system's
    mapping file. Raises with the file and the field named; returns the systems checked. Builds no HTTP
    client."""
    from mappings.engine import MappingError, load_mapping

    for system, path in mappings:
        if path is None:
            raise MappingError(f"connectors.{system}.mapping: an enabled system needs a mapping file")
        load_mapping(path)
    return tuple(system for system, _path in mappings)
