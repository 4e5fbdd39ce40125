"""Handlers of subscription commands and the ``syndication-matching`` consumer group. Each command writes
the change-log row that keeps every worker's matching index in sync, in the same transaction as the change."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.config import Settings
from hub.notices.events import NoticeVersionPublished
from hub.notices.model import NoticeValidationError
from hub.spine.audit import record_audit_entry
from hub.spine.errors import NotFound, Rejected
from hub.spine.messages import Command, Event
from hub.spine.unit_of_work import AbstractUnitOfWork, SqlAlchemyUnitOfWork
from hub.subscriptions import repository as store
from hub.subscriptions.commands import (
    CreateSubscription,
    DeleteSubscription,
    ReplayDeliveries,
    RotateSubscriptionSecret,
    UpdateSubscription,
)
from hub.subscriptions.events import SubscriptionChanged
from hub.subscriptions.filters import SubscriptionFilter
from hub.subscriptions.matcher import match_notice_version
from hub.subscriptions.model import FANOUT_SUBSCRIPTION_ID, Channel, DeliveryStatus, filter_json, is_routable
from hub.subscriptions.signing import new_secret
from hub.subscriptions.ssrf import UnsafeTarget, check_target
from hub.subscriptions.tables import DeliveryRow, SubscriptionRow

__all__ = ["COMMAND_HANDLERS", "EVENT_HANDLERS", "parse_filter"]


def _session(uow: AbstractUnitOfWork) -> Session:
    assert isinstance(uow, SqlAlchemyUnitOfWork), "syndication persists through SQLAlchemy"
    return uow.session


def parse_filter(data: dict[str, Any]) -> SubscriptionFilter:
    try:
        return SubscriptionFilter.parse(data)
    except NoticeValidationError as exc:
        path, message = exc.problems[0]
        more = f" (and {len(exc.problems) - 1} more: {exc})" if len(exc.problems) > 1 else ""
        raise Rejected(f"filter.{path}", message + more) from exc


def _check_url(url: str | None, settings: Settings) -> str:
    if not url:
        raise Rejected("channel.url", "a webhook subscription needs a URL")
    try:
        check_target(url, allow_private=settings.syndication.allow_private_targets)
    except UnsafeTarget as exc:
        raise Rejected("channel.url", str(exc)) from exc
    return url


def _changed(uow: AbstractUnitOfWork, row: SubscriptionRow, change: str, **details: Any) -> None:
    """Audit trail: the change commits with the subscription (the subscriber is the actor)."""
    uow.publish(SubscriptionChanged(subscription_id=row.id, org_id=row.org_id, change=change, channel=row.channel,
                                    details=details, actor_org_id=row.org_id))


def owned(session: Session, subscription_id: str, org_id: str) -> SubscriptionRow:
    """Another organisation's subscription is indistinguishable from a missing one (404)."""
    row = session.get(SubscriptionRow, subscription_id)
    if row is None or row.org_id is None or row.org_id != org_id:
        raise NotFound("subscription", subscription_id)
    return row


def _ensure_fanout(session: Session) -> None:
    """The hub-owned subscription that publishes each notice version once to the notices exchange."""
    if session.get(SubscriptionRow, FANOUT_SUBSCRIPTION_ID) is None:
        now = store.utcnow()
        session.add(SubscriptionRow(id=FANOUT_SUBSCRIPTION_ID, org_id=None, name="notices exchange fan-out",
                                    channel=Channel.EXCHANGE.value, url=None, filter={}, routable=False,
                                    status="active", secrets=[], created_at=now, updated_at=now))
        store.note_change(session, FANOUT_SUBSCRIPTION_ID)


def create_subscription(
    cmd: CreateSubscription, uow: AbstractUnitOfWork, settings: Settings
) -> tuple[SubscriptionRow, str | None]:
    session = _session(uow)
    flt = parse_filter(cmd.filter)
    secret: str | None = None
    url: str | None = None
    if cmd.channel == Channel.WEBHOOK.value:
        url = _check_url(cmd.url, settings)
        secret = new_secret()
    elif cmd.channel == Channel.AMQP.value:
        if settings.broker.kind != "rabbitmq":
            raise Rejected("channel.type", "the AMQP channel needs the RabbitMQ broker; this hub runs the "
                                           "in-process broker (use a webhook)")
        _ensure_fanout(session)
    else:
        raise Rejected("channel.type", "expected webhook or amqp")
    now = store.utcnow()
    row = SubscriptionRow(
        id=cmd.subscription_id, org_id=cmd.org_id, name=cmd.name.strip(), channel=cmd.channel, url=url,
        filter=filter_json(flt), routable=cmd.channel == Channel.AMQP.value and is_routable(flt),
        status="active",
        secrets=[{**settings.syndication.secret_box().seal(secret), "expires_at": None}] if secret else [],
        created_at=now, updated_at=now,
    )
    session.add(row)
    store.note_change(session, row.id)
    session.flush()
    _changed(uow, row, "created", filter=row.filter, url=row.url)
    return row, secret


