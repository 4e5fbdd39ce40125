"""Batched webhook endpoints on both backends, over real loopback HTTP: the matcher collapses an
endpoint's matched subscriptions into one delivery per version, which the dispatcher sends in notice
order, retries, and disables on 410 like any other; every request is verified by the receiver with the
reference ``standardwebhooks`` verifier against the endpoint's secret."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hub.subscriptions.bulk_load import load_subscriptions
from tests.support.receiver import Answer, Receiver
from tests.support.subscriptions import API, Env, new_notice_id
from tests.support.waiting import eventually


def register(env: Env, receiver: Receiver) -> str:
    response = env.client.post(f"{API}/webhook-endpoints", headers=env.auth,
                               json={"name": "supplier alerts", "url": receiver.url, "batch": True})
    assert response.status_code == 201, response.text
    receiver.secrets.append(response.json()["secret"])
    return str(response.json()["endpoint"]["id"])


def on(env: Env, endpoint_id: str, flt: dict[str, Any]) -> str:
    response = env.client.post(f"{API}/webhook-endpoints/{endpoint_id}/subscriptions", headers=env.auth,
                               json={"filter": flt})
    assert response.status_code == 201, response.text
    channel = response.json()["channel"]
    assert (channel["type"], channel["endpoint_id"], channel["url"]) == ("endpoint", endpoint_id, None)
    return str(response.json()["id"])


def batches(receiver: Receiver) -> list[tuple[str, int, list[str]]]:
    return [(r.body["data"]["notice_id"], r.body["data"]["version"], r.body["subscription_ids"])
            for r in receiver.delivered()]


def test_one_signed_request_per_version_names_every_matched_subscription(make_env: Callable[..., Env]) -> None:
    env = make_env()
    alerts, agency = env.receiver(), env.receiver()
    endpoint = register(env, alerts)
    seoul = on(env, endpoint, {"regions": ["KR-11"]})
    works = on(env, endpoint, {"categories": ["works"]})
    busan = on(env, endpoint, {"regions": ["KR-26"]})
    own = env.subscribe_webhook(agency, {"regions": ["KR-11"]})
    notice = new_notice_id()
    env.publisher.publish(notice, 1)
    env.publisher.publish(notice, 2, kind="amendment", delivery_region="KR-26", category="goods")
    env.publisher.publish(notice, 3, kind="cancellation", delivery_region="KR-26", category="goods")
    eventually(lambda: len(alerts.delivered()) >= 3 and len(agency.delivered()) >= 3, what="three versions each")
    # Version 2 left Seoul and works, yet their subscribers still hear of it (as earlier recipients).
    assert batches(alerts) == [(notice, 1, sorted([seoul, works])), (notice, 2, sorted([busan, seoul, works])),
                               (notice, 3, sorted([busan, seoul, works]))]
    assert [r.body["type"] for r in alerts.delivered()] == ["notice.published", "notice.amended",
                                                            "notice.cancelled"]
    assert alerts.unverified == 0 and agency.unverified == 0
    assert agency.versions() == [(notice, 1), (notice, 2), (notice, 3)]
    assert all("subscription_ids" not in r.body for r in agency.delivered())
    # One delivery row per version, on the endpoint; none for the subscriptions on it.
    assert sorted(r.version for r in env.rows(endpoint)) == [1, 2, 3]
    assert env.rows(seoul) == [] and len(env.rows(own)) == 3
    log = env.client.get(f"{API}/webhook-endpoints/{endpoint}/deliveries", headers=env.auth).json()
    assert {d["webhook_id"] for d in log["items"]} == {r.webhook_id for r in alerts.delivered()}


def test_a_batch_is_retried_as_one_delivery_and_410_disables_the_endpoint(make_env: Callable[..., Env]) -> None:
    env = make_env()
    alerts = env.receiver()
    endpoint = register(env, alerts)
    first, second = on(env, endpoint, {}), on(env, endpoint, {})
    alerts.answer(Answer(500), Answer(503))
    notice = new_notice_id()
    env.publisher.publish(notice, 1)
    env.publisher.publish(notice, 2, kind="amendment", title="Corrected")
    eventually(lambda: len(alerts.delivered()) >= 2, what="both versions after two failures")
    assert batches(alerts) == [(notice, 1, sorted([first, second])), (notice, 2, sorted([first, second]))]
    assert len({r.webhook_id for r in alerts.received[:3]}) == 1  # the same delivery, tried three times
    eventually(lambda: all(r.status == "delivered" for r in env.rows(endpoint)), what="both recorded")
    assert {r.version: r.attempts for r in env.rows(endpoint)} == {1: 3, 2: 1}

    alerts.default = Answer(410)
    env.publisher.publish(new_notice_id(), 1)
    eventually(lambda: env.client.get(f"{API}/webhook-endpoints/{endpoint}",
                                      headers=env.auth).json()["status"] == "disabled", what="disabled by 410")
    alerts.default = Answer(200)
    later = new_notice_id()
    env.publisher.publish(later, 1)
    response = env.client.patch(f"{API}/webhook-endpoints/{endpoint}", headers=env.auth,
                                json={"status": "active", "catch_up": True})
    assert response.status_code == 200 and response.json()["status"] == "active", response.text
    eventually(lambda: (later, 1) in alerts.versions(), what="caught up after re-enabling")


def test_bulk_loaded_subscriptions_reach_a_running_matcher(make_env: Callable[..., Env]) -> None:
    env = make_env()
    alerts = env.receiver()
    endpoint = register(env, alerts)
    on(env, endpoint, {"regions": ["KR-49"]})
    warm = new_notice_id()
    env.publisher.publish(warm, 1, delivery_region="KR-49")
    eventually(lambda: (warm, 1) in alerts.versions(), what="warm-up: the worker's index is built before the load")
    lines = [json.dumps({"id": f"sup-{n:04d}", "filter": {"regions": ["KR-11" if n % 2 else "KR-26"]}})
             for n in range(1200)]
    with env.hub.uow() as uow:
        org = uow.subscriptions.get(endpoint)
        assert org is not None and org.org_id is not None
        assert load_subscriptions(uow, endpoint, org.org_id, lines, chunk=500) == 1200
        uow.commit()
    notice = new_notice_id()
    env.publisher.publish(notice, 1)  # KR-11: the odd ones
    eventually(lambda: (notice, 1) in alerts.versions(), what="the batch")
    [batch] = [r for r in alerts.delivered() if r.body["data"]["notice_id"] == notice]
    assert batch.body["subscription_ids"] == [f"sup-{n:04d}" for n in range(1, 1200, 2)]
    listed = env.client.get(f"{API}/webhook-endpoints/{endpoint}", headers=env.auth).json()
    assert listed["subscriptions"] == 1201
    page = env.client.get(f"{API}/webhook-endpoints/{endpoint}/subscriptions", headers=env.auth,
                          params={"limit": 2, "after": "sup-0009"}).json()
    assert [s["id"] for s in page["items"]] == ["sup-0010", "sup-0011"] and page["next_after"] == "sup-0011"
    # Deleting the endpoint deletes what is on it.
    assert env.client.delete(f"{API}/webhook-endpoints/{endpoint}", headers=env.auth).status_code == 204
    assert env.client.get(f"{API}/subscriptions/sup-0001", headers=env.auth).status_code == 404
