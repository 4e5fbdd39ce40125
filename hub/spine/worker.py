"""A worker: the outbox relay plus one consumer thread per consumer group (more with ``concurrency``),
for brokers that keep dead letters themselves, the archiver that files them for ``g2bhub dlq``, and
periodic jobs (e.g. the credential refresh scheduler), each on its own thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from functools import partial

from sqlalchemy.orm import Session, sessionmaker

from hub.spine.brokers.base import BatchHandler, Broker, InfrastructureUnavailable
from hub.spine.bus import MessageBus
from hub.spine.db import check_writable
from hub.spine.faults import Fault, classify
from hub.spine.messages import Envelope
from hub.spine.observability import metrics
from hub.spine.records import SqlDeadLetters
from hub.spine.relay import OutboxRelay

__all__ = ["Job", "Worker"]

log = logging.getLogger(__name__)

# A long-running job: its thread name and a loop that runs until the stop event is set.
Job = tuple[str, Callable[[threading.Event], None]]


class Worker:
    def __init__(
        self,
        bus: MessageBus,
        broker: Broker,
        session_factory: sessionmaker[Session],
        relay: OutboxRelay | None,
        concurrency: int = 1,
        jobs: list[Job] | None = None,
        database_writable: Callable[[], bool] | None = None,
    ) -> None:
        self.bus = bus
        self.broker = broker
        self.session_factory = session_factory
        self.relay = relay
        self.concurrency = concurrency
        self.jobs = list(jobs or [])
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.periodic: list[tuple[str, float, Callable[[], object]]] = []
        self.database_writable = database_writable or self._probe_database

    def _probe_database(self) -> bool:
        engine = self.session_factory.kw.get("bind")
        return engine is None or check_writable(engine).writable

    def unavailable(self, exc: BaseException) -> bool:
        """Did this failure come from the database or broker being unavailable (so the message must be
        kept, not counted)? A generic database error counts as the handler's own unless the database
        refuses a probe write too: SQLite says "no such table" with the same exception as "disk full"."""
        fault = classify(exc)
        if fault is Fault.UNAVAILABLE:
            return True
        if fault is Fault.SUSPECT:
            try:
                return not self.database_writable()
            except Exception:  # a probe that cannot even run says enough
                return True
        return False

    def add_periodic(self, name: str, interval_s: float, job: Callable[[], object]) -> None:
        """Run ``job`` every ``interval_s`` seconds (first after one interval) until the worker stops.
        A failing run is logged and the next one happens on schedule; jobs must be safe to run on
        several workers at once (claim their work with a lease)."""
        self.periodic.append((name, interval_s, job))

    def _periodic_loop(self, name: str, interval_s: float, job: Callable[[], object]) -> Callable[[], None]:
        def loop() -> None:
            while not self.stop_event.wait(interval_s):
                try:
                    job()
                except Exception:
                    log.exception("periodic job failed", extra={"job": name})

        return loop

    def store_dead_letter(self, group: str, envelope: Envelope, reason: str, delivery_count: int) -> None:
        """File a dead letter; while the database cannot take it, raise :class:`InfrastructureUnavailable`
        so the broker keeps the message and tries again (it is never dropped)."""
        try:
            with self.session_factory() as session:
                added = SqlDeadLetters(session).add(group, envelope, reason, delivery_count)
                session.commit()
        except Exception as exc:
            if self.unavailable(exc):
                metrics.INFRASTRUCTURE_RETRIES.labels(group=group).inc()
                raise InfrastructureUnavailable(f"cannot file the dead letter: {type(exc).__name__}") from exc
            raise
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
            except Exception as exc:
                if self.unavailable(exc):
                    metrics.INFRASTRUCTURE_RETRIES.labels(group=group).inc()
                    raise InfrastructureUnavailable(f"database or broker unavailable: {type(exc).__name__}") from exc
                metrics.HANDLER_FAILURES.labels(group=group).inc()
                raise
            metrics.EVENTS_HANDLED.labels(group=group, outcome=outcome.value).inc()
            return outcome

        return handle

    def _batch_handler_for(self, group: str) -> BatchHandler | None:
        """The group's messages applied together (:meth:`MessageBus.consume_batch`), unless the group
        takes them one at a time. A failure that is not an outage is not counted here: the broker then
        hands each message to the single-message handler, which counts its own failures."""
        if not self.bus.groups[group].batched:
            return None

        def handle(envelopes: Sequence[Envelope]) -> object:
            try:
                outcomes = self.bus.consume_batch(group, envelopes)
            except Exception as exc:
                if self.unavailable(exc):
                    metrics.INFRASTRUCTURE_RETRIES.labels(group=group).inc()
                    raise InfrastructureUnavailable(f"database or broker unavailable: {type(exc).__name__}") from exc
                raise
            for outcome in outcomes:
                metrics.EVENTS_HANDLED.labels(group=group, outcome=outcome.value).inc()
            return outcomes

        return handle

    def _consumer_loop(self, group: str) -> Callable[[], None]:
        handler = self._handler_for(group)
        batch = self._batch_handler_for(group)
        return lambda: self.broker.consume(group, handler, self.store_dead_letter, self.stop_event, batch)

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
        for name, loop in self.jobs:
            self._spawn(name, partial(loop, self.stop_event))
        if self.relay is not None:
            relay = self.relay
            self._spawn("outbox-relay", lambda: relay.run_forever(self.stop_event))
        for name, interval_s, job in self.periodic:
            self._spawn(f"periodic-{name}", self._periodic_loop(name, interval_s, job))

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        if self.relay is not None:
            self.relay.wake.set()
        for thread in self.threads:
            thread.join(timeout)
        self.threads = []
