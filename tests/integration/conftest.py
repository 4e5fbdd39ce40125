"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hub.bootstrap import Hub, bootstrap
from hub.config import Settings


@pytest.fixture
def make_hub(settings_factory: Callable[..., Settings]) -> Iterator[Callable[..., Hub]]:
    hubs: list[Hub] = []

    def make(**kwargs: Any) -> Hub:
        hub = bootstrap(settings_factory(), migrate=True, **kwargs)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.close()
