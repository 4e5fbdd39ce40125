"""Sandbox test keys stay with the sandbox: which endpoints count as a sandbox, which keys as test keys,
and the one line that names the variable to set when a test key would go to a real service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.key_policy import is_sandbox_endpoint, is_sandbox_key, sandbox_key_problems
from connectors.sandbox.config import DEFAULT_API_KEYS
from hub.config import Settings
from tests.support.environment import ROOT

REAL_NTS = "https://api.odcloud.kr/api/nts-businessman/v1"


@pytest.fixture(autouse=True)
def no_keys_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("G2BHUB_NTS_KEY", "G2BHUB_COMPANIES_HOUSE_KEY", "G2BHUB_IAF_KEY"):
        monkeypatch.delenv(name, raising=False)


def connectors(**changes: Any) -> Any:
    return Settings(connectors=changes).connectors


@pytest.mark.parametrize(
    ("url", "sandbox"),
    [
        ("http://127.0.0.1:8900/nts", True),
        ("http://127.8.9.10:1234/x", True),
        ("http://localhost:8900/nts", True),
        ("http://LOCALHOST./nts", True),
        ("http://twins.localhost:8900/nts", True),
        ("http://[::1]:8900/nts", True),
        (REAL_NTS, False),
        ("https://api.company-information.service.gov.uk", False),
        ("http://10.0.0.5:8900/nts", False),  # a twin on another host is treated like a real service
        ("http://localhost.example.com/nts", False),
        ("http://127.0.0.1.nip.io/nts", False),
        ("http://[::ffff:8.8.8.8]/nts", False),
    ],
)
def test_a_sandbox_endpoint_is_one_on_a_loopback_host(url: str, sandbox: bool) -> None:
    assert is_sandbox_endpoint(url) is sandbox


def test_every_shipped_inline_key_and_every_twin_key_is_a_sandbox_key() -> None:
    shipped = yaml.safe_load((ROOT / "config" / "connectors.yaml").read_text(encoding="utf-8"))["connectors"]
    inline = {name: entry["key"] for name, entry in shipped.items() if "key" in entry}
    assert set(inline) == {"nts", "companies_house", "iaf"}
    assert all(is_sandbox_key(key) for key in [*inline.values(), *DEFAULT_API_KEYS.values()])
    assert not is_sandbox_key("0b7f3e…a-real-looking-key")


def test_the_shipped_configuration_passes() -> None:
    assert sandbox_key_problems(Settings().connectors) == []


def test_a_real_endpoint_without_a_key_in_the_environment_is_refused_naming_the_variable() -> None:
    problems = sandbox_key_problems(connectors(nts={"endpoint": REAL_NTS}))
    assert problems == [
        f"connectors.nts: {REAL_NTS} is not a sandbox endpoint, but the key is a sandbox test key "
        "(the inline key; G2BHUB_NTS_KEY is not set): set G2BHUB_NTS_KEY to the key issued for this service"
    ]


def test_every_offending_system_is_named_and_each_its_own_variable() -> None:
    problems = sandbox_key_problems(
        connectors(
            nts={"endpoint": REAL_NTS},
            companies_house={"endpoint": "https://api.company-information.service.gov.uk"},
            iaf={"endpoint": "https://api.iafcertsearch.org/api/client/v1"},
            gleif={"endpoint": "https://api.gleif.org"},  # no key at all: nothing to refuse
        )
    )
    assert [line.split(":", 1)[0] for line in problems] == [
        "connectors.nts",
        "connectors.companies_house",
        "connectors.iaf",
    ]
    assert [line.rsplit("set ", 1)[1].split()[0] for line in problems] == [
        "G2BHUB_NTS_KEY",
        "G2BHUB_COMPANIES_HOUSE_KEY",
        "G2BHUB_IAF_KEY",
    ]


def test_a_real_endpoint_with_its_key_in_the_environment_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("G2BHUB_NTS_KEY", "d9Wm3xk0RealLookingKey%3D%3D")
    assert sandbox_key_problems(connectors(nts={"endpoint": REAL_NTS})) == []


def test_a_real_endpoint_with_its_key_in_a_file_is_fine(tmp_path: Path) -> None:
    key_file = tmp_path / "nts.key"
    key_file.write_text("d9Wm3xk0RealLookingKey\n", encoding="utf-8")
    assert sandbox_key_problems(connectors(nts={"endpoint": REAL_NTS, "key_file": str(key_file)})) == []


def test_the_error_line_shows_no_secret_of_the_endpoint() -> None:
    url = "https://user:pa55word@nts.example:8443/api?serviceKey=CANARY-IN-URL#frag"
    [problem] = sandbox_key_problems(connectors(nts={"endpoint": url}))
    assert problem.startswith("connectors.nts: https://nts.example:8443/api is not a sandbox endpoint")
    assert "CANARY" not in problem and "pa55word" not in problem


def test_a_missing_key_file_is_named_with_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "nts.key"
    [problem] = sandbox_key_problems(connectors(nts={"endpoint": REAL_NTS, "key_file": str(missing)}))
    assert f"(the inline key; G2BHUB_NTS_KEY is not set; the key file {missing} does not exist)" in problem


def test_a_real_key_written_inline_by_the_deployment_is_fine() -> None:
    assert sandbox_key_problems(connectors(nts={"endpoint": REAL_NTS, "key": "d9Wm3xk0RealLookingKey"})) == []


def test_a_sandbox_key_put_in_the_variable_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("G2BHUB_NTS_KEY", "sandbox-nts-key")
    [problem] = sandbox_key_problems(connectors(nts={"endpoint": REAL_NTS}))
    assert "(from G2BHUB_NTS_KEY)" in problem and problem.endswith(
        "set G2BHUB_NTS_KEY to the key issued for this service"
    )


def test_the_sandbox_endpoint_with_the_sandbox_key_is_fine() -> None:
    assert sandbox_key_problems(connectors(nts={"endpoint": "http://localhost:9999/nts"})) == []


def test_a_disabled_system_is_not_checked() -> None:
    assert sandbox_key_problems(connectors(nts={"endpoint": REAL_NTS, "enabled": False})) == []


def test_without_key_env_the_setting_to_add_is_named() -> None:
    [problem] = sandbox_key_problems(connectors(nts={"endpoint": REAL_NTS, "key_env": None}))
    assert problem.endswith(
        "set connectors.nts.key_env to the name of an environment variable holding the key "
        "issued for this service (or connectors.nts.key_file)"
    )
