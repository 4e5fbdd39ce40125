"""The message bus. Commands are handled at once, in one unit of work, by exactly one handler.
Events are never handled inline: they go to the outbox, the relay hands them to the broker, and each
consumer group (one per event handler) applies them idempotently through :meth:`MessageBus.consume`."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import IntegrityError

from hub.spine.messages import Command, Envelope, Event
from hub.spine.unit_of_work import AbstractUnitOfWork

__all__ = ["ConsumerGroup", "MessageBus", "Outcome", "bind"]

log = logging.getLogger(__name__)

Handler = Callable[..., Any]
BoundHandler = Callable[..., Any]


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


@dataclass(frozen=True)
class ConsumerGroup:
    """One queue per event handler: its name, the events it takes and the handler itself. ``batched``
    False makes the group take its messages one transaction each (:meth:`MessageBus.consume_batch` is
    not used for it): for a handler whose effects cannot share a transaction with another message's."""

    name: str
    handler: Handler
    event_types: tuple[type[Event], ...]
    batched: bool = True

    @property
    def binding_keys(self) -> list[str]:
        return [f"event.{t.__name__}.#" for t in self.event_types]


def bind(handler: Handler, dependencies: Mapping[str, Any]) -> BoundHandler:
    """Resolve once, at bootstrap, which dependencies a handler takes (by parameter name); the bus then
    calls it with the message, the unit of work and, for consumers that ask for it, the envelope."""
    params = inspect.signature(handler).parameters
    fixed = {name: dep for name, dep in dependencies.items() if name in params}
    wants_envelope = "envelope" in params

    def call(message: Any, uow: AbstractUnitOfWork, envelope: Envelope | None = None) -> Any:
        if wants_envelope:
            return handler(message, uow=uow, envelope=envelope, **fixed)
        return handler(message, uow=uow, **fixed)

    return call


def consumer_groups(
    event_handlers: Mapping[type[Event], Sequence[Handler]], names: Mapping[Handler, str] | None = None,
    one_at_a_time: Collection[str] = (),
) -> dict[str, ConsumerGroup]:
    """One group per event handler, named in ``names`` (the registry declares them) or by the
    handler's function name. Groups named in ``one_at_a_time`` are not batched."""
    by_handler: dict[Handler, list[type[Event]]] = {}
    for event_type, handlers in event_handlers.items():
        for handler in handlers:
            by_handler.setdefault(handler, []).append(event_type)
    groups: dict[str, ConsumerGroup] = {}
    for handler, types in by_handler.items():
        name = (names or {}).get(handler) or handler.__name__
        if name in groups:
            raise ValueError(f"two event handlers share the consumer group name {name!r}")
        groups[name] = ConsumerGroup(name=name, handler=handler, event_types=tuple(types),
                                     batched=name not in one_at_a_time)
    return groups


class MessageBus:
    def __init__(
        self,
        uow_factory: Callable[[], AbstractUnitOfWork],
        command_handlers: Mapping[type[Command], Handler],
        event_handlers: Mapping[type[Event], Sequence[Handler]],
        dependencies: Mapping[str, Any] | None = None,
        group_names: Mapping[Handler, str] | None = None,
        one_at_a_time: Collection[str] = (),
    ) -> None:
        self.uow_factory = uow_factory
        self.command_handlers = dict(command_handlers)
        self.group_names = dict(group_names or {})
        self.one_at_a_time = frozenset(one_at_a_time)
        self.groups = consumer_groups(event_handlers, self.group_names, self.one_at_a_time)
        self.dependencies = dict(dependencies or {})
        self._commands = {t: bind(h, self.dependencies) for t, h in self.command_handlers.items()}
        self._consumers = {name: bind(g.handler, self.dependencies) for name, g in self.groups.items()}

    def handle(self, command: Command, correlation_id: str | None = None) -> Any:
        """Run a command's handler in one transaction; its events reach the outbox with it."""
        handler = self._commands[type(command)]
        with self.uow_factory() as uow:
            uow.correlation_id = correlation_id
            result = handler(command, uow)
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
            self._consumers[group_name](event, uow, envelope)
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

    def consume_batch(self, group_name: str, envelopes: Sequence[Envelope]) -> list[Outcome]:
        """Apply several delivered events for one consumer group in one transaction: one inbox look-up
        for the whole batch, each handler call in delivery order, one inbox mark per applied message,
        one commit. Returns one outcome per envelope, in order.

        All or nothing: if any handler raises, or the commit fails (a competing consumer committed one
        of these messages first), nothing of the batch is kept and the exception propagates. The
        caller then takes the messages one at a time through :meth:`consume`, so a poison message is
        retried and dead-lettered on its own while the others are applied, once each."""
        group = self.groups[group_name]
        handler = self._consumers[group_name]
        events = [envelope.to_event() for envelope in envelopes]
        outcomes = [Outcome.IGNORED] * len(envelopes)
        wanted = [i for i, event in enumerate(events) if isinstance(event, group.event_types)]
        if not wanted:
            return outcomes
        with self.uow_factory() as uow:
            handled = uow.handled_among(group_name, [envelopes[i].message_id for i in wanted])
            for i in wanted:
                envelope = envelopes[i]
                if envelope.message_id in handled:  # applied before, or earlier in this very batch
                    outcomes[i] = Outcome.DUPLICATE
                    continue
                uow.correlation_id = envelope.correlation_id
                handler(events[i], uow, envelope)
                uow.mark_handled(group_name, envelope.message_id)
                handled.add(envelope.message_id)
                outcomes[i] = Outcome.APPLIED
            uow.commit()
        return outcomes
