"""Register once: fan-out latency, concurrent registrations and refresh throughput against the twins.

    python bench/register.py [--latency-min-ms 50] [--latency-max-ms 300] [--registrations 20]
                             [--concurrent 50] [--refresh-suppliers 1000]

Every sandbox system answers after a uniform 50-300 ms (the twins' fault config). Registrations go
through the service call (``hub.suppliers.service.register``: command → fan-out fetch →
record command, SQLite + in-process broker), not HTTP, so the figures are the hub's own cost.

1. wall time of one registration with all five identifiers (six systems) ÷ the slowest upstream call
   of that registration (from ``upstream_calls``; target ≤ 1.10), beside the sequential sum ÷ slowest;
2. registrations per second with ``--concurrent`` registrations in a thread pool (shipped connector
   concurrency limits apply: VIES and Companies House allow 4 calls at once);
3. credential refreshes per second for ``--refresh-suppliers`` NTS credentials, batched (the scheduler:
   100 numbers per call) vs one call per number, in the same run.
Prints figures only; no assertions. The last line of stdout is the figures as one JSON line,
{"bench": "register", "figures": {...}}."""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import Figure, emit
from connectors.sandbox.identifiers import generate_brn
from connectors.sandbox.server import SandboxServer
from hub.bootstrap import Hub, bootstrap
from hub.cli.demo_suppliers import sandbox_connector_overrides
from hub.config import Settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.suppliers.commands import ClaimCredentialFetches, RecordCredentialFetches
from hub.suppliers.model import new_id
from hub.suppliers.tables import upstream_calls

SYSTEM_PREFIX = {"vies": "vies", "nts": "nts", "gleif": "gleif", "companies_house": "companies-house",
                 "iaf": "iaf", "national_certs": "national-certs"}


def set_latency(sandbox: SandboxServer, low: float, high: float) -> None:
    for prefix in SYSTEM_PREFIX.values():
        httpx.post(f"{sandbox.base_url}/{prefix}/_control/faults", timeout=5,
                   json={"latency_min_ms": low, "latency_max_ms": high, "latency_distribution": "uniform"},
                   ).raise_for_status()


def make_hub(sandbox: SandboxServer, db: Path, suppliers: dict[str, Any] | None = None) -> Hub:
    connectors = sandbox_connector_overrides(sandbox.endpoints, sandbox.api_keys)
    for entry in connectors.values():
        entry["retry"] = {"max_attempts": 1}
    settings = Settings(
        database={"url": f"sqlite:///{db}", "pool_size": 60}, broker={"kind": "inprocess"},
        logging={"level": "WARNING"}, connectors=connectors,
        suppliers={"fetch": {"max_parallel": 400, "deadline_s": 30}, "scheduler": {"enabled": False},
                   **(suppliers or {})},
        # The twins cost nothing: measure the hub, not the upstream budgets that protect real keys.
        quotas={"enabled": False},
    )
    return bootstrap(settings, migrate=True)


def supplier_org(hub: Hub, name: str) -> str:
    org, _ = hub.bus.handle(CreateOrganisation(name=name, kind=OrgKind.SUPPLIER))
    return str(org.id)


def composites(sandbox: SandboxServer, count: int) -> list[dict[str, str]]:
    """``count`` identifier sets with all five schemes, from the sandbox's known numbers."""
    per_scheme: dict[str, list[str]] = {}
    for supplier in sandbox.dataset.suppliers:
        for scheme, value in supplier.identifiers.items():
            per_scheme.setdefault(scheme, []).append(value)
    schemes = ["kr_brn", "eu_vat", "lei", "gb_company_number", "iaf_ce_id"]
    return [{s: per_scheme[s][i % len(per_scheme[s])] for s in schemes} for i in range(count)]


def register(hub: Hub, org: str, identifiers: dict[str, str], actor: str) -> float:
    t0 = time.perf_counter()
    hub.suppliers.service.register(org_id=org, identifiers=identifiers, consent=True, actor_org_id=actor)
    return time.perf_counter() - t0


def call_durations(hub: Hub, actor: str) -> list[float]:
    with hub.session_factory() as session:
        return [r[0] / 1000.0 for r in session.execute(
            select(upstream_calls.c.duration_ms).where(upstream_calls.c.requested_by == actor))]


