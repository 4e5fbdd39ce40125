"""Wire the hub together once: settings → engine → unit of work → message bus → broker → worker.

Tests and entrypoints call :func:`bootstrap` with overrides (another broker, extra handlers) instead of
patching anything."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from hub.config import ConfigError, Settings, get_settings
from hub.notices.formats import check_formats
from hub.notices.pps_checkpoints import SqlPpsCheckpoints
from hub.notices.pps_puller import PpsPuller
from hub.organisations.repository import SqlOrganisationRepository
from hub.registry import (
    COMMAND_HANDLERS,
    CONSUMER_GROUPS,
    EVENT_HANDLERS,
    ONE_AT_A_TIME_GROUPS,
    HubUnitOfWork,
    start_mappers,
)
from hub.spine.brokers.base import Broker, unavailable_backoff
from hub.spine.brokers.inprocess import InProcessBroker
from hub.spine.budgets import Budgets
from hub.spine.bus import MessageBus
from hub.spine.db import WriteCheck, check_writable, make_engine, make_read_session_factory, make_session_factory
from hub.spine.messages import Command, Event
from hub.spine.quota_store import make_bucket_store
from hub.spine.relay import OutboxRelay
from hub.spine.ttl_cache import TtlCache
from hub.spine.worker import Worker
from hub.subscriptions.dispatcher import DeliveryDispatcher
from hub.subscriptions.index_cache import IndexCache
from hub.subscriptions.matcher import sweep, sweep_interval_s
from hub.subscriptions.services import NoSubscriberQueues, SubscriberQueues, SubscriptionService
from hub.subscriptions.ssrf import resolve_host
from hub.suppliers.control import ControlSchemes
from hub.suppliers.x509_control import X509ControlScheme

if TYPE_CHECKING:
    from hub.suppliers.wiring import SupplierAdapters

__all__ = ["Hub", "bootstrap", "check_configuration", "make_broker"]

IDEMPOTENCY_PURGE_INTERVAL_S = 3600.0


def make_broker(settings: Settings) -> Broker:
    if settings.broker.kind == "rabbitmq":
        from hub.spine.brokers.rabbitmq import RabbitMQBroker

        broker: Broker = RabbitMQBroker(settings.broker, confirm_timeout_s=settings.relay.confirm_timeout_s)
        return broker
    return InProcessBroker(
        delivery_limit=settings.broker.delivery_limit,
        confirm_timeout_s=settings.relay.confirm_timeout_s,
        unavailable_backoff=unavailable_backoff(settings.broker.reconnect_max_backoff_s),
        batch_limit=settings.broker.prefetch,
    )


@dataclass
class Hub:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]  # sessions that may write
    read_session_factory: sessionmaker[Session]  # sessions that only read: no SQLite write lock (hub.spine.db)
    bus: MessageBus
    broker_factory: Callable[[], Broker]
    # Register once: the supplier service and credential scheduler; connectors are built on first use.
    suppliers: SupplierAdapters = field(repr=False)
    subscriptions: SubscriptionService
    delivery_wake: threading.Event  # set by the matching consumer's commits, awaited by the dispatcher
    quotas: Budgets  # request, refresh and upstream budgets (in the database on PostgreSQL)
    pps: PpsPuller  # pulls KONEPS notices from the PPS open API (scheduled when pps.enabled)
    # Authenticated API keys, kept api.key_cache_ttl_s (hub.api.auth): key digest → who is calling.
    api_keys: TtlCache[str, object] = field(default_factory=lambda: TtlCache(0.0), repr=False)
    _broker: Broker | None = field(default=None, repr=False)
    _workers: list[Worker] = field(default_factory=list, repr=False)

    @property
    def broker(self) -> Broker:
        if self._broker is None:
            self._broker = self.broker_factory()
        return self._broker

    def uow(self) -> HubUnitOfWork:
        """A unit of work that writes (on SQLite it begins with the write lock)."""
        return HubUnitOfWork(self.session_factory)

    def read_uow(self) -> HubUnitOfWork:
        """A unit of work that only reads: it cannot commit, and on SQLite takes no write lock."""
        return HubUnitOfWork(self.read_session_factory, read_only=True)

    def make_worker(self, concurrency: int = 1, with_relay: bool = True, broker: Broker | None = None) -> Worker:
        chosen = broker or self.broker
        relay = None
        if with_relay:
            relay = OutboxRelay(
                self.session_factory,
                chosen,
                batch_size=self.settings.relay.batch_size,
                poll_interval_s=self.settings.relay.poll_interval_s,
                max_backoff_s=self.settings.broker.reconnect_max_backoff_s,
            )
        dispatcher = DeliveryDispatcher(self.session_factory, self.settings, self.delivery_wake,
                                        self.subscriptions.resolve)
        worker = Worker(self.bus, chosen, self.session_factory, relay, concurrency=concurrency,
                        jobs=[("delivery-dispatcher", dispatcher.run_forever)], database_writable=self.database_ready)
        if self.suppliers.config.scheduler.enabled:
            worker.add_periodic("credential-scheduler", self.suppliers.config.scheduler.interval_s,
                                self.suppliers.scheduler)
        if self.settings.pps.enabled:
            stop = worker.stop_event
            worker.add_periodic("pps-puller", self.settings.pps.interval_s, lambda: self.pps.run_once(stop=stop))
        worker.add_periodic("idempotency-key-purge", IDEMPOTENCY_PURGE_INTERVAL_S, self.purge_idempotency_keys)
        worker.add_periodic("rate-bucket-purge", IDEMPOTENCY_PURGE_INTERVAL_S, self.quotas.forget_idle)
        worker.add_periodic("matching-sweep", sweep_interval_s(self.settings.syndication.time_scale),
                            self.sweep_matching)
        self._workers.append(worker)
        return worker

    def sweep_matching(self) -> int:
        """Match feed versions no event has triggered (lost, dead-lettered): the matching consumer's
        safety net, with the same index, wake-up and notice reader the consumer is given."""
        deps = self.bus.dependencies
        return sweep(self.uow, deps["subscription_index"], deps["delivery_wake"], deps.get("notice_reader"))

    def purge_idempotency_keys(self) -> int:
        from hub.notices.repository import purge_expired

        ttl = timedelta(hours=self.settings.syndication.publication.idempotency_ttl_h)
        return purge_expired(self.session_factory, ttl)

    def database_health(self) -> WriteCheck:
        """Whether the database would take a write now (not only answer ``SELECT 1``): a read-only
        database must make the hub unready, since every write request would fail."""
        return check_writable(self.engine)

    def database_ready(self) -> bool:
        return self.database_health().writable

    def close(self) -> None:
        for worker in self._workers:
            worker.stop_event.set()
        self.delivery_wake.set()  # a dispatcher idling on it sees the stop at once
        for worker in self._workers:
            worker.stop()
        self._workers = []
        self.suppliers.close()
        if self._broker is not None:
            self._broker.close()
        self.engine.dispose()


def check_configuration(settings: Settings, *, sources: bool = True) -> None:
    """What the settings name but do not hold, checked before the schema is touched: a broken mapping
    file stops the start (and any migration), not the first fetch; so does a sandbox test key that would
    go to a real service (:class:`ConfigError` naming the variable that takes the real key)."""
    if sources:
        from connectors.key_policy import sandbox_key_problems
        from hub.suppliers.wiring import check_sources

        problems = sandbox_key_problems(settings.connectors)
        if problems:
            raise ConfigError(problems)
        check_sources(settings.connectors)
    check_formats()  # every inbound notice format's mapping file, checked the same way
    if not settings.syndication.secret_box().encrypts and not settings.database.url.startswith("sqlite"):
        logging.getLogger(__name__).warning(
            "webhook signing secrets are stored unencrypted: set syndication.secret_keys "
            "(G2BHUB_SYNDICATION__SECRET_KEYS='[\"<fernet key>\"]')")
    if settings.syndication.allow_private_targets or settings.syndication.allow_loopback_targets:
        which = "private" if settings.syndication.allow_private_targets else "loopback"
        logging.getLogger(__name__).warning(
            "webhook targets on %s addresses are allowed (syndication.allow_%s_targets): "
            "for the demo, the sandbox and tests only, never a deployment", which, which)


def control_schemes(settings: Settings) -> ControlSchemes:
    """The ways a supplier can prove control of an identifier besides the operator's manual approval
    (docs/identifier-control.md): a national scheme is one more entry here."""
    control = settings.suppliers.control
    return ControlSchemes([X509ControlScheme.from_paths(control.trust_anchors, control.max_chain_depth)])


def pps_puller(settings: Settings, bus: MessageBus, session_factory: sessionmaker[Session]) -> PpsPuller:
    """The PPS puller with its open-API client (built per run) and the importing organisation's lookup."""
    from connectors.config import Timeouts
    from connectors.pps_openapi import PpsOpenApiClient, PpsRetry

    pps = settings.pps

    def client() -> PpsOpenApiClient:
        key = pps.service_key()
        if key is None or pps.sandbox_key_elsewhere():
            from connectors.pps_openapi import PPS_SYSTEM, PpsKeyError

            why = "no service key" if key is None else "the sandbox's test key is not sent to a real service"
            raise PpsKeyError(PPS_SYSTEM, "no_key", f"{why}: set {pps.key_env}")
        timeout = pps.timeout_s
        return PpsOpenApiClient(
            pps.endpoint, key, timeouts=Timeouts(connect_s=min(timeout, 10.0), read_s=timeout, write_s=timeout),
            retry=PpsRetry(pps.retry.attempts, pps.retry.quota_attempts, pps.retry.initial_s, pps.retry.max_s),
            max_response_bytes=pps.max_response_bytes)

    def org_kind(org_id: str) -> str | None:
        with session_factory() as session:
            org = SqlOrganisationRepository(session).get(org_id)
            return None if org is None else org.kind.value

    checkpoints = SqlPpsCheckpoints(session_factory, timedelta(seconds=pps.lease_s))
    return PpsPuller(pps, bus, checkpoints, client, org_kind, settings.syndication.publication.pps_max_items)


