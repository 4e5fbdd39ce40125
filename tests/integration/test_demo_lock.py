"""One demo per data directory: a second ``g2bhub demo`` on a directory whose demo is running stops
before it touches anything, naming the running one; a demo that died leaves nothing that blocks the next.
Real processes: the lock holder is one, the refused demo another."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.cli.demo_lock import LOCK_FILE, DemoAlreadyRunning, DemoLock
from tests.support.environment import ROOT, free_port

HOLDER = """
import sys, time
from pathlib import Path
from hub.cli.demo_lock import DemoLock
lock = DemoLock(Path(sys.argv[1]), sys.argv[2]).acquire()
print("locked", flush=True)
time.sleep(600)
"""


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("G2BHUB_")}
    env.update({"PYTHONPATH": str(ROOT), "G2BHUB_LOGGING__JSON": "false"})
    return env


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path), "http://127.0.0.1:8123"],
        env=environment(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_a_second_demo_is_refused_before_it_touches_anything(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    port = free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "hub.cli.main", "demo", "--data-dir", str(tmp_path), "--port", str(port)],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert f"a demo is already running on {tmp_path} (pid {holder.pid}, http://127.0.0.1:8123)" in proc.stderr
    assert "Traceback" not in proc.stderr
    # nothing touched: no database (so no migration, no key issued or revoked), no key file
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_FILE]
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == holder.pid  # the holder's note is intact
    assert holder.poll() is None


def test_the_lock_of_a_killed_demo_does_not_block_the_next(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(DemoAlreadyRunning):
        DemoLock(tmp_path, "http://127.0.0.1:9").acquire()
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with DemoLock(tmp_path, "http://127.0.0.1:9"):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    # released: the next one takes it at once
    DemoLock(tmp_path, "http://127.0.0.1:9").acquire().release()
