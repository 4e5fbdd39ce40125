"""Tables of subscriptions and their deliveries.

Typed declarative rows: the :class:`~hub.subscriptions.model.Subscription` aggregate is mapped onto its row
by hand in the repository (the filter is stored as the API's JSON), and the delivery dispatcher works
on the rows set-wise.

- ``subscriptions``: filter (the API JSON, re-parsed by ``SubscriptionFilter.parse``), channel, secrets.
- ``subscription_changes``: an append-only change log; every worker's in-memory index replays it
  (cheap ``id > last`` query before each match) to stay in sync with the database.
- ``syndication_payloads`` (the table keeps its first name): the body of one notice version, built
  once and shared by its deliveries, so retries send identical bytes and the dispatcher needs no
  notice store.
- ``deliveries``: one row per (subscription, notice version); unique, so matching is idempotent. A
  batched endpoint's row is keyed by the endpoint and lists the matched subscriptions (``recipients``).
- ``matching_cursors``: how far along the changes feed (``notice_versions.seq``) a matcher has matched;
  the row is locked while matching, so one matcher at a time walks the feed, in seq order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from hub.spine.tables import Base, BigId, JsonDoc, UTCDateTime

__all__ = ["DeliveryRow", "MatchingCursorRow", "PayloadRow", "SubscriptionChangeRow", "SubscriptionRow",
           "start_mappers"]


class SubscriptionRow(Base):
    __tablename__ = "subscriptions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)  # None: hub-owned
    name: Mapped[str] = mapped_column(String(200), default="")
    channel: Mapped[str] = mapped_column(String(20))  # webhook | amqp | exchange (hub fan-out)
    url: Mapped[str | None] = mapped_column(Text(), nullable=True)
    filter: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    routable: Mapped[bool] = mapped_column(Boolean(), default=False)  # amqp: fan-out by exchange bindings
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | disabled
    disabled_reason: Mapped[str | None] = mapped_column(Text(), nullable=True)
    secrets: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # A subscription on a registered endpoint (channel ``endpoint``) names it; the endpoint's own row
    # (channel ``webhook``, no filter) has ``batch`` set and is the target of its batched deliveries.
    endpoint_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    batch: Mapped[bool] = mapped_column(Boolean(), default=False)

    __table_args__ = (
        # The dispatcher's probe for subscriptions taking queued (non-webhook) deliveries.
        Index("ix_subscriptions_queued", "status",
              postgresql_where=text("channel NOT IN ('webhook', 'endpoint')"),
              sqlite_where=text("channel NOT IN ('webhook', 'endpoint')")),
    )


class SubscriptionChangeRow(Base):
    __tablename__ = "subscription_changes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(String(36))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PayloadRow(Base):
    __tablename__ = "syndication_payloads"
    notice_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    seq: Mapped[int] = mapped_column(BigId)
    routing_key: Mapped[str] = mapped_column(String(255))
    body: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DeliveryRow(Base):
    __tablename__ = "deliveries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(String(36))
    notice_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer())
    seq: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|failed|delivered|dead
    attempts: Mapped[int] = mapped_column(Integer(), default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the claim's token
    last_status_code: Mapped[int | None] = mapped_column(Integer(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # A batched delivery (to an endpoint): the matched subscription ids it carries, sorted.
    recipients: Mapped[list[str] | None] = mapped_column(JsonDoc, nullable=True)

    __table_args__ = (
        UniqueConstraint("subscription_id", "notice_id", "version", name="uq_deliveries_subscription_version"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_log", "subscription_id", "id"),
        Index("ix_deliveries_notice", "notice_id", "subscription_id", "version"),
        # The claim's scan in claim order over open rows only, and its count of what is leased.
        Index("ix_deliveries_open", "next_attempt_at", "seq",
              postgresql_where=text("status IN ('pending', 'failed')"),
              sqlite_where=text("status IN ('pending', 'failed')"),
              postgresql_include=["subscription_id", "lease_until"]),
        Index("ix_deliveries_open_subscription", "subscription_id", "next_attempt_at", "seq",
              postgresql_where=text("status IN ('pending', 'failed')"),
              sqlite_where=text("status IN ('pending', 'failed')")),
        Index("ix_deliveries_leased", "subscription_id", "lease_until",
              postgresql_where=text("lease_until IS NOT NULL"), sqlite_where=text("lease_until IS NOT NULL")),
    )


class MatchingCursorRow(Base):
    __tablename__ = "matching_cursors"
    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    seq: Mapped[int] = mapped_column(BigId)  # every feed version up to here is matched
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


def start_mappers() -> None:
    """Nothing to map imperatively: these are declarative rows."""
