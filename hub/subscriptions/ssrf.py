"""Server-side request forgery guard for webhook targets (OWASP API7).

Checked when a subscription is saved AND before every send: DNS can change between the two, so a
name that resolved to a public address at subscribe time may point at 127.0.0.1 later. Any
resolved address that is not globally routable refuses the target (unless configuration allows
private targets, as the sandbox and tests need). Redirects are never followed by the sender.
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

__all__ = ["PinnedTarget", "Resolver", "UnsafeTarget", "check_target", "check_url_syntax", "pin", "resolve_host"]

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


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for flag in ("is_loopback", "is_private", "is_link_local", "is_multicast", "is_reserved", "is_unspecified"):
        if getattr(address, flag):
            return flag.removeprefix("is_").replace("_", "-")
    if not address.is_global:
        return "not-global"
    return None


def resolve_host(host: str, port: int) -> list[str]:
    """The system resolver (``getaddrinfo``): blocking, so never call it inside a transaction."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeTarget(f"host {host!r} does not resolve") from exc
    return sorted({str(info[4][0]) for info in infos})


def check_target(url: str, resolve: Resolver, allow_private: bool = False) -> list[str]:
    """Raise :class:`UnsafeTarget` unless every address the host resolves to is acceptable;
    returns the addresses (the sender connects to the first)."""
    host, port = check_url_syntax(url)
    addresses = resolve(host, port)
    if not addresses:
        raise UnsafeTarget(f"host {host!r} does not resolve")
    if allow_private:
        return addresses
    for raw in addresses:
        why = _refused(ipaddress.ip_address(raw.split("%", 1)[0]))
        if why is not None:
            raise UnsafeTarget(f"host {host!r} resolves to a {why} address ({raw}); not an allowed target")
    return addresses
