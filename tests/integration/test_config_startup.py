"""A configuration that does not validate stops every command before anything touches the database:
one line per problem on stderr, naming the file or variable and the key, and no schema created."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hub.bootstrap import bootstrap
from hub.config import Settings
from mappings.engine import MappingError

ROOT = Path(__file__).resolve().parents[2]


def g2bhub(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("G2BHUB_")}
    clean.update({"G2BHUB_DATABASE__URL": f"sqlite:///{tmp_path / 'hub.db'}", "PYTHONPATH": str(ROOT), **env})
    return subprocess.run([sys.executable, "-m", "hub.cli.main", *args], cwd=tmp_path, env=clean,
                          capture_output=True, text=True, timeout=60)


def tables(db: Path) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]


@pytest.mark.parametrize(
    "command", [["serve", "--port", "1"], ["db", "upgrade"], ["demo", "--port", "1", "--data-dir", "."]]
)
def test_a_bad_variable_stops_the_command_before_migrations(tmp_path: Path, command: list[str]) -> None:
    proc = g2bhub(tmp_path, *command, G2BHUB_SYNDICATION__TIME_SCALE="2")
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("error: invalid configuration: G2BHUB_SYNDICATION__TIME_SCALE: "
                                   "syndication.time_scale: Input should be less than or equal to 1")
    assert tables(tmp_path / "hub.db") == []


def test_a_bad_file_value_names_the_file_and_key(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"suppliers": {"fetch": {"deadline_s": 0}}}), encoding="utf-8")
    proc = g2bhub(tmp_path, "serve", "--port", "1", G2BHUB_CONFIG=str(site))
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: invalid configuration: {site}: suppliers.fetch.deadline_s: ")
    assert tables(tmp_path / "hub.db") == []


def test_a_broken_mapping_file_stops_bootstrap_before_migrations(tmp_path: Path) -> None:
    broken = tmp_path / "nts.yaml"
    broken.write_text("source: nts\nformat: json\ncredentials: [{type: x, records: data, nonsense: 1}]\n",
                      encoding="utf-8")
    db = tmp_path / "hub.db"
    settings = Settings(database={"url": f"sqlite:///{db}"}, connectors={"nts": {"mapping": str(broken)}})
    with pytest.raises(MappingError, match=str(broken)):
        bootstrap(settings, migrate=True)
    assert tables(db) == []


def test_a_typo_in_a_file_is_refused_with_a_hint_before_anything_is_created(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"syndication": {"time_scalex": 0.5}}), encoding="utf-8")
    data = tmp_path / "data"
    proc = g2bhub(tmp_path, "serve", "--port", "1", G2BHUB_CONFIG=str(site),
                  G2BHUB_DATABASE__URL=f"sqlite:///{data / 'hub.db'}")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"error: invalid configuration: {site}: syndication.time_scalex: "
                                   "unknown key (did you mean 'time_scale'?)")
    assert not data.exists()


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["db", "upgrade"], ["config", "show"],
                                     ["config", "check"]])
def test_an_unsupported_database_url_is_one_line_not_a_missing_driver(tmp_path: Path, command: list[str]) -> None:
    proc = g2bhub(tmp_path, *command, G2BHUB_DATABASE__URL="mysql://hub:s3cret@db.example/hub")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "s3cret" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: invalid configuration: G2BHUB_DATABASE__URL: database.url: mysql:// is not a "
                           "supported database")
    assert proc.stdout == ""


@pytest.mark.parametrize("command", [["config", "show"], ["config", "check"]])
def test_config_show_and_check_report_what_a_start_reports(tmp_path: Path, command: list[str]) -> None:
    proc = g2bhub(tmp_path, *command, G2BHUB_API__PORT="70000")
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("error: invalid configuration: G2BHUB_API__PORT: api.port: "
                                   "Input should be less than or equal to 65535")
    assert not (tmp_path / "hub.db").exists()


def test_config_check_passes_a_valid_configuration_without_touching_the_database(tmp_path: Path) -> None:
    proc = g2bhub(tmp_path, "config", "check")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "configuration is valid"
    assert not (tmp_path / "hub.db").exists()


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["config", "check"]])
def test_an_unreadable_mapping_file_is_one_line_before_migrations(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "no-such-mapping.yaml"
    proc = g2bhub(tmp_path, *command, G2BHUB_CONNECTORS__NTS__MAPPING=str(missing))
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: invalid configuration: {missing}: cannot read")
    assert tables(tmp_path / "hub.db") == []
