"""The webhook target address classifier: transition mechanisms that embed an IPv4 address (6to4,
Teredo, IPv4-mapped/-compatible, NAT64) and deprecated IPv6 scopes must not open a path to internal
hosts, and a refusal must not tell the caller what an internal name resolves to."""

from __future__ import annotations

import logging

import pytest

from hub.subscriptions.ssrf import UnsafeTarget, check_target, refusal_reason

# A Teredo address whose client IPv4 (last 32 bits XOR 0xffffffff) is 127.0.0.1: ~0x7f000001 = 0x80fffffe.
TEREDO_LOOPBACK_CLIENT = "2001:0:4136:e378:8000:63bf:80ff:fffe"
# Teredo server 65.54.227.120, client 8.8.8.8 (~0x08080808 = 0xf7f7f7f7): still a tunnel, refused.
TEREDO_PUBLIC_CLIENT = "2001:0:4136:e378:8000:63bf:f7f7:f7f7"


@pytest.mark.parametrize("address", [
    "2002:7f00:1::",  # 6to4 embedding 127.0.0.1
    "2002:a9fe:a9fe::",  # 6to4 embedding 169.254.169.254 (cloud metadata)
    "2002:0a00:0001::1",  # 6to4 embedding 10.0.0.1
    "2002:c0a8:0101::",  # 6to4 embedding 192.168.1.1
    "2002:808:808::1",  # 6to4 embedding 8.8.8.8: a public relay can still reach any IPv4 host
    "fec0::1",  # site-local (deprecated, still routed inside some networks)
    "fec0:0:0:ffff::1",
    "feff::1",
    TEREDO_LOOPBACK_CLIENT,
    TEREDO_PUBLIC_CLIENT,
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "::10.0.0.1",
    "64:ff9b::7f00:1",  # NAT64 well-known prefix embedding 127.0.0.1
    "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::a00:1",  # local-use NAT64 prefix
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "2001:db8::1", "100::1",
    "127.0.0.1", "10.1.2.3", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "192.0.2.1",
    "255.255.255.255",
])
def test_non_global_and_tunnelled_addresses_are_refused(address: str) -> None:
    assert refusal_reason(address) is not None


@pytest.mark.parametrize("address", [
    "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "2001:4860:4860::8888",
    "::ffff:8.8.8.8",  # IPv4-mapped public: same host as 8.8.8.8
])
def test_global_addresses_are_allowed(address: str) -> None:
    assert refusal_reason(address) is None


@pytest.mark.parametrize("address", ["2002:7f00:1::", "2002:a9fe:a9fe::", "fec0::1", TEREDO_LOOPBACK_CLIENT])
def test_check_target_refuses_literal_and_resolved_tunnel_addresses(address: str) -> None:
    with pytest.raises(UnsafeTarget):
        check_target(f"http://[{address}]/hook", lambda host, port: [address])
    with pytest.raises(UnsafeTarget):
        check_target("https://hooks.example/hook", lambda host, port: ["2606:4700:4700::1111", address])
    assert check_target("https://hooks.example/hook", lambda host, port: [address], allow_private=True)


@pytest.mark.parametrize("address", ["10.20.30.40", "fd00:1234::42", "2002:a9fe:a9fe::", "fec0::1"])
def test_the_refusal_never_names_the_resolved_address(address: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(UnsafeTarget) as refused:
        check_target("https://db.internal.example/hook", lambda host, port: [address])
    message = str(refused.value)
    assert "resolves to a private or reserved address" in message
    assert address not in message and address.split("::")[0] not in message
    assert address not in caplog.text
