"""Webhook delivery over real loopback HTTP on both backends: every request is verified with the
reference ``standardwebhooks`` verifier by the receiver. Notice versions are raised as the notices
flow raises them (content stored, then ``NoticeVersionPublished`` committed to the outbox)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from hub.spine.tables import AuditRow
from tests.support.receiver import Answer
from tests.support.subscriptions import API, Env, new_notice_id
from tests.support.waiting import eventually

ROADS_IN_SEOUL = {"classifications": ["CPV:4523"], "regions": ["KR-11"]}


def test_publish_amend_cancel_reach_the_subscriber_in_order(make_env: Callable[..., Env]) -> None:
    env = make_env()
    receiver = env.receiver()
    sid = env.subscribe_webhook(receiver, ROADS_IN_SEOUL)
    notice, elsewhere = new_notice_id(), new_notice_id()
    env.publisher.publish(elsewhere, 1, delivery_region="KR-26")  # not selected
    env.publisher.publish(notice, 1)
    env.publisher.publish(notice, 2, kind="amendment", delivery_region="KR-26")  # moved out: still told
    env.publisher.publish(notice, 3, kind="cancellation", delivery_region="KR-26")
    eventually(lambda: len(receiver.delivered()) >= 3, what="three versions")
    assert receiver.versions() == [(notice, 1), (notice, 2), (notice, 3)]
    assert [r.body["type"] for r in receiver.delivered()] == ["notice.published", "notice.amended",
                                                              "notice.cancelled"]
    assert receiver.unverified == 0
    # The receiver has the bodies before the dispatcher records the outcomes: wait for all three rows.
    def delivered_rows() -> list[dict[str, Any]] | None:
        rows = [d for d in env.deliveries(sid) if d["status"] == "delivered"]
        return rows if len(rows) >= 3 else None

    log = eventually(delivered_rows, what="three delivered rows")
    assert [(d["notice_id"], d["version"]) for d in log] == [(notice, 1), (notice, 2), (notice, 3)]
    assert {d["webhook_id"] for d in log} == {r.webhook_id for r in receiver.delivered()}


def test_500_is_retried_and_410_disables(make_env: Callable[..., Env]) -> None:
    env = make_env()
    flaky, healthy = env.receiver(), env.receiver()
    flaky.answer(Answer(500), Answer(502))
    sid = env.subscribe_webhook(flaky)
    witness = env.subscribe_webhook(healthy)
    first = new_notice_id()
    env.publisher.publish(first, 1)
    eventually(lambda: flaky.delivered(), what="delivery after two 5xx")
    row = eventually(lambda: [d for d in env.deliveries(sid) if d["status"] == "delivered"])[0]
    assert row["attempts"] == 3 and row["last_status_code"] == 200
    assert len(flaky.received) == 3 and len({r.webhook_id for r in flaky.received}) == 1

    flaky.default = Answer(410)
    env.publisher.publish(new_notice_id(), 1)
    eventually(lambda: env.client.get(f"{API}/subscriptions/{sid}", headers=env.auth).json()["status"] == "disabled")
    gone_requests = len(flaky.received)
    later = new_notice_id()
    env.publisher.publish(later, 1)
    eventually(lambda: (later, 1) in healthy.versions(), what="the witness got the later notice")
    assert len(flaky.received) == gone_requests  # nothing more was sent to the disabled endpoint
    # … but it was matched: the delivery waits for a re-enable to catch up
    assert [d["status"] for d in env.deliveries(sid) if d["notice_id"] == later] == ["pending"]
    eventually(lambda: [d["status"] for d in env.deliveries(witness)] == ["delivered"] * 3,
               what="the witness's three deliveries recorded")

    def audited() -> list[tuple[str, str]]:
        with env.hub.session_factory() as session:
            rows = session.scalars(select(AuditRow).where(AuditRow.event_type == "SubscriptionChanged")
                                   .order_by(AuditRow.id))
            return [(r.data["subscription_id"], r.data["change"]) for r in rows]

    # the audit trail has both subscriptions' creation and the disable the 410 caused
    eventually(lambda: (sid, "disabled") in audited(), what="the disable in the audit trail")
    assert audited() == [(sid, "created"), (witness, "created"), (sid, "disabled")]


def test_slow_receiver_times_out_and_is_retried(make_env: Callable[..., Env]) -> None:
    # The attempt outlives the compressed 0.25 s lease: a lease of 3 s (renewed every 0.6 s) keeps a late
    # renewal on a loaded machine from handing the delivery to a second claim, which would send it twice
    # and count one attempt.
    env = make_env(read_timeout_s=0.5, lease_s=15_000, lease_renew_s=3_000)
    receiver = env.receiver()
    receiver.answer(Answer(200, delay_s=1.5))
    sid = env.subscribe_webhook(receiver)
    env.publisher.publish(new_notice_id(), 1)
    row = eventually(lambda: [d for d in env.deliveries(sid) if d["status"] == "delivered"])[0]
    assert row["attempts"] == 2
    eventually(lambda: len(receiver.received) == 2, what="the slow request finishing too")
    assert receiver.received[0].webhook_id == receiver.received[1].webhook_id


def test_retry_after_is_honoured(make_env: Callable[..., Env]) -> None:
    env = make_env(max_retry_after_s=2.0)
    receiver = env.receiver()
    receiver.answer(Answer(503, headers={"Retry-After": "2"}))
    sid = env.subscribe_webhook(receiver)
    env.publisher.publish(new_notice_id(), 1)
    failed = eventually(lambda: [r for r in env.rows(sid) if r.status == "failed"], timeout=10)[0]
    assert (failed.next_attempt_at - failed.updated_at).total_seconds() >= 1.9  # not the 1 ms schedule
    eventually(lambda: receiver.delivered(), what="delivery after Retry-After")


def test_secret_rotation_misses_no_delivery(make_env: Callable[..., Env]) -> None:
    env = make_env()
    receiver = env.receiver()
    sid = env.subscribe_webhook(receiver)  # receiver.secrets == [old]
    env.publisher.publish(new_notice_id(), 1)
    eventually(lambda: len(receiver.delivered()) == 1)
    rotated = env.client.post(f"{API}/subscriptions/{sid}/secret/rotate", headers=env.auth)
    assert rotated.status_code == 200, rotated.text
    env.publisher.publish(new_notice_id(), 1)  # the receiver has not switched yet
    eventually(lambda: len(receiver.delivered()) == 2)
    receiver.secrets.append(rotated.json()["secret"])
    env.publisher.publish(new_notice_id(), 1)
    eventually(lambda: len(receiver.delivered()) == 3)
    receiver.secrets[0] = "whsec_" + "A" * 44  # the old secret is forgotten: the new one alone verifies
    env.publisher.publish(new_notice_id(), 1)
    eventually(lambda: len(receiver.delivered()) == 4)
    assert [r.verified_with for r in receiver.delivered()] == [[0], [0], [0, 1], [1]]
    assert receiver.unverified == 0


def test_a_receiver_down_for_a_while_gets_everything_in_order(make_env: Callable[..., Env]) -> None:
    env = make_env()
    receiver = env.receiver()
    receiver.default = Answer(503)
    sid = env.subscribe_webhook(receiver)
    notices = [new_notice_id() for _ in range(4)]
    for notice in notices:
        env.publisher.publish(notice, 1)
    for notice in notices:
        env.publisher.publish(notice, 2, kind="amendment")
    eventually(lambda: all(r.attempts >= 2 for r in env.rows(sid) if r.version == 1), what="retries while down")
    assert all(r.attempts == 0 for r in env.rows(sid) if r.version == 2)  # v2 waits behind v1
    receiver.default = Answer(200)
    eventually(lambda: len(receiver.delivered()) == 8, timeout=30, what="everything after the return")
    got = receiver.versions()
    for notice in notices:
        assert [v for n, v in got if n == notice] == [1, 2]


def test_dead_deliveries_are_listed_and_replayed(make_env: Callable[..., Env]) -> None:
    env = make_env(retry_schedule_s=[0, 1, 1])
    receiver = env.receiver()
    receiver.default = Answer(500)
    sid = env.subscribe_webhook(receiver)
    env.publisher.publish(new_notice_id(), 1)
    dead = eventually(lambda: env.deliveries(sid, "dead"), what="a dead delivery")
    assert dead[0]["attempts"] == 3 and dead[0]["last_status_code"] == 500
    receiver.default = Answer(200)
    replay = env.client.post(f"{API}/subscriptions/{sid}/deliveries/replay", headers=env.auth, json={})
    assert replay.json()["replayed"] == [dead[0]["id"]]
    eventually(lambda: env.deliveries(sid, "delivered"))
    assert env.deliveries(sid, "dead") == []


def test_a_named_target_is_sent_to_the_address_that_was_checked(make_env: Callable[..., Env]) -> None:
    """``localhost`` is resolved and checked once per send, then the request goes to that address (no
    second DNS answer can redirect it) while the Host header keeps the name the subscriber gave."""
    env = make_env()
    receiver = env.receiver()
    port = receiver.url.split(":")[2].split("/")[0]
    response = env.client.post(f"{API}/subscriptions", headers=env.auth, json={
        "name": "named", "filter": {}, "channel": {"type": "webhook", "url": f"http://localhost:{port}/hook"}})
    assert response.status_code == 201, response.text
    receiver.secrets.append(response.json()["secret"])
    env.publisher.publish(new_notice_id(), 1)
    [delivery] = eventually(lambda: receiver.delivered(), what="a delivery to the named target")
    assert delivery.host == f"localhost:{port}" and delivery.verified_with == [0]
