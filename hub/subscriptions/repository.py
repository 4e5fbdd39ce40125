"""Persistence of subscriptions: the interfaces handlers see on the unit of work (``uow.subscriptions``,
``uow.deliveries``, ``uow.notice_versions``) and their SQL implementations, plus the set-based queries
the delivery dispatcher runs on its own session.

Subscriptions are mapped row ⇄ aggregate by hand: the row keeps the filter as the API's JSON and a
``routable`` flag the index and the dispatcher filter on in SQL. Every write of a subscription appends
to the change log (``subscription_changes``) in the same transaction, which is how every worker's
matching index learns of it.

Inserts of matched deliveries use ``ON CONFLICT DO NOTHING`` (PostgreSQL and SQLite both have it), all
of a version's rows in one statement (on PostgreSQL the ids as one array parameter):
a notice version matched twice — a replayed event under a new message id — adds nothing and does not
abort the unit of work, while the inbox already absorbs plain redeliveries.

The matching cursor (``uow.matching_cursor``) is one row per matcher, locked for the whole matching
transaction: ``FOR UPDATE`` on PostgreSQL (a consumer waits for the matcher ahead of it, then sees how
far it got), ``SKIP LOCKED`` for the periodic sweep (someone is already matching); SQLite transactions
begin ``IMMEDIATE`` and are one at a time anyway."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import and_, bindparam, exists, func, or_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from hub.spine import leases
from hub.spine.tables import BigId, UTCDateTime
from hub.spine.unit_of_work import UnitOfWork
from hub.subscriptions.filters import SubscriptionFilter
from hub.subscriptions.model import (
    GONE_STATUS,
    OPEN,
    Channel,
    DeliveryRecord,
    DeliveryStatus,
    Subscription,
    filter_json,
)
from hub.subscriptions.reader import NoticeReader
from hub.subscriptions.tables import (
    DeliveryRow,
    MatchingCursorRow,
    PayloadRow,
    SubscriptionChangeRow,
    SubscriptionRow,
)

if TYPE_CHECKING:
    from hub.subscriptions.endpoint_repository import EndpointRepository

__all__ = [
    "MATCHING_CURSOR",
    "DeliveryRepository",
    "MatchingCursor",
    "SqlDeliveryRepository",
    "SqlMatchingCursor",
    "SqlSubscriptionRepository",
    "SubscriptionRepository",
    "SubscriptionsUnitOfWork",
    "any_queued_channel",
    "claim_due",
    "leased_counts",
    "load_claimed",
    "note_change",
    "queued_subscriptions",
    "release_claims",
    "renew_claims",
    "renew_held",
    "utcnow",
]


MATCHING_CURSOR = "syndication-matching"  # the matcher's cursor row (seeded by migration 0007)


def utcnow() -> datetime:
    return datetime.now(UTC)


class SubscriptionRepository(Protocol):
    def add(self, subscription: Subscription) -> None: ...
    def get(self, subscription_id: str) -> Subscription | None: ...
    def save(self, subscription: Subscription) -> None:
        """Write back a changed subscription (and log the change for the matching indexes)."""
    def remove(self, subscription: Subscription) -> None: ...
    def list_for(self, org_id: str) -> list[Subscription]: ...
    # The change log every worker's matching index replays (see index_cache).
    def last_change(self) -> int: ...
    def changes_after(self, floor: int) -> list[tuple[int, str]]: ...
    def matchable_filters(self, ids: Sequence[str] | None = None) -> dict[str, SubscriptionFilter]:
        """Filters of the given (or all) subscriptions the index should hold; absent ids are not.
        Disabled subscriptions are held too: their deliveries wait for the reactivation."""


class MatchingCursor(Protocol):
    """How far along the changes feed matching has got (every version up to it is matched)."""

    def position(self) -> int:
        """The committed position, without a lock (a version at or below it is matched and committed)."""
    def hold(self, wait: bool) -> int | None:
        """Lock the cursor for this transaction and return its position; ``wait=False`` answers None
        at once when another transaction holds it."""
    def advance(self, seq: int) -> None: ...


class DeliveryRepository(Protocol):
    def add_payload(self, notice_id: str, version: int, kind: str, seq: int, routing_key: str,
                    body: dict[str, Any]) -> None: ...
    def add_deliveries(self, subscription_ids: Iterable[str], notice_id: str, version: int, seq: int,
                       kind: str) -> int:
        """A pending delivery of the version per subscription id (in any order, duplicates allowed),
        written in id order; ids that have one already are skipped. Returns the rows created."""
    def earlier_recipients(self, notice_id: str, version: int) -> set[str]: ...
    def end_open(self, subscription_id: str, reason: str) -> None: ...
    def resume(self, subscription_id: str, now: datetime) -> list[int]:
        """Deliveries a 410 ended back to pending (the subscriber catches up on reactivation)."""
    def skip_missed(self, subscription_id: str, reason: str, now: datetime) -> list[int]:
        """Open deliveries and those a 410 ended, marked skipped (the subscriber chose "from now")."""
    def dead(self, subscription_id: str, ids: Sequence[int] | None = None) -> list[int]: ...
    def replay(self, ids: Sequence[int], now: datetime) -> None: ...
    def page(self, subscription_id: str, status: str | None, after: int | None, limit: int
             ) -> list[DeliveryRecord]: ...
    def counts(self, subscription_id: str) -> dict[str, int]: ...


class SubscriptionsUnitOfWork(UnitOfWork, Protocol):
    """Read-only members, so any unit of work carrying these repositories (SQL or fake) is one."""

    @property
    def subscriptions(self) -> SubscriptionRepository: ...
    @property
    def deliveries(self) -> DeliveryRepository: ...
    @property
    def notice_versions(self) -> NoticeReader: ...
    @property
    def matching_cursor(self) -> MatchingCursor: ...
    @property
    def endpoints(self) -> EndpointRepository: ...


def note_change(session: Session, subscription_id: str) -> None:
    """Append to the change log every worker's index replays (same transaction as the change)."""
    session.add(SubscriptionChangeRow(subscription_id=subscription_id, changed_at=utcnow()))


