"""Handlers of subscription commands and of the ``syndication-matching`` consumer group.

They reach persistence only through :class:`~hub.subscriptions.repository.SubscriptionsUnitOfWork`;
whatever needs the network (DNS for the SSRF check, RabbitMQ queues) happens around the command, in
:mod:`hub.subscriptions.services`, never inside its transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from hub.config import Settings
from hub.notices.events import NoticeVersionPublished
from hub.spine.audit import record_audit_entry
from hub.spine.errors import NotFound, Rejected
from hub.spine.messages import Command, Event
from hub.subscriptions.commands import (
    CreateSubscription,
    DeleteSubscription,
    RegisterEndpoint,
    ReplayDeliveries,
    RotateSubscriptionSecret,
    UpdateSubscription,
)
from hub.subscriptions.events import SubscriptionChanged
from hub.subscriptions.matcher import match_notice_version
from hub.subscriptions.model import FANOUT_SUBSCRIPTION_ID, Channel, Subscription, filter_json, parse_filter
from hub.subscriptions.repository import SubscriptionRepository, SubscriptionsUnitOfWork, utcnow
from hub.subscriptions.signing import new_secret

__all__ = ["COMMAND_HANDLERS", "EVENT_HANDLERS", "owned"]

SKIPPED_FROM_NOW = "skipped: the subscription was re-enabled from now on, without catching up"


def owned(subscriptions: SubscriptionRepository, subscription_id: str, org_id: str,
          endpoint: bool = False) -> Subscription:
    """Another organisation's subscription is indistinguishable from a missing one (404); so is an
    endpoint asked for as a subscription, and the other way round."""
    subscription = subscriptions.get(subscription_id)
    if subscription is None or not subscription.owned_by(org_id) or subscription.batch != endpoint:
        raise NotFound("endpoint" if endpoint else "subscription", subscription_id)
    return subscription


def _changed(uow: SubscriptionsUnitOfWork, sub: Subscription, change: str, **details: Any) -> None:
    """Audit trail: the change commits with the subscription (the subscriber is the actor)."""
    uow.publish(SubscriptionChanged(subscription_id=sub.id, org_id=sub.org_id, change=change,
                                    channel=sub.channel.value, details=details, actor_org_id=sub.org_id))


def create_subscription(
    cmd: CreateSubscription, uow: SubscriptionsUnitOfWork, settings: Settings
) -> tuple[Subscription, str | None]:
    now = utcnow()
    if cmd.channel == Channel.ENDPOINT.value:
        if not cmd.endpoint_id:
            raise Rejected("channel.endpoint_id", "a subscription on an endpoint names the endpoint")
        endpoint = owned(uow.subscriptions, cmd.endpoint_id, cmd.org_id, endpoint=True)
        sub = Subscription.on_endpoint(cmd.subscription_id, endpoint, cmd.name, parse_filter(cmd.filter), now)
        uow.subscriptions.add(sub)
        _changed(uow, sub, "created", filter=filter_json(sub.filter), endpoint_id=endpoint.id)
        return sub, None
    sub = Subscription.new(cmd.subscription_id, cmd.org_id, cmd.name, cmd.channel, parse_filter(cmd.filter),
                           cmd.url, now)
    secret: str | None = None
    if sub.channel is Channel.WEBHOOK:
        secret = new_secret()
        sub.add_first_secret(settings.syndication.secret_box().seal(secret))
    elif settings.broker.kind != "rabbitmq":
        raise Rejected("channel.type", "the AMQP channel needs the RabbitMQ broker; this hub runs the "
                                       "in-process broker (use a webhook)")
    elif uow.subscriptions.get(FANOUT_SUBSCRIPTION_ID) is None:
        uow.subscriptions.add(Subscription.fanout(now))
    uow.subscriptions.add(sub)
    _changed(uow, sub, "created", filter=filter_json(sub.filter), url=sub.url)
    return sub, secret


def register_endpoint(cmd: RegisterEndpoint, uow: SubscriptionsUnitOfWork, settings: Settings
                      ) -> tuple[Subscription, str]:
    endpoint = Subscription.endpoint(cmd.endpoint_id, cmd.org_id, cmd.name, cmd.url, utcnow())
    secret = new_secret()
    endpoint.add_first_secret(settings.syndication.secret_box().seal(secret))
    uow.subscriptions.add(endpoint)
    _changed(uow, endpoint, "endpoint_registered", url=endpoint.url)
    return endpoint, secret


def update_subscription(cmd: UpdateSubscription, uow: SubscriptionsUnitOfWork) -> Subscription:
    sub = owned(uow.subscriptions, cmd.subscription_id, cmd.org_id, cmd.endpoint)
    if sub.channel is Channel.ENDPOINT and (cmd.disable or cmd.reactivate):
        raise Rejected("status", "a subscription on an endpoint is paused and re-enabled with its endpoint")
    now = utcnow()
    if cmd.name is not None:
        sub.rename(cmd.name, now)
    if cmd.filter is not None:
        sub.change_filter(parse_filter(cmd.filter), now)
    if cmd.url is not None:
        sub.change_url(cmd.url, now)
    if cmd.reactivate and cmd.disable:
        raise Rejected("status", "a subscription cannot be re-enabled and disabled at once")
    details: dict[str, Any] = {}
    if cmd.disable and sub.disable("disabled by its owner", now):
        details["disabled"] = True
    if cmd.reactivate and sub.reactivate(now):
        details["catch_up"] = cmd.catch_up
        if cmd.catch_up:
            details["resumed"] = len(uow.deliveries.resume(sub.id, now))
        else:
            details["skipped"] = len(uow.deliveries.skip_missed(sub.id, SKIPPED_FROM_NOW, now))
    sub.updated_at = now
    uow.subscriptions.save(sub)
    changed = {k: v for k, v in {"name": cmd.name, "filter": cmd.filter, "url": cmd.url}.items() if v is not None}
    _changed(uow, sub, "updated", **changed, reactivated=cmd.reactivate, **details)
    return sub


def delete_subscription(cmd: DeleteSubscription, uow: SubscriptionsUnitOfWork) -> Subscription:
    sub = owned(uow.subscriptions, cmd.subscription_id, cmd.org_id, cmd.endpoint)
    uow.deliveries.end_open(sub.id, "endpoint deleted" if sub.batch else "subscription deleted")
    details: dict[str, Any] = {}
    if sub.batch:
        details["subscriptions_deleted"] = uow.endpoints.remove_subscriptions_on(sub.id)
    uow.subscriptions.remove(sub)
    _changed(uow, sub, "deleted", **details)
    return sub


def rotate_secret(cmd: RotateSubscriptionSecret, uow: SubscriptionsUnitOfWork, settings: Settings) -> tuple[str, str]:
    sub = owned(uow.subscriptions, cmd.subscription_id, cmd.org_id, cmd.endpoint)
    config = settings.syndication
    secret = new_secret()
    until = sub.rotate_secret(config.secret_box().seal(secret), utcnow(),
                              timedelta(seconds=config.secret_overlap_s * config.time_scale)).isoformat()
    uow.subscriptions.save(sub)
    _changed(uow, sub, "secret_rotated", previous_valid_until=until)
    return secret, until


def replay_deliveries(cmd: ReplayDeliveries, uow: SubscriptionsUnitOfWork) -> list[int]:
    """Dead deliveries back to pending, as if never tried (the receiver has been fixed)."""
    sub = owned(uow.subscriptions, cmd.subscription_id, cmd.org_id, cmd.endpoint)
    ids = uow.deliveries.dead(sub.id, cmd.delivery_ids)
    if ids:
        uow.deliveries.replay(ids, utcnow())
        _changed(uow, sub, "deliveries_replayed", delivery_ids=ids)
    return ids


COMMAND_HANDLERS: dict[type[Command], Callable[..., Any]] = {
    CreateSubscription: create_subscription,
    RegisterEndpoint: register_endpoint,
    UpdateSubscription: update_subscription,
    DeleteSubscription: delete_subscription,
    RotateSubscriptionSecret: rotate_secret,
    ReplayDeliveries: replay_deliveries,
}
EVENT_HANDLERS: dict[type[Event], Sequence[Callable[..., Any]]] = {
    NoticeVersionPublished: [match_notice_version],
    SubscriptionChanged: [record_audit_entry],
}
