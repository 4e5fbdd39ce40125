"""Routes of registered webhook endpoints: one URL and signing secret for many subscriptions, each
notice version reaching the endpoint in ONE request that names every matched subscription
(``subscription_ids``). Scope ``subscriptions:write``; an organisation sees only its own endpoints
(another's answers 404, like a missing one). Very many subscriptions are put on an endpoint with
``g2bhub subscriptions load``; the API creates them one at a time."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from hub.api.deps import BusDep, HubDep, Principal, UowDep, require_scope
from hub.api.routes.subscriptions import (
    DeliveryOut,
    DeliveryPage,
    ReplayIn,
    ReplayOut,
    RotatedOut,
    SubscriptionOut,
    _view,
)
from hub.api.schemas import INT64_MAX, JsonDocument, Out, Text
from hub.organisations.model import Scope
from hub.subscriptions.commands import (
    CreateSubscription,
    DeleteSubscription,
    RegisterEndpoint,
    ReplayDeliveries,
    RotateSubscriptionSecret,
    UpdateSubscription,
)
from hub.subscriptions.handlers import owned
from hub.subscriptions.model import Subscription

router = APIRouter(tags=["webhook endpoints"])

Caller = Annotated[Principal, Depends(require_scope(Scope.SUBSCRIPTIONS_WRITE))]


class EndpointIn(BaseModel):
    name: Text = Field("", max_length=200)
    url: str = Field(max_length=2048)
    # Batched delivery: one request per notice version carrying every matched subscription's id. An
    # endpoint always batches; one request per subscription is what a subscription with its own URL gets.
    batch: Literal[True] = True


class EndpointPatch(BaseModel):
    name: Text | None = Field(None, max_length=200)
    url: str | None = Field(None, max_length=2048)
    # "active" re-enables an endpoint a 410 (or its owner) disabled; "disabled" pauses it (matching goes
    # on, its deliveries wait).
    status: Literal["active", "disabled"] | None = None
    catch_up: bool = True  # on re-enabling: send what was published meanwhile (true) or skip it


class EndpointOut(Out):
    id: str
    name: str
    url: str | None
    batch: bool
    status: str
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


class EndpointDetailOut(EndpointOut):
    subscriptions: int  # how many subscriptions are on it


class EndpointCreatedOut(BaseModel):
    endpoint: EndpointOut
    secret: str  # the signing secret (Standard Webhooks, ``whsec_…``), shown once


class EndpointSubscriptionIn(BaseModel):
    name: Text = Field("", max_length=200)
    filter: JsonDocument = Field(default_factory=dict)


class EndpointSubscriptionPage(BaseModel):
    items: list[SubscriptionOut]
    next_after: str | None


def _endpoint(endpoint: Subscription) -> EndpointOut:
    return EndpointOut.of(endpoint)


@router.post("/webhook-endpoints", status_code=201, response_model=EndpointCreatedOut,
             summary="Register a batched webhook endpoint for many subscriptions")
def register_endpoint(body: EndpointIn, caller: Caller, bus: BusDep, hub: HubDep,
                      response: Response) -> EndpointCreatedOut:
    """The answer carries the signing secret (once): never stored by a cache."""
    endpoint, secret = hub.subscriptions.register_endpoint(bus, RegisterEndpoint(
        endpoint_id=str(uuid.uuid4()), org_id=caller.org_id, name=body.name, url=body.url))
    response.headers["Cache-Control"] = "no-store"
    return EndpointCreatedOut(endpoint=_endpoint(endpoint), secret=secret)


@router.get("/webhook-endpoints", response_model=list[EndpointOut], summary="List your webhook endpoints")
def list_endpoints(caller: Caller, uow: UowDep) -> list[EndpointOut]:
    return [_endpoint(e) for e in uow.endpoints.list_for(caller.org_id)]


@router.get("/webhook-endpoints/{endpoint_id}", response_model=EndpointDetailOut, summary="Read a webhook endpoint")
def get_endpoint(endpoint_id: str, caller: Caller, uow: UowDep) -> EndpointDetailOut:
    endpoint = owned(uow.subscriptions, endpoint_id, caller.org_id, endpoint=True)
    return EndpointDetailOut.of(endpoint, subscriptions=uow.endpoints.count_on(endpoint.id))


@router.patch("/webhook-endpoints/{endpoint_id}", response_model=EndpointOut,
              summary="Change a webhook endpoint: name, URL, or pause and re-enable it")
def update_endpoint(endpoint_id: str, body: EndpointPatch, caller: Caller, bus: BusDep, hub: HubDep) -> EndpointOut:
    endpoint = hub.subscriptions.update(bus, UpdateSubscription(
        subscription_id=endpoint_id, org_id=caller.org_id, endpoint=True, name=body.name, url=body.url,
        reactivate=body.status == "active", disable=body.status == "disabled", catch_up=body.catch_up))
    return _endpoint(endpoint)


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=204,
               summary="Delete a webhook endpoint and every subscription on it")
def delete_endpoint(endpoint_id: str, caller: Caller, bus: BusDep, hub: HubDep) -> Response:
    hub.subscriptions.delete(bus, DeleteSubscription(subscription_id=endpoint_id, org_id=caller.org_id,
                                                     endpoint=True))
    return Response(status_code=204)


@router.post("/webhook-endpoints/{endpoint_id}/secret/rotate", response_model=RotatedOut,
             summary="Rotate the endpoint's signing secret (the old one stays valid for a while)")
def rotate_endpoint_secret(endpoint_id: str, caller: Caller, bus: BusDep, response: Response) -> RotatedOut:
    secret, until = bus.handle(RotateSubscriptionSecret(subscription_id=endpoint_id, org_id=caller.org_id,
                                                        endpoint=True))
    response.headers["Cache-Control"] = "no-store"
    return RotatedOut(secret=secret, previous_valid_until=until)


@router.post("/webhook-endpoints/{endpoint_id}/subscriptions", status_code=201, response_model=SubscriptionOut,
             summary="Subscribe to notices through a webhook endpoint")
def create_endpoint_subscription(endpoint_id: str, body: EndpointSubscriptionIn, caller: Caller, bus: BusDep,
                                 hub: HubDep) -> SubscriptionOut:
    """The subscription has no URL or secret of its own: matched notices reach the endpoint, in its
    batch, with this subscription's id among ``subscription_ids``. Read, change and delete it under
    ``/subscriptions/{id}``."""
    sub, _ = hub.subscriptions.create(bus, CreateSubscription(
        subscription_id=str(uuid.uuid4()), org_id=caller.org_id, name=body.name, filter=body.filter,
        channel="endpoint", endpoint_id=endpoint_id))
    return _view(sub, hub.settings.broker.namespace)


@router.get("/webhook-endpoints/{endpoint_id}/subscriptions", response_model=EndpointSubscriptionPage,
            summary="List the subscriptions on a webhook endpoint, a page at a time")
def list_endpoint_subscriptions(
    endpoint_id: str, caller: Caller, uow: UowDep, hub: HubDep,
    after: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EndpointSubscriptionPage:
    endpoint = owned(uow.subscriptions, endpoint_id, caller.org_id, endpoint=True)
    items = uow.endpoints.subscriptions_on(endpoint.id, after, limit)
    return EndpointSubscriptionPage(items=[_view(s, hub.settings.broker.namespace) for s in items],
                                    next_after=items[-1].id if len(items) == limit else None)


@router.get("/webhook-endpoints/{endpoint_id}/deliveries", response_model=DeliveryPage,
            summary="List the endpoint's batched deliveries with their status")
def list_endpoint_deliveries(
    endpoint_id: str, caller: Caller, uow: UowDep,
    status: Annotated[Literal["pending", "failed", "delivered", "dead", "skipped"] | None, Query()] = None,
    after: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveryPage:
    endpoint = owned(uow.subscriptions, endpoint_id, caller.org_id, endpoint=True)
    items = uow.deliveries.page(endpoint.id, status, after, limit)
    return DeliveryPage(items=[DeliveryOut.of(d, webhook_id=f"dlv_{d.id}") for d in items],
                        next_after=items[-1].id if len(items) == limit else None,
                        counts=uow.deliveries.counts(endpoint.id))


@router.post("/webhook-endpoints/{endpoint_id}/deliveries/replay", response_model=ReplayOut,
             summary="Send the endpoint's dead deliveries again (all, or the listed ones)")
def replay_endpoint_deliveries(endpoint_id: str, body: ReplayIn, caller: Caller, bus: BusDep) -> ReplayOut:
    ids = bus.handle(ReplayDeliveries(subscription_id=endpoint_id, org_id=caller.org_id, endpoint=True,
                                      delivery_ids=body.delivery_ids))
    return ReplayOut(replayed=ids)
