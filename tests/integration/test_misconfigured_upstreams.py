"""A key the upstream refuses is the hub's fault, not the supplier's: against the NTS and Companies House
twins with their key check failing, registrations leave the slots pending (never failed_permanently),
``/readyz`` and the metrics say which system is misconfigured, one log line says so, and once the key
works the slots are verified by the scheduler alone. After a fix, ``g2bhub suppliers retry --system …
--failed`` re-queues the slots the hub had given up on. Time moves by passing ``now``, never by waiting."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from connectors.sandbox.server import SandboxServer
from hub.api.app import create_app
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.spine.tables import OutboxRow
from hub.suppliers.model import utcnow
from tests.support.environment import ROOT
from tests.support.sandbox import FAST_SUPPLIERS, SANDBOX_QUOTAS, connector_overrides, control, first_with, reset

LIVE_KEYS = {"nts": "live-nts-key-from-data-go-kr", "companies_house": "live-ch-key"}
# Probe on every call here: the interval itself is the unit tests' business (an injected clock).
PROBE_EVERY_CALL = {"breaker": {"auth_probe_s": 0}}
LATER = timedelta(hours=1)  # past backoff.misconfigured_retry_s


def make_hub(sandbox: SandboxServer, sqlite_url: str, **connector_changes: dict[str, Any]) -> Hub:
    connectors = connector_overrides(sandbox)
    for system in ("nts", "companies_house"):
        connectors[system].update(PROBE_EVERY_CALL, **connector_changes.get(system, {}))
    settings = Settings(database={"url": sqlite_url}, broker={"kind": "inprocess"}, connectors=connectors,
                        suppliers=FAST_SUPPLIERS, quotas=SANDBOX_QUOTAS)
    return bootstrap(settings, migrate=True)


@pytest.fixture
def twins(sandbox: SandboxServer) -> Iterator[SandboxServer]:
    reset(sandbox)
    yield sandbox
    reset(sandbox)


def refuse_the_hubs_key(sandbox: SandboxServer) -> None:
    """The twins now accept only a live key the hub does not have (as if the sandbox key went live)."""
    for system, key in LIVE_KEYS.items():
        control(sandbox, system, "key", "PUT", {"api_key": key})


def register(hub: Hub, identifiers: dict[str, str]) -> str:
    org, _ = hub.bus.handle(CreateOrganisation(name="Supplier Co", kind=OrgKind.SUPPLIER))
    result = hub.suppliers.service.register(org_id=str(org.id), identifiers=identifiers, consent=True,
                                            actor_org_id=str(org.id))
    return result.supplier.id


def slots(hub: Hub, supplier_id: str) -> dict[str, Any]:
    with hub.uow() as uow:
        return {f.system: (f.state, f.last_error, f.attempts) for f in uow.suppliers.fetches_of(supplier_id)}


def outbox(hub: Hub, message_type: str) -> list[dict[str, Any]]:
    with hub.session_factory() as session:
        rows = session.scalars(select(OutboxRow).where(OutboxRow.message_type == message_type).order_by(OutboxRow.id))
        return [r.payload for r in rows]


def identifiers(sandbox: SandboxServer, skip: int) -> dict[str, str]:
    return {"kr_brn": first_with(sandbox, "kr_brn", "nts:active", skip=skip),
            "gb_company_number": first_with(sandbox, "gb_company_number", "companies_house:active", skip=skip)}


def test_a_refused_key_leaves_slots_pending_and_they_resume_once_the_key_works(
    twins: SandboxServer, sqlite_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="g2bhub.connectors")
    hub = make_hub(twins, sqlite_url)
    refuse_the_hubs_key(twins)
    try:
        first = register(hub, identifiers(twins, 0))
        second = register(hub, identifiers(twins, 1))
        for supplier in (first, second):
            state = slots(hub, supplier)
            assert state["nts"][0] == "pending" and state["nts"][1].startswith("misconfigured: gateway-4")
            assert state["companies_house"][0] == "pending"
            assert state["companies_house"][1].startswith("misconfigured: http_401")
            assert state["nts"][2] == state["companies_house"][2] == 0  # the supplier's record is clean
            assert state["national_certs"][0] == "verified"  # the other systems are not held up
        assert control(twins, "nts", "stats")["rejected:auth"] >= 1

        with TestClient(create_app(hub=hub)) as http:
            connectors = http.get("/readyz").json()["checks"]["connectors"]
            metrics = http.get("/metrics").text
        assert set(connectors["misconfigured"]) == {"nts", "companies_house"}
        assert connectors["misconfigured"]["nts"]["code"] == "gateway-4"
        assert 'g2bhub_upstream_misconfigured{system="nts"} 1.0' in metrics
        assert 'g2bhub_upstream_misconfigured{system="gleif"} 0.0' in metrics

        run = hub.suppliers.scheduler.run_once(now=utcnow() + LATER)  # still refused: still pending
        assert run.outcomes["misconfigured"] == 4
        assert {slots(hub, first)["nts"][0], slots(hub, second)["companies_house"][0]} == {"pending"}
        refused = [r for r in caplog.records if "refused the hub's key" in r.getMessage()]
        assert sorted(r.system for r in refused) == ["companies_house", "nts"]  # type: ignore[attr-defined]
        assert all(r.levelno == logging.ERROR for r in refused) and "G2BHUB_NTS_KEY" in str(
            [r.getMessage() for r in refused])
        failures = outbox(hub, "CredentialFetchFailed")
        assert len(failures) == 4 and {f["outcome"] for f in failures} == {"misconfigured"}  # one per slot

        for system in LIVE_KEYS:  # the operator fixes the key: here, the twin accepts the hub's again
            control(twins, system, "key", "DELETE")
        run = hub.suppliers.scheduler.run_once(now=utcnow() + 2 * LATER)
        assert run.outcomes["ok"] == 4
        for supplier in (first, second):
            assert {s: v[0] for s, v in slots(hub, supplier).items()} == {
                "nts": "verified", "companies_house": "verified", "national_certs": "verified"}
        assert hub.suppliers.misconfigured() == {}
        cleared = [r for r in caplog.records if "accepts the hub's key again" in r.getMessage()]
        assert len(cleared) == 2
    finally:
        hub.close()


def test_a_rewritten_key_file_is_picked_up_without_a_restart(
    twins: SandboxServer, sqlite_url: str, tmp_path: Path,
) -> None:
    key_file = tmp_path / "nts.key"
    key_file.write_text("an-old-key\n", encoding="utf-8")
    hub = make_hub(twins, sqlite_url, nts={"key_file": str(key_file)})
    try:
        supplier = register(hub, {"kr_brn": first_with(twins, "kr_brn", "nts:active", skip=2)})
        assert slots(hub, supplier)["nts"][0] == "pending"
        assert set(hub.suppliers.misconfigured() or {}) == {"nts"}

        key_file.write_text(str(twins.api_keys["nts"]) + "\n", encoding="utf-8")
        hub.suppliers.scheduler.run_once(now=utcnow() + LATER)
        assert slots(hub, supplier)["nts"][0] == "verified"
        assert hub.suppliers.misconfigured() == {}
    finally:
        hub.close()


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("G2BHUB_")}
    env.update({"G2BHUB_DATABASE__URL": database_url, "G2BHUB_BROKER__KIND": "inprocess",
                "G2BHUB_LOGGING__JSON": "false", "PYTHONPATH": str(ROOT)})
    return subprocess.run([sys.executable, "-m", "hub.cli.main", *args], env=env, capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def test_the_cli_requeues_every_failed_slot_of_a_system(twins: SandboxServer, sqlite_url: str) -> None:
    hub = make_hub(twins, sqlite_url)
    try:
        control(twins, "gleif", "faults", "POST", {"error_rate": 1.0, "fault_code": "400"})
        broken = [register(hub, {"lei": first_with(twins, "lei", "gleif:issued", skip=n)}) for n in range(2)]
        control(twins, "gleif", "faults", "DELETE")
        healthy = register(hub, {"lei": first_with(twins, "lei", "gleif:issued", skip=2)})
        assert [slots(hub, s)["gleif"][0] for s in broken] == ["failed_permanently"] * 2
        assert slots(hub, healthy)["gleif"][0] == "verified"

        unknown = cli(sqlite_url, "suppliers", "retry", "--system", "nope", "--failed", "--reason", "x")
        assert unknown.returncode == 1 and "no upstream system 'nope'" in unknown.stderr
        bare = cli(sqlite_url, "suppliers", "retry", "--system", "gleif", "--reason", "x")
        assert bare.returncode != 0 and "--failed" in bare.stderr
        proc = cli(sqlite_url, "suppliers", "retry", "--system", "gleif", "--failed", "--by", "alice",
                   "--reason", "GLEIF gateway fixed", "--json")
        assert proc.returncode == 0, proc.stderr
        rows = json.loads(proc.stdout)
        assert sorted(r["supplier_id"] for r in rows) == sorted(broken)
        assert {(r["system"], r["state"]) for r in rows} == {("gleif", "pending")}

        retried = outbox(hub, "CredentialFetchRetried")  # through the bus: one audited event per slot
        assert sorted(e["supplier_id"] for e in retried) == sorted(broken)
        assert {(e["requested_by"], e["reason"], e["previous_state"]) for e in retried} == {
            ("cli:alice", "GLEIF gateway fixed", "failed_permanently")}

        hub.suppliers.scheduler.run_once()
        assert [slots(hub, s)["gleif"][0] for s in (*broken, healthy)] == ["verified"] * 3
        again = cli(sqlite_url, "suppliers", "retry", "--system", "gleif", "--failed", "--reason", "x", "--json")
        assert again.returncode == 0 and json.loads(again.stdout) == []
    finally:
        hub.close()


@pytest.mark.parametrize("form", ["decoded", "encoded"])
def test_the_nts_key_works_in_either_form_the_portal_issues(twins: SandboxServer, sqlite_url: str, form: str) -> None:
    portal_key = "Ab+cD/ef0123456789ghIJ=="  # data.go.kr keys are base64: '+', '/' and '=' need escaping
    control(twins, "nts", "key", "PUT", {"api_key": portal_key})
    given = portal_key if form == "decoded" else quote(portal_key, safe="")
    hub = make_hub(twins, sqlite_url, nts={"key": given})
    try:
        supplier = register(hub, identifiers(twins, 0))
        assert slots(hub, supplier)["nts"][0] == "verified"
        assert control(twins, "nts", "stats").get("rejected:auth", 0) == 0
    finally:
        hub.close()
