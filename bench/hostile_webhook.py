"""Memory and attempt time of the delivering process while webhook receivers misbehave.

    python bench/hostile_webhook.py [--body-mb 300] [--notices 20] [--deadline 5] [--window 30]

A hub (SQLite + in-process broker, a worker with the relay, the matching consumer and the dispatcher)
runs in this process; three loopback receivers run in a child process, so their memory is not this
process's:

- ``normal``: answers 204 at once (the baseline);
- ``huge``: answers 500 with a ``--body-mb`` body (300 MB by default), generated as it is sent, never
  held by the receiver;
- ``dribble``: answers 500 and then one body byte per second for as long as the client listens.

Phase 1 (baseline): only the normal subscriber; ``--notices`` notices are published and delivered.
Phase 2 (hostile): the two hostile subscribers are added and as many notices published again; for
``--window`` seconds the dispatcher retries them on a compressed schedule while this process's RSS is
sampled every 50 ms (VmRSS from /proc; VmHWM is the process's own peak). Attempt durations are
measured in the hub (around the dispatcher's ``send_webhook``, the real one) and, as a cross-check, at
the receivers (request read → the receiver noticed the hub hung up; the dribbling one notices only at
its next byte, up to a second late). The delivery log rows of the huge receiver are read back to
check that only a short, printable excerpt of its reply was kept.

Prints figures and ratios against the baseline of the same run; the last line of stdout is
{"bench": "hostile_webhook", "figures": {...}}.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import Figure, emit
from bench.syndication import add_subscriptions, notice_content, publish, wait_for
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.subscriptions import dispatcher as dispatcher_module
from hub.subscriptions.filters import SubscriptionFilter
from hub.subscriptions.sender import EXCERPT_CHARS
from hub.subscriptions.signing import new_secret
from hub.subscriptions.tables import DeliveryRow, SubscriptionRow
from tests.support.fakes import InMemoryNoticeReader
from tests.support.hostile_http import HostileServer, Script, dribble, huge_body

MB = 1024 * 1024
SYNDICATION: dict[str, Any] = {"allow_private_targets": True, "dispatch_interval_s": 0.05,
                               "dispatch_concurrency": 16, "time_scale": 0.001, "jitter": 0.0}


def make_hub(directory: str, reader: InMemoryNoticeReader, deadline_s: float) -> Hub:
    settings = Settings(database={"url": f"sqlite:///{directory}/hostile.db"}, broker={"kind": "inprocess"},
                        relay={"poll_interval_s": 0.01}, syndication={**SYNDICATION, "attempt_deadline_s": deadline_s})
    return bootstrap(settings, migrate=True, dependencies={"notice_reader": reader})


class HubTimings:
    """How long each webhook attempt took in the hub: the dispatcher's own ``send_webhook``, timed."""

    def __init__(self) -> None:
        self.records: list[tuple[str, float]] = []
        self._lock = threading.Lock()
        self._send = dispatcher_module.send_webhook

    def install(self) -> None:
        async def timed(client: Any, settings: Any, resolve: Any, url: str, *rest: Any) -> Any:
            started = time.monotonic()
            try:
                return await self._send(client, settings, resolve, url, *rest)
            finally:
                with self._lock:
                    self.records.append((url, time.monotonic() - started))

        dispatcher_module.send_webhook = timed  # type: ignore[assignment]

    def of(self, url: str, since: int = 0) -> list[float]:
        with self._lock:
            return [s for u, s in self.records[since:] if u == url]


def excerpts(hub: Hub, url: str) -> list[str]:
    """The delivery log's last_error of every delivery to ``url``."""
    with hub.session_factory() as session:
        ids = [s.id for s in session.query(SubscriptionRow).filter(SubscriptionRow.url == url)]
        rows = session.query(DeliveryRow).filter(DeliveryRow.subscription_id.in_(ids)).all()
        return [r.last_error for r in rows if r.last_error]


# -- receivers (child process) ------------------------------------------------------------------------


