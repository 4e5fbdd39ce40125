"""notices: a source's order may be a time (OCDS release dates, in microseconds), so it is 64-bit

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":  # SQLite integers are 64-bit already
        return
    op.alter_column("notice_external_refs", "last_order", existing_type=sa.Integer(), type_=sa.BigInteger(),
                    existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.alter_column("notice_external_refs", "last_order", existing_type=sa.BigInteger(), type_=sa.Integer(),
                    existing_nullable=False)
