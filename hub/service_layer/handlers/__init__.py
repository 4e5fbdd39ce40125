"""Handler registry: the one place that says which handler takes which message.

Each slice (suppliers, notices, subscriptions) keeps its own ``COMMAND_HANDLERS`` / ``EVENT_HANDLERS``
in its module; they are merged here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from hub.domain import commands, events
from hub.domain.messages import Command, Event
from hub.service_layer.handlers import (
    audit,
    dead_letters,
    notices,
    organisations,
    subscriptions,
    suppliers,
)

COMMAND_HANDLERS: dict[type[Command], Callable[..., Any]] = {
    commands.CreateOrganisation: organisations.create_organisation,
    commands.IssueApiKey: organisations.issue_api_key,
    commands.RevokeApiKey: organisations.revoke_api_key,
    commands.ReplayDeadLetters: dead_letters.replay_dead_letters,
}

EVENT_HANDLERS: dict[type[Event], Sequence[Callable[..., Any]]] = {
    events.OrganisationCreated: [audit.record_audit_entry],
    events.ApiKeyIssued: [audit.record_audit_entry],
    events.ApiKeyRevoked: [audit.record_audit_entry],
    events.DeadLetterReplayed: [audit.record_audit_entry],
}

SLICES: tuple[ModuleType, ...] = (suppliers, notices, subscriptions)


def _merge() -> None:
    for module in SLICES:
        for command_type, handler in module.COMMAND_HANDLERS.items():
            if command_type in COMMAND_HANDLERS:
                raise ValueError(f"two handlers for {command_type.__name__}")
            COMMAND_HANDLERS[command_type] = handler
        for event_type, handlers in module.EVENT_HANDLERS.items():
            EVENT_HANDLERS[event_type] = [*EVENT_HANDLERS.get(event_type, []), *handlers]


_merge()
