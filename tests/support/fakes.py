"""In-memory twins for unit tests: the unit of work with every flow's repository, no database.

Handlers are driven against :class:`FakeUnitOfWork` exactly as the bus drives them against the SQL one."""

from __future__ import annotations

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


class FakeUnitOfWork(AbstractUnitOfWork):
    """Same contract as the SQL unit of work; commits land in ``outbox`` and ``committed`` counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.organisations = InMemoryOrganisationRepository()
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
