"""Tables of organisations and their API keys, mapped imperatively onto the plain domain classes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, String, Table
from sqlalchemy.orm import relationship
from sqlalchemy.types import TypeDecorator

from hub.organisations.model import ApiKey, Organisation, OrgKind
from hub.spine.tables import UTCDateTime, mapper_registry, metadata

__all__ = ["api_keys", "organisations", "start_mappers"]


class OrgKindType(TypeDecorator[OrgKind]):
    """Stored as its plain value; loaded back as the enum, so ``org.kind is OrgKind.X`` holds."""

    impl = String(20)
    cache_ok = True

    def process_bind_param(self, value: OrgKind | str | None, dialect: Any) -> str | None:
        return None if value is None else OrgKind(value).value

    def process_result_value(self, value: str | None, dialect: Any) -> OrgKind | None:
        return None if value is None else OrgKind(value)


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


def start_mappers() -> None:
    mapper_registry.map_imperatively(ApiKey, api_keys)
    mapper_registry.map_imperatively(
        Organisation,
        organisations,
        properties={
            "api_keys": relationship(ApiKey, cascade="all, delete-orphan", lazy="selectin"),
        },
    )
