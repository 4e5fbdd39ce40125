"""A connector aimed at a real service with only the shipped sandbox test key stops the start before any
migration: one line naming the variable that takes the real key, no traceback. With the key given, or
with the endpoint left on the sandbox, the hub starts."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hub.bootstrap import bootstrap
from hub.config import ConfigError, Settings
from tests.support.environment import ROOT

REAL_NTS = "https://api.odcloud.kr/api/nts-businessman/v1"


@pytest.fixture(autouse=True)
def no_keys_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("G2BHUB_NTS_KEY", "G2BHUB_COMPANIES_HOUSE_KEY", "G2BHUB_IAF_KEY"):
        monkeypatch.delenv(name, raising=False)


def g2bhub(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("G2BHUB_")}
    clean.update({"G2BHUB_DATABASE__URL": f"sqlite:///{tmp_path / 'hub.db'}", "PYTHONPATH": str(ROOT), **env})
    return subprocess.run(
        [sys.executable, "-m", "hub.cli.main", *args],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def tables(db: Path) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]


def test_bootstrap_refuses_a_sandbox_key_for_a_real_endpoint_before_migrations(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    settings = Settings(database={"url": f"sqlite:///{db}"}, connectors={"nts": {"endpoint": REAL_NTS}})
    with pytest.raises(ConfigError) as error:
        bootstrap(settings, migrate=True)
    [problem] = error.value.problems
    assert problem.startswith(f"connectors.nts: {REAL_NTS} is not a sandbox endpoint")
    assert problem.endswith("set G2BHUB_NTS_KEY to the key issued for this service")
    assert tables(db) == []


def test_bootstrap_starts_with_the_real_key_in_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("G2BHUB_NTS_KEY", "d9Wm3xk0RealLookingKey%3D%3D")
    settings = Settings(
        database={"url": f"sqlite:///{tmp_path / 'hub.db'}"}, connectors={"nts": {"endpoint": REAL_NTS}}
    )
    hub = bootstrap(settings, migrate=True)  # builds no connector, so nothing is sent anywhere
    try:
        assert hub.database_ready()
    finally:
        hub.close()


def test_bootstrap_starts_on_the_sandbox_with_the_sandbox_keys(tmp_path: Path) -> None:
    settings = Settings(
        database={"url": f"sqlite:///{tmp_path / 'hub.db'}"}, connectors={"nts": {"endpoint": "http://127.0.0.1:9/nts"}}
    )
    hub = bootstrap(settings, migrate=True)
    try:
        assert hub.database_ready()
    finally:
        hub.close()


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["worker"], ["demo", "--port", "1", "--data-dir", "."]])
def test_every_starting_command_says_which_variable_to_set_without_a_traceback(
    tmp_path: Path, command: list[str]
) -> None:
    proc = g2bhub(tmp_path, *command, G2BHUB_CONNECTORS__NTS__ENDPOINT=REAL_NTS)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: invalid configuration: connectors.nts: {REAL_NTS} is not a sandbox endpoint, but the key is a "
        "sandbox test key (the inline key; G2BHUB_NTS_KEY is not set): set G2BHUB_NTS_KEY to the key issued "
        "for this service"
    )
    assert tables(tmp_path / "hub.db") == []


def test_a_command_on_the_hub_runs_once_the_key_is_set(tmp_path: Path) -> None:
    env = {"G2BHUB_CONNECTORS__NTS__ENDPOINT": REAL_NTS}
    assert g2bhub(tmp_path, "db", "upgrade", **env).returncode == 0  # reads no connector
    refused = g2bhub(tmp_path, "orgs", "list", **env)
    assert refused.returncode == 1 and "set G2BHUB_NTS_KEY" in refused.stderr
    proc = g2bhub(tmp_path, "orgs", "list", **env, G2BHUB_NTS_KEY="d9Wm3xk0RealLookingKey")
    assert proc.returncode == 0, proc.stderr
