"""Changing a subscription on SQLite (a file database, the real app, a running worker): a new webhook URL
and re-enabling after a 410 answer 200 while another reader keeps a read transaction open, as the API's
reads and authentications do. The busy timeout is 2 s, so a read that took the write lock would turn
these changes into 503 ``database is locked`` within seconds rather than stalling the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.bootstrap import bootstrap
from hub.config import Settings
from tests.support.fakes import InMemoryNoticeReader
from tests.support.receiver import Answer
from tests.support.subscriptions import API, FAST, Env, Publisher, agency_key, new_notice_id
from tests.support.waiting import eventually

pytestmark = pytest.mark.parametrize("backend", ["sqlite-inprocess"])


@pytest.fixture
def env(settings_factory: Callable[..., Settings]) -> Iterator[Env]:
    reader = InMemoryNoticeReader()
    hub = bootstrap(
        settings_factory(database={"sqlite_busy_timeout_s": 2}, syndication=FAST),
        migrate=True,
        dependencies={"notice_reader": reader},
    )
    _, key = agency_key(hub)
    made = Env(hub, TestClient(create_app(hub=hub)), Publisher(hub, reader), key, [])
    try:
        with made.client:
            hub.make_worker().start()
            yield made
    finally:
        hub.close()
        for receiver in made.receivers:
            receiver.close()


def changed(env: Env, sid: str, **body: Any) -> dict[str, Any]:
    """PATCH the subscription while another reader holds a read transaction open."""
    with env.hub.read_uow() as reader:
        assert reader.subscriptions.get(sid) is not None  # read: the snapshot is taken and held
        response: httpx.Response = env.client.patch(f"{API}/subscriptions/{sid}", headers=env.auth, json=body)
    assert "database is locked" not in response.text
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_new_webhook_url_is_taken_at_once(env: Env) -> None:
    old, new = env.receiver(), env.receiver()
    sid = env.subscribe_webhook(old)
    assert changed(env, sid, url=new.url)["channel"]["url"] == new.url
    new.secrets.extend(old.secrets)
    notice = new_notice_id()
    env.publisher.publish(notice, 1)
    eventually(lambda: len(new.delivered()) == 1, what="the notice at the new URL")
    assert old.received == [] and new.versions() == [(notice, 1)]
    shown = env.client.get(f"{API}/subscriptions/{sid}", headers=env.auth).json()
    assert shown["channel"]["url"] == new.url


def test_re_enabling_after_a_410_answers_200_and_catches_up(env: Env) -> None:
    receiver = env.receiver()
    receiver.default = Answer(410)
    sid = env.subscribe_webhook(receiver)
    first = new_notice_id()
    env.publisher.publish(first, 1)

    def status() -> str:
        return str(env.client.get(f"{API}/subscriptions/{sid}", headers=env.auth).json()["status"])

    eventually(lambda: status() == "disabled", what="disabled by the 410")
    receiver.default = Answer(200)
    second = new_notice_id()
    env.publisher.publish(second, 1)  # matched while disabled: kept for the catch-up

    assert changed(env, sid, status="active")["status"] == "active"
    eventually(
        lambda: [v for v in receiver.versions() if v[0] == second] == [(second, 1)],
        what="what was published while disabled",
    )
    assert status() == "active"
