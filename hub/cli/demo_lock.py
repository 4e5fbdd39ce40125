"""One demo per data directory: an exclusive lock on ``demo.lock`` in it, held for the demo's life.

The lock is taken before the demo touches anything (no migration, no key issued or revoked, no port
bound), so a second ``g2bhub demo`` on the same directory stops at once with the running demo's pid and
URL, and the first one keeps working. The operating system releases the lock when the holder exits,
even when it is killed, so a stale file never blocks the next start."""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

__all__ = ["LOCK_FILE", "DemoAlreadyRunning", "DemoLock"]

LOCK_FILE = "demo.lock"


class DemoAlreadyRunning(Exception):
    """Another process holds the data directory's lock; ``holder`` is what it wrote there."""

    def __init__(self, data_dir: Path, holder: dict[str, Any]) -> None:
        self.data_dir = data_dir
        self.holder = holder
        pid = holder.get("pid", "unknown pid")
        url = holder.get("url", "unknown URL")
        super().__init__(
            f"a demo is already running on {data_dir} (pid {pid}, {url}); stop it first (Ctrl+C in its "
            "terminal), or start another with --data-dir <other directory> --port <other port>"
        )


class DemoLock:
    """``with DemoLock(data_dir, url):`` — raises :class:`DemoAlreadyRunning` if another demo holds it."""

    def __init__(self, data_dir: Path, url: str) -> None:
        self.path = data_dir / LOCK_FILE
        self.data_dir = data_dir
        self.url = url
        self._file: IO[str] | None = None

    def acquire(self) -> DemoLock:
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the demo's life
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = _parse(handle.read())
            handle.close()
            raise DemoAlreadyRunning(self.data_dir, holder) from None
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps(
                {"pid": os.getpid(), "url": self.url, "started_at": datetime.now(UTC).isoformat(timespec="seconds")}
            )
        )
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        if self._file is None:
            return
        try:
            self._file.seek(0)
            self._file.truncate()
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        finally:
            self._file.close()
            self._file = None

    def __enter__(self) -> DemoLock:
        return self.acquire()

    def __exit__(self, *_: object) -> None:
        self.release()


def _parse(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
