"""Syndication figures: publish (through the API) → webhook received, dispatcher deliveries/s beside a
raw ``httpx.AsyncClient``, and matching per notice at 10k / 100k / 1M subscriptions beside a linear scan.

    python bench/syndication.py [--database-url URL] [--amqp-url URL] [--rate 2] [--notices 60]
                                [--subscriptions 10000] [--fanout 2000] [--rounds 3] [--sizes 10000,100000]

The hub runs as it is deployed: the API (uvicorn) and a worker (relay, matching consumer, dispatcher),
each a process of its own, on PostgreSQL (``--database-url``, default ``G2BHUB_TEST_DATABASE_URL``; each
part gets a fresh database created next to it and dropped after) and RabbitMQ (``--amqp-url``, default
``G2BHUB_TEST_AMQP_URL``; a namespace of its own), with the shipped settings except that loopback
webhook targets are allowed and quotas are off. Webhooks go to ``bench/_receiver.py``, an asyncio
receiver in a process of its own that verifies every signed request with ``standardwebhooks``.

1. Latency: --subscriptions webhook subscriptions (bench/matching.py's realistic filters) bulk-loaded;
   notices POSTed to ``/api/v1/notices`` at --rate per second; latency = arrival at the receiver - the
   moment the POST was sent, per delivery (first arrival of each webhook-id).
2. Throughput: --fanout subscriptions that match everything; each round one notice is published and
   the hub's deliveries/s measured at the receiver (first to last arrival), then a raw
   ``httpx.AsyncClient`` POSTs the same bodies, as many, to the same receiver with the same concurrency
   (``dispatch_concurrency``). Ratio per round; the median is the figure.
3. Matching: the index beside a linear scan on the same notices (as bench/matching.py); ``--sizes ''``
   skips it.
Bounded in requests and duration. The last line of stdout is the figures as one JSON line,
{"bench": "syndication", "figures": {...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bench._report import Figure, emit
from bench.matching import random_filter, random_notice, summary, timed
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.subscriptions.filters import NoticeFacts, SubscriptionFilter
from hub.subscriptions.matching import SubscriptionIndex
from hub.subscriptions.model import filter_json
from hub.subscriptions.sender import encode_body
from hub.subscriptions.signing import new_secret
from hub.subscriptions.tables import DeliveryRow, PayloadRow, SubscriptionChangeRow, SubscriptionRow
from tests.support.notices import notice_body
from tests.support.subscriptions import linear_scan_match

ROOT = Path(__file__).resolve().parent.parent
API = "/api/v1"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A new PostgreSQL database beside ``url``'s, dropped afterwards."""
    parsed = make_url(url)
    name = f"{parsed.database}_bench_{uuid.uuid4().hex[:8]}"
    admin = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class ReceiverProcess:
    """bench/_receiver.py in a process of its own."""

    def __init__(self, secret: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "bench._receiver", secret], cwd=ROOT,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.base = f"http://127.0.0.1:{int(self.process.stdout.readline())}"
        self.url = f"{self.base}/hook"
        self.http = httpx.Client(trust_env=False, timeout=60)

    def stats(self) -> dict[str, int]:
        return dict(self.http.get(f"{self.base}/stats").json())

    def records(self) -> list[list[Any]]:
        return list(self.http.get(f"{self.base}/records").json())

    def reset(self) -> None:
        self.http.get(f"{self.base}/reset")

    def close(self) -> None:
        self.http.close()
        self.process.terminate()
        self.process.wait(10)


