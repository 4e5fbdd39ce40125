"""The API path over real HTTP: publishes per second on PostgreSQL, and the list's tail on SQLite.

    python bench/api_path.py [--database-url URL] [--posts 1500] [--gets 3000] [--seed 300]

1. ``POST /api/v1/notices`` with 8 concurrent clients (keep-alive connections, one institution key) on
   a throw-away PostgreSQL database created on ``--database-url``'s server (default
   ``G2BHUB_TEST_DATABASE_URL``): publishes/s, latency median / mean / p99.
2. ``GET /api/v1/notices`` with 16 concurrent clients on SQLite (``--seed`` notices stored first, each
   request a different page size so no proxy cache could answer it): requests/s, median / mean / p99.

The hub runs as ``g2bhub serve --no-worker`` in its own process (uvicorn on a free port, the in-process
broker, no embedded worker: what is measured is the API, not the relay and consumers that would run
beside it), with quotas on but their limits out of reach. The baseline is a bare ASGI app under the
same uvicorn options in its own process, driven by the same clients, concurrency and request count:
the ratio hub ÷ bare shows the hub's own cost on this machine at this moment.
Prints figures only; the last line of stdout is {"bench": "api_path", "figures": {...}}.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import Figure, emit
from hub.bootstrap import bootstrap
from hub.config import Settings
from hub.notices.commands import PublishNotice
from hub.notices.model import NoticeContent
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from tests.support.db import throwaway_database
from tests.support.notices import notice_body

ROOT = Path(__file__).resolve().parent.parent
BARE_APP = """
import json, sys, uvicorn
BODY = json.dumps({"id": "00000000-0000-0000-0000-000000000000", "version": 1, "seq": 1}).encode()
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    status = 201 if scope["method"] == "POST" else 200
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": BODY})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False, server_header=False)
"""

# Budgets stay on (their bookkeeping is part of every request) but out of reach of the bench.
NO_LIMITS = {f"G2BHUB_QUOTAS__{budget}__LIMIT": "10000000"
             for budget in ("KEY_READS", "KEY_WRITES", "ORG_READS", "ORG_WRITES", "ANONYMOUS")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(port: int, process: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server on port {port} exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the server on port {port} did not answer in 60 s")


class Server:
    """A server process on a free port, stopped (SIGTERM, then kill) on exit."""

    def __init__(self, argv: list[str], env: dict[str, str], ready_path: str) -> None:
        self.port = free_port()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__, with the process
        self.process = subprocess.Popen([*argv, str(self.port)], env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        cwd=ROOT)
        self.ready_path = ready_path

    def __enter__(self) -> Server:
        try:
            wait_until_up(self.port, self.process, self.ready_path)
        except SystemExit:
            self.log.seek(0)
            print(self.log.read().decode(errors="replace")[-3000:], file=sys.stderr)
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def hub_server(database_url: str, extra: list[str]) -> Server:
    env = {**os.environ, **NO_LIMITS, **dict(item.split("=", 1) for item in extra),
           "G2BHUB_DATABASE__URL": database_url, "G2BHUB_BROKER__KIND": "inprocess",
           "G2BHUB_LOGGING__LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    env.pop("G2BHUB_CONFIG", None)
    argv = [sys.executable, "-c", "from hub.cli.main import app; app()", "serve", "--no-worker", "--no-migrate",
            "--port"]
    return Server(argv, env, "/healthz")


def bare_server() -> Server:
    return Server([sys.executable, "-c", BARE_APP], dict(os.environ), "/")


Request = Callable[[int], tuple[str, str, bytes | None, dict[str, str]]]


def drive(port: int, clients: int, total: int, request: Request, expect: int) -> tuple[float, list[float]]:
    """``total`` requests from ``clients`` threads, each on its own keep-alive connection; returns
    (requests per second, latencies in seconds)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(total))
    start_line = threading.Barrier(clients + 1)

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        start_line.wait()
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            method, path, body, headers = request(n)
            began = time.perf_counter()
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            mine.append(time.perf_counter() - began)
            if response.status != expect and len(errors) < 5:
                errors.append(f"{method} {path}: {response.status} {payload[:200]!r}")
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start_line.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise SystemExit("unexpected answers:\n" + "\n".join(errors))
    return total / elapsed, latencies


