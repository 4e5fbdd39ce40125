"""``g2bhub sandbox receiver`` over real loopback HTTP: a real delivery from the hub's worker is verified
and printed as one line; a request that does not verify is printed as rejected and answered 401.
Loopback targets are accepted only with ``syndication.allow_loopback_targets`` (the demo's setting)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from hub.cli.webhook_receiver import WebhookReceiver
from hub.subscriptions.signing import new_secret, webhook_headers
from tests.support.subscriptions import API, Env, new_notice_id
from tests.support.waiting import eventually


class Printed:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)

    def starting(self, prefix: str) -> list[str]:
        with self.lock:
            return [line for line in self.lines if line.startswith(prefix)]


@pytest.fixture
def start_receiver() -> Iterator[Callable[[str], tuple[WebhookReceiver, Printed]]]:
    started: list[WebhookReceiver] = []

    def start(secret: str) -> tuple[WebhookReceiver, Printed]:
        printed = Printed()
        receiver = WebhookReceiver(secret, port=0, out=printed)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        started.append(receiver)
        return receiver, printed

    yield start
    for receiver in started:
        receiver.close()


def subscribe(env: Env, url: str) -> httpx.Response:
    return env.client.post(f"{API}/subscriptions", headers=env.auth, json={
        "name": "demo receiver", "channel": {"type": "webhook", "url": url}})  # type: ignore[return-value]


def test_a_real_delivery_is_verified_and_printed(make_env: Callable[..., Env],
                                                 start_receiver: Callable[[str], tuple[WebhookReceiver, Printed]]
                                                 ) -> None:
    env = make_env(allow_private_targets=False, allow_loopback_targets=True)
    # The secret exists only once the subscription does: point it at the port first, then listen there.
    placeholder = WebhookReceiver(new_secret(), port=0)
    port = placeholder.server.server_address[1]
    placeholder.close()
    created = subscribe(env, f"http://127.0.0.1:{port}/")
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    receiver = WebhookReceiver(secret, port=port, out=(printed := Printed()))
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        notice = new_notice_id()
        env.publisher.publish(notice, 1)
        lines = eventually(lambda: printed.starting("verified"), what="the verified delivery printed")
        assert lines[0].startswith(f"verified  notice.published  notice {notice}  v1  webhook-id dlv_"), lines
        assert printed.starting("rejected") == []
        sid = created.json()["subscription"]["id"]
        eventually(lambda: [d["status"] for d in env.deliveries(sid)] == ["delivered"], what="recorded delivered")
        webhook_id = env.deliveries(sid)[0]["webhook_id"]
        assert lines[0].endswith(f"webhook-id {webhook_id}")
    finally:
        receiver.close()


def test_a_bad_signature_is_printed_as_rejected_and_answered_401(
        start_receiver: Callable[[str], tuple[WebhookReceiver, Printed]]) -> None:
    receiver, printed = start_receiver(new_secret())
    body = b'{"type":"notice.published","data":{"notice_id":"N-1","version":1}}'
    signed_elsewhere = webhook_headers([new_secret()], "dlv_7", int(time.time()), body)
    answer = httpx.post(receiver.url, content=body, headers=signed_elsewhere, timeout=5)
    assert answer.status_code == 401
    assert printed.starting("rejected") == ["rejected  No matching signature found  webhook-id dlv_7"]
    assert printed.starting("verified") == []
    unsigned = httpx.post(receiver.url, content=body, headers={"content-type": "application/json"}, timeout=5)
    assert unsigned.status_code == 401
    assert len(printed.starting("rejected")) == 2


def test_the_same_delivery_twice_is_answered_2xx_and_marked_as_a_repeat(
        start_receiver: Callable[[str], tuple[WebhookReceiver, Printed]]) -> None:
    secret = new_secret()
    receiver, printed = start_receiver(secret)
    body = b'{"type":"notice.amended","data":{"notice_id":"N-2","version":3}}'
    headers = webhook_headers([secret], "dlv_9", int(time.time()), body)
    answers = [httpx.post(receiver.url, content=body, headers=headers, timeout=5).status_code for _ in range(2)]
    assert answers == [204, 204]
    assert printed.starting("verified") == ["verified  notice.amended  notice N-2  v3  webhook-id dlv_9",
                                            "verified  notice.amended  notice N-2  v3  webhook-id dlv_9  (repeat)"]


def test_a_loopback_target_is_refused_by_default(make_env: Callable[..., Env]) -> None:
    env = make_env(allow_private_targets=False)
    refused = subscribe(env, "http://127.0.0.1:8901/")
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "channel.url"