def _to_aggregate(row: SubscriptionRow) -> Subscription:
    return Subscription(id=row.id, org_id=row.org_id, name=row.name, channel=Channel(row.channel),
                        filter=SubscriptionFilter.parse(row.filter), url=row.url, status=row.status,
                        disabled_reason=row.disabled_reason, secrets=list(row.secrets or []),
                        created_at=row.created_at, updated_at=row.updated_at, endpoint_id=row.endpoint_id,
                        batch=bool(row.batch))


def _copy_onto(row: SubscriptionRow, sub: Subscription) -> None:
    row.org_id, row.name, row.channel, row.url = sub.org_id, sub.name, sub.channel.value, sub.url
    row.filter, row.routable = filter_json(sub.filter), sub.routable
    row.status, row.disabled_reason, row.secrets = sub.status, sub.disabled_reason, list(sub.secrets)
    row.created_at, row.updated_at = sub.created_at, sub.updated_at
    row.endpoint_id, row.batch = sub.endpoint_id, sub.batch


class SqlSubscriptionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, subscription: Subscription) -> None:
        row = SubscriptionRow(id=subscription.id)
        _copy_onto(row, subscription)
        self.session.add(row)
        note_change(self.session, subscription.id)

    def get(self, subscription_id: str, *, for_update: bool = False) -> Subscription | None:
        """``for_update`` locks the row (PostgreSQL) and reads its latest committed state, so two
        writers deciding on the same transition (two dispatchers recording a 410) take turns."""
        row = self.session.get(SubscriptionRow, subscription_id, with_for_update=for_update or None,
                               populate_existing=for_update)
        return None if row is None else _to_aggregate(row)

    def save(self, subscription: Subscription) -> None:
        row = self.session.get(SubscriptionRow, subscription.id)
        if row is None:
            raise LookupError(f"subscription {subscription.id!r} is not stored")
        _copy_onto(row, subscription)
        note_change(self.session, subscription.id)

    def remove(self, subscription: Subscription) -> None:
        row = self.session.get(SubscriptionRow, subscription.id)
        if row is not None:
            self.session.delete(row)
        note_change(self.session, subscription.id)

    def list_for(self, org_id: str) -> list[Subscription]:
        """Subscriptions with a channel of their own (endpoints and what is on them are listed apart)."""
        stmt = (select(SubscriptionRow).where(SubscriptionRow.org_id == org_id, ~SubscriptionRow.batch,
                                              SubscriptionRow.endpoint_id.is_(None))
                .order_by(SubscriptionRow.created_at))
        return [_to_aggregate(row) for row in self.session.scalars(stmt)]

    def last_change(self) -> int:
        return int(self.session.scalar(select(func.max(SubscriptionChangeRow.id))) or 0)

    def changes_after(self, floor: int) -> list[tuple[int, str]]:
        stmt = (select(SubscriptionChangeRow.id, SubscriptionChangeRow.subscription_id)
                .where(SubscriptionChangeRow.id > floor).order_by(SubscriptionChangeRow.id))
        return [(int(cid), str(sid)) for cid, sid in self.session.execute(stmt).all()]

    def matchable_filters(self, ids: Sequence[str] | None = None) -> dict[str, SubscriptionFilter]:
        stmt = select(SubscriptionRow.id, SubscriptionRow.filter).where(
            ~((SubscriptionRow.channel == Channel.AMQP.value) & SubscriptionRow.routable), ~SubscriptionRow.batch)
        if ids is not None:
            stmt = stmt.where(SubscriptionRow.id.in_(list(ids)))
        return {str(sid): SubscriptionFilter.parse(data) for sid, data in self.session.execute(stmt).all()}


