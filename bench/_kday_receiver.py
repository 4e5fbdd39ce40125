"""A webhook receiver fast enough not to be what a bench measures: one asyncio process, a hand-written
HTTP/1.1 keep-alive server (no framework between the socket and the count), every signature verified
with the reference ``standardwebhooks`` verifier.

    python bench/_kday_receiver.py --port 9301

Paths a subscription points at carry their own secret and subscription id, told to the receiver
before any delivery (``POST /_control/secrets`` with ``{"<path>": ["whsec_…", "<subscription id or
empty>"]}``): a path with a subscription id is one subscription's endpoint (one notice version per
request); a path without one is a batched endpoint whose body names the subscriptions it carries
(``subscription_ids``). Each request counts once per (subscription, notice, version) it carries; a
``webhook-id`` seen before is counted as a raw duplicate and not again in effect, the same
(subscription, notice, version) under a new ``webhook-id`` as a duplicate in effect.

``GET /_control/summary`` answers the counters, ``GET /_control/results`` also every delivered key with
its first arrival (``time.time()``) and how often it arrived in effect."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from standardwebhooks import Webhook

_OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


class State:
    def __init__(self) -> None:
        self.endpoints: dict[str, tuple[Webhook, str]] = {}
        self.webhook_ids: set[str] = set()
        # (subscription id, notice id, version) -> [first arrival, arrivals in effect]
        self.keys: dict[tuple[str, str, int], list[float]] = {}
        self.requests = 0
        self.raw_duplicates = 0
        self.effect_duplicates = 0
        self.bad_signatures = 0
        self.unknown_paths = 0
        self.unreadable = 0
        self.last_arrival = 0.0

    def summary(self) -> dict[str, Any]:
        return {"requests": self.requests, "keys": len(self.keys), "raw_duplicates": self.raw_duplicates,
                "effect_duplicates": self.effect_duplicates, "bad_signatures": self.bad_signatures,
                "unknown_paths": self.unknown_paths, "unreadable": self.unreadable,
                "last_arrival": self.last_arrival}

    def deliver(self, path: str, headers: dict[str, str], body: bytes) -> int:
        now = time.time()
        self.requests += 1
        endpoint = self.endpoints.get(path)
        if endpoint is None:
            self.unknown_paths += 1
            return 404
        verifier, subscription = endpoint
        try:
            payload = verifier.verify(body, headers)
        except Exception:  # any verification failure is the sender's fault, counted and refused
            self.bad_signatures += 1
            return 401
        webhook_id = headers.get("webhook-id", "")
        if webhook_id in self.webhook_ids:
            self.raw_duplicates += 1
            return 200
        self.webhook_ids.add(webhook_id)
        try:
            data = payload["data"]
            notice, version = str(data["notice_id"]), int(data["version"])
            ids = [subscription] if subscription else [str(s) for s in _subscription_ids(payload)]
        except (KeyError, TypeError, ValueError):
            self.unreadable += 1
            return 200
        for sid in ids:
            entry = self.keys.get((sid, notice, version))
            if entry is None:
                self.keys[(sid, notice, version)] = [now, 1.0]
            else:
                entry[1] += 1
                self.effect_duplicates += 1
        self.last_arrival = now
        return 200


def _subscription_ids(payload: dict[str, Any]) -> list[Any]:
    """A batched body's subscription ids, wherever the envelope puts them."""
    data = payload.get("data") or {}
    found = data.get("subscription_ids", payload.get("subscription_ids"))
    if not isinstance(found, list):
        raise ValueError("no subscription_ids")
    return found


class HttpProtocol(asyncio.Protocol):
    def __init__(self, state: State) -> None:
        self.state = state
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            method, path, *_ = head[0].split(" ")
            assert self.transport is not None
            self.transport.write(self.respond(method, path, headers, body))

    def respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        if not path.startswith("/_control/"):
            status = self.state.deliver(path, headers, body)
            return _OK if status == 200 else f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode()
        answer: Any = None
        if method == "POST" and path == "/_control/secrets":
            for endpoint, (secret, subscription) in json.loads(body).items():
                self.state.endpoints[endpoint] = (Webhook(secret), subscription)
            answer = {"endpoints": len(self.state.endpoints)}
        elif path == "/_control/summary":
            answer = self.state.summary()
        elif path == "/_control/results":
            answer = {**self.state.summary(),
                      "keys_list": [[s, n, v, t, int(c)] for (s, n, v), (t, c) in self.state.keys.items()]}
        encoded = json.dumps(answer).encode()
        return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(encoded)).encode() + b"\r\n\r\n" + encoded)


async def serve(host: str, port: int) -> None:
    state = State()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpProtocol(state), host, port, backlog=1024)
    print(f"receiver listening on {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
