"""Bulk loading supplier alert subscriptions onto batched webhook endpoints, through the command an
operator runs (``g2bhub subscriptions load FILE --endpoint ID``), then what the load costs the matcher:
one full reload of a worker's index, and the per-version lookup that collapses matched subscriptions
into one delivery per endpoint.

    python bench/bulk_load.py --database-url postgresql://…/db [--subscriptions 1000000] [--endpoints 100]
                              [--notices 200] [--seed 7]

The database is migrated and gets one agency with ``--endpoints`` endpoints; the subscriptions (the
matching bench's realistic filter mix) are spread evenly over them, one file and one load per endpoint.
Prints figures only; the last line of stdout is {"bench": "bulk_load", "figures": {...}}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import emit
from bench.matching import random_filter, random_notice
from hub.bootstrap import bootstrap
from hub.config import Settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.subscriptions.commands import RegisterEndpoint
from hub.subscriptions.index_cache import IndexCache
from hub.subscriptions.model import filter_json


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("G2BHUB_DATABASE__URL"), required=False)
    parser.add_argument("--subscriptions", type=int, default=1_000_000)
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--notices", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not args.database_url:
        parser.error("--database-url (or G2BHUB_DATABASE__URL) is required")
    rng = random.Random(args.seed)
    hub = bootstrap(Settings(database={"url": args.database_url}, broker={"kind": "inprocess"}), migrate=True)
    try:
        org, _ = hub.bus.handle(CreateOrganisation(name=f"alerts {uuid.uuid4().hex[:6]}", kind=OrgKind.AGENCY))
        endpoints = []
        for n in range(args.endpoints):
            endpoint, _ = hub.bus.handle(RegisterEndpoint(endpoint_id=str(uuid.uuid4()), org_id=org.id,
                                                          name=f"alerts {n}", url="https://alerts.example.kr/in"))
            endpoints.append(endpoint.id)
        per_endpoint = args.subscriptions // args.endpoints
        env = {**os.environ, "G2BHUB_DATABASE__URL": args.database_url, "G2BHUB_BROKER__KIND": "inprocess",
               "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        load_s = 0.0
        with tempfile.TemporaryDirectory() as directory:
            for n, endpoint_id in enumerate(endpoints):
                path = Path(directory) / f"{n}.jsonl"
                with path.open("w") as out:
                    for i in range(per_endpoint):
                        doc = {"id": f"sup-{n:03d}-{i:07d}", "filter": filter_json(random_filter(rng))}
                        out.write(json.dumps(doc, ensure_ascii=False) + "\n")
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "hub.cli.main", "subscriptions", "load", str(path),
                                "--endpoint", endpoint_id], env=env, check=True, stdout=subprocess.DEVNULL)
                load_s += time.perf_counter() - started
        loaded = per_endpoint * len(endpoints)
        print(f"loaded {loaded} subscriptions onto {len(endpoints)} endpoints in {load_s:.1f} s "
              f"({loaded / load_s:,.0f}/s, CLI start-up included)")

        index = IndexCache()
        with hub.read_uow() as uow:
            started = time.perf_counter()
            index.sync(uow.subscriptions)
            reload_s = time.perf_counter() - started
        print(f"full index reload: {reload_s:.1f} s")

        classify_ms, matched_counts, batches = [], [], []
        with hub.read_uow() as uow:
            for _ in range(args.notices):
                matched = index.match(random_notice(rng))
                started = time.perf_counter()
                members, _ = uow.endpoints.classify(matched)
                classify_ms.append((time.perf_counter() - started) * 1000)
                matched_counts.append(len(matched))
                batches.append(len(set(members.values())))
        print(f"per notice: {statistics.median(matched_counts):.0f} matched (median), collapsed into "
              f"{statistics.median(batches):.0f} endpoint deliveries; classify median "
              f"{statistics.median(classify_ms):.1f} ms, p99 {percentile(classify_ms, 0.99):.1f} ms")
    finally:
        hub.close()
    emit("bulk_load", {
        "subscriptions": loaded, "endpoints": len(endpoints), "load_s": load_s, "load_per_s": loaded / load_s,
        "index_reload_s": reload_s, "matched_per_notice_median": statistics.median(matched_counts),
        "deliveries_per_notice_median": statistics.median(batches),
        "classify_ms_median": statistics.median(classify_ms), "classify_ms_p99": percentile(classify_ms, 0.99),
    })


if __name__ == "__main__":
    main()
