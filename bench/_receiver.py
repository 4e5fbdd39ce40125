"""A webhook receiver for benches, fast enough not to be what is measured: one asyncio process of its
own, a minimal HTTP/1.1 keep-alive server that answers every ``POST`` ``200`` at once and verifies each
signed request with the reference ``standardwebhooks`` verifier. Arrival times are ``time.monotonic()``
(one clock for every process of the machine), so a bench can compare them with its own.

    python -m bench._receiver SECRET     # prints the port on the first line of stdout

``GET /stats`` answers the counts; ``GET /records`` every signed request as ``[webhook-id, notice id,
version, arrival, verified]``; ``GET /reset`` forgets them."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from standardwebhooks import Webhook

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


class State:
    def __init__(self, secret: str) -> None:
        self.webhook = Webhook(secret)
        self.reset()

    def reset(self) -> None:
        self.signed: list[tuple[str, bytes, float, bool]] = []
        self.unsigned = 0

    def stats(self) -> dict[str, int]:
        verified = sum(1 for *_, ok in self.signed if ok)
        return {"verified": verified, "unverified": len(self.signed) - verified, "unsigned": self.unsigned,
                "distinct": len({r[0] for r in self.signed if r[3]})}

    def records(self) -> list[list[Any]]:
        out = []
        for webhook_id, body, at, ok in self.signed:
            data = json.loads(body).get("data", {})
            out.append([webhook_id, data.get("notice_id"), data.get("version"), at, ok])
        return out


class Http(asyncio.Protocol):
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
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            self.handle(head[0].split(" "), headers, body)

    def handle(self, request_line: list[str], headers: dict[str, str], body: bytes) -> None:
        assert self.transport is not None
        method, path = request_line[0], request_line[1]
        if method == "GET":
            if path == "/reset":
                self.state.reset()
            answer = self.state.records() if path == "/records" else self.state.stats()
            payload = json.dumps(answer).encode()
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                                 + str(len(payload)).encode() + b"\r\n\r\n" + payload)
            return
        at = time.monotonic()
        if "webhook-signature" in headers:
            try:
                self.state.webhook.verify(body, headers)
                ok = True
            except Exception:  # the reference verifier raises on any mismatch
                ok = False
            self.state.signed.append((headers.get("webhook-id", ""), body, at, ok))
        else:
            self.state.unsigned += 1
        self.transport.write(OK)


async def serve(secret: str) -> None:
    state = State(secret)
    server = await asyncio.get_running_loop().create_server(lambda: Http(state), "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