class HubProcesses:
    """A hub on a fresh database: schema, an institution's API key, the API and one worker process."""

    def __init__(self, database_url: str, amqp_url: str, relay_poll_s: float) -> None:
        self.port = free_port()
        self.data: dict[str, Any] = {
            "database": {"url": database_url},
            "broker": {"kind": "rabbitmq", "url": amqp_url, "namespace": f"bench{uuid.uuid4().hex[:8]}"},
            "relay": {"poll_interval_s": relay_poll_s},
            "api": {"public_base_url": f"http://127.0.0.1:{self.port}"},
            "quotas": {"enabled": False},
            "logging": {"level": "WARNING"},
            "syndication": {"allow_private_targets": True},
        }
        self.settings = Settings(**self.data)
        self.hub: Hub = bootstrap(self.settings, migrate=True)
        _, issued = self.hub.bus.handle(CreateOrganisation(name="Bench institution", kind=OrgKind.INSTITUTION))
        self.headers = {"Authorization": f"Bearer {issued.plaintext}"}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.base = f"http://127.0.0.1:{self.port}"

    def add_subscriptions(self, filters: list[SubscriptionFilter], url: str, secret: str) -> None:
        stamp = datetime.now(UTC)
        with self.hub.session_factory() as session:
            for flt in filters:
                sid = str(uuid.uuid4())
                session.add(SubscriptionRow(id=sid, org_id="bench", name="", channel="webhook", url=url,
                                            filter=filter_json(flt), routable=False, status="active",
                                            secrets=[{"secret": secret, "expires_at": None}],
                                            created_at=stamp, updated_at=stamp))
                session.add(SubscriptionChangeRow(subscription_id=sid, changed_at=stamp))
            session.commit()

    def start(self) -> None:
        settings = json.dumps(self.data)
        # The processes' own logs, shown if one fails; closed with the hub.
        self.logs = [tempfile.TemporaryFile() for _ in range(2)]  # noqa: SIM115
        self.processes.append(subprocess.Popen([sys.executable, "-m", "bench._hub_process", "worker", settings],
                                               cwd=ROOT, stdout=self.logs[0], stderr=self.logs[0]))
        self.processes.append(subprocess.Popen(
            [sys.executable, "-m", "bench._hub_process", "api", settings, str(self.port)],
            cwd=ROOT, stdout=self.logs[1], stderr=self.logs[1]))
        deadline = time.monotonic() + 180  # a loaded machine imports slowly
        while time.monotonic() < deadline and all(p.poll() is None for p in self.processes):
            try:
                if httpx.get(f"{self.base}/healthz", trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        for log in self.logs:
            log.seek(0)
            print(log.read().decode(errors="replace")[-3000:], file=sys.stderr)
        raise RuntimeError("the API did not start")

    def deliveries(self) -> tuple[int, int]:
        """(all delivery rows, those delivered)."""
        with self.hub.session_factory() as session:
            total = session.scalar(select(func.count()).select_from(DeliveryRow)) or 0
            done = session.scalar(select(func.count()).select_from(DeliveryRow)
                                  .where(DeliveryRow.status == "delivered")) or 0
        return total, done

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in getattr(self, "logs", []):
            log.close()
        self.hub.close()
        self.hub.engine.dispose()


@contextmanager
def running_hub(database_url: str, amqp_url: str, relay_poll_s: float) -> Iterator[HubProcesses]:
    with fresh_database(database_url) as url:
        hub = HubProcesses(url, amqp_url, relay_poll_s)
        try:
            yield hub
        finally:
            hub.close()


def notice_content(rng: random.Random) -> dict[str, Any]:
    from bench.matching import DIVISION_WEIGHTS, DIVISIONS, REGION_WEIGHTS, REGIONS, VOCABULARY

    code = rng.choices(DIVISIONS, DIVISION_WEIGHTS)[0] + "".join(str(rng.randrange(10)) for _ in range(6))
    return notice_body(
        title=" ".join(rng.sample(VOCABULARY, 5)), description=" ".join(rng.sample(VOCABULARY, 12)),
        category=rng.choice(["goods", "services", "works"]), classifications=[{"scheme": "CPV", "code": code}],
        delivery_region=rng.choices(REGIONS, REGION_WEIGHTS)[0],
        estimated_value=str(int(10 ** rng.uniform(6, 11))), lots=[],
    )


def publish(http: httpx.Client, hub: HubProcesses, content: dict[str, Any]) -> tuple[str, float]:
    """POST the notice; its id and the moment the request was sent."""
    sent = time.monotonic()
    response = http.post(f"{hub.base}{API}/notices", json=content, headers=hub.headers)
    if response.status_code != 201:
        raise RuntimeError(f"publish failed: {response.status_code} {response.text[:300]}")
    body = response.json()
    return str(body.get("notice", body).get("id")), sent


def wait_for_all(hub: HubProcesses, receiver: ReceiverProcess, timeout: float, before: int = 0) -> tuple[int, int]:
    """Until every delivery row is delivered and the receiver (reset when ``before`` rows existed) has
    them all, rows having stopped appearing (the matcher is through); (new rows, verified distinct)."""
    deadline = time.monotonic() + timeout
    stable = 0
    last = (-1, -1)
    while time.monotonic() < deadline:
        total, done = hub.deliveries()
        distinct = receiver.stats()["distinct"]
        if total > before and done == total and distinct >= total - before:
            stable = stable + 1 if (total, distinct) == last else 0
            if stable >= 3:
                return total - before, distinct
        last = (total, distinct)
        time.sleep(0.2)
    return hub.deliveries()[0] - before, receiver.stats()["distinct"]


def latency_bench(args: argparse.Namespace, rng: random.Random) -> dict[str, Figure]:
    secret = new_secret()
    receiver = ReceiverProcess(secret)
    try:
        with running_hub(args.database_url, args.amqp_url, args.relay_poll) as hub:
            hub.add_subscriptions([random_filter(rng) for _ in range(args.subscriptions)], receiver.url, secret)
            hub.start()
            http = httpx.Client(trust_env=False, timeout=30)
            publish(http, hub, notice_content(rng))  # first requests pay for imports and caches
            wait_for_all(hub, receiver, 60)
            before = hub.deliveries()[0]
            receiver.reset()
            published: dict[str, float] = {}
            start = time.monotonic()
            for i in range(args.notices):
                time.sleep(max(0.0, start + i / args.rate - time.monotonic()))
                notice_id, sent = publish(http, hub, notice_content(rng))
                published[notice_id] = sent
            lag = time.monotonic() - (start + (args.notices - 1) / args.rate)
            http.close()
            rows, _ = wait_for_all(hub, receiver, 180, before)
            stats = receiver.stats()
            first: dict[str, float] = {}
            for webhook_id, notice_id, _, at, ok in receiver.records():
                if ok and notice_id in published and webhook_id not in first:
                    first[webhook_id] = (at - published[notice_id]) * 1000
    finally:
        receiver.close()
    latencies = list(first.values())
    print(f"latency: {args.notices} notices POSTed at {args.rate}/s (publisher lag {lag:.2f} s), "
          f"{args.subscriptions:,} subscriptions, {len(latencies)} webhooks of {rows} delivery rows "
          f"({len(latencies) / args.notices:.0f} per notice), unverified {stats['unverified']}, "
          f"missing {rows - len(latencies)}")
    figures: dict[str, Figure] = {
        "latency_notices": args.notices, "latency_publish_rate_per_s": args.rate,
        "latency_subscriptions": args.subscriptions, "latency_delivery_rows": rows,
        "latency_webhooks": len(latencies), "latency_webhooks_per_notice": len(latencies) / args.notices,
        "latency_unverified_webhooks": stats["unverified"], "latency_relay_poll_s": args.relay_poll,
        # Not received when the wait gave up: the hub could not keep up with the rate (a saturated run).
        "latency_missing_webhooks": rows - len(latencies),
    }
    if latencies:
        p50, p99, mean = percentile(latencies, 0.5), percentile(latencies, 0.99), statistics.fmean(latencies)
        print(f"  publish (API) → received  p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   mean {mean:7.1f} ms"
              f"   max {max(latencies):7.1f} ms")
        figures.update({"latency_publish_to_received_p50_ms": p50, "latency_publish_to_received_p99_ms": p99,
                        "latency_publish_to_received_mean_ms": mean,
                        "latency_publish_to_received_max_ms": max(latencies)})
    return figures


async def raw_posts(url: str, bodies: list[bytes], concurrency: int) -> float:
    """POST every body with ``concurrency`` requests in flight on one ``httpx.AsyncClient``; seconds."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(trust_env=False, timeout=30, limits=limits) as client:
        todo = iter(bodies)
        statuses: list[int] = []

        async def sender() -> None:
            for body in todo:
                response = await client.post(url, content=body, headers={"content-type": "application/json"})
                statuses.append(response.status_code)

        await client.post(url, content=b"{}")  # connect before the clock starts, as the hub's pool has
        started = time.monotonic()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    assert statuses.count(200) == len(bodies), "the receiver refused raw requests"
    return elapsed


def throughput_bench(args: argparse.Namespace) -> dict[str, Figure]:
    secret = new_secret()
    receiver = ReceiverProcess(secret)
    hub_rates: list[float] = []
    raw_rates: list[float] = []
    counts: list[int] = []
    try:
        with running_hub(args.database_url, args.amqp_url, args.relay_poll) as hub:
            concurrency = hub.settings.syndication.dispatch_concurrency
            hub.add_subscriptions([SubscriptionFilter() for _ in range(args.fanout)], receiver.url, secret)
            hub.start()
            http = httpx.Client(trust_env=False, timeout=30)
            print(f"\nthroughput: one notice to {args.fanout:,} webhook subscriptions, {concurrency} concurrent, "
                  f"{args.rounds} rounds")
            for round_no in range(args.rounds + 1):  # round 0 warms both up and is not counted
                before = hub.deliveries()[0]
                receiver.reset()
                notice_id, _ = publish(http, hub, notice_content(random.Random(round_no)))
                wait_for_all(hub, receiver, 300, before)
                arrivals = sorted(at for webhook_id, n, _, at, ok in receiver.records() if ok and n == notice_id)
                with hub.hub.session_factory() as session:
                    payload = session.scalars(select(PayloadRow).where(PayloadRow.notice_id == notice_id)).one()
                body = encode_body(payload.body, hub.settings.syndication.max_payload_bytes, "")
                count = len(arrivals)
                hub_s = arrivals[-1] - arrivals[0]
                raw_s = asyncio.run(raw_posts(receiver.url, [body] * count, concurrency))
                if round_no == 0:
                    continue
                counts.append(count)
                hub_rates.append((count - 1) / hub_s)
                raw_rates.append(count / raw_s)
                print(f"  round {round_no}: hub dispatcher {hub_rates[-1]:7.0f} deliveries/s ({count} in "
                      f"{hub_s:.2f} s)   raw httpx.AsyncClient {raw_rates[-1]:7.0f} requests/s ({count} in "
                      f"{raw_s:.2f} s)   ratio {hub_rates[-1] / raw_rates[-1]:.2f}")
            http.close()
    finally:
        receiver.close()
    ratios = [h / r for h, r in zip(hub_rates, raw_rates, strict=True)]
    print(f"  median: hub {statistics.median(hub_rates):.0f}/s, raw {statistics.median(raw_rates):.0f}/s, "
          f"ratio {statistics.median(ratios):.2f} (mean {statistics.fmean(ratios):.2f})")
    return {
        "dispatch_fanout_subscriptions": args.fanout, "dispatch_concurrency": concurrency,
        "dispatch_rounds": len(ratios), "dispatch_deliveries_per_round": min(counts),
        "dispatch_deliveries_per_s_median": statistics.median(hub_rates),
        "raw_async_httpx_requests_per_s_median": statistics.median(raw_rates),
        "dispatch_vs_raw_async_httpx_median": statistics.median(ratios),
        "dispatch_vs_raw_async_httpx_mean": statistics.fmean(ratios),
        "dispatch_vs_raw_async_httpx_min": min(ratios),
    }


def matching_bench(sizes: list[int], rng: random.Random, notices_n: int) -> dict[str, Figure]:
    notices = [random_notice(rng) for _ in range(notices_n)]
    started = time.perf_counter()
    filters = [random_filter(rng) for _ in range(max(sizes))]
    generation = time.perf_counter() - started
    print(f"\nmatching: {len(filters):,} filters generated in {generation:.0f} s; "
          f"{notices_n} notices")
    figures: dict[str, Figure] = {"matching_notices": notices_n, "matching_filters_generated": len(filters),
                                  "matching_filters_generation_s": generation}
    print(f"{'subs':>10} {'build s':>8} {'matches':>8} | {'index mean ms':>13} {'p99':>7} | "
          f"{'scan n':>6} {'scan mean ms':>12} | {'speed-up':>8}")
    for size in sizes:
        pairs = list(enumerate(filters[:size]))
        t0 = time.perf_counter()
        index = SubscriptionIndex(pairs)
        build = time.perf_counter() - t0
        index_times, index_results = timed(index.match_facts, notices)
        scan_n = max(5, min(notices_n, 2_000_000 // size))
        def scan(facts: NoticeFacts, p: list[tuple[int, SubscriptionFilter]] = pairs) -> set[object]:
            return set(linear_scan_match(p, facts))

        scan_times, scan_results = timed(scan, notices[:scan_n])
        assert index_results[:scan_n] == scan_results, "index and scan disagree"
        mean, median, p99 = summary(index_times)
        scan_mean, _, _ = summary(scan_times)
        matches = statistics.fmean(len(r) for r in index_results)
        print(f"{size:>10,} {build:>8.1f} {matches:>8.0f} | {mean:>13.3f} {p99:>7.2f} | {scan_n:>6} "
              f"{scan_mean:>12.2f} | {scan_mean / mean:>7.0f}x")
        figures.update({
            f"matching_{size}_index_build_s": build, f"matching_{size}_matches_per_notice_mean": matches,
            f"matching_{size}_index_mean_ms": mean, f"matching_{size}_index_median_ms": median,
            f"matching_{size}_index_p99_ms": p99,
            f"matching_{size}_scan_notices": scan_n, f"matching_{size}_scan_mean_ms": scan_mean,
            f"matching_{size}_index_speed_up_vs_scan": scan_mean / mean,
        })
        del index, pairs
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("G2BHUB_TEST_DATABASE_URL"),
                        help="PostgreSQL (default: G2BHUB_TEST_DATABASE_URL); fresh databases are made beside it")
    parser.add_argument("--amqp-url", default=os.environ.get("G2BHUB_TEST_AMQP_URL"),
                        help="RabbitMQ (default: G2BHUB_TEST_AMQP_URL)")
    parser.add_argument("--rate", type=float, default=2.0, help="notices POSTed per second")
    parser.add_argument("--notices", type=int, default=60)
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--relay-poll", type=float, default=Settings().relay.poll_interval_s,
                        help="the relay's poll interval (default: the shipped setting)")
    parser.add_argument("--fanout", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="matching sizes; '' skips")
    parser.add_argument("--match-notices", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", choices=["latency", "throughput", "matching"], default=None)
    args = parser.parse_args()
    # A TERM (a timeout, an impatient operator) still stops the hub's processes and drops the databases.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not args.database_url or not args.amqp_url or not args.database_url.startswith("postgresql"):
        parser.error("needs PostgreSQL and RabbitMQ: --database-url/--amqp-url or G2BHUB_TEST_DATABASE_URL/"
                     "G2BHUB_TEST_AMQP_URL")
    rng = random.Random(args.seed)
    print(f"python {sys.version.split()[0]}")
    figures: dict[str, Figure] = {}
    if args.only in (None, "latency"):
        figures |= latency_bench(args, rng)
    if args.only in (None, "throughput"):
        figures |= throughput_bench(args)
    if args.only in (None, "matching") and args.sizes:
        figures |= matching_bench([int(s) for s in args.sizes.split(",")], rng, args.match_notices)
    emit("syndication", figures)


if __name__ == "__main__":
    main()
