"""outbox: PostgreSQL notifies the relays when outbox rows commit

Revision ID: 0012
Revises: 0011

A statement-level trigger on ``outbox`` runs ``pg_notify('g2bhub_outbox', '')`` in the transaction that
inserts the rows. PostgreSQL delivers the notification only when that transaction commits (several in
one transaction arrive as one), so a relay that LISTENs is woken by committed rows only, and the writer
pays no extra round trip. Every writer of outbox rows is covered, whatever path it takes. SQLite has no
notifications: there the relay is woken in-process (``hub.spine.outbox_signal``).
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE OR REPLACE FUNCTION g2bhub_outbox_notify() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('g2bhub_outbox', '');
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql
    """)
    op.execute("""
        CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
        FOR EACH STATEMENT EXECUTE FUNCTION g2bhub_outbox_notify()
    """)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.execute("DROP FUNCTION IF EXISTS g2bhub_outbox_notify()")
