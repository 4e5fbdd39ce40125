"""Which failures mean "the database or the broker is unavailable", as opposed to "this message (or
request) is bad" — decided in one place, for the consumers, the worker and the API.

The distinction matters because the two call for opposite answers. A handler bug is retried a few times
and then dead-lettered; a database outage must not be: every message in flight would fail the same way
and end as a dead letter within seconds. The API answers the first with 500 and the second with 503 and
``Retry-After``.

Two degrees of certainty:

* :data:`Fault.UNAVAILABLE`: the error itself says the server went away or refuses writes — a dropped or
  invalidated connection, a pool that cannot hand out a connection, a read-only database (PostgreSQL
  SQLSTATE 25006, a hot standby, SQLite's ``SQLITE_READONLY``), a locked SQLite file, a broker
  connection that closed.
* :data:`Fault.SUSPECT`: a generic ``OperationalError`` / ``InterfaceError``. SQLite raises those for
  "no such table" as much as for a full disk, so the caller asks the database itself (a write probe)
  before deciding: a healthy database means the failure is the handler's.

The SQLAlchemy and pika knowledge stays here, out of the bus and the brokers' callers."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

import pika.exceptions
from sqlalchemy import exc as sa_exc

from hub.spine.brokers.base import BrokerUnavailable

__all__ = ["READ_ONLY_SQLSTATE", "Fault", "classify", "is_infrastructure_failure", "is_locked", "is_read_only",
           "sqlstate"]

READ_ONLY_SQLSTATE = "25006"  # read_only_sql_transaction

# PostgreSQL error classes and codes that say the server, not the statement, failed: connection
# exceptions (08), insufficient resources (53: disk full, out of memory, too many connections),
# operator intervention (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now),
# system errors (58: I/O), and a read-only transaction (25006: default_transaction_read_only, standby).
_UNAVAILABLE_CLASSES = ("08", "53", "58")
_UNAVAILABLE_CODES = frozenset({"57P01", "57P02", "57P03", READ_ONLY_SQLSTATE})

# SQLite result codes (Python 3.11+ exposes ``sqlite_errorname``) and, for older drivers, the messages.
_SQLITE_UNAVAILABLE_NAMES = ("SQLITE_READONLY", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR",
                             "SQLITE_FULL", "SQLITE_CANTOPEN")
_SQLITE_UNAVAILABLE_TEXT = ("attempt to write a readonly database", "database is locked",
                            "database table is locked", "unable to open database file", "disk i/o error",
                            "database or disk is full")


class Fault(StrEnum):
    UNAVAILABLE = "unavailable"  # the database or broker is down or refuses writes: retry later
    SUSPECT = "suspect"  # may be either: ask the database before blaming the message


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it was raised from (a handler may wrap a database error), bounded."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 6:
        yield current
        seen += 1
        current = current.__cause__


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE behind a SQLAlchemy error (psycopg 3 ``sqlstate``, psycopg2 ``pgcode``)."""
    orig = getattr(exc, "orig", exc)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return str(code) if code else None


def _sqlite_unavailable(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", exc)
    name = getattr(orig, "sqlite_errorname", None)
    if isinstance(name, str) and name.startswith(_SQLITE_UNAVAILABLE_NAMES):
        return True
    if type(orig).__module__ != "sqlite3":
        return False
    text = str(orig).lower()
    return any(fragment in text for fragment in _SQLITE_UNAVAILABLE_TEXT)


def _classify_one(exc: BaseException) -> Fault | None:
    if isinstance(exc, (BrokerUnavailable, pika.exceptions.AMQPConnectionError,
                        pika.exceptions.AMQPChannelError, pika.exceptions.StreamLostError)):
        return Fault.UNAVAILABLE
    if isinstance(exc, (sa_exc.DisconnectionError, sa_exc.TimeoutError)):  # TimeoutError: the pool's
        return Fault.UNAVAILABLE
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return Fault.UNAVAILABLE
        code = sqlstate(exc)
        if code and (code in _UNAVAILABLE_CODES or code.startswith(_UNAVAILABLE_CLASSES)):
            return Fault.UNAVAILABLE
        if _sqlite_unavailable(exc):
            return Fault.UNAVAILABLE
        if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return Fault.SUSPECT
        return None
    return None


def classify(exc: BaseException) -> Fault | None:
    """:data:`Fault.UNAVAILABLE`, :data:`Fault.SUSPECT` or None (the failure is the handler's or the
    request's own). The most certain verdict along the ``raise … from`` chain wins."""
    verdicts = {_classify_one(e) for e in _chain(exc)}
    if Fault.UNAVAILABLE in verdicts:
        return Fault.UNAVAILABLE
    if Fault.SUSPECT in verdicts:
        return Fault.SUSPECT
    return None


def is_infrastructure_failure(exc: BaseException) -> bool:
    """Certainly or possibly the database or broker rather than the message: for the API, which has no
    time to probe and answers both with 503 (a retry is cheap; a 500 for an outage is a lie)."""
    return classify(exc) is not None


def is_locked(exc: BaseException) -> bool:
    """SQLite's write lock stayed taken past the busy timeout."""
    for e in _chain(exc):
        orig = getattr(e, "orig", e)
        if str(getattr(orig, "sqlite_errorname", "")).startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or (
            type(orig).__module__ == "sqlite3" and "is locked" in str(orig).lower()
        ):
            return True
    return False


def is_read_only(exc: BaseException) -> bool:
    """The database refused a write because it is read-only (PostgreSQL 25006 or SQLite read-only)."""
    for e in _chain(exc):
        if sqlstate(e) == READ_ONLY_SQLSTATE:
            return True
        orig = getattr(e, "orig", e)
        if getattr(orig, "sqlite_errorname", None) == "SQLITE_READONLY" or (
            type(orig).__module__ == "sqlite3" and "readonly database" in str(orig).lower()
        ):
            return True
    return False
