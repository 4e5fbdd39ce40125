"""A system switched off in its connector entry (``enabled: false``) is no scheme's applicable system,
wherever ``applicable_systems`` lists it: registration creates no slot for it, no connector is built for
it and /readyz does not report it. national_certs, which has no real counterpart, ships switched off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.bootstrap import Hub, bootstrap
from hub.config import load_settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.suppliers.commands import RegisterSupplier
from hub.suppliers.handlers import Registration

BRN = "1157750731"
IAF = "ce-0001"
NO_SCHEDULER = {"scheduler": {"enabled": False}}


@pytest.fixture
def make_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("G2BHUB_CONFIG", raising=False)
    monkeypatch.delenv("G2BHUB_CONNECTORS__NATIONAL_CERTS__ENABLED", raising=False)
    made: list[Hub] = []

    def make(**arguments: Any) -> Hub:
        settings = load_settings(
            database={"url": f"sqlite:///{tmp_path / f'hub{len(made)}.db'}"},
            broker={"kind": "inprocess"},
            suppliers=NO_SCHEDULER,
            **arguments,
        )
        hub = bootstrap(settings, migrate=True)
        made.append(hub)
        return hub

    yield make
    for hub in made:
        hub.close()


def slots(hub: Hub, **identifiers: str) -> list[str]:
    org, _ = hub.bus.handle(CreateOrganisation(name="Supplier Co", kind=OrgKind.SUPPLIER))
    registration: Registration = hub.bus.handle(
        RegisterSupplier(org_id=org.id, identifiers=identifiers, consent=True, claim_token="t")
    )
    return sorted(slot.system for slot in registration.claimed)


def test_the_shipped_configuration_fetches_korean_numbers_from_nts_only(make_hub: Any) -> None:
    hub = make_hub()
    assert hub.settings.suppliers.applicable_systems["kr_brn"] == ["nts", "national_certs"]  # listed, but off
    assert slots(hub, kr_brn=BRN) == ["nts"]
    assert "national_certs" not in hub.suppliers.connectors.breaker_states()


def test_a_deployment_switches_national_certs_on_by_one_variable(
    make_hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("G2BHUB_CONNECTORS__NATIONAL_CERTS__ENABLED", "true")
    hub = make_hub()
    assert slots(hub, kr_brn=BRN) == ["national_certs", "nts"]
    assert "national_certs" in hub.suppliers.connectors.breaker_states()


def test_switching_one_system_off_needs_no_restated_list(
    make_hub: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"connectors": {"iaf": {"enabled": False}}}), encoding="utf-8")
    monkeypatch.setenv("G2BHUB_CONFIG", str(site))
    hub = make_hub()
    assert hub.settings.suppliers.applicable_systems["iaf_ce_id"] == ["iaf"]  # the shipped map, untouched
    assert slots(hub, kr_brn=BRN, iaf_ce_id=IAF) == ["nts"]
    assert set(hub.suppliers.connectors.breaker_states()) == {"vies", "nts", "gleif", "companies_house"}


def test_readyz_reports_only_the_enabled_systems(make_hub: Any) -> None:
    from fastapi.testclient import TestClient

    from hub.api.app import create_app

    hub = make_hub()
    assert hub.suppliers.connectors is not None  # built now, as the first registration would build them
    with TestClient(create_app(hub=hub, settings=hub.settings)) as client:
        body = client.get("/readyz").json()
    breakers = body["checks"]["connectors"]["breakers"]
    assert set(breakers) == {"vies", "nts", "gleif", "companies_house", "iaf"}


def test_a_slot_left_from_before_a_system_was_switched_off_is_not_reported_pending(
    make_hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from hub.api.app import create_app

    monkeypatch.setenv("G2BHUB_CONNECTORS__NATIONAL_CERTS__ENABLED", "true")
    before = make_hub()
    org, _ = before.bus.handle(CreateOrganisation(name="Supplier Co", kind=OrgKind.SUPPLIER))
    registration: Registration = before.bus.handle(
        RegisterSupplier(org_id=org.id, identifiers={"kr_brn": BRN}, consent=True, claim_token="t"))
    supplier_id = registration.supplier.id
    _, issued = before.bus.handle(CreateOrganisation(name="Hub operations", kind=OrgKind.OPERATOR))
    url = before.settings.database.url
    before.close()

    monkeypatch.delenv("G2BHUB_CONNECTORS__NATIONAL_CERTS__ENABLED")
    after = bootstrap(load_settings(database={"url": url}, broker={"kind": "inprocess"}, suppliers=NO_SCHEDULER))
    try:
        with TestClient(create_app(hub=after, settings=after.settings)) as client:
            answer = client.post(f"/api/v1/suppliers/{supplier_id}/eligibility",
                                 json={"requirements": [{"kind": "tax_status", "status": "active"}]},
                                 headers={"Authorization": f"Bearer {issued.plaintext}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["pending_systems"] == ["nts"]  # national_certs' old slot waits for nothing
    finally:
        after.close()
