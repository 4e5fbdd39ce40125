"""In-memory twins for unit tests: the unit of work with every flow's repository, no database.

Handlers are driven against :class:`FakeUnitOfWork` exactly as the bus drives them against the SQL one."""

from __future__ import annotations

from collections.abc import Sequence

from hub.notices.idempotency import IdempotencyKeyRaced, StoredRequest
from hub.notices.model import Notice, NoticeVersion
from hub.notices.repository import ExternalRef, StoredVersion
from hub.organisations.model import ApiKey, Organisation, OrgKind
from hub.spine.messages import Envelope
from hub.spine.unit_of_work import AbstractUnitOfWork


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


class FakeUnitOfWork(AbstractUnitOfWork):
    """Same contract as the SQL unit of work; commits land in ``outbox`` and ``committed`` counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.organisations = InMemoryOrganisationRepository()
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
