"""The subscription aggregate and the plain rules around it: filters, channels, reactivation, secret
rotation with overlap, AMQP routing keys and which filters RabbitMQ can evaluate by itself.

AMQP exactness: routing keys carry only category and region. A subscription whose filter uses
nothing else (``routable``) has its queue bound to ``<ns>.notices`` and RabbitMQ does its fan-out
from ONE message per notice version, published by a hub-owned ``exchange`` subscription that goes
through the same durable, ordered delivery machinery. Every other AMQP subscription's queue is left
unbound and receives one message per matched version straight through the default exchange, so
a subscriber never gets what its finer filters (classification, value, keywords, institution) reject.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from hub.notices.codes import region_country
from hub.notices.model import NoticeValidationError
from hub.spine.errors import Rejected
from hub.spine.text import control_character_problem
from hub.subscriptions.filters import SubscriptionFilter
from hub.subscriptions.ssrf import UnsafeTarget, check_url_syntax

__all__ = [
    "FANOUT_SUBSCRIPTION_ID",
    "GONE_STATUS",
    "Channel",
    "DeliveryRecord",
    "DeliveryStatus",
    "SubscriberTopology",
    "Subscription",
    "binding_keys",
    "filter_json",
    "is_routable",
    "live_secrets",
    "notice_routing_key",
    "parse_filter",
]

FANOUT_SUBSCRIPTION_ID = "hub-notices-exchange"  # the hub-owned fan-out subscription (no org)
ACTIVE, DISABLED = "active", "disabled"
GONE_STATUS = 410  # the endpoint is gone: the delivery dies and the subscription is disabled


class Channel(StrEnum):
    WEBHOOK = "webhook"
    AMQP = "amqp"
    EXCHANGE = "exchange"  # the hub's own fan-out publication to <ns>.notices
    ENDPOINT = "endpoint"  # delivered through a registered webhook endpoint (see batching)


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # not tried yet
    FAILED = "failed"  # tried, a retry is scheduled
    DELIVERED = "delivered"
    DEAD = "dead"  # retries spent (or the endpoint is gone); replayable
    SKIPPED = "skipped"  # missed while disabled, and the subscriber re-enabled "from now"


OPEN = (DeliveryStatus.PENDING.value, DeliveryStatus.FAILED.value)


@dataclass(frozen=True)
class SubscriberTopology:
    """Names of a subscriber's AMQP objects; the API shows them, the RabbitMQ adapter creates them."""

    namespace: str

    @property
    def notices_exchange(self) -> str:
        return f"{self.namespace}.notices"

    def queue(self, subscription_id: str) -> str:
        return f"{self.namespace}.sub.{subscription_id}"

    def dead_letter_queue(self, subscription_id: str) -> str:
        return f"{self.queue(subscription_id)}.dlq"


def _name(name: str) -> str:
    """A subscription's name is free text shown back to its owner: no control characters."""
    if problem := control_character_problem(name):
        raise Rejected("name", problem)
    return name.strip()


def parse_filter(data: Mapping[str, Any]) -> SubscriptionFilter:
    """The API's filter JSON, or a rejection naming the first bad ``filter.<key>``."""
    try:
        return SubscriptionFilter.parse(data)
    except NoticeValidationError as exc:
        path, message = exc.problems[0]
        more = f" (and {len(exc.problems) - 1} more: {exc})" if len(exc.problems) > 1 else ""
        raise Rejected(f"filter.{path}", message + more) from exc


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


def amqp_bindings(flt: SubscriptionFilter) -> list[str]:
    """What an AMQP subscriber's queue is bound with: the filter's keys when routable, else nothing
    (the hub then publishes each match straight into the queue)."""
    return binding_keys(flt) if is_routable(flt) else []


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


