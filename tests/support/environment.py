"""What a test run may find missing, and what it does then: on a developer machine a missing service or
data file skips the tests that need it; with CI=true it fails them, because CI must run everything."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

__all__ = ["IN_CI", "ROOT", "free_port", "service_missing"]

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() == "true"


def service_missing(what: str, why: str) -> None:
    """Skip with a reason on a developer machine; fail in CI, where every service and file must be there."""
    message = f"{what} unavailable: {why}"
    if IN_CI:
        pytest.fail(message + " (CI=true: nothing may be skipped for want of it)")
    pytest.skip(message)


def free_port() -> int:
    """A loopback port nothing listens on now, for a server started in a subprocess."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
