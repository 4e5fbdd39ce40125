"""Persistence of registered webhook endpoints and their batched deliveries (``uow.endpoints``).

An endpoint is stored as a ``subscriptions`` row with ``batch`` set, so the delivery machinery (claim,
lease, per-notice order, retries, 410) treats it as the target it already knows; the subscriptions on
it are rows of channel ``endpoint`` naming it in ``endpoint_id``. Matched ids are classified in SQL
(one ``= ANY(array)`` lookup on PostgreSQL, chunked ``IN`` on SQLite) rather than kept in each worker's
memory: at a million subscriptions, a map of them per process would cost more than the index itself.

Bulk loads write rows with ``COPY`` (PostgreSQL) or ``executemany`` (SQLite) in chunks and append ONE change-log entry,
:data:`~hub.subscriptions.index_cache.RELOAD_ALL`, which makes every worker's index reload in full
instead of replaying a million single changes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import String, Table, any_, bindparam, delete, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from hub.subscriptions.index_cache import RELOAD_ALL
from hub.subscriptions.model import Channel, DeliveryStatus, Subscription
from hub.subscriptions.repository import _insert, _to_aggregate, note_change, utcnow
from hub.subscriptions.tables import DeliveryRow, SubscriptionRow

__all__ = ["EndpointRepository", "SqlEndpointRepository"]

IN_CHUNK = 5_000  # ids per IN (…) on SQLite, under its bound-parameter limit


class EndpointRepository(Protocol):
    def list_for(self, org_id: str) -> list[Subscription]:
        """The organisation's endpoints, oldest first."""
    def subscriptions_on(self, endpoint_id: str, after: str | None, limit: int) -> list[Subscription]:
        """A page of the subscriptions on an endpoint, by id."""
    def count_on(self, endpoint_id: str) -> int: ...
    def remove_subscriptions_on(self, endpoint_id: str) -> int: ...
    def add_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert prepared ``subscriptions`` rows at once (a bulk load); the caller notes the change."""
    def reload_all(self) -> None:
        """Tell every worker's matching index to reload in full (after a bulk change)."""
    def classify(self, ids: Iterable[str]) -> tuple[dict[str, str], set[str]]:
        """Of ``ids``: each subscription on an endpoint with that endpoint, and the endpoints."""
    def earlier_batches(self, notice_id: str, version: int, endpoint_ids: Iterable[str]) -> dict[str, set[str]]:
        """Per endpoint, the subscriptions still on it that an earlier version of the notice went to."""
    def add_batched(self, recipients: Mapping[str, Sequence[str]], notice_id: str, version: int, seq: int,
                    kind: str) -> int:
        """One delivery per endpoint carrying its recipients (sorted); a version matched twice adds none."""


