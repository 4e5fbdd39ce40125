"""Batched webhooks end to end with nothing faked: an agency registers an endpoint and puts
subscriptions on it through the API; notices published, amended and cancelled through the API reach
the endpoint as ONE request per version, verified by the sandbox receiver (``g2bhub sandbox
receiver``, the reference ``standardwebhooks`` verifier) and naming exactly the matched subscriptions."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.bootstrap import Hub, bootstrap
from hub.cli.webhook_receiver import WebhookReceiver
from hub.config import Settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from tests.e2e.test_publish_to_subscribers import publish_amend_cancel
from tests.support.api import API, bearer
from tests.support.subscriptions import FAST
from tests.support.waiting import eventually


@pytest.fixture
def running(settings_factory: Callable[..., Settings]) -> Iterator[tuple[Hub, TestClient]]:
    hub = bootstrap(settings_factory(syndication=FAST), migrate=True)
    hub.make_worker().start()
    try:
        with TestClient(create_app(hub=hub)) as client:
            yield hub, client
    finally:
        hub.close()


def key_for(hub: Hub, kind: OrgKind) -> str:
    _, issued = hub.bus.handle(CreateOrganisation(name=f"{kind} {uuid.uuid4().hex[:6]}", kind=kind))
    return issued.plaintext


def test_a_batched_endpoint_gets_one_verified_request_per_version_naming_its_subscriptions(
    running: tuple[Hub, TestClient],
) -> None:
    hub, client = running
    institution, agency = key_for(hub, OrgKind.INSTITUTION), key_for(hub, OrgKind.AGENCY)
    lines: list[str] = []
    placeholder = "whsec_" + "A" * 44  # replaced by the endpoint's secret once registered
    receiver = WebhookReceiver(placeholder, port=0, out=lines.append)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        registered = client.post(f"{API}/webhook-endpoints", headers=bearer(agency),
                                 json={"name": "supplier alerts", "url": receiver.url})
        assert registered.status_code == 201, registered.text
        assert registered.headers["cache-control"] == "no-store"
        endpoint = registered.json()["endpoint"]
        assert endpoint["batch"] is True and endpoint["status"] == "active"
        receiver.verifier = WebhookReceiver(registered.json()["secret"], port=0).verifier

        ids = []
        for flt in ({"categories": ["works"]}, {"regions": ["KR-11"]}, {"regions": ["KR-26"]}):
            made = client.post(f"{API}/webhook-endpoints/{endpoint['id']}/subscriptions", headers=bearer(agency),
                               json={"name": "supplier", "filter": flt})
            assert made.status_code == 201, made.text
            ids.append(made.json()["id"])
        works, seoul, _busan = ids
        # Not on the caller's list of subscriptions with a channel of their own; readable by id.
        assert client.get(f"{API}/subscriptions", headers=bearer(agency)).json() == []
        read = client.get(f"{API}/subscriptions/{seoul}", headers=bearer(agency)).json()
        assert read["channel"]["type"] == "endpoint"

        notice = publish_amend_cancel(client, institution)
        eventually(lambda: len([line for line in lines if line.startswith("verified")]) >= 3, timeout=30,
                   what="three verified batched deliveries")
        named = ",".join(sorted([works, seoul]))
        assert [line.split("  webhook-id")[0] for line in lines] == [
            f"verified  notice.published  notice {notice}  v1  subscriptions {named}",
            f"verified  notice.amended  notice {notice}  v2  subscriptions {named}",
            f"verified  notice.cancelled  notice {notice}  v3  subscriptions {named}",
        ]
        log = eventually(lambda: [d for d in client.get(f"{API}/webhook-endpoints/{endpoint['id']}/deliveries",
                                                          headers=bearer(agency)).json()["items"]
                                  if d["status"] == "delivered"] or None, what="recorded")
        assert {d["notice_id"] for d in log} == {notice}

        other = key_for(hub, OrgKind.AGENCY)  # another organisation sees nothing of it
        assert client.get(f"{API}/webhook-endpoints/{endpoint['id']}", headers=bearer(other)).status_code == 404
        refused = client.post(f"{API}/webhook-endpoints", headers=bearer(agency),
                              json={"url": "http://localhost:1/hook", "batch": False})
        assert refused.status_code == 422
        assert [e["pointer"] for e in refused.json()["errors"]] == ["#/body/batch"]
        unsafe = client.post(f"{API}/webhook-endpoints", headers=bearer(agency), json={"url": "ftp://x.example/"})
        assert unsafe.status_code == 422 and [e["field"] for e in unsafe.json()["errors"]] == ["url"], unsafe.text
    finally:
        receiver.close()
