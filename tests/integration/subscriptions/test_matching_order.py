"""Per-notice order on the real database, with notices published through the notices flow (the changes
feed is ``notice_versions``) and the dispatcher's own ``claim_due``: whatever order the matching
consumers take the events in — shuffled, redelivered, two threads at once on PostgreSQL while
institutions keep publishing — every subscription's deliveries become claimable strictly in version
order, and every version reaches every subscription owed it."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.notices.commands import AmendNotice, CancelNotice, PublishNotice
from hub.notices.model import NoticeContent
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.spine.messages import Envelope
from hub.spine.tables import OutboxRow
from hub.subscriptions.commands import CreateSubscription
from hub.subscriptions.repository import claim_due
from hub.subscriptions.tables import DeliveryRow, MatchingCursorRow
from tests.support.ordering import FILTERS, History, owed, random_history
from tests.support.subscriptions import content

GROUP = "syndication-matching"
Received = dict[tuple[str, str], list[int]]  # (subscription, notice id) -> versions in claim order


@pytest.fixture(params=["sqlite", "postgres"])
def hub(request: pytest.FixtureRequest) -> Iterator[Hub]:
    url = str(request.getfixturevalue(f"{request.param}_url"))
    made = bootstrap(Settings(database={"url": url, "pool_size": 8}, broker={"kind": "inprocess"}), migrate=True)
    yield made
    made.close()


def setup(hub: Hub) -> str:
    org, _ = hub.bus.handle(CreateOrganisation(name="Institution", kind=OrgKind.INSTITUTION))
    for sid, flt in FILTERS.items():
        hub.bus.handle(CreateSubscription(subscription_id=sid, org_id="agency", filter=flt, channel="webhook",
                                          url="https://hooks.example.kr/in"))
    return str(org.id)


def publish(hub: Hub, institution: str, history: History, ids: dict[str, str], lock: threading.Lock | None = None
            ) -> None:
    """Each version through its command, as the API would; ``ids`` maps the history's names to ids."""
    for name, version, kind, overrides in history:
        body = NoticeContent.parse(content(title=f"{name} version {version}", **overrides))
        if kind == "original":
            receipt = hub.bus.handle(PublishNotice(institution_org_id=institution, content=body))
            if lock:
                with lock:
                    ids[name] = receipt.body["id"]
            else:
                ids[name] = receipt.body["id"]
        elif kind == "amendment":
            hub.bus.handle(AmendNotice(notice_id=ids[name], institution_org_id=institution, reason="r", content=body))
        else:
            hub.bus.handle(CancelNotice(notice_id=ids[name], institution_org_id=institution, reason="withdrawn"))


def events(hub: Hub) -> list[Envelope]:
    with hub.session_factory() as session:
        rows = session.scalars(select(OutboxRow).where(OutboxRow.message_type == "NoticeVersionPublished")
                               .order_by(OutboxRow.id))
        return [Envelope.read(row) for row in rows]


def named(received: Received, ids: dict[str, str]) -> Received:
    """Keyed by the history's notice names, as the oracle is."""
    names = {v: k for k, v in ids.items()}
    return {(sid, names[notice_id]): versions for (sid, notice_id), versions in received.items()}


def claim_round(hub: Hub, into: Received, rng: random.Random | None = None) -> int:
    """What a dispatcher does, minus the sending: claim due deliveries, then settle (some of) them."""
    with hub.session_factory() as session:
        ids = claim_due(session, 500, timedelta(seconds=60))
        session.commit()
        if rng is not None:
            ids = rng.sample(ids, rng.randint(0, len(ids)))
        rows = session.execute(select(DeliveryRow.id, DeliveryRow.subscription_id, DeliveryRow.notice_id,
                                      DeliveryRow.version).where(DeliveryRow.id.in_(ids))
                               .order_by(DeliveryRow.seq)).all()
        for _, sid, notice_id, version in rows:
            into.setdefault((sid, notice_id), []).append(version)
        session.execute(update(DeliveryRow).where(DeliveryRow.id.in_(ids))
                        .values(status="delivered", lease_until=None))
        session.execute(update(DeliveryRow).where(DeliveryRow.lease_until.is_not(None)).values(lease_until=None))
        session.commit()
    return len(ids)


