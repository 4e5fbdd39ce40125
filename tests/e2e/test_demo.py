"""``g2bhub demo`` from a fresh copy of the source tree answers /readyz and honours a demo key it prints.

A ``git clone`` would only see what the lead has committed, so the test copies the working files
(tracked and untracked, minus ignored ones) instead, and runs the copy with the project's interpreter."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.environment import ROOT, free_port
from tests.support.waiting import eventually

KEY_LINE = re.compile(r"^\s+(institution|agency|supplier|operator)\s+(g2b_[0-9a-f]+_[A-Za-z0-9_-]+)\s", re.M)

pytestmark = pytest.mark.slow


def copy_source_tree(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src, target = ROOT / rel, dest / rel
        if src.is_symlink() or src.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target, follow_symlinks=False)  # hub/defaults links to config/


def get(url: str, key: str | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def get_list(url: str, key: str) -> tuple[int, list[dict[str, object]]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.loads(response.read())


def post(url: str, key: str, body: object) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class Output:
    """Collects a pipe in a thread, so the child never blocks on a full pipe while we poll."""

    def __init__(self, stream: object) -> None:
        self.text = ""
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self.thread.start()

    def _pump(self, stream: object) -> None:
        for line in stream:
            with self.lock:
                self.text += line

    def get(self) -> str:
        with self.lock:
            return self.text


@pytest.fixture
def source_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "g2b-hub"
    copy_source_tree(dest)
    return dest


def demo_environment(cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("G2BHUB_")}
    env["PYTHONPATH"] = str(cwd)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_demo(cwd: Path, port: int) -> tuple[subprocess.Popen[str], Output, Output]:
    env = demo_environment(cwd)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.cli.main", "demo", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so we can stop everything it started
    )
    assert proc.stdout is not None and proc.stderr is not None
    return proc, Output(proc.stdout), Output(proc.stderr)


def stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def test_the_copy_is_what_runs(source_copy: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(source_copy)}
    where = subprocess.run(
        [sys.executable, "-c", "import hub; print(hub.__file__)"],
        cwd=source_copy,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(source_copy)


class Demo:
    """One running ``g2bhub demo``: its base URL, the keys it printed, and how to stop it."""

    def __init__(self, cwd: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc, self.out, self.err = start_demo(cwd, self.port)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"demo exited with {self.proc.returncode}\n{self.out.get()}\n{self.err.get()}")
            try:
                last = get(f"{self.base}/readyz")
                if last[0] == 200 and last[1].get("status") == "ok" and KEY_LINE.search(self.out.get()):
                    return
            except OSError as exc:  # not listening yet
                last = exc
            time.sleep(0.2)
        pytest.fail(f"demo not ready in {timeout}s (last: {last})\n{self.out.get()}\n{self.err.get()}")

    @property
    def keys(self) -> dict[str, str]:
        return dict(KEY_LINE.findall(self.out.get()))

    def stop(self) -> int:
        return stop(self.proc)


@pytest.fixture
def demos() -> Iterator[list[Demo]]:
    started: list[Demo] = []
    yield started
    for demo in started:
        demo.stop()


def test_demo_from_a_fresh_copy_is_ready_and_its_keys_work(source_copy: Path, demos: list[Demo]) -> None:
    demo = Demo(source_copy)
    demos.append(demo)
    demo.wait_ready()
    base, banner, keys = demo.base, demo.out.get(), demo.keys
    assert set(keys) == {"institution", "agency", "supplier", "operator"}
    for url in (f"{base}/docs", f"{base}/readyz", f"{base}/metrics", f"{base}/api/v1"):
        assert url in banner
    assert f"curl -s -H 'Authorization: Bearer {keys['institution']}' {base}/api/v1/me" in banner

    code, me = get(f"{base}/api/v1/me", keys["institution"])
    assert code == 200, me
    assert me["organisation"]["kind"] == "institution"  # type: ignore[index]
    assert get(f"{base}/api/v1/me")[0] == 401
    with urllib.request.urlopen(f"{base}/docs", timeout=5) as docs:  # over the wire: no uvicorn banner
        assert docs.headers.get("Server") is None
        assert "frame-ancestors 'none'" in docs.headers["Content-Security-Policy"]
    assert (source_copy / "var" / "demo" / "hub.db").exists()  # the demo's data lives in the copy

    # the keys are in the data directory too, for the owner only
    key_file = source_copy / "var" / "demo" / "demo-keys.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert {kind: entry["api_key"] for kind, entry in json.loads(key_file.read_text())["keys"].items()} == keys
    assert str(key_file) in banner

    # a second demo on the same data directory is refused at once, and the first one keeps working
    second = subprocess.run([sys.executable, "-m", "hub.cli.main", "demo", "--port", str(free_port())],
                            cwd=source_copy, env=demo_environment(source_copy), capture_output=True, text=True,
                            timeout=120)
    assert second.returncode == 1
    assert f"a demo is already running on {source_copy / 'var' / 'demo'} (pid {demo.proc.pid}, {base})" in (
        second.stderr)
    assert get(f"{base}/api/v1/me", keys["institution"])[0] == 200

    # the command line finds the demo's database by itself
    listed = subprocess.run([sys.executable, "-m", "hub.cli.main", "orgs", "list", "--json"], cwd=source_copy,
                            env=demo_environment(source_copy), capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    organisations = {org["kind"]: org["id"] for org in json.loads(listed.stdout)}
    assert set(organisations) == {"institution", "agency", "supplier", "operator"}

    # the PPS puller imports the PPS twin's notices as the demo institution
    pps_url = f"{base}/api/v1/notices?institution={organisations['institution']}&category=goods&limit=100"
    assert pps_url.split("&limit")[0] in banner
    pps_notices = eventually(lambda: [n for n in get(pps_url)[1].get("items", [])  # type: ignore[attr-defined]
                                      if "조달" in str(n["title"])], timeout=60, what="notices pulled from PPS")
    assert pps_notices

    # the seeded suppliers' control is approved by the demo operator, so their answers are not held back
    assert "/control/challenges" in banner and "/control/approvals" in banner  # how a newcomer proves control
    code, seeded = get_list(f"{base}/api/v1/suppliers", keys["supplier"])
    assert code == 200 and seeded, seeded
    for supplier in seeded:
        code, control = get(f"{base}/api/v1/suppliers/{supplier['id']}/control", keys["supplier"])
        assert code == 200, control
        assert {(s["state"], s["method"]) for s in control["identifiers"]} == {("proven", "manual")}
        code, answer = post(f"{base}/api/v1/suppliers/{supplier['id']}/eligibility", keys["operator"],
                            {"requirements": [{"kind": "tax_status", "status": "active"}, {"kind": "lei_valid"},
                                              {"kind": "vat_registered"}, {"kind": "company_active"}]})
        assert code == 200, answer
        assert "control of identifier not proven" not in json.dumps(answer)
    assert demo.stop() == 0, demo.err.get()


def test_demo_restart_reuses_organisations_and_the_keys_in_its_key_file(source_copy: Path, demos: list[Demo]) -> None:
    first = Demo(source_copy)
    demos.append(first)
    first.wait_ready()
    old_key = first.keys["supplier"]
    code, me_before = get(f"{first.base}/api/v1/me", old_key)
    assert code == 200, me_before
    assert first.stop() == 0, first.err.get()

    second = Demo(source_copy)
    demos.append(second)
    second.wait_ready()
    assert second.keys == first.keys  # read back from demo-keys.json: the copied commands keep working
    code, me_after = get(f"{second.base}/api/v1/me", old_key)
    assert code == 200, me_after
    assert me_after["organisation"] == me_before["organisation"]  # the same organisation, not a second one
    assert second.stop() == 0, second.err.get()

    # without the key file the keys cannot be read back: fresh ones, and the old ones stop working
    (source_copy / "var" / "demo" / "demo-keys.json").unlink()
    third = Demo(source_copy)
    demos.append(third)
    third.wait_ready()
    assert third.keys["supplier"] != old_key
    assert get(f"{third.base}/api/v1/me", third.keys["supplier"])[0] == 200
    assert get(f"{third.base}/api/v1/me", old_key)[0] == 401
