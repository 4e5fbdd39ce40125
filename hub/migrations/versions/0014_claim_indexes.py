"""deliveries, subscriptions: partial indexes for claiming (open rows in claim order overall and per
subscription, leased rows per subscription, subscriptions taking queued deliveries)

Revision ID: 0014
Revises: 0013

A claim reads due rows in ``(next_attempt_at, seq)`` order a bounded window at a time and counts what
each subscription has leased; both indexes cover only the rows those reads look at, so their cost
follows the claim and what is in flight rather than the delivered history or the backlog.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("status IN ('pending', 'failed')")
_LEASED = sa.text("lease_until IS NOT NULL")
_QUEUED = sa.text("channel NOT IN ('webhook', 'endpoint')")


def upgrade() -> None:
    op.create_index("ix_deliveries_open", "deliveries", ["next_attempt_at", "seq"],
                    postgresql_where=_OPEN, sqlite_where=_OPEN,
                    postgresql_include=["subscription_id", "lease_until"])
    op.create_index("ix_deliveries_open_subscription", "deliveries", ["subscription_id", "next_attempt_at", "seq"],
                    postgresql_where=_OPEN, sqlite_where=_OPEN)
    op.create_index("ix_deliveries_leased", "deliveries", ["subscription_id", "lease_until"],
                    postgresql_where=_LEASED, sqlite_where=_LEASED)
    op.create_index("ix_subscriptions_queued", "subscriptions", ["status"],
                    postgresql_where=_QUEUED, sqlite_where=_QUEUED)


def downgrade() -> None:
    op.drop_index("ix_subscriptions_queued", table_name="subscriptions")
    op.drop_index("ix_deliveries_leased", table_name="deliveries")
    op.drop_index("ix_deliveries_open_subscription", table_name="deliveries")
    op.drop_index("ix_deliveries_open", table_name="deliveries")
