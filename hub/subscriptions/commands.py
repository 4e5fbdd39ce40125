"""Commands of subscriptions (handled in :mod:`hub.subscriptions.handlers`)."""

from __future__ import annotations

from typing import Any

from hub.spine.messages import Command

__all__ = ["CreateSubscription", "DeleteSubscription", "ReplayDeliveries", "RotateSubscriptionSecret",
           "UpdateSubscription"]


class CreateSubscription(Command):
    subscription_id: str
    org_id: str
    name: str = ""
    filter: dict[str, Any]
    channel: str  # webhook | amqp
    url: str | None = None


class UpdateSubscription(Command):
    subscription_id: str
    org_id: str
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


class RotateSubscriptionSecret(Command):
    subscription_id: str
    org_id: str


class ReplayDeliveries(Command):
    """Dead deliveries back to pending (all of the subscription's, or the listed ones)."""

    subscription_id: str
    org_id: str
    delivery_ids: list[int] | None = None
