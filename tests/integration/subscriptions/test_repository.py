"""The SQL repositories keep the contract the in-memory ones (tests/support/fakes.py) promise the unit
tests: the same scenario runs against both, so a handler test on the fake says something about the
database too."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.bootstrap import bootstrap
from hub.config import Settings
from hub.subscriptions.filters import SubscriptionFilter
from hub.subscriptions.model import GONE_STATUS, Channel, Subscription, parse_filter
from tests.support.fakes import FakeUnitOfWork

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sql", "memory"])
def uow_factory(request: pytest.FixtureRequest,
                settings_factory: Callable[..., Settings]) -> Iterator[Callable[[], Any]]:
    if request.param == "memory":
        fake = FakeUnitOfWork()
        yield lambda: fake
        return
    hub = bootstrap(settings_factory(), migrate=True)
    try:
        yield hub.uow
    finally:
        hub.close()


def subscription(sid: str, org: str = "org-a", channel: str = "webhook", **flt: Any) -> Subscription:
    return Subscription.new(sid, org, f"sub {sid}", channel, parse_filter(flt),
                            "https://hooks.example.kr/in" if channel == "webhook" else None, NOW)


def test_subscriptions_round_trip_and_every_write_is_logged(uow_factory: Callable[[], Any]) -> None:
    hook = subscription("hook", classifications=["CPV:45"], min_value="1000", currency="KRW")
    hook.add_first_secret({"secret": "whsec_a"})
    routable, finer = subscription("q1", channel="amqp", regions=["KR"]), subscription("q2", channel="amqp",
                                                                                       keywords=["road"])
    with uow_factory() as uow:
        mark = uow.subscriptions.last_change()
        for sub in (hook, routable, finer, subscription("other", org="org-b")):
            uow.subscriptions.add(sub)
        uow.commit()
    with uow_factory() as uow:
        assert uow.subscriptions.get("hook") == hook
        assert uow.subscriptions.get("missing") is None
        assert [s.id for s in uow.subscriptions.list_for("org-a")] == ["hook", "q1", "q2"]
        assert uow.subscriptions.matchable_filters() == {"hook": hook.filter, "q2": finer.filter,
                                                         "other": SubscriptionFilter()}
        stored = uow.subscriptions.get("hook")
        stored.disable("the endpoint answered 410 Gone", NOW + timedelta(minutes=1))
        stored.rotate_secret({"secret": "whsec_b"}, NOW, timedelta(hours=1))
        uow.subscriptions.save(stored)
        uow.subscriptions.remove(uow.subscriptions.get("other"))
        uow.commit()
    with uow_factory() as uow:
        again = uow.subscriptions.get("hook")
        assert again == stored and again.status == "disabled" and len(again.secrets) == 2
        assert again.channel is Channel.WEBHOOK and again.filter == hook.filter
        assert uow.subscriptions.get("other") is None
        # disabled still matched (its deliveries wait for the reactivation); deleted and routable not
        assert uow.subscriptions.matchable_filters(["hook", "q1", "q2", "other"]) == {"hook": hook.filter,
                                                                                     "q2": finer.filter}
        logged = uow.subscriptions.changes_after(mark)
        assert [sid for _, sid in logged] == ["hook", "q1", "q2", "other", "hook", "other"]
        assert uow.subscriptions.last_change() == logged[-1][0]


def test_deliveries_are_added_once_ended_replayed_and_paged(uow_factory: Callable[[], Any]) -> None:
    with uow_factory() as uow:
        for sid in ("a", "b"):
            uow.subscriptions.add(subscription(sid))
        uow.deliveries.add_payload("N-1", 1, "original", 1, "notice.works.KR.KR-11", {"data": {}})
        uow.deliveries.add_payload("N-1", 1, "original", 1, "notice.works.KR.KR-11", {"data": {}})  # no-op
        assert uow.deliveries.add_deliveries(["b", "a", "b"], "N-1", 1, 1, "original") == 2
        assert uow.deliveries.add_deliveries(["a"], "N-1", 1, 1, "original") == 0  # matched twice: nothing new
        assert uow.deliveries.add_deliveries(iter(["a"]), "N-2", 1, 2, "original") == 1
        assert uow.deliveries.add_deliveries([], "N-3", 1, 3, "original") == 0
        uow.commit()
    with uow_factory() as uow:
        assert uow.deliveries.earlier_recipients("N-1", 2) == {"a", "b"}
        assert uow.deliveries.earlier_recipients("N-1", 1) == set()
        page = uow.deliveries.page("a", None, None, 10)
        assert [(d.notice_id, d.version, d.status) for d in page] == [("N-1", 1, "pending"), ("N-2", 1, "pending")]
        assert [d.id for d in uow.deliveries.page("a", None, page[0].id, 10)] == [page[1].id]
        uow.deliveries.end_open("a", "subscription deleted")
        uow.commit()
    with uow_factory() as uow:
        assert uow.deliveries.counts("a") == {"dead": 2} and uow.deliveries.counts("b") == {"pending": 1}
        dead = uow.deliveries.dead("a")
        assert dead == [d.id for d in page] and uow.deliveries.dead("a", [dead[1]]) == [dead[1]]
        assert uow.deliveries.page("a", "dead", None, 1)[0].last_error == "subscription deleted"
        uow.deliveries.replay([dead[1]], NOW)
        uow.commit()
    with uow_factory() as uow:
        assert uow.deliveries.counts("a") == {"dead": 1, "pending": 1}
        [replayed] = uow.deliveries.page("a", "pending", None, 10)
        assert replayed.id == dead[1] and replayed.attempts == 0


def test_earlier_recipients_count_disabled_subscriptions_not_deleted_ones(uow_factory: Callable[[], Any]) -> None:
    with uow_factory() as uow:
        for sid in ("live", "paused", "gone"):
            uow.subscriptions.add(subscription(sid))
        uow.deliveries.add_deliveries(["live", "paused", "gone"], "N-1", 1, 1, "original")
        paused = uow.subscriptions.get("paused")
        assert paused.disable("disabled by its owner", NOW) and not paused.disable("again", NOW)
        uow.subscriptions.save(paused)
        uow.subscriptions.remove(uow.subscriptions.get("gone"))
        uow.commit()
    with uow_factory() as uow:
        assert uow.deliveries.earlier_recipients("N-1", 2) == {"live", "paused"}


def gone(uow: Any, sid: str, notice: str, version: int) -> int:
    """A delivery as the dispatcher leaves it after a 410."""
    [delivery] = [d for d in uow.deliveries.page(sid, None, None, 100) if (d.notice_id, d.version) == (notice, version)]
    if hasattr(uow.deliveries, "rows"):
        uow.deliveries._set(delivery.id, status="dead", last_status_code=GONE_STATUS, attempts=1)
    else:
        from sqlalchemy import update

        from hub.subscriptions.tables import DeliveryRow

        uow.session.execute(update(DeliveryRow).where(DeliveryRow.id == delivery.id).values(
            status="dead", last_status_code=GONE_STATUS, attempts=1))
    return int(delivery.id)


@pytest.mark.parametrize("catch_up", [True, False])
def test_reactivation_resumes_or_skips_what_the_disable_held_back(uow_factory: Callable[[], Any],
                                                                   catch_up: bool) -> None:
    with uow_factory() as uow:
        uow.subscriptions.add(subscription("s"))
        uow.deliveries.add_deliveries(["s"], "N-1", 1, 1, "original")
        uow.deliveries.add_deliveries(["s"], "N-2", 1, 2, "original")
        uow.deliveries.add_deliveries(["s"], "N-1", 2, 3, "amendment")
        uow.deliveries.add_deliveries(["s"], "N-3", 1, 4, "original")
        uow.commit()
    with uow_factory() as uow:
        ended = gone(uow, "s", "N-1", 1)
        other = gone(uow, "s", "N-2", 1)
        uow.commit()
    with uow_factory() as uow:  # an ordinary death (retries spent) is not the disable's doing
        [plain] = [d.id for d in uow.deliveries.page("s", None, None, 100) if d.notice_id == "N-3"]
        uow.deliveries.end_open("s", "retries spent")  # N-1 v2 and N-3 v1 dead without a 410 …
        uow.deliveries.replay([d.id for d in uow.deliveries.page("s", None, None, 100) if d.notice_id == "N-1"
                               and d.version == 2], NOW)  # … and N-1 v2 back to pending
        uow.commit()
    with uow_factory() as uow:
        if catch_up:
            assert uow.deliveries.resume("s", NOW) == [ended, other]
        else:
            assert uow.deliveries.skip_missed("s", "skipped", NOW) == sorted([ended, other, ended + 2])
        uow.commit()
    with uow_factory() as uow:
        statuses = {(d.notice_id, d.version): d.status for d in uow.deliveries.page("s", None, None, 100)}
        if catch_up:
            assert statuses == {("N-1", 1): "pending", ("N-2", 1): "pending", ("N-1", 2): "pending",
                                ("N-3", 1): "dead"}
            assert {d.attempts for d in uow.deliveries.page("s", "pending", None, 100)} == {0}
        else:
            assert statuses == {("N-1", 1): "skipped", ("N-2", 1): "skipped", ("N-1", 2): "skipped",
                                ("N-3", 1): "dead"}
        assert plain not in (ended, other)


def test_the_matching_cursor_starts_at_zero_and_advances(uow_factory: Callable[[], Any]) -> None:
    with uow_factory() as uow:
        assert uow.matching_cursor.position() == 0
        assert uow.matching_cursor.hold(wait=True) == 0
        uow.matching_cursor.advance(7)
        uow.commit()
    with uow_factory() as uow:
        assert uow.matching_cursor.position() == 7 and uow.matching_cursor.hold(wait=False) == 7


def test_a_fan_out_is_written_in_subscription_id_order_once_per_subscription(uow_factory: Callable[[], Any]) -> None:
    sids = [f"s-{n}" for n in (2, 10, 1, 30, 3)] + ["S-9", "가-1"]  # code point order: S-9 < s-1 < ... < 가-1
    with uow_factory() as uow:
        for sid in sids:
            uow.subscriptions.add(subscription(sid))
        assert uow.deliveries.add_deliveries([*sids, *reversed(sids)], "N-1", 1, 1, "original") == len(sids)
        uow.commit()
    with uow_factory() as uow:
        first = {sid: uow.deliveries.page(sid, None, None, 1)[0].id for sid in sids}
        assert sorted(sids, key=first.__getitem__) == sorted(sids)
        assert uow.deliveries.add_deliveries([*sids[:3], "s-new"], "N-1", 1, 1, "original") == 1
