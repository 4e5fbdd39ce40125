"""The message bus. Commands are handled at once, in one unit of work, by exactly one handler.
Events are never handled inline: they go to the outbox, the relay hands them to the broker, and each
consumer group (one per event handler) applies them idempotently through :meth:`MessageBus.consume`."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import IntegrityError

from hub.spine.messages import Command, Envelope, Event
from hub.spine.unit_of_work import AbstractUnitOfWork

__all__ = ["ConsumerGroup", "MessageBus", "Outcome"]

log = logging.getLogger(__name__)

Handler = Callable[..., Any]


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


@dataclass(frozen=True)
class ConsumerGroup:
    """One queue per event handler: its name, the events it takes and the handler itself."""

    name: str
    handler: Handler
    event_types: tuple[type[Event], ...]

    @property
    def binding_keys(self) -> list[str]:
        return [f"event.{t.__name__}.#" for t in self.event_types]


def _inject(handler: Handler, dependencies: Mapping[str, Any]) -> Handler:
    params = inspect.signature(handler).parameters
    wanted = {name: dep for name, dep in dependencies.items() if name in params}
    return lambda message: handler(message, **wanted)


def consumer_groups(event_handlers: Mapping[type[Event], Sequence[Handler]]) -> dict[str, ConsumerGroup]:
    by_handler: dict[Handler, list[type[Event]]] = {}
    for event_type, handlers in event_handlers.items():
        for handler in handlers:
            by_handler.setdefault(handler, []).append(event_type)
    groups: dict[str, ConsumerGroup] = {}
    for handler, types in by_handler.items():
        name = getattr(handler, "consumer_group", None) or handler.__name__
        if name in groups:
            raise ValueError(f"two event handlers share the consumer group name {name!r}")
        groups[name] = ConsumerGroup(name=name, handler=handler, event_types=tuple(types))
    return groups


class MessageBus:
    def __init__(
        self,
        uow_factory: Callable[[], AbstractUnitOfWork],
        command_handlers: Mapping[type[Command], Handler],
        event_handlers: Mapping[type[Event], Sequence[Handler]],
        dependencies: Mapping[str, Any] | None = None,
    ) -> None:
        self.uow_factory = uow_factory
        self.command_handlers = dict(command_handlers)
        self.groups = consumer_groups(event_handlers)
        self.dependencies = dict(dependencies or {})

    def handle(self, command: Command, correlation_id: str | None = None) -> Any:
        """Run a command's handler in one transaction; its events reach the outbox with it."""
        handler = self.command_handlers[type(command)]
        with self.uow_factory() as uow:
            uow.correlation_id = correlation_id
            result = _inject(handler, {**self.dependencies, "uow": uow})(command)
            uow.commit()
        return result

    def consume(self, group_name: str, envelope: Envelope) -> Outcome:
        """Apply one delivered event for one consumer group, exactly once in effect.

        The inbox mark and the handler's effect (and any events it raises) commit together, so a
        redelivery after a crash, or a competing worker holding the same message, changes nothing.
        Raises whatever the handler raises, so the broker can retry and eventually dead-letter it.
        """
        group = self.groups[group_name]
        event = envelope.to_event()
        if not isinstance(event, group.event_types):
            return Outcome.IGNORED
        with self.uow_factory() as uow:
            uow.correlation_id = envelope.correlation_id
            if uow.already_handled(group_name, envelope.message_id):
                return Outcome.DUPLICATE
            deps = {**self.dependencies, "uow": uow, "envelope": envelope}
            _inject(group.handler, deps)(event)
            uow.mark_handled(group_name, envelope.message_id)
            try:
                uow.commit()
            except IntegrityError:
                uow.rollback()
                # A competing consumer may have committed the same message first: then its effect
                # stands and ours is gone with this transaction. Any other conflict is a real error.
                if not uow.already_handled(group_name, envelope.message_id):
                    raise
                log.info("duplicate delivery resolved by inbox", extra={"message_id": envelope.message_id})
                return Outcome.DUPLICATE
        return Outcome.APPLIED
