"""Commands of subscriptions (handled in :mod:`hub.subscriptions.handlers`)."""

from __future__ import annotations

from typing import Any

from hub.spine.messages import Command

__all__ = ["CreateSubscription", "DeleteSubscription", "RegisterEndpoint", "ReplayDeliveries",
           "RotateSubscriptionSecret", "UpdateSubscription"]


class CreateSubscription(Command):
    subscription_id: str
    org_id: str
    name: str = ""
    filter: dict[str, Any]
    channel: str  # webhook | amqp | endpoint
    url: str | None = None
    endpoint_id: str | None = None  # channel endpoint: the caller's registered endpoint that delivers it


class RegisterEndpoint(Command):
    """A webhook endpoint registered once (URL and signing secret) for many subscriptions, each
    notice version reaching it in one batched request."""

    endpoint_id: str
    org_id: str
    name: str = ""
    url: str


class UpdateSubscription(Command):
    subscription_id: str
    org_id: str
    endpoint: bool = False  # the target is a registered endpoint (``subscription_id`` is its id)
    name: str | None = None
    filter: dict[str, Any] | None = None
    url: str | None = None
    reactivate: bool = False
    # On reactivation: send what was published while disabled (True), or skip it — "from now" (False).
    catch_up: bool = True
    disable: bool = False  # the owner pauses it; matching goes on and the deliveries wait


class DeleteSubscription(Command):
    subscription_id: str
    org_id: str
    endpoint: bool = False  # the target is a registered endpoint (``subscription_id`` is its id)


class RotateSubscriptionSecret(Command):
    subscription_id: str
    org_id: str
    endpoint: bool = False  # the target is a registered endpoint (``subscription_id`` is its id)


class ReplayDeliveries(Command):
    """Dead deliveries back to pending (all of the subscription's, or the listed ones)."""

    subscription_id: str
    org_id: str
    delivery_ids: list[int] | None = None
    endpoint: bool = False  # the target is a registered endpoint
