"""The hub as an installed package: a wheel built with ``pip wheel .``, installed into a fresh virtual
environment outside the checkout, runs ``g2bhub demo`` and honours a demo key it prints.

The wheel's code and data are all the new environment has of the hub (asserted); only the third-party
dependencies are borrowed from the running interpreter's site-packages, through a ``.pth`` file written
after the install, so the test needs no download of them and pip never sees the development install."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEY_LINE = re.compile(r"^\s+institution\s+(g2b_[0-9a-f]+_[A-Za-z0-9_-]+)\s", re.M)

pytestmark = pytest.mark.slow


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def build_wheel(dest: Path) -> Path:
    """From a copy of the tree: an in-tree build would leave build/ in the checkout, and a stale build/
    would slip files deleted since into the wheel."""
    source = dest / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "var", "tests", "bench"))
    built = run(sys.executable, "-m", "pip", "wheel", source, "--no-deps", "--quiet", "-w", dest, cwd=dest)
    if built.returncode != 0:
        message = f"pip wheel failed:\n{built.stdout}\n{built.stderr}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)  # e.g. a developer offline without the build backend cached
    [wheel] = dest.glob("g2b_hub-*.whl")
    return wheel


def make_venv(where: Path, wheel: Path) -> Path:
    """A fresh environment holding the wheel; the dependencies are borrowed only after the install."""
    made = run(sys.executable, "-m", "venv", "--without-pip", where, cwd=where.parent)
    assert made.returncode == 0, made.stderr
    python = where / "bin" / "python"
    installed = run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
                    "--quiet", wheel, cwd=where.parent)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=where.parent)
    borrowed = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib.stdout.strip()) / "borrowed_dependencies.pth").write_text("\n".join(sorted(borrowed)) + "\n")
    return where


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, key: str | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def collect(stream: object, into: list[str]) -> threading.Thread:
    """Read a pipe in a thread, so the child never blocks on a full pipe while we poll."""
    thread = threading.Thread(target=lambda: into.extend(stream), daemon=True)  # type: ignore[call-overload]
    thread.start()
    return thread


def test_the_wheel_runs_the_demo_outside_the_checkout(tmp_path: Path) -> None:
    assert not tmp_path.is_relative_to(ROOT)
    wheel = build_wheel(tmp_path)
    venv = make_venv(tmp_path / "venv", wheel)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("G2BHUB_") and k != "PYTHONPATH"}
    env["PYTHONUNBUFFERED"] = "1"

    where = run(venv / "bin" / "python", "-c", "import hub.config; print(hub.config.__file__)", cwd=cwd, env=env)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # the hub comes from the wheel

    port = free_port()
    demo = subprocess.Popen(
        [str(venv / "bin" / "g2bhub"), "demo", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, so stopping it stops all it started
    )
    out: list[str] = []
    err: list[str] = []
    readers = [collect(demo.stdout, out), collect(demo.stderr, err)]
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 45
        key = None
        while key is None:
            if demo.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"demo not ready (exit {demo.returncode})\n{''.join(out)}\n{''.join(err)}")
            try:
                ready = get(f"{base}/readyz")
            except OSError:  # not listening yet
                ready = (0, {})
            found = KEY_LINE.search("".join(out))
            if ready[0] == 200 and ready[1].get("status") == "ok" and found:
                key = found.group(1)
            else:
                time.sleep(0.2)
        code, me = get(f"{base}/api/v1/me", key)
        assert code == 200, me
        assert me["organisation"]["kind"] == "institution"  # type: ignore[index]
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        for reader in readers:
            reader.join(timeout=5)
    assert demo.returncode == 0, "".join(err)
    assert (tmp_path / "data" / "hub.db").exists()
