"""In-memory twins for unit tests: the unit of work with every flow's repository, no database.

Handlers are driven against :class:`FakeUnitOfWork` exactly as the bus drives them against the SQL one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import count

from hub.notices.idempotency import IdempotencyKeyRaced, StoredRequest
from hub.notices.model import Notice, NoticeVersion
from hub.notices.repository import ExternalRef, StoredVersion
from hub.organisations.model import ApiKey, Organisation, OrgKind
from hub.spine.messages import Envelope
from hub.spine.unit_of_work import AbstractUnitOfWork
from hub.suppliers.model import ABSENT, Credential, CredentialFetch, CredentialVersion, Supplier, SupplierGrant


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


class InMemoryNoticeRepository:
    """Notices as the SQL repository keeps them: versions appended with consecutive seqs."""

    def __init__(self) -> None:
        self.notices: dict[str, Notice] = {}
        self.refs: dict[tuple[str, str, str], ExternalRef] = {}
        self.stored: list[StoredVersion] = []  # every recorded version, in seq order

    def get(self, notice_id: str, *, for_update: bool = False) -> Notice | None:
        found = self.notices.get(notice_id)
        return None if found is None else Notice(found.id, found.institution_id, list(found.versions))

    def get_owned(self, notice_id: str, institution_org_id: str) -> Notice | None:
        notice = self.get(notice_id, for_update=True)
        return notice if notice is not None and notice.institution_id == institution_org_id else None

    def external_ref(self, institution_org_id: str, source: str, external_id: str) -> ExternalRef | None:
        return self.refs.get((institution_org_id, source, external_id))

    def link_external(self, institution_org_id: str, source: str, external_id: str, notice_id: str,
                      order: int) -> None:
        known = self.refs.get((institution_org_id, source, external_id))
        last = order if known is None else max(known.last_order, order)
        self.refs[(institution_org_id, source, external_id)] = ExternalRef(notice_id, last)

    def record(self, changes: Sequence[tuple[Notice, Sequence[NoticeVersion]]],
               actor_org_id: str | None) -> list[StoredVersion]:
        grouped: dict[str, tuple[Notice, list[NoticeVersion]]] = {}
        for notice, versions in changes:
            grouped.setdefault(notice.id, (notice, []))[1].extend(versions)
        recorded = []
        for notice, versions in grouped.values():
            if notice.id not in self.notices and not any(v.number == 1 for v in versions):
                raise ValueError(f"notice {notice.id} is not stored and its first version is not given")
            for version in sorted(versions, key=lambda v: v.number):
                recorded.append(StoredVersion(notice, version, len(self.stored) + len(recorded) + 1))
            self.notices[notice.id] = Notice(notice.id, notice.institution_id, list(notice.versions))
        self.stored.extend(recorded)
        return recorded


class InMemoryIdempotencyStore:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], StoredRequest] = {}

    def get(self, org_id: str, key: str) -> StoredRequest | None:
        return self.rows.get((org_id, key))

    def put(self, org_id: str, key: str, stored: StoredRequest) -> None:
        if (org_id, key) in self.rows:
            raise IdempotencyKeyRaced(key)  # the table's primary key does the same
        self.rows[(org_id, key)] = stored

    def forget(self, org_id: str, key: str) -> None:
        self.rows.pop((org_id, key), None)


class InMemorySupplierRepository:
    def __init__(self) -> None:
        self.suppliers: dict[str, Supplier] = {}
        self.grants: dict[tuple[str, str], SupplierGrant] = {}
        self.fetches: dict[str, CredentialFetch] = {}
        self.credentials: dict[str, Credential] = {}
        self.versions: dict[int, CredentialVersion] = {}
        self.raws: dict[str, tuple[str, bytes]] = {}
        self._version_ids = count(1)

    def add(self, supplier: Supplier) -> None:
        self.suppliers[supplier.id] = supplier

    def get(self, supplier_id: str) -> Supplier | None:
        return self.suppliers.get(supplier_id)

    def find_by_identity(self, org_id: str, identity_key: str) -> Supplier | None:
        return next((s for s in self.suppliers.values() if (s.org_id, s.identity_key) == (org_id, identity_key)),
                    None)

    def list_owned(self, org_id: str | None = None, limit: int = 100, offset: int = 0) -> list[Supplier]:
        found = sorted((s for s in self.suppliers.values() if org_id in (None, s.org_id)),
                       key=lambda s: (s.created_at, s.id))
        return found[offset : offset + limit]

    def list_granted_to(self, org_id: str, limit: int = 100, offset: int = 0) -> list[Supplier]:
        found = sorted((self.suppliers[s] for s, o in self.grants if o == org_id), key=lambda s: (s.created_at, s.id))
        return found[offset : offset + limit]

    def add_grant(self, grant: SupplierGrant) -> None:
        self.grants[(grant.supplier_id, grant.org_id)] = grant

    def grant(self, supplier_id: str, org_id: str) -> SupplierGrant | None:
        return self.grants.get((supplier_id, org_id))

    def revoke(self, supplier_id: str, org_id: str) -> bool:
        return self.grants.pop((supplier_id, org_id), None) is not None

    def add_fetches(self, slots: Sequence[CredentialFetch]) -> None:
        self.fetches.update((slot.id, slot) for slot in slots)

    def fetch(self, fetch_id: str) -> CredentialFetch | None:
        return self.fetches.get(fetch_id)

    def fetches_of(self, supplier_id: str) -> list[CredentialFetch]:
        return sorted((f for f in self.fetches.values() if f.supplier_id == supplier_id), key=lambda f: f.system)

    def claim(
        self, token: str, now: datetime, lease: timedelta, limit: int,
        supplier_id: str | None = None, force: bool = False,
    ) -> list[CredentialFetch]:
        def claimable(f: CredentialFetch) -> bool:
            if f.claimed_until is not None and f.claimed_until > now:
                return False
            if supplier_id is not None and f.supplier_id != supplier_id:
                return False
            if force:
                return f.state != "failed_permanently"
            return f.next_attempt_at is not None and f.next_attempt_at <= now

        due = sorted(filter(claimable, self.fetches.values()), key=lambda f: (f.next_attempt_at or now, f.id))
        for slot in due[:limit]:
            slot.claim(token, now, lease)
        return due[:limit]

    def add_credentials(self, credentials: Sequence[Credential]) -> None:
        self.credentials.update((c.id, c) for c in credentials)

    def credential(self, credential_id: str) -> Credential | None:
        return self.credentials.get(credential_id)

    def credentials_of(self, supplier_id: str) -> list[Credential]:
        return sorted((c for c in self.credentials.values() if c.supplier_id == supplier_id),
                      key=lambda c: (c.system, c.type, c.record_key))

    def credentials_of_fetch(self, fetch_id: str) -> list[Credential]:
        return [c for c in self.credentials.values() if c.fetch_id == fetch_id]

    def expiring(self, now: datetime, limit: int) -> list[Credential]:
        found = [c for c in self.credentials.values() if c.valid_until is not None and c.valid_until <= now
                 and c.expired_at is None and c.status != ABSENT]
        return sorted(found, key=lambda c: c.valid_until or now)[:limit]

    def add_versions(self, versions: Sequence[CredentialVersion]) -> None:
        for version in versions:
            version.id = next(self._version_ids)
            self.versions[version.id] = version

    def version(self, version_id: int) -> CredentialVersion | None:
        return self.versions.get(version_id)

    def versions_of(self, credential_id: str) -> list[CredentialVersion]:
        return sorted((v for v in self.versions.values() if v.credential_id == credential_id),
                      key=lambda v: -(v.id or 0))

    def store_raw(self, sha256: str, content_type: str, body: bytes, now: datetime) -> None:
        self.raws.setdefault(sha256, (content_type, body))

    def raw(self, sha256: str) -> tuple[str, bytes] | None:
        return self.raws.get(sha256)


class FakeUnitOfWork(AbstractUnitOfWork):
    """Same contract as the SQL unit of work; commits land in ``outbox`` and ``committed`` counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.organisations = InMemoryOrganisationRepository()
        self.suppliers = InMemorySupplierRepository()
        self.notices = InMemoryNoticeRepository()
        self.idempotency = InMemoryIdempotencyStore()
        self.outbox: list[Envelope] = []
        self.inbox: set[tuple[str, str]] = set()
        self._inbox_pending: set[tuple[str, str]] = set()
        self.committed = 0

    def _commit(self, envelopes: list[Envelope]) -> None:
        self.outbox.extend(envelopes)
        self.inbox |= self._inbox_pending
        self._inbox_pending = set()
        self.committed += 1

    def _rollback(self) -> None:
        self._inbox_pending = set()

    def already_handled(self, consumer_group: str, message_id: str) -> bool:
        return (consumer_group, message_id) in self.inbox

    def mark_handled(self, consumer_group: str, message_id: str) -> None:
        self._inbox_pending.add((consumer_group, message_id))
