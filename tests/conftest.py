"""Shared fixtures. Backends: SQLite + in-process broker always; PostgreSQL and RabbitMQ when
G2BHUB_TEST_DATABASE_URL / G2BHUB_TEST_AMQP_URL are set. With CI=true a missing service (or the OCDS
schemas) fails the test instead of skipping it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hub.config import Settings
from hub.spine.unit_of_work import strict_unit_scopes
from tests.support.environment import service_missing

if TYPE_CHECKING:
    from connectors.sandbox.server import SandboxServer

# A request that opens a unit of work while holding another fails the test that drives it.
strict_unit_scopes(True)

DATABASE_URL = os.environ.get("G2BHUB_TEST_DATABASE_URL")
AMQP_URL = os.environ.get("G2BHUB_TEST_AMQP_URL")


def _postgres_reachable(url: str) -> str | None:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3):
            return None
    except Exception as exc:
        return repr(exc)


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    if not DATABASE_URL:
        service_missing("PostgreSQL", "G2BHUB_TEST_DATABASE_URL is not set")
    assert DATABASE_URL
    problem = _postgres_reachable(DATABASE_URL)
    if problem:
        service_missing("PostgreSQL", problem)
    return DATABASE_URL


@pytest.fixture(scope="session")
def amqp_url() -> str:
    if not AMQP_URL:
        service_missing("RabbitMQ", "G2BHUB_TEST_AMQP_URL is not set")
    assert AMQP_URL
    import pika

    try:
        pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
    except Exception as exc:
        service_missing("RabbitMQ", repr(exc))
    return AMQP_URL


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A throw-away database per test, so parallel runs and tests never see each other's rows."""
    from tests.support.db import throwaway_database

    with throwaway_database(postgres_server_url) as url:
        yield url


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    """The government-system twins on a free loopback port, one per test module (tests reset what they
    change through the twins' control endpoints)."""
    from connectors.sandbox.server import SandboxServer

    with SandboxServer() as server:
        yield server


@pytest.fixture(scope="session")
def ocds_schemas() -> Path:
    """The official OCDS schemas; skips without them, fails without them under CI=true."""
    from tests.support.ocds_validation import required_schema_dir

    return required_schema_dir()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.db'}"


BACKENDS = ["sqlite-inprocess", "postgres-rabbitmq"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings_factory(request: pytest.FixtureRequest, backend: str) -> Iterator[Callable[..., Settings]]:
    """Settings for the chosen backend; each test gets its own database and broker namespace."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    if backend == "sqlite-inprocess":
        db_url = request.getfixturevalue("sqlite_url")
        broker: dict[str, object] = {"kind": "inprocess", "namespace": namespace}
    else:
        db_url = request.getfixturevalue("postgres_url")
        broker = {"kind": "rabbitmq", "url": request.getfixturevalue("amqp_url"), "namespace": namespace}
    made: list[Settings] = []

    def make(**overrides: object) -> Settings:
        data: dict[str, object] = {
            "database": {"url": db_url},
            "broker": {**broker, "delivery_limit": 3, "reconnect_max_backoff_s": 2.0},
            "relay": {"poll_interval_s": 0.05, "confirm_timeout_s": 10.0},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}  # type: ignore[dict-item]
            else:
                data[key] = value
        settings = Settings(**data)  # type: ignore[arg-type]
        made.append(settings)
        return settings

    yield make
    for settings in made:
        if settings.broker.kind == "rabbitmq":
            try:
                from hub.spine.brokers.rabbitmq import delete_topology

                delete_topology(settings.broker)
            except Exception:
                pass
