"""Events of subscriptions, for the audit trail: who changed which subscription, and how."""

from __future__ import annotations

from typing import Any

from hub.spine.messages import Event

__all__ = ["SubscriptionChanged"]


class SubscriptionChanged(Event):
    """``change``: created | updated | deleted | secret_rotated | deliveries_replayed | disabled.
    Never carries a secret or a webhook URL's credentials (URLs with credentials are refused anyway)."""

    subscription_id: str
    org_id: str  # the subscribing organisation (the audit subject)
    change: str
    channel: str | None = None
    details: dict[str, Any] = {}
    actor_org_id: str | None = None
