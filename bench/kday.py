"""A KONEPS peak day, compressed: the whole hub, as real processes on PostgreSQL + RabbitMQ, taking a
day's notices, subscriptions, registrations and credential refreshes through its public entry points.

    python bench/kday.py [--scale 1.0] [--workers 2] [--api-processes 2] [--receivers 2]
                         [--database-url URL] [--amqp-url URL] [--upstream-latency-ms 50,300]

At ``--scale 1``: 5,000 notices published through ``POST /api/v1/notices`` (20 % amended once, 3 %
cancelled, through their routes), 10,000 agency webhook subscriptions created through
``POST /api/v1/subscriptions``, 1,000,000 supplier alert subscriptions bulk-loaded behind 100 batched
webhook endpoints, 20,000 supplier registrations through ``POST /api/v1/suppliers`` and 100,000
credential refreshes done by the hub's own refresh scheduler, both against the sandbox twins
(``g2bhub sandbox``, every answer after a uniform ``--upstream-latency-ms``; the systems the shipped
configuration fetches from, so not the national certificates registry unless ``--national-certs``).
``--scale`` multiplies every count (``--scale 0.02`` runs in a minute or two); the deliveries owed grow
with its square (versions times subscriptions).

The processes: ``g2bhub serve --no-worker --workers K`` (the API), ``--workers`` ``g2bhub worker``
processes (relay, consumers, delivery dispatcher; credential scheduler off), ``--refreshers`` more
``g2bhub worker`` processes with the credential scheduler on (it refreshes every verified credential
again a few seconds after its last fetch; they are stopped once the refreshes are done), the sandbox,
and ``--receivers`` asyncio
webhook receivers (bench/_kday_receiver.py) that verify every signature with ``standardwebhooks`` and
dedupe on ``webhook-id``. One config file (``G2BHUB_CONFIG``) serves them all.

The day starts when the first notice is published; registrations and refreshes run alongside. It ends
when every expected delivery has arrived (or ``--drain-timeout-s`` passes without progress). Expected
deliveries are computed before the day from the generated filters with the linear-scan reference
matcher (``tests/support/subscriptions.linear_scan_match``, over the distinct filters), plus the rule
that an amendment or cancellation also goes to every earlier recipient of the notice.

Figures: wall time of the day (and of the set-up before it), publish → delivery p50/p99 (from the
publishing request's start to the receiver's first arrival), deliveries/s, registrations/s,
refreshes/s, peak RSS per process, and whether every expected delivery arrived exactly once
(``exactly_once``; counts expected/received/missing/unexpected/duplicates). Creates and drops a
throw-away PostgreSQL database and a fresh RabbitMQ namespace; ends with one JSON line,
{"bench": "kday", "figures": {...}}."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._report import Figure, emit  # noqa: E402
from connectors.sandbox.dataset import SandboxDataset  # noqa: E402
from hub.cli.demo_suppliers import sandbox_connector_overrides  # noqa: E402
from hub.notices.model import NoticeContent  # noqa: E402
from hub.subscriptions.filters import NoticeFacts, SubscriptionFilter  # noqa: E402
from tests.support.db import throwaway_database  # noqa: E402
from tests.support.subscriptions import linear_scan_match  # noqa: E402

API = "/api/v1"
SANDBOX_KEYS: dict[str, str | None] = {"nts": "sandbox-nts-key", "companies_house": "sandbox-ch-key",
                                       "iaf": "sandbox-iaf-key"}
REGIONS = ("KR-11", "KR-26", "KR-27", "KR-28", "KR-29", "KR-30", "KR-31", "KR-41", "KR-43", "KR-44",
           "KR-45", "KR-46", "KR-47", "KR-48", "KR-49", "KR-50")
CATEGORIES = ("goods", "services", "works")
WORDS = ("도로", "포장", "정비", "교량", "보수", "청사", "신축", "설계", "용역", "감리", "전산", "유지관리",
         "소프트웨어", "구매", "차량", "의약품", "급식", "식자재", "청소", "경비", "조경", "하천", "상수도",
         "하수관로", "학교", "체육관", "태양광", "LED", "CCTV", "네트워크", "서버", "교육", "연구", "홍보")
SECTORS = 100  # classification sectors: three-digit code prefixes 100..199; an alert endpoint serves one


# -- counts and generated data -------------------------------------------------------------------

@dataclass(frozen=True)
class Counts:
    notices: int
    amended: int
    cancelled: int
    agency_subscriptions: int
    alert_subscriptions: int
    alert_endpoints: int
    registrations: int
    refreshes: int

    @classmethod
    def at(cls, scale: float) -> Counts:
        def n(full: int, least: int = 1) -> int:
            return max(least, round(full * scale))

        notices = n(5000, 10)
        return cls(notices=notices, amended=round(notices * 0.20), cancelled=round(notices * 0.03),
                   agency_subscriptions=n(10_000, 10), alert_subscriptions=n(1_000_000, 100),
                   alert_endpoints=n(100, 2), registrations=n(20_000, 10), refreshes=n(100_000, 10))


@dataclass
class NoticePlan:
    index: int
    institution: int  # index into the institutions
    original: dict[str, Any]
    amended: dict[str, Any] | None
    cancelled: bool
    notice_id: str = ""
    started: dict[int, float] = field(default_factory=dict)  # version -> time.time() its request began

    @property
    def versions(self) -> int:
        return 1 + (self.amended is not None) + self.cancelled


def _code(rng: random.Random, sector: int) -> str:
    return f"{100 + sector}{rng.randrange(100):02d}{rng.randrange(1000):03d}"


def notice_content(rng: random.Random, index: int) -> dict[str, Any]:
    sector = rng.randrange(SECTORS)
    codes = [_code(rng, sector)]
    if rng.random() < 0.4:
        codes.append(_code(rng, sector if rng.random() < 0.5 else rng.randrange(SECTORS)))
    words = rng.sample(WORDS, 3)
    body: dict[str, Any] = {
        "title": f"{words[0]} {words[1]} 사업 {index}",
        "description": f"{words[2]} 관련 입찰 공고 (kday {index})",
        "category": rng.choice(CATEGORIES),
        "classifications": [{"scheme": "CPV", "code": c} for c in dict.fromkeys(codes)],
        "procedure": "open",
        "dates": {"published": "2026-03-02T09:00:00+09:00", "submission_deadline": "2026-03-16T10:00:00+09:00"},
        "buyer": {"id": f"KR-GOV-{3000000 + index % 997}", "name": "조달청 수요기관"},
    }
    if rng.random() < 0.9:
        body["delivery_region"] = rng.choice(REGIONS)
    if rng.random() < 0.9:
        body["estimated_value"] = str(int(10 ** rng.uniform(7, 10)))
        body["currency"] = "KRW"
    return body


def plan_notices(rng: random.Random, counts: Counts, institutions: int) -> list[NoticePlan]:
    plans = [NoticePlan(i, rng.randrange(institutions), notice_content(rng, i), None, False)
             for i in range(counts.notices)]
    for plan in rng.sample(plans, counts.amended):
        changed = dict(plan.original)
        changed["title"] = f"{plan.original['title']} (정정 {rng.choice(WORDS)})"
        changed["dates"] = {**plan.original["dates"], "submission_deadline": "2026-03-23T10:00:00+09:00"}
        if rng.random() < 0.3:  # a corrected classification or region moves the notice between filters
            changed = {**changed, **{k: v for k, v in notice_content(rng, plan.index).items()
                                     if k in ("classifications", "delivery_region")}}
        plan.amended = changed
    for plan in rng.sample(plans, counts.cancelled):
        plan.cancelled = True
    return plans


def agency_filter(rng: random.Random, institution_ids: list[str]) -> dict[str, Any]:
    """What an agency watches: a few classification prefixes (three or four digits), often a region or
    two, sometimes a category, a value floor, a keyword or an institution."""
    prefixes = set()
    for _ in range(rng.choice((1, 1, 2, 3))):
        sector = 100 + rng.randrange(SECTORS)
        prefixes.add(f"CPV:{sector}" if rng.random() < 0.3 else f"CPV:{sector}{rng.randrange(10)}")
    flt: dict[str, Any] = {"classifications": sorted(prefixes)}
    if rng.random() < 0.5:
        flt["regions"] = sorted(set(rng.sample(REGIONS, rng.choice((1, 1, 2)))))
    if rng.random() < 0.1:
        flt["regions"] = ["KR"]
    if rng.random() < 0.3:
        flt["categories"] = [rng.choice(CATEGORIES)]
    if rng.random() < 0.15:
        flt["min_value"] = str(10 ** rng.randrange(7, 10))
        flt["currency"] = "KRW"
    if rng.random() < 0.1:
        flt["keywords"] = [rng.choice(WORDS)]
    if rng.random() < 0.05:
        flt["institutions"] = [rng.choice(institution_ids)]
    return flt


def alert_filter(rng: random.Random, endpoint: int, endpoints: int) -> dict[str, Any]:
    """A supplier's alert: one classification prefix in its alert service's sectors (five digits, a
    fifth of them four), and in most cases the region it works in."""
    sectors = [s for s in range(SECTORS) if s % endpoints == endpoint] or [endpoint % SECTORS]
    sector = 100 + rng.choice(sectors)
    prefix = f"CPV:{sector}{rng.randrange(10)}" if rng.random() < 0.2 else f"CPV:{sector}{rng.randrange(20):02d}"
    flt: dict[str, Any] = {"classifications": [prefix]}
    if rng.random() < 0.7:
        flt["regions"] = [rng.choice(REGIONS[:8])]
    return flt


def filter_key(flt: dict[str, Any]) -> str:
    return json.dumps(flt, sort_keys=True, separators=(",", ":"))


# -- expected deliveries -------------------------------------------------------------------------

class Expected:
    """Who is owed which version, computed with the reference linear scan over the distinct filters
    (subscriptions with the same filter match the same notices). Keys are packed ints:
    (subscriber << 24) | (notice << 2) | version, subscribers numbered agencies first, then alerts."""

    def __init__(self) -> None:
        self.keys: set[int] = set()
        self.per_version: dict[tuple[int, int], int] = {}

    @staticmethod
    def pack(subscriber: int, notice: int, version: int) -> int:
        return (subscriber << 24) | (notice << 2) | version

    @staticmethod
    def unpack(key: int) -> tuple[int, int, int]:
        return key >> 24, (key >> 2) & 0x3FFFFF, key & 3

    def compute(self, plans: list[NoticePlan], institution_ids: list[str], filters: list[str]) -> None:
        groups: dict[str, list[int]] = defaultdict(list)
        for subscriber, key in enumerate(filters):
            groups[key].append(subscriber)
        parsed: dict[Hashable, SubscriptionFilter] = {key: SubscriptionFilter.parse(json.loads(key)) for key in groups}
        for plan in plans:
            institution = institution_ids[plan.institution]
            contents = [plan.original] + ([plan.amended] if plan.amended is not None else [])
            recipients: set[int] = set()
            for version, content in enumerate(contents, start=1):
                facts = NoticeFacts.of(NoticeContent.model_validate(content), institution)
                for matched in linear_scan_match(parsed, facts):
                    recipients.update(groups[str(matched)])
                self._owe(recipients, plan.index, version)
            if plan.cancelled:
                self._owe(recipients, plan.index, len(contents) + 1)

    def _owe(self, recipients: set[int], notice: int, version: int) -> None:
        self.per_version[(notice, version)] = len(recipients)
        self.keys.update(self.pack(s, notice, version) for s in recipients)


# -- processes -------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proc:
    """One child process, its output in a log file; its peak RSS (and its children's) from /proc."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.peak_rss_mib: dict[str, float] = {}

    def start(self) -> Proc:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.argv, cwd=str(ROOT), env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_for(self, text: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.log_path.read_bytes():
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.process.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.1)

    def tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def pids(self) -> list[int]:
        if self.process is None or self.process.poll() is not None:
            return []
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            with contextlib.suppress(OSError):
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo += [int(c) for c in (task / "children").read_text().split()]
        return found

    def sample_rss(self) -> None:
        """Keep VmHWM (the kernel's peak resident set) of the process and each of its children."""
        for index, pid in enumerate(self.pids()):
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        name = self.name if index == 0 else f"{self.name}.{index}"
                        self.peak_rss_mib[name] = max(self.peak_rss_mib.get(name, 0.0), int(line.split()[1]) / 1024)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.sample_rss()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hub.cli.main", *args]


@dataclass
class Lab:
    """Everything the day runs against, and the names the bench needs to reach it."""

    args: argparse.Namespace
    workdir: Path
    database_url: str
    namespace: str
    env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    api_url: str = ""
    sandbox_url: str = ""
    receiver_urls: list[str] = field(default_factory=list)
    refreshers: list[Proc] = field(default_factory=list)
    operator_key: str = ""

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("G2BHUB_")}
        env["PYTHONPATH"] = str(ROOT)
        return env

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        proc = Proc(name, argv, env or self.env, self.workdir).start()
        self.procs.append(proc)
        return proc

    def start_sandbox(self, suppliers: int) -> None:
        port = free_port()
        env = self.base_env()
        low, high = self.args.upstream_latency
        for twin in ("NTS", "VIES", "GLEIF", "COMPANIES_HOUSE", "IAF", "NATIONAL_CERTS"):
            env[f"G2BHUB_SANDBOX__{twin}__LATENCY_MIN_MS"] = str(low)
            env[f"G2BHUB_SANDBOX__{twin}__LATENCY_MAX_MS"] = str(high)
        sandbox = self.spawn("sandbox", cli("sandbox", "--port", str(port), "--suppliers", str(suppliers),
                                            "--seed", str(self.args.seed)), env)
        self.sandbox_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.sandbox_url + "/", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline or (sandbox.process is not None and sandbox.process.poll() is not None):
                raise RuntimeError(f"the sandbox did not come up:\n{sandbox.tail()}")
            time.sleep(0.2)

    def write_config(self) -> None:
        endpoints = httpx.get(self.sandbox_url + "/", timeout=10).json()
        connectors = sandbox_connector_overrides(endpoints, SANDBOX_KEYS)
        # The national certificates registry has no real counterpart and ships switched off: a deployment
        # fetches nothing from it unless asked to (--national-certs).
        connectors["national_certs"]["enabled"] = bool(self.args.national_certs)
        api_port = free_port()
        self.api_url = f"http://127.0.0.1:{api_port}"
        config = {
            "database": {"url": self.database_url, "pool_size": 20},
            "broker": {"kind": "rabbitmq", "url": self.args.amqp_url, "namespace": self.namespace},
            "api": {"port": api_port, "public_base_url": self.api_url},
            "logging": {"level": "WARNING", "json": False,  # hub.cli: the "worker started" line
                        "levels": {"httpx": "WARNING", "httpcore": "WARNING", "hub.cli": "INFO"}},
            "connectors": connectors,
            "quotas": {"enabled": False},  # the twins cost nothing: measure the hub, not key budgets
            "suppliers": {
                "fetch": {"max_parallel": 64},
                # The scheduler (on in the refresher only) finds every verified credential due again a
                # few seconds after its fetch: a day's refreshes in minutes.
                "scheduler": {"enabled": False, "interval_s": 0.5, "max_claims_per_run": 500},
                "freshness": {"default_refresh_s": 3.0, "refresh_margin_s": 0, "refresh_margin_ratio": 0},
            },
            "syndication": {"allow_private_targets": True, "dispatch_interval_s": 0.05},
        }
        from hub.config import ApiSettings

        if "threads" in ApiSettings.model_fields:
            # Registrations hold a request thread while the twins answer: enough threads that they do not
            # queue the publishing institutions behind them.
            config["api"]["threads"] = self.args.api_threads
        path = self.workdir / "kday.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True))
        self.env = {**self.base_env(), "G2BHUB_CONFIG": str(path)}

    def run_cli(self, *args: str) -> str:
        done = subprocess.run(cli(*args), cwd=str(ROOT), env=self.env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"g2bhub {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start_hub(self) -> None:
        self.run_cli("db", "upgrade")
        api = self.spawn("api", cli("serve", "--no-worker", "--no-migrate", "--workers", str(self.args.api_processes)))
        for index in range(self.args.workers):
            self.spawn(f"worker-{index}", cli("worker"))
        for proc in self.procs:
            if proc.name.startswith("worker-"):
                proc.wait_for("worker started")
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.api_url + "/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or (api.process is not None and api.process.poll() is not None):
                raise RuntimeError(f"the API did not come up:\n{api.tail()}")
            time.sleep(0.2)

    def start_refreshers(self) -> None:
        env = {**self.env, "G2BHUB_SUPPLIERS__SCHEDULER__ENABLED": "true"}
        for index in range(self.args.refreshers):
            self.refreshers.append(self.spawn(f"refresher-{index}", cli("worker"), env))

    def start_receivers(self) -> None:
        for index in range(self.args.receivers):
            port = free_port()
            proc = self.spawn(f"receiver-{index}", [sys.executable, str(ROOT / "bench" / "_kday_receiver.py"),
                                                    "--port", str(port)], self.base_env())
            proc.wait_for("receiver listening", timeout=30)
            self.receiver_urls.append(f"http://127.0.0.1:{port}")

    def sample_rss(self) -> None:
        for proc in self.procs:
            proc.sample_rss()

    def peak_rss(self) -> dict[str, float]:
        peaks: dict[str, float] = {}
        for proc in self.procs:
            peaks.update(proc.peak_rss_mib)
        peaks["bench"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return peaks

    def close(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop()
        with contextlib.suppress(Exception):
            from hub.config import BrokerSettings
            from hub.spine.brokers.rabbitmq import delete_topology

            groups = ["syndication-matching", "audit", "suppliers", "notices"]
            delete_topology(BrokerSettings(kind="rabbitmq", url=self.args.amqp_url, namespace=self.namespace),
                            groups=groups)
        with contextlib.suppress(Exception):
            delete_namespace_queues(self.args.amqp_url, self.namespace)


def delete_namespace_queues(amqp_url: str, namespace: str) -> None:
    """Whatever the namespace still has (consumer-group queues the guess above missed, dead letters)."""
    vhost = httpx.URL(amqp_url.replace("amqp://", "http://")).path.lstrip("/") or "/"
    listed = subprocess.run(["rabbitmqctl", "list_queues", "-q", "-p", vhost, "name"], capture_output=True,
                            text=True, timeout=60)
    names = [line.strip() for line in listed.stdout.splitlines() if line.strip().startswith(namespace + ".")]
    for name in names:
        subprocess.run(["rabbitmqctl", "delete_queue", "-p", vhost, name], capture_output=True, timeout=60)


# -- the API, as clients use it --------------------------------------------------------------------

def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def bounded(concurrency: int, jobs: list[Any]) -> list[Any]:
    """Run coroutine factories ``concurrency`` at a time; results in order."""
    semaphore = asyncio.Semaphore(concurrency)
    results: list[Any] = [None] * len(jobs)

    async def one(index: int) -> None:
        async with semaphore:
            results[index] = await jobs[index]()

    await asyncio.gather(*(one(i) for i in range(len(jobs))))
    return results


async def post(client: httpx.AsyncClient, path: str, key: str, body: dict[str, Any], expect: int = 201,
               idempotent: bool = False, idempotency_key: str | None = None) -> Any:
    """POST, retried on 429 and 503 (nothing was done); on a lost connection only when ``idempotent`` or
    with an ``Idempotency-Key``, since a retried subscribe could act twice and the count would blame the
    hub."""
    headers = bearer(key)
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
        idempotent = True
    for attempt in range(5):
        try:
            response = await client.post(path, json=body, headers=headers)
        except httpx.TransportError:
            if attempt == 4 or not idempotent:
                raise
            await asyncio.sleep(0.5 * (attempt + 1))
            continue
        if response.status_code in (expect, 200):
            return response.json()
        if response.status_code in (429, 503) and attempt < 4:
            await asyncio.sleep(0.5 * (attempt + 1))
            continue
        raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:500]}")
    raise AssertionError("unreachable")


@dataclass
class Orgs:
    institutions: list[tuple[str, str]]  # (org id, key)
    agencies: list[tuple[str, str]]
    suppliers: list[tuple[str, str]]


async def create_orgs(lab: Lab, client: httpx.AsyncClient, counts: Counts) -> Orgs:
    operator = json.loads(lab.run_cli("orgs", "create", "kday operator", "--kind", "operator", "--json"))
    key = lab.operator_key = operator["api_key"]

    async def org(kind: str, index: int) -> tuple[str, str]:
        made = await post(client, f"{API}/orgs", key, {"name": f"kday {kind} {index}", "kind": kind})
        return str(made["organisation"]["id"]), str(made["api_key"])

    def jobs(kind: str, n: int) -> list[Any]:
        return [lambda i=i: org(kind, i) for i in range(n)]

    agencies = max(1, min(200, counts.agency_subscriptions // 50))
    return Orgs(institutions=await bounded(8, jobs("institution", 20)),
                agencies=await bounded(8, jobs("agency", agencies)),
                suppliers=await bounded(8, jobs("supplier", max(1, min(100, counts.registrations // 100)))))


async def tell_receivers(lab: Lab, client: httpx.AsyncClient, routes: dict[int, dict[str, list[str]]]) -> None:
    for receiver, mapping in routes.items():
        items = list(mapping.items())
        for start in range(0, len(items), 5000):
            response = await client.post(f"{lab.receiver_urls[receiver]}/_control/secrets",
                                         json=dict(items[start:start + 5000]))
            response.raise_for_status()


async def subscribe_agencies(lab: Lab, client: httpx.AsyncClient, orgs: Orgs, filters: list[str],
                             ) -> list[str]:
    """One webhook subscription per filter, each at its own path of a receiver; returns their ids."""
    routes: dict[int, dict[str, list[str]]] = defaultdict(dict)

    async def one(index: int) -> str:
        _, key = orgs.agencies[index % len(orgs.agencies)]
        receiver = index % len(lab.receiver_urls)
        path = f"/a/{index}"
        made = await post(client, f"{API}/subscriptions", key, {
            "name": f"kday agency {index}", "filter": json.loads(filters[index]),
            "channel": {"type": "webhook", "url": lab.receiver_urls[receiver] + path}})
        subscription = str(made["subscription"]["id"])
        routes[receiver][path] = [made["secret"], subscription]
        return subscription

    ids = await bounded(16, [lambda i=i: one(i) for i in range(len(filters))])
    await tell_receivers(lab, client, routes)
    return ids


@dataclass
class AlertLoad:
    """What loading the supplier alert subscriptions gave: their ids in filter order (None: not run)."""

    ran: bool
    reason: str = ""
    subscription_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0


async def load_alert_subscriptions(lab: Lab, client: httpx.AsyncClient, counts: Counts,
                                   filters: list[tuple[int, str]]) -> AlertLoad:
    """The supplier alert subscriptions behind ``counts.alert_endpoints`` batched webhook endpoints: one
    alert service (organisation) per endpoint, each serving its classification sectors; the endpoints
    registered through ``POST /api/v1/webhook-endpoints``, their subscriptions bulk-loaded with
    ``g2bhub subscriptions load`` (the API takes them one request each, far too slow for a million)."""
    spec = (await client.get("/openapi.json")).json()
    if f"{API}/webhook-endpoints" not in spec.get("paths", {}):
        return AlertLoad(ran=False, reason="this hub has no batched webhook endpoints (POST /api/v1/webhook-endpoints)")
    help_text = subprocess.run(cli("subscriptions", "load", "--help"), cwd=str(ROOT), env=lab.env,
                               capture_output=True, text=True, timeout=120)
    if help_text.returncode != 0:
        return AlertLoad(ran=False, reason="this hub has no bulk subscription load (g2bhub subscriptions load)")
    operator = lab.operator_key
    started = time.perf_counter()

    async def endpoint(index: int) -> tuple[str, str]:
        made = await post(client, f"{API}/orgs", operator, {"name": f"kday alert service {index}", "kind": "agency"})
        key = str(made["api_key"])
        receiver = index % len(lab.receiver_urls)
        path = f"/b/{index}"
        registered = await post(client, f"{API}/webhook-endpoints", key, {
            "name": f"kday alerts {index}", "url": lab.receiver_urls[receiver] + path, "batch": True})
        routes = {receiver: {path: [registered["secret"], ""]}}
        await tell_receivers(lab, client, routes)
        return str(registered["endpoint"]["id"]), key

    endpoints = await bounded(8, [lambda i=i: endpoint(i) for i in range(counts.alert_endpoints)])
    ids = [f"kday-alert-{index}" for index in range(len(filters))]
    files: dict[int, Path] = {}
    handles: dict[int, IO[str]] = {}
    for index, (which, flt) in enumerate(filters):
        if which not in handles:
            files[which] = lab.workdir / f"alerts-{which}.jsonl"
            handles[which] = files[which].open("w", encoding="utf-8")
        handles[which].write(f'{{"id": "{ids[index]}", "filter": {flt}}}\n')
    for handle in handles.values():
        handle.close()

    def load(which: int) -> None:
        lab.run_cli("subscriptions", "load", str(files[which]), "--endpoint", endpoints[which][0], "--json")
        files[which].unlink()

    loader = asyncio.Semaphore(2)  # each load is one transaction; two at a time keep both cores busy

    async def load_one(which: int) -> None:
        async with loader:
            await asyncio.to_thread(load, which)

    await asyncio.gather(*(load_one(which) for which in sorted(files)))
    return AlertLoad(ran=True, subscription_ids=ids, seconds=time.perf_counter() - started)


# -- the day ---------------------------------------------------------------------------------------

async def publish_all(client: httpx.AsyncClient, plans: list[NoticePlan], orgs: Orgs, concurrency: int,
                      errors: list[str], progress: Progress) -> float:
    """Every notice's versions in order (original, amendment, cancellation), ``concurrency`` requests
    in flight across notices. Returns the seconds it took."""
    semaphore = asyncio.Semaphore(concurrency)
    started = time.perf_counter()

    run = uuid.uuid4().hex[:8]

    async def call(plan: NoticePlan, version: int, path: str, body: dict[str, Any]) -> Any:
        key = orgs.institutions[plan.institution][1]
        async with semaphore:
            plan.started[version] = time.time()
            # As an institution's system publishes: with an idempotency key, so a lost answer is retried.
            made = await post(client, path, key, body, idempotency_key=f"kday-{run}-{plan.index}-{version}")
            progress.published += 1
            return made

    async def notice(plan: NoticePlan) -> None:
        try:
            made = await call(plan, 1, f"{API}/notices", plan.original)
            plan.notice_id = str(made["id"])
            version = 1
            if plan.amended is not None:
                version += 1
                await call(plan, version, f"{API}/notices/{plan.notice_id}/amendments",
                           {"reason": "정정 공고", "content": plan.amended})
            if plan.cancelled:
                version += 1
                await call(plan, version, f"{API}/notices/{plan.notice_id}/cancellation", {"reason": "취소 공고"})
        except Exception as exc:  # counted: the verdict fails on any
            errors.append(f"notice {plan.index}: {exc!r}")

    # Notices start in order, a bounded window ahead of the slowest, as a day's publishing goes.
    window = asyncio.Semaphore(concurrency * 4)

    async def windowed(plan: NoticePlan) -> None:
        async with window:
            await notice(plan)

    await asyncio.gather(*(windowed(p) for p in plans))
    return time.perf_counter() - started


def registration_sets(dataset: SandboxDataset, n: int) -> list[dict[str, str]]:
    """``n`` Korean suppliers of the twins' dataset with every identifier they have."""
    found = [dict(s.identifiers) for s in dataset.suppliers if "kr_brn" in s.identifiers]
    if len(found) < n:
        raise SystemExit(f"the sandbox dataset has {len(found)} Korean suppliers, {n} wanted")
    return found[:n]


@dataclass
class Progress:
    """What the day has done so far, for the progress lines."""

    published: int = 0
    registered: int = 0
    refreshed: int = 0
    received: int = 0
    requests: int = 0


async def register_all(client: httpx.AsyncClient, sets: list[dict[str, str]], orgs: Orgs, concurrency: int,
                       errors: list[str], progress: Progress) -> float:
    started = time.perf_counter()

    async def one(index: int) -> None:
        key = orgs.suppliers[index % len(orgs.suppliers)][1]
        try:
            # The same identifiers again answer 200 with the supplier: a retry registers nothing twice.
            await post(client, f"{API}/suppliers", key, {"identifiers": sets[index], "consent": True},
                       idempotent=True)
        except Exception as exc:
            errors.append(f"registration {index}: {exc!r}")
        progress.registered += 1

    await bounded(concurrency, [lambda i=i: one(i) for i in range(len(sets))])
    return time.perf_counter() - started


def refreshes_done(database_url: str) -> int:
    """Identifiers the hub's scheduler asked the twins about again, from its own call records."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT coalesce(sum(identifier_count), 0) FROM upstream_calls "
                           "WHERE purpose = 'refresh' AND requested_by = 'hub-scheduler'").fetchone()
    return int(row[0]) if row else 0


def refreshes_by_system(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT system, coalesce(sum(identifier_count), 0), count(*) FROM upstream_calls "
                            "WHERE purpose = 'refresh' AND requested_by = 'hub-scheduler' GROUP BY system").fetchall()
    return {f"{system}_identifiers": int(n) for system, n, _calls in rows} | {
        f"{system}_calls": int(calls) for system, _n, calls in rows}


async def refresh_until(lab: Lab, target: int, progress: Progress) -> tuple[float, int]:
    """Start the refreshers, wait for ``target`` refreshes, stop them. Returns (seconds, refreshes)."""
    started = time.perf_counter()
    lab.start_refreshers()
    done = 0
    while True:
        await asyncio.sleep(1.0)
        done = progress.refreshed = await asyncio.to_thread(refreshes_done, lab.database_url)
        for refresher in lab.refreshers:
            refresher.sample_rss()
            if refresher.process is not None and refresher.process.poll() is not None:
                raise RuntimeError(f"{refresher.name} exited:\n{refresher.tail()}")
        if done >= target:
            break
    elapsed = time.perf_counter() - started
    for refresher in lab.refreshers:
        await asyncio.to_thread(refresher.stop)
    return elapsed, done


async def receiver_summaries(lab: Lab, client: httpx.AsyncClient) -> list[dict[str, Any]]:
    return [(await client.get(f"{url}/_control/summary")).json() for url in lab.receiver_urls]


async def wait_delivered(lab: Lab, client: httpx.AsyncClient, expected: int, publishing: asyncio.Task[Any],
                         stall_s: float, progress: Progress) -> None:
    """Until the receivers hold ``expected`` keys (after publishing is over), or nothing new arrives for
    ``stall_s``."""
    last, last_change = -1, time.monotonic()
    while True:
        await asyncio.sleep(1.0)
        lab.sample_rss()
        summaries = await receiver_summaries(lab, client)
        progress.received = sum(s["keys"] for s in summaries)
        progress.requests = sum(s["requests"] for s in summaries)
        if progress.received != last:
            last, last_change = progress.received, time.monotonic()
        if publishing.done() and progress.received >= expected:
            return
        if publishing.done() and time.monotonic() - last_change > stall_s:
            print(f"  no delivery for {stall_s:.0f} s: giving up waiting", flush=True)
            return


async def report_progress(progress: Progress, counts: Counts, versions: int, expected: int) -> None:
    started = time.monotonic()
    while True:
        await asyncio.sleep(10.0)
        print(f"  {time.monotonic() - started:6.0f} s: published {progress.published}/{versions}, received "
              f"{progress.received}/{expected} ({progress.requests} requests), registered "
              f"{progress.registered}/{counts.registrations}, refreshed {progress.refreshed}/{counts.refreshes}",
              flush=True)


# -- the run ---------------------------------------------------------------------------------------

def quantile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Tally:
    received: int = 0
    missing: int = 0
    unexpected: int = 0
    duplicates_raw: int = 0
    duplicates_in_effect: int = 0
    bad_signatures: int = 0
    unreadable: int = 0
    requests: int = 0
    latencies: list[float] = field(default_factory=list)
    last_arrival: float = 0.0


async def tally(lab: Lab, client: httpx.AsyncClient, expected: Expected, plans: list[NoticePlan],
                subscribers: dict[str, int]) -> Tally:
    notices = {plan.notice_id: plan for plan in plans if plan.notice_id}
    result = Tally()
    seen: set[int] = set()
    for url in lab.receiver_urls:
        answer = (await client.get(f"{url}/_control/results", timeout=300)).json()
        result.requests += answer["requests"]
        result.duplicates_raw += answer["raw_duplicates"]
        result.duplicates_in_effect += answer["effect_duplicates"]
        result.bad_signatures += answer["bad_signatures"] + answer["unknown_paths"]
        result.unreadable += answer["unreadable"]
        result.last_arrival = max(result.last_arrival, answer["last_arrival"])
        for subscription, notice_id, version, first, _count in answer["keys_list"]:
            plan = notices.get(notice_id)
            subscriber = subscribers.get(subscription)
            if plan is None or subscriber is None or not 1 <= version <= 3:
                result.unexpected += 1
                continue
            key = Expected.pack(subscriber, plan.index, version)
            if key not in expected.keys or key in seen:
                result.unexpected += 1
                continue
            seen.add(key)
            result.latencies.append(first - plan.started[version])
    result.received = len(seen)
    result.missing = len(expected.keys) - len(seen)
    return result


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Figure]:
    counts = Counts.at(args.scale)
    rng = random.Random(args.seed)
    print(f"kday at scale {args.scale:g}: {counts.notices} notices ({counts.amended} amended, {counts.cancelled} "
          f"cancelled), {counts.agency_subscriptions} agency webhook subscriptions, {counts.alert_subscriptions} "
          f"alert subscriptions behind {counts.alert_endpoints} batched endpoints, {counts.registrations} "
          f"registrations, {counts.refreshes} refreshes; {args.workers} workers, {args.api_processes} API "
          f"processes, {args.receivers} receivers; upstream latency {args.upstream_latency[0]}-"
          f"{args.upstream_latency[1]} ms", flush=True)
    setup_started = time.perf_counter()
    namespace = f"kday{uuid.uuid4().hex[:8]}"
    with throwaway_database(args.database_url, prefix="g2bhub_kday") as database_url:
        lab = Lab(args, workdir, database_url, namespace)
        try:
            # Korean suppliers are 45 % of the twins' population.
            dataset_size = max(300, math.ceil(counts.registrations / 0.44))
            lab.start_sandbox(dataset_size)
            lab.write_config()
            lab.start_hub()
            lab.start_receivers()
            print(f"hub up: API {lab.api_url}, sandbox {lab.sandbox_url} ({dataset_size} suppliers), "
                  f"{time.perf_counter() - setup_started:.1f} s", flush=True)
            return asyncio.run(day(lab, args, counts, rng, setup_started))
        except BaseException:
            for proc in lab.procs:
                if proc.name.startswith(("worker", "api", "refresher")):  # what failed, if the hub did
                    print(f"--- {proc.name} ---\n{proc.tail()}", file=sys.stderr)
            raise
        finally:
            lab.close()


async def day(lab: Lab, args: argparse.Namespace, counts: Counts, rng: random.Random,
              setup_started: float) -> dict[str, Figure]:
    # Idle connections are dropped before uvicorn's 5 s keep-alive timeout can close one under a request.
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=lab.api_url, timeout=120, limits=limits) as client:
        orgs = await create_orgs(lab, client, counts)
        institution_ids = [org_id for org_id, _ in orgs.institutions]
        agency_filters = [filter_key(agency_filter(rng, institution_ids)) for _ in range(counts.agency_subscriptions)]
        t = time.perf_counter()
        agency_ids = await subscribe_agencies(lab, client, orgs, agency_filters)
        subscribe_s = time.perf_counter() - t
        print(f"{len(agency_ids)} agency subscriptions in {subscribe_s:.1f} s "
              f"({len(agency_ids) / subscribe_s:.0f}/s)", flush=True)
        distinct: dict[str, str] = {}  # a million filters, a few thousand distinct: keep one string each
        alert_filters = [(e, distinct.setdefault(key, key)) for e, key in (
            (e, filter_key(alert_filter(rng, e, counts.alert_endpoints)))
            for e in (rng.randrange(counts.alert_endpoints) for _ in range(counts.alert_subscriptions)))]
        alerts = await load_alert_subscriptions(lab, client, counts, alert_filters)
        if alerts.ran:
            print(f"{len(alerts.subscription_ids)} alert subscriptions loaded in {alerts.seconds:.1f} s", flush=True)
        else:
            print(f"ALERT SUBSCRIPTIONS NOT RUN: {alerts.reason}; the day runs without them", flush=True)

        plans = plan_notices(rng, counts, len(orgs.institutions))
        t = time.perf_counter()
        expected = Expected()
        filters = agency_filters + ([flt for _, flt in alert_filters] if alerts.ran else [])
        expected.compute(plans, institution_ids, filters)
        expected_s = time.perf_counter() - t
        subscribers = {sid: i for i, sid in enumerate(agency_ids + alerts.subscription_ids)}
        versions = sum(p.versions for p in plans)
        print(f"expected deliveries: {len(expected.keys)} over {versions} versions (linear scan over "
              f"{len(set(filters))} distinct filters, {expected_s:.1f} s)", flush=True)
        sets = registration_sets(SandboxDataset(seed=args.seed, size=max(300, math.ceil(counts.registrations / 0.44))),
                                 counts.registrations)
        setup_s = time.perf_counter() - setup_started

        print("the day begins", flush=True)
        errors: list[str] = []
        progress = Progress()
        reporting = asyncio.create_task(report_progress(progress, counts, versions, len(expected.keys)))
        day_started = time.time()
        t0 = time.perf_counter()
        publishing = asyncio.create_task(publish_all(client, plans, orgs, args.publish_concurrency, errors,
                                                     progress))
        registering = asyncio.create_task(register_all(client, sets, orgs, args.register_concurrency, errors,
                                                       progress))
        refreshing = asyncio.create_task(refresh_until(lab, counts.refreshes, progress))
        await wait_delivered(lab, client, len(expected.keys), publishing, args.drain_timeout_s, progress)
        publish_s = await publishing
        register_s = await registering
        refresh_s, refreshed = await refreshing
        day_s = time.perf_counter() - t0
        reporting.cancel()
        lab.sample_rss()
        result = await tally(lab, client, expected, plans, subscribers)
        by_system = refreshes_by_system(lab.database_url)

    deliveries_span = max(result.last_arrival - day_started, 1e-9)
    exactly_once = (result.missing == 0 and result.unexpected == 0 and result.duplicates_in_effect == 0
                    and result.bad_signatures == 0 and result.unreadable == 0 and not errors)
    peaks = lab.peak_rss()
    figures: dict[str, Figure] = {
        "scale": args.scale, "workers": args.workers, "api_processes": args.api_processes,
        "notices": counts.notices, "amended": counts.amended, "cancelled": counts.cancelled,
        "versions": versions, "agency_subscriptions": counts.agency_subscriptions,
        "alert_subscriptions": counts.alert_subscriptions if alerts.ran else 0,
        "alert_endpoints": counts.alert_endpoints if alerts.ran else 0,
        "alert_subscriptions_run": alerts.ran,
        "registrations": counts.registrations, "refreshes": refreshed,
        "setup_s": setup_s, "expected_compute_s": expected_s, "agency_subscribe_s": subscribe_s,
        "agency_subscribe_per_s": len(agency_ids) / subscribe_s,
        "alert_load_s": alerts.seconds if alerts.ran else None,
        "wall_s": day_s, "publish_s": publish_s, "publish_versions_per_s": versions / publish_s,
        "latency_p50_s": statistics.median(result.latencies) if result.latencies else None,
        "latency_p99_s": quantile(result.latencies, 0.99),
        "latency_max_s": max(result.latencies) if result.latencies else None,
        "deliveries_per_s": result.received / deliveries_span,
        "webhook_requests": result.requests, "webhook_requests_per_s": result.requests / deliveries_span,
        "registrations_per_s": counts.registrations / register_s, "register_s": register_s,
        "refreshes_per_s": refreshed / refresh_s, "refresh_s": refresh_s,
        "expected": len(expected.keys), "received": result.received, "missing": result.missing,
        "unexpected": result.unexpected, "duplicates": result.duplicates_raw,
        "duplicates_in_effect": result.duplicates_in_effect, "bad_signatures": result.bad_signatures,
        "errors": len(errors), "exactly_once": exactly_once,
        "peak_rss_max_mib": max(peaks.values()),
    }
    for name, value in sorted(by_system.items()):
        figures[f"refresh_{name}"] = value
    for name, mib in sorted(peaks.items()):
        figures[f"peak_rss_{name.replace('-', '_').replace('.', '_')}_mib"] = mib
    print()
    print(f"wall time (the day)     : {day_s:8.1f} s   (set-up before it {setup_s:.1f} s)")
    print(f"publishing              : {versions} versions in {publish_s:.1f} s ({versions / publish_s:.1f}/s)")
    print(f"publish -> delivery     : p50 {figures['latency_p50_s'] or math.nan:.3f} s   "
          f"p99 {figures['latency_p99_s'] or math.nan:.3f} s   max {figures['latency_max_s'] or math.nan:.3f} s")
    print(f"deliveries              : {result.received} in {deliveries_span:.1f} s "
          f"({figures['deliveries_per_s']:.0f}/s), {result.requests} webhook requests")
    print(f"registrations           : {counts.registrations} in {register_s:.1f} s "
          f"({figures['registrations_per_s']:.1f}/s)")
    print(f"refreshes               : {refreshed} in {refresh_s:.1f} s ({figures['refreshes_per_s']:.0f}/s; "
          + ", ".join(f"{k} {v}" for k, v in sorted(by_system.items())) + ")")
    print(f"exactly once            : {exactly_once}  (expected {len(expected.keys)}, received {result.received}, "
          f"missing {result.missing}, unexpected {result.unexpected}, duplicates {result.duplicates_raw} raw / "
          f"{result.duplicates_in_effect} in effect, bad signatures {result.bad_signatures}, errors {len(errors)})")
    if not alerts.ran:
        print(f"NOT RUN: the {counts.alert_subscriptions} supplier alert subscriptions ({alerts.reason})")
    for line in errors[:5]:
        print(f"  error: {line}")
    print("peak RSS (MiB)          : " + ", ".join(f"{n} {m:.0f}" for n, m in sorted(peaks.items())))
    return figures


def latency_range(text: str) -> tuple[int, int]:
    low, _, high = text.partition(",")
    return int(low), int(high or low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="a fraction applied to every count")
    parser.add_argument("--workers", type=int, default=2, help="g2bhub worker processes (besides the refresher)")
    parser.add_argument("--api-processes", type=int, default=2, help="g2bhub serve --workers")
    parser.add_argument("--receivers", type=int, default=2, help="webhook receiver processes")
    parser.add_argument("--refreshers", type=int, default=1,
                        help="g2bhub worker processes with the credential scheduler on (stopped once done)")
    parser.add_argument("--api-threads", type=int, default=24, help="api.threads of each API process")
    parser.add_argument("--publish-concurrency", type=int, default=8)
    parser.add_argument("--register-concurrency", type=int, default=16)
    parser.add_argument("--upstream-latency-ms", dest="upstream_latency", type=latency_range, default=(50, 300),
                        help="every twin answers after a uniform LOW,HIGH milliseconds")
    parser.add_argument("--national-certs", action="store_true",
                        help="also fetch from the national certificates twin (off in the shipped configuration)")
    parser.add_argument("--drain-timeout-s", type=float, default=120.0,
                        help="after publishing, give up when no delivery arrives for this long")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--amqp-url", default=os.environ.get("G2BHUB_TEST_AMQP_URL",
                                                             "amqp://guest:guest@127.0.0.1:5672/"))
    parser.add_argument("--database-url", default=os.environ.get("G2BHUB_TEST_DATABASE_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/test"),
                        help="a PostgreSQL server URL; a throw-away database is created on it")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="g2bhub-kday-") as workdir:
        figures = run(args, Path(workdir))
    emit("kday", figures)


if __name__ == "__main__":
    main()