def _no_content(server: HostileServer, conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")


def _timed(name: str, script: Script, report: Any) -> Script:
    """The script, with how long it ran (until it finished or the hub hung up) sent to the parent."""

    def run(server: HostileServer, conn: socket.socket) -> None:
        started = time.monotonic()
        before = server.sent
        try:
            script(server, conn)
        finally:
            report.put((name, time.monotonic() - started, server.sent - before))

    return run


def _receivers(body_bytes: int, report: Any, urls: Any, stop: Any) -> None:
    scripts = {"normal": _no_content, "huge": huge_body(500, body_bytes), "dribble": dribble(500, 1.0)}
    servers = {name: HostileServer(_timed(name, script, report)) for name, script in scripts.items()}
    for server in servers.values():
        server.__enter__()
    urls.put({name: f"{server.url}/hook/{name}" for name, server in servers.items()})
    stop.wait()
    for server in servers.values():
        server.__exit__(None, None, None)


# -- measuring ----------------------------------------------------------------------------------------


def status_mb(field: str) -> float:
    """VmRSS / VmHWM of this process in MiB (Linux); elsewhere the peak from getrusage."""
    try:
        for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Sampler:
    """VmRSS every ``every_s`` seconds in a thread; ``peak()`` since the last ``reset()``."""

    def __init__(self, every_s: float = 0.05) -> None:
        self.every_s = every_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(status_mb("VmRSS"))
            time.sleep(self.every_s)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def reset(self) -> None:
        self.samples = []

    def peak(self) -> float:
        return max(self.samples, default=status_mb("VmRSS"))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)