def update_subscription(cmd: UpdateSubscription, uow: AbstractUnitOfWork, settings: Settings) -> SubscriptionRow:
    session = _session(uow)
    row = owned(session, cmd.subscription_id, cmd.org_id)
    if cmd.name is not None:
        row.name = cmd.name.strip()
    if cmd.filter is not None:
        flt = parse_filter(cmd.filter)
        row.filter = filter_json(flt)
        row.routable = row.channel == Channel.AMQP.value and is_routable(flt)
    if cmd.url is not None:
        if row.channel != Channel.WEBHOOK.value:
            raise Rejected("channel.url", "only a webhook subscription has a URL")
        row.url = _check_url(cmd.url, settings)
    if cmd.reactivate:
        row.status, row.disabled_reason = "active", None
    row.updated_at = store.utcnow()
    store.note_change(session, row.id)
    session.flush()
    changed = {k: v for k, v in {"name": cmd.name, "filter": cmd.filter, "url": cmd.url}.items() if v is not None}
    _changed(uow, row, "updated", **changed, reactivated=cmd.reactivate)
    return row


def delete_subscription(cmd: DeleteSubscription, uow: AbstractUnitOfWork) -> SubscriptionRow:
    session = _session(uow)
    row = owned(session, cmd.subscription_id, cmd.org_id)
    session.execute(update(DeliveryRow).where(DeliveryRow.subscription_id == row.id,
                                              DeliveryRow.status.in_(("pending", "failed")))
                    .values(status=DeliveryStatus.DEAD.value, last_error="subscription deleted"))
    session.delete(row)
    store.note_change(session, row.id)
    _changed(uow, row, "deleted")
    return row


def rotate_secret(cmd: RotateSubscriptionSecret, uow: AbstractUnitOfWork, settings: Settings) -> tuple[str, str]:
    """The new secret signs from now on; the old ones keep signing until the overlap window ends, so a
    receiver can switch whenever it likes within the window and no delivery fails verification."""
    session = _session(uow)
    row = owned(session, cmd.subscription_id, cmd.org_id)
    if row.channel != Channel.WEBHOOK.value:
        raise Rejected("channel", "only webhook subscriptions have a signing secret")
    now = store.utcnow()
    config = settings.syndication
    until = now + timedelta(seconds=config.secret_overlap_s * config.time_scale)
    kept = []
    for item in row.secrets or []:
        expires = item.get("expires_at")
        if expires is None:
            kept.append({**item, "expires_at": until.isoformat()})  # stored form (sealed or not) unchanged
        elif expires > now.isoformat():
            kept.append(item)
    secret = new_secret()
    row.secrets = [{**config.secret_box().seal(secret), "expires_at": None}, *kept]
    row.updated_at = now
    _changed(uow, row, "secret_rotated", previous_valid_until=until.isoformat())
    return secret, until.isoformat()


def replay_deliveries(cmd: ReplayDeliveries, uow: AbstractUnitOfWork) -> list[int]:
    session = _session(uow)
    row = owned(session, cmd.subscription_id, cmd.org_id)
    stmt = select(DeliveryRow.id).where(DeliveryRow.subscription_id == row.id,
                                        DeliveryRow.status == DeliveryStatus.DEAD.value)
    if cmd.delivery_ids is not None:
        stmt = stmt.where(DeliveryRow.id.in_(cmd.delivery_ids))
    ids = list(session.scalars(stmt))
    if ids:
        now = store.utcnow()
        session.execute(update(DeliveryRow).where(DeliveryRow.id.in_(ids)).values(
            status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=now, lease_until=None,
            updated_at=now))
        _changed(uow, row, "deliveries_replayed", delivery_ids=ids)
    return ids


COMMAND_HANDLERS: dict[type[Command], Callable[..., Any]] = {
    CreateSubscription: create_subscription,
    UpdateSubscription: update_subscription,
    DeleteSubscription: delete_subscription,
    RotateSubscriptionSecret: rotate_secret,
    ReplayDeliveries: replay_deliveries,
}
EVENT_HANDLERS: dict[type[Event], Sequence[Callable[..., Any]]] = {
    NoticeVersionPublished: [match_notice_version],
    SubscriptionChanged: [record_audit_entry],
}
