"""The changes feed never lets a reader skip a version, even with many publishers at once.

Publishers run in threads, each on its own connection, while a reader polls the feed from its cursor.
Seqs come from one counter row, taken just before COMMIT and locked until it, so committed seqs always
form a gapless prefix 1..head: every page the reader gets must continue exactly where the previous one
ended. The seqs are given at the transaction's end, so the test also checks that every place quoting a
seq (the version row, the notice row, the event in the outbox, the answer and the remembered
Idempotency-Key receipt) got the final number.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select

from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.notices import queries
from hub.notices.commands import AmendNotice, PublishNotice
from hub.notices.idempotency import IdempotencyTicket
from hub.notices.model import NoticeContent
from hub.notices.tables import IdempotencyRow, NoticeRow
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.spine.tables import OutboxRow
from tests.support.notices import notice_body

PUBLISHERS = 8
NOTICES_EACH = 6  # each also amended once: 2 versions per notice


@pytest.fixture(params=["sqlite", "postgres"])
def hub(request: pytest.FixtureRequest) -> Iterator[Hub]:
    url = str(request.getfixturevalue(f"{request.param}_url"))
    made = bootstrap(Settings(database={"url": url, "pool_size": PUBLISHERS + 2}, broker={"kind": "inprocess"}),
                     migrate=True)
    yield made
    made.close()


def test_concurrent_publishers_never_make_a_reader_skip(hub: Hub) -> None:
    org, _ = hub.bus.handle(CreateOrganisation(name="Busy institution", kind=OrgKind.INSTITUTION))
    content = NoticeContent.parse(notice_body())
    total = PUBLISHERS * NOTICES_EACH * 2
    done = threading.Event()
    read: list[int] = []
    problems: list[str] = []

    def reader() -> None:
        after = 0
        while True:
            finished = done.is_set()
            with hub.session_factory() as session:
                rows = queries.changes_after(session, after, 7)
            seqs = [row.seq for row in rows]
            if seqs and seqs != list(range(after + 1, after + 1 + len(seqs))):
                problems.append(f"after {after} the feed answered {seqs}")
                return
            read.extend(seqs)
            after = seqs[-1] if seqs else after
            if finished and not seqs:
                return

    def publisher(n: int) -> list[Any]:
        receipts = []
        for i in range(NOTICES_EACH):
            ticket = IdempotencyTicket(key=f"p{n}-{i}", request_hash="h")
            receipts.append(hub.bus.handle(PublishNotice(institution_org_id=org.id, content=content,
                                                         idempotency=ticket)))
            receipts.append(hub.bus.handle(AmendNotice(
                notice_id=receipts[-1].body["id"], institution_org_id=org.id, reason=f"publisher {n}",
                changes={"title": f"amended by {n}"})))
        return receipts

    watcher = threading.Thread(target=reader)
    watcher.start()
    with ThreadPoolExecutor(PUBLISHERS) as pool:
        results = list(pool.map(publisher, range(PUBLISHERS)))
    done.set()
    watcher.join(timeout=60)
    assert not watcher.is_alive()
    assert problems == []
    assert read == list(range(1, total + 1))
    answered = {(r.body["id"], r.body["version"]): r.body["seq"] for batch in results for r in batch}
    assert sorted(answered.values()) == read
    with hub.session_factory() as session:
        assert queries.feed_head(session) == total
        feed = {(row.notice_id, row.number): row.seq for row in queries.changes_after(session, 0, total)}
        assert feed == answered
        events = {(row.payload["notice_id"], row.payload["version"]): row.payload["seq"]
                  for row in session.scalars(select(OutboxRow).where(
                      OutboxRow.message_type == "NoticeVersionPublished"))}
        assert events == answered
        remembered = {(row.body["id"], row.body["version"]): row.body["seq"]
                      for row in session.scalars(select(IdempotencyRow))}
        assert remembered == {key: seq for key, seq in answered.items() if key[1] == 1}
        for row in session.scalars(select(NoticeRow)):
            assert (row.created_seq, row.last_seq) == (answered[(row.id, 1)], answered[(row.id, 2)])
