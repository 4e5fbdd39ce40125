"""subscriptions: registered webhook endpoints with batched deliveries

Revision ID: 0013
Revises: 0012

An endpoint is a row of ``subscriptions`` with ``batch`` set (channel webhook, no filter); the
subscriptions on it name it in ``endpoint_id`` (channel ``endpoint``, no URL). A batched delivery is a
``deliveries`` row keyed by the endpoint whose ``recipients`` lists the matched subscription ids.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("endpoint_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("batch", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index(op.f("ix_subscriptions_endpoint_id"), ["endpoint_id"], unique=False)
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("recipients", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("recipients")
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_index(op.f("ix_subscriptions_endpoint_id"))
        batch.drop_column("batch")
        batch.drop_column("endpoint_id")