def live_secrets(stored: Iterable[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Stored (sealed) secrets that still sign, newest first: a rotated-out one signs until its overlap
    window ends."""
    return [item for item in stored
            if item.get("expires_at") is None or datetime.fromisoformat(item["expires_at"]) > now]


def _webhook_url(url: str | None) -> str:
    """The rules a URL can be checked against without DNS; the DNS check happens before the command."""
    if not url:
        raise Rejected("channel.url", "a webhook subscription needs a URL")
    try:
        check_url_syntax(url)
    except UnsafeTarget as exc:
        raise Rejected("channel.url", str(exc)) from exc
    return url


def _endpoint_url(url: str | None) -> str:
    if not url:
        raise Rejected("url", "an endpoint needs a URL")
    try:
        check_url_syntax(url)
    except UnsafeTarget as exc:
        raise Rejected("url", str(exc)) from exc
    return url


@dataclass
class Subscription:
    """One organisation's standing order for notices: what (filter), how (channel) and whether (status).

    ``secrets`` are the stored forms of webhook signing secrets (sealed by the caller, so the domain
    never sees an encryption key), newest first, each with ``expires_at`` (None while current)."""

    id: str
    org_id: str | None  # None: hub-owned (the exchange fan-out)
    channel: Channel
    filter: SubscriptionFilter
    created_at: datetime
    updated_at: datetime
    name: str = ""
    url: str | None = None
    status: str = ACTIVE
    disabled_reason: str | None = None
    secrets: list[dict[str, Any]] = field(default_factory=list)
    endpoint_id: str | None = None  # ENDPOINT channel: the endpoint that delivers it
    batch: bool = False  # a registered webhook endpoint (no filter of its own), not a subscription

    @classmethod
    def new(cls, subscription_id: str, org_id: str, name: str, channel: str, flt: SubscriptionFilter,
            url: str | None, now: datetime) -> Subscription:
        if channel == Channel.WEBHOOK.value:
            url = _webhook_url(url)
        elif channel == Channel.AMQP.value:
            url = None
        else:
            raise Rejected("channel.type", "expected webhook or amqp")
        return cls(id=subscription_id, org_id=org_id, name=_name(name), channel=Channel(channel), filter=flt,
                   url=url, created_at=now, updated_at=now)

    @classmethod
    def fanout(cls, now: datetime) -> Subscription:
        """The hub-owned subscription that publishes each notice version once to the notices exchange."""
        return cls(id=FANOUT_SUBSCRIPTION_ID, org_id=None, name="notices exchange fan-out",
                   channel=Channel.EXCHANGE, filter=SubscriptionFilter(), created_at=now, updated_at=now)

    @classmethod
    def endpoint(cls, endpoint_id: str, org_id: str, name: str, url: str | None, now: datetime) -> Subscription:
        """A webhook endpoint an organisation registers once; subscriptions on it carry no URL. Its
        deliveries are batched: one per notice version, naming every matched subscription of it."""
        return cls(id=endpoint_id, org_id=org_id, name=_name(name), channel=Channel.WEBHOOK,
                   filter=SubscriptionFilter(), url=_endpoint_url(url), created_at=now, updated_at=now, batch=True)

    @classmethod
    def on_endpoint(cls, subscription_id: str, endpoint: Subscription, name: str, flt: SubscriptionFilter,
                    now: datetime) -> Subscription:
        """A subscription delivered through ``endpoint`` (its owner's): matched on its own filter,
        sent in the endpoint's batch."""
        if not endpoint.batch:
            raise ValueError(f"{endpoint.id} is not an endpoint")
        return cls(id=subscription_id, org_id=endpoint.org_id, name=_name(name), channel=Channel.ENDPOINT,
                   filter=flt, created_at=now, updated_at=now, endpoint_id=endpoint.id)

    def owned_by(self, org_id: str) -> bool:
        return self.org_id is not None and self.org_id == org_id

    @property
    def routable(self) -> bool:
        """An AMQP subscription RabbitMQ serves by exchange bindings, without delivery rows of its own."""
        return self.channel is Channel.AMQP and is_routable(self.filter)

    @property
    def bindings(self) -> list[str]:
        return amqp_bindings(self.filter) if self.channel is Channel.AMQP else []

    @property
    def matchable(self) -> bool:
        """Whether the matching index selects it (routable ones are matched by RabbitMQ instead). A
        disabled subscription still is: its deliveries are written and wait, unsent, until it is
        re-enabled (and catches up) or deleted. An endpoint is not: it has no filter, its
        subscriptions do."""
        return not (self.routable or self.batch)

    def rename(self, name: str, now: datetime) -> None:
        self.name, self.updated_at = _name(name), now

    def change_filter(self, flt: SubscriptionFilter, now: datetime) -> None:
        if self.batch:
            raise Rejected("filter", "an endpoint has no filter: its subscriptions have")
        self.filter, self.updated_at = flt, now

    def change_url(self, url: str, now: datetime) -> None:
        if self.batch:
            self.url, self.updated_at = _endpoint_url(url), now
            return
        if self.channel is not Channel.WEBHOOK:
            raise Rejected("channel.url", "only a webhook subscription has a URL")
        self.url, self.updated_at = _webhook_url(url), now

    def reactivate(self, now: datetime) -> bool:
        """Back to active after a 410 (or its owner) disabled it. True only for the transition, which is
        when the deliveries missed meanwhile are caught up on (or skipped)."""
        if self.status == ACTIVE:
            return False
        self.status, self.disabled_reason, self.updated_at = ACTIVE, None, now
        return True

    def disable(self, reason: str, now: datetime) -> bool:
        """True only for the transition from active: a batch of 410s disables (and is audited) once."""
        if self.status != ACTIVE:
            return False
        self.status, self.disabled_reason, self.updated_at = DISABLED, reason, now
        return True

    def add_first_secret(self, sealed: dict[str, Any]) -> None:
        self.secrets = [{**sealed, "expires_at": None}]

    def rotate_secret(self, sealed: dict[str, Any], now: datetime, overlap: timedelta) -> datetime:
        """The new secret signs from now on; the current ones keep signing until ``now + overlap``, so a
        receiver can switch whenever it likes within the window and no delivery fails verification.
        Secrets whose window has ended are dropped. Returns the end of the window."""
        if self.channel is not Channel.WEBHOOK:
            raise Rejected("channel", "only webhook subscriptions have a signing secret")
        until = now + overlap
        kept = [item if item.get("expires_at") is not None else {**item, "expires_at": until.isoformat()}
                for item in live_secrets(self.secrets, now)]
        self.secrets = [{**sealed, "expires_at": None}, *kept]
        self.updated_at = now
        return until


@dataclass(frozen=True)
class DeliveryRecord:
    """One line of a subscription's delivery log, as the API shows it."""

    id: int
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
