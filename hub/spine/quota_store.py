"""Token buckets in the ``rate_buckets`` table, so every API process and worker on one PostgreSQL
database spends one budget.

Each ``take`` is its own short transaction on its own connection, never the request's unit of work:
create the missing rows (``ON CONFLICT DO NOTHING``), lock the named rows in name order
(``SELECT … FOR UPDATE``; the same order everywhere, so two callers never deadlock), apply
:func:`hub.spine.quotas.charge`, write back, commit. Concurrent requests on one bucket queue on its row
lock for the few milliseconds that takes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import Engine, Table, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hub.spine.db import READ_ONLY
from hub.spine.quotas import Bucket, Clock, Decision, InMemoryBuckets, Policy, charge
from hub.spine.tables import RateBucketRow

__all__ = ["DatabaseBuckets", "make_bucket_store"]

_table: Table = RateBucketRow.__table__  # type: ignore[assignment]


class DatabaseBuckets:
    def __init__(self, engine: Engine, clock: Clock = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def take(self, wanted: Sequence[tuple[str, Policy]], cost: int = 1) -> list[Decision]:
        policies = dict(wanted)
        names = sorted(policies)
        with self.engine.begin() as conn:
            now = self.clock()
            fresh = [{"name": name, "tokens": float(policies[name].limit), "updated_at": now} for name in names]
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            conn.execute(insert(_table).on_conflict_do_nothing(index_elements=["name"]), fresh)
            query = select(_table.c.name, _table.c.tokens, _table.c.updated_at).where(
                _table.c.name.in_(names)).order_by(_table.c.name).with_for_update()
            stored = {row.name: Bucket(row.tokens, row.updated_at) for row in conn.execute(query)}
            buckets, decisions = charge([(policies[name], stored.get(name)) for name in names], now, cost)
            conn.execute(
                update(_table).where(_table.c.name == bindparam("b_name")).values(
                    tokens=bindparam("b_tokens"), updated_at=bindparam("b_updated_at")),
                [{"b_name": name, "b_tokens": b.tokens, "b_updated_at": b.updated_at}
                 for name, b in zip(names, buckets, strict=True)],
            )
        by_name = dict(zip(names, decisions, strict=True))
        return [by_name[name] for name, _ in wanted]

    def peek(self, name: str, policy: Policy) -> Decision:
        """A plain read (no lock, no write): the cheap look before an expensive key check."""
        with self.engine.execution_options(**{READ_ONLY: True}).connect() as conn:  # SQLite: deferred BEGIN
            row = conn.execute(select(_table.c.tokens, _table.c.updated_at).where(_table.c.name == name)).first()
        stored = Bucket(row.tokens, row.updated_at) if row is not None else None
        return charge([(policy, stored)], self.clock())[1][0]

    def forget_idle(self, idle_s: float) -> int:
        """Delete buckets untouched for ``idle_s`` (at least the longest window: they are full again, the
        same as no row), so client addresses seen once do not stay forever. Returns how many went."""
        with self.engine.begin() as conn:
            result = conn.execute(delete(_table).where(_table.c.updated_at < self.clock() - idle_s))
        return int(result.rowcount or 0)


def make_bucket_store(kind: str, engine: Engine, clock: Clock = time.time) -> DatabaseBuckets | InMemoryBuckets:
    """``auto``: the database on PostgreSQL, this process's memory on SQLite."""
    shared = kind == "database" or (kind == "auto" and engine.dialect.name == "postgresql")
    return DatabaseBuckets(engine, clock) if shared else InMemoryBuckets(clock)
