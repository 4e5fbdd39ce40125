"""Typed configuration of upstream systems: the ``connectors`` section, one entry per system.

``config/connectors.yaml`` ships the entries (read with the rest of the configuration by
:mod:`hub.config`). A deployment changes only ``endpoint`` and the key (``key_env`` / ``key_file`` /
``key``), by the ``connectors:`` section of its own config file or by
``G2BHUB_CONNECTORS__<SYSTEM>__ENDPOINT``; everything else (paths, auth style, fault codes, retry policy,
mapping file) describes the contract. Adding a system is a YAML entry plus a mapping file — no Python.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator, model_validator

__all__ = [
    "PROJECT_ROOT",
    "AuthConfig",
    "BatchConfig",
    "BreakerPolicy",
    "ConnectorsConfig",
    "ErrorRule",
    "Outcome",
    "RestSystemConfig",
    "RetryPolicy",
    "SoapSystemConfig",
    "SystemConfig",
    "SystemName",
    "Systems",
    "Timeouts",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# ``misconfigured``: the upstream refused the hub's key (see :class:`connectors.errors.UpstreamAuthError`).
Outcome = Literal["transient", "permanent", "not_found", "misconfigured"]


HttpStatus = Annotated[int, Field(ge=100, le=599)]


class _Strict(BaseModel):
    # Unknown keys are typos in a contract description: refuse them at start-up.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Strict):
    """Every outbound call has explicit limits; zeep's operation timeout is the read timeout."""

    connect_s: float = Field(3.0, gt=0)
    read_s: float = Field(10.0, gt=0)
    write_s: float = Field(10.0, gt=0)
    pool_s: float = Field(5.0, gt=0)
    wsdl_s: float = Field(10.0, gt=0)


class RetryPolicy(_Strict):
    max_attempts: int = Field(3, ge=1, le=10)
    initial_backoff_s: float = Field(0.2, ge=0)
    max_backoff_s: float = Field(5.0, ge=0)
    jitter_s: float = Field(0.2, ge=0)
    retry_after_cap_s: float = Field(30.0, ge=0)
    max_elapsed_s: float = Field(60.0, gt=0)


class BreakerPolicy(_Strict):
    """``key_by`` keys the breaker by a request field (a named group of ``identifier_pattern``, e.g.
    VIES's ``countryCode``): one member state's outage opens that member state's breaker only. With
    ``key_codes`` set, only failures with those codes count against the key; any other transient
    failure (connection refused, the whole service down) counts against the system's own breaker.

    ``auth_probe_s``: while the upstream refuses the hub's key, one call per interval goes out to see
    whether it works again; the others are answered at once (0: every call goes out)."""

    failure_threshold: int = Field(5, ge=1)
    reset_timeout_s: float = Field(30.0, gt=0)
    key_by: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    key_codes: list[str] = []
    max_keys: int = Field(1024, ge=1, le=100_000)
    auth_probe_s: float = Field(60.0, ge=0)

    @model_validator(mode="after")
    def _codes_need_a_key(self) -> BreakerPolicy:
        if self.key_codes and self.key_by is None:
            raise ValueError("key_codes needs key_by")
        return self


