"""Sandbox test keys stay with the sandbox.

The shipped ``config/connectors.yaml`` carries the sandbox twins' public test keys inline, so a fresh
checkout works against ``g2bhub sandbox``. A deployment that points a connector at the real service but
forgets to give the real key would send that test key to the real system, which answers 401/403 for
every supplier. This module lets the hub refuse to start instead, naming the variable to set.

Definitions (docs/operations.md, "What a deployment must configure"):

- A **sandbox test key** is a key whose value begins with ``sandbox-`` (the shipped inline keys and the
  twins' built-in keys: ``sandbox-nts-key``, ``sandbox-ch-key``, ``sandbox-iaf-key``, …).
- A **sandbox endpoint** is one whose host is a loopback address: ``localhost``, ``*.localhost``, an IPv4
  address in 127.0.0.0/8, or ``::1``. The twins serve on loopback (``g2bhub sandbox`` and ``g2bhub demo``
  bind 127.0.0.1); a twin on another host is treated like a real service and takes its key the same way.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from connectors.config import SystemConfig

__all__ = ["SANDBOX_KEY_PREFIX", "is_sandbox_endpoint", "is_sandbox_key", "sandbox_key_problems"]

SANDBOX_KEY_PREFIX = "sandbox-"


def is_sandbox_key(value: str) -> bool:
    return value.startswith(SANDBOX_KEY_PREFIX)


def is_sandbox_endpoint(url: str) -> bool:
    """Whether ``url`` names a loopback host (where the sandbox twins listen)."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def sandbox_key_problems(systems: Mapping[str, SystemConfig]) -> list[str]:
    """One line per enabled system that would send a sandbox test key to an endpoint that is not a
    sandbox, naming the environment variable (or setting) that gives the real key."""
    problems = []
    for name, system in systems.items():
        if not system.enabled or is_sandbox_endpoint(system.endpoint):
            continue
        key = system.resolve_key()
        if key is None or not is_sandbox_key(key.get_secret_value()):
            continue
        problems.append(
            f"connectors.{name}: {_shown(system.endpoint)} is not a sandbox endpoint, but the key is a "
            f"sandbox test key ({_source(system)}): {_remedy(name, system)}"
        )
    return problems


def _shown(url: str) -> str:
    """The endpoint without user info, query or fragment: an error line carries no secret of the URL."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:  # not a URL a client could call either; name the system, not the text
        return "its endpoint"
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _source(system: SystemConfig) -> str:
    """Where the key came from, in :meth:`resolve_key`'s order."""
    if system.key_env and os.environ.get(system.key_env):
        return f"from {system.key_env}"
    if system.key_file is not None and system.key_file.exists():
        return f"from the key file {system.key_file}"
    unset = [f"{system.key_env} is not set"] if system.key_env else []
    if system.key_file is not None:
        unset.append(f"the key file {system.key_file} does not exist")
    return "; ".join(["the inline key", *unset])


def _remedy(name: str, system: SystemConfig) -> str:
    if system.key_env:
        return f"set {system.key_env} to the key issued for this service"
    return (
        f"set connectors.{name}.key_env to the name of an environment variable holding the key issued "
        f"for this service (or connectors.{name}.key_file)"
    )
