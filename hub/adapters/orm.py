"""Tables. Domain aggregates (organisations and their keys) are mapped imperatively so the domain stays
plain Python; infrastructure tables (outbox, inbox, dead letters, audit log) are typed declarative models.
One ``metadata`` serves both, and Alembic compares its migrations against it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry, relationship
from sqlalchemy.types import TypeDecorator

from hub.domain.organisations import ApiKey, Organisation, OrgKind

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)
mapper_registry = registry(metadata=metadata)

BigId = BigInteger().with_variant(Integer(), "sqlite")
JsonDoc = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class OrgKindType(TypeDecorator[OrgKind]):
    """Stored as its plain value; loaded back as the enum, so ``org.kind is OrgKind.X`` holds."""

    impl = String(20)
    cache_ok = True

    def process_bind_param(self, value: OrgKind | str | None, dialect: Any) -> str | None:
        return None if value is None else OrgKind(value).value

    def process_result_value(self, value: str | None, dialect: Any) -> OrgKind | None:
        return None if value is None else OrgKind(value)


class Base(DeclarativeBase):
    metadata = metadata


organisations = Table(
    "organisations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", OrgKindType(), nullable=False, index=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("disabled_at", UTCDateTime(), nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("org_id", String(36), ForeignKey("organisations.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("secret_hash", String(64), nullable=False),
    Column("scopes", JSON(), nullable=False),
    Column("label", String(200), nullable=False, default=""),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("last_used_at", UTCDateTime(), nullable=True),
)


class OutboxRow(Base):
    """An event committed with the state change that raised it, waiting for the relay."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(36), index=True)
    message_type: Mapped[str] = mapped_column(String(100))
    routing_key: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    correlation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    target_group: Mapped[str | None] = mapped_column(String(100), nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_outbox_pending", "published_at", "id"),)


class InboxRow(Base):
    """A message a consumer group has applied; written in the same transaction as the effect."""

    __tablename__ = "inbox"
    consumer_group: Mapped[str] = mapped_column(String(100), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    handled_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DeadLetterRow(Base):
    """A message a consumer group gave up on after the delivery limit, kept until replayed."""

    __tablename__ = "dead_letters"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    consumer_group: Mapped[str] = mapped_column(String(100))
    message_id: Mapped[str] = mapped_column(String(36))
    message_type: Mapped[str] = mapped_column(String(100))
    routing_key: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    correlation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text())
    delivery_count: Mapped[int] = mapped_column(Integer())
    dead_at: Mapped[datetime] = mapped_column(UTCDateTime())
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_dead_letters_open", "consumer_group", "replayed_at"),)


class AuditRow(Base):
    """Who did what, when: one row per event, written by the audit consumer group."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(100), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor_org_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    subject_org_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    correlation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JsonDoc)

    __table_args__ = (UniqueConstraint("message_id", name="uq_audit_log_message_id"),)


_mapped = False


def start_mappers() -> None:
    """Map the domain dataclasses once per process (this module's and every slice's)."""
    global _mapped
    if _mapped:
        return
    for slice_module in SLICE_TABLES:
        slice_module.start_mappers()
    mapper_registry.map_imperatively(ApiKey, api_keys)
    mapper_registry.map_imperatively(
        Organisation,
        organisations,
        properties={
            "api_keys": relationship(ApiKey, cascade="all, delete-orphan", lazy="selectin"),
        },
    )
    _mapped = True


# Each slice keeps its tables in its own module; importing them here puts them in ``metadata`` for
# Alembic and for anyone who imports the ORM.
from hub.adapters import orm_notices, orm_subscriptions, orm_suppliers  # noqa: E402

SLICE_TABLES = (orm_suppliers, orm_notices, orm_subscriptions)