class AuthConfig(_Strict):
    """How the key travels: query parameter (NTS), header (IAF), HTTP Basic user (Companies House)."""

    kind: Literal["none", "query", "header", "basic"] = "none"
    name: str | None = None
    prefix: str = ""
    # data.go.kr issues each key twice, percent-escaped ("Encoding") and plain ("Decoding"): accept either.
    either_key_form: bool = False

    @field_validator("name")
    @classmethod
    def _name_is_token(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
            raise ValueError("must be a plain parameter or header name")
        return value


_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def decoded_portal_key(key: str) -> str:
    """A portal key in its decoded form: an encoded key (it holds ``%XX`` escapes; a decoded data.go.kr
    key never holds ``%``) is unquoted once, a decoded one is left alone, so httpx encodes it exactly
    once on the wire whichever form the deployment was given."""
    key = key.strip()
    return unquote(key) if _PERCENT_ESCAPE.search(key) else key


class ErrorRule(_Strict):
    """A contract-specific error shape, matched with JMESPath on a JSON body (e.g. NTS gateway errors).

    ``outcome`` absent means: keep the HTTP-status classification, only take the code from the body.
    """

    when: str
    code: str | None = None
    detail: str | None = None
    outcome: Outcome | None = None


class BatchConfig(_Strict):
    """Many identifiers in one call, the answer split back per identifier. Two styles: a JSON body
    (NTS: ``{"b_no": [...]}``) or the path (IAF: ``/company/id1,id2,...``)."""

    max_size: int = Field(100, ge=1, le=10_000)
    body_key: str | None = Field(None, description="JSON key that receives the list of identifiers")
    path: str | None = Field(None, description="path template with {identifiers}, joined by separator")
    separator: str = Field(",", min_length=1, max_length=3)
    records_key: str | None = Field(None, description="key of the response's record list; None: it is a list")
    record_id: str = Field(..., description="key inside a record that echoes the identifier")

    @model_validator(mode="after")
    def _one_style(self) -> BatchConfig:
        if (self.body_key is None) == (self.path is None):
            raise ValueError("set exactly one of body_key (identifiers in a JSON body) or path")
        if self.path is not None and "{identifiers}" not in self.path:
            raise ValueError("path must contain {identifiers}")
        return self


class _SystemBase(_Strict):
    enabled: bool = True
    endpoint: str
    key: SecretStr | None = None
    key_env: str | None = None
    key_file: Path | None = None
    auth: AuthConfig = AuthConfig()
    headers: dict[str, str] = {}
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()
    concurrency: int = Field(8, ge=1, le=1000)
    # Calls in flight per value of ``breaker.key_by`` (VIES: per member state), within ``concurrency``.
    key_concurrency: int | None = Field(None, ge=1, le=1000)
    concurrency_wait_s: float = Field(30.0, gt=0)
    max_response_bytes: int = Field(1024 * 1024, ge=1024)
    # HTTP statuses that mean "the hub's key was refused" (outcome ``misconfigured``), whatever the body.
    auth_failure_statuses: list[HttpStatus] = [401, 403]
    identifier_pattern: str = Field(r"^[A-Za-z0-9+*.\-]{1,64}$")
    mapping: Path | None = None

    @field_validator("identifier_pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _breaker_key_is_a_group(self) -> _SystemBase:
        key_by = self.breaker.key_by
        if key_by is not None and key_by not in re.compile(self.identifier_pattern).groupindex:
            raise ValueError(f"breaker.key_by: {key_by!r} is not a named group of identifier_pattern")
        if self.key_concurrency is not None and key_by is None:
            raise ValueError("key_concurrency needs breaker.key_by")
        if key_by is not None and getattr(self, "batch", None) is not None:
            raise ValueError("breaker.key_by: a batched system mixes keys in one call; key it or batch it")
        return self

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_http(cls, value: str) -> str:
        if not re.match(r"^https?://", value):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    def resolve_key(self) -> SecretStr | None:
        """The environment variable, else the file, else the inline key (a sandbox default at most)."""
        if self.key_env and os.environ.get(self.key_env):
            return SecretStr(os.environ[self.key_env])
        if self.key_file is not None and self.key_file.exists():
            return SecretStr(self.key_file.read_text(encoding="utf-8").strip())
        return self.key


class RestSystemConfig(_SystemBase):
    kind: Literal["rest"]
    method: Literal["GET", "POST"] = "GET"
    path: str = "/{identifier}"
    query: dict[str, str] = {}
    accept: str = "application/json"
    content_type: str = "application/json"
    response_format: Literal["json", "xml"] = "json"
    batch: BatchConfig | None = None
    not_found_statuses: list[HttpStatus] = [404]
    error_rules: list[ErrorRule] = []


class SoapSystemConfig(_SystemBase):
    kind: Literal["soap"]
    wsdl: str
    operation: str
    service: str | None = None
    port: str | None = None
    arguments: dict[str, str] = {"identifier": "{identifier}"}
    fault_codes: dict[str, Outcome] = {}
    default_fault_outcome: Outcome = "transient"
    strict: bool = True


SystemConfig = Annotated[RestSystemConfig | SoapSystemConfig, Field(discriminator="kind")]
SystemName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
# The ``connectors`` section of the hub's settings: lower_snake_case system name → its entry.
Systems = dict[SystemName, SystemConfig]


class ConnectorsConfig(_Strict):
    """The systems a registry is built from. Relative paths (WSDL, mapping) resolve against the folder
    that holds the ``connectors`` and ``mappings`` packages: the checkout, or site-packages."""

    systems: Systems

    def resolve_path(self, path: Path | str) -> Path:
        candidate = Path(path)
        return candidate if candidate.is_absolute() else PROJECT_ROOT / candidate
