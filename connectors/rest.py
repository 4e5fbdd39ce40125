"""Generic REST connector (httpx) plus the HTTP plumbing the SOAP connector shares.

Everything contract-specific — path template, query, auth style, batch body, error shapes — is
configuration (:class:`RestSystemConfig`). The body is read with a hard byte cap — on the wire and once
decoded — before anything parses it, and classified into ok / not found / permanent / transient so
retries and the breaker behave the same for every system.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
import jmespath
from pydantic import SecretStr

from connectors.base import Connector, Exchange
from connectors.config import AuthConfig, ErrorRule, Outcome, RestSystemConfig, Timeouts, decoded_portal_key
from connectors.errors import (
    NotFoundUpstream,
    PermanentUpstreamError,
    TransientUpstreamError,
    UpstreamAuthError,
    UpstreamError,
    status_phrase,
)
from connectors.resilience import CallRecorder, ResiliencePolicy
from connectors.xmlsafe import UnsafeXmlError, XmlSyntaxError, parse_xml

__all__ = [
    "HttpAnswer",
    "RestConnector",
    "apply_auth",
    "classify_status",
    "fill_template",
    "make_http_client",
    "parse_retry_after",
    "parse_xml_body",
    "send_capped",
]

_TRANSIENT_STATUSES = frozenset({408, 425, 429})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ERROR_CLASSES: dict[str, type[UpstreamError]] = {
    "transient": TransientUpstreamError,
    "permanent": PermanentUpstreamError,
    "not_found": NotFoundUpstream,
    "misconfigured": UpstreamAuthError,
}


def fill_template(template: str, values: Mapping[str, str], *, url_quote: bool = False) -> str:
    """Replace ``{name}`` placeholders (plain names only: no attribute or index access)."""

    def replace(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        return quote(value, safe="") if url_quote else value

    return _PLACEHOLDER.sub(replace, template)


def make_http_client(timeouts: Timeouts, concurrency: int) -> httpx.Client:
    return httpx.Client(
        timeout=httpx.Timeout(
            connect=timeouts.connect_s, read=timeouts.read_s, write=timeouts.write_s, pool=timeouts.pool_s
        ),
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        follow_redirects=False,  # a redirect to elsewhere is an SSRF vector and never part of a contract
        trust_env=False,
    )


def apply_auth(
    auth: AuthConfig, key: SecretStr | None, headers: dict[str, str], params: dict[str, str]
) -> httpx.BasicAuth | None:
    """Put the key where the contract wants it; the key never enters the request hash or a log."""
    if auth.kind == "none":
        return None
    secret = key.get_secret_value() if key is not None else ""
    if auth.kind == "basic":
        return httpx.BasicAuth(secret, "")
    if not auth.name:
        raise ValueError(f"auth kind {auth.kind!r} needs a name")
    if auth.either_key_form:
        secret = decoded_portal_key(secret)
    if auth.kind == "query":
        params[auth.name] = auth.prefix + secret
    else:
        headers[auth.name] = auth.prefix + secret
    return None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from ``Retry-After`` (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


class HttpAnswer:
    """Status, headers and the capped body of one HTTP exchange."""

    def __init__(self, status: int, headers: httpx.Headers, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def content_type(self) -> str:
        return str(self.headers.get("content-type", "application/octet-stream"))

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


class _Inflater:
    """Undoes a ``Content-Encoding`` (gzip or deflate, possibly stacked) chunk by chunk, never producing
    more than ``cap`` bytes in all: zlib is asked for at most what is left of the cap plus one byte, so a
    gzip bomb costs the cap, not what it would inflate to (httpx's own decoder inflates a whole network
    read at once: 64 KiB of gzip can become 64 MiB)."""

    def __init__(self, system: str, encodings: Sequence[str], cap: int, status: int) -> None:
        self.system, self.cap, self.status = system, cap, status
        self.stages: list[tuple[str, Any, list[int]]] = []
        for encoding in reversed(encodings):  # the last encoding applied is undone first
            if encoding in ("gzip", "x-gzip"):
                self.stages.append((encoding, zlib.decompressobj(16 + zlib.MAX_WBITS), [0]))
            elif encoding == "deflate":
                self.stages.append((encoding, zlib.decompressobj(zlib.MAX_WBITS), [0]))
            else:
                raise PermanentUpstreamError(
                    system, "unsupported_encoding", f"content-encoding {encoding!r}", http_status=status
                )

    def feed(self, data: bytes) -> bytes:
        for index, (encoding, inflater, produced) in enumerate(self.stages):
            room = self.cap - produced[0]
            try:
                out = inflater.decompress(data, room + 1)
            except zlib.error:
                if encoding != "deflate" or produced[0] or inflater.unused_data:
                    raise
                # "deflate" sent as a raw stream (no zlib header), as some servers do
                inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                self.stages[index] = (encoding, inflater, produced)
                out = inflater.decompress(data, room + 1)
            produced[0] += len(out)
            if len(out) > room:
                raise PermanentUpstreamError(
                    self.system,
                    "response_too_large",
                    f"decoded body exceeds cap {self.cap}",
                    http_status=self.status,
                )
            data = out
        return data


def send_capped(client: httpx.Client, system: str, request: httpx.Request, max_bytes: int) -> HttpAnswer:
    """Send and read at most ``max_bytes`` of body, counted both as sent (compressed) and decoded, while
    it streams in: the process never holds more than the cap of either. Network trouble is transient."""
    try:
        response = client.send(request, stream=True)
        try:
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise PermanentUpstreamError(
                    system,
                    "response_too_large",
                    f"declared {declared} bytes > cap {max_bytes}",
                    http_status=response.status_code,
                )
            encodings = [
                token.strip().lower()
                for token in response.headers.get("content-encoding", "").split(",")
                if token.strip() and token.strip().lower() != "identity"
            ]
            inflater = _Inflater(system, encodings, max_bytes, response.status_code) if encodings else None
            wire = 0
            body = bytearray()
            for chunk in response.iter_raw(64 * 1024):
                wire += len(chunk)
                if wire > max_bytes:
                    raise PermanentUpstreamError(
                        system, "response_too_large", f"body exceeds cap {max_bytes}", http_status=response.status_code
                    )
                body += inflater.feed(chunk) if inflater is not None else chunk
                if len(body) > max_bytes:
                    raise PermanentUpstreamError(
                        system, "response_too_large", f"body exceeds cap {max_bytes}", http_status=response.status_code
                    )
            return HttpAnswer(response.status_code, response.headers, bytes(body))
        finally:
            response.close()
    except httpx.TimeoutException as exc:
        raise TransientUpstreamError(system, "timeout", type(exc).__name__) from exc
    except httpx.TransportError as exc:
        raise TransientUpstreamError(system, "connection_error", type(exc).__name__) from exc
    except (httpx.DecodingError, zlib.error) as exc:
        raise TransientUpstreamError(system, "malformed_response", "content decoding failed") from exc


def classify_status(
    status: int, not_found_statuses: Sequence[int], auth_failure_statuses: Sequence[int] = ()
) -> Outcome | None:
    """None for success; else the outcome the HTTP status alone implies."""
    if 200 <= status < 300:
        return None
    if status in not_found_statuses:
        return "not_found"
    if status in auth_failure_statuses:
        return "misconfigured"
    if status in _TRANSIENT_STATUSES or status >= 500:
        return "transient"
    return "permanent"


def _match_rule(rules: Sequence[ErrorRule], body: Any) -> tuple[ErrorRule, str, str] | None:
    for rule in rules:
        if jmespath.search(rule.when, body):
            code = jmespath.search(rule.code, body) if rule.code else None
            detail = jmespath.search(rule.detail, body) if rule.detail else None
            return rule, str(code if code is not None else "upstream_error"), str(detail or "")
    return None


def _html_page(answer: HttpAnswer) -> bool:
    """A page declared HTML that declares no entity: a gateway's or portal's ``<!DOCTYPE html>`` page."""
    media_type = answer.content_type.split(";", 1)[0].strip().lower()
    return media_type in ("text/html", "application/xhtml+xml") and b"<!ENTITY" not in answer.body.upper()


def parse_xml_body(system: str, answer: HttpAnswer, max_bytes: int) -> Any:
    """Hardened parse; hostile bodies are permanent (retrying invites more), malformed ones transient.
    An HTML page in place of the answer (its ``<!DOCTYPE html>`` is refused like any DOCTYPE) is not an
    attack but a gateway speaking: ``unreadable_reply``, transient, so the slot is asked again later."""
    status = answer.status
    try:
        return parse_xml(answer.body, max_bytes=max_bytes)
    except UnsafeXmlError as exc:
        if _html_page(answer):
            raise TransientUpstreamError(system, "unreadable_reply", "an HTML page, not the XML answer",
                                         http_status=status) from exc
        raise PermanentUpstreamError(system, "unsafe_response", str(exc), http_status=status) from exc
    except XmlSyntaxError as exc:
        raise TransientUpstreamError(system, "malformed_response", str(exc), http_status=status) from exc


def load_json(system: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise TransientUpstreamError(system, "malformed_response", "body is not valid JSON") from exc


class RestConnector(Connector):
    """One system spoken over REST, entirely described by its :class:`RestSystemConfig`."""

    config: RestSystemConfig

    def __init__(
        self,
        system: str,
        config: RestSystemConfig,
        policy: ResiliencePolicy,
        recorder: CallRecorder,
        key: SecretStr | None,
    ) -> None:
        super().__init__(system, config, policy, recorder)
        self._key = key
        self._client = make_http_client(config.timeouts, config.concurrency)
        for rule in config.error_rules:  # fail at start-up, not on the first error
            for expr in (rule.when, rule.code, rule.detail):
                if expr:
                    jmespath.compile(expr)
        if config.batch is not None:
            self.supports_batch = True
            self.batch_size = config.batch.max_size

    def close(self) -> None:
        self._client.close()

    def _request(self, identifier: str, body: bytes | None, path: str | None = None) -> tuple[httpx.Request, bytes]:
        cfg = self.config
        values = {"identifier": identifier}
        url = cfg.endpoint + (path if path is not None else fill_template(cfg.path, values, url_quote=True))
        params = {name: fill_template(value, values) for name, value in cfg.query.items()}
        headers = {"Accept": cfg.accept, **cfg.headers}
        if body is not None:
            headers["Content-Type"] = cfg.content_type
        # Hash what identifies the request, before the key is added.
        fingerprint = f"{cfg.method} {httpx.URL(url, params=params)}\n".encode() + (body or b"")
        self._key = self.current_key(self._key)
        auth = apply_auth(cfg.auth, self._key, headers, params)
        request = self._client.build_request(cfg.method, url, params=params, headers=headers, content=body)
        if auth is not None:
            request = next(auth.auth_flow(request))
        return request, fingerprint

    def _exchange(self, identifier: str) -> Exchange:
        request, fingerprint = self._request(identifier, None)
        answer = send_capped(self._client, self.system, request, self.config.max_response_bytes)
        self._check(answer)
        return Exchange(fingerprint, answer.body, answer.content_type, answer.status)

    def _exchange_batch(self, identifiers: Sequence[str]) -> Exchange:
        batch = self.config.batch
        assert batch is not None
        if batch.path is not None:  # the identifiers travel in the path, each URL-quoted
            joined = batch.separator.join(quote(identifier, safe="") for identifier in identifiers)
            request, fingerprint = self._request("", None, path=batch.path.replace("{identifiers}", joined))
        else:
            body = json.dumps({batch.body_key: list(identifiers)}, separators=(",", ":")).encode()
            request, fingerprint = self._request(identifiers[0] if len(identifiers) == 1 else "", body)
        answer = send_capped(self._client, self.system, request, self.config.max_response_bytes)
        envelope = self._check(answer)
        if batch.records_key is None:
            records = envelope
        else:
            records = envelope.get(batch.records_key) if isinstance(envelope, dict) else None
        if not isinstance(records, list):
            raise TransientUpstreamError(self.system, "malformed_response", f"no '{batch.records_key}' list")
        wanted = set(identifiers)
        parts: dict[str, bytes] = {}
        for record in records:
            if isinstance(record, dict) and isinstance(record.get(batch.record_id), str):
                rid = record[batch.record_id]
                if rid in wanted and rid not in parts:
                    # each identifier's share has the shape a single call answers with
                    share = [record] if batch.records_key is None else {**envelope, batch.records_key: [record]}
                    parts[rid] = json.dumps(share, ensure_ascii=False).encode("utf-8")
        return Exchange(fingerprint, answer.body, answer.content_type, answer.status, parts)

    def _check(self, answer: HttpAnswer) -> Any:
        """Classify the answer; return the parsed body of a success (JSON value or XML root)."""
        cfg = self.config
        outcome = classify_status(answer.status, cfg.not_found_statuses, cfg.auth_failure_statuses)
        body: Any = None
        if cfg.response_format == "json" and answer.body.strip():
            try:
                body = json.loads(answer.body)
            except (ValueError, RecursionError):
                body = None
        matched = _match_rule(cfg.error_rules, body) if isinstance(body, dict) else None
        if matched is not None:
            rule, code, detail = matched
            final = rule.outcome or outcome or "permanent"
            raise _ERROR_CLASSES[final](
                self.system, code, detail, http_status=answer.status, retry_after=answer.retry_after
            )
        if outcome is not None:
            raise _ERROR_CLASSES[outcome](
                self.system, f"http_{answer.status}", status_phrase(answer.status),
                http_status=answer.status, retry_after=answer.retry_after
            )
        if cfg.response_format == "xml":
            return parse_xml_body(self.system, answer, cfg.max_response_bytes)
        if body is None:
            return load_json(self.system, answer.body)
        return body
