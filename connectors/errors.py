"""Upstream failures, classified once at the edge so retries, breakers and callers agree.

Callers must be able to tell "try again later" (transient: the hub keeps a credential ``pending``)
from "this will not change by asking again" (permanent, not found) without knowing which system or
protocol produced the failure. Every error carries the system, a short machine code and a detail
that is safe to log (never a key, never a whole upstream body).
"""

from __future__ import annotations

from http import HTTPStatus

__all__ = [
    "CircuitOpenError",
    "NotFoundUpstream",
    "PermanentUpstreamError",
    "TransientUpstreamError",
    "UpstreamAuthError",
    "UpstreamError",
    "status_phrase",
]

_MAX_DETAIL = 300


def status_phrase(status: int) -> str:
    """An HTTP status in words (``503`` → ``Service Unavailable``), for a detail a person reads."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP status {status}"


class UpstreamError(Exception):
    """Base class: the upstream ``system`` failed with ``code`` (e.g. ``http_503``, ``INVALID_INPUT``)."""

    outcome = "error"

    def __init__(
        self,
        system: str,
        code: str,
        detail: str = "",
        *,
        http_status: int | None = None,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        self.system = system
        self.code = code
        # Upstream text is untrusted: keep it short so a hostile body cannot flood the logs.
        self.detail = detail[:_MAX_DETAIL]
        self.http_status = http_status
        self.retry_after = retry_after
        self.attempts = attempts
        super().__init__(f"{system}: {code}" + (f" ({self.detail})" if self.detail else ""))


class TransientUpstreamError(UpstreamError):
    """Timeouts, connection errors, 429/5xx, busy faults: worth retrying later."""

    outcome = "transient"


class PermanentUpstreamError(UpstreamError):
    """Validation errors, bad credentials, hostile bodies: asking again gives the same answer."""

    outcome = "permanent"


class NotFoundUpstream(PermanentUpstreamError):
    """The upstream answered and does not know the identifier."""

    outcome = "not_found"


class UpstreamAuthError(UpstreamError):
    """The upstream refused the hub's own key (401/403, a gateway key error): the fault is the hub's
    configuration, not the identifier's. Retrying at once is pointless, giving up is wrong: the slot
    stays pending and is asked again once the key works."""

    outcome = "misconfigured"


class CircuitOpenError(UpstreamError):
    """The breaker for ``system`` is open: answered at once, the upstream was not called."""

    outcome = "circuit_open"