class Timings:
    """Attempt records from the receivers: (receiver, seconds, body bytes it managed to send)."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.records: list[tuple[str, float, int]] = []

    def drain(self) -> None:
        while not self.queue.empty():
            self.records.append(self.queue.get())

    def of(self, name: str, since: int = 0) -> list[tuple[float, int]]:
        self.drain()
        return [(s, n) for who, s, n in self.records[since:] if who == name]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


# -- the run ------------------------------------------------------------------------------------------


def run(directory: str, body_mb: int, notices: int, deadline_s: float, window_s: float) -> dict[str, Figure]:
    ctx = mp.get_context("spawn")
    report, urls, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    child = ctx.Process(target=_receivers, args=(body_mb * MB, report, urls, stop), daemon=True)
    child.start()
    targets: dict[str, str] = urls.get(timeout=30)
    timings = Timings(report)
    sampler = Sampler().start()
    rss_start = status_mb("VmRSS")

    hub_timings = HubTimings()
    hub_timings.install()
    reader = InMemoryNoticeReader()
    hub = make_hub(directory, reader, deadline_s)
    secret = new_secret()
    add_subscriptions(hub, [SubscriptionFilter()], targets["normal"], secret)
    hub.make_worker().start()
    rng = random.Random(9)
    seq = 0

    def publish_batch(prefix: str) -> float:
        nonlocal seq
        started = time.monotonic()
        for i in range(notices):
            seq += 1
            publish(hub, reader, f"{prefix}-{i}", notice_content(rng), seq)
        return started

    # Phase 1: baseline, the normal subscriber only.
    started = publish_batch("BASE")
    wait_for(lambda: len(timings.of("normal")) >= notices, 120)
    baseline_s = time.monotonic() - started
    time.sleep(1.0)
    rss_baseline = status_mb("VmRSS")
    baseline_peak = sampler.peak()
    normal_base = hub_timings.of(targets["normal"])
    print(f"baseline: {notices} notices to the normal receiver in {baseline_s:.2f} s; "
          f"RSS {rss_start:.1f} MiB at start, {rss_baseline:.1f} MiB after (peak {baseline_peak:.1f})")

    # Phase 2: the hostile subscribers join; the normal one must not notice.
    mark, hub_mark = len(timings.records), len(hub_timings.records)
    add_subscriptions(hub, [SubscriptionFilter()], targets["huge"], secret)
    add_subscriptions(hub, [SubscriptionFilter()], targets["dribble"], secret)
    sampler.reset()
    started = publish_batch("HOSTILE")
    wait_for(lambda: len(timings.of("normal", mark)) >= notices, 120)
    hostile_normal_s = time.monotonic() - started
    time.sleep(max(0.0, window_s - (time.monotonic() - started)))
    rss_peak_hostile = sampler.peak()
    huge = timings.of("huge", mark)
    slow = timings.of("dribble", mark)
    normal_hostile = hub_timings.of(targets["normal"], hub_mark)
    huge_hub = hub_timings.of(targets["huge"], hub_mark)
    slow_hub = hub_timings.of(targets["dribble"], hub_mark)

    huge_errors = excerpts(hub, targets["huge"])

    # After: the dispatcher stops; what the process holds once the hostile attempts are over.
    hub.close()
    time.sleep(1.0)
    rss_after = status_mb("VmRSS")
    hwm = status_mb("VmHWM")
    sampler.stop()
    stop.set()
    child.join(timeout=10)
    timings.drain()

    excerpt_max = max((len(e) for e in huge_errors), default=0)
    excerpt_printable = all(e.isprintable() for e in huge_errors) if huge_errors else None

    slow_receiver_s = [s for s, _ in slow]
    huge_sent_mb = max((n for _, n in huge), default=0) / MB
    figures: dict[str, Figure] = {
        "notices_per_phase": notices,
        "huge_body_mb": body_mb,
        "attempt_deadline_s": deadline_s,
        "hostile_window_s": window_s,
        "rss_start_mb": rss_start,
        "rss_baseline_mb": rss_baseline,
        "rss_peak_hostile_mb": rss_peak_hostile,
        "rss_after_mb": rss_after,
        "vm_hwm_mb": hwm,
        "rss_peak_hostile_over_baseline": ratio(rss_peak_hostile, rss_baseline),
        "rss_after_over_baseline": ratio(rss_after, rss_baseline),
        "normal_attempt_ms_p50_baseline": (median(normal_base) or 0) * 1000,
        "normal_attempt_ms_p50_hostile": (median(normal_hostile) or 0) * 1000,
        "normal_delivery_s_baseline": baseline_s,
        "normal_delivery_s_hostile": hostile_normal_s,
        "normal_delivery_hostile_over_baseline": ratio(hostile_normal_s, baseline_s),
        "huge_attempts": len(huge_hub),
        "huge_attempt_ms_p50": (median(huge_hub) or 0) * 1000,
        "huge_attempt_ms_max": max(huge_hub, default=0) * 1000,
        "huge_attempt_p50_over_normal_p50": ratio(median(huge_hub), median(normal_base)),
        "huge_bytes_sent_before_hangup_mb_max": huge_sent_mb,
        "dribble_attempts": len(slow_hub),
        "dribble_attempt_s_p50": median(slow_hub),
        "dribble_attempt_s_max": max(slow_hub, default=0),
        "dribble_attempt_max_over_deadline": ratio(max(slow_hub, default=0), deadline_s),
        "dribble_attempt_s_max_at_receiver": max(slow_receiver_s, default=0),
        "delivery_log_excerpt_chars_max": excerpt_max,
        "delivery_log_excerpt_bound": len("HTTP 500: ") + EXCERPT_CHARS,
        "delivery_log_excerpt_printable": None if excerpt_printable is None else int(excerpt_printable),
    }
    print(f"hostile: {len(huge_hub)} attempts at the {body_mb} MB receiver (p50 {figures['huge_attempt_ms_p50']:.1f} "
          f"ms, max {figures['huge_attempt_ms_max']:.1f} ms; it pushed at most {huge_sent_mb:.2f} MB into the socket "
          f"before the hub hung up), {len(slow_hub)} at the dribbling one (p50 {median(slow_hub) or 0:.2f} s, "
          f"max {max(slow_hub, default=0):.2f} s; deadline {deadline_s:g} s)")
    print(f"normal subscriber meanwhile: {notices} notices in {hostile_normal_s:.2f} s "
          f"(baseline {baseline_s:.2f} s, x{figures['normal_delivery_hostile_over_baseline'] or 0:.2f}); "
          f"attempt p50 {figures['normal_attempt_ms_p50_hostile']:.1f} ms (baseline "
          f"{figures['normal_attempt_ms_p50_baseline']:.1f} ms)")
    print(f"memory: RSS baseline {rss_baseline:.1f} MiB, peak while hostile {rss_peak_hostile:.1f} MiB "
          f"(x{figures['rss_peak_hostile_over_baseline'] or 0:.3f}), after {rss_after:.1f} MiB "
          f"(x{figures['rss_after_over_baseline'] or 0:.3f}); process peak (VmHWM) {hwm:.1f} MiB")
    print(f"delivery log: longest excerpt {excerpt_max} chars (bound {figures['delivery_log_excerpt_bound']}), "
          f"printable: {excerpt_printable}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--body-mb", type=int, default=300, help="size of the huge receiver's reply body")
    parser.add_argument("--notices", type=int, default=20, help="notices published in each phase")
    parser.add_argument("--deadline", type=float, default=5.0, help="syndication.attempt_deadline_s")
    parser.add_argument("--window", type=float, default=30.0, help="seconds the hostile phase lasts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        figures = run(directory, args.body_mb, args.notices, args.deadline, args.window)
    emit("hostile_webhook", figures)


if __name__ == "__main__":
    main()
