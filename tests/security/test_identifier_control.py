"""Proof of control of an identifier, tried as an attacker would: registering another business's
identifiers, proving with the wrong certificate, replaying a challenge, and the operator's ways to
settle a dispute. Over HTTP with a running worker (the audit trail is written by its consumer), on
SQLite + in-process broker and on PostgreSQL + RabbitMQ."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
from hub.suppliers.commands import RegisterSupplier, SubmitControlProof
from hub.suppliers.control import IdentifierTaken
from hub.suppliers.identifiers import brn_check_digit
from hub.suppliers.model import IdentifierClaim
from tests.support.api import API, bearer
from tests.support.control import (
    CertificateAuthority,
    Leaf,
    approve_control,
    challenge,
    etsi_identifier,
    prove_control,
    submit,
    trust_settings,
)
from tests.support.environment import ROOT
from tests.support.sandbox import FAST_SUPPLIERS, connector_overrides, first_with, reset
from tests.support.waiting import eventually

TAX_ACTIVE = {"requirements": [{"kind": "tax_status", "status": "active", "id": "tax"}]}


@dataclass
class Hubby:
    hub: Hub
    http: TestClient
    operator_id: str
    operator_key: str
    ca: CertificateAuthority

    def org(self, kind: str) -> tuple[str, str]:
        response = self.http.post(f"{API}/orgs", json={"name": f"{kind} {uuid.uuid4().hex[:6]}", "kind": kind},
                                  headers=bearer(self.operator_key))
        assert response.status_code == 201, response.text
        body = response.json()
        return body["organisation"]["id"], body["api_key"]

    def register(self, key: str, **identifiers: str) -> Any:
        return self.http.post(f"{API}/suppliers", json={"identifiers": identifiers, "consent": True},
                              headers=bearer(key))

    def audit(self, event_type: str) -> list[AuditRow]:
        with self.hub.session_factory() as session:
            return list(session.scalars(select(AuditRow).where(AuditRow.event_type == event_type)))

    def eligibility(self, key: str, supplier_id: str, query: dict[str, Any] = TAX_ACTIVE) -> dict[str, Any]:
        response = self.http.post(f"{API}/suppliers/{supplier_id}/eligibility", json=query, headers=bearer(key))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority(intermediate=True)


@pytest.fixture
def hubby(sandbox: SandboxServer, settings_factory: Callable[..., Settings], ca: CertificateAuthority,
          tmp_path: Path) -> Iterator[Hubby]:
    reset(sandbox)
    suppliers = {**FAST_SUPPLIERS, **trust_settings(ca.write(tmp_path))}
    settings = settings_factory(connectors=connector_overrides(sandbox), suppliers=suppliers)
    hub = bootstrap(settings, migrate=True)
    operator, issued = hub.bus.handle(CreateOrganisation(name="Operations", kind=OrgKind.OPERATOR))
    worker = hub.make_worker()
    worker.start()
    try:
        with TestClient(create_app(hub=hub)) as http:
            yield Hubby(hub, http, operator.id, issued.plaintext, ca)
    finally:
        hub.close()
        reset(sandbox)


def active_brn(sandbox: SandboxServer) -> str:
    return first_with(sandbox, "kr_brn", "nts:active")


def test_a_stolen_identifier_is_refused_and_the_attacker_gets_no_credentials(
        hubby: Hubby, sandbox: SandboxServer) -> None:
    victim_id, victim_key = hubby.org("supplier")
    attacker_id, attacker_key = hubby.org("supplier")
    brn, lei = active_brn(sandbox), first_with(sandbox, "lei")
    assert hubby.register(victim_key, kr_brn=brn, lei=lei).status_code == 201

    stolen = hubby.register(attacker_key, kr_brn=brn)
    assert stolen.status_code == 409, stolen.text
    problem = stolen.json()
    assert stolen.headers["content-type"].startswith("application/problem+json")
    assert problem["type"].endswith("/identifier-claimed")
    assert [e["field"] for e in problem["errors"]] == ["identifiers.kr_brn"]
    assert victim_id not in stolen.text  # who holds it is not revealed
    # the same with the identifier written another way, and mixed with one of the attacker's own
    assert hubby.register(attacker_key, kr_brn=f"{brn[:3]}-{brn[3:5]}-{brn[5:]}").status_code == 409
    mixed = hubby.register(attacker_key, lei=lei, gb_company_number=first_with(sandbox, "gb_company_number"))
    assert mixed.status_code == 409 and mixed.json()["errors"][0]["field"] == "identifiers.lei"

    listed = hubby.http.get(f"{API}/suppliers", headers=bearer(attacker_key))
    assert listed.status_code == 200 and listed.json() == []  # nothing registered, nothing fetched
    again = hubby.register(victim_key, kr_brn=brn, lei=lei)
    assert again.status_code == 200  # the holder registering again stays idempotent

    refused = eventually(lambda: hubby.audit("IdentifierClaimRefused") if len(
        hubby.audit("IdentifierClaimRefused")) == 3 else None)
    assert {(r.actor_org_id, r.subject_org_id) for r in refused} == {(attacker_id, attacker_id)}
    seen = hubby.http.get(f"{API}/audit", params={"limit": 200}, headers=bearer(attacker_key))
    assert seen.status_code == 200 and victim_id not in seen.text  # its own trail does not name the holder


def test_eligibility_is_unknown_until_control_is_proven_then_met(hubby: Hubby, sandbox: SandboxServer) -> None:
    _, key = hubby.org("supplier")
    institution_id, institution_key = hubby.org("institution")
    brn = active_brn(sandbox)
    created = hubby.register(key, kr_brn=brn)
    assert created.status_code == 201, created.text
    supplier = created.json()
    assert supplier["control"] == [{"scheme": "kr_brn", "identifier": brn, "state": "unproven", "method": None,
                                    "proven_at": None}]
    tax = next(c for c in supplier["credentials"] if c["type"] == "tax_status")  # the owner sees its credentials
    assert tax["status"] == "active"
    sid = supplier["id"]
    assert hubby.http.post(f"{API}/suppliers/{sid}/grants/{institution_id}", headers=bearer(key)).status_code == 201

    answer = hubby.eligibility(institution_key, sid)
    [verdict] = answer["requirements"]
    assert answer["verdict"] == "unknown" and verdict["verdict"] == "unknown"
    assert "control of identifier not proven" in verdict["reason"]
    assert verdict["credentials"] == []  # nothing of an unproven credential is cited
    assert hubby.eligibility(hubby.operator_key, sid)["verdict"] == "unknown"  # whoever asks

    # nothing is released to the institution: no credential, no version, no raw payload
    seen = hubby.http.get(f"{API}/suppliers/{sid}", headers=bearer(institution_key)).json()
    assert seen["credentials"] == [] and seen["control"][0]["state"] == "unproven"
    assert hubby.http.get(f"{API}/suppliers/{sid}/credentials", headers=bearer(institution_key)).json() == []
    raw_url = tax["provenance"]["raw_url"]
    assert hubby.http.get(raw_url, headers=bearer(institution_key)).status_code == 404
    assert hubby.http.get(f"{API}/suppliers/{sid}/credentials/{tax['id']}/versions",
                          headers=bearer(institution_key)).status_code == 404
    assert hubby.http.get(raw_url, headers=bearer(key)).status_code == 200  # the owner still can
    assert hubby.http.get(raw_url, headers=bearer(hubby.operator_key)).status_code == 200  # and the operator

    proof = prove_control(hubby.http, key, sid, "kr_brn", hubby.ca.issue(etsi_identifier("kr_brn", brn)))
    assert proof["accepted"] and proof["method"] == "x509"
    assert proof["evidence"]["organization_identifier"] == [f"NTRKR-{brn}"]
    answer = hubby.eligibility(institution_key, sid)
    assert answer["verdict"] == "met", answer
    seen = hubby.http.get(f"{API}/suppliers/{sid}", headers=bearer(institution_key)).json()
    assert seen["control"][0]["state"] == "proven" and seen["control"][0]["method"] == "x509"
    assert {c["type"] for c in seen["credentials"]} >= {"tax_status"}
    assert hubby.http.get(raw_url, headers=bearer(institution_key)).status_code == 200

    proven = eventually(lambda: hubby.audit("ControlProven") or None)
    issued = hubby.audit("ControlChallengeIssued")
    claimed = hubby.audit("IdentifierClaimed")
    assert proven[0].data["method"] == "x509" and issued and claimed


def _refused_cases(ca: CertificateAuthority, brn: str) -> dict[str, tuple[Leaf, str, bool]]:
    """name → (certificate, the field the 422 must name, whether to sign the right text)."""
    now = datetime.now(UTC)
    right = etsi_identifier("kr_brn", brn)
    other_brn = "1234567891" if brn != "1234567891" else "2208162517"
    return {
        "wrong organizationIdentifier": (ca.issue(f"NTRKR-{other_brn}"), "certificate_chain", True),
        "no organizationIdentifier": (ca.issue(None), "certificate_chain", True),
        "untrusted (self-made CA)": (CertificateAuthority("impostor CA").issue(right), "certificate_chain", True),
        "expired": (ca.issue(right, not_before=now - timedelta(days=60), not_after=now - timedelta(days=1)),
                    "certificate_chain", True),
        "no signing key usage": (ca.issue(right, signing=False), "certificate_chain", True),
        "bad signature": (ca.issue(right), "signature", False),
    }


@pytest.mark.parametrize("case", ["wrong organizationIdentifier", "no organizationIdentifier",
                                  "untrusted (self-made CA)", "expired", "no signing key usage", "bad signature"])
def test_each_refused_proof_names_the_field_and_proves_nothing(hubby: Hubby, sandbox: SandboxServer,
                                                               case: str) -> None:
    owner_id, key = hubby.org("supplier")
    brn = active_brn(sandbox)
    sid = hubby.register(key, kr_brn=brn).json()["id"]
    leaf, field, sign_right = _refused_cases(hubby.ca, brn)[case]
    issued = challenge(hubby.http, key, sid, "kr_brn")
    signature = leaf.sign(issued["text"] if sign_right else issued["text"].replace("nonce", "n0nce"))
    refused = submit(hubby.http, key, sid, issued["id"], leaf.chain_pem, signature)
    assert refused.status_code == 422, refused.text
    assert [e["pointer"] for e in refused.json()["errors"]] == [f"#/body/{field}"]

    control = hubby.http.get(f"{API}/suppliers/{sid}/control", headers=bearer(key)).json()
    assert control["identifiers"][0]["state"] == "unproven"
    [proof] = control["proofs"]
    assert not proof["accepted"] and proof["reason"] == refused.json()["errors"][0]["message"]
    assert hubby.eligibility(hubby.operator_key, sid)["verdict"] == "unknown"
    [audited] = eventually(lambda: hubby.audit("ControlProofRefused") or None)
    assert audited.subject_org_id == owner_id and audited.data["field"] == field
    # the challenge is spent: even a good proof cannot use it now
    good = hubby.ca.issue(etsi_identifier("kr_brn", brn))
    again = submit(hubby.http, key, sid, issued["id"], good.chain_pem, good.sign(issued["text"]))
    assert again.status_code == 422 and again.json()["errors"][0]["pointer"] == "#/body/challenge_id"


def test_a_challenge_is_single_use_and_expires(hubby: Hubby, sandbox: SandboxServer) -> None:
    owner_id, key = hubby.org("supplier")
    brn = active_brn(sandbox)
    sid = hubby.register(key, kr_brn=brn).json()["id"]
    leaf = hubby.ca.issue(etsi_identifier("kr_brn", brn), kind="ec")
    issued = challenge(hubby.http, key, sid, "kr_brn")
    assert submit(hubby.http, key, sid, issued["id"], leaf.chain_pem, leaf.sign(issued["text"])).status_code == 201
    replayed = submit(hubby.http, key, sid, issued["id"], leaf.chain_pem, leaf.sign(issued["text"]))
    assert replayed.status_code == 422 and "already answered" in replayed.json()["errors"][0]["message"]

    late = challenge(hubby.http, key, sid, "kr_brn")
    expired_at = datetime.fromisoformat(late["expires_at"])
    proof = hubby.hub.bus.handle(SubmitControlProof(
        supplier_id=sid, challenge_id=late["id"], method="x509", actor_org_id=owner_id,
        evidence={"certificate_chain": leaf.chain_pem, "signature": leaf.sign(late["text"])},
        now=expired_at + timedelta(seconds=1)))
    assert not proof.accepted and proof.failed_field == "challenge_id" and "expired" in proof.reason

    # another supplier's challenge, or a forged id, is not this supplier's to answer
    _, other_key = hubby.org("supplier")
    other = hubby.register(other_key, lei=first_with(sandbox, "lei")).json()["id"]
    foreign = submit(hubby.http, other_key, other, issued["id"], leaf.chain_pem, leaf.sign(issued["text"]))
    assert foreign.status_code == 422 and foreign.json()["errors"][0]["pointer"] == "#/body/challenge_id"
    assert hubby.http.post(f"{API}/suppliers/{sid}/control/challenges", json={"scheme": "kr_brn"},
                           headers=bearer(other_key)).status_code == 404  # not its supplier


def test_rsa_pss_and_an_intermediate_chain_prove_an_lei_and_a_vat_number(hubby: Hubby,
                                                                          sandbox: SandboxServer) -> None:
    _, key = hubby.org("supplier")
    lei, vat = first_with(sandbox, "lei"), first_with(sandbox, "eu_vat")
    supplier = hubby.register(key, lei=lei, eu_vat=vat).json()
    for scheme, value in (("lei", supplier["identifiers"]["lei"]), ("eu_vat", supplier["identifiers"]["eu_vat"])):
        leaf = hubby.ca.issue(etsi_identifier(scheme, value), kind="rsa-pss")
        assert leaf.chain  # the intermediate travels with the leaf; only the root is a trust anchor
        assert prove_control(hubby.http, key, supplier["id"], scheme, leaf)["accepted"]
    states = hubby.http.get(f"{API}/suppliers/{supplier['id']}/control", headers=bearer(key)).json()["identifiers"]
    assert {s["state"] for s in states} == {"proven"}


def test_operator_manual_approval_records_its_evidence(hubby: Hubby, sandbox: SandboxServer) -> None:
    owner_id, key = hubby.org("supplier")
    institution_id, institution_key = hubby.org("institution")
    brn = active_brn(sandbox)
    sid = hubby.register(key, kr_brn=brn).json()["id"]
    hubby.http.post(f"{API}/suppliers/{sid}/grants/{institution_id}", headers=bearer(key))
    body = {"scheme": "kr_brn", "evidence": "certified registry extract, seal checked", "reference": "TICKET-42",
            "approved_by": "J. Park"}
    url = f"{API}/suppliers/{sid}/control/approvals"
    assert hubby.http.post(url, json=body, headers=bearer(key)).status_code == 403  # not the owner's call
    assert hubby.http.post(url, json=body, headers=bearer(institution_key)).status_code == 403
    assert hubby.http.post(url, json={**body, "evidence": ""}, headers=bearer(hubby.operator_key)).status_code == 422
    approved = hubby.http.post(url, json=body, headers=bearer(hubby.operator_key))
    assert approved.status_code == 201, approved.text
    proof = approved.json()
    assert proof["method"] == "manual" and proof["recorded_by"] == hubby.operator_id
    assert proof["evidence"] == {"evidence": body["evidence"], "reference": "TICKET-42", "approved_by": "J. Park"}
    assert hubby.eligibility(institution_key, sid)["verdict"] == "met"
    control = hubby.http.get(f"{API}/suppliers/{sid}/control", headers=bearer(institution_key)).json()
    assert control["identifiers"][0]["method"] == "manual" and control["proofs"] is None  # evidence: not theirs
    [audited] = eventually(lambda: hubby.audit("ControlProven") or None)
    assert (audited.actor_org_id, audited.subject_org_id) == (hubby.operator_id, owner_id)
    assert audited.data["evidence"]["reference"] == "TICKET-42"


def test_operator_releases_and_transfers_a_disputed_identifier(hubby: Hubby, sandbox: SandboxServer) -> None:
    squatter_id, squatter_key = hubby.org("supplier")
    business_id, business_key = hubby.org("supplier")
    institution_id, institution_key = hubby.org("institution")
    brn = active_brn(sandbox)
    squatted = hubby.register(squatter_key, kr_brn=brn).json()["id"]
    approve_control(hubby.http, hubby.operator_key, squatted)  # a mistake the operator will undo
    hubby.http.post(f"{API}/suppliers/{squatted}/grants/{institution_id}", headers=bearer(squatter_key))
    assert hubby.eligibility(institution_key, squatted)["verdict"] == "met"
    assert hubby.register(business_key, kr_brn=brn).status_code == 409

    claim_url = f"{API}/identifier-claims/kr_brn/{brn}"
    held = hubby.http.get(claim_url, headers=bearer(hubby.operator_key))
    assert held.status_code == 200 and held.json()["org_id"] == squatter_id
    assert hubby.http.get(claim_url, headers=bearer(squatter_key)).status_code == 403
    assert hubby.http.post(f"{claim_url}/release", json={"reason": "x"},
                           headers=bearer(squatter_key)).status_code == 403
    assert hubby.http.post(f"{claim_url}/release", json={}, headers=bearer(hubby.operator_key)).status_code == 422

    released = hubby.http.post(f"{claim_url}/release", json={"reason": "the business showed its registration"},
                               headers=bearer(hubby.operator_key))
    assert released.status_code == 200, released.text
    # the old holder's credentials stop counting at once, and nothing more reaches the institution
    [verdict] = hubby.eligibility(institution_key, squatted)["requirements"]
    assert verdict["verdict"] == "unknown" and "control of identifier not proven" in verdict["reason"]
    assert hubby.http.get(f"{API}/suppliers/{squatted}", headers=bearer(institution_key)).json()["credentials"] == []
    assert hubby.http.get(claim_url, headers=bearer(hubby.operator_key)).status_code == 404

    # the business registers; the squatter cannot take it back; the operator can still move it
    assert hubby.register(business_key, kr_brn=brn).status_code == 201
    assert hubby.register(squatter_key, kr_brn=brn).status_code == 409
    transfer = hubby.http.post(f"{claim_url}/transfer", json={"to_org_id": squatter_id, "reason": "court order"},
                               headers=bearer(hubby.operator_key))
    assert transfer.status_code == 200 and transfer.json()["org_id"] == squatter_id
    assert transfer.json()["proven_at"] is None  # the new holder proves afresh
    assert hubby.http.post(f"{claim_url}/transfer", json={"to_org_id": institution_id, "reason": "x"},
                           headers=bearer(hubby.operator_key)).status_code == 404  # only to a supplier org

    released_rows = eventually(lambda: hubby.audit("IdentifierClaimReleased") or None)
    assert released_rows[0].data["reason"] == "the business showed its registration"
    assert released_rows[0].data["was_proven"] is True and released_rows[0].subject_org_id == squatter_id
    moved = eventually(lambda: hubby.audit("IdentifierClaimTransferred") or None)
    assert moved[0].data["to_org_id"] == squatter_id and moved[0].subject_org_id == business_id


def test_concurrent_claims_of_one_identifier_leave_exactly_one_holder(hubby: Hubby) -> None:
    """Two organisations register the same identifier at the same instant, many times over: each time
    one wins and the other is refused (the claims table's primary key decides, not the pre-check)."""
    orgs = [hubby.org("supplier")[0] for _ in range(2)]
    brns = [f"{nine}{brn_check_digit(nine)}" for nine in ("115775073", "220816251", "104860640", "120814752",
                                                             "214861153", "106818604")]
    for brn in brns:
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def register(org_id: str, number: str = brn, gate: threading.Barrier = barrier,
                     found: list[str] = outcomes) -> None:
            gate.wait()
            try:
                hubby.hub.bus.handle(RegisterSupplier(org_id=org_id, identifiers={"kr_brn": number}, consent=True,
                                                      claim_token=str(uuid.uuid4()), actor_org_id=org_id))
                found.append("created")
            except IdentifierTaken:
                found.append("refused")

        threads = [threading.Thread(target=register, args=(org_id,)) for org_id in orgs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(outcomes) == ["created", "refused"], (brn, outcomes)
        with hubby.hub.uow() as uow:
            claim = uow.suppliers.identifier_claim("kr_brn", brn)
            holder = claim.org_id if claim is not None else None
            owners = {s.org_id for s in uow.suppliers.list_owned(None, 500) if s.identifiers.get("kr_brn") == brn}
        assert holder is not None and owners == {holder}


def test_a_claim_committed_by_a_concurrent_transaction_refuses_the_other(hubby: Hubby) -> None:
    """The race the pre-check cannot see, made deterministic: on PostgreSQL the second insert waits for
    the first transaction and then fails on the primary key; the repository turns that into the 409.
    (SQLite serialises writers with BEGIN IMMEDIATE, so there the pre-check already sees the claim.)"""
    if hubby.hub.engine.dialect.name != "postgresql":
        pytest.skip("two write transactions at once need PostgreSQL")
    first_org, second_org = hubby.org("supplier")[0], hubby.org("supplier")[0]
    brn, now = "1157750731", datetime.now(UTC)
    with hubby.hub.uow() as first, hubby.hub.uow() as second:
        first.suppliers.add_claim(IdentifierClaim("kr_brn", brn, first_org, now))  # flushed, not committed
        assert second.suppliers.claims_for({"kr_brn": brn}) == {}  # the pre-check cannot see it
        timer = threading.Timer(0.5, first.commit)
        timer.start()
        try:
            with pytest.raises(IdentifierTaken):
                second.suppliers.add_claim(IdentifierClaim("kr_brn", brn, second_org, now))
        finally:
            timer.join()
    with hubby.hub.uow() as check:
        claim = check.suppliers.identifier_claim("kr_brn", brn)
        assert claim is not None and claim.org_id == first_org


def test_the_operator_settles_a_dispute_from_the_command_line(tmp_path: Path) -> None:
    """``g2bhub identifiers show / transfer / release`` as an operator runs them, against a SQLite file;
    each change leaves its event (with the reason) in the outbox, bound for the audit trail."""
    db = tmp_path / "hub.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("G2BHUB_")}
    env |= {"G2BHUB_DATABASE__URL": f"sqlite:///{db}", "G2BHUB_LOGGING__JSON": "false", "PYTHONPATH": str(ROOT)}

    def g2bhub(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "hub.cli.main", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert (proc.returncode == 0) is ok, f"{args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    g2bhub("db", "upgrade")
    hub = bootstrap(Settings(database={"url": f"sqlite:///{db}"}))
    try:
        hub.bus.handle(CreateOrganisation(name="Operations", kind=OrgKind.OPERATOR))
        holder, _ = hub.bus.handle(CreateOrganisation(name="Holder", kind=OrgKind.SUPPLIER))
        business, _ = hub.bus.handle(CreateOrganisation(name="Business", kind=OrgKind.SUPPLIER))
        hub.bus.handle(RegisterSupplier(org_id=holder.id, identifiers={"kr_brn": "115-77-50731"}, consent=True,
                                        claim_token="cli"))
    finally:
        hub.close()

    shown = json.loads(g2bhub("identifiers", "show", "kr_brn", "115-77-50731", "--json").stdout)
    assert shown["org_id"] == holder.id and shown["proven_at"] is None
    assert "not an operator" in g2bhub("identifiers", "release", "kr_brn", "1157750731", "--reason", "x",
                                       "--operator", holder.id, ok=False).stderr
    moved = json.loads(g2bhub("identifiers", "transfer", "kr_brn", "1157750731", "--to", business.id,
                              "--reason", "registry extract shows Business", "--json").stdout)
    assert moved["org_id"] == business.id
    released = g2bhub("identifiers", "release", "kr_brn", "1157750731", "--reason", "the registration lapsed")
    assert f"was held by {business.id}" in released.stdout
    assert "not found" in g2bhub("identifiers", "show", "kr_brn", "1157750731", ok=False).stderr

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT message_type, payload FROM outbox WHERE message_type LIKE 'IdentifierClaim%' "
                            "ORDER BY id").fetchall()
    reasons = {kind: json.loads(payload).get("reason") for kind, payload in rows}
    assert reasons == {"IdentifierClaimed": None, "IdentifierClaimTransferred": "registry extract shows Business",
                       "IdentifierClaimReleased": "the registration lapsed"}
