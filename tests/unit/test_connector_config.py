"""Connector configuration: the shipped file validates, deployments override endpoint and key only,
keys stay secret, typos fail at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from connectors.config import PROJECT_ROOT, RestSystemConfig, SoapSystemConfig, load_connectors_config
from connectors.registry import build_connectors
from mappings.engine import load_mapping


def test_shipped_config_has_every_system_with_its_mapping() -> None:
    config = load_connectors_config()
    assert set(config.systems) == {"vies", "nts", "gleif", "companies_house", "iaf", "national_certs"}
    kinds = {name: type(cfg) for name, cfg in config.systems.items()}
    assert kinds["vies"] is SoapSystemConfig and kinds["national_certs"] is SoapSystemConfig
    assert kinds["nts"] is RestSystemConfig
    nts = config.systems["nts"]
    assert isinstance(nts, RestSystemConfig) and nts.batch is not None and nts.batch.max_size == 100
    for name, cfg in config.systems.items():
        assert cfg.mapping is not None
        mapping = load_mapping(config.resolve_path(cfg.mapping))
        assert mapping.source == name


def test_shipped_config_builds_every_connector_without_network() -> None:
    registry = build_connectors(load_connectors_config())
    try:
        assert registry.breaker_states() == dict.fromkeys(registry, "closed")
    finally:
        registry.close()


def test_deployment_overrides_endpoint_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("G2BHUB_TEST_NTS_KEY", "from-env")
    config = load_connectors_config(
        overrides={
            "nts": {"endpoint": "https://api.odcloud.kr/api/nts-businessman/v1/", "key_env": "G2BHUB_TEST_NTS_KEY"}
        }
    )
    nts = config.systems["nts"]
    assert nts.endpoint == "https://api.odcloud.kr/api/nts-businessman/v1"
    key = nts.resolve_key()
    assert key is not None and key.get_secret_value() == "from-env"
    assert "from-env" not in repr(nts) and "from-env" not in str(config.model_dump())
    assert isinstance(nts, RestSystemConfig) and nts.path == "/status"  # contract untouched


def test_key_file(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("file-key\n")
    config = load_connectors_config(overrides={"gleif": {"key_file": str(secret)}})
    key = config.systems["gleif"].resolve_key()
    assert key is not None and key.get_secret_value() == "file-key"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"nts": {"endpont": "http://x"}}, "endpont"),
        ({"nts": {"endpoint": "ftp://x"}}, "http"),
        ({"nts": {"auth": {"kind": "query", "name": "bad name"}}}, "name"),
        ({"vies": {"fault_codes": {"X": "sometimes"}}}, "fault_codes"),
        ({"nts": {"retry": {"max_attempts": 0}}}, "max_attempts"),
    ],
)
def test_typos_fail_with_the_file_and_field(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        load_connectors_config(overrides=change)
    assert "connectors.yaml" in str(caught.value)


def test_other_file_resolves_relative_paths_against_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "systems.yaml"
    path.write_text(
        yaml.safe_dump({"systems": {"x": {"kind": "rest", "endpoint": "http://127.0.0.1:1", "mapping": "m.yaml"}}})
    )
    config = load_connectors_config(path)
    assert config.resolve_path(config.systems["x"].mapping or "") == tmp_path / "m.yaml"
    assert PROJECT_ROOT.exists()
