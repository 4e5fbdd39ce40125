"""The README's first walk through the flows, run as a newcomer would: start ``g2bhub demo``, take the keys
and a demo supplier's id from its banner, and run the README's shell block itself (its curl lines and
``g2bhub sandbox receiver``) — publish a notice, register a supplier, ask eligibility, subscribe the
agency to the receiver, publish again — until the receiver prints the verified delivery; then stop the
demo cleanly. A README that drifts from the hub breaks this test.

The block runs as written except for what is specific to this machine: the assignments of the demo's
URL and keys (given in the environment instead), the receiver's port (a free one), an ``echo`` after
each curl (so each answer is one line) and the receiver's output (sent to a file)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.environment import ROOT, free_port

pytestmark = pytest.mark.slow

KEY_LINE = re.compile(r"^\s+(institution|agency|supplier|operator)\s+(g2b_[0-9a-f]+_[A-Za-z0-9_-]+)\s", re.M)
SUPPLIER_LINE = re.compile(r"^\s+supplier\s+([0-9a-f]{8}-[0-9a-f-]{27})\s", re.M)
GIVEN = re.compile(r"^(HUB|[A-Z]+_KEY|SUPPLIER_ID)=")  # the lines a reader fills in from the banner
README_PORT = "8901"


def readme_walkthrough() -> str:
    """The fenced ``sh`` block after the README's walkthrough marker."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    marker = readme.index("<!-- walkthrough:")
    match = re.compile(r"```sh\n(.*?)\n```", re.S).search(readme, marker)
    assert match is not None, "no ```sh block after the walkthrough marker"
    return match.group(1)


def runnable(block: str, receiver_port: int, receiver_log: Path) -> str:
    lines = []
    for line in block.splitlines():
        if GIVEN.match(line):
            continue
        line = line.replace(README_PORT, str(receiver_port))
        if line.startswith("curl "):
            line += "; echo"
        if "g2bhub sandbox receiver" in line and line.endswith(" &"):
            line = line.removesuffix(" &") + f" > {receiver_log} 2>&1 &"
        lines.append(line)
    return "\n".join(lines) + "\n"


class Demo:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.out_path, self.err_path = workdir / "demo.out", workdir / "demo.err"
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub.cli.main", "demo", "--port", str(self.port),
                 "--data-dir", str(workdir / "data")],
                cwd=workdir, env=env, stdout=out, stderr=err, text=True, start_new_session=True)

    def output(self) -> str:
        return self.out_path.read_text(encoding="utf-8")

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"demo exited with {self.proc.returncode}\n{self.output()}\n{self.err_path.read_text()}")
            if "Press Ctrl+C to stop." in self.output():
                try:
                    with urllib.request.urlopen(f"{self.base}/readyz", timeout=5) as ready:
                        if ready.status == 200:
                            return
                except (OSError, urllib.error.HTTPError):
                    pass
            time.sleep(0.2)
        pytest.fail(f"demo not ready in {timeout}s\n{self.output()}\n{self.err_path.read_text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory laid out like a checkout after ``make demo``: ``.venv/bin/g2bhub`` runs this source tree."""
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    g2bhub = bin_dir / "g2bhub"
    g2bhub.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hub.cli.main "$@"\n')
    g2bhub.chmod(0o755)
    return tmp_path


@pytest.fixture
def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("G2BHUB_")}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def demo(workdir: Path, environment: dict[str, str]) -> Iterator[Demo]:
    running = Demo(workdir, environment)
    yield running
    running.stop()


def answers(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_the_readme_block_has_the_steps_this_test_runs() -> None:
    block = readme_walkthrough()
    curls = [line for line in block.splitlines() if line.startswith("curl -s -X POST")]
    assert [line.rsplit(" ", 1)[-1] for line in curls] == [
        "$HUB/notices", "$HUB/suppliers", "$HUB/suppliers/$SUPPLIER_ID/eligibility", "$HUB/notices"]
    for step in ('$HUB/subscriptions | python3', '.venv/bin/g2bhub sandbox receiver --port 8901 &',
                 '"url": "http://127.0.0.1:8901/"', 'export G2BHUB_RECEIVER_SECRET=$(curl -s -X POST'):
        assert step in block, step
    assert [line for line in block.splitlines() if GIVEN.match(line)], "the lines the reader fills in"


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None, reason="needs curl and bash")
def test_the_readme_walkthrough_against_the_demo(demo: Demo, workdir: Path, environment: dict[str, str]) -> None:
    demo.wait_ready()
    banner = demo.output()
    keys = dict(KEY_LINE.findall(banner))
    assert set(keys) == {"institution", "agency", "supplier", "operator"}, banner
    seeded = SUPPLIER_LINE.findall(banner)
    assert seeded, banner
    assert "webhook targets on this machine are allowed" in banner  # the banner says the demo allows loopback
    assert "g2bhub sandbox receiver --port 8901 &" in banner

    receiver_port, receiver_log = free_port(), workdir / "receiver.out"
    script = runnable(readme_walkthrough(), receiver_port, receiver_log)
    env = {**environment, "HUB": f"{demo.base}/api/v1", "INSTITUTION_KEY": keys["institution"],
           "AGENCY_KEY": keys["agency"], "SUPPLIER_KEY": keys["supplier"], "OPERATOR_KEY": keys["operator"],
           "SUPPLIER_ID": seeded[0]}
    shell = subprocess.Popen(["bash", "-c", script], cwd=workdir, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = shell.communicate(timeout=120)
        assert shell.returncode == 0, f"{stdout}\n{stderr}"
        notice, supplier, eligibility, published = answers(stdout)
        for answer in (notice, supplier, eligibility, published):
            assert not str(answer.get("type", "")).startswith("https://g2b-hub.dev/problems/"), answer
        assert notice["version"] == 1 and notice["status"] == "active", notice
        assert supplier["identifiers"] == {"kr_brn": "3179739403"}, supplier
        assert eligibility["supplier_id"] == seeded[0], eligibility
        assert len(eligibility["requirements"]) == 2, eligibility  # type: ignore[arg-type]

        expected = f"verified  notice.published  notice {published['id']}  v1  webhook-id dlv_"
        deadline = time.monotonic() + 60
        while expected not in (printed := receiver_log.read_text() if receiver_log.exists() else ""):
            if time.monotonic() > deadline:
                pytest.fail(f"the receiver did not print the delivery:\n{printed}\n{demo.err_path.read_text()}")
            time.sleep(0.2)
        assert printed.startswith(f"webhook receiver on http://127.0.0.1:{receiver_port}/")
        assert "rejected" not in printed, printed
    finally:
        if shell.poll() is None:
            shell.kill()
        os.killpg(shell.pid, signal.SIGINT)  # the receiver the block started in the background
    assert demo.stop() == 0, demo.err_path.read_text()
    assert "demo stopped" in demo.err_path.read_text()
