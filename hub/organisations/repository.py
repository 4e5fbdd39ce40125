"""Repositories: the only place handlers reach persistence for aggregates."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.organisations.model import ApiKey, Organisation, OrgKind
from hub.spine.unit_of_work import UnitOfWork

__all__ = ["OrganisationRepository", "OrganisationsUnitOfWork", "SqlOrganisationRepository"]


class OrganisationRepository(Protocol):
    def add(self, org: Organisation) -> None: ...
    def get(self, org_id: str) -> Organisation | None: ...
    def list(self, kind: OrgKind | None = None) -> list[Organisation]: ...
    def get_key(self, key_id: str) -> ApiKey | None: ...


class OrganisationsUnitOfWork(UnitOfWork, Protocol):
    @property
    def organisations(self) -> OrganisationRepository: ...


class SqlOrganisationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, org: Organisation) -> None:
        self.session.add(org)

    def get(self, org_id: str) -> Organisation | None:
        return self.session.get(Organisation, org_id)

    def list(self, kind: OrgKind | None = None) -> list[Organisation]:
        stmt = select(Organisation).order_by(Organisation.created_at)  # type: ignore[arg-type]
        if kind is not None:
            stmt = stmt.where(Organisation.kind == kind)  # type: ignore[arg-type,misc]
        return list(self.session.scalars(stmt))

    def get_key(self, key_id: str) -> ApiKey | None:
        return self.session.get(ApiKey, key_id)
