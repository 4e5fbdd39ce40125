"""The command line finds the demo's database: ``--data-dir`` (or ``G2BHUB_DATA_DIR``), else, with no
database configured, the demo's default data directory; and it never creates an empty database where it
expected one. Real subprocesses in a throw-away working directory, as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.environment import ROOT


def run(cwd: Path, *args: str, ok: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("G2BHUB_")}
    clean.update({"G2BHUB_LOGGING__JSON": "false", "PYTHONPATH": str(ROOT), **env})
    proc = subprocess.run(
        [sys.executable, "-m", "hub.cli.main", *args], cwd=cwd, env=clean, capture_output=True, text=True, timeout=120
    )
    if ok and proc.returncode != 0:
        pytest.fail(f"g2bhub {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def make_demo_database(cwd: Path, data_dir: str) -> None:
    """What ``g2bhub demo`` leaves behind, without serving: a migrated database with an organisation."""
    run(cwd, "--data-dir", data_dir, "db", "upgrade")
    run(cwd, "--data-dir", data_dir, "orgs", "create", "Demo-ish Institution", "--kind", "institution")


def test_with_nothing_configured_the_cli_uses_the_demos_database(tmp_path: Path) -> None:
    make_demo_database(tmp_path, "var/demo")
    listed = run(tmp_path, "orgs", "list")
    assert "Demo-ish Institution" in listed.stdout
    assert str((tmp_path / "var" / "demo" / "hub.db").resolve()) in listed.stderr  # says which database
    assert not (tmp_path / "var" / "g2bhub.db").exists()  # no stray database at the configured default


def test_data_dir_option_and_variable_name_a_demos_data_directory(tmp_path: Path) -> None:
    make_demo_database(tmp_path, "elsewhere")
    assert "Demo-ish Institution" in run(tmp_path, "--data-dir", "elsewhere", "orgs", "list").stdout
    assert "Demo-ish Institution" in run(tmp_path, "orgs", "list", G2BHUB_DATA_DIR="elsewhere").stdout


def test_a_configured_database_wins_over_the_demos(tmp_path: Path) -> None:
    make_demo_database(tmp_path, "var/demo")
    own = tmp_path / "own.db"
    run(tmp_path, "db", "upgrade", G2BHUB_DATABASE__URL=f"sqlite:///{own}")
    listed = run(tmp_path, "orgs", "list", G2BHUB_DATABASE__URL=f"sqlite:///{own}")
    assert "Demo-ish Institution" not in listed.stdout and "no organisations" in listed.stdout


def test_a_missing_database_is_named_not_created(tmp_path: Path) -> None:
    proc = run(tmp_path, "orgs", "list", ok=False)
    assert proc.returncode == 1
    expected = (tmp_path / "var" / "g2bhub.db").resolve()
    assert f"no database at {expected}" in proc.stderr
    assert "--data-dir" in proc.stderr and "G2BHUB_DATABASE__URL" in proc.stderr
    assert not expected.exists() and not (tmp_path / "var").exists()

    current = run(tmp_path, "--data-dir", "nowhere", "db", "current")
    assert current.stdout.strip() == f"none (no database at {(tmp_path / 'nowhere' / 'hub.db').resolve()})"
    assert not (tmp_path / "nowhere").exists()
