"""Subscription matching per notice: the bitmap matcher (the hub's) beside a linear scan, at 10k / 100k /
1M subscriptions (optionally the older planned index too), and the delivery writer on PostgreSQL.

    python bench/matching.py [--sizes 10000,100000,1000000 | --subscriptions N] [--notices 1000] [--seed 7]
                             [--with-planned] [--database-url URL | --no-database]

Subscriptions follow a skewed, realistic shape: 97 % follow one to three CPV divisions, groups or
classes (popular divisions such as 45 construction or 72 IT far more often), seven in ten one or two
regions (Seoul and Gyeonggi most), some a category, institution, value band or keywords; 3 %
follow no classification (mostly keywords instead). Notices draw full 8-digit CPV codes from the same skew.
The matcher and the linear scan run on the same notices, the same number of samples (every notice,
both), and every result is compared (``disagreements`` counts the notices where they differ). A
matcher's time is what the matching consumer pays: the matched slots and their id strings (the list
the delivery writer takes). Subscription ids are 36-character strings, like the hub's.
Memory: RSS growth while building the index from (id, filter) pairs, the id strings included (what a
worker keeps); the filter objects are the caller's and reported apart (the bitmap matcher keeps none).
Delivery writer: with a PostgreSQL URL (``--database-url``, default ``G2BHUB_TEST_DATABASE_URL``), the
rows of one version matching the largest notice's subscriptions written by ``add_deliveries`` (one
``INSERT … SELECT … FROM unnest(:ids)``) beside one executemany of a row dict per delivery, in a scratch
schema dropped afterwards.
Prints figures only; no assertions. The last line of stdout is the figures as one JSON line,
{"bench": "matching", "figures": {...}}.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from bench._report import Figure, emit
from hub.notices.model import NoticeContent
from hub.spine.db import normalise_url
from hub.subscriptions.bitmap_index import BitmapIndex
from hub.subscriptions.filters import NoticeFacts, SubscriptionFilter
from hub.subscriptions.matching import SubscriptionIndex
from hub.subscriptions.repository import SqlDeliveryRepository
from hub.subscriptions.tables import DeliveryRow
from tests.support.subscriptions import linear_scan_match

DIVISIONS = ["45", "72", "79", "50", "33", "30", "34", "71", "90", "39", "44", "48", "80", "85", "09", "15", "18",
             "22", "24", "31", "32", "35", "37", "38", "42", "43", "55", "60", "63", "64", "65", "66", "70",
             "73", "75", "77", "92", "98", "03", "14", "16", "19", "41", "51", "76"]
DIVISION_WEIGHTS = [1 / (rank + 1) ** 0.9 for rank in range(len(DIVISIONS))]
REGIONS = ["KR-11", "KR-41", "KR-26", "KR-28", "KR-27", "KR-47", "KR-48", "KR-44", "KR-30", "KR-29", "KR-46",
           "KR-43", "KR-45", "KR-42", "KR-31", "KR-49", "KR-50"]
REGION_WEIGHTS = [1 / (rank + 1) ** 0.8 for rank in range(len(REGIONS))]
_WORDS = (
    "도로 포장 정비 유지보수 청소 경비 급식 cctv 소프트웨어 시스템 구축 설계 감리 조경 교량 하수도 상수도 전기 통신 "
    "소방 의료 장비 차량 사무용 가구 컴퓨터 서버 네트워크 보안 교육 연구 용역 공사 물품 임대 인쇄 홍보 행사 폐기물 "
    "재활용 태양광 led road cloud ai data platform"
)
VOCABULARY = _WORDS.split()
INSTITUTIONS = [f"inst-{i:04d}" for i in range(2000)]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def random_prefix(rng: random.Random) -> str:
    division = rng.choices(DIVISIONS, DIVISION_WEIGHTS)[0]
    depth = rng.choices([0, 1, 2], [0.3, 0.4, 0.3])[0]
    digits = division + "".join(str(rng.randrange(10)) for _ in range(depth))
    return ("CPV:" if rng.random() < 0.5 else "") + digits


def random_filter(rng: random.Random) -> SubscriptionFilter:
    classifications = (
        tuple(random_prefix(rng) for _ in range(rng.choices([1, 2, 3], [0.5, 0.3, 0.2])[0]))
        if rng.random() < 0.97
        else ()
    )
    keyword_odds = 0.1 if classifications else 0.7  # who follows no classification mostly follows words
    roll = rng.random()
    regions: tuple[str, ...] = ()
    if roll < 0.7:
        regions = tuple(rng.choices(REGIONS, REGION_WEIGHTS, k=rng.randint(1, 2)))
    elif roll < 0.75:
        regions = ("KR",)
    low = high = None
    roll = rng.random()
    if roll < 0.15:
        low = Decimal(10) ** rng.randint(6, 9)
    elif roll < 0.35:
        low = Decimal(10) ** rng.randint(6, 9)
        high = low * rng.choice([10, 100, 1000])
    return SubscriptionFilter(
        classifications=classifications,
        categories=tuple(rng.sample(["goods", "services", "works"], 1)) if rng.random() < 0.3 else (),
        regions=regions,
        institutions=tuple(rng.sample(INSTITUTIONS, rng.randint(1, 3))) if rng.random() < 0.05 else (),
        min_value=low,
        max_value=high,
        keywords=tuple(rng.sample(VOCABULARY, rng.randint(1, 2))) if rng.random() < keyword_odds else (),
    )


def random_notice(rng: random.Random) -> NoticeFacts:
    division = rng.choices(DIVISIONS, DIVISION_WEIGHTS)[0]
    code = division + "".join(str(rng.randrange(10)) for _ in range(6))
    content = NoticeContent.parse({
        "title": " ".join(rng.sample(VOCABULARY, 5)),
        "description": " ".join(rng.sample(VOCABULARY, 12)),
        "category": rng.choice(["goods", "services", "works"]),
        "classifications": [{"scheme": "CPV", "code": code}],
        "delivery_region": rng.choices(REGIONS, REGION_WEIGHTS)[0],
        "estimated_value": str(int(10 ** rng.uniform(6, 11))),
        "currency": "KRW",
        "dates": {"published": "2025-03-03T09:00:00+09:00"},
    })
    return NoticeFacts.of(content, rng.choice(INSTITUTIONS))


def timed(
    match: Callable[[NoticeFacts], Any], notices: list[NoticeFacts], cpu: list[float] | None = None
) -> tuple[list[float], list[Any]]:
    """Wall-clock ms per notice (and, into ``cpu``, this process's CPU ms: on a shared machine a
    descheduled sample costs a 4 ms tick of wall time and none of CPU time)."""
    times, results = [], []
    for facts in notices:
        start, start_cpu = time.perf_counter_ns(), time.process_time_ns()
        result = match(facts)
        times.append((time.perf_counter_ns() - start) / 1e6)
        if cpu is not None:
            cpu.append((time.process_time_ns() - start_cpu) / 1e6)
        results.append(result)
    return times, results


def summary(times: list[float]) -> tuple[float, float, float]:
    """(mean, median, p99) in ms."""
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.fmean(ordered), statistics.median(ordered), p99


def subscription_id(number: int) -> str:
    """A 36-character id, the shape of the hub's (uuid4 strings)."""
    return f"{number:08x}-0000-4000-8000-{number:012x}"


