"""register-once: suppliers, credentials, upstream call records

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.spine.tables

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('raw_payloads',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('stored_at', hub.spine.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_raw_payloads'))
    )
    op.create_table('upstream_calls',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('system', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('identifier_count', sa.Integer(), nullable=False),
    sa.Column('batched', sa.Boolean(), nullable=False),
    sa.Column('started_at', hub.spine.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('duration_ms', sa.Float(), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('error_code', sa.String(length=100), nullable=True),
    sa.Column('request_sha256', sa.String(length=64), nullable=True),
    sa.Column('response_sha256', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_upstream_calls'))
    )
    op.create_index(op.f('ix_upstream_calls_requested_by'), 'upstream_calls', ['requested_by'], unique=False)
    op.create_index('ix_upstream_calls_system_started', 'upstream_calls', ['system', 'started_at'], unique=False)
    op.create_table('suppliers',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('org_id', sa.String(length=36), nullable=False),
    sa.Column('legal_name', sa.String(length=300), nullable=True),
    sa.Column('identifiers', sa.JSON(), nullable=False),
    sa.Column('identity_key', sa.String(length=64), nullable=False),
    sa.Column('consent_given_at', hub.spine.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('consent_text_version', sa.String(length=40), nullable=False),
    sa.Column('created_at', hub.spine.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_suppliers_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppliers')),
    sa.UniqueConstraint('org_id', 'identity_key', name='uq_suppliers_org_identity')
    )
    op.create_index(op.f('ix_suppliers_org_id'), 'suppliers', ['org_id'], unique=False)
    op.create_table('credential_fetches',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('supplier_id', sa.String(length=36), nullable=False),
    sa.Column('system', sa.String(length=64), nullable=False),
    sa.Column('scheme', sa.String(length=32), nullable=False),
    sa.Column('identifier', sa.String(length=128), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', hub.spine.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_attempt_at', hub.spine.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', hub.spine.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('claimed_until', hub.spine.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('claim_token', sa.String(length=36), nullable=True),
    sa.Column('created_at', hub.spine.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['supplier_id'], ['suppliers.id'], name=op.f('fk_credential_fetches_supplier_id_suppliers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credential_fetches')),
    sa.UniqueConstraint('supplier_id', 'system', name='uq_credential_fetches_supplier_system')
    )
    op.create_index('ix_credential_fetches_due', 'credential_fetches', ['next_attempt_at'], unique=False)
    op.create_table('supplier_grants',
    sa.Column('supplier_id', sa.String(length=36), nullable=False),
    sa.Column('org_id', sa.String(length=36), nullable=False),
    sa.Column('granted_at', hub.spine.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('granted_by', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_supplier_grants_org_id_organisations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['supplier_id'], ['suppliers.id'], name=op.f('fk_supplier_grants_supplier_id_suppliers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('supplier_id', 'org_id', name=op.f('pk_supplier_grants'))
    )
    op.create_table('credentials',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('supplier_id', sa.String(length=36), nullable=False),
    sa.Column('fetch_id', sa.String(length=36), nullable=False),
    sa.Column('system', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=128), nullable=False),
    sa.Column('record_key', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=64), nullable=False),
    sa.Column('attributes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('valid_from', hub.spine.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('valid_until', hub.spine.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('fetched_at', hub.spine.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('current_version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('expired_at', hub.spine.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', hub.spine.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.spine.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['fetch_id'], ['credential_fetches.id'], name=op.f('fk_credentials_fetch_id_credential_fetches'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['supplier_id'], ['suppliers.id'], name=op.f('fk_credentials_supplier_id_suppliers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credentials')),
    sa.UniqueConstraint('supplier_id', 'system', 'type', 'subject', 'record_key', name='uq_credentials_identity')
    )
    op.create_index('ix_credentials_expiry', 'credentials', ['valid_until', 'expired_at'], unique=False)
    op.create_index(op.f('ix_credentials_fetch_id'), 'credentials', ['fetch_id'], unique=False)
    op.create_table('credential_versions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('credential_id', sa.String(length=36), nullable=False),
    sa.Column('fetched_at', hub.spine.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=64), nullable=False),
    sa.Column('attributes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('valid_from', hub.spine.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('valid_until', hub.spine.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('raw_sha256', sa.String(length=64), nullable=False),
    sa.Column('response_sha256', sa.String(length=64), nullable=False),
    sa.Column('request_sha256', sa.String(length=64), nullable=True),
    sa.Column('evidence_pointer', sa.String(length=500), nullable=False),
    sa.Column('change', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['credential_id'], ['credentials.id'], name=op.f('fk_credential_versions_credential_id_credentials'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['raw_sha256'], ['raw_payloads.sha256'], name=op.f('fk_credential_versions_raw_sha256_raw_payloads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credential_versions'))
    )
    op.create_index(op.f('ix_credential_versions_credential_id'), 'credential_versions', ['credential_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_credential_versions_credential_id'), table_name='credential_versions')
    op.drop_table('credential_versions')
    op.drop_index(op.f('ix_credentials_fetch_id'), table_name='credentials')
    op.drop_index('ix_credentials_expiry', table_name='credentials')
    op.drop_table('credentials')
    op.drop_table('supplier_grants')
    op.drop_index('ix_credential_fetches_due', table_name='credential_fetches')
    op.drop_table('credential_fetches')
    op.drop_index(op.f('ix_suppliers_org_id'), table_name='suppliers')
    op.drop_table('suppliers')
    op.drop_index('ix_upstream_calls_system_started', table_name='upstream_calls')
    op.drop_index(op.f('ix_upstream_calls_requested_by'), table_name='upstream_calls')
    op.drop_table('upstream_calls')
    op.drop_table('raw_payloads')
