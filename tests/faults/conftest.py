"""The fault tier's lab: a hub migrated on a throw-away PostgreSQL database and a fresh RabbitMQ
namespace, two ``g2bhub worker`` processes behind cuttable proxies, two webhook subscribers. Needs
G2BHUB_TEST_DATABASE_URL and G2BHUB_TEST_AMQP_URL: skips without them, fails without them in CI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.db import throwaway_database
from tests.support.faults import Lab


@pytest.fixture
def lab(postgres_server_url: str, amqp_url: str, tmp_path: Path) -> Iterator[Lab]:
    with throwaway_database(postgres_server_url) as database_url, \
            Lab(database_url, amqp_url, tmp_path, workers=2) as running:
        yield running
