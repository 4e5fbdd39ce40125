"""The one connector interface: identifier(s) in → raw payload and provenance metadata out.

Connectors never interpret payloads (that is the mapping engine's job); they only guarantee that what
they hand back came from the configured upstream, is within size limits, is well-formed and not hostile,
and that the call was classified, retried, rate-limited, breaker-guarded and recorded the same way for
every system and protocol.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import SecretStr

from connectors.config import RestSystemConfig, SoapSystemConfig
from connectors.errors import NotFoundUpstream, PermanentUpstreamError, UpstreamError
from connectors.resilience import (
    BreakerState,
    CallOutcome,
    CallRecord,
    CallRecorder,
    ResiliencePolicy,
    sha256_hex,
    utcnow,
)
from hub.spine.observability import metrics

__all__ = ["Connector", "Exchange", "FetchResult"]


@dataclass(frozen=True)
class FetchResult:
    """One identifier's raw answer and where it came from.

    ``response_sha256`` hashes the bytes exactly as the upstream sent them; for a batched call that is
    the whole batch response, while ``raw`` holds only this identifier's share (so one supplier's
    evidence never carries another's data) and ``raw_sha256`` hashes that share.
    """

    system: str
    identifier: str
    raw: bytes
    content_type: str
    fetched_at: datetime
    duration_ms: float
    request_sha256: str
    response_sha256: str
    http_status: int | None
    attempts: int
    batch_size: int = 1

    @property
    def raw_sha256(self) -> str:
        return sha256_hex(self.raw)


@dataclass(frozen=True)
class Exchange:
    """What one successful attempt sent and received (request bytes exclude any secret)."""

    request: bytes
    response: bytes
    content_type: str
    http_status: int | None
    parts: dict[str, bytes] = field(default_factory=dict)


def _outcome_of(exc: UpstreamError) -> CallOutcome:
    outcome = exc.outcome
    known = ("not_found", "permanent", "transient", "circuit_open", "misconfigured")
    return outcome if outcome in known else "permanent"  # type: ignore[return-value]


class Connector(ABC):
    """Shared fetch/fetch_many/record logic; subclasses implement one attempt of the exchange."""

    supports_batch: bool = False
    batch_size: int = 1

    def __init__(
        self,
        system: str,
        config: RestSystemConfig | SoapSystemConfig,
        policy: ResiliencePolicy,
        recorder: CallRecorder,
    ) -> None:
        self.system = system
        self.config = config
        self.policy = policy
        self.recorder = recorder
        self._identifier_re = re.compile(config.identifier_pattern)
        self._key_by = config.breaker.key_by

    @property
    def breaker_state(self) -> BreakerState:
        """The system's own breaker (a keyed system's keys are in :attr:`breaker_keys`)."""
        return self.policy.breaker.state

    @property
    def breaker_keys(self) -> dict[str, BreakerState] | None:
        """State per key of a keyed breaker (every key seen so far), None when the breaker is not keyed."""
        return self.policy.keyed.states() if self.policy.keyed is not None else None

    @property
    def misconfigured(self) -> dict[str, object] | None:
        """Since when and with what the upstream refuses the hub's key; None while it accepts it."""
        return self.policy.guard.status()

    def current_key(self, key: SecretStr | None) -> SecretStr | None:
        """The key to send: ``key`` while the upstream accepts it; while it refuses it, read afresh from
        the configuration (a key file rewritten by the operator is picked up without a restart)."""
        if self.policy.guard.misconfigured:
            return self.config.resolve_key()
        return key

    def breaker_key(self, identifier: str) -> str | None:
        """The value of ``breaker.key_by`` in ``identifier`` (VIES: the member state)."""
        if self._key_by is None:
            return None
        match = self._identifier_re.fullmatch(identifier)
        return match.group(self._key_by) if match is not None else None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release pooled connections."""

    # -- subclass hooks -------------------------------------------------------------------------
    @abstractmethod
    def _exchange(self, identifier: str) -> Exchange:
        """One attempt for one identifier; raise a classified :class:`UpstreamError` on failure."""

    def _exchange_batch(self, identifiers: Sequence[str]) -> Exchange:
        """One attempt for many identifiers; ``Exchange.parts`` maps each found identifier to its raw."""
        raise NotImplementedError

    # -- public API -------------------------------------------------------------------------------
    def validate_identifier(self, identifier: str) -> str:
        """Refuse identifiers outside the system's pattern before they reach a URL or envelope (API7)."""
        if not isinstance(identifier, str) or not self._identifier_re.fullmatch(identifier):
            raise PermanentUpstreamError(
                self.system, "invalid_identifier", "identifier does not match the pattern", attempts=0
            )
        return identifier

    def fetch(self, identifier: str, *, purpose: str, requested_by: str) -> FetchResult:
        if self.supports_batch:
            outcome = self.fetch_many([identifier], purpose=purpose, requested_by=requested_by)[identifier]
            if isinstance(outcome, UpstreamError):
                raise outcome
            return outcome
        started_at, t0 = utcnow(), time.perf_counter()
        try:
            self.validate_identifier(identifier)
            exchange, attempts = self.policy.run(lambda: self._exchange(identifier), key=self.breaker_key(identifier))
        except UpstreamError as exc:
            self._record(purpose, requested_by, (identifier,), started_at, t0, exc, None)
            raise
        duration_ms = self._record(purpose, requested_by, (identifier,), started_at, t0, attempts, exchange)
        return self._result(identifier, exchange, exchange.response, started_at, duration_ms, attempts, 1)

    def fetch_many(
        self, identifiers: Iterable[str], *, purpose: str, requested_by: str
    ) -> dict[str, FetchResult | UpstreamError]:
        """Fetch many identifiers: batched where the contract allows, else concurrently within the limit."""
        unique = list(dict.fromkeys(identifiers))
        results: dict[str, FetchResult | UpstreamError] = {}
        if not self.supports_batch:
            with ThreadPoolExecutor(max_workers=max(1, min(self.policy.concurrency, len(unique) or 1))) as pool:
                futures = {i: pool.submit(self.fetch, i, purpose=purpose, requested_by=requested_by) for i in unique}
            for identifier, future in futures.items():
                exc = future.exception()
                if isinstance(exc, UpstreamError):
                    results[identifier] = exc
                elif exc is not None:
                    raise exc
                else:
                    results[identifier] = future.result()
            return results
        valid: list[str] = []
        for identifier in unique:
            try:
                valid.append(self.validate_identifier(identifier))
            except UpstreamError as exc:
                results[identifier] = exc
        for start in range(0, len(valid), self.batch_size):
            chunk = valid[start : start + self.batch_size]
            results.update(self._fetch_chunk(chunk, purpose, requested_by))
        return results

    # -- internals --------------------------------------------------------------------------------
    def _fetch_chunk(self, chunk: list[str], purpose: str, requested_by: str) -> dict[str, FetchResult | UpstreamError]:
        started_at, t0 = utcnow(), time.perf_counter()
        try:
            exchange, attempts = self.policy.run(lambda: self._exchange_batch(chunk))
        except UpstreamError as exc:
            self._record(purpose, requested_by, tuple(chunk), started_at, t0, exc, None)
            return dict.fromkeys(chunk, exc)
        duration_ms = self._record(purpose, requested_by, tuple(chunk), started_at, t0, attempts, exchange)
        out: dict[str, FetchResult | UpstreamError] = {}
        for identifier in chunk:
            part = exchange.parts.get(identifier)
            if part is None:
                out[identifier] = NotFoundUpstream(
                    self.system, "not_in_batch_response", "identifier absent from the batch answer", attempts=attempts
                )
            else:
                out[identifier] = self._result(
                    identifier, exchange, part, started_at, duration_ms, attempts, len(chunk)
                )
        return out

    def _result(
        self,
        identifier: str,
        exchange: Exchange,
        raw: bytes,
        started_at: datetime,
        duration_ms: float,
        attempts: int,
        batch_size: int,
    ) -> FetchResult:
        return FetchResult(
            system=self.system,
            identifier=identifier,
            raw=raw,
            content_type=exchange.content_type,
            fetched_at=started_at,
            duration_ms=duration_ms,
            request_sha256=sha256_hex(exchange.request),
            response_sha256=sha256_hex(exchange.response),
            http_status=exchange.http_status,
            attempts=attempts,
            batch_size=batch_size,
        )

    def _record(
        self,
        purpose: str,
        requested_by: str,
        identifiers: tuple[str, ...],
        started_at: datetime,
        t0: float,
        attempts_or_error: int | UpstreamError,
        exchange: Exchange | None,
    ) -> float:
        duration_ms = (time.perf_counter() - t0) * 1000.0
        if isinstance(attempts_or_error, UpstreamError):
            outcome, attempts = _outcome_of(attempts_or_error), attempts_or_error.attempts
            code, status = attempts_or_error.code, attempts_or_error.http_status
        else:
            outcome, attempts, code = "ok", attempts_or_error, None
            status = exchange.http_status if exchange else None
        self.recorder.record(
            CallRecord(
                system=self.system,
                purpose=purpose,
                requested_by=requested_by,
                identifiers=identifiers,
                started_at=started_at,
                duration_ms=duration_ms,
                outcome=outcome,
                attempts=attempts,
                request_sha256=sha256_hex(exchange.request) if exchange else None,
                response_sha256=sha256_hex(exchange.response) if exchange else None,
                http_status=status,
                error_code=code,
            )
        )
        metrics.CONNECTOR_CALLS.labels(self.system, outcome).inc()
        metrics.CONNECTOR_ATTEMPTS.labels(self.system).inc(attempts)
        metrics.CONNECTOR_LATENCY.labels(self.system).observe(duration_ms / 1000.0)
        return duration_ms
