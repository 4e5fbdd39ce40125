"""The ``suppliers`` section of the hub's settings (defaults in ``config/suppliers.yaml``).

Which systems an identifier is fetched from is data (a deployment adds a registry for a scheme without
touching Python); the timing knobs are here so tests and benchmarks shorten them instead of patching.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.suppliers.identifiers import SCHEMES

__all__ = ["SupplierSettings"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConsentSettings(_Strict):
    text_version: str = Field("2025-01", min_length=1, max_length=40)


class FetchSettings(_Strict):
    deadline_s: float = Field(20.0, gt=0)
    max_parallel: int = Field(32, ge=1, le=1000)
    lease_s: float = Field(120.0, gt=0)


class BackoffSettings(_Strict):
    initial_s: float = Field(30.0, ge=0)
    multiplier: float = Field(2.0, ge=1.0)
    max_s: float = Field(21600.0, ge=0)
    jitter_ratio: float = Field(0.2, ge=0, le=1)
    misconfigured_retry_s: float = Field(300.0, ge=0)


class FreshnessSettings(_Strict):
    refresh_margin_s: float = Field(172800.0, ge=0)
    refresh_margin_ratio: float = Field(0.25, ge=0, le=1)
    default_refresh_s: float = Field(604800.0, gt=0)
    not_found_recheck_s: float = Field(604800.0, gt=0)


class SchedulerSettings(_Strict):
    enabled: bool = True
    interval_s: float = Field(60.0, gt=0)
    max_claims_per_run: int = Field(1000, ge=1, le=100_000)


class ControlSettings(_Strict):
    """Proof of control of identifiers (docs/identifier-control.md)."""

    challenge_ttl_s: float = Field(600.0, gt=0, le=86400)
    # PEM files, or directories of *.pem / *.crt / *.cer files: the CAs whose certificates may prove an
    # identifier with a signature over a hub challenge. None configured: no X.509 proof can succeed.
    trust_anchors: list[Path] = []
    max_chain_depth: int = Field(4, ge=1, le=16)


class SupplierSettings(_Strict):
    applicable_systems: dict[str, list[str]]
    # Credential types with several records per subject (certificates) are told apart by this attribute.
    record_keys: dict[str, str] = {}
    consent: ConsentSettings = ConsentSettings()
    fetch: FetchSettings = FetchSettings()
    backoff: BackoffSettings = BackoffSettings()
    freshness: FreshnessSettings = FreshnessSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    control: ControlSettings = ControlSettings()

    @field_validator("applicable_systems")
    @classmethod
    def _known_schemes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = set(value) - set(SCHEMES)
        if unknown:
            raise ValueError(f"unknown identifier schemes {sorted(unknown)}; known: {sorted(SCHEMES)}")
        return value

    def only_systems(self, enabled: Collection[str]) -> SupplierSettings:
        """These settings with every system outside ``enabled`` dropped from ``applicable_systems``: a
        system switched off in its connector entry is simply not applicable, wherever it is listed."""
        kept = {scheme: [system for system in systems if system in enabled]
                for scheme, systems in self.applicable_systems.items()}
        return self.model_copy(update={"applicable_systems": kept})

    def systems_for(self, identifiers: dict[str, str]) -> list[tuple[str, str, str]]:
        """(system, scheme, identifier) for every system that applies to the given identifiers."""
        return [
            (system, scheme, value)
            for scheme, value in identifiers.items()
            for system in self.applicable_systems.get(scheme, [])
        ]