def _chunks(ids: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


class SqlEndpointRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def list_for(self, org_id: str) -> list[Subscription]:
        stmt = (select(SubscriptionRow).where(SubscriptionRow.org_id == org_id, SubscriptionRow.batch)
                .order_by(SubscriptionRow.created_at))
        return [_to_aggregate(row) for row in self.session.scalars(stmt)]

    def subscriptions_on(self, endpoint_id: str, after: str | None, limit: int) -> list[Subscription]:
        stmt = select(SubscriptionRow).where(SubscriptionRow.endpoint_id == endpoint_id)
        if after is not None:
            stmt = stmt.where(SubscriptionRow.id > after)
        return [_to_aggregate(row) for row in self.session.scalars(stmt.order_by(SubscriptionRow.id).limit(limit))]

    def count_on(self, endpoint_id: str) -> int:
        stmt = select(func.count()).select_from(SubscriptionRow).where(SubscriptionRow.endpoint_id == endpoint_id)
        return int(self.session.scalar(stmt) or 0)

    def remove_subscriptions_on(self, endpoint_id: str) -> int:
        result = self.session.execute(delete(SubscriptionRow).where(SubscriptionRow.endpoint_id == endpoint_id)
                                      .execution_options(synchronize_session=False))
        self.reload_all()
        return int(result.rowcount)  # type: ignore[attr-defined]

    def add_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """COPY on PostgreSQL (several times faster than row-wise inserts); one executemany on SQLite."""
        if not rows:
            return
        table = cast(Table, SubscriptionRow.__table__)
        if self.session.get_bind().dialect.name != "postgresql":
            self.session.connection().execute(insert(table), list(rows))
            return
        columns = list(rows[0])
        json_columns = {"filter", "secrets"}
        raw = self.session.connection().connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(  # type: ignore[union-attr]
                f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([json.dumps(row[c]) if c in json_columns else row[c] for c in columns])

    def reload_all(self) -> None:
        note_change(self.session, RELOAD_ALL)

    def _rows_among(self, ids: Sequence[str]) -> Iterator[tuple[str, str | None, bool]]:
        """Looked up by primary key only: a condition on ``endpoint_id`` tempts the planner into
        walking that index over every subscription on an endpoint (ten times slower at 200k)."""
        columns = select(SubscriptionRow.id, SubscriptionRow.endpoint_id, SubscriptionRow.batch)
        if self.session.get_bind().dialect.name == "postgresql":
            array = bindparam("ids", list(ids), type_=ARRAY(String()))
            yield from self.session.execute(columns.where(SubscriptionRow.id == any_(array))).tuples()
            return
        for chunk in _chunks(ids, IN_CHUNK):
            yield from self.session.execute(columns.where(SubscriptionRow.id.in_(list(chunk)))).tuples()

    def classify(self, ids: Iterable[str]) -> tuple[dict[str, str], set[str]]:
        members: dict[str, str] = {}
        endpoints: set[str] = set()
        wanted = list(ids)
        if not wanted:
            return members, endpoints
        for sid, endpoint_id, batch in self._rows_among(wanted):
            if batch:
                endpoints.add(sid)
            elif endpoint_id is not None:
                members[sid] = endpoint_id
        return members, endpoints

    def earlier_batches(self, notice_id: str, version: int, endpoint_ids: Iterable[str]) -> dict[str, set[str]]:
        wanted = list(endpoint_ids)
        if not wanted:
            return {}
        stmt = select(DeliveryRow.subscription_id, DeliveryRow.recipients).where(
            DeliveryRow.notice_id == notice_id, DeliveryRow.version < version,
            DeliveryRow.subscription_id.in_(wanted))
        earlier: dict[str, set[str]] = {}
        for endpoint_id, recipients in self.session.execute(stmt).tuples():
            earlier.setdefault(endpoint_id, set()).update(recipients or [])
        # Only those still on the endpoint: a deleted subscription hears nothing more.
        members, _ = self.classify([sid for ids in earlier.values() for sid in ids])
        return {endpoint_id: {sid for sid in ids if members.get(sid) == endpoint_id}
                for endpoint_id, ids in earlier.items()}

    def add_batched(self, recipients: Mapping[str, Sequence[str]], notice_id: str, version: int, seq: int,
                    kind: str) -> int:
        now = utcnow()
        rows = [
            {"subscription_id": endpoint_id, "notice_id": notice_id, "version": version, "seq": seq, "kind": kind,
             "status": DeliveryStatus.PENDING.value, "attempts": 0, "next_attempt_at": now,
             "created_at": now, "updated_at": now, "recipients": sorted(ids)}
            for endpoint_id, ids in recipients.items() if ids
        ]
        if rows:
            self.session.execute(_insert(self.session, DeliveryRow).on_conflict_do_nothing(), rows)
        return len(rows)


def subscription_row(subscription: Subscription, filter_doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A ``subscriptions`` row for :meth:`SqlEndpointRepository.add_many` (a subscription on an endpoint)."""
    return {"id": subscription.id, "org_id": subscription.org_id, "name": subscription.name,
            "channel": Channel.ENDPOINT.value, "url": None, "filter": filter_doc, "routable": False,
            "status": subscription.status, "disabled_reason": None, "secrets": [], "created_at": now,
            "updated_at": now, "endpoint_id": subscription.endpoint_id, "batch": False}
