"""The demo's API keys on disk: ``demo-keys.json`` in the data directory, readable by its owner only.

The hub keeps keys only as hashes, so this file is the one place a demo key can be read again after its
banner scrolled away. A restarted demo reads it back and keeps every key that is still active, so the
commands you copied keep working; a key that is missing or was revoked meanwhile is issued afresh and the
file rewritten.

Shape::

    {"base_url": "http://127.0.0.1:8000",
     "keys": {"institution": {"org_id": "...", "name": "...", "api_key": "g2b_..."}, ...}}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["KEYS_FILE", "DemoKey", "read_keys", "write_keys"]

KEYS_FILE = "demo-keys.json"

DemoKey = dict[str, str]  # org_id, name, api_key


def read_keys(data_dir: Path) -> dict[str, DemoKey]:
    """Kind → its entry; empty when the file is missing or unreadable (then every key is issued anew)."""
    try:
        data: Any = json.loads((data_dir / KEYS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, dict):
        return {}
    return {
        kind: entry for kind, entry in keys.items() if isinstance(entry, dict) and isinstance(entry.get("api_key"), str)
    }


def write_keys(data_dir: Path, base_url: str, keys: dict[str, DemoKey]) -> Path:
    """Write the file (mode 0600) by replacing it whole, so a reader never sees half of it."""
    path = data_dir / KEYS_FILE
    partial = path.with_name(f".{KEYS_FILE}.{os.getpid()}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # whatever the umask or an older file said
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump({"base_url": base_url, "keys": keys}, handle, indent=2)
            handle.write("\n")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    return path
