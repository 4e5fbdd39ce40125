"""An upstream reply is capped as it streams in, both as sent and once decoded: a gzip bomb (a small
body that inflates to 200 MiB) is refused as oversize having cost the cap, not its inflated size.
Against a real loopback socket; memory is counted with ``tracemalloc`` (bytes the interpreter
allocated), not measured as RSS."""

from __future__ import annotations

import gzip
import json
import socket
import tracemalloc
import zlib
from typing import Any

import httpx
import pytest

from connectors.config import ConnectorsConfig
from connectors.errors import PermanentUpstreamError
from connectors.registry import ConnectorRegistry, build_connectors
from connectors.rest import send_capped
from tests.support.connectors import InMemoryCallRecorder, Reply, ScriptedServer
from tests.support.hostile_http import HostileServer, gzip_bomb

CAP = 1024 * 1024
INFLATED = 200 * 1024 * 1024


def build(endpoint: str, **system: Any) -> ConnectorRegistry:
    entry = {"kind": "rest", "endpoint": endpoint, "path": "/things/{identifier}", "max_response_bytes": CAP,
             "retry": {"max_attempts": 1}, **system}
    config = ConnectorsConfig(systems={"demo": entry})
    return build_connectors(config, recorder=InMemoryCallRecorder(), sleep=lambda _: None)


def test_a_gzip_bomb_is_refused_as_oversize_having_held_no_more_than_the_cap() -> None:
    with HostileServer(gzip_bomb(200, INFLATED)) as server:
        registry = build(server.url)
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            with pytest.raises(PermanentUpstreamError) as caught:
                registry["demo"].fetch("ABC123", purpose="test", requested_by="org-1")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            registry.close()
    assert caught.value.code == "response_too_large"
    assert server.sent < CAP  # small on the wire: only the decoded cap could catch it
    # The cap, the body so far and one network read — never the inflated 200 MiB (nor one read's 64 MiB).
    assert peak < 8 * CAP, f"{peak} bytes allocated at the peak"


def test_the_decoded_cap_holds_for_a_direct_send() -> None:
    with (HostileServer(gzip_bomb(200, 16 * CAP)) as server, httpx.Client() as client,
          pytest.raises(PermanentUpstreamError) as caught):
        send_capped(client, "demo", client.build_request("GET", server.url + "/x"), CAP)
    assert caught.value.code == "response_too_large" and "decoded" in caught.value.detail


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
def test_compressed_replies_within_the_cap_are_decoded(encoding: str) -> None:
    document = {"id": "ABC123", "name": "주식회사 가나다", "padding": "x" * 50_000}
    raw = json.dumps(document, ensure_ascii=False).encode()
    if encoding == "gzip":
        body = gzip.compress(raw)
    elif encoding == "deflate":
        body = zlib.compress(raw)
    else:
        squeeze = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body = squeeze.compress(raw) + squeeze.flush()
    header = "gzip" if encoding == "gzip" else "deflate"
    with ScriptedServer([Reply(200, body, headers={"Content-Encoding": header})]) as server:
        registry = build(server.url)
        result = registry["demo"].fetch("ABC123", purpose="test", requested_by="org-1")
        registry.close()
    assert json.loads(result.raw) == document


def undeclared_noise(server: HostileServer, conn: socket.socket) -> None:
    """2 MiB that does not compress, with no content-length: the end is the connection's."""
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n")
    for _ in range(32):
        conn.sendall(bytes(range(256)) * 256)
        server.count(65536)


def test_a_reply_of_undeclared_length_is_cut_off_at_the_cap() -> None:
    with HostileServer(undeclared_noise) as server:
        registry = build(server.url)
        with pytest.raises(PermanentUpstreamError) as caught:
            registry["demo"].fetch("ABC123", purpose="test", requested_by="org-1")
        registry.close()
    assert caught.value.code == "response_too_large"


def test_an_encoding_the_hub_cannot_decode_is_refused() -> None:
    with ScriptedServer([Reply(200, b"\x00\x01", headers={"Content-Encoding": "br"})]) as server:
        registry = build(server.url)
        with pytest.raises(PermanentUpstreamError) as caught:
            registry["demo"].fetch("ABC123", purpose="test", requested_by="org-1")
        registry.close()
    assert caught.value.code == "unsupported_encoding"


def test_a_gzip_bomb_from_a_soap_upstream_is_refused_the_same_way() -> None:
    from tests.support.connectors import build_vies

    with HostileServer(gzip_bomb(200, INFLATED, content_type="text/xml; charset=utf-8")) as server:
        registry = build_vies(server.url, max_response_bytes=CAP, retry={"max_attempts": 1})
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            with pytest.raises(PermanentUpstreamError) as caught:
                registry["vies"].fetch("DE123456788", purpose="test", requested_by="org-1")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            registry.close()
    assert caught.value.code == "response_too_large"
    assert peak < 8 * CAP, f"{peak} bytes allocated at the peak"
