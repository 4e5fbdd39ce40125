"""Upstream hygiene over real HTTP against the sandbox twins: a reply no mapping can read (a gateway's
HTML page answered with 200) leaves the slot ``pending`` with an error, never "verified, no
credentials"; a readable answer that holds nothing stays verified; a slot the source refused for good
(``failed_permanently``) comes back through the operator's CLI, the operator's API route and the
owner's refresh, each audited."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
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
from tests.support.sandbox import FAST_SUPPLIERS, connector_overrides, control, reset
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Hygiene:
    hub: Hub
    http: TestClient
    operator_key: str
    database_url: str
    sandbox: SandboxServer

    def supplier_org(self) -> str:
        response = self.http.post(f"{API}/orgs", json={"name": f"supplier {uuid.uuid4().hex[:6]}",
                                                       "kind": "supplier"}, headers=bearer(self.operator_key))
        assert response.status_code == 201, response.text
        return str(response.json()["api_key"])

    def register(self, key: str, brn: str) -> dict[str, Any]:
        response = self.http.post(f"{API}/suppliers", json={"identifiers": {"kr_brn": brn}, "consent": True},
                                  headers=bearer(key))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def read(self, supplier_id: str) -> dict[str, Any]:
        response = self.http.get(f"{API}/suppliers/{supplier_id}", headers=bearer(self.operator_key))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def slot(self, supplier_id: str, system: str = "national_certs") -> dict[str, Any]:
        return next(f for f in self.read(supplier_id)["fetches"] if f["system"] == system)

    def certificates(self, supplier_id: str) -> list[dict[str, Any]]:
        return [c for c in self.read(supplier_id)["credentials"] if c["system"] == "national_certs"]

    def audit(self, event_type: str) -> list[dict[str, Any]]:
        with self.hub.session_factory() as session:
            rows = session.scalars(select(AuditRow).where(AuditRow.event_type == event_type))
            return [{"actor": r.actor_org_id, "subject": r.subject_org_id, **r.data} for r in rows]

    def faults(self, **changes: Any) -> None:
        control(self.sandbox, "national_certs", "faults", "POST", changes)


def _payload(entry: dict[str, Any]) -> dict[str, Any]:
    """The event's own fields, wherever the audit row keeps them (the envelope's payload)."""
    payload = entry.get("payload")
    return dict(payload) if isinstance(payload, dict) else entry


@pytest.fixture
def hygiene(sandbox: SandboxServer, settings_factory: Callable[..., Settings]) -> Iterator[Hygiene]:
    reset(sandbox)
    settings = settings_factory(connectors=connector_overrides(sandbox), suppliers=FAST_SUPPLIERS)
    hub = bootstrap(settings, migrate=True)
    _, issued = hub.bus.handle(CreateOrganisation(name="Operations", kind=OrgKind.OPERATOR))
    worker = hub.make_worker()
    worker.start()
    try:
        with TestClient(create_app(hub=hub)) as http:
            yield Hygiene(hub, http, issued.plaintext, str(settings.database.url), sandbox)
    finally:
        hub.close()
        reset(sandbox)


def holders(sandbox: SandboxServer, *, with_certificates: bool) -> list[str]:
    ds = sandbox.dataset
    brns = [s.identifiers["kr_brn"] for s in ds.suppliers if "kr_brn" in s.identifiers]
    return [b for b in brns
            if ds.national_holder_known(b) and bool(ds.national_certificates_of(b)) == with_certificates]


def test_an_html_page_with_200_is_an_error_not_a_verified_slot_without_credentials(hygiene: Hygiene) -> None:
    brn = holders(hygiene.sandbox, with_certificates=True)[0]
    hygiene.faults(html_page=True)
    supplier = hygiene.register(hygiene.supplier_org(), brn)
    slot = next(f for f in supplier["fetches"] if f["system"] == "national_certs")
    assert slot["state"] == "pending", slot
    assert "unreadable_reply" in (slot["last_error"] or "") and slot["next_attempt_at"] is not None
    assert not [c for c in supplier["credentials"] if c["system"] == "national_certs"]
    assert control(hygiene.sandbox, "national_certs", "stats")["fault:html"] >= 1

    # Retried like a transient fault: still pending (never verified) while the gateway answers HTML.
    eventually(lambda: hygiene.slot(supplier["id"])["attempts"] >= 2, timeout=30,
               what="the scheduler to retry the unreadable reply")
    assert hygiene.slot(supplier["id"])["state"] == "pending"
    failures = eventually(lambda: [e for e in map(_payload, hygiene.audit("CredentialFetchFailed"))
                                   if e["supplier_id"] == supplier["id"]], timeout=30,
                          what="the failed fetch in the audit trail")
    assert failures[0]["error_code"] == "unreadable_reply" and failures[0]["state"] == "pending"
    assert failures[0]["raw_sha256"]  # the page itself is kept as evidence

    hygiene.faults(html_page=False)
    eventually(lambda: hygiene.slot(supplier["id"])["state"] == "verified", timeout=30,
               what="the slot to be verified once the twin answers again")
    assert hygiene.certificates(supplier["id"]), "verified with the holder's certificates"


def test_a_readable_answer_without_certificates_stays_verified(hygiene: Hygiene) -> None:
    brn = holders(hygiene.sandbox, with_certificates=False)[0]
    supplier = hygiene.register(hygiene.supplier_org(), brn)
    slot = next(f for f in supplier["fetches"] if f["system"] == "national_certs")
    assert slot["state"] == "verified" and slot["last_error"] is None
    assert not [c for c in supplier["credentials"] if c["system"] == "national_certs"]


def _failed_for_good(hygiene: Hygiene, brn: str) -> tuple[dict[str, Any], str]:
    """A supplier (and its owner's key) whose national_certs slot the registry refused (INVALID_INPUT
    is permanent); the fault is then fixed, yet the scheduler never asks again."""
    hygiene.faults(error_rate=1.0, fault_code="INVALID_INPUT")
    key = hygiene.supplier_org()
    supplier = hygiene.register(key, brn)
    hygiene.faults(error_rate=0.0, fault_code=None)
    slot = next(f for f in supplier["fetches"] if f["system"] == "national_certs")
    assert slot["state"] == "failed_permanently" and slot["next_attempt_at"] is None, slot
    return supplier, key


def _cli(hygiene: Hygiene, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("G2BHUB_")}
    env.update({"G2BHUB_DATABASE__URL": hygiene.database_url, "G2BHUB_BROKER__KIND": "inprocess",
                "G2BHUB_LOGGING__JSON": "false", "PYTHONPATH": str(ROOT)})
    return subprocess.run([sys.executable, "-m", "hub.cli.main", *args], env=env, capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def test_the_cli_brings_a_permanently_failed_slot_back(hygiene: Hygiene) -> None:
    supplier, _ = _failed_for_good(hygiene, holders(hygiene.sandbox, with_certificates=True)[1])
    absent = _cli(hygiene, "suppliers", "retry", supplier["id"], "--system", "vies", "--reason", "x")
    assert absent.returncode == 1 and "'vies' not found" in absent.stderr  # no such slot: nothing changed
    blank = _cli(hygiene, "suppliers", "retry", supplier["id"], "--reason", "  ")
    assert blank.returncode == 1 and "reason" in blank.stderr
    assert hygiene.slot(supplier["id"])["state"] == "failed_permanently"

    proc = _cli(hygiene, "suppliers", "retry", supplier["id"], "--system", "national_certs",
                "--reason", "registry fixed its input validation", "--by", "alice", "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"state": "pending"' in proc.stdout
    eventually(lambda: hygiene.slot(supplier["id"])["state"] == "verified", timeout=30,
               what="the scheduler to fetch the retried slot")
    assert hygiene.certificates(supplier["id"])

    [entry] = eventually(lambda: [e for e in map(_payload, hygiene.audit("CredentialFetchRetried"))
                                  if e["supplier_id"] == supplier["id"]], timeout=30,
                         what="the retry in the audit trail")
    assert entry["requested_by"] == "cli:alice" and entry["reason"] == "registry fixed its input validation"
    assert entry["previous_state"] == "failed_permanently" and "INVALID_INPUT" in entry["previous_error"]


def test_the_operator_api_brings_a_permanently_failed_slot_back(hygiene: Hygiene) -> None:
    supplier, owner_key = _failed_for_good(hygiene, holders(hygiene.sandbox, with_certificates=True)[2])
    slot = next(f for f in supplier["fetches"] if f["system"] == "national_certs")
    url = f"{API}/suppliers/{supplier['id']}/fetches/{slot['id']}/retry"

    # Operators only: the owner cannot reset the hub's verdict on its own supplier.
    assert hygiene.http.post(url, json={"reason": "mine"}, headers=bearer(owner_key)).status_code == 403
    missing = hygiene.http.post(url, json={}, headers=bearer(hygiene.operator_key))
    assert missing.status_code == 422 and "reason" in missing.text

    response = hygiene.http.post(url, json={"reason": "upstream gateway replaced"},
                                 headers=bearer(hygiene.operator_key))
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "pending" and response.json()["attempts"] == 0
    eventually(lambda: hygiene.slot(supplier["id"])["state"] == "verified", timeout=30,
               what="the scheduler to fetch the retried slot")
    assert hygiene.certificates(supplier["id"])

    again = hygiene.http.post(url, json={"reason": "again"}, headers=bearer(hygiene.operator_key))
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")
    unknown = hygiene.http.post(f"{API}/suppliers/{supplier['id']}/fetches/{uuid.uuid4()}/retry",
                                json={"reason": "x"}, headers=bearer(hygiene.operator_key))
    assert unknown.status_code == 404

    [entry] = eventually(lambda: [e for e in hygiene.audit("CredentialFetchRetried")
                                  if _payload(e)["supplier_id"] == supplier["id"]], timeout=30,
                         what="the retry in the audit trail")
    me = hygiene.http.get(f"{API}/me", headers=bearer(hygiene.operator_key)).json()
    assert _payload(entry)["reason"] == "upstream gateway replaced"
    assert _payload(entry)["requested_by"] == f"key:{me['key']['id']}"
    assert entry["actor"] == me["organisation"]["id"] and entry["subject"] != entry["actor"]


def test_refresh_asks_a_permanently_failed_slot_again(hygiene: Hygiene) -> None:
    supplier, owner_key = _failed_for_good(hygiene, holders(hygiene.sandbox, with_certificates=True)[3])
    # The owner refreshes once the cause is fixed: the registry answers, the slot is verified.
    response = hygiene.http.post(f"{API}/suppliers/{supplier['id']}/refresh", headers=bearer(owner_key))
    assert response.status_code == 200, response.text
    slot = next(f for f in response.json()["fetches"] if f["system"] == "national_certs")
    # attempts counts the round the success ends: the refused attempt, then the one that succeeded
    assert slot["state"] == "verified" and slot["attempts"] == 2 and slot["last_error"] is None
    assert [c for c in response.json()["credentials"] if c["system"] == "national_certs"]
    eventually(lambda: [e for e in map(_payload, hygiene.audit("CredentialVerified"))
                        if e["supplier_id"] == supplier["id"] and e["system"] == "national_certs"],
               timeout=30, what="the verified credentials in the audit trail")
