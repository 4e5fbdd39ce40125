"""Chaos bench: the fault tier's long version. Thousands of notice versions published at a steady rate
while faults of every kind are injected in turn, again and again; then the counts a subscriber cares
about.

    python bench/chaos.py [--writes 2000 --rate 20 --workers 2 --hold-s 4 --recovery-timeout-s 30]
                          [--faults pause,kill,broker,sessions,database,subscriber] [--seed 8]
                          [--amqp-url URL --database-url URL]

The hub: two (``--workers``) ``g2bhub worker`` processes on PostgreSQL + RabbitMQ, each reaching both
through a loopback proxy the bench can cut; two webhook subscribers (every notice; Seoul only) on
loopback receivers that verify every signature; a publisher in this process (new notices, amendments,
cancellations). Faults, each held ``--hold-s`` seconds, in turn until the publisher is done:

  pause      one worker SIGSTOPped, then SIGCONTinued
  kill       one worker SIGKILLed, then started again
  broker     RabbitMQ unreachable (live connections dropped, new ones refused)
  sessions   the workers' PostgreSQL sessions terminated (pg_terminate_backend), twice
  database   PostgreSQL unreachable
  subscriber one subscriber answering 503

Recovery time of a fault: from restoring it to the first delivery of the last version published
between the previous fault's restore and this one's, read from the receivers' arrival times once the
run is over (a version that never arrives counts as lost, not towards the time). After each restore
the bench waits until that backlog is delivered or stops moving (``--recovery-timeout-s`` at most),
then goes on to the next fault.

Counts, per the delivery promise: lost, duplicated in effect (the same version under two webhook-ids)
and raw (a webhook-id repeated, which a deduping receiver ignores), out of order (a version first
delivered after a later one of the same notice), dead letters (consumer groups) and dead deliveries.
Prints figures only; ends with one JSON line,
{"bench": "chaos", "figures": {...}}. Creates (and drops) a throw-away PostgreSQL database on
the server of ``--database-url`` and a fresh RabbitMQ namespace."""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import Figure, emit
from tests.support.db import throwaway_database
from tests.support.faults import Lab

FAULTS = ("pause", "kill", "broker", "sessions", "database", "subscriber")


def inject(lab: Lab, kind: str, hold_s: float) -> float:
    """Inject fault ``kind``, hold it, restore; return the ``time.monotonic()`` of the restore."""
    actions: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "pause": (lab.workers[0].pause, lab.workers[0].resume),
        "kill": (lab.workers[-1].kill, lab.workers[-1].start),
        "broker": (lab.cut_broker, lab.restore_broker),
        "database": (lab.cut_database, lab.restore_database),
        "subscriber": (lambda: lab.subscriber_down("everything"), lambda: lab.subscriber_up("everything")),
    }
    if kind == "sessions":
        lab.terminate_worker_sessions()
        time.sleep(min(hold_s, 1.0))
        lab.terminate_worker_sessions()
        return time.monotonic()
    fault, restore = actions[kind]
    fault()
    time.sleep(hold_s)
    restore()
    return time.monotonic()


def describe(values: list[float]) -> str:
    text = f"{len(values)}x"
    if values:
        text += f", backlog drained in median {statistics.median(values):.1f} s, max {max(values):.1f} s"
    return text


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Figure]:
    kinds = [k for k in args.faults.split(",") if k]
    unknown = set(kinds) - set(FAULTS)
    if unknown:
        raise SystemExit(f"unknown faults: {', '.join(sorted(unknown))} (known: {', '.join(FAULTS)})")
    restores: list[tuple[str, float]] = []
    started = time.monotonic()
    with throwaway_database(args.database_url, prefix="g2bhub_chaos") as database_url, \
            Lab(database_url, args.amqp_url, workdir, workers=args.workers, seed=args.seed) as lab:
        print(f"{args.workers} workers up in {time.monotonic() - started:.1f} s; publishing {args.writes} "
              f"versions at {args.rate}/s with faults held {args.hold_s} s: {', '.join(kinds)}")
        with lab.stream(args.rate, args.writes) as stream:
            time.sleep(args.settle_s)
            turn = 0
            while kinds and not stream.done.is_set():
                kind = kinds[turn % len(kinds)]
                turn += 1
                restored = inject(lab, kind, args.hold_s)
                restores.append((kind, restored))
                lab.wait_quiet(lab.expected(until=restored), timeout=args.recovery_timeout_s)
                print(f"  {kind:<10} restored at {restored - started:6.1f} s ({len(lab.ledger)} published)",
                      flush=True)
                stream.done.wait(args.settle_s)
            stream.wait()
        drained = lab.wait_delivered(timeout=args.drain_timeout_s)
        time.sleep(1.0)  # late duplicates, if any, show up
        verdict = lab.verdict()
        recoveries: dict[str, list[float]] = {kind: [] for kind in kinds}
        previous: float | None = None
        for kind, restored in restores:
            took, never = lab.recovery_s(restored, since=previous)
            previous = restored
            recoveries[kind].append(took)
            print(f"  {kind:<10} restored at {restored - started:6.1f} s: backlog drained {took:.1f} s later"
                  + (f"; {never} versions published before it never arrived" if never else ""))
        elapsed = time.monotonic() - started
        print(verdict.report())
        if not verdict.ok:
            print(lab.logs())
    figures: dict[str, Figure] = {
        **verdict.figures(),
        "drained_after_last_write_s": drained,
        "elapsed_s": elapsed,
    }
    for kind, values in recoveries.items():
        figures[f"faults_{kind}"] = len(values)
        figures[f"recovery_{kind}_median_s"] = statistics.median(values) if values else None
        figures[f"recovery_{kind}_max_s"] = max(values) if values else None
    print()
    print(f"published          : {figures['published']} versions ({figures['expected']} owed to subscribers)")
    print(f"delivered          : {figures['delivered']}")
    print(f"lost               : {figures['lost']}")
    print(f"duplicated         : {figures['duplicated']} in effect, {figures['duplicated_raw']} raw")
    print(f"out of order       : {figures['out_of_order']}")
    print(f"dead letters       : {figures['dead_letters']} (consumer groups), "
          f"{figures['dead_deliveries']} dead deliveries")
    print(f"changes feed       : {figures['feed_missing']} missing, {figures['feed_unordered']} out of order")
    for kind, values in recoveries.items():
        print(f"recovery {kind:<10}: {describe(values)}")
    print(f"elapsed            : {elapsed:.0f} s")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=2000, help="notice versions to publish")
    parser.add_argument("--rate", type=float, default=20.0, help="versions published per second")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated, injected in turn")
    parser.add_argument("--hold-s", type=float, default=4.0, help="how long each fault lasts")
    parser.add_argument("--settle-s", type=float, default=2.0, help="pause between faults")
    parser.add_argument("--recovery-timeout-s", type=float, default=30.0)
    parser.add_argument("--drain-timeout-s", type=float, default=60.0, help="after the last write")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--amqp-url", default=os.environ.get("G2BHUB_TEST_AMQP_URL",
                                                             "amqp://guest:guest@127.0.0.1:5672/"))
    parser.add_argument("--database-url", default=os.environ.get("G2BHUB_TEST_DATABASE_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/test"),
                        help="a PostgreSQL server URL; a throw-away database is created on it")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="g2bhub-chaos-") as workdir:
        figures = run(args, Path(workdir))
    emit("chaos", figures)


if __name__ == "__main__":
    main()
