"""Two first requests with the same Idempotency-Key at once (PostgreSQL): both read "no answer yet", one
commits, the other meets the key's primary key, rolls back and, handled again, replays the winner's
answer. One notice, one event, the same answer twice."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.api.routes.notices import _dispatch
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.notices.commands import PublishNotice
from hub.notices.idempotency import IdempotencyTicket, Receipt, StoredRequest
from hub.notices.model import NoticeContent
from hub.notices.repository import SqlIdempotencyStore
from hub.notices.tables import NoticeRow
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.registry import COMMAND_HANDLERS, HubUnitOfWork
from hub.spine.bus import MessageBus

CONTENT = NoticeContent.parse({"title": "Snow removal", "category": "services",
                               "dates": {"published": "2026-01-05T09:00:00+09:00"}})


@pytest.fixture
def hub(postgres_url: str) -> Iterator[Hub]:
    made = bootstrap(Settings(database={"url": postgres_url}, broker={"kind": "inprocess"}), migrate=True)
    yield made
    made.close()


def test_the_loser_of_a_same_key_race_replays_the_winners_answer(hub: Hub) -> None:
    both_read = threading.Barrier(2, timeout=10)
    first_reads: set[int] = set()

    class MeetingStore(SqlIdempotencyStore):
        """Lets each thread's first read finish before either request writes anything."""

        def get(self, org_id: str, key: str) -> StoredRequest | None:
            found = super().get(org_id, key)
            if threading.get_ident() not in first_reads:
                first_reads.add(threading.get_ident())
                both_read.wait()
            return found

    class RacingUnitOfWork(HubUnitOfWork):
        def attach_repositories(self, session: Session) -> None:
            super().attach_repositories(session)
            self.idempotency = MeetingStore(session)

    bus = MessageBus(lambda: RacingUnitOfWork(hub.session_factory), COMMAND_HANDLERS, {},
                     dependencies={"settings": hub.settings})
    org, _ = hub.bus.handle(CreateOrganisation(name="Gangwon", kind=OrgKind.INSTITUTION))
    command = PublishNotice(institution_org_id=org.id, content=CONTENT,
                            idempotency=IdempotencyTicket(key="snow-1", request_hash="h"))
    with ThreadPoolExecutor(2) as pool:
        answers: list[Receipt] = list(pool.map(lambda _: _dispatch(bus, command), range(2)))
    assert answers[0].body == answers[1].body
    assert sorted(a.replayed for a in answers) == [False, True]
    with hub.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(NoticeRow)) == 1
