"""Re-enabling a disabled subscription, on both backends: what was published while it was disabled is
matched all along and, by default, delivered in order once it is back (the versions a 410 ended
included); ``catch_up: false`` skips it ("from now"), visibly. A batch of 410s disables — and audits —
once."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from hub.spine.tables import AuditRow
from tests.support.receiver import Answer
from tests.support.subscriptions import API, Env, new_notice_id
from tests.support.waiting import eventually


def status(env: Env, sid: str) -> str:
    return str(env.client.get(f"{API}/subscriptions/{sid}", headers=env.auth).json()["status"])


def patch(env: Env, sid: str, **body: object) -> None:
    response = env.client.patch(f"{API}/subscriptions/{sid}", headers=env.auth, json=body)
    assert response.status_code == 200, response.text


def audited(env: Env, sid: str) -> list[tuple[str, dict[str, object]]]:
    with env.hub.session_factory() as session:
        rows = session.scalars(select(AuditRow).where(AuditRow.event_type == "SubscriptionChanged")
                               .order_by(AuditRow.id))
        return [(r.data["change"], r.data["details"]) for r in rows if r.data["subscription_id"] == sid]


def publish_while_disabled(env: Env, notices: list[str]) -> None:
    for notice in notices:
        env.publisher.publish(notice, 1)
    for notice in notices[:2]:
        env.publisher.publish(notice, 2, kind="amendment")
    env.publisher.publish(notices[0], 3, kind="cancellation")


def test_a_batch_of_410s_disables_once_and_re_enabling_catches_up_in_order(make_env: Callable[..., Env]) -> None:
    env = make_env()
    receiver, witness = env.receiver(), env.receiver()
    sid = env.subscribe_webhook(receiver)
    env.subscribe_webhook(witness)
    patch(env, sid, status="disabled")  # the owner pauses it: matching goes on, nothing is sent
    notices = [new_notice_id() for _ in range(4)]
    publish_while_disabled(env, notices)
    eventually(lambda: len(witness.delivered()) == 7, timeout=60, what="the witness got every version")
    assert receiver.received == []
    assert len(env.deliveries(sid, "pending")) == 7

    receiver.default = Answer(410)  # back on, but the endpoint is gone: every first version dies at once
    patch(env, sid, status="active")
    eventually(lambda: status(env, sid) == "disabled", timeout=60, what="disabled by the 410s")
    gone = eventually(lambda: env.deliveries(sid, "dead"), timeout=60, what="the deliveries the 410s ended")
    assert {d["last_status_code"] for d in gone} == {410}
    eventually(lambda: [c for c, _ in audited(env, sid)].count("disabled") == 1, timeout=60, what="one audit event")
    # One request per claimable first version, never a retry after a 410. Two may be in flight at once
    # (syndication.subscription_concurrency): the one answered after the disable is not marked dead but
    # waits, and is caught up with the rest.
    ids = [r.webhook_id for r in receiver.received]
    assert len(ids) == len(set(ids)) >= len(gone) >= 1

    receiver.default = Answer(200)
    patch(env, sid, status="active")  # catch_up is the default
    eventually(lambda: len(receiver.delivered()) == 7, timeout=60, what="everything, after the return")
    got = receiver.versions()
    expected = {notices[0]: [1, 2, 3], notices[1]: [1, 2]}
    for notice in notices:
        assert [v for n, v in got if n == notice] == expected.get(notice, [1])
    assert {d["status"] for d in env.deliveries(sid)} == {"delivered"}
    changes = [c for c, _ in audited(env, sid)]
    assert changes.count("disabled") == 1
    assert audited(env, sid)[-1] == ("updated", {"reactivated": True, "catch_up": True, "resumed": len(gone)})


def test_re_enabling_from_now_skips_what_was_missed(make_env: Callable[..., Env]) -> None:
    env = make_env()
    receiver = env.receiver()
    sid = env.subscribe_webhook(receiver)
    patch(env, sid, status="disabled")
    missed = [new_notice_id() for _ in range(3)]
    publish_while_disabled(env, missed)
    eventually(lambda: len(env.deliveries(sid, "pending")) == 6, timeout=60, what="matched while disabled")
    patch(env, sid, reactivate=True, catch_up=False)
    assert {d["status"] for d in env.deliveries(sid)} == {"skipped"}
    assert all(d["last_error"].startswith("skipped") for d in env.deliveries(sid, "skipped"))
    fresh = new_notice_id()
    env.publisher.publish(fresh, 1)
    env.publisher.publish(missed[2], 2, kind="amendment")  # a missed notice's next version is news again
    eventually(lambda: len(receiver.delivered()) == 2, timeout=60, what="what was published after the re-enable")
    assert sorted(receiver.versions()) == sorted([(fresh, 1), (missed[2], 2)])  # two notices: any order
    assert audited(env, sid)[-1] == ("updated", {"reactivated": True, "catch_up": False, "skipped": 6})
