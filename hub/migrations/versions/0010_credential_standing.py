"""suppliers: the standing of each credential and version (in_force / not_in_force / unknown)

Revision ID: 0010
Revises: 0009

The source's status normalised by its mapping's ``standing:`` block, next to the status word itself.
Rows recorded before the upgrade are classified from the shipped mappings' status words; anything
else reads ``unknown`` until its next refresh records the standing the mapping gives.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (credential type, standing, source statuses) as the shipped mappings classify them.
_SHIPPED: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("lei_registration", "in_force", ("issued", "pending_transfer", "pending_archival")),
    ("lei_registration", "not_in_force", ("lapsed", "retired", "annulled", "merged", "duplicate", "cancelled")),
    ("management_system_certificate", "in_force", ("active",)),
    ("management_system_certificate", "not_in_force", ("suspended", "withdrawn")),
    ("company_registration", "in_force", ("active",)),
    ("company_registration", "not_in_force", ("closed", "insolvency")),
    ("tax_status", "in_force", ("active",)),
    ("tax_status", "not_in_force", ("suspended", "closed", "unregistered")),
    ("vat_registration", "in_force", ("valid",)),
    ("vat_registration", "not_in_force", ("invalid",)),
    ("national_certificate", "in_force", ("valid",)),
    ("national_certificate", "not_in_force", ("revoked", "suspended")),
)


def upgrade() -> None:
    for table in ("credentials", "credential_versions"):
        op.add_column(table, sa.Column("standing", sa.String(length=16), server_default="unknown", nullable=False))
    credentials = sa.table("credentials", sa.column("type", sa.String), sa.column("status", sa.String),
                           sa.column("standing", sa.String))
    for credential_type, standing, statuses in _SHIPPED:
        op.execute(credentials.update()
                   .where(credentials.c.type == credential_type, credentials.c.status.in_(statuses))
                   .values(standing=standing))


def downgrade() -> None:
    for table in ("credential_versions", "credentials"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("standing")
