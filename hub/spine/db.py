"""Engines and sessions. SQLite (embedded default) gets WAL, foreign keys and a busy timeout; a session
that writes begins ``BEGIN IMMEDIATE`` (it takes the one write lock first, so writers queue instead of
failing to upgrade), a session that only reads (:func:`make_read_session_factory`) begins a plain
deferred ``BEGIN``: in WAL mode a reader never waits for a writer and never holds one up. PostgreSQL
uses psycopg 3 and begins every session the same way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from hub.spine.faults import READ_ONLY_SQLSTATE, is_locked, is_read_only, sqlstate
from hub.spine.settings import DatabaseSettings

__all__ = [
    "READ_ONLY",
    "WriteCheck",
    "check_writable",
    "make_engine",
    "make_read_session_factory",
    "make_session_factory",
    "normalise_url",
]

# Execution option of the connections a read-only session uses: on SQLite they begin deferred.
READ_ONLY = "g2bhub_read_only"


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and pick the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _prepare_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")  # how long a writer waits for the write lock
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A reader's deferred BEGIN takes no lock: its snapshot starts at its first read. A writer's
        # BEGIN IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so it never
        # has to upgrade a read snapshot another writer has made stale.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def make_engine(settings: DatabaseSettings) -> Engine:
    url = make_url(normalise_url(settings.url))
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=settings.echo,
            connect_args={"check_same_thread": False, "timeout": settings.sqlite_busy_timeout_s},
            # As many connections at most as on PostgreSQL, but all of them kept: an overflow connection
            # would be opened (four PRAGMAs) and closed again for every request beyond pool_size.
            pool_size=2 * settings.pool_size,
            max_overflow=0,
        )
        _prepare_sqlite(engine, int(settings.sqlite_busy_timeout_s * 1000))
        return engine
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = settings.connect_timeout_s
    engine = create_engine(
        url,
        echo=settings.echo,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        pool_pre_ping=True,
        connect_args=connect_args,
    )
    _read_only_drops_the_pool(engine)
    return engine


def _read_only_drops_the_pool(engine: Engine) -> None:
    """A write refused as read-only (SQLSTATE 25006) is handled like a lost connection: the pool is
    invalidated, so the next attempt connects afresh. A session keeps the read-only default it started
    with, and after a failover the pooled connections may still point at the old primary; without this
    the hub would keep failing writes on them long after the database takes writes again."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        if sqlstate(context.original_exception) == READ_ONLY_SQLSTATE:
            context.is_disconnect = True


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that may write (on SQLite they begin ``BEGIN IMMEDIATE``)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def make_read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that only read, on the same pool: on SQLite they begin deferred, so a request that reads
    (or authenticates) never takes the write lock nor waits for it. PostgreSQL is unaffected."""
    return sessionmaker(bind=engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)


@dataclass(frozen=True)
class WriteCheck:
    """Whether the database takes writes now: ``ok``, ``read-only`` or ``unreachable`` (with the
    exception type, never its text: it may name hosts)."""

    state: Literal["ok", "read-only", "unreachable"]
    detail: str = ""

    @property
    def writable(self) -> bool:
        return self.state == "ok"


# A write statement that changes nothing: the database refuses it when it is read-only (PostgreSQL
# checks at executor start, SQLite when it opens the write transaction), yet it writes no row, so a
# probe every few seconds costs nothing and blocks no one for longer than its timeout.
_NO_OP_WRITE = "UPDATE alembic_version SET version_num = version_num WHERE 1 = 0"


def check_writable(engine: Engine, timeout_s: float = 2.0) -> WriteCheck:
    """``SELECT 1`` says the server answers; this says it would take a write. PostgreSQL: the session's
    ``transaction_read_only`` (set by ``default_transaction_read_only`` or a hot standby) and
    ``pg_is_in_recovery()``, then a no-op UPDATE; SQLite: ``BEGIN IMMEDIATE`` (the write lock, waited
    for at most ``timeout_s``) and the same no-op UPDATE, rolled back."""
    try:
        with engine.connect() as conn:
            sqlite = engine.dialect.name == "sqlite"
            # On the DBAPI connection: a statement on ``conn`` would autobegin, i.e. BEGIN IMMEDIATE
            # with the long timeout.
            raw: Any = conn.connection.dbapi_connection
            if sqlite:
                configured = raw.execute("PRAGMA busy_timeout").fetchone()[0]
                raw.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
            try:
                transaction = conn.begin()  # on SQLite: BEGIN IMMEDIATE (see _prepare_sqlite)
                try:
                    if engine.dialect.name == "postgresql":
                        ms = int(timeout_s * 1000)
                        conn.execute(text(f"SET LOCAL statement_timeout = {ms}"))
                        conn.execute(text(f"SET LOCAL lock_timeout = {ms}"))
                        found = None
                        if conn.execute(text("SELECT pg_is_in_recovery()")).scalar():
                            found = WriteCheck("read-only", "the server is a standby (in recovery)")
                        elif conn.execute(text("SHOW transaction_read_only")).scalar() == "on":
                            found = WriteCheck("read-only", "transactions are read-only")
                        if found is not None:
                            # like a refused write (see _read_only_drops_the_pool): not back to the pool
                            conn.invalidate()
                            return found
                    conn.execute(text(_NO_OP_WRITE))
                finally:
                    if transaction.is_active:
                        transaction.rollback()
            finally:
                if sqlite:
                    raw.execute(f"PRAGMA busy_timeout={int(configured)}")
            return WriteCheck("ok")
    except Exception as exc:  # any failure to reach or write is "not writable"; say which kind
        if is_read_only(exc):
            return WriteCheck("read-only", "the database refused a write")
        if is_locked(exc):
            return WriteCheck("unreachable", f"the write lock stayed taken for {timeout_s:g} s")
        return WriteCheck("unreachable", type(exc).__name__)