def bench_fan_out(hub: Hub, sandbox: SandboxServer, n: int) -> dict[str, Figure]:
    org = supplier_org(hub, "fan-out")
    register(hub, org, composites(sandbox, 1)[0], "warm-up")  # load WSDLs, open pools
    ratios, sums, walls = [], [], []
    for i, identifiers in enumerate(composites(sandbox, n + 1)[1:]):
        actor = f"bench-{i}"
        wall = register(hub, org, identifiers, actor)
        durations = call_durations(hub, actor)
        walls.append(wall)
        ratios.append(wall / max(durations))
        sums.append(sum(durations) / max(durations))
    print(f"1. registration fan-out ({n} registrations, 6 systems each, service call):")
    print(f"   wall time            median {statistics.median(walls) * 1000:7.1f} ms")
    print(f"   wall / slowest call  median {statistics.median(ratios):.3f}   p90 {quantile(ratios, 0.9):.3f}"
          f"   max {max(ratios):.3f}   (target ≤ 1.10)")
    print(f"   sequential sum / slowest   median {statistics.median(sums):.2f}  (what calling one by one costs)")
    return {
        "fan_out_registrations": n, "fan_out_systems_per_registration": 6,
        "fan_out_wall_median_ms": statistics.median(walls) * 1000,
        "fan_out_wall_vs_slowest_call_median": statistics.median(ratios),
        "fan_out_wall_vs_slowest_call_p90": quantile(ratios, 0.9),
        "fan_out_wall_vs_slowest_call_max": max(ratios),
        "fan_out_sequential_sum_vs_slowest_call_median": statistics.median(sums),
    }


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_concurrent(hub: Hub, sandbox: SandboxServer, n: int) -> dict[str, Figure]:
    org = supplier_org(hub, "concurrent")
    sets = composites(sandbox, n)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n) as pool:
        walls = list(pool.map(lambda args: register(hub, org, args[1], f"conc-{args[0]}"), enumerate(sets)))
    elapsed = time.perf_counter() - t0
    print(f"2. {n} concurrent registrations (6 systems each): {n / elapsed:6.1f} registrations/s, "
          f"{elapsed:.2f} s total, per registration median {statistics.median(walls):.2f} s "
          f"max {max(walls):.2f} s")
    return {
        "concurrent_registrations": n, "concurrent_registrations_per_s": n / elapsed, "concurrent_total_s": elapsed,
        "concurrent_registration_median_s": statistics.median(walls), "concurrent_registration_max_s": max(walls),
    }


def bench_refresh(sandbox: SandboxServer, db: Path, n: int, low: float, high: float) -> dict[str, Figure]:
    hub = make_hub(sandbox, db, {"applicable_systems": {"kr_brn": ["nts"]}})
    try:
        org = supplier_org(hub, "refresh")
        brns = [s.identifiers["kr_brn"] for s in sandbox.dataset.suppliers if "kr_brn" in s.identifiers]
        rng = random.Random(11)
        while len(set(brns)) < n:
            brns.append(generate_brn(rng))
        brns = list(dict.fromkeys(brns))[:n]
        set_latency(sandbox, 0, 0)
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(lambda b: register(hub, org, {"kr_brn": b}, "seed"), brns))
        set_latency(sandbox, low, high)
        assert hub.suppliers is not None
        later = datetime.now(UTC) + timedelta(days=6)  # every tax status inside its refresh margin
        t0 = time.perf_counter()
        run = hub.suppliers.scheduler.run_once(now=later, limit=n)
        batched = time.perf_counter() - t0

        claimed = hub.bus.handle(ClaimCredentialFetches(claim_token=new_id(), force=True, limit=n))
        t0 = time.perf_counter()
        outcomes = hub.suppliers.fetcher().fetch_each(claimed, purpose="refresh", requested_by="unbatched",
                                                       deadline_s=600)
        hub.bus.handle(RecordCredentialFetches(outcomes=outcomes))
        unbatched = time.perf_counter() - t0
        print(f"3. refresh of {n} NTS tax statuses: batched {run.claimed / batched:7.1f} refreshes/s "
              f"({batched:.2f} s, {-(-n // 100)} calls)   unbatched {len(claimed) / unbatched:7.1f} refreshes/s "
              f"({unbatched:.2f} s, {len(claimed)} calls, NTS concurrency 8)   speed-up {unbatched / batched:.1f}x")
        return {
            "refresh_suppliers": n,
            "refresh_batched_refreshes_per_s": run.claimed / batched, "refresh_batched_s": batched,
            "refresh_batched_calls": -(-n // 100),
            "refresh_unbatched_refreshes_per_s": len(claimed) / unbatched, "refresh_unbatched_s": unbatched,
            "refresh_unbatched_calls": len(claimed),
            "refresh_batched_speed_up_vs_unbatched": unbatched / batched,
        }
    finally:
        hub.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-min-ms", type=float, default=50)
    parser.add_argument("--latency-max-ms", type=float, default=300)
    parser.add_argument("--registrations", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--refresh-suppliers", type=int, default=1000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("g2bhub.connectors").setLevel(logging.ERROR)
    with SandboxServer() as sandbox, tempfile.TemporaryDirectory() as tmp:
        print(f"sandbox at {sandbox.base_url}; every system answers after uniform "
              f"{args.latency_min_ms:g}-{args.latency_max_ms:g} ms")
        set_latency(sandbox, args.latency_min_ms, args.latency_max_ms)
        figures: dict[str, Figure] = {"upstream_latency_min_ms": args.latency_min_ms,
                                      "upstream_latency_max_ms": args.latency_max_ms}
        hub = make_hub(sandbox, Path(tmp) / f"{uuid.uuid4().hex}.db")
        try:
            figures |= bench_fan_out(hub, sandbox, args.registrations)
            figures |= bench_concurrent(hub, sandbox, args.concurrent)
        finally:
            hub.close()
        figures |= bench_refresh(sandbox, Path(tmp) / "refresh.db", args.refresh_suppliers,
                                 args.latency_min_ms, args.latency_max_ms)
    emit("register", figures)


if __name__ == "__main__":
    main()
