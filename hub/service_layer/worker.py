"""A worker: the outbox relay plus one consumer thread per consumer group (more with ``concurrency``),
and, for brokers that keep dead letters themselves, the archiver that files them for ``g2bhub dlq``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from hub.adapters.brokers.base import Broker
from hub.adapters.records import SqlDeadLetters
from hub.domain.messages import Envelope
from hub.observability import metrics
from hub.service_layer.messagebus import MessageBus
from hub.service_layer.relay import OutboxRelay

__all__ = ["Worker"]

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        bus: MessageBus,
        broker: Broker,
        session_factory: sessionmaker[Session],
        relay: OutboxRelay | None,
        concurrency: int = 1,
    ) -> None:
        self.bus = bus
        self.broker = broker
        self.session_factory = session_factory
        self.relay = relay
        self.concurrency = concurrency
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def store_dead_letter(self, group: str, envelope: Envelope, reason: str, delivery_count: int) -> None:
        with self.session_factory() as session:
            added = SqlDeadLetters(session).add(group, envelope, reason, delivery_count)
            session.commit()
        if added:
            metrics.DEAD_LETTERS.labels(group=group).inc()
            log.error(
                "message dead-lettered",
                extra={"group": group, "message_id": envelope.message_id, "reason": reason},
            )

    def _handler_for(self, group: str) -> Callable[[Envelope], object]:
        def handle(envelope: Envelope) -> object:
            try:
                outcome = self.bus.consume(group, envelope)
            except Exception:
                metrics.HANDLER_FAILURES.labels(group=group).inc()
                raise
            metrics.EVENTS_HANDLED.labels(group=group, outcome=outcome.value).inc()
            return outcome

        return handle

    def _consumer_loop(self, group: str) -> Callable[[], None]:
        handler = self._handler_for(group)
        return lambda: self.broker.consume(group, handler, self.store_dead_letter, self.stop_event)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        def run() -> None:
            try:
                target()
            except Exception:
                log.exception("worker thread crashed", extra={"thread": name})

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def start(self) -> None:
        self.broker.setup({name: g.binding_keys for name, g in self.bus.groups.items()})
        for name in self.bus.groups:
            for i in range(self.concurrency):
                self._spawn(f"consumer-{name}-{i}", self._consumer_loop(name))
        self._spawn("dead-letter-archiver",
                    lambda: self.broker.archive_dead_letters(self.store_dead_letter, self.stop_event))
        if self.relay is not None:
            relay = self.relay
            self._spawn("outbox-relay", lambda: relay.run_forever(self.stop_event))

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        if self.relay is not None:
            self.relay.wake.set()
        for thread in self.threads:
            thread.join(timeout)
        self.threads = []
