"""The demo's and ``serve``'s listen address in the settings, and the sandbox supplier listing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.sandbox.dataset import SandboxDataset
from hub.cli.demo import demo_settings
from hub.cli.main import app
from hub.cli.runtime import follow_listen_address
from hub.cli.sandbox import matches_scenario
from hub.config import load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("G2BHUB_"):
            monkeypatch.delenv(name)


def test_the_public_base_url_follows_the_port_when_not_configured() -> None:
    settings = follow_listen_address(load_settings(), "127.0.0.1", 8003)
    assert settings.api.public_base_url == "http://127.0.0.1:8003"
    assert (settings.api.host, settings.api.port) == ("127.0.0.1", 8003)
    assert follow_listen_address(load_settings(), "0.0.0.0", 9000).api.public_base_url == "http://127.0.0.1:9000"
    assert follow_listen_address(load_settings(), "::1", 9000).api.public_base_url == "http://[::1]:9000"


def test_a_configured_public_base_url_is_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("G2BHUB_API__PUBLIC_BASE_URL", "https://hub.example.go.kr")
    assert follow_listen_address(load_settings(), "127.0.0.1", 8003).api.public_base_url == "https://hub.example.go.kr"
    assert demo_settings(load_settings(), tmp_path, "127.0.0.1", 8003).api.public_base_url == (
        "https://hub.example.go.kr"
    )


def test_the_demo_links_to_its_port(tmp_path: Path) -> None:
    settings = demo_settings(load_settings(), tmp_path, "127.0.0.1", 8003)
    assert settings.api.public_base_url == "http://127.0.0.1:8003"
    assert settings.database.url == f"sqlite:///{tmp_path / 'hub.db'}"


def test_scenario_tags_match_exactly_or_by_prefix() -> None:
    tags = ["nts:closed", "iaf:ISO 9001:2015:withdrawn"]
    assert matches_scenario(tags, "nts:closed") and matches_scenario(tags, "nts")
    assert matches_scenario(tags, "iaf:ISO 9001:2015") and matches_scenario(tags, "IAF")
    assert not matches_scenario(tags, "nts:clos") and not matches_scenario(tags, "nts:active")


def test_sandbox_suppliers_by_scenario_are_the_datasets() -> None:
    result = CliRunner().invoke(app, ["sandbox", "suppliers", "--scenario", "nts:closed", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    expected = SandboxDataset().with_scenario("nts:closed")
    assert [s["supplier_id"] for s in listed] == [s.supplier_id for s in expected] and listed
    assert all("nts:closed" in s["scenario"] and s["identifiers"]["kr_brn"] for s in listed)

    table = CliRunner().invoke(app, ["sandbox", "suppliers", "--scenario", "gleif:lapsed", "--limit", "2"])
    assert table.exit_code == 0 and len(table.output.strip().splitlines()) == 3  # header and two rows
    assert "gleif:lapsed" in table.output

    tags = CliRunner().invoke(app, ["sandbox", "suppliers", "--tags", "--json"])
    counts = json.loads(tags.output)
    assert counts["nts:closed"] == len(expected)


def test_no_supplier_with_a_scenario_says_so() -> None:
    result = CliRunner().invoke(app, ["sandbox", "suppliers", "--scenario", "nts:nonsense"])
    assert result.exit_code == 0 and "no supplier has nts:nonsense" in result.output
