"""A slow webhook receiver does not slow a healthy subscriber: while a receiver dribbles its reply a
byte at a time (each attempt runs into ``attempt_deadline_s``), the dispatcher records outcomes as
attempts complete and keeps claiming, so every delivery to the healthy subscriber is made before the
slow subscriber's first attempt has finished — and the slow one holds at most
``subscription_concurrency`` attempts meanwhile. Ordering of events, not timings; real loopback
sockets, on both backends."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.hostile_http import HostileServer, dribble
from tests.support.subscriptions import API, Env, new_notice_id
from tests.support.waiting import eventually

NOTICES = 20


def subscribe(env: Env, url: str) -> str:
    response = env.client.post(f"{API}/subscriptions", headers=env.auth, json={
        "name": "slow", "filter": {}, "channel": {"type": "webhook", "url": url}})
    assert response.status_code == 201, response.text
    return str(response.json()["subscription"]["id"])


def first_attempts_finished(env: Env, subscription_id: str) -> int:
    return sum(1 for row in env.rows(subscription_id) if row.attempts >= 1)


def test_a_healthy_subscriber_is_served_while_a_slow_one_holds_its_attempts(make_env: Callable[..., Env]) -> None:
    env = make_env(attempt_deadline_s=20.0, dispatch_concurrency=4, subscription_concurrency=2)
    with HostileServer(dribble(200, 0.2, headers_too=True)) as slow:
        slow_id = subscribe(env, f"{slow.url}/hook")
        env.publisher.publish(new_notice_id(), 1)
        eventually(lambda: slow.requests >= 1, what="the slow receiver holding an attempt")
        healthy = env.receiver()
        env.subscribe_webhook(healthy)
        notices = [new_notice_id() for _ in range(NOTICES)]
        for notice in notices:
            env.publisher.publish(notice, 1)
        eventually(lambda: len(healthy.delivered()) == NOTICES, timeout=60,
                   what="the healthy subscriber's deliveries")
        assert first_attempts_finished(env, slow_id) == 0  # still on its first attempts
        assert 1 <= slow.requests <= 2  # the per-subscription cap, though it is owed every notice
    assert sorted(healthy.versions()) == sorted((n, 1) for n in notices)


def test_versions_of_a_notice_wait_for_the_one_in_flight(make_env: Callable[..., Env]) -> None:
    """Version 2 is not claimed while version 1 is in flight to (or owed again by) the same
    subscriber, however many slots are free."""
    env = make_env(attempt_deadline_s=2.0, dispatch_concurrency=8, subscription_concurrency=8)
    with HostileServer(dribble(200, 0.2, headers_too=True)) as slow:
        slow_id = subscribe(env, f"{slow.url}/hook")
        notice = new_notice_id()
        env.publisher.publish(notice, 1)
        eventually(lambda: slow.requests >= 1, what="version 1 in flight")
        env.publisher.publish(notice, 2, kind="amendment")
        eventually(lambda: len(env.rows(slow_id)) == 2, what="version 2 matched")
        eventually(lambda: first_attempts_finished(env, slow_id) >= 1, timeout=15,
                   what="version 1's attempt over")
        rows = {row.version: row for row in env.rows(slow_id)}
        assert rows[1].status in ("pending", "failed")  # the dribbled reply ran into the deadline
        assert rows[2].attempts == 0 and rows[2].lease_owner is None  # never claimed meanwhile
