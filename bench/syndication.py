"""Syndication figures: publish → webhook latency, matching per notice at 10k / 100k / 1M
subscriptions beside a linear scan, and dispatcher deliveries/s beside raw httpx.

    python bench/syndication.py [--sizes 10000,100000,1000000] [--rate 1.0] [--notices 30] [--fanout 2000]

1. Latency: a hub (SQLite + in-process broker, worker with relay, matching consumer and dispatcher)
   with 10,000 subscriptions (bench/matching.py's realistic filters, all pointing at one loopback
   receiver that verifies every signature with ``standardwebhooks``); notices are published at a
   steady rate (content stored + NoticeVersionPublished committed, as the notices flow does);
   latency = receiver arrival - commit of the publish, per delivery.
2. Matching: the index beside a linear scan on the same notices (as bench/matching.py).
3. Throughput: one notice matched by --fanout subscriptions; dispatcher deliveries/s (claim, sign,
   POST, record) beside raw httpx POSTing the same bodies with the same concurrency.
Prints figures only; bounded in requests and duration. The last line of stdout is the figures as one JSON line,
{"bench": "syndication", "figures": {...}}.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench._report import Figure, emit
from bench.matching import random_filter, random_notice, summary, timed
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.notices.events import NoticeVersionPublished
from hub.subscriptions.filters import NoticeFacts, SubscriptionFilter
from hub.subscriptions.matching import SubscriptionIndex
from hub.subscriptions.model import filter_json
from hub.subscriptions.signing import new_secret
from hub.subscriptions.tables import DeliveryRow, SubscriptionChangeRow, SubscriptionRow
from tests.support.fakes import InMemoryNoticeReader
from tests.support.receiver import Receiver
from tests.support.subscriptions import linear_scan_match

SYNDICATION = {"allow_private_targets": True, "dispatch_interval_s": 0.02, "dispatch_batch": 500,
               "dispatch_concurrency": 16, "time_scale": 0.001}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def make_hub(directory: str, reader: InMemoryNoticeReader) -> Hub:
    settings = Settings(database={"url": f"sqlite:///{directory}/bench-{uuid.uuid4().hex[:6]}.db"},
                        broker={"kind": "inprocess"}, relay={"poll_interval_s": 0.01},
                        syndication=SYNDICATION)
    return bootstrap(settings, migrate=True, dependencies={"notice_reader": reader})


def add_subscriptions(hub: Hub, filters: list[Any], url: str, secret: str) -> None:
    now = time.time()
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(now, UTC)
    with hub.session_factory() as session:
        for flt in filters:
            sid = str(uuid.uuid4())
            session.add(SubscriptionRow(id=sid, org_id="bench", name="", channel="webhook", url=url,
                                        filter=filter_json(flt), routable=False, status="active",
                                        secrets=[{"secret": secret, "expires_at": None}],
                                        created_at=stamp, updated_at=stamp))
            session.add(SubscriptionChangeRow(subscription_id=sid, changed_at=stamp))
        session.commit()


def notice_content(rng: random.Random) -> dict[str, Any]:
    from bench.matching import DIVISION_WEIGHTS, DIVISIONS, REGION_WEIGHTS, REGIONS, VOCABULARY

    code = rng.choices(DIVISIONS, DIVISION_WEIGHTS)[0] + "".join(str(rng.randrange(10)) for _ in range(6))
    return {
        "title": " ".join(rng.sample(VOCABULARY, 5)), "description": " ".join(rng.sample(VOCABULARY, 12)),
        "category": rng.choice(["goods", "services", "works"]),
        "classifications": [{"scheme": "CPV", "code": code}],
        "delivery_region": rng.choices(REGIONS, REGION_WEIGHTS)[0],
        "estimated_value": str(int(10 ** rng.uniform(6, 11))), "currency": "KRW",
        "dates": {"published": "2025-03-03T09:00:00+09:00"},
    }


def publish(hub: Hub, reader: InMemoryNoticeReader, notice_id: str, content: dict[str, Any], seq: int) -> None:
    reader.put(notice_id, 1, content)
    with hub.uow() as uow:
        uow.publish(NoticeVersionPublished(
            notice_id=notice_id, version=1, kind="original", institution_org_id="inst-0001",
            category=content["category"], region=content["delivery_region"], seq=seq,
            published_at="2025-03-03T00:00:00+00:00"))
        uow.commit()


def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def latency_bench(directory: str, rate: float, count: int, rng: random.Random) -> dict[str, Figure]:
    reader = InMemoryNoticeReader()
    hub = make_hub(directory, reader)
    secret = new_secret()
    receiver = Receiver([secret])
    add_subscriptions(hub, [random_filter(rng) for _ in range(10_000)], receiver.url, secret)
    hub.make_worker().start()
    published: dict[str, float] = {}
    start = time.monotonic()
    for i in range(count):
        target = start + i / rate
        time.sleep(max(0.0, target - time.monotonic()))
        notice_id = f"LAT-{i}"
        publish(hub, reader, notice_id, notice_content(rng), i + 1)
        published[notice_id] = time.monotonic()
    with hub.session_factory() as session:
        expected = session.query(DeliveryRow).count()
    wait_for(lambda: len(receiver.delivered()) >= expected and expected > 0, 120)
    with hub.session_factory() as session:
        expected = session.query(DeliveryRow).count()
    wait_for(lambda: len(receiver.delivered()) >= expected, 60)
    latencies = [(r.at - published[r.body["data"]["notice_id"]]) * 1000 for r in receiver.delivered()]
    print(f"latency: {count} notices at {rate}/s, 10,000 subscriptions, {len(latencies)} webhooks "
          f"({len(latencies) / count:.0f} per notice), unverified {receiver.unverified}")
    figures: dict[str, Figure] = {
        "latency_notices": count, "latency_publish_rate_per_s": rate, "latency_subscriptions": 10_000,
        "latency_webhooks": len(latencies), "latency_webhooks_per_notice": len(latencies) / count,
        "latency_unverified_webhooks": receiver.unverified,
        "latency_publish_to_received_p50_ms": None, "latency_publish_to_received_p99_ms": None,
        "latency_publish_to_received_max_ms": None,
    }
    if latencies:
        p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
        print(f"  publish → received  p50 {p50:7.1f} ms   p99 {p99:7.1f} ms"
              f"   max {max(latencies):7.1f} ms")
        figures.update({"latency_publish_to_received_p50_ms": p50, "latency_publish_to_received_p99_ms": p99,
                        "latency_publish_to_received_max_ms": max(latencies)})
    hub.close()
    receiver.close()
    return figures


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
        mean, p99 = summary(index_times)
        scan_mean, _ = summary(scan_times)
        matches = statistics.fmean(len(r) for r in index_results)
        print(f"{size:>10,} {build:>8.1f} {matches:>8.0f} | {mean:>13.3f} {p99:>7.2f} | {scan_n:>6} "
              f"{scan_mean:>12.2f} | {scan_mean / mean:>7.0f}x")
        figures.update({
            f"matching_{size}_index_build_s": build, f"matching_{size}_matches_per_notice_mean": matches,
            f"matching_{size}_index_mean_ms": mean, f"matching_{size}_index_p99_ms": p99,
            f"matching_{size}_scan_notices": scan_n, f"matching_{size}_scan_mean_ms": scan_mean,
            f"matching_{size}_index_speed_up_vs_scan": scan_mean / mean,
        })
        del index, pairs
    return figures


def throughput_bench(directory: str, fanout: int) -> dict[str, Figure]:
    reader = InMemoryNoticeReader()
    hub = make_hub(directory, reader)
    secret = new_secret()
    receiver = Receiver([secret])
    add_subscriptions(hub, [SubscriptionFilter() for _ in range(fanout)], receiver.url, secret)
    hub.make_worker().start()
    started = time.monotonic()
    publish(hub, reader, "TP-1", notice_content(random.Random(1)), 1)
    wait_for(lambda: len(receiver.delivered()) >= fanout, 120)
    done = receiver.delivered()
    first = min(r.at for r in done)
    elapsed = max(r.at for r in done) - first
    bodies = [__import__("json").dumps(r.body).encode() for r in done]
    hub.close()
    count = len(done)
    print(f"\nthroughput: one notice to {fanout:,} webhook subscriptions (16 concurrent)")
    print(f"  hub dispatcher   {count / elapsed:8.0f} deliveries/s  ({count} in {elapsed:.2f} s; "
          f"{first - started:.2f} s publish → first)")
    client = httpx.Client(timeout=5.0, trust_env=False)
    t0 = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        def post(body: bytes) -> int:
            return client.post(receiver.url, content=body).status_code

        statuses = list(pool.map(post, bodies))
    raw = time.monotonic() - t0
    print(f"  raw httpx POST   {len(statuses) / raw:8.0f} requests/s    ({len(statuses)} in {raw:.2f} s, unsigned)")
    client.close()
    receiver.close()
    dispatcher_rate, raw_rate = count / elapsed, len(statuses) / raw
    return {
        "dispatch_fanout_subscriptions": fanout, "dispatch_concurrency": 16,
        "dispatch_deliveries": count, "dispatch_s": elapsed, "dispatch_publish_to_first_s": first - started,
        "dispatch_deliveries_per_s": dispatcher_rate,
        "raw_httpx_requests": len(statuses), "raw_httpx_s": raw, "raw_httpx_requests_per_s": raw_rate,
        "dispatch_vs_raw_httpx": dispatcher_rate / raw_rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--notices", type=int, default=30)
    parser.add_argument("--match-notices", type=int, default=200)
    parser.add_argument("--fanout", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"python {sys.version.split()[0]}")
    figures: dict[str, Figure] = {}
    with tempfile.TemporaryDirectory() as directory:
        figures |= latency_bench(directory, args.rate, args.notices, rng)
        figures |= throughput_bench(directory, args.fanout)
    figures |= matching_bench([int(s) for s in args.sizes.split(",")], rng, args.match_notices)
    emit("syndication", figures)


if __name__ == "__main__":
    main()
