"""publish-once: notices, versions, changes feed, idempotency keys

Written by hand (autogenerate would also pick up the other flows' tables). The single row of
``notice_feed_counter`` is seeded here: publishers increment it under its row lock.

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.spine.tables

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
UTC = hub.spine.tables.UTCDateTime


def upgrade() -> None:
    op.create_table('idempotency_keys',
    sa.Column('org_id', sa.String(length=36), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('body', Json, nullable=False),
    sa.Column('location', sa.String(length=1000), nullable=True),
    sa.Column('created_at', UTC(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('org_id', 'key', name=op.f('pk_idempotency_keys'))
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_keys_created_at'), ['created_at'], unique=False)

    counter = op.create_table('notice_feed_counter',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('value', BigId, nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_notice_feed_counter'))
    )
    op.bulk_insert(counter, [{"name": "notice_changes", "value": 0}])

    op.create_table('notices',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('institution_org_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('current_version', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=1000), nullable=False),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('delivery_region', sa.String(length=10), nullable=True),
    sa.Column('estimated_value', sa.Numeric(precision=24, scale=4, asdecimal=False), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('published_at', UTC(timezone=True), nullable=False),
    sa.Column('updated_at', UTC(timezone=True), nullable=False),
    sa.Column('submission_deadline', UTC(timezone=True), nullable=True),
    sa.Column('created_seq', BigId, nullable=False),
    sa.Column('last_seq', BigId, nullable=False),
    sa.ForeignKeyConstraint(['institution_org_id'], ['organisations.id'], name=op.f('fk_notices_institution_org_id_organisations'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notices')),
    sa.UniqueConstraint('created_seq', name=op.f('uq_notices_created_seq'))
    )
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notices_category'), ['category'], unique=False)
        batch_op.create_index(batch_op.f('ix_notices_delivery_region'), ['delivery_region'], unique=False)
        batch_op.create_index(batch_op.f('ix_notices_institution_org_id'), ['institution_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notices_published_at'), ['published_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notices_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_notices_submission_deadline'), ['submission_deadline'], unique=False)

    op.create_table('notice_classifications',
    sa.Column('notice_id', sa.String(length=36), nullable=False),
    sa.Column('scheme', sa.String(length=10), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['notice_id'], ['notices.id'], name=op.f('fk_notice_classifications_notice_id_notices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('notice_id', 'scheme', 'code', name=op.f('pk_notice_classifications'))
    )
    with op.batch_alter_table('notice_classifications', schema=None) as batch_op:
        batch_op.create_index('ix_notice_classifications_code', ['code', 'scheme'], unique=False)

    op.create_table('notice_external_refs',
    sa.Column('institution_org_id', sa.String(length=36), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=False),
    sa.Column('notice_id', sa.String(length=36), nullable=False),
    sa.Column('last_order', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['notice_id'], ['notices.id'], name=op.f('fk_notice_external_refs_notice_id_notices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('institution_org_id', 'source', 'external_id', name=op.f('pk_notice_external_refs'))
    )
    with op.batch_alter_table('notice_external_refs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notice_external_refs_notice_id'), ['notice_id'], unique=False)

    op.create_table('notice_versions',
    sa.Column('notice_id', sa.String(length=36), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('content', Json, nullable=False),
    sa.Column('published_at', UTC(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('changed_fields', sa.JSON(), nullable=False),
    sa.Column('seq', BigId, nullable=False),
    sa.Column('actor_org_id', sa.String(length=36), nullable=True),
    sa.Column('recorded_at', UTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['notice_id'], ['notices.id'], name=op.f('fk_notice_versions_notice_id_notices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('notice_id', 'number', name=op.f('pk_notice_versions')),
    sa.UniqueConstraint('seq', name=op.f('uq_notice_versions_seq'))
    )


def downgrade() -> None:
    op.drop_table('notice_versions')
    with op.batch_alter_table('notice_external_refs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notice_external_refs_notice_id'))
    op.drop_table('notice_external_refs')
    with op.batch_alter_table('notice_classifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notice_classifications_code')
    op.drop_table('notice_classifications')
    with op.batch_alter_table('notices', schema=None) as batch_op:
        for column in ('submission_deadline', 'status', 'published_at', 'institution_org_id', 'delivery_region',
                       'category'):
            batch_op.drop_index(batch_op.f(f'ix_notices_{column}'))
    op.drop_table('notices')
    op.drop_table('notice_feed_counter')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_created_at'))
    op.drop_table('idempotency_keys')
