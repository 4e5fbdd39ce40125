"""Layered settings: config/default.yaml < the G2BHUB_CONFIG file < G2BHUB_* environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from hub.config import DEFAULT_CONFIG_FILE, Settings, redact_url


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start from the defaults whatever the shell exported (test-only G2BHUB_TEST_* included)."""
    for name in list(os.environ):
        if name.startswith("G2BHUB_"):
            monkeypatch.delenv(name)


def write_config(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_defaults_come_from_the_packaged_yaml() -> None:
    defaults = yaml.safe_load(DEFAULT_CONFIG_FILE.read_text(encoding="utf-8"))
    settings = Settings()
    assert settings.database.url == defaults["database"]["url"]
    assert settings.broker.kind == "inprocess"
    assert settings.broker.delivery_limit == defaults["broker"]["delivery_limit"]
    assert settings.api.port == defaults["api"]["port"]
    assert settings.logging.json_format is defaults["logging"]["json"]


def test_config_file_overrides_defaults_key_by_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, {"broker": {"kind": "rabbitmq", "prefetch": 7}, "api": {"port": 9100}})
    monkeypatch.setenv("G2BHUB_CONFIG", str(path))
    settings = Settings()
    assert settings.broker.kind == "rabbitmq"
    assert settings.broker.prefetch == 7
    assert settings.api.port == 9100
    # siblings the file does not name keep their defaults (deep merge, not replacement)
    assert settings.broker.namespace == "g2bhub"
    assert settings.api.host == "127.0.0.1"


def test_environment_overrides_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, {"broker": {"prefetch": 7, "delivery_limit": 9}})
    monkeypatch.setenv("G2BHUB_CONFIG", str(path))
    monkeypatch.setenv("G2BHUB_BROKER__PREFETCH", "3")
    settings = Settings()
    assert settings.broker.prefetch == 3  # env wins
    assert settings.broker.delivery_limit == 9  # file still wins over defaults


def test_nested_environment_names_use_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("G2BHUB_DATABASE__URL", "postgresql://hub:pw@db.internal:5432/hub")
    monkeypatch.setenv("G2BHUB_BROKER__KIND", "rabbitmq")
    monkeypatch.setenv("G2BHUB_RELAY__BATCH_SIZE", "50")
    monkeypatch.setenv("G2BHUB_LOGGING__JSON", "false")
    settings = Settings()
    assert settings.database.url == "postgresql://hub:pw@db.internal:5432/hub"
    assert settings.broker.kind == "rabbitmq"
    assert settings.relay.batch_size == 50
    assert settings.logging.json_format is False


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("G2BHUB_BROKER__KIND", "kafka")
    with pytest.raises(ValueError, match="kind"):
        Settings()


def test_a_config_file_must_be_a_mapping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    monkeypatch.setenv("G2BHUB_CONFIG", str(path))
    with pytest.raises(ValueError, match="mapping"):
        Settings()


def test_explicit_arguments_win_over_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("G2BHUB_API__PORT", "9200")
    assert Settings(api={"port": 9300}).api.port == 9300  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://hub:s3cret@db:5432/hub", "postgresql://hub:***@db:5432/hub"),
        ("amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/"),
        ("amqps://u:p%40ss@mq.example:5671/vh?heartbeat=30", "amqps://u:***@mq.example:5671/vh?heartbeat=30"),
        ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://postgres@127.0.0.1:5432/test"),
        ("sqlite:///./var/g2bhub.db", "sqlite:///./var/g2bhub.db"),
    ],
)
def test_redact_url_hides_only_the_password(url: str, expected: str) -> None:
    assert redact_url(url) == expected
