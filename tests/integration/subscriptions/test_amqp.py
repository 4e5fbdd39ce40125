"""The AMQP channel on real RabbitMQ: each subscriber queue receives exactly what its filter selects,
in notice order — routable filters by exchange bindings, finer ones by direct publication. With the
in-process broker the channel is refused with 422."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pika
import pytest

from tests.support.subscriptions import API, Env, drain, new_notice_id
from tests.support.waiting import eventually


def subscribe(env: Env, flt: dict[str, Any]) -> dict[str, Any]:
    response = env.client.post(f"{API}/subscriptions", headers=env.auth,
                               json={"filter": flt, "channel": {"type": "amqp"}})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["secret"] is None
    return body["subscription"]["channel"]  # type: ignore[no-any-return]


def test_amqp_queues_receive_exactly_what_their_filters_select(make_env: Callable[..., Env], backend: str) -> None:
    env = make_env()
    if backend != "postgres-rabbitmq":
        response = env.client.post(f"{API}/subscriptions", headers=env.auth,
                                   json={"filter": {}, "channel": {"type": "amqp"}})
        assert response.status_code == 422 and "RabbitMQ" in response.text
        return
    works_seoul = subscribe(env, {"categories": ["works"], "regions": ["KR-11"]})
    korea = subscribe(env, {"regions": ["KR"]})
    big_roads = subscribe(env, {"classifications": ["45"], "min_value": "1000000000"})
    assert works_seoul["binding_keys"] == ["notice.works.*.KR-11"] and korea["binding_keys"] == ["notice.*.KR.*"]
    assert big_roads["binding_keys"] is None

    p = env.publisher
    n1, n2, n3, n4, last = (new_notice_id() for _ in range(5))
    p.publish(n1, 1)  # works, KR-11, CPV 45, 1.25e9: all three
    p.publish(n2, 1, delivery_region="KR-26", estimated_value="100000000")  # korea only
    p.publish(n3, 1, category="goods", classifications=[{"scheme": "CPV", "code": "30213000"}])  # korea only
    p.publish(n4, 1, delivery_region=None)  # big_roads only (no region)
    p.publish(n1, 2, kind="amendment")
    p.publish(n1, 3, kind="cancellation")
    url = env.hub.settings.broker.url
    got: dict[str, list[dict[str, Any]]] = {c["queue"]: [] for c in (works_seoul, korea, big_roads)}

    def seen(channel: dict[str, Any]) -> list[tuple[str, int]]:
        drain(url, channel["queue"], got[channel["queue"]])
        return [(m["data"]["notice_id"], m["data"]["version"]) for m in got[channel["queue"]]]

    expected = {
        "works_seoul": (works_seoul, [(n1, 1), (n1, 2), (n1, 3)]),
        "korea": (korea, [(n1, 1), (n2, 1), (n3, 1), (n1, 2), (n1, 3)]),
        "big_roads": (big_roads, [(n1, 1), (n4, 1), (n1, 2), (n1, 3)]),
    }
    for name, (channel, wanted) in expected.items():
        def complete(c: dict[str, Any] = channel, w: list[tuple[str, int]] = wanted) -> bool:
            return sorted(seen(c)) == sorted(w)

        eventually(complete, timeout=30, what=name)
        assert [v for n, v in seen(channel) if n == n1] == [1, 2, 3]  # versions of a notice in order
    # Nothing else: a notice published after all that reaches every queue, and nothing arrived meanwhile.
    p.publish(last, 1)
    for name, (channel, wanted) in expected.items():
        def sentinel(c: dict[str, Any] = channel) -> bool:
            return (last, 1) in seen(c)

        eventually(sentinel, timeout=30, what=f"{name} sentinel")
        assert sorted(seen(channel)) == sorted([*wanted, (last, 1)])


@pytest.mark.parametrize("backend", ["postgres-rabbitmq"])
def test_deleting_an_amqp_subscription_deletes_its_queue(make_env: Callable[..., Env], backend: str) -> None:
    env = make_env()
    channel = subscribe(env, {"regions": ["KR-11"]})
    sid = env.client.get(f"{API}/subscriptions", headers=env.auth).json()[0]["id"]
    assert env.client.delete(f"{API}/subscriptions/{sid}", headers=env.auth).status_code == 204
    assert env.client.get(f"{API}/subscriptions/{sid}", headers=env.auth).status_code == 404
    connection = pika.BlockingConnection(pika.URLParameters(env.hub.settings.broker.url))
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            connection.channel().queue_declare(channel["queue"], passive=True)
    finally:
        if connection.is_open:
            connection.close()


@pytest.mark.parametrize("backend", ["postgres-rabbitmq"])
def test_a_message_the_subscriber_keeps_rejecting_is_parked_not_lost(make_env: Callable[..., Env],
                                                                     backend: str) -> None:
    env = make_env(amqp_queue_delivery_limit=2)
    channel = subscribe(env, {"classifications": ["45"]})  # not routable: published straight to the queue
    assert channel["dead_letter_queue"] == channel["queue"] + ".dlq"
    notice = new_notice_id()
    env.publisher.publish(notice, 1)
    connection = pika.BlockingConnection(pika.URLParameters(env.hub.settings.broker.url))
    try:
        amqp = connection.channel()

        def reject_once() -> bool:
            method, _properties, _body = amqp.basic_get(channel["queue"])
            if method is not None:
                amqp.basic_nack(method.delivery_tag, requeue=True)
            return amqp.queue_declare(channel["dead_letter_queue"], passive=True).method.message_count == 1

        eventually(reject_once, timeout=30, what="the rejected message in the dead-letter queue")
        method, _properties, body = amqp.basic_get(channel["dead_letter_queue"], auto_ack=True)
        assert method is not None and json.loads(body)["data"]["notice_id"] == notice
        assert amqp.queue_declare(channel["queue"], passive=True).method.message_count == 0
    finally:
        if connection.is_open:
            connection.close()


@pytest.mark.parametrize("backend", ["postgres-rabbitmq"])
def test_changing_the_filter_rebinds_without_missing_or_leaking(make_env: Callable[..., Env], backend: str) -> None:
    env = make_env()
    channel = subscribe(env, {"regions": ["KR-11"]})
    assert channel["binding_keys"]  # category/region only: served by the exchange binding
    sid = env.client.get(f"{API}/subscriptions", headers=env.auth).json()[0]["id"]
    url = env.hub.settings.broker.url
    got: list[dict[str, Any]] = []

    def seen() -> list[tuple[str, int]]:
        return [(m["data"]["notice_id"], m["data"]["version"]) for m in drain(url, channel["queue"], got)]

    def publish(region: str, **overrides: Any) -> str:
        notice = new_notice_id()
        env.publisher.publish(notice, 1, delivery_region=region, **overrides)
        return notice

    # to Busan, still routable: the Seoul binding goes, the Busan one comes
    moved = env.client.patch(f"{API}/subscriptions/{sid}", headers=env.auth, json={"filter": {"regions": ["KR-26"]}})
    assert moved.status_code == 200 and moved.json()["channel"]["binding_keys"] != channel["binding_keys"]
    seoul, busan = publish("KR-11"), publish("KR-26")
    eventually(lambda: (busan, 1) in seen(), timeout=30, what="the Busan notice")

    # finer (a classification prefix): no longer routable, so the hub publishes matches straight in
    finer = env.client.patch(f"{API}/subscriptions/{sid}", headers=env.auth,
                             json={"filter": {"regions": ["KR-26"], "classifications": ["4523"]}})
    assert finer.status_code == 200 and finer.json()["channel"]["binding_keys"] is None
    roads = publish("KR-26")  # support.content's default classification is CPV 45233222
    elsewhere = publish("KR-26", classifications=[{"scheme": "CPV", "code": "30192000"}])
    eventually(lambda: (roads, 1) in seen(), timeout=30, what="the matching Busan road notice")
    sentinel = publish("KR-26")
    eventually(lambda: (sentinel, 1) in seen(), timeout=30, what="a last matching notice")
    assert seen() == [(busan, 1), (roads, 1), (sentinel, 1)]
    assert (seoul, 1) not in seen() and (elsewhere, 1) not in seen()