def drain(hub: Hub, into: Received) -> None:
    while claim_round(hub, into):
        pass


def test_shuffled_consumption_orders_keep_every_notice_in_order(hub: Hub) -> None:
    institution = setup(hub)
    rng = random.Random(8)
    consumed: set[str] = set()
    for round_ in range(6 if hub.engine.dialect.name == "postgresql" else 10):
        history = random_history(rng, notices=4, prefix=f"R{round_}")
        ids: dict[str, str] = {}
        publish(hub, institution, history, ids)
        fresh = [e for e in events(hub) if e.message_id not in consumed]
        consumed.update(e.message_id for e in fresh)
        received: Received = {}
        for envelope in rng.sample(fresh, len(fresh)) + rng.sample(fresh, 2):  # and redeliveries
            hub.bus.consume(GROUP, envelope)
            if rng.random() < 0.5:
                claim_round(hub, received, rng)
        drain(hub, received)
        assert named(received, ids) == owed(history), f"round {round_}"


@pytest.mark.parametrize("hub", ["postgres"], indirect=True)
def test_two_matchers_in_parallel_while_institutions_publish(hub: Hub) -> None:
    """Two consumer threads take the events in their own shuffled orders (overlapping, so they also
    race on the same messages) while two publishers write and a dispatcher thread claims."""
    institution = setup(hub)
    rng = random.Random(2)
    histories = [random_history(rng, notices=8, prefix=f"P{p}") for p in range(2)]
    ids: dict[str, str] = {}
    ids_lock = threading.Lock()
    publishing_done, matching_done = threading.Event(), threading.Event()
    problems: list[BaseException] = []
    received: Received = {}

    def guarded(work: Any) -> Any:
        def run(*args: Any) -> None:
            try:
                work(*args)
            except BaseException as exc:  # reported by the test thread
                problems.append(exc)
        return run

    def matcher(seed: int) -> None:
        local = random.Random(seed)
        seen: set[str] = set()
        while True:
            finished = publishing_done.is_set()
            fresh = [e for e in events(hub) if e.message_id not in seen]
            for envelope in local.sample(fresh, len(fresh)):
                if local.random() < 0.7:  # the other matcher gets the rest, and some of these too
                    hub.bus.consume(GROUP, envelope)
                seen.add(envelope.message_id)
            if finished and not fresh:
                return

    def dispatcher() -> None:
        while not matching_done.is_set():
            claim_round(hub, received)

    threads = [threading.Thread(target=guarded(publish), args=(hub, institution, h, ids, ids_lock))
               for h in histories]
    matchers = [threading.Thread(target=guarded(matcher), args=(seed,)) for seed in (11, 12)]
    claimer = threading.Thread(target=guarded(dispatcher))
    for thread in [*threads, *matchers, claimer]:
        thread.start()
    for thread in threads:
        thread.join(120)
    publishing_done.set()
    for thread in matchers:
        thread.join(120)
    matching_done.set()
    claimer.join(120)
    assert problems == []
    hub.sweep_matching()  # what neither matcher consumed (each skipped some) is the sweep's
    drain(hub, received)
    assert named(received, ids) == owed([v for h in histories for v in h])
    with hub.session_factory() as session:
        [cursor] = session.scalars(select(MatchingCursorRow.seq))
        total = len(events(hub))
        assert cursor == total  # every version matched, none twice (deliveries are unique per version)
        per_version = session.execute(select(func.count()).select_from(DeliveryRow)
                                      .group_by(DeliveryRow.subscription_id, DeliveryRow.notice_id,
                                                DeliveryRow.version).having(func.count() > 1)).all()
        assert per_version == []
