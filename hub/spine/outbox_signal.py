"""Waking the outbox relay as soon as outbox rows commit, instead of at its next poll.

Two signals, both only ever for committed rows:

- **In the process**: a unit of work that committed outbox rows sets every wake event registered for
  its engine (the relay of ``g2bhub serve``, or of a worker in the same process as the writer).
- **PostgreSQL, across processes**: a statement trigger on ``outbox`` (migration 0012) runs
  ``pg_notify('g2bhub_outbox', '')`` inside the transaction that inserts the rows, whichever code
  wrote them and at no extra round trip; PostgreSQL delivers the notification only when (and if) that
  transaction commits. Each relay ``LISTEN``s on a dedicated connection (:func:`listen`) and
  reconnects after an outage.

Neither replaces the relay's poll: a lost notification (a listener reconnecting, rows written by a
path that does not signal) costs at most one poll interval."""

from __future__ import annotations

import logging
import threading
import weakref

from sqlalchemy import Engine

from hub.spine.retry import Backoff, Jitter

__all__ = ["CHANNEL", "committed", "conninfo", "listen", "register", "unregister"]

log = logging.getLogger(__name__)

CHANNEL = "g2bhub_outbox"  # the name migration 0012's trigger notifies
LISTEN_TIMEOUT_S = 1.0  # how often the listener looks at its stop event

_waiters: weakref.WeakKeyDictionary[Engine, set[threading.Event]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def register(engine: Engine, wake: threading.Event) -> None:
    """Set ``wake`` whenever a unit of work on ``engine`` in this process commits outbox rows."""
    with _lock:
        _waiters.setdefault(engine, set()).add(wake)


def unregister(engine: Engine, wake: threading.Event) -> None:
    with _lock:
        _waiters.get(engine, set()).discard(wake)


def committed(engine: Engine) -> None:
    """After the commit: wake this process's relays on ``engine``."""
    with _lock:
        waiters = list(_waiters.get(engine, ()))
    for wake in waiters:
        wake.set()


def conninfo(engine: Engine) -> str | None:
    """The libpq connection string of a PostgreSQL engine (for the listener); None on SQLite."""
    if engine.dialect.name != "postgresql":
        return None
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def listen(dsn: str, wake: threading.Event, stop: threading.Event, max_backoff_s: float = 30.0) -> None:
    """Until ``stop``: hold a connection that ``LISTEN``s on :data:`CHANNEL` and set ``wake`` on every
    notification. After a lost connection it reconnects with backoff and sets ``wake`` once, for
    whatever committed while nobody listened."""
    import psycopg

    backoff = Backoff(0.5, max(0.5, max_backoff_s), jitter=Jitter(0.5, 1.0))
    failures = 0
    while not stop.is_set():
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as connection:
                connection.execute(f"LISTEN {CHANNEL}")
                failures = 0
                wake.set()
                while not stop.is_set():
                    for _ in connection.notifies(timeout=LISTEN_TIMEOUT_S):
                        wake.set()
        except Exception as exc:  # any failure: listen again later; the poll covers the gap
            if stop.is_set():
                return
            failures += 1
            delay = backoff.delay(failures)
            log.warning("outbox listener lost its connection; relying on the poll until it is back",
                        extra={"error": repr(exc), "retry_in_s": round(delay, 3)})
            stop.wait(delay)
