"""Hostile webhook receivers cannot stall delivery or fill the delivery log: with the dispatcher's
whole pool busy on receivers that dribble their replies a byte at a time, a healthy subscriber still
gets its notice once their attempts reach the deadline; a 500 with a 50 MiB body leaves a short
excerpt in the log. Real loopback sockets, on both backends."""

from __future__ import annotations

from collections.abc import Callable

from hub.subscriptions.sender import EXCERPT_CHARS
from tests.support.hostile_http import HostileServer, dribble, huge_body
from tests.support.subscriptions import API, Env, new_notice_id
from tests.support.waiting import eventually


def subscribe(env: Env, url: str) -> str:
    response = env.client.post(f"{API}/subscriptions", headers=env.auth, json={
        "name": "hostile", "filter": {}, "channel": {"type": "webhook", "url": url}})
    assert response.status_code == 201, response.text
    return str(response.json()["subscription"]["id"])


def test_a_full_pool_of_slow_receivers_does_not_stall_a_healthy_one(make_env: Callable[..., Env]) -> None:
    env = make_env(attempt_deadline_s=1.0, dispatch_concurrency=16)
    with HostileServer(dribble(500, 0.2, headers_too=True)) as slow:
        hostile = [subscribe(env, f"{slow.url}/slow/{i}") for i in range(16)]
        healthy = env.receiver()
        env.subscribe_webhook(healthy)
        env.publisher.publish(new_notice_id(), 1)
        eventually(lambda: slow.requests >= 16, what="every slow receiver holding an attempt")
        notice = new_notice_id()  # published while the dispatcher's whole pool waits on slow receivers
        env.publisher.publish(notice, 1)
        eventually(lambda: (notice, 1) in healthy.versions(), what="the healthy subscriber got the later notice")
        failed = eventually(lambda: [d for sid in hostile for d in env.deliveries(sid) if d["attempts"] >= 1],
                            what="attempts to the slow receivers recorded")
        assert all(d["status"] in ("failed", "pending") and "deadline" in (d["last_error"] or "") for d in failed)


def test_a_huge_error_reply_leaves_a_short_excerpt_in_the_delivery_log(make_env: Callable[..., Env]) -> None:
    env = make_env(attempt_deadline_s=10.0)
    with HostileServer(huge_body(500, 50 * 1024 * 1024)) as server:
        sid = subscribe(env, f"{server.url}/hook")
        env.publisher.publish(new_notice_id(), 1)
        row = eventually(lambda: [d for d in env.deliveries(sid) if d["attempts"] >= 1],
                         what="the failed attempt recorded")[0]
    assert row["last_status_code"] == 500
    error = row["last_error"]
    assert error.startswith("HTTP 500: ") and len(error) <= len("HTTP 500: ") + EXCERPT_CHARS
    assert error.isprintable()
