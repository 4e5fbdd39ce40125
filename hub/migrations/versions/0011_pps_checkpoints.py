"""pps: where the PPS puller stands per operation

Revision ID: 0011
Revises: 0010

One row per BidPublicInfoService operation: the end of the last window fully imported, the window in
progress with the pages done, and the puller's lease.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.spine.tables

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pps_checkpoints",
        sa.Column("operation", sa.String(100), nullable=False),
        sa.Column("window_start", hub.spine.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("window_end", hub.spine.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("pages_done", sa.Integer(), nullable=False),
        sa.Column("page_size", sa.Integer(), nullable=True),
        sa.Column("total_count", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("updated_at", hub.spine.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("leased_until", hub.spine.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("operation", name=op.f("pk_pps_checkpoints")),
    )


def downgrade() -> None:
    op.drop_table("pps_checkpoints")
