"""VIES keyed by member state against the twin over real HTTP: Germany answering MS_UNAVAILABLE five
times opens Germany's breaker only; a French check still calls VIES and answers; ``/readyz`` and the
metrics show the state per member state."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.errors import CircuitOpenError, TransientUpstreamError
from connectors.sandbox.server import SandboxServer
from hub.api.app import create_app
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from tests.support.sandbox import FAST_SUPPLIERS, SANDBOX_QUOTAS, connector_overrides, control, reset


@pytest.fixture
def hub(sandbox: SandboxServer, sqlite_url: str) -> Iterator[Hub]:
    reset(sandbox)
    connectors = connector_overrides(sandbox)
    connectors["vies"]["breaker"] = {"failure_threshold": 5, "reset_timeout_s": 3600}
    settings = Settings(database={"url": sqlite_url}, broker={"kind": "inprocess"}, connectors=connectors,
                        suppliers=FAST_SUPPLIERS, quotas=SANDBOX_QUOTAS)
    the_hub = bootstrap(settings, migrate=True)
    yield the_hub
    the_hub.close()
    reset(sandbox)


def vat_numbers(sandbox: SandboxServer, country: str) -> list[str]:
    return [s.identifiers["eu_vat"] for s in sandbox.dataset.suppliers
            if s.identifiers.get("eu_vat", "").startswith(country) and any(t.startswith("vies:valid")
                                                                          for t in s.scenario)]


def asked(sandbox: SandboxServer, country: str) -> int:
    stats: dict[str, Any] = control(sandbox, "vies", "stats")
    return int(stats.get(f"member_state:{country}", 0))


def register(hub: Hub, vat: str) -> dict[str, str]:
    org, _ = hub.bus.handle(CreateOrganisation(name=f"Supplier {vat}", kind=OrgKind.SUPPLIER))
    result = hub.suppliers.service.register(org_id=str(org.id), identifiers={"eu_vat": vat}, consent=True,
                                            actor_org_id=str(org.id))
    with hub.uow() as uow:
        fetches = uow.suppliers.fetches_of(result.supplier.id)
        return {f.system: f"{f.state} {f.last_error or ''}".strip() for f in fetches}


def test_one_member_states_outage_opens_its_breaker_only(hub: Hub, sandbox: SandboxServer) -> None:
    german, french = vat_numbers(sandbox, "DE"), vat_numbers(sandbox, "FR")
    control(sandbox, "vies", "faults", "POST", {"error_rate": 1.0, "fault_code": "MS_UNAVAILABLE", "only_for": ["DE"]})
    vies = hub.suppliers.connectors["vies"]
    for number in german[:5]:
        with pytest.raises(TransientUpstreamError) as caught:
            vies.fetch(number, purpose="test", requested_by="test")
        assert caught.value.code == "MS_UNAVAILABLE"
    assert asked(sandbox, "DE") == 5
    with pytest.raises(CircuitOpenError):
        vies.fetch(german[5], purpose="test", requested_by="test")
    assert asked(sandbox, "DE") == 5  # Germany's breaker answered; VIES was not called

    # France is asked, and answers: its registration verifies while Germany's waits, pending.
    assert register(hub, french[0]) == {"vies": "verified"}
    assert asked(sandbox, "FR") == 1
    german_slot = register(hub, german[6])["vies"]
    assert german_slot.startswith("pending circuit_open") and "countryCode=DE" in german_slot
    assert asked(sandbox, "DE") == 5

    with TestClient(create_app(hub=hub)) as http:
        connectors = http.get("/readyz").json()["checks"]["connectors"]
        metrics = http.get("/metrics").text
    assert connectors["status"] == "ok"
    assert connectors["breakers"]["vies"] == "closed"  # VIES itself answers
    assert connectors["breaker_keys"]["vies"] == {"DE": "open", "FR": "closed"}
    assert connectors["degraded"] == ["vies/DE"]
    assert 'g2bhub_connector_breaker_state{key="DE",system="vies"} 2.0' in metrics
    assert 'g2bhub_connector_breaker_state{key="FR",system="vies"} 0.0' in metrics
    assert 'g2bhub_connector_breaker_state{key="",system="vies"} 0.0' in metrics


def test_vies_itself_down_opens_the_systems_breaker(hub: Hub, sandbox: SandboxServer) -> None:
    numbers = [n for country in ("DE", "FR", "NL", "EL") for n in vat_numbers(sandbox, country)[:2]]
    control(sandbox, "vies", "faults", "POST", {"outage": True})  # SERVICE_UNAVAILABLE for everyone
    vies = hub.suppliers.connectors["vies"]
    for number in numbers[:5]:
        with pytest.raises(TransientUpstreamError):
            vies.fetch(number, purpose="test", requested_by="test")
    with pytest.raises(CircuitOpenError):
        vies.fetch(numbers[5], purpose="test", requested_by="test")
    assert hub.suppliers.breaker_states() is not None
    assert (hub.suppliers.breaker_states() or {})["vies"] == "open"
    assert set((hub.suppliers.breaker_key_states() or {})["vies"].values()) == {"closed"}
