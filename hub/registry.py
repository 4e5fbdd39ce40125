"""Handler registry: the one place that says which handler takes which message.

Each flow keeps its own ``COMMAND_HANDLERS`` / ``EVENT_HANDLERS`` in its ``handlers`` module; the spine
adds the audit trail and dead-letter replay. Importing this module also puts every flow's tables into the
spine's ``metadata`` (for Alembic) through :data:`FLOW_TABLES`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from sqlalchemy.orm import Session

from hub.notices import handlers as notices
from hub.notices import pps_checkpoints as pps_checkpoint_tables
from hub.notices import tables as notice_tables
from hub.notices.repository import SqlIdempotencyStore, SqlNoticeRepository
from hub.organisations import handlers as organisations
from hub.organisations import tables as organisation_tables
from hub.organisations.repository import SqlOrganisationRepository
from hub.spine.audit import record_audit_entry
from hub.spine.dead_letters import DeadLetterReplayed, ReplayDeadLetters, replay_dead_letters
from hub.spine.messages import Command, Event
from hub.spine.unit_of_work import SqlAlchemyUnitOfWork
from hub.subscriptions import handlers as subscriptions
from hub.subscriptions import tables as subscription_tables
from hub.subscriptions.endpoint_repository import SqlEndpointRepository
from hub.subscriptions.matcher import match_notice_version
from hub.subscriptions.notice_store import SqlNoticeReader
from hub.subscriptions.repository import (
    MATCHING_CURSOR,
    SqlDeliveryRepository,
    SqlMatchingCursor,
    SqlSubscriptionRepository,
)
from hub.suppliers import handlers as suppliers
from hub.suppliers import tables as supplier_tables
from hub.suppliers.repository import SqlSupplierRepository

__all__ = ["COMMAND_HANDLERS", "CONSUMER_GROUPS", "EVENT_HANDLERS", "FLOWS", "ONE_AT_A_TIME_GROUPS", "HubUnitOfWork",
           "start_mappers"]

FLOWS: tuple[ModuleType, ...] = (organisations, suppliers, notices, subscriptions)
FLOW_TABLES: tuple[ModuleType, ...] = (
    organisation_tables,
    supplier_tables,
    notice_tables,
    pps_checkpoint_tables,
    subscription_tables,
)

COMMAND_HANDLERS: dict[type[Command], Callable[..., Any]] = {
    ReplayDeadLetters: replay_dead_letters,
}

EVENT_HANDLERS: dict[type[Event], Sequence[Callable[..., Any]]] = {
    DeadLetterReplayed: [record_audit_entry],
}

# Each event handler is one consumer group with its own queue; the names are part of the deployment
# (queue names, dead letters, `g2bhub dlq replay --group`), so they are declared here, not derived.
CONSUMER_GROUPS: dict[Callable[..., Any], str] = {
    record_audit_entry: "audit",
    match_notice_version: "syndication-matching",
}

# Consumer groups that take their messages one transaction each instead of in batches: for a handler
# whose effects cannot share a transaction with other messages' (a call out of the process, a lock it
# must not hold across messages). Neither group above needs it: ``audit`` writes one row per event, and
# ``syndication-matching`` matches the feed from its locked cursor, so several of its events in one
# transaction match the feed once (the later ones find the cursor past them).
ONE_AT_A_TIME_GROUPS: frozenset[str] = frozenset()


def _merge() -> None:
    for module in FLOWS:
        for command_type, handler in module.COMMAND_HANDLERS.items():
            if command_type in COMMAND_HANDLERS:
                raise ValueError(f"two handlers for {command_type.__name__}")
            COMMAND_HANDLERS[command_type] = handler
        for event_type, handlers in module.EVENT_HANDLERS.items():
            EVENT_HANDLERS[event_type] = [*EVENT_HANDLERS.get(event_type, []), *handlers]


_merge()


class HubUnitOfWork(SqlAlchemyUnitOfWork):
    """The unit of work every handler gets: the spine's transaction with each flow's repository on it.
    Handlers see only their flow's protocol of it (``OrganisationsUnitOfWork`` …)."""

    organisations: SqlOrganisationRepository
    suppliers: SqlSupplierRepository
    notices: SqlNoticeRepository
    idempotency: SqlIdempotencyStore
    subscriptions: SqlSubscriptionRepository
    deliveries: SqlDeliveryRepository
    notice_versions: SqlNoticeReader
    matching_cursor: SqlMatchingCursor
    endpoints: SqlEndpointRepository

    def attach_repositories(self, session: Session) -> None:
        self.organisations = SqlOrganisationRepository(session)
        self.suppliers = SqlSupplierRepository(session)
        self.notices = SqlNoticeRepository(session)
        self.idempotency = SqlIdempotencyStore(session)
        self.subscriptions = SqlSubscriptionRepository(session)
        self.deliveries = SqlDeliveryRepository(session)
        self.notice_versions = SqlNoticeReader(session)
        self.matching_cursor = SqlMatchingCursor(session, MATCHING_CURSOR)
        self.endpoints = SqlEndpointRepository(session)


_mapped = False


def start_mappers() -> None:
    """Map every flow's domain classes onto its tables, once per process."""
    global _mapped
    if _mapped:
        return
    for module in FLOW_TABLES:
        module.start_mappers()
    _mapped = True