def summary(name: str, rate: float, latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    figures = {
        "per_s": rate,
        "median_ms": statistics.median(ordered) * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }
    print(f"{name:<44} {rate:8.1f}/s  median {figures['median_ms']:7.2f} ms  mean {figures['mean_ms']:7.2f} ms"
          f"  p99 {figures['p99_ms']:8.2f} ms  ({len(ordered)} requests)")
    return figures


def prepare(database_url: str, seed: int) -> str:
    """Schema, one institution (its key is returned) and ``seed`` published notices."""
    hub = bootstrap(Settings(database={"url": database_url}, broker={"kind": "inprocess"}), migrate=True)
    try:
        org, issued = hub.bus.handle(CreateOrganisation(name="Bench institution", kind=OrgKind.INSTITUTION))
        for n in range(seed):
            content = NoticeContent.parse(notice_body(title=f"Seeded notice {n}"))
            hub.bus.handle(PublishNotice(institution_org_id=org.id, content=content))
        return str(issued.plaintext)
    finally:
        hub.close()


def posts(port: int, key: str | None) -> Request:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"

    def request(n: int) -> tuple[str, str, bytes | None, dict[str, str]]:
        return "POST", "/api/v1/notices", json.dumps(notice_body(title=f"Bench notice {n}")).encode(), headers
    return request


def gets(n: int) -> tuple[str, str, bytes | None, dict[str, str]]:
    return "GET", f"/api/v1/notices?limit={20 + n % 7}", None, {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("G2BHUB_TEST_DATABASE_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="a PostgreSQL server URL; a throw-away database is created on it")
    parser.add_argument("--posts", type=int, default=1500)
    parser.add_argument("--gets", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=300, help="notices stored before the SQLite list is read")
    parser.add_argument("--post-clients", type=int, default=8)
    parser.add_argument("--get-clients", type=int, default=16)
    parser.add_argument("--hub-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment of the hub process (G2BHUB_API__THREADS=40 …)")
    args = parser.parse_args()
    figures: dict[str, Figure] = {}

    with bare_server() as bare:
        drive(bare.port, args.post_clients, 200, posts(bare.port, None), 201)  # warm up
        bare_post = summary("bare ASGI POST (baseline)", *drive(bare.port, args.post_clients, args.posts,
                                                                  posts(bare.port, None), 201))
        bare_get = summary("bare ASGI GET (baseline)", *drive(bare.port, args.get_clients, args.gets, gets, 200))

    with throwaway_database(args.database_url, prefix="g2bhub_bench") as db_url:
        key = prepare(db_url, 0)
        with hub_server(db_url, args.hub_env) as hub:
            drive(hub.port, args.post_clients, 100, posts(hub.port, key), 201)  # warm up
            post = summary(f"POST /api/v1/notices, {args.post_clients} clients, PostgreSQL",
                           *drive(hub.port, args.post_clients, args.posts, posts(hub.port, key), 201))

    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite:///{tmp}/bench.db"
        prepare(sqlite_url, args.seed)
        with hub_server(sqlite_url, args.hub_env) as hub:
            drive(hub.port, args.get_clients, 200, gets, 200)  # warm up
            get = summary(f"GET /api/v1/notices, {args.get_clients} clients, SQLite",
                          *drive(hub.port, args.get_clients, args.gets, gets, 200))

    print(f"POST: hub ÷ bare ASGI {post['per_s'] / bare_post['per_s']:.3f}; "
          f"GET: hub ÷ bare ASGI {get['per_s'] / bare_get['per_s']:.3f}")
    for prefix, found in (("post", post), ("bare_post", bare_post), ("get", get), ("bare_get", bare_get)):
        figures.update({f"{prefix}_{name}": value for name, value in found.items()})
    figures["post_clients"] = args.post_clients
    figures["get_clients"] = args.get_clients
    figures["post_ratio_to_bare"] = post["per_s"] / bare_post["per_s"]
    figures["get_ratio_to_bare"] = get["per_s"] / bare_get["per_s"]
    emit("api_path", figures)


if __name__ == "__main__":
    main()
