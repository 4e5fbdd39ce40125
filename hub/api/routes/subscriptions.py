"""Routes of subscriptions and their deliveries. Scope ``subscriptions:write``; an organisation sees
only its own subscriptions (another's answers 404, like a missing one). Creating, changing and deleting
go through the subscriptions service (it looks after DNS and the subscriber's AMQP queue around the
command); everything else is a command or a read on the unit of work."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from hub.api.deps import BusDep, HubDep, Principal, UowDep, require_scope
from hub.api.schemas import INT64_MAX, Id, JsonDocument, Out, Text
from hub.organisations.model import Scope
from hub.subscriptions.commands import (
    CreateSubscription,
    DeleteSubscription,
    ReplayDeliveries,
    RotateSubscriptionSecret,
    UpdateSubscription,
)
from hub.subscriptions.handlers import owned
from hub.subscriptions.model import Channel, SubscriberTopology, Subscription, filter_json

router = APIRouter(tags=["subscriptions"])

Caller = Annotated[Principal, Depends(require_scope(Scope.SUBSCRIPTIONS_WRITE))]

HOW_TO_CONSUME = (
    "Consume the queue with manual acks (basic_consume, then basic_ack after you have stored the notice). "
    "Each message body is the same JSON as a webhook delivery; message_id (header webhook-id) identifies "
    "the delivery: dedupe on it, delivery is at-least-once. Versions of one notice arrive in order. "
    "A message you reject (nack) more often than the queue's delivery limit is moved to dead_letter_queue."
)


class ChannelIn(BaseModel):
    type: Literal["webhook", "amqp"]
    url: str | None = Field(None, max_length=2048)


class SubscriptionIn(BaseModel):
    name: Text = Field("", max_length=200)
    filter: JsonDocument = Field(default_factory=dict)
    channel: ChannelIn


class SubscriptionPatch(BaseModel):
    name: Text | None = Field(None, max_length=200)
    filter: JsonDocument | None = None
    url: str | None = Field(None, max_length=2048)
    # "active" re-enables a subscription a 410 (or its owner) disabled; "disabled" pauses it.
    status: Literal["active", "disabled"] | None = None
    reactivate: bool | None = None  # the same as "status": "active"
    # On re-enabling: true (default) sends, in order, what was published while disabled; false skips it
    # ("from now"), and the skipped deliveries stay in the log as "skipped".
    catch_up: bool = True


class ChannelOut(BaseModel):
    type: str
    url: str | None = None
    queue: str | None = None
    dead_letter_queue: str | None = None  # where messages you rejected past the delivery limit are parked
    exchange: str | None = None
    binding_keys: list[str] | None = None  # None: the hub puts matched notices straight into the queue
    how_to_consume: str | None = None
    endpoint_id: str | None = None  # type "endpoint": the webhook endpoint that delivers it, batched


class SubscriptionOut(Out):
    id: str
    name: str
    filter: dict[str, Any]
    channel: ChannelOut
    status: str
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


class CreatedOut(BaseModel):
    subscription: SubscriptionOut
    secret: str | None = None  # webhook signing secret, shown once


class RotatedOut(BaseModel):
    secret: str
    previous_valid_until: str


class DeliveryOut(Out):
    id: int
    webhook_id: str
    notice_id: str
    version: int
    seq: int
    kind: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_after: int | None
    counts: dict[str, int]


class ReplayIn(BaseModel):
    delivery_ids: list[Id] | None = Field(None, max_length=10_000)


class ReplayOut(BaseModel):
    replayed: list[int]


def _view(sub: Subscription, namespace: str) -> SubscriptionOut:
    if sub.channel is Channel.AMQP:
        topology = SubscriberTopology(namespace)
        channel = ChannelOut(type=sub.channel.value, queue=topology.queue(sub.id),
                             dead_letter_queue=topology.dead_letter_queue(sub.id), exchange=topology.notices_exchange,
                             binding_keys=sub.bindings or None, how_to_consume=HOW_TO_CONSUME)
    elif sub.channel is Channel.ENDPOINT:
        channel = ChannelOut(type=sub.channel.value, endpoint_id=sub.endpoint_id)
    else:
        channel = ChannelOut(type=sub.channel.value, url=sub.url)
    return SubscriptionOut.of(sub, filter=filter_json(sub.filter), channel=channel)


@router.post("/subscriptions", status_code=201, response_model=CreatedOut,
             summary="Subscribe to notices by webhook or AMQP queue")
def create_subscription(body: SubscriptionIn, caller: Caller, bus: BusDep, hub: HubDep,
                        response: Response) -> CreatedOut:
    """The answer carries the signing secret (once): never stored by a cache."""
    command = CreateSubscription(subscription_id=str(uuid.uuid4()), org_id=caller.org_id, name=body.name,
                                 filter=body.filter, channel=body.channel.type, url=body.channel.url)
    sub, secret = hub.subscriptions.create(bus, command)
    response.headers["Cache-Control"] = "no-store"
    return CreatedOut(subscription=_view(sub, hub.settings.broker.namespace), secret=secret)


@router.get("/subscriptions", response_model=list[SubscriptionOut],
            summary="List your subscriptions")
def list_subscriptions(caller: Caller, uow: UowDep, hub: HubDep) -> list[SubscriptionOut]:
    return [_view(s, hub.settings.broker.namespace) for s in uow.subscriptions.list_for(caller.org_id)]


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionOut,
            summary="Read a subscription")
def get_subscription(subscription_id: str, caller: Caller, uow: UowDep, hub: HubDep) -> SubscriptionOut:
    return _view(owned(uow.subscriptions, subscription_id, caller.org_id), hub.settings.broker.namespace)


@router.patch("/subscriptions/{subscription_id}", response_model=SubscriptionOut,
              summary="Change a subscription: name, filter, URL, or pause and re-enable it")
def update_subscription(subscription_id: str, body: SubscriptionPatch, caller: Caller, bus: BusDep,
                        hub: HubDep) -> SubscriptionOut:
    sub = hub.subscriptions.update(bus, UpdateSubscription(
        subscription_id=subscription_id, org_id=caller.org_id, name=body.name, filter=body.filter, url=body.url,
        reactivate=body.status == "active" or bool(body.reactivate), disable=body.status == "disabled",
        catch_up=body.catch_up))
    return _view(sub, hub.settings.broker.namespace)


@router.delete("/subscriptions/{subscription_id}", status_code=204,
               summary="Delete a subscription")
def delete_subscription(subscription_id: str, caller: Caller, bus: BusDep, hub: HubDep) -> Response:
    hub.subscriptions.delete(bus, DeleteSubscription(subscription_id=subscription_id, org_id=caller.org_id))
    return Response(status_code=204)


@router.post("/subscriptions/{subscription_id}/secret/rotate", response_model=RotatedOut,
             summary="Rotate the webhook signing secret (the old one stays valid for a while)")
def rotate_secret(subscription_id: str, caller: Caller, bus: BusDep, response: Response) -> RotatedOut:
    secret, until = bus.handle(RotateSubscriptionSecret(subscription_id=subscription_id, org_id=caller.org_id))
    response.headers["Cache-Control"] = "no-store"
    return RotatedOut(secret=secret, previous_valid_until=until)


@router.get("/subscriptions/{subscription_id}/deliveries", response_model=DeliveryPage,
            summary="List a subscription's deliveries with their status")
def list_deliveries(
    subscription_id: str, caller: Caller, uow: UowDep,
    status: Annotated[Literal["pending", "failed", "delivered", "dead", "skipped"] | None, Query()] = None,
    after: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveryPage:
    sub = owned(uow.subscriptions, subscription_id, caller.org_id)
    items = uow.deliveries.page(sub.id, status, after, limit)
    return DeliveryPage(items=[DeliveryOut.of(d, webhook_id=f"dlv_{d.id}") for d in items],
                        next_after=items[-1].id if len(items) == limit else None,
                        counts=uow.deliveries.counts(sub.id))


@router.post("/subscriptions/{subscription_id}/deliveries/replay", response_model=ReplayOut,
             summary="Send dead deliveries again (all, or the listed ones), once the receiver is fixed")
def replay_deliveries(subscription_id: str, body: ReplayIn, caller: Caller, bus: BusDep) -> ReplayOut:
    ids = bus.handle(ReplayDeliveries(subscription_id=subscription_id, org_id=caller.org_id,
                                      delivery_ids=body.delivery_ids))
    return ReplayOut(replayed=ids)
