"""``g2bhub serve --port N`` links to port N: the public base URL follows the port it listens on unless
one is configured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.support.environment import ROOT, free_port
from tests.support.waiting import eventually


def next_link(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/ocds/releases?after=0", timeout=5) as answer:
            return str(json.loads(answer.read())["links"]["next"])
    except OSError:
        return None


def serve(tmp_path: Path, port: int, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("G2BHUB_")}
    environment.update(
        {
            "PYTHONPATH": str(ROOT),
            "G2BHUB_LOGGING__JSON": "false",
            "G2BHUB_DATABASE__URL": f"sqlite:///{tmp_path / 'hub.db'}",
            **env,
        }
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "hub.cli.main", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        return str(
            eventually(
                lambda: next_link(port) or (server.poll() is not None and "exited"), timeout=90, what="the OCDS feed"
            )
        )
    finally:
        server.terminate()
        server.communicate(timeout=60)


def test_serve_port_is_in_the_links(tmp_path: Path) -> None:
    port = free_port()
    assert serve(tmp_path, port).startswith(f"http://127.0.0.1:{port}/api/v1/ocds/releases?")


def test_a_configured_public_base_url_is_kept(tmp_path: Path) -> None:
    link = serve(tmp_path, free_port(), G2BHUB_API__PUBLIC_BASE_URL="https://hub.example.go.kr")
    assert link.startswith("https://hub.example.go.kr/api/v1/ocds/releases?")
