"""The ``make_env`` fixture: a hub on the chosen backend with a running worker, its API, a fake notice
reader and loopback webhook receivers (see :class:`tests.support.subscriptions.Env`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.bootstrap import bootstrap
from hub.config import Settings
from tests.support.fakes import InMemoryNoticeReader
from tests.support.subscriptions import FAST, Env, Publisher, agency_key


@pytest.fixture
def make_env(settings_factory: Callable[..., Settings]) -> Iterator[Callable[..., Env]]:
    made: list[Env] = []

    def make(**syndication: Any) -> Env:
        reader = InMemoryNoticeReader()
        hub = bootstrap(settings_factory(syndication={**FAST, **syndication}), migrate=True,
                        dependencies={"notice_reader": reader})
        _, key = agency_key(hub)
        client = TestClient(create_app(hub=hub))
        client.__enter__()
        hub.make_worker().start()
        env = Env(hub, client, Publisher(hub, reader), key, [])
        made.append(env)
        return env

    yield make
    for env in made:
        env.client.__exit__(None, None, None)
        env.hub.close()
        for receiver in env.receivers:
            receiver.close()
