"""suppliers: proof of control of identifiers (one claim per identifier, challenges, proofs)

Revision ID: 0008
Revises: 0007

Every identifier of every existing supplier becomes a claim, unproven: credentials fetched before the
upgrade stay visible to their owners, and eligibility answers ``unknown`` for them until control is
proven. Where two organisations registered the same identifier before claims existed, the earliest
registrant keeps the claim (docs/identifier-control.md says how an operator settles it).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.spine.tables

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _identifiers(value: Any) -> dict[str, str]:
    found = json.loads(value) if isinstance(value, str) else value
    return {str(k): str(v) for k, v in (found or {}).items() if v is not None}


def upgrade() -> None:
    claims = op.create_table(
        "identifier_claims",
        sa.Column("scheme", sa.String(length=32), nullable=False),
        sa.Column("identifier", sa.String(length=128), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("claimed_at", hub.spine.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("proven_at", hub.spine.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("proof_method", sa.String(length=32), nullable=True),
        sa.Column("proof_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_identifier_claims_org_id_organisations"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("scheme", "identifier", name=op.f("pk_identifier_claims")),
    )
    op.create_index(op.f("ix_identifier_claims_org_id"), "identifier_claims", ["org_id"], unique=False)
    op.create_table(
        "control_challenges",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("supplier_id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("scheme", sa.String(length=32), nullable=False),
        sa.Column("identifier", sa.String(length=128), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("issued_at", hub.spine.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", hub.spine.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", hub.spine.tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["supplier_id"], ["suppliers.id"],
                                name=op.f("fk_control_challenges_supplier_id_suppliers"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_control_challenges")),
    )
    op.create_index(op.f("ix_control_challenges_supplier_id"), "control_challenges", ["supplier_id"], unique=False)
    op.create_table(
        "control_proofs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("supplier_id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("scheme", sa.String(length=32), nullable=False),
        sa.Column("identifier", sa.String(length=128), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                  nullable=False),
        sa.Column("recorded_by", sa.String(length=36), nullable=False),
        sa.Column("recorded_at", hub.spine.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("challenge_id", sa.String(length=36), nullable=True),
        sa.Column("failed_field", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["supplier_id"], ["suppliers.id"],
                                name=op.f("fk_control_proofs_supplier_id_suppliers"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_control_proofs")),
    )
    op.create_index(op.f("ix_control_proofs_supplier_id"), "control_proofs", ["supplier_id"], unique=False)

    # Existing suppliers: the earliest registrant of each identifier claims it, unproven.
    suppliers = sa.table("suppliers", sa.column("id", sa.String()), sa.column("org_id", sa.String()),
                         sa.column("identifiers", sa.JSON()),
                         sa.column("created_at", hub.spine.tables.UTCDateTime(timezone=True)))
    rows = op.get_bind().execute(
        sa.select(suppliers.c.org_id, suppliers.c.identifiers, suppliers.c.created_at)
        .order_by(suppliers.c.created_at, suppliers.c.id)).all()
    seen: set[tuple[str, str]] = set()
    found = []
    for org_id, identifiers, created_at in rows:
        for scheme, value in _identifiers(identifiers).items():
            if (scheme, value) not in seen:
                seen.add((scheme, value))
                found.append({"scheme": scheme, "identifier": value, "org_id": org_id, "claimed_at": created_at})
    if found:
        op.bulk_insert(claims, found)


def downgrade() -> None:
    op.drop_index(op.f("ix_control_proofs_supplier_id"), table_name="control_proofs")
    op.drop_table("control_proofs")
    op.drop_index(op.f("ix_control_challenges_supplier_id"), table_name="control_challenges")
    op.drop_table("control_challenges")
    op.drop_index(op.f("ix_identifier_claims_org_id"), table_name="identifier_claims")
    op.drop_table("identifier_claims")