def subscriber_queues(settings: Settings) -> SubscriberQueues:
    if settings.broker.kind == "rabbitmq":
        from hub.subscriptions.amqp_channel import RabbitSubscriberQueues

        return RabbitSubscriberQueues(settings.broker, settings.syndication.amqp_queue_delivery_limit)
    return NoSubscriberQueues()


def bootstrap(
    settings: Settings | None = None,
    *,
    broker_factory: Callable[[], Broker] | None = None,
    command_handlers: Mapping[type[Command], Callable[..., Any]] | None = None,
    event_handlers: Mapping[type[Event], Sequence[Callable[..., Any]]] | None = None,
    dependencies: Mapping[str, Any] | None = None,
    group_names: Mapping[Callable[..., Any], str] | None = None,
    one_at_a_time: Collection[str] = (),
    migrate: bool = False,
) -> Hub:
    settings = settings or get_settings()
    from hub.suppliers.wiring import SupplierAdapters

    # ``dependencies={"connectors": registry}`` hands in a ready connector registry (tests, benches)
    # instead of the configured sources.
    check_configuration(settings, sources="connectors" not in (dependencies or {}))
    start_mappers()
    engine = make_engine(settings.database)
    if migrate:
        from hub.spine.migrations import upgrade

        upgrade(engine)
    session_factory = make_session_factory(engine)
    read_session_factory = make_read_session_factory(engine)
    delivery_wake = threading.Event()
    # A system switched off in its connector entry is no scheme's applicable system.
    supplier_settings = settings.suppliers.only_systems(
        [name for name, system in settings.connectors.items() if system.enabled])
    subscriptions = SubscriptionService(
        uow_factory=lambda: HubUnitOfWork(read_session_factory, read_only=True), queues=subscriber_queues(settings),
        resolve=resolve_host, allow_private_targets=settings.syndication.allow_private_targets,
        allow_loopback_targets=settings.syndication.allow_loopback_targets)
    bus = MessageBus(
        uow_factory=lambda: HubUnitOfWork(session_factory),
        command_handlers=command_handlers if command_handlers is not None else COMMAND_HANDLERS,
        event_handlers=event_handlers if event_handlers is not None else EVENT_HANDLERS,
        dependencies={"settings": settings, "supplier_settings": supplier_settings,
                      "control_schemes": control_schemes(settings),
                      "subscription_index": IndexCache(), "delivery_wake": delivery_wake, **(dependencies or {})},
        group_names={**CONSUMER_GROUPS, **(group_names or {})},
        one_at_a_time={*ONE_AT_A_TIME_GROUPS, *one_at_a_time},
    )
    quotas = Budgets(settings.quotas, make_bucket_store(settings.quotas.store, engine))
    suppliers = SupplierAdapters(supplier_settings, settings.connectors, bus, session_factory,
                                 connectors=(dependencies or {}).get("connectors"), budget=quotas.upstream)
    return Hub(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        read_session_factory=read_session_factory,
        bus=bus,
        broker_factory=broker_factory or (lambda: make_broker(settings)),
        subscriptions=subscriptions,
        delivery_wake=delivery_wake,
        suppliers=suppliers,
        quotas=quotas,
        pps=pps_puller(settings, bus, session_factory),
        api_keys=TtlCache(settings.api.key_cache_ttl_s),
    )
