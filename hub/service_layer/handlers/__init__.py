"""Handler registry: the one place that says which handler takes which message."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hub.domain import commands, events
from hub.domain.messages import Command, Event
from hub.service_layer.handlers import audit, dead_letters, organisations

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
