"""Register once through the HTTP API, with a running worker (relay, consumers, credential scheduler),
on SQLite + in-process broker and on PostgreSQL + RabbitMQ: register → credentials with provenance,
an upstream outage → pending → verified after recovery, a status change at the source → credential
changed event in the audit trail; validation, access control and readiness."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from connectors.sandbox.server import SandboxServer
from hub.api.app import create_app
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.spine.tables import AuditRow
from tests.support.api import API, bearer
from tests.support.control import approve_control
from tests.support.sandbox import FAST_SUPPLIERS, connector_overrides, control, full_identifiers, outage, reset
from tests.support.waiting import eventually


@dataclass
class Client:
    hub: Hub
    http: TestClient
    operator_key: str

    def org(self, kind: str) -> tuple[str, str]:
        response = self.http.post(f"{API}/orgs", json={"name": f"{kind} {uuid.uuid4().hex[:6]}", "kind": kind},
                                  headers=bearer(self.operator_key))
        assert response.status_code == 201, response.text
        body = response.json()
        return body["organisation"]["id"], body["api_key"]

    def audit_types(self, subject_org: str) -> list[str]:
        with self.hub.session_factory() as session:
            rows = session.scalars(select(AuditRow).where(AuditRow.subject_org_id == subject_org))
            return [r.event_type for r in rows]


@pytest.fixture
def client(sandbox: SandboxServer, settings_factory: Callable[..., Settings]) -> Iterator[Client]:
    reset(sandbox)
    settings = settings_factory(connectors=connector_overrides(sandbox), suppliers=FAST_SUPPLIERS)
    hub = bootstrap(settings, migrate=True)
    _, issued = hub.bus.handle(CreateOrganisation(name="Operations", kind=OrgKind.OPERATOR))
    worker = hub.make_worker()
    worker.start()
    try:
        with TestClient(create_app(hub=hub)) as http:
            yield Client(hub, http, issued.plaintext)
    finally:
        hub.close()
        reset(sandbox)


def by_system(body: dict[str, Any]) -> dict[str, str]:
    return {f["system"]: f["state"] for f in body["fetches"]}


def test_register_outage_recovery_and_change(client: Client, sandbox: SandboxServer) -> None:
    org_id, key = client.org("supplier")
    ids = full_identifiers(sandbox)
    outage(sandbox, "gleif")
    response = client.http.post(f"{API}/suppliers", json={"identifiers": ids, "consent": True,
                                                          "legal_name": "Hanbit"}, headers=bearer(key))
    assert response.status_code == 201, response.text
    body = response.json()
    supplier_id = body["id"]
    assert response.headers["location"] == f"{API}/suppliers/{supplier_id}"
    assert body["org_id"] == org_id and body["consent"]["text_version"]
    states = by_system(body)
    assert states.pop("gleif") == "pending"
    assert set(states.values()) == {"verified"} and len(states) == 5
    tax = next(c for c in body["credentials"] if c["type"] == "tax_status")
    assert tax["status"] == "active" and tax["fetch_state"] == "verified"
    prov = tax["provenance"]
    assert prov["source"] == "nts" and prov["raw_sha256"] and prov["response_sha256"] and prov["evidence_pointer"]
    raw = client.http.get(prov["raw_url"], headers=bearer(key))
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("application/json")
    # RFC 9530: the SHA-256 of the bytes, base64 in a structured-field byte sequence; no legacy Digest
    expected = base64.b64encode(hashlib.sha256(raw.content).digest()).decode()
    assert raw.headers["repr-digest"] == f"sha-256=:{expected}:" and "digest" not in raw.headers
    vies = next(c for c in body["credentials"] if c["system"] == "vies")
    raw = client.http.get(vies["provenance"]["raw_url"], headers=bearer(key))
    assert "xml" in raw.headers["content-type"] and raw.content.startswith(b"<")
    # GLEIF is down: the legal name is the next registry's (Companies House), not the declared one
    house = next(c for c in body["credentials"] if c["system"] == "companies_house")
    assert house["attributes"]["company_name"] and body["legal_name"] == house["attributes"]["company_name"]

    # same identifiers again: the existing supplier, not a second one
    again = client.http.post(f"{API}/suppliers", json={"identifiers": ids, "consent": True}, headers=bearer(key))
    assert again.status_code == 200 and again.json()["id"] == supplier_id

    outage(sandbox, "gleif", on=False)

    def gleif_verified() -> bool:
        read = client.http.get(f"{API}/suppliers/{supplier_id}", headers=bearer(key)).json()
        return by_system(read)["gleif"] == "verified"

    eventually(gleif_verified, timeout=30, what="the scheduler to verify gleif after recovery")
    read = client.http.get(f"{API}/suppliers/{supplier_id}", headers=bearer(key)).json()
    lei = next(c for c in read["credentials"] if c["system"] == "gleif")
    assert lei["attributes"]["legal_name"] and read["legal_name"] == lei["attributes"]["legal_name"]
    listed = client.http.get(f"{API}/suppliers", headers=bearer(key)).json()
    assert [s["legal_name"] for s in listed if s["id"] == supplier_id] == [lei["attributes"]["legal_name"]]

    control(sandbox, "nts", f"records/{ids['kr_brn']}", "PATCH", {"b_stt_cd": "03", "end_dt": "20250101"})
    refreshed = client.http.post(f"{API}/suppliers/{supplier_id}/refresh", headers=bearer(key))
    assert refreshed.status_code == 200, refreshed.text
    tax = next(c for c in refreshed.json()["credentials"] if c["type"] == "tax_status")
    assert tax["status"] == "closed"
    history = client.http.get(f"{API}/suppliers/{supplier_id}/credentials/{tax['id']}/versions", headers=bearer(key))
    assert [v["status"] for v in history.json()] == ["closed", "active"]
    assert [v["change"] for v in history.json()] == ["changed", "new"]

    eventually(lambda: "CredentialChanged" in client.audit_types(org_id), timeout=30,
               what="the credential change in the audit trail")
    types = set(client.audit_types(org_id))
    assert {"SupplierRegistered", "CredentialVerified", "CredentialFetchFailed"} <= types
    with client.hub.session_factory() as session:
        row = session.scalars(select(AuditRow).where(AuditRow.event_type == "CredentialChanged",
                                                     AuditRow.subject_org_id == org_id)).first()
        assert row is not None
        assert row.data["before"]["status"] == "active" and row.data["after"]["status"] == "closed"

    ready = client.http.get("/readyz").json()
    assert ready["checks"]["connectors"]["status"] == "ok"
    assert ready["checks"]["connectors"]["breakers"]["nts"] == "closed"


def test_validation_and_access(client: Client, sandbox: SandboxServer) -> None:
    _, key = client.org("supplier")
    _, other_key = client.org("supplier")
    institution_id, institution_key = client.org("institution")
    bad = client.http.post(f"{API}/suppliers", json={"identifiers": {"kr_brn": "1157750732"}, "consent": True},
                           headers=bearer(key))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "#/body/identifiers/kr_brn"
    no_consent = client.http.post(f"{API}/suppliers", json={"identifiers": {"kr_brn": "1157750731"}},
                                  headers=bearer(key))
    assert no_consent.status_code == 422 and no_consent.json()["errors"][0]["pointer"] == "#/body/consent"
    not_a_supplier = client.http.post(f"{API}/suppliers", json={"identifiers": {"lei": "x"}, "consent": True},
                                      headers=bearer(institution_key))
    assert not_a_supplier.status_code == 403

    ids = full_identifiers(sandbox, skip=1)
    created = client.http.post(f"{API}/suppliers", json={"identifiers": {"lei": ids["lei"]}, "consent": True},
                               headers=bearer(key))
    assert created.status_code == 201
    sid = created.json()["id"]
    paths = [f"{API}/suppliers/{sid}", f"{API}/suppliers/{sid}/credentials?include=history"]
    for path in paths:
        assert client.http.get(path, headers=bearer(key)).status_code == 200
        assert client.http.get(path, headers=bearer(client.operator_key)).status_code == 200
        assert client.http.get(path, headers=bearer(other_key)).status_code == 404
        assert client.http.get(path, headers=bearer(institution_key)).status_code == 404
    assert client.http.post(f"{API}/suppliers/{sid}/refresh", headers=bearer(other_key)).status_code == 404
    assert client.http.post(f"{API}/suppliers/{sid}/grants/{institution_id}",
                            headers=bearer(other_key)).status_code == 404
    assert client.http.post(f"{API}/suppliers/{sid}/grants/{institution_id}", headers=bearer(key)).status_code == 201
    for path in paths:
        assert client.http.get(path, headers=bearer(institution_key)).status_code == 200
    # control of the LEI not proven yet: the granted institution sees the supplier, not its credentials
    assert client.http.get(paths[1], headers=bearer(institution_key)).json() == []
    approve_control(client.http, client.operator_key, sid)
    listed = client.http.get(f"{API}/suppliers", headers=bearer(institution_key)).json()
    assert [s["id"] for s in listed] == [sid]
    assert [s["id"] for s in client.http.get(f"{API}/suppliers", headers=bearer(other_key)).json()] == []
    history = client.http.get(paths[1], headers=bearer(institution_key)).json()
    assert history[0]["history"][0]["raw_url"]
    assert client.http.delete(f"{API}/suppliers/{sid}/grants/{institution_id}",
                              headers=bearer(key)).status_code == 204
    assert client.http.get(paths[0], headers=bearer(institution_key)).status_code == 404


def test_eligibility_answers_per_requirement_with_evidence(client: Client, sandbox: SandboxServer) -> None:
    _, key = client.org("supplier")
    institution_id, institution_key = client.org("institution")
    _, agency_key = client.org("agency")
    ids = full_identifiers(sandbox, skip=2)
    outage(sandbox, "gleif")  # the LEI credential stays pending: its requirement must come back unknown
    created = client.http.post(f"{API}/suppliers", json={"identifiers": ids, "consent": True}, headers=bearer(key))
    assert created.status_code == 201, created.text
    supplier = created.json()
    tax = next(c for c in supplier["credentials"] if c["type"] == "tax_status")
    approve_control(client.http, client.operator_key, supplier["id"])  # proof of control (operator, by hand)
    query = {"requirements": [{"kind": "tax_status", "status": "active", "id": "tax"}, {"kind": "lei_valid"}]}
    url = f"{API}/suppliers/{supplier['id']}/eligibility"

    assert client.http.post(url, json=query, headers=bearer(institution_key)).status_code == 404  # no grant
    assert client.http.post(url, json=query, headers=bearer(agency_key)).status_code == 403  # no scope
    assert client.http.post(f"{API}/suppliers/{supplier['id']}/grants/{institution_id}",
                            headers=bearer(key)).status_code == 201

    answer = client.http.post(url, json=query, headers=bearer(institution_key))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["supplier_id"] == supplier["id"] and body["pending_systems"] == ["gleif"]
    tax_verdict, lei_verdict = body["requirements"]
    assert tax_verdict["id"] == "tax"
    assert tax_verdict["verdict"] == ("met" if tax["status"] == "active" else "not_met")
    [cited] = [c for c in tax_verdict["credentials"] if c["decisive"]]
    assert cited["source"] == "nts" and cited["status"] == tax["status"]
    assert cited["evidence"]["response_sha256"] == tax["provenance"]["response_sha256"]
    assert lei_verdict["verdict"] == "unknown" and "pending" in lei_verdict["reason"]
    assert body["verdict"] in {"unknown", "not_met"}  # never met while the LEI is unknown

    bad = client.http.post(url, json={"requirements": [{"kind": "certificate", "scheme": "ISO 99999"}]},
                           headers=bearer(institution_key))
    assert bad.status_code == 422
    assert [e["pointer"] for e in bad.json()["errors"]] == ["#/body/requirements/0/scheme"]

    # GLEIF back: a refresh brings the LEI in, and now every system has answered for every requirement
    outage(sandbox, "gleif", on=False)
    refreshed = client.http.post(f"{API}/suppliers/{supplier['id']}/refresh", headers=bearer(key)).json()
    assert set(by_system(refreshed).values()) == {"verified"}
    lei = next(c for c in refreshed["credentials"] if c["type"] == "lei_registration")
    every = {"requirements": [{"kind": "tax_status", "status": "active"}, {"kind": "lei_valid"},
                              {"kind": "vat_registered"}, {"kind": "company_active"}]}
    answer = client.http.post(url, json=every, headers=bearer(institution_key)).json()
    assert answer["pending_systems"] == []
    verdicts = [r["verdict"] for r in answer["requirements"]]
    assert "unknown" not in verdicts, answer
    assert verdicts[1] == ("met" if lei["status"] == "issued" and lei["attributes"]["entity_status"] == "active"
                           else "not_met")
