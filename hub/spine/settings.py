"""The spine's sections of the hub's settings (``database``, ``broker``, ``relay``, ``logging``).

They live beside the code that reads them, so the spine depends on nothing above it; ``hub.config``
composes them with the flows' sections into the one ``Settings``.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DEFAULT_REDACT_QUERY_PARAMS",
    "BrokerSettings",
    "DatabaseSettings",
    "LoggingSettings",
    "RelaySettings",
    "Section",
    "redact_url",
]


class Section(BaseModel):
    # An unknown key is a typo that would otherwise be ignored in silence.
    model_config = ConfigDict(extra="forbid")


# The databases the hub runs on (its migrations and locking are written for these two).
SUPPORTED_DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgres", "postgresql+psycopg")


class DatabaseSettings(Section):
    url: str = "sqlite:///./var/g2bhub.db"
    echo: bool = False
    pool_size: int = Field(10, ge=1, le=1000)
    connect_timeout_s: int = Field(5, ge=1, le=300)
    # SQLite: how long a writer waits for the one write lock before "database is locked".
    sqlite_busy_timeout_s: float = Field(30.0, gt=0, le=600)
    # None: migrate at start only on SQLite (one process owns the file); on a shared PostgreSQL run
    # `g2bhub db upgrade` once instead, so N API processes never race each other's migrations.
    migrate_on_start: bool | None = None

    @field_validator("url")
    @classmethod
    def _supported_database(cls, url: str) -> str:
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in SUPPORTED_DATABASE_SCHEMES:
            shown = f"{scheme}://" if scheme else repr(redact_url(url))
            raise ValueError(f"{shown} is not a supported database: use sqlite:///PATH or "
                             "postgresql://USER:PASSWORD@HOST:PORT/NAME (postgresql+psycopg:// also works)")
        return url

    def model_post_init(self, _context: Any) -> None:
        if self.migrate_on_start is None:
            self.migrate_on_start = self.url.startswith("sqlite")


class BrokerSettings(Section):
    kind: Literal["inprocess", "rabbitmq"] = "inprocess"
    url: str = "amqp://guest:guest@127.0.0.1:5672/"
    namespace: str = Field("g2bhub", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    prefetch: int = Field(32, ge=1, le=10_000)
    delivery_limit: int = Field(5, ge=1, le=1000)
    heartbeat_s: int = Field(30, ge=0, le=3600)  # 0: no heartbeats (pika's meaning)
    blocked_connection_timeout_s: float = Field(60.0, gt=0)
    connection_attempts: int = Field(3, ge=1, le=100)
    retry_delay_s: float = Field(1.0, ge=0)
    reconnect_max_backoff_s: float = Field(30.0, gt=0)


class RelaySettings(Section):
    batch_size: int = Field(200, ge=1, le=10_000)
    poll_interval_s: float = Field(0.2, gt=0)
    confirm_timeout_s: float = Field(30.0, gt=0)


# Query parameters whose values are secrets wherever a URL is shown (logs, ``config show``), compared
# without regard to case: upstream keys (NTS ``serviceKey``), tokens, passwords in database URLs.
DEFAULT_REDACT_QUERY_PARAMS = (
    "serviceKey", "api_key", "apikey", "api-key", "key", "token", "access_token", "refresh_token",
    "id_token", "client_secret", "secret", "signature", "sig", "password", "passwd", "pwd", "sslpassword",
    "auth", "authorization", "crtfc_key",
)


class LoggingSettings(Section):
    level: str = "INFO"
    json_format: bool = Field(True, alias="json")
    # Levels of single loggers. httpx logs every request's URL at INFO, one line per upstream call:
    # WARNING keeps the log readable (the redacting filter hides the keys either way).
    levels: dict[str, str] = {"httpx": "WARNING", "httpcore": "WARNING"}
    # More query parameters to redact, for an upstream that takes its key under another name; added to
    # DEFAULT_REDACT_QUERY_PARAMS, which no configuration can drop.
    redact_query_params: list[str] = []

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("levels")
    @classmethod
    def _known_levels(cls, levels: dict[str, str]) -> dict[str, str]:
        for name, level in levels.items():
            if not isinstance(logging.getLevelName(level.upper()), int):
                raise ValueError(f"{name}: {level!r} is not a log level (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
        return levels

    @property
    def query_params(self) -> list[str]:
        """Every query parameter whose value is hidden: the defaults and the configured ones."""
        return [*DEFAULT_REDACT_QUERY_PARAMS, *self.redact_query_params]


_KEY_PARAM = re.compile(
    rf"(?i)((?:^|[&;])(?:{'|'.join(re.escape(name) for name in DEFAULT_REDACT_QUERY_PARAMS)})=)[^&;#]*")


def redact_url(url: str) -> str:
    """Hide the password of a URL and the values of its key parameters (``?sslpassword=***``), so it
    can be shown or logged."""
    parts = urlsplit(url)
    query = _KEY_PARAM.sub(r"\1***", parts.query)
    if parts.password is None:
        return url if query == parts.query else urlunsplit(parts._replace(query=query))
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{netloc}", parts.path, query, parts.fragment))

