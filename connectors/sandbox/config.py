"""Sandbox configuration: constructor arguments > ``G2BHUB_SANDBOX__*`` environment > defaults.

Nested keys use ``__``, e.g. ``G2BHUB_SANDBOX__VIES__ERROR_RATE=0.2``,
``G2BHUB_SANDBOX__NTS__LATENCY_MAX_MS=300``, ``G2BHUB_SANDBOX__IAF__OUTAGE=true``,
``G2BHUB_SANDBOX__SEED=7``. The keys below are sandbox keys, not secrets: the twins exist so that
a connector differs from production only by endpoint and key.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.sandbox.faults import FaultSettings
from connectors.sandbox.generator import DEFAULT_SEED

__all__ = ["DEFAULT_API_KEYS", "SYSTEM_PREFIXES", "PpsTwinSettings", "SandboxConfig", "TwinSettings"]

# Twin name -> mount path on the combined sandbox server.
SYSTEM_PREFIXES: dict[str, str] = {
    "vies": "/vies",
    "nts": "/nts",
    "gleif": "/gleif",
    "companies_house": "/companies-house",
    "iaf": "/iaf",
    "national_certs": "/national-certs",
    "pps": "/pps",
}


# Keys the keyed twins accept unless configured otherwise; VIES, GLEIF and the national registry
# need none, as their real counterparts.
DEFAULT_API_KEYS: dict[str, str] = {
    "nts": "sandbox-nts-key",
    "companies_house": "sandbox-ch-key",
    "iaf": "sandbox-iaf-key",
    # Shaped like a portal-issued key: its decoded form has "+", "/" and "=", which must be encoded once.
    "pps": "sandbox-pps+key/0123456789abcdef==",
}


class TwinSettings(FaultSettings):
    """Fault knobs plus the credential the twin accepts (None: the built-in sandbox key, if any)."""

    api_key: str | None = None


class PpsTwinSettings(TwinSettings):
    """The PPS twin also picks how its list answers carry ``items``: ``{"item": [...]}`` or a list."""

    items_shape: Literal["item", "list"] = "item"


class SandboxConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="G2BHUB_SANDBOX__", env_nested_delimiter="__", extra="ignore")

    seed: int = DEFAULT_SEED
    suppliers: int = Field(300, ge=20, le=100_000)
    as_of: date | None = None
    host: str = "127.0.0.1"
    port: int = Field(8900, ge=0, le=65535)
    max_body_bytes: int = Field(256 * 1024, ge=1024)

    vies: TwinSettings = TwinSettings()
    nts: TwinSettings = TwinSettings()
    gleif: TwinSettings = TwinSettings()
    companies_house: TwinSettings = TwinSettings()
    iaf: TwinSettings = TwinSettings()
    national_certs: TwinSettings = TwinSettings()
    pps: PpsTwinSettings = PpsTwinSettings()

    def twin(self, name: str) -> TwinSettings:
        settings: TwinSettings = getattr(self, name)
        return settings

    def api_key(self, name: str) -> str | None:
        """The key twin ``name`` accepts: configured, else its sandbox default, else None (no auth)."""
        return self.twin(name).api_key or DEFAULT_API_KEYS.get(name)
