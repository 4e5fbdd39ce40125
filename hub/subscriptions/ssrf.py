"""Server-side request forgery guard for webhook targets (OWASP API7).

Checked when a subscription is saved AND before every send: DNS can change between the two, so a
name that resolved to a public address at subscribe time may point at 127.0.0.1 later. Any
resolved address that is not globally routable (:func:`refusal_reason`) refuses the target, unless
configuration allows loopback targets (the one-machine demo, whose receiver runs on the same machine)
or every private target (the sandbox and tests). Redirects are never followed by the sender.
The sender then connects to the very address it checked (:func:`pin`), so a DNS answer that changes
between check and connect (rebinding) cannot redirect the request; TLS still verifies the name.

Name resolution is a :data:`Resolver` handed in by whoever checks (bootstrap gives the system one), so
the check never runs hidden inside a transaction and tests decide what a name resolves to."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "PinnedTarget", "Resolver", "UnsafeTarget", "check_target", "check_url_syntax", "pin", "refusal_reason",
    "resolve_host",
]

MAX_URL_LENGTH = 2048

# (host, port) -> the addresses it resolves to; raises UnsafeTarget when it does not resolve.
Resolver = Callable[[str, int], list[str]]


class UnsafeTarget(ValueError):
    """The URL is not an acceptable webhook target; the message says why (safe to show)."""


@dataclass(frozen=True)
class PinnedTarget:
    """Where to connect (the checked address), and what to tell the server (its name)."""

    url: str  # the URL with the host replaced by the checked address
    host_header: str  # the original host[:port], for the Host header
    sni_hostname: str | None  # for https: the name TLS sends and verifies the certificate against


def pin(url: str, address: str) -> PinnedTarget:
    """The request for ``url`` sent to ``address`` (one of those :func:`check_target` accepted)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        literal = True
    except ValueError:
        literal = False
    if literal:  # nothing to resolve, nothing to pin
        return PinnedTarget(url=url, host_header=parts.netloc, sni_hostname=None)
    bare = address.split("%", 1)[0]
    netloc = f"[{bare}]" if ":" in bare else bare
    if parts.port is not None:
        netloc += f":{parts.port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return PinnedTarget(url=pinned, host_header=parts.netloc,
                        sni_hostname=host if parts.scheme == "https" else None)


def check_url_syntax(url: str) -> tuple[str, int]:
    """Scheme, host and credentials rules that need no DNS; returns (host, port)."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeTarget(f"URL longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeTarget("only http and https URLs are accepted")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("credentials in the URL are not accepted; authenticate with the signature")
    host = parts.hostname
    if not host:
        raise UnsafeTarget("the URL has no host")
    if parts.fragment:
        raise UnsafeTarget("the URL must not have a fragment")
    return host, port or (443 if parts.scheme == "https" else 80)


_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64_PREFIXES = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, IPv4-compatible or NAT64 address stands for, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _IPV4_COMPATIBLE or any(address in prefix for prefix in _NAT64_PREFIXES):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _classify(address: _IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        # Tunnels reach IPv4 hosts through relays the hub does not control: a 6to4 address carries its
        # IPv4 host in bits 16-48, a Teredo address its client (XOR-ed) in the last 32 bits; either
        # can smuggle 127.0.0.1 or 169.254.169.254 past a check that looks only at the IPv6 address.
        if address.sixtofour is not None:
            return "6to4"
        if address.teredo is not None:
            return "teredo"
        if address.is_site_local:
            return "site-local"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            if address.ipv4_mapped is not None:
                return _classify(embedded)  # ::ffff:a.b.c.d is a.b.c.d itself
            return _classify(embedded) or "ipv4-embedding"
    for flag in ("is_loopback", "is_private", "is_link_local", "is_multicast", "is_reserved", "is_unspecified"):
        if getattr(address, flag):
            return flag.removeprefix("is_").replace("_", "-")
    if not address.is_global:
        return "not-global"
    return None


def refusal_reason(address: str) -> str | None:
    """Why ``address`` is not an acceptable webhook destination (``None`` when it is globally
    routable): loopback, private, link-local, multicast, reserved, unspecified, site-local, 6to4,
    Teredo, or an IPv4-mapped/-compatible/NAT64 address whose IPv4 host is not global."""
    return _classify(ipaddress.ip_address(address.split("%", 1)[0]))


def _is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1, or an IPv4-mapped loopback address (``::ffff:127.0.0.1``)."""
    parsed = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped.is_loopback
    return parsed.is_loopback


def resolve_host(host: str, port: int) -> list[str]:
    """The system resolver (``getaddrinfo``): blocking, so never call it inside a transaction."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeTarget(f"host {host!r} does not resolve") from exc
    return sorted({str(info[4][0]) for info in infos})


def check_target(url: str, resolve: Resolver, allow_private: bool = False, allow_loopback: bool = False) -> list[str]:
    """Raise :class:`UnsafeTarget` unless every address the host resolves to is acceptable;
    returns the addresses (the sender connects to the first). ``allow_loopback`` accepts loopback
    addresses (127.0.0.0/8, ::1) besides global ones; ``allow_private`` accepts every address."""
    host, port = check_url_syntax(url)
    addresses = resolve(host, port)
    if not addresses:
        raise UnsafeTarget(f"host {host!r} does not resolve")
    if allow_private:
        return addresses
    # Neither the address nor the kind of address is told: a caller must not learn what an internal
    # name resolves to from the refusal (the hub would become a DNS lookup tool for the inside).
    if any(refusal_reason(raw) is not None and not (allow_loopback and _is_loopback(raw)) for raw in addresses):
        raise UnsafeTarget(f"host {host!r} resolves to a private or reserved address; not an allowed target")
    return addresses
