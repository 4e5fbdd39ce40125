"""Connector configuration (the ``connectors`` section): the shipped entries validate, deployments
override endpoint and key only, keys stay secret, typos fail at start-up naming where they came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.config import PROJECT_ROOT, ConnectorsConfig, RestSystemConfig, SoapSystemConfig
from connectors.registry import build_connectors
from hub.config import ConfigError, load_settings
from mappings.engine import load_mapping


def load_connectors_config(overrides: dict[str, Any] | None = None) -> ConnectorsConfig:
    """The shipped entries with a deployment's ``connectors:`` section merged on top."""
    return ConnectorsConfig(systems=load_settings(connectors=overrides or {}).connectors)


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
def test_typos_fail_with_the_file_and_field(
    change: dict, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump({"connectors": change}), encoding="utf-8")
    monkeypatch.setenv("G2BHUB_CONFIG", str(path))
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings()
    [problem] = caught.value.problems
    system = next(iter(change))
    assert problem.startswith(f"{path}: connectors.{system}.") and "\n" not in problem


def test_relative_paths_resolve_against_the_installed_packages() -> None:
    config = load_connectors_config({"x": {"kind": "rest", "endpoint": "http://127.0.0.1:1", "mapping": "m.yaml"}})
    assert config.resolve_path(config.systems["x"].mapping or "") == PROJECT_ROOT / "m.yaml"
    assert (PROJECT_ROOT / "mappings" / "nts.yaml").is_file()
    assert config.resolve_path("/abs/m.yaml") == Path("/abs/m.yaml")
