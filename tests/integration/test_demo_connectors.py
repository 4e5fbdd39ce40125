"""``g2bhub demo`` keeps the connector endpoints the user configured and points only the rest at its
sandbox twins: the demo's settings assembly (``demo_settings`` then each component's ``configure``, as
the command runs them) with a real-looking endpoint, which is never called here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from connectors.key_policy import sandbox_key_problems
from connectors.sandbox.dataset import SandboxDataset
from hub.cli.demo import demo_settings
from hub.cli.demo_suppliers import SandboxSuppliers, demo_connector_overrides, sandbox_connector_overrides
from hub.config import Settings, load_settings

REAL_NTS = "https://api.odcloud.kr/api/nts-businessman/v1"
REAL_GLEIF = "https://api.gleif.org"
TWIN = {
    "vies_endpoint": "http://127.0.0.1:1/vies/checkVatService",
    "nts_base": "http://127.0.0.1:1/nts",
    "gleif_base": "http://127.0.0.1:1/gleif",
    "companies_house_base": "http://127.0.0.1:1/companies-house",
    "iaf_base": "http://127.0.0.1:1/iaf",
    "national_certs_endpoint": "http://127.0.0.1:1/national-certs/NationalCertificatesService",
}
TWIN_KEYS: dict[str, str | None] = {
    "nts": "sandbox-nts-key",
    "companies_house": "sandbox-ch-key",
    "iaf": "sandbox-iaf-key",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("G2BHUB_"):
            monkeypatch.delenv(name)


@pytest.fixture
def sandbox_suppliers() -> Iterator[SandboxSuppliers]:
    component = SandboxSuppliers()
    yield component
    component.stop()


def assemble(component: SandboxSuppliers, tmp_path: Path) -> Settings:
    """What ``g2bhub demo`` does before bootstrapping the hub."""
    settings = demo_settings(load_settings(), tmp_path, "127.0.0.1", 8000)
    return component.configure(settings, tmp_path)


def test_an_endpoint_set_in_the_environment_is_kept_with_its_key(
    sandbox_suppliers: SandboxSuppliers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("G2BHUB_CONNECTORS__NTS__ENDPOINT", REAL_NTS)
    monkeypatch.setenv("G2BHUB_NTS_KEY", "d9Wm3xk0RealLookingKey")
    monkeypatch.setenv("G2BHUB_COMPANIES_HOUSE_KEY", "a-real-companies-house-key")
    settings = assemble(sandbox_suppliers, tmp_path)
    twins = sandbox_suppliers.server.endpoints
    connectors = settings.connectors

    assert connectors["nts"].endpoint == REAL_NTS
    nts_key = connectors["nts"].resolve_key()
    assert nts_key is not None and nts_key.get_secret_value() == "d9Wm3xk0RealLookingKey"
    # every other system on its twin, with the twin's key: a real key in the environment stays home
    assert connectors["vies"].endpoint == twins["vies_endpoint"]
    assert connectors["companies_house"].endpoint == twins["companies_house_base"]
    ch_key = connectors["companies_house"].resolve_key()
    assert ch_key is not None and ch_key.get_secret_value() == sandbox_suppliers.server.api_keys["companies_house"]
    assert (
        connectors["national_certs"].enabled
        and connectors["national_certs"].endpoint == twins["national_certs_endpoint"]
    )
    assert sandbox_suppliers.placement == {
        "vies": "sandbox",
        "nts": "configured",
        "gleif": "sandbox",
        "companies_house": "sandbox",
        "iaf": "sandbox",
        "national_certs": "sandbox",
    }
    assert sandbox_key_problems(connectors) == []  # the start-up check passes

    lines = sandbox_suppliers._upstream_lines(settings)
    assert [line.split()[1:3] for line in lines] == [
        ["vies", "sandbox"],
        ["nts", "real"],
        ["gleif", "sandbox"],
        ["companies_house", "sandbox"],
        ["iaf", "sandbox"],
        ["national_certs", "sandbox"],
    ]
    assert any(line.split()[1:] == ["nts", "real", REAL_NTS] for line in lines)


def test_a_kept_endpoint_without_its_key_fails_the_start_up_check(
    sandbox_suppliers: SandboxSuppliers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("G2BHUB_CONNECTORS__NTS__ENDPOINT", REAL_NTS)
    settings = assemble(sandbox_suppliers, tmp_path)
    assert settings.connectors["nts"].endpoint == REAL_NTS  # kept, not silently sent to the twin
    [problem] = sandbox_key_problems(settings.connectors)
    assert problem.startswith("connectors.nts:") and "set G2BHUB_NTS_KEY" in problem


def test_a_config_file_endpoint_is_kept_and_a_system_switched_off_stays_off(
    sandbox_suppliers: SandboxSuppliers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        yaml.safe_dump({"connectors": {"gleif": {"endpoint": REAL_GLEIF}, "iaf": {"enabled": False}}}), encoding="utf-8"
    )
    monkeypatch.setenv("G2BHUB_CONFIG", str(site))
    settings = assemble(sandbox_suppliers, tmp_path)
    assert settings.connectors["gleif"].endpoint == REAL_GLEIF
    assert not settings.connectors["iaf"].enabled
    assert settings.connectors["nts"].endpoint == sandbox_suppliers.server.endpoints["nts_base"]
    assert sandbox_suppliers.placement["gleif"] == "configured"
    assert sandbox_suppliers.placement["iaf"] == "off"


def test_with_nothing_configured_every_system_goes_to_its_twin() -> None:
    overrides, placement = demo_connector_overrides(Settings(), TWIN, TWIN_KEYS)
    assert set(placement.values()) == {"sandbox"}
    assert overrides == sandbox_connector_overrides(TWIN, TWIN_KEYS)


def test_an_endpoint_given_as_an_argument_is_the_users_too() -> None:
    settings = Settings(connectors={"nts": {"endpoint": "http://127.0.0.1:9999/nts"}})  # type: ignore[dict-item]
    overrides, placement = demo_connector_overrides(settings, TWIN, TWIN_KEYS)
    assert placement["nts"] == "configured" and overrides["nts"] == {"enabled": True}


def seeded(placement: dict[str, Any]) -> list[dict[str, str]]:
    component = SandboxSuppliers(count=3)
    component.server = SimpleNamespace(dataset=SandboxDataset())
    component.placement = placement
    return component._identifier_sets(Settings())


ALL_TWINS = dict.fromkeys(["vies", "nts", "gleif", "companies_house", "iaf", "national_certs"], "sandbox")


def test_seeded_suppliers_carry_only_identifiers_every_system_of_which_is_a_twin() -> None:
    everything = seeded(ALL_TWINS)
    assert len(everything) == 3 and all(len(ids) >= 2 for ids in everything)
    assert any("kr_brn" in ids for ids in everything)

    nts_real = seeded({**ALL_TWINS, "nts": "configured"})
    assert len(nts_real) == 3 and all(ids and "kr_brn" not in ids for ids in nts_real)
    assert seeded({**ALL_TWINS, "national_certs": "off", "nts": "configured"}) == nts_real

    assert seeded(dict.fromkeys(ALL_TWINS, "configured")) == []  # nothing made up goes to a real registry
