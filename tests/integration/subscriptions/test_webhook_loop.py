"""The dispatcher's event loop: at most ``concurrency`` attempts under way on its one client, the rest
queued for a slot; stopping cancels the queued ones (never sent, so the dispatcher releases them) and
waits for those under way, which end by their deadline. Real loopback sockets."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Awaitable, Callable

import httpx

from hub.subscriptions.config import SyndicationSettings
from hub.subscriptions.sender import Attempt, make_client, send_webhook
from hub.subscriptions.webhook_loop import WebhookLoop
from tests.support.hostile_http import HostileServer, dribble
from tests.support.receiver import Receiver
from tests.support.waiting import eventually

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


def config(**overrides: float) -> SyndicationSettings:
    return SyndicationSettings(allow_private_targets=True, read_timeout_s=5.0, connect_timeout_s=1.0, **overrides)


def to(settings: SyndicationSettings, url: str, msg_id: str) -> Callable[[httpx.AsyncClient], Awaitable[Attempt]]:
    async def send(client: httpx.AsyncClient) -> Attempt:
        return await send_webhook(client, settings, loopback, url, [SECRET], msg_id, b'{"type":"notice.published"}')
    return send


def test_attempts_share_the_slots_and_every_one_is_signed_and_sent() -> None:
    settings = config(dispatch_concurrency=4)
    receiver = Receiver([SECRET])
    loop = WebhookLoop(lambda: make_client(settings), settings.dispatch_concurrency)
    try:
        futures = [loop.submit(to(settings, receiver.url, f"dlv_{i}")) for i in range(40)]
        concurrent.futures.wait(futures, timeout=60)
        assert all(f.result().ok for f in futures)
        assert sorted(r.webhook_id for r in receiver.delivered()) == sorted(f"dlv_{i}" for i in range(40))
    finally:
        loop.close()
        receiver.close()


def test_stopping_cancels_the_queued_attempts_and_waits_for_those_under_way() -> None:
    settings = config(dispatch_concurrency=2, attempt_deadline_s=1.0)
    loop = WebhookLoop(lambda: make_client(settings), settings.dispatch_concurrency)
    with HostileServer(dribble(200, 0.2, headers_too=True)) as slow:
        futures = [loop.submit(to(settings, f"{slow.url}/{i}", f"dlv_{i}")) for i in range(5)]
        eventually(lambda: slow.requests >= 2, what="two attempts under way")
        loop.close(futures, wait_s=10.0)
        assert all(f.done() for f in futures)
        under_way = [f for f in futures if not f.cancelled()]
        assert len(under_way) == 2 and slow.requests == 2  # the queued three were never sent
        assert all(not f.result().ok and "deadline" in (f.result().error or "") for f in under_way)
