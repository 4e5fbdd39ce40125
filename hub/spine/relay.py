"""The outbox relay: hands committed outbox rows to the broker in commit order and marks them published
only after the broker has confirmed them. A broker outage leaves rows pending; nothing is lost."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from sqlalchemy import Engine, Select, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from hub.spine import leases, outbox_signal
from hub.spine.brokers.base import Broker, BrokerUnavailable
from hub.spine.faults import is_infrastructure_failure
from hub.spine.messages import Envelope
from hub.spine.observability import metrics
from hub.spine.retry import Backoff
from hub.spine.tables import OutboxRow

__all__ = ["OutboxRelay"]

log = logging.getLogger(__name__)

LAG_INTERVAL_S = 1.0  # the backlog gauges need no fresher figures than this
# Woken by commits, the relay still runs at most once per this long: an idle hub relays an event at
# once, a busy one gathers the commits of a few milliseconds into one batch (one broker round trip and
# one marking transaction for many rows, and batches for the consumers to apply together).
GATHER_S = 0.02


class OutboxRelay:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        broker: Broker,
        batch_size: int = 200,
        poll_interval_s: float = 0.2,
        max_backoff_s: float = 30.0,
        listen: bool = True,
    ) -> None:
        """``listen``: be woken when outbox rows commit (:mod:`hub.spine.outbox_signal`), not only
        every ``poll_interval_s``."""
        self.session_factory = session_factory
        self.broker = broker
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        # After a failure: twice the poll interval (half a second at least), doubling while failures last.
        self.backoff = Backoff(max(0.5, 2 * poll_interval_s), max_backoff_s)
        self.max_backoff_s = max_backoff_s
        self.listen = listen
        self.wake = threading.Event()
        self._lag_measured = 0.0

    def _pending(self) -> Select[OutboxRow]:
        return (
            select(OutboxRow)
            .where(OutboxRow.published_at.is_(None))
            .order_by(OutboxRow.id)
            .limit(self.batch_size)
        )

    def run_once(self) -> int:
        """Relay one batch; returns how many rows were handed over."""
        with self.session_factory() as session:
            rows = list(session.scalars(leases.skip_locked(session, self._pending())))
            if leases.holds_row_locks(session):
                # Competing relays each take rows nobody else holds; locks last until marked.
                if not rows:
                    session.rollback()
                    return 0
                self.broker.publish([Envelope.read(r) for r in rows])
                now = datetime.now(UTC)
                for row in rows:
                    row.published_at = now
                session.commit()
                count = len(rows)
            else:
                # SQLite has one writer: read, publish with no lock held (the embedded consumers must
                # be able to write meanwhile), then mark. A second relay could publish a row twice;
                # the consumers' inbox makes that harmless.
                envelopes = [Envelope.read(r) for r in rows]
                ids = [r.id for r in rows]
                session.rollback()  # expires rows: read nothing from them after this line
                if not envelopes:
                    return 0
                self.broker.publish(envelopes)
                session.execute(
                    update(OutboxRow).where(OutboxRow.id.in_(ids)).values(published_at=datetime.now(UTC))
                )
                session.commit()
                count = len(ids)
        metrics.EVENTS_RELAYED.inc(count)
        return count

    def measure_lag(self) -> tuple[int, float]:
        with self.session_factory() as session:
            pending, oldest = session.execute(
                select(func.count(OutboxRow.id), func.min(OutboxRow.occurred_at)).where(
                    OutboxRow.published_at.is_(None)
                )
            ).one()
            session.rollback()
        lag = 0.0
        if oldest is not None:
            if oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)
            lag = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        metrics.OUTBOX_PENDING.set(pending)
        metrics.OUTBOX_LAG.set(lag)
        return int(pending), lag

    def run_forever(self, stop: threading.Event) -> None:
        """Relay until ``stop``; between batches, sleep until woken by a commit (or the poll interval)."""
        engine = getattr(self.session_factory, "kw", {}).get("bind")
        if not self.listen or not isinstance(engine, Engine):
            self._relay_loop(stop)
            return
        outbox_signal.register(engine, self.wake)
        dsn = outbox_signal.conninfo(engine)
        listener = None
        if dsn is not None:
            listener = threading.Thread(target=outbox_signal.listen, args=(dsn, self.wake, stop, self.max_backoff_s),
                                        name="outbox-listener", daemon=True)
            listener.start()
        try:
            self._relay_loop(stop)
        finally:
            outbox_signal.unregister(engine, self.wake)
            if listener is not None:
                listener.join(outbox_signal.LISTEN_TIMEOUT_S * 3)

    def _relay_loop(self, stop: threading.Event) -> None:
        failures = 0  # in a row
        gather_s = min(GATHER_S, self.poll_interval_s)
        while not stop.is_set():
            started = time.monotonic()
            try:
                moved = self.run_once()
            except Exception as exc:
                metrics.RELAY_FAILURES.inc()
                if isinstance(exc, BrokerUnavailable):
                    log.warning("broker unavailable; outbox rows stay pending", extra={"error": str(exc)})
                elif is_infrastructure_failure(exc):  # expected during an outage: no traceback each time
                    log.warning("database unavailable; outbox rows stay pending", extra={"error": repr(exc)})
                else:
                    log.exception("relay batch failed; retrying")
                failures += 1
                stop.wait(self.backoff.delay(failures))
                continue
            failures = 0
            if moved < self.batch_size:
                if time.monotonic() - self._lag_measured >= LAG_INTERVAL_S:
                    self._lag_measured = time.monotonic()
                    try:
                        self.measure_lag()
                    except Exception:
                        log.exception("could not measure outbox lag")
                if self.wake.wait(self.poll_interval_s):  # a commit, not the poll
                    rest = gather_s - (time.monotonic() - started)
                    if rest > 0:
                        stop.wait(rest)
                self.wake.clear()
