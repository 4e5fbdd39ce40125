"""subscriptions: matching walks the changes feed in seq order from a cursor

Revision ID: 0007
Revises: 0006

The cursor starts just below the first version that has no payload yet (a version the matching
consumer has not matched: its event is still on the way), or at the end of the feed when every version
is matched, so an upgrade neither re-sends the past nor loses what was in flight. Versions between that
point and the end that were already matched are matched again harmlessly: delivery rows are unique per
(subscription, version) and inserted with ON CONFLICT DO NOTHING.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import hub.spine.tables

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MATCHER = "syndication-matching"


def upgrade() -> None:
    table = op.create_table(
        "matching_cursors",
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("updated_at", hub.spine.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_matching_cursors")),
    )
    bind = op.get_bind()
    first_unmatched = bind.execute(sa.text(
        "SELECT MIN(v.seq) FROM notice_versions v LEFT JOIN syndication_payloads p "
        "ON p.notice_id = v.notice_id AND p.version = v.number WHERE p.notice_id IS NULL")).scalar()
    if first_unmatched is not None:
        start = int(first_unmatched) - 1
    else:
        start = int(bind.execute(sa.text("SELECT COALESCE(MAX(seq), 0) FROM notice_versions")).scalar() or 0)
    op.bulk_insert(table, [{"name": MATCHER, "seq": start, "updated_at": datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table("matching_cursors")