_BULK_DELIVERIES = text(
    "INSERT INTO deliveries (subscription_id, notice_id, version, seq, kind, status, attempts, next_attempt_at,"
    " created_at, updated_at)"
    " SELECT sid, :notice_id, :version, :seq, :kind, :status, 0, :now, :now, :now"
    " FROM (SELECT DISTINCT unnest(CAST(:ids AS text[])) AS sid) AS matched"
    ' ORDER BY sid COLLATE "C"'
    " ON CONFLICT DO NOTHING"
).bindparams(bindparam("now", type_=UTCDateTime()))


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table))


def _record(row: DeliveryRow) -> DeliveryRecord:
    return DeliveryRecord(**{f.name: getattr(row, f.name) for f in fields(DeliveryRecord)})


class SqlDeliveryRepository:
    """Delivery rows and payloads, written set-wise: a notice can fan out to thousands of rows."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add_payload(self, notice_id: str, version: int, kind: str, seq: int, routing_key: str,
                    body: dict[str, Any]) -> None:
        stmt = _insert(self.session, PayloadRow).values(
            notice_id=notice_id, version=version, kind=kind, seq=seq, routing_key=routing_key, body=body,
            created_at=utcnow(),
        )
        self.session.execute(stmt.on_conflict_do_nothing())

    def add_deliveries(self, subscription_ids: Iterable[str], notice_id: str, version: int, seq: int,
                       kind: str) -> int:
        """One statement for the whole fan-out: on PostgreSQL the ids travel as one ``text[]`` parameter
        (``unnest``), de-duplicated and ordered by id in the database (``COLLATE "C"``: code point
        order, as Python sorts), so no Python row object is built per delivery; on SQLite one
        executemany. Existing rows are kept (``ON CONFLICT DO NOTHING``). Returns the rows created."""
        ids = subscription_ids if isinstance(subscription_ids, list) else list(subscription_ids)
        if not ids:
            return 0
        now = utcnow()
        connection = self.session.connection()  # a Core result: it has the rowcount
        if connection.dialect.name == "postgresql":
            result = connection.execute(_BULK_DELIVERIES, {
                "ids": ids, "notice_id": notice_id, "version": version, "seq": seq, "kind": kind,
                "status": DeliveryStatus.PENDING.value, "now": now})
        else:
            rows = [
                {"subscription_id": sid, "notice_id": notice_id, "version": version, "seq": seq, "kind": kind,
                 "status": DeliveryStatus.PENDING.value, "attempts": 0, "next_attempt_at": now,
                 "created_at": now, "updated_at": now}
                for sid in sorted(set(ids))
            ]
            result = connection.execute(_insert(self.session, DeliveryRow).on_conflict_do_nothing(), rows)
        return int(result.rowcount)

    def earlier_recipients(self, notice_id: str, version: int) -> set[str]:
        """Who got, or is owed, an earlier version of this notice: they hear of its amendments and
        cancellation even when the new version falls outside their filter (otherwise they would keep a
        stale notice). Matching in seq order makes this complete: every earlier version's rows exist.
        Disabled subscriptions count (they catch up when re-enabled); deleted ones do not."""
        stmt = (
            select(DeliveryRow.subscription_id).distinct()
            .join(SubscriptionRow, SubscriptionRow.id == DeliveryRow.subscription_id)
            .where(DeliveryRow.notice_id == notice_id, DeliveryRow.version < version)
        )
        return set(self.session.scalars(stmt))

    def end_open(self, subscription_id: str, reason: str) -> None:
        self.session.execute(update(DeliveryRow).where(DeliveryRow.subscription_id == subscription_id,
                                                       DeliveryRow.status.in_(OPEN))
                             .values(status=DeliveryStatus.DEAD.value, last_error=reason))

    def _ids(self, subscription_id: str, *where: Any) -> list[int]:
        stmt = select(DeliveryRow.id).where(DeliveryRow.subscription_id == subscription_id, *where)
        return list(self.session.scalars(stmt.order_by(DeliveryRow.id)))

    def resume(self, subscription_id: str, now: datetime) -> list[int]:
        ids = self._ids(subscription_id, DeliveryRow.status == DeliveryStatus.DEAD.value,
                        DeliveryRow.last_status_code == GONE_STATUS)
        if ids:
            self.replay(ids, now)
        return ids

    def skip_missed(self, subscription_id: str, reason: str, now: datetime) -> list[int]:
        ids = self._ids(subscription_id, DeliveryRow.status.in_(OPEN) | (
            (DeliveryRow.status == DeliveryStatus.DEAD.value) & (DeliveryRow.last_status_code == GONE_STATUS)))
        if ids:
            self.session.execute(update(DeliveryRow).where(DeliveryRow.id.in_(ids)).values(
                status=DeliveryStatus.SKIPPED.value, last_error=reason, lease_until=None, updated_at=now))
        return ids

    def dead(self, subscription_id: str, ids: Sequence[int] | None = None) -> list[int]:
        stmt = select(DeliveryRow.id).where(DeliveryRow.subscription_id == subscription_id,
                                            DeliveryRow.status == DeliveryStatus.DEAD.value)
        if ids is not None:
            stmt = stmt.where(DeliveryRow.id.in_(list(ids)))
        return list(self.session.scalars(stmt.order_by(DeliveryRow.id)))

    def replay(self, ids: Sequence[int], now: datetime) -> None:
        self.session.execute(update(DeliveryRow).where(DeliveryRow.id.in_(list(ids))).values(
            status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=now, lease_until=None,
            updated_at=now))

    def page(self, subscription_id: str, status: str | None, after: int | None, limit: int
             ) -> list[DeliveryRecord]:
        stmt = select(DeliveryRow).where(DeliveryRow.subscription_id == subscription_id)
        if status is not None:
            stmt = stmt.where(DeliveryRow.status == status)
        if after is not None:
            stmt = stmt.where(DeliveryRow.id > after)
        return [_record(row) for row in self.session.scalars(stmt.order_by(DeliveryRow.id).limit(limit))]

    def counts(self, subscription_id: str) -> dict[str, int]:
        stmt = (select(DeliveryRow.status, func.count()).where(DeliveryRow.subscription_id == subscription_id)
                .group_by(DeliveryRow.status))
        return {str(status): int(n) for status, n in self.session.execute(stmt).all()}


class SqlMatchingCursor:
    """The ``matching_cursors`` row of one matcher (created at 0 on first use when the schema was made
    without the migration's seed row)."""

    def __init__(self, session: Session, name: str) -> None:
        self.session = session
        self.name = name

    def position(self) -> int:
        value = self.session.scalar(select(MatchingCursorRow.seq).where(MatchingCursorRow.name == self.name))
        return int(value or 0)

    def hold(self, wait: bool) -> int | None:
        stmt = select(MatchingCursorRow.seq).where(MatchingCursorRow.name == self.name)
        if leases.holds_row_locks(self.session):
            stmt = stmt.with_for_update(skip_locked=not wait)
        value = self.session.scalar(stmt)
        if value is not None:
            return int(value)
        self.session.execute(_insert(self.session, MatchingCursorRow).values(
            name=self.name, seq=0, updated_at=utcnow()).on_conflict_do_nothing())
        value = self.session.scalar(stmt)
        return None if value is None else int(value)

    def advance(self, seq: int) -> None:
        self.session.execute(update(MatchingCursorRow).where(MatchingCursorRow.name == self.name)
                             .values(seq=seq, updated_at=utcnow()))


CLAIM_PAGES = 4  # candidate windows one claim reads at most
WINDOW_PER_CAP = 4  # a capped claim reads windows of at least this many rows per slot of the cap
PER_SUBSCRIPTION_SCANS = 32  # up to this many queued subscribers, the AMQP claim reads each one's rows apart


def claim_due(session: Session, limit: int, lease: timedelta, now: datetime | None = None,
              owner: str | None = None, webhooks: bool | None = None, webhook_cap: int | None = None) -> list[int]:
    """Due deliveries of active subscriptions whose earlier versions of the same notice are all
    settled (a subscriber never gets version n+1 before version n: an earlier version in flight is
    still open), leased so no other dispatcher takes them; ``owner`` is the claim's token
    (:func:`renew_claims`, :func:`release_claims`, and recording outcomes only while it still
    matches). ``webhooks`` claims only deliveries to webhook subscriptions (``True``) or only the others
    (``False``); with ``webhook_cap``, no webhook subscription has more than that many deliveries
    leased at once (counting those in flight with any dispatcher). Caller commits.

    The cost is bounded by the claim, not by the backlog: due rows are read in claim order from the
    open-deliveries index a window at a time (at most :data:`CLAIM_PAGES` windows), the earlier-version
    check runs per candidate row, and the cap is applied to the candidates only, counting what each
    subscription holds leased (a partial index over leased rows). Subscriptions already at their cap
    are excluded from the scan itself, so one subscriber's backlog — however large, and ahead of
    everyone in claim order — cannot fill the window and keep other subscribers' deliveries waiting.
    The AMQP claim, when few subscriptions take queued deliveries, reads each one's rows from its own
    range of the per-subscription index instead, so a webhook backlog is never scanned for it.
    The chosen rows are then leased ``SKIP LOCKED``, re-checked: one another dispatcher took (or
    attempted and rescheduled) meanwhile is skipped."""
    given, now = now, now or utcnow()
    if limit <= 0:
        return []
    earlier = aliased(DeliveryRow)
    blocked = exists().where(
        earlier.subscription_id == DeliveryRow.subscription_id,
        earlier.notice_id == DeliveryRow.notice_id,
        earlier.version < DeliveryRow.version,
        earlier.status.in_(OPEN),
    )
    due = [DeliveryRow.status.in_(OPEN), DeliveryRow.next_attempt_at <= now,
           leases.lease_free(DeliveryRow.lease_until, now), SubscriptionRow.status == "active", ~blocked]
    is_webhook = SubscriptionRow.channel == Channel.WEBHOOK.value
    if webhooks is not None:
        due.append(is_webhook if webhooks else ~is_webhook)
    held = {} if webhook_cap is None else leased_counts(session, now)
    full = {sub for sub, n in held.items() if webhook_cap is not None and n >= webhook_cap}
    window = limit if webhook_cap is None else max(limit, WINDOW_PER_CAP * webhook_cap)
    queued = queued_subscriptions(session) if webhooks is False else None
    if queued is not None and len(queued) <= PER_SUBSCRIPTION_SCANS:
        # Few subscribers take queued deliveries: read each one's first rows from its own index range
        # (the other channels' backlog is never scanned) and merge them in claim order.
        merged: list[tuple[datetime, int, int]] = []
        for sid in queued:
            rows = _candidates(session, [*due, DeliveryRow.subscription_id == sid], limit, limit, None, held, full)
            merged.extend((at, seq, delivery_id) for delivery_id, at, seq in rows)
        picked = [delivery_id for _, _, delivery_id in sorted(merged)[:limit]]
    else:
        picked = [delivery_id for delivery_id, _, _ in
                  _candidates(session, due, limit, window, webhook_cap, held, full, webhooks is True)]
    if not picked:
        return []
    # The lease runs from when it is written, not from when the candidates were read.
    leased_at = now if given is not None else utcnow()
    return leases.claim(
        session, DeliveryRow.id, DeliveryRow.lease_until, now=leased_at, lease=lease, limit=len(picked),
        owner=None if owner is None else (DeliveryRow.lease_owner, owner),
        due=[DeliveryRow.id.in_(picked), DeliveryRow.status.in_(OPEN), DeliveryRow.next_attempt_at <= now],
        order_by=[DeliveryRow.next_attempt_at, DeliveryRow.seq],
    )


def _candidates(session: Session, due: list[Any], limit: int, window: int, cap: int | None,
                held: dict[str, int], full: set[str], webhooks_only: bool = False,
                ) -> list[tuple[int, datetime, int]]:
    """Up to ``limit`` (id, next_attempt_at, seq) of ``due`` rows in claim order, reading windows of
    ``window`` rows (at most :data:`CLAIM_PAGES`) and skipping webhook rows of subscriptions whose
    ``held`` count reached ``cap``; such subscriptions join ``full`` and are left out of the later
    windows' scan."""
    is_webhook = SubscriptionRow.channel == Channel.WEBHOOK.value
    picked: list[tuple[int, datetime, int]] = []
    after: tuple[datetime, int] | None = None
    for _ in range(CLAIM_PAGES):
        stmt = (select(DeliveryRow.id, DeliveryRow.subscription_id, SubscriptionRow.channel,
                       DeliveryRow.next_attempt_at, DeliveryRow.seq)
                .join(SubscriptionRow, SubscriptionRow.id == DeliveryRow.subscription_id)
                .where(*due).order_by(DeliveryRow.next_attempt_at, DeliveryRow.seq).limit(window))
        if full:  # on the delivery row alone when every candidate is a webhook's: filtered in the index scan
            skip = DeliveryRow.subscription_id.not_in(sorted(full))
            stmt = stmt.where(skip if webhooks_only else or_(~is_webhook, skip))
        if after is not None:
            stmt = stmt.where(tuple_(DeliveryRow.next_attempt_at, DeliveryRow.seq) > tuple_(
                bindparam(None, after[0], type_=UTCDateTime()), bindparam(None, after[1], type_=BigId)))
        rows = session.execute(stmt).all()
        for delivery_id, sub, channel, at, seq in rows:
            if cap is not None and channel == Channel.WEBHOOK.value:
                if held.get(sub, 0) >= cap:
                    full.add(sub)
                    continue
                held[sub] = held.get(sub, 0) + 1
            picked.append((delivery_id, at, seq))
            if len(picked) == limit:
                return picked
        if len(rows) < window:
            break
        after = (rows[-1][3], rows[-1][4])
    return picked


def queued_subscriptions(session: Session, most: int = PER_SUBSCRIPTION_SCANS + 1) -> list[str]:
    """Up to ``most`` active subscriptions taking deliveries other than webhooks (AMQP queues, the
    hub's exchange), from their partial index."""
    webhook_like = (Channel.WEBHOOK.value, Channel.ENDPOINT.value)
    stmt = (select(SubscriptionRow.id).where(SubscriptionRow.status == "active",
                                             SubscriptionRow.channel.not_in(webhook_like))
            .order_by(SubscriptionRow.id).limit(most))
    return list(session.scalars(stmt))


def any_queued_channel(session: Session) -> bool:
    """Whether any active subscription takes deliveries other than webhooks: one probe of a partial
    index, so a dispatcher can skip the AMQP claim on a webhook-only hub."""
    return bool(queued_subscriptions(session, 1))


def leased_counts(session: Session, now: datetime) -> dict[str, int]:
    """How many deliveries each subscription has leased now (with any dispatcher): read from the
    partial index over leased rows, so its cost follows what is in flight, not the backlog."""
    stmt = (select(DeliveryRow.subscription_id, func.count())
            .where(DeliveryRow.lease_until.is_not(None), DeliveryRow.lease_until > now)
            .group_by(DeliveryRow.subscription_id))
    return {sub: int(n) for sub, n in session.execute(stmt).all()}


def renew_claims(session: Session, ids: Sequence[int], owner: str, lease: timedelta,
                 now: datetime | None = None) -> int:
    """Extend the lease of the deliveries ``owner`` still holds; how many it does. Caller commits."""
    return leases.renew(session, DeliveryRow.id, DeliveryRow.lease_until, (DeliveryRow.lease_owner, owner), ids,
                        now=now or utcnow(), lease=lease)


def renew_held(session: Session, held: dict[int, str], lease: timedelta, now: datetime | None = None) -> int:
    """Extend the lease of each delivery in ``held`` (delivery id → the owner token of its claim) that
    its claim still holds, in one statement; how many are. Caller commits."""
    if not held:
        return 0
    result = session.execute(
        update(DeliveryRow).where(DeliveryRow.id.in_(list(held)), DeliveryRow.lease_owner.in_(set(held.values())))
        .values(lease_until=(now or utcnow()) + lease).execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


def release_claims(session: Session, ids: Sequence[int], owner: str) -> int:
    """Free the deliveries ``owner`` still holds (nothing was sent for them): due again at once, with
    no attempt counted. Caller commits."""
    return leases.release(session, DeliveryRow.id, DeliveryRow.lease_until, (DeliveryRow.lease_owner, owner), ids)


def load_claimed(session: Session, ids: Sequence[int]) -> list[tuple[DeliveryRow, SubscriptionRow, PayloadRow]]:
    stmt = (
        select(DeliveryRow, SubscriptionRow, PayloadRow)
        .join(SubscriptionRow, SubscriptionRow.id == DeliveryRow.subscription_id)
        .join(PayloadRow, and_(PayloadRow.notice_id == DeliveryRow.notice_id,
                               PayloadRow.version == DeliveryRow.version))
        .where(DeliveryRow.id.in_(ids))
        .order_by(DeliveryRow.seq)
    )
    return [(d, s, p) for d, s, p in session.execute(stmt).all()]
