"""A worker process that dies the moment its first effect (one message's, or a whole batch's) has
committed, before the broker hears the ack — the crash window that the inbox exists for. Used by
``test_rabbitmq.py``; it wraps the bus instead of putting test hooks into production code.

Usage: python -m tests.integration.dying_consumer DATABASE_URL AMQP_URL NAMESPACE
Prints the ids of the messages it applied, one a line, then exits with :data:`DIED_AFTER_EFFECT`."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hub.bootstrap import bootstrap
from hub.config import Settings
from hub.spine.bus import MessageBus, Outcome
from hub.spine.messages import Envelope, Event
from hub.spine.worker import Worker

DIED_AFTER_EFFECT = 17
GAVE_UP = 3

B = TypeVar("B", bound=MessageBus)


class DyingBus(MessageBus):
    def consume(self, group_name: str, envelope: Envelope) -> Outcome:
        outcome = super().consume(group_name, envelope)  # effect + inbox row are committed now
        if outcome is Outcome.APPLIED:
            print(envelope.message_id, flush=True)
            os._exit(DIED_AFTER_EFFECT)  # no ack, no cleanup: like a kill -9 at the worst moment
        return outcome

    def consume_batch(self, group_name: str, envelopes: Sequence[Envelope]) -> list[Outcome]:
        outcomes = super().consume_batch(group_name, envelopes)  # the whole batch is committed now
        applied = [e.message_id for e, o in zip(envelopes, outcomes, strict=True) if o is Outcome.APPLIED]
        if applied:
            print("\n".join(applied), flush=True)
            os._exit(DIED_AFTER_EFFECT)  # no ack of any of them
        return outcomes


def rebuild(cls: type[B], bus: MessageBus) -> B:
    """The same bus (handlers, dependencies, unit of work) as another class."""
    event_handlers: dict[type[Event], list[Callable[..., Any]]] = {}
    for group in bus.groups.values():
        for event_type in group.event_types:
            event_handlers.setdefault(event_type, []).append(group.handler)
    return cls(bus.uow_factory, bus.command_handlers, event_handlers, bus.dependencies, bus.group_names)


def main(database_url: str, amqp_url: str, namespace: str) -> int:
    settings = Settings(
        database={"url": database_url},
        broker={"kind": "rabbitmq", "url": amqp_url, "namespace": namespace, "delivery_limit": 3},
    )
    hub = bootstrap(settings)
    bus = rebuild(DyingBus, hub.bus)
    worker = Worker(bus, hub.broker, hub.session_factory, relay=None)
    worker.start()
    threading.Event().wait(60)  # the test's messages should have killed us long before
    return GAVE_UP


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
