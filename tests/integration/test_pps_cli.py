"""``g2bhub pps pull`` as an operator runs it: a real subprocess, a throw-away SQLite file, the PPS twin."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from connectors.sandbox.pps import pps_dataset
from connectors.sandbox.server import SandboxServer
from tests.integration.test_cli import base_env
from tests.support.sandbox import reset

Run = Callable[..., subprocess.CompletedProcess[str]]
CNSTWK = "getBidPblancListInfoCnstwk"


@pytest.fixture
def run(tmp_path: Path, sandbox: SandboxServer) -> Run:
    reset(sandbox)

    def run(*args: str, ok: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        settings = {"G2BHUB_PPS__ENDPOINT": sandbox.endpoints["pps_base"], "G2BHUB_PPS__PAGE_SIZE": "3", **env}
        proc = subprocess.run(
            [sys.executable, "-m", "hub.cli.main", *args],
            cwd=tmp_path,
            capture_output=True,
            env=base_env(tmp_path / "hub.db", **settings),
            text=True,
            timeout=120,
        )
        if ok and proc.returncode != 0:
            pytest.fail(f"g2bhub {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    run("db", "upgrade")
    return run


def test_pull_backfills_a_range_and_a_rerun_changes_nothing(run: Run) -> None:
    org = json.loads(run("orgs", "create", "조달청", "--kind", "institution", "--json").stdout)["id"]
    expected = len(pps_dataset()[CNSTWK])
    args = ("pps", "pull", "--from", "2026-03-01", "--to", "2026-03-08", "--operation", CNSTWK, "--json")
    first = run(*args, G2BHUB_PPS__ORG_ID=org)
    summary = json.loads(first.stdout)
    assert summary["items"] == expected and summary["versions_created"] == expected
    assert summary["unchanged"] == 0 and summary["windows"] == 8 and summary["pages"] > summary["windows"]
    assert "pulling" in first.stderr  # the progress bar, on stderr

    again = json.loads(run(*args, "--org", org).stdout)
    assert again["versions_created"] == 0 and again["unchanged"] == expected

    table = run(
        "pps", "pull", "--from", "2026-03-01T00:00", "--to", "2026-03-02T12:00", "-o", CNSTWK, G2BHUB_PPS__ORG_ID=org
    ).stdout
    assert table.splitlines()[0].split()[:2] == ["PAGES", "ITEMS"]


def test_pull_refuses_a_bad_range_a_missing_org_and_a_refused_key(run: Run) -> None:
    assert "not YYYY-MM-DD" in run("pps", "pull", "--from", "yesterday", "--to", "2026-03-02", ok=False).stderr
    assert "after --from" in run("pps", "pull", "--from", "2026-03-02", "--to", "2026-03-01", ok=False).stderr
    missing = run("pps", "pull", "--from", "2026-03-01", "--to", "2026-03-02", ok=False)
    assert missing.returncode == 1 and "pps.org_id" in missing.stderr
    org = json.loads(run("orgs", "create", "조달청", "--kind", "institution", "--json").stdout)["id"]
    refused = run(
        "pps",
        "pull",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-02",
        "--org",
        org,
        ok=False,
        G2BHUB_PPS_KEY="not-registered",
    )
    assert refused.returncode == 1 and "pps_30" in refused.stderr and "not-registered" not in refused.stderr