def build(kind: Callable[..., object], subset: list[SubscriptionFilter]) -> tuple[object, float, float]:
    """(index, build seconds, RSS growth MiB), the id strings made while measuring (the worker keeps them)."""
    gc.collect()
    rss = _rss_bytes()
    start = time.perf_counter()
    index = kind((subscription_id(n), flt) for n, flt in enumerate(subset))
    seconds = time.perf_counter() - start
    gc.collect()
    memory = (_rss_bytes() - rss) / 2**20
    gc.freeze()  # long-lived objects (the caller's filters, the index) out of the collector's way, as a worker would
    return index, seconds, memory


def matcher_of(index: object) -> Callable[[NoticeFacts], Any]:
    """What the matching consumer calls: the bitmap matcher's slots mapped to their id strings (the
    list handed to the delivery writer), or the planned index's set of ids."""
    if isinstance(index, BitmapIndex):
        return lambda facts: index.ids_of(index.match_slots(facts))
    return index.match_facts  # type: ignore[attr-defined, no-any-return]


def time_writer(url: str, ids: list[Hashable], repeats: int = 5) -> dict[str, Figure]:
    """Milliseconds to write one version's deliveries to these ids: ``add_deliveries`` and, as the
    baseline, one executemany of a row dict per delivery; the median of ``repeats`` versions each."""
    engine = create_engine(normalise_url(url))
    schema = f"bench_matching_{os.getpid()}"
    sids = [str(sid) for sid in ids]
    figures: dict[str, Figure] = {"writer_rows": len(sids)}
    try:
        with engine.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        engine = engine.execution_options(schema_translate_map={None: schema})
        DeliveryRow.__table__.create(engine)  # type: ignore[attr-defined]
        bulk, rows = [], []
        for version in range(1, repeats + 1):
            with Session(engine) as session:
                session.connection().exec_driver_sql(f"SET LOCAL search_path TO {schema}")
                start = time.perf_counter()
                created = SqlDeliveryRepository(session).add_deliveries(sids, "N-1", version, version, "original")
                session.commit()
                bulk.append((time.perf_counter() - start) * 1e3)
                assert created == len(sids), (created, len(sids))
            with Session(engine) as session:
                now = datetime.now(UTC)
                start = time.perf_counter()
                session.execute(postgresql.insert(DeliveryRow).on_conflict_do_nothing(), [
                    {"subscription_id": sid, "notice_id": "N-2", "version": version, "seq": version, "kind": "original",
                     "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now, "updated_at": now}
                    for sid in sorted(sids)])
                session.commit()
                rows.append((time.perf_counter() - start) * 1e3)
        figures.update({"writer_add_deliveries_median_ms": statistics.median(bulk),
                        "writer_executemany_median_ms": statistics.median(rows)})
        print(f"delivery writer, {len(sids):,} rows a version (median of {repeats}): add_deliveries "
              f"{statistics.median(bulk):.1f} ms, executemany of row dicts {statistics.median(rows):.1f} ms")
    finally:
        with create_engine(normalise_url(url)).begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--subscriptions", type=int, help="one size (overrides --sizes)")
    parser.add_argument("--notices", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--with-planned", action="store_true", help="also measure the older planned index")
    parser.add_argument("--database-url", default=os.environ.get("G2BHUB_TEST_DATABASE_URL"),
                        help="PostgreSQL for the delivery writer (default: G2BHUB_TEST_DATABASE_URL)")
    parser.add_argument("--no-database", action="store_true", help="skip the delivery writer")
    args = parser.parse_args()
    sizes = [args.subscriptions] if args.subscriptions else [int(s) for s in args.sizes.split(",")]
    rng = random.Random(args.seed)
    notices = [random_notice(rng) for _ in range(args.notices)]

    rss = _rss_bytes()
    start = time.perf_counter()
    filters = [random_filter(rng) for _ in range(max(sizes))]
    generation = time.perf_counter() - start
    filter_memory = (_rss_bytes() - rss) / 2**20
    print(f"generated {len(filters):,} filters in {generation:.1f} s "
          f"(caller-side filter objects ≈ {filter_memory:,.0f} MiB RSS)")
    figures: dict[str, Figure] = {"notices": args.notices, "filters_generated": len(filters),
                                  "filters_generation_s": generation, "filter_objects_rss_mib": filter_memory}
    print(f"python {sys.version.split()[0]}, {args.notices} notices (matcher and scan alike), seed {args.seed}\n")
    header = (f"{'subs':>9} {'matcher':>8} {'build s':>8} {'RSS MiB':>8} {'matches':>8} | {'median ms':>9} "
              f"{'mean':>7} {'p99':>7} | {'scan median':>11} {'mean':>8} {'p99':>8} | {'speed-up':>8} {'disagree':>8}")
    print(header)
    print("-" * len(header))
    kinds: list[tuple[str, Callable[..., object]]] = [("bitmap", BitmapIndex)]
    if args.with_planned:
        kinds.append(("planned", SubscriptionIndex))
    largest: list[Hashable] = []
    for size in sizes:
        subset = filters[:size]
        pairs = [(subscription_id(n), flt) for n, flt in enumerate(subset)]
        scan_times, scan_results = timed(lambda f, p=pairs: linear_scan_match(p, f), notices)
        del pairs
        scan_mean, scan_median, scan_p99 = summary(scan_times)
        figures.update({f"matching_{size}_scan_mean_ms": scan_mean, f"matching_{size}_scan_median_ms": scan_median,
                        f"matching_{size}_scan_p99_ms": scan_p99})
        for name, kind in kinds:
            index, seconds, memory = build(kind, subset)
            match = matcher_of(index)
            cpu_times: list[float] = []
            index_times, index_results = timed(match, notices, cpu_times)
            _, cpu_median, cpu_p99 = summary(cpu_times)
            disagreements = sum(set(mine) != theirs for mine, theirs in zip(index_results, scan_results, strict=True))
            mean, median, p99 = summary(index_times)
            speed_up = scan_median / median
            matches = statistics.fmean(len(r) for r in index_results)
            print(f"{size:>9,} {name:>8} {seconds:>8.2f} {memory:>8.0f} {matches:>8.0f} | {median:>9.3f} {mean:>7.3f} "
                  f"{p99:>7.2f} | {scan_median:>11.2f} {scan_mean:>8.2f} {scan_p99:>8.2f} | {speed_up:>7.0f}x "
                  f"{disagreements:>8}")
            print(f"{'':>28} CPU time per match (no preemption): median {cpu_median:.3f} ms, p99 {cpu_p99:.2f} ms")
            prefix = f"matching_{size}_{name}"
            figures.update({
                f"{prefix}_build_s": seconds, f"{prefix}_rss_mib": memory,
                f"matching_{size}_matches_per_notice_mean": matches,
                f"{prefix}_median_ms": median, f"{prefix}_p99_ms": p99, f"{prefix}_mean_ms": mean,
                f"{prefix}_speed_up_vs_scan_median": speed_up,
                f"{prefix}_disagreements": disagreements,
                f"{prefix}_cpu_median_ms": cpu_median,
                f"{prefix}_cpu_p99_ms": cpu_p99,
            })
            if name == "bitmap" and size == max(sizes):
                largest = list(max(index_results, key=len))
            del index, match, index_results
    print("\nmatches = mean subscriptions selected per notice (the floor of any matcher's work); the speed-up is"
          "\nthe ratio of medians on the same notices; RSS MiB = growth while building (filters are the caller's).")
    if args.database_url and not args.no_database and largest:
        if normalise_url(args.database_url).startswith("postgresql"):
            figures.update(time_writer(args.database_url, largest))
        else:
            print("delivery writer: skipped (PostgreSQL only)")
    emit("matching", figures)


if __name__ == "__main__":
    main()
