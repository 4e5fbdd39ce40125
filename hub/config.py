"""Layered configuration: ``config/default.yaml`` < file named by ``G2BHUB_CONFIG`` < ``G2BHUB_*`` env.

Secrets (database passwords inside URLs, API keys of upstream systems) are ``SecretStr`` or are
redacted by :func:`redact_url` before they reach a log line.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_CONFIG_FILE = Path(__file__).resolve().parent.parent / "config" / "default.yaml"


class DatabaseSettings(BaseModel):
    url: str = "sqlite:///./var/g2bhub.db"
    echo: bool = False
    pool_size: int = 10
    connect_timeout_s: int = Field(5, ge=1, le=300)
    # None: migrate at start only on SQLite (one process owns the file); on a shared PostgreSQL run
    # `g2bhub db upgrade` once instead, so N API processes never race each other's migrations.
    migrate_on_start: bool | None = None

    def model_post_init(self, _context: Any) -> None:
        if self.migrate_on_start is None:
            self.migrate_on_start = self.url.startswith("sqlite")


class BrokerSettings(BaseModel):
    kind: Literal["inprocess", "rabbitmq"] = "inprocess"
    url: str = "amqp://guest:guest@127.0.0.1:5672/"
    namespace: str = Field("g2bhub", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    prefetch: int = Field(32, ge=1, le=10_000)
    delivery_limit: int = Field(5, ge=1, le=1000)
    heartbeat_s: int = 30
    blocked_connection_timeout_s: float = 60.0
    connection_attempts: int = 3
    retry_delay_s: float = 1.0
    reconnect_max_backoff_s: float = 30.0


class RelaySettings(BaseModel):
    batch_size: int = Field(200, ge=1, le=10_000)
    poll_interval_s: float = Field(0.2, gt=0)
    confirm_timeout_s: float = Field(30.0, gt=0)


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str = "http://127.0.0.1:8000"
    max_body_bytes: int = 5 * 1024 * 1024


class LoggingSettings(BaseModel):
    level: str = "INFO"
    json_format: bool = Field(True, alias="json")

    model_config = {"populate_by_name": True}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Override wins key by key; nested mappings merge instead of replacing each other."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: top level must be a mapping")
    return loaded


class YamlFilesSource(PydanticBaseSettingsSource):
    """Defaults file, then the file named by ``G2BHUB_CONFIG``, merged key by key."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if DEFAULT_CONFIG_FILE.exists():
            data = _read_yaml(DEFAULT_CONFIG_FILE)
        extra = os.environ.get("G2BHUB_CONFIG")
        if extra:
            data = deep_merge(data, _read_yaml(Path(extra)))
        return data


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="G2BHUB_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    database: DatabaseSettings = DatabaseSettings()
    broker: BrokerSettings = BrokerSettings()
    relay: RelaySettings = RelaySettings()
    api: ApiSettings = ApiSettings()
    logging: LoggingSettings = LoggingSettings()
    # Free-form here, validated by the code that owns the section (connectors, syndication).
    connectors: dict[str, Any] = {}
    # Register-once timing and scheme → system mapping (config/suppliers.yaml holds the defaults).
    suppliers: dict[str, Any] = {}
    syndication: dict[str, Any] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: explicit kwargs > env > secrets dir > YAML files.
        return (init_settings, env_settings, file_secret_settings, YamlFilesSource(settings_cls))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def redact_url(url: str) -> str:
    """Hide the password of a URL so it can be logged."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{netloc}", parts.path, parts.query, parts.fragment))
