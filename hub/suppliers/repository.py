"""Persistence of suppliers, fetch slots, credentials and their versions, over the unit of work's session.

Claiming uses ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so competing workers take disjoint rows
without waiting; SQLite transactions begin ``IMMEDIATE`` (one writer at a time), which gives the same
guarantee. The lease (``claimed_until``) outlives the transaction: a claimer that dies simply lets it
run out and the slot becomes due again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.suppliers.model import (
    Credential,
    CredentialFetch,
    CredentialVersion,
    Supplier,
    SupplierGrant,
)
from hub.suppliers.tables import raw_payloads

__all__ = ["SupplierRepository"]

# Mapped imperatively: mypy sees dataclass attributes, SQLAlchemy sees columns.
F: Any = CredentialFetch
C: Any = Credential
V: Any = CredentialVersion
S: Any = Supplier
G: Any = SupplierGrant


class SupplierRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- suppliers ----------------------------------------------------------------------------------
    def add(self, obj: object) -> None:
        """Add and flush: the mapped classes have no relationships, so SQLAlchemy cannot order inserts
        by foreign key itself; flushing in the order of ``add`` calls does."""
        self.session.add(obj)
        self.session.flush()

    def add_all(self, objs: list[Any]) -> None:
        """Rows of one class that do not refer to each other: one flush."""
        if objs:
            self.session.add_all(objs)
            self.session.flush()

    def get(self, supplier_id: str) -> Supplier | None:
        return self.session.get(Supplier, supplier_id)

    def find_by_identity(self, org_id: str, identity_key: str) -> Supplier | None:
        stmt = select(S).where(S.org_id == org_id, S.identity_key == identity_key)
        return self.session.scalars(stmt).first()

    def list_owned(self, org_id: str | None = None, limit: int = 100, offset: int = 0) -> list[Supplier]:
        stmt = select(S).order_by(S.created_at, S.id).limit(limit).offset(offset)
        if org_id is not None:
            stmt = stmt.where(S.org_id == org_id)
        return list(self.session.scalars(stmt))

    def list_granted_to(self, org_id: str, limit: int = 100, offset: int = 0) -> list[Supplier]:
        stmt = (
            select(S).join(G, G.supplier_id == S.id).where(G.org_id == org_id)
            .order_by(S.created_at, S.id).limit(limit).offset(offset)
        )
        return list(self.session.scalars(stmt))

    # -- grants -------------------------------------------------------------------------------------
    def grant(self, supplier_id: str, org_id: str) -> SupplierGrant | None:
        return self.session.get(SupplierGrant, (supplier_id, org_id))

    def revoke(self, supplier_id: str, org_id: str) -> bool:
        result: Any = self.session.execute(delete(G).where(G.supplier_id == supplier_id, G.org_id == org_id))
        return bool(result.rowcount)

    # -- fetch slots ----------------------------------------------------------------------------------
    def fetch(self, fetch_id: str) -> CredentialFetch | None:
        return self.session.get(CredentialFetch, fetch_id)

    def fetches_of(self, supplier_id: str) -> list[CredentialFetch]:
        return list(self.session.scalars(select(F).where(F.supplier_id == supplier_id).order_by(F.system)))

    def claim(
        self, token: str, now: datetime, lease: timedelta, limit: int,
        supplier_id: str | None = None, force: bool = False,
    ) -> list[CredentialFetch]:
        """Reserve up to ``limit`` slots: the due ones, or with ``force`` every unclaimed slot of
        ``supplier_id`` (an on-demand refresh) except those the source refused for good."""
        free = or_(F.claimed_until.is_(None), F.claimed_until <= now)
        stmt = select(F).where(free)
        if supplier_id is not None:
            stmt = stmt.where(F.supplier_id == supplier_id)
        if force:
            stmt = stmt.where(F.state != "failed_permanently")
        else:
            stmt = stmt.where(and_(F.next_attempt_at.is_not(None), F.next_attempt_at <= now))
        stmt = stmt.order_by(F.next_attempt_at, F.id).limit(limit).with_for_update(skip_locked=True)
        claimed = list(self.session.scalars(stmt))
        for slot in claimed:
            slot.claim(token, now, lease)
        return claimed

    # -- credentials ----------------------------------------------------------------------------------
    def credentials_of(self, supplier_id: str) -> list[Credential]:
        stmt = select(C).where(C.supplier_id == supplier_id).order_by(C.system, C.type, C.record_key)
        return list(self.session.scalars(stmt))

    def credentials_of_fetch(self, fetch_id: str) -> list[Credential]:
        return list(self.session.scalars(select(C).where(C.fetch_id == fetch_id)))

    def credential(self, credential_id: str) -> Credential | None:
        return self.session.get(Credential, credential_id)

    def expiring(self, now: datetime, limit: int) -> list[Credential]:
        """Credentials past ``valid_until`` not yet marked expired, locked for this transaction."""
        stmt = (
            select(C)
            .where(C.valid_until.is_not(None), C.valid_until <= now, C.expired_at.is_(None), C.status != "absent")
            .order_by(C.valid_until)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(self.session.scalars(stmt))

    # -- versions and raw payloads ----------------------------------------------------------------
    def version(self, version_id: int) -> CredentialVersion | None:
        return self.session.get(CredentialVersion, version_id)

    def versions_of(self, credential_id: str) -> list[CredentialVersion]:
        stmt = select(V).where(V.credential_id == credential_id).order_by(V.id.desc())
        return list(self.session.scalars(stmt))

    def store_raw(self, sha256: str, content_type: str, body: bytes, now: datetime) -> None:
        """Insert once per hash; a concurrent insert of the same bytes is not an error."""
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = insert(raw_payloads).values(
            sha256=sha256, content_type=content_type[:100], size=len(body), body=body, stored_at=now
        ).on_conflict_do_nothing(index_elements=["sha256"])
        self.session.execute(stmt)

    def raw(self, sha256: str) -> tuple[str, bytes] | None:
        row = self.session.execute(
            select(raw_payloads.c.content_type, raw_payloads.c.body).where(raw_payloads.c.sha256 == sha256)
        ).first()
        return (row[0], bytes(row[1])) if row is not None else None
