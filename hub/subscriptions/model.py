"""Plain rules of syndication: delivery states, the per-notice ordering rule, AMQP routing keys and
which filters RabbitMQ can evaluate by itself.

AMQP exactness: routing keys carry only category and region. A subscription whose filter uses
nothing else (``routable``) has its queue bound to ``<ns>.notices`` and RabbitMQ does its fan-out
from ONE message per notice version, published by a hub-owned ``exchange`` subscription that goes
through the same durable, ordered delivery machinery. Every other AMQP subscription's queue is left
unbound and receives one message per matched version straight through the default exchange, so
a subscriber never gets what its finer filters (classification, value, keywords, institution) reject.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from hub.notices.codes import region_country
from hub.subscriptions.filters import SubscriptionFilter

__all__ = [
    "FANOUT_SUBSCRIPTION_ID",
    "Channel",
    "DeliveryStatus",
    "binding_keys",
    "filter_json",
    "is_routable",
    "notice_routing_key",
]

FANOUT_SUBSCRIPTION_ID = "hub-notices-exchange"  # the hub-owned fan-out subscription (no org)


class Channel(StrEnum):
    WEBHOOK = "webhook"
    AMQP = "amqp"
    EXCHANGE = "exchange"  # the hub's own fan-out publication to <ns>.notices


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # not tried yet
    FAILED = "failed"  # tried, a retry is scheduled
    DELIVERED = "delivered"
    DEAD = "dead"  # retries spent (or the endpoint is gone); replayable


OPEN = (DeliveryStatus.PENDING.value, DeliveryStatus.FAILED.value)


def is_routable(flt: SubscriptionFilter) -> bool:
    """True when routing keys alone decide the filter: only categories and regions constrain it."""
    return not (flt.classifications or flt.institutions or flt.keywords or flt.has_value_bounds)


def notice_routing_key(category: str, region: str | None) -> str:
    """``notice.<category>.<country>.<region>``: ``notice.works.KR.KR-11``; ``none`` when absent."""
    if region is None:
        return f"notice.{category}.none.none"
    return f"notice.{category}.{region_country(region)}.{region}"


def binding_keys(flt: SubscriptionFilter) -> list[str]:
    """Topic bindings equal to a routable filter (a country code binds every region of it)."""
    categories: Iterable[str] = flt.categories or ("*",)
    regions: list[str] = []
    for region in flt.regions or ("",):
        if not region:
            regions.append("*.*")
        elif region_country(region) == region:
            regions.append(f"{region}.*")
        else:
            regions.append(f"*.{region}")
    return sorted({f"notice.{c}.{r}" for c in categories for r in regions})


def filter_json(flt: SubscriptionFilter) -> dict[str, Any]:
    """The normalised filter as stored and shown (parse(filter_json(f)) == f)."""
    data: dict[str, Any] = {
        "classifications": list(flt.classifications),
        "categories": list(flt.categories),
        "regions": list(flt.regions),
        "institutions": list(flt.institutions),
        "keywords": list(flt.keywords),
    }
    for name in ("min_value", "max_value"):
        value = getattr(flt, name)
        if value is not None:
            data[name] = str(value)
    if flt.currency is not None:
        data["currency"] = flt.currency
    return data
