"""Repositories: the only place handlers reach persistence for aggregates."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.domain.organisations import ApiKey, Organisation, OrgKind

__all__ = ["InMemoryOrganisationRepository", "OrganisationRepository", "SqlOrganisationRepository"]


class OrganisationRepository(Protocol):
    def add(self, org: Organisation) -> None: ...
    def get(self, org_id: str) -> Organisation | None: ...
    def list(self, kind: OrgKind | None = None) -> list[Organisation]: ...
    def get_key(self, key_id: str) -> ApiKey | None: ...


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


class InMemoryOrganisationRepository:
    def __init__(self) -> None:
        self.orgs: dict[str, Organisation] = {}

    def add(self, org: Organisation) -> None:
        self.orgs[org.id] = org

    def get(self, org_id: str) -> Organisation | None:
        return self.orgs.get(org_id)

    def list(self, kind: OrgKind | None = None) -> list[Organisation]:
        return [o for o in self.orgs.values() if kind is None or o.kind == kind]

    def get_key(self, key_id: str) -> ApiKey | None:
        for org in self.orgs.values():
            for key in org.api_keys:
                if key.id == key_id:
                    return key
        return None
