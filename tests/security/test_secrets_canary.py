"""Planted canary secrets never leave: not in ``g2bhub config show``, not in any log line of a hub that
registers a supplier against the sandbox twins (httpx logging each upstream URL with the NTS
``serviceKey``) and logs an exception whose text repeats every secret. The surrounding text (host
names, paths) stays, so the lines are still useful."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.server import SandboxServer
from tests.support.environment import ROOT
from tests.support.sandbox import first_with

NTS_KEY = "CANARY-SK-7f3a9c"
ENDPOINT_KEY = "CANARY-SK-EP-51d2e8"
DB_PASSWORD = "CANARY-DB-PW-0c4b77"
DB_SSL_PASSWORD = "CANARY-DB-SSL-9e21aa"
AUTHORIZATION = "CANARY-AUTH-c08d13"
FERNET_KEY = base64.urlsafe_b64encode(b"CANARY-FERNET-KEY-00000000000000").decode()  # 32 bytes: a valid key
CANARIES = (NTS_KEY, ENDPOINT_KEY, DB_PASSWORD, DB_SSL_PASSWORD, AUTHORIZATION, FERNET_KEY, "CANARY")


@pytest.fixture(scope="module")
def twins() -> Iterator[SandboxServer]:
    """Twins of their own: the NTS twin accepts only the canary key, so a call that reaches it carried it."""
    with SandboxServer(SandboxConfig(nts={"api_key": NTS_KEY})) as server:
        yield server


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("G2BHUB_")}
    env.update({
        "PYTHONPATH": str(ROOT),
        "G2BHUB_LOGGING__JSON": "true",
        "G2BHUB_LOGGING__LEVELS__HTTPX": "INFO",  # httpx's request lines on, to prove they are redacted
        "G2BHUB_NTS_KEY": NTS_KEY,
        "G2BHUB_CONNECTORS__GLEIF__HEADERS": json.dumps({"Authorization": f"Bearer {AUTHORIZATION}"}),
        "G2BHUB_SYNDICATION__SECRET_KEYS": json.dumps([FERNET_KEY]),
        **extra,
    })
    return env


def assert_no_canary(text: str) -> None:
    for canary in CANARIES:
        assert canary not in text, f"{canary} leaked:\n" + "\n".join(
            line for line in text.splitlines() if canary in line)


def test_config_show_prints_no_canary(tmp_path: Path) -> None:
    env = environment(
        tmp_path,
        G2BHUB_DATABASE__URL=f"postgresql://hub:{DB_PASSWORD}@db.example:5432/hub?sslmode=verify-full"
                             f"&sslpassword={DB_SSL_PASSWORD}",
        G2BHUB_CONNECTORS__NTS__ENDPOINT=f"https://nts.example/api?serviceKey={ENDPOINT_KEY}",
    )
    for extra in ([], ["--json"]):
        proc = subprocess.run([sys.executable, "-m", "hub.cli.main", "config", "show", *extra], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=60, check=True)
        assert_no_canary(proc.stdout + proc.stderr)
        shown = yaml.safe_load(proc.stdout)  # JSON is YAML too
        assert shown["database"]["url"] == ("postgresql://hub:***@db.example:5432/hub?sslmode=verify-full"
                                            "&sslpassword=***")
        assert shown["connectors"]["nts"]["endpoint"] == "https://nts.example/api?serviceKey=***"
        assert shown["connectors"]["gleif"]["headers"] == {"Authorization": "***"}
        assert shown["syndication"]["secret_keys"] == ["***"]
        assert shown["syndication"]["allow_private_targets"] is False  # a flag, shown


def test_logs_of_a_registration_and_an_error_carry_no_canary(twins: SandboxServer, tmp_path: Path) -> None:
    ep = twins.endpoints
    env = environment(
        tmp_path,
        G2BHUB_DATABASE__URL=f"sqlite:///{tmp_path / 'hub.db'}?sslpassword={DB_SSL_PASSWORD}",
        G2BHUB_CONNECTORS__NTS__ENDPOINT=ep["nts_base"],
        G2BHUB_CONNECTORS__NATIONAL_CERTS__ENDPOINT=ep["national_certs_endpoint"],
        G2BHUB_CONNECTORS__GLEIF__ENDPOINT=ep["gleif_base"],
        G2BHUB_CONNECTORS__NTS__RETRY__MAX_ATTEMPTS="1",
    )
    brn = next(s.identifiers["kr_brn"] for s in twins.dataset.suppliers
               if "kr_brn" in s.identifiers and "nts:active" in s.scenario)
    identifiers = {"kr_brn": brn, "lei": first_with(twins, "lei", "gleif:issued")}
    proc = subprocess.run([sys.executable, "-m", "tests.security.canary_run", json.dumps(identifiers)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    assert outcome["states"]["nts"] == "verified", proc.stderr  # the twin took the canary key
    assert outcome["states"]["gleif"] == "verified", proc.stderr
    assert outcome["boom"] == 500
    assert_no_canary(proc.stdout + proc.stderr)

    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    nts_host = ep["nts_base"].split("://", 1)[1]
    requests = [line["message"] for line in lines if line["logger"] == "httpx" and "/nts/" in line["message"]]
    assert requests and all(f"{nts_host}/status?serviceKey=***" in message for message in requests), requests
    [error] = [line for line in lines if line["message"] == "unhandled error"]
    assert f"RuntimeError: upstream {ep['nts_base']}/status?serviceKey=***" in error["exc_info"]
    assert "sqlite:///" in error["exc_info"] and "sslpassword=***" in error["exc_info"]
