"""A webhook attempt is bounded whatever the receiver does: a total deadline (slow headers, a body
dribbled a byte at a time) and at most ``max_reply_bytes`` of the reply read, of which the delivery
log keeps a short printable excerpt. Against real loopback sockets; memory is counted with
``tracemalloc`` (bytes the interpreter allocated), not measured as RSS."""

from __future__ import annotations

import asyncio
import threading
import tracemalloc
from typing import Any

import pytest

from hub.subscriptions.config import SyndicationSettings
from hub.subscriptions.sender import EXCERPT_CHARS, Attempt, make_client, reply_excerpt, send_webhook
from tests.support.hostile_http import HostileServer, dribble, huge_body

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


def settings(**overrides: Any) -> SyndicationSettings:
    return SyndicationSettings(allow_private_targets=True, read_timeout_s=5.0, connect_timeout_s=1.0, **overrides)


def attempts_within(config: SyndicationSettings, urls: list[str], seconds: float) -> list[Attempt]:
    """The outcomes of attempts to ``urls``, made at once on one client and event loop as the dispatcher
    makes them, failing the test unless all end within ``seconds`` (the loop's thread is left behind
    rather than waited for: an unbounded attempt would hang the suite)."""
    outcome: list[Attempt] = []

    async def run() -> None:
        async with make_client(config) as client:
            outcome.extend(await asyncio.gather(*(
                send_webhook(client, config, loopback, url, [SECRET], "dlv_1", b'{"type":"notice.published"}')
                for url in urls)))

    worker = threading.Thread(target=lambda: asyncio.run(run()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert len(outcome) == len(urls), f"the attempts were still running after {seconds} s"
    return outcome


def attempt_within(config: SyndicationSettings, url: str, seconds: float) -> Attempt:
    return attempts_within(config, [url + "/hook"], seconds)[0]


def test_a_huge_error_reply_is_read_up_to_the_cap_and_only_an_excerpt_is_kept() -> None:
    total = 50 * 1024 * 1024
    config = settings(attempt_deadline_s=10.0, max_reply_bytes=4096)
    with HostileServer(huge_body(500, total)) as server:
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            attempt = attempt_within(config, server.url, 20.0)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert not attempt.ok and attempt.status_code == 500
    # The reply is cut off, not drained: far less than the body was held (a socket read is 64 KiB).
    assert peak < 2 * 1024 * 1024, f"{peak} bytes allocated at the peak"
    assert server.sent < total
    assert attempt.error is not None and attempt.error.startswith("HTTP 500: ")
    excerpt = attempt.error.removeprefix("HTTP 500: ")
    assert 0 < len(excerpt) <= EXCERPT_CHARS
    assert excerpt.isprintable() and "\x00" not in excerpt and "\x1b" not in excerpt


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_a_reply_dribbled_a_byte_at_a_time_ends_at_the_deadline(headers_too: bool) -> None:
    config = settings(attempt_deadline_s=1.0)
    with HostileServer(dribble(500, 0.1, headers_too=headers_too)) as server:
        attempt = attempt_within(config, server.url, 6.0)
    assert not attempt.ok
    if headers_too:  # no status ever arrived: a failed attempt, retried on schedule
        assert attempt.status_code is None and attempt.error is not None and "deadline" in attempt.error
    else:  # the status arrived; the body read stops at the deadline with what came
        assert attempt.status_code == 500
        assert attempt.error is not None and attempt.error.startswith("HTTP 500")


def test_a_slow_accepting_receiver_is_still_a_success_and_its_body_is_not_waited_for() -> None:
    config = settings(attempt_deadline_s=1.0)
    with HostileServer(dribble(200, 0.1)) as server:
        attempt = attempt_within(config, server.url, 6.0)
    assert attempt.ok and attempt.status_code == 200


def test_sixteen_slow_receivers_do_not_hold_the_others_past_the_deadline() -> None:
    config = settings(attempt_deadline_s=1.0, dispatch_concurrency=16)
    with HostileServer(dribble(500, 0.2, headers_too=True)) as slow:
        results = attempts_within(config, [slow.url + f"/{i}" for i in range(16)], 6.0)
    assert all(not r.ok and r.error is not None and "deadline" in r.error for r in results)


@pytest.mark.parametrize(("raw", "expected"), [
    (b"plain text", "plain text"),
    (b"line\r\nbreak\tand\x00nul \x1b[31mred", "line break and?nul ?[31mred"),
    (b"\xff\xfe bad utf-8", "?? bad utf-8"),
    ("한국어 그대로".encode(), "한국어 그대로"),
])
def test_the_excerpt_is_printable(raw: bytes, expected: str) -> None:
    assert reply_excerpt(raw) == expected


def test_the_excerpt_is_truncated() -> None:
    excerpt = reply_excerpt(b"x" * 10_000)
    assert len(excerpt) == EXCERPT_CHARS and excerpt.endswith("…")
