"""A hub under faults, with real processes: the fault tier (tests/faults) and the chaos bench
(bench/chaos.py) share it.

:class:`Lab` migrates a hub on a database of its own and a fresh RabbitMQ namespace, starts
``g2bhub worker`` subprocesses that reach PostgreSQL and RabbitMQ through :class:`TcpProxy` instances
(so a test can take either server away from them without touching the server, which others share),
subscribes loopback webhook receivers, and publishes notices, amendments and cancellations through the
bus in this process (straight to the database: the publisher is the one party no fault reaches). Its
fault switches: pause/resume, kill/restart a worker, cut/restore the broker or the database, terminate
the workers' database sessions, take a subscriber down. :meth:`Lab.verdict` counts what arrived."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from hub.api.app import create_app
from hub.bootstrap import Hub, bootstrap
from hub.config import Settings
from hub.notices.commands import AmendNotice, CancelNotice, PublishNotice
from hub.notices.model import NoticeContent
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from hub.spine.tables import DeadLetterRow, OutboxRow
from hub.subscriptions.tables import DeliveryRow
from tests.support.api import API, bearer
from tests.support.environment import ROOT
from tests.support.ledger import (
    FeedCheck,
    Key,
    Ledger,
    Published,
    Tally,
    check_feed,
    delivered_keys,
    first_arrivals,
    tally,
)
from tests.support.notices import notice_body
from tests.support.proxy import TcpProxy
from tests.support.receiver import Answer, Receiver

__all__ = ["SUBSCRIPTIONS", "Lab", "Stream", "Verdict", "assert_promise_kept"]

# Retries and leases compressed a thousandfold: the Standard Webhooks schedule's first attempts come
# after 5 ms, 0.3 s, 1.8 s and 7.2 s, so a subscriber down for a few seconds is down past four of them.
TIME_SCALE = 0.001

SYNDICATION: dict[str, Any] = {
    "time_scale": TIME_SCALE,
    "jitter": 0.1,
    "allow_private_targets": True,
    "dispatch_interval_s": 0.05,
    "connect_timeout_s": 1.0,
    "read_timeout_s": 2.0,
    "max_retry_after_s": 1.0,
}

# name -> regions filtered on (None: every notice). Two subscriptions, so a fault that only shows on
# one of several recipients of a version is seen.
SUBSCRIPTIONS: dict[str, list[str] | None] = {"everything": None, "seoul": ["KR-11"]}
REGIONS = ("KR-11", "KR-26")

WORKER_APP = "g2bhub-faults-worker"


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parsed = make_url(url)
    return parsed.host or "127.0.0.1", parsed.port or default_port


def _via(url: str, proxy: TcpProxy, **query: str) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parsed = make_url(url).set(host=proxy.host, port=proxy.port)
    if query:
        parsed = parsed.update_query_dict(query)
    return parsed.render_as_string(hide_password=False)


class WorkerProcess:
    """One ``g2bhub worker`` subprocess, its log in a file (appended to across restarts)."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0

    def start(self, wait_s: float = 60.0) -> None:
        self._log = self.log_path.open("ab")
        before = self.log_path.stat().st_size
        self.process = subprocess.Popen([sys.executable, "-m", "hub.cli.main", "worker"], cwd=str(ROOT),
                                        env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        self.starts += 1
        deadline = time.monotonic() + wait_s
        while b"worker started" not in self.log_path.read_bytes()[before:]:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start within {wait_s}s:\n{self.log_tail()}")
            time.sleep(0.1)

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None and self.process.poll() is None, f"{self.name} is not running"
        self.process.send_signal(sig)

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.process is not None
        self.process.wait(10)
        self._close_log()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        noise = ("HTTP Request:", "notice version matched")  # one line per request or event
        kept = [line for line in text.splitlines() if not any(n in line for n in noise)]
        return "\n".join(kept[-lines:])


@dataclass
class Verdict:
    published: int
    tallies: list[Tally]
    dead_letters: int  # rows in dead_letters (a consumer group gave up on a message)
    dead_deliveries: int  # deliveries given up on (status dead)
    open_deliveries: int  # deliveries still pending or failed
    feed: FeedCheck
    publish_errors: list[str] = field(default_factory=list)
    entries: list[Published] = field(default_factory=list)  # what was published, for the report

    @property
    def ok(self) -> bool:
        return (all(t.ok for t in self.tallies) and not self.dead_letters and not self.dead_deliveries
                and self.feed.ok and not self.publish_errors)

    def figures(self) -> dict[str, Any]:
        return {
            "published": self.published,
            "delivered": sum(t.delivered for t in self.tallies),
            "expected": sum(t.expected for t in self.tallies),
            "lost": sum(t.lost for t in self.tallies),
            "duplicated": sum(t.duplicated for t in self.tallies),
            "duplicated_raw": sum(t.duplicated_raw for t in self.tallies),
            "out_of_order": sum(t.out_of_order for t in self.tallies),
            "unexpected": sum(t.unexpected for t in self.tallies),
            "dead_letters": self.dead_letters,
            "dead_deliveries": self.dead_deliveries,
            "open_deliveries": self.open_deliveries,
            "feed_missing": self.feed.missing,
            "feed_unordered": self.feed.unordered + self.feed.repeated + self.feed.extra,
            "publish_errors": len(self.publish_errors),
        }

    def report(self) -> str:
        lines = [f"published {self.published} versions; dead letters {self.dead_letters}, dead deliveries "
                 f"{self.dead_deliveries}, still open {self.open_deliveries}; feed {vars(self.feed)}"]
        kinds = {p.key: p.kind for p in self.entries}
        for t in self.tallies:
            lines.append(f"  {t.subscription}: {t.figures()}")
            lines += [f"    {what}: {[(*key, kinds.get(key)) for key in keys]}"
                      for what, keys in t.examples.items() if keys]
        lines += [f"  publish error: {e}" for e in self.publish_errors[:5]]
        return "\n".join(lines)


class Lab:
    def __init__(self, database_url: str, amqp_url: str, workdir: Path, workers: int = 2,
                 syndication: dict[str, Any] | None = None, seed: int = 8) -> None:
        self.database_url = database_url
        self.amqp_url = amqp_url
        self.workdir = workdir
        self.namespace = f"faults{uuid.uuid4().hex[:8]}"
        self.syndication = {**SYNDICATION, **(syndication or {})}
        self.rng = random.Random(seed)
        self.ledger = Ledger()
        self.publish_errors: list[str] = []
        self.receivers: dict[str, Receiver] = {}
        self.workers: list[WorkerProcess] = []
        self.pg_proxy = TcpProxy(*_host_port(database_url, 5432))
        self.amqp_proxy = TcpProxy(*_host_port(amqp_url, 5672))
        self.settings = Settings(
            database={"url": make_url(database_url).update_query_dict({"application_name": "g2bhub-faults-lab"})
                      .render_as_string(hide_password=False)},
            broker={"kind": "rabbitmq", "url": amqp_url, "namespace": self.namespace},
            syndication=self.syndication,
        )
        self.hub: Hub = bootstrap(self.settings, migrate=True)
        self.client = TestClient(create_app(hub=self.hub))
        try:
            self.institution = self._org(OrgKind.INSTITUTION)[0]
            _, agency_key = self._org(OrgKind.AGENCY)
            for name, regions in SUBSCRIPTIONS.items():
                self.receivers[name] = self._subscribe(agency_key, name, regions)
        except BaseException:
            self.close()
            raise
        for index in range(workers):
            self.workers.append(WorkerProcess(f"worker-{index}", self._worker_env(index),
                                              workdir / f"worker-{index}.log"))

    # -- setting up -----------------------------------------------------------------------------

    def _org(self, kind: OrgKind) -> tuple[str, str]:
        org, issued = self.hub.bus.handle(CreateOrganisation(name=f"{kind} {uuid.uuid4().hex[:6]}", kind=kind))
        return org.id, issued.plaintext

    def _subscribe(self, key: str, name: str, regions: list[str] | None) -> Receiver:
        receiver = Receiver()
        response = self.client.post(f"{API}/subscriptions", headers=bearer(key), json={
            "name": name, "filter": {"regions": regions} if regions else {},
            "channel": {"type": "webhook", "url": receiver.url}})
        if response.status_code != 201:
            raise RuntimeError(f"subscribing failed: {response.status_code} {response.text}")
        receiver.secrets.append(response.json()["secret"])
        return receiver

    def _worker_env(self, index: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("G2BHUB_")}
        env.update({
            "PYTHONPATH": str(ROOT),
            "G2BHUB_DATABASE__URL": _via(self.database_url, self.pg_proxy, application_name=f"{WORKER_APP}-{index}"),
            "G2BHUB_DATABASE__CONNECT_TIMEOUT_S": "2",
            "G2BHUB_BROKER__KIND": "rabbitmq",
            "G2BHUB_BROKER__URL": _via(self.amqp_url, self.amqp_proxy),
            "G2BHUB_BROKER__NAMESPACE": self.namespace,
            "G2BHUB_BROKER__HEARTBEAT_S": "10",
            "G2BHUB_BROKER__RECONNECT_MAX_BACKOFF_S": "2",
            "G2BHUB_BROKER__RETRY_DELAY_S": "0.5",
            "G2BHUB_RELAY__POLL_INTERVAL_S": "0.05",
            "G2BHUB_RELAY__CONFIRM_TIMEOUT_S": "10",
            "G2BHUB_LOGGING__JSON": "false",
            "G2BHUB_LOGGING__LEVEL": "INFO",
        })
        for key, value in self.syndication.items():
            env[f"G2BHUB_SYNDICATION__{key.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
        return env

    def start(self) -> Lab:
        try:
            for worker in self.workers:
                worker.start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(Exception):
                worker.stop()
        self.client.close()
        for receiver in self.receivers.values():
            receiver.close()
        with contextlib.suppress(Exception):
            from hub.spine.brokers.rabbitmq import delete_topology

            delete_topology(self.settings.broker, groups=list(self.hub.bus.groups))
        self.hub.close()
        self.pg_proxy.close()
        self.amqp_proxy.close()

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- publishing -----------------------------------------------------------------------------

    def publish(self, region: str | None = None) -> Published:
        region = region or self.rng.choice(REGIONS)
        content = NoticeContent.model_validate(notice_body(delivery_region=region,
                                                           title=f"Road works {uuid.uuid4().hex[:6]}"))
        receipt = self.hub.bus.handle(PublishNotice(institution_org_id=self.institution, content=content))
        return self._record(receipt.body, region)

    def amend(self, notice_id: str, region: str) -> Published:
        receipt = self.hub.bus.handle(AmendNotice(
            notice_id=notice_id, institution_org_id=self.institution, reason="deadline moved",
            changes={"title": f"Road works (amended {uuid.uuid4().hex[:6]})"}))
        return self._record(receipt.body, region)

    def cancel(self, notice_id: str, region: str) -> Published:
        receipt = self.hub.bus.handle(CancelNotice(notice_id=notice_id, institution_org_id=self.institution,
                                                   reason="budget withdrawn"))
        return self._record(receipt.body, region)

    def _record(self, body: dict[str, Any], region: str) -> Published:
        entry = Published(str(body["id"]), int(body["version"]), str(body["kind"]), region, int(body["seq"]),
                          time.monotonic())
        self.ledger.add(entry)
        return entry

    def stream(self, rate: float, writes: int | None = None) -> Stream:
        return Stream(self, rate, writes)

    # -- faults ---------------------------------------------------------------------------------

    def cut_broker(self) -> None:
        self.amqp_proxy.cut()

    def restore_broker(self) -> None:
        self.amqp_proxy.restore()

    def cut_database(self) -> None:
        self.pg_proxy.cut()

    def restore_database(self) -> None:
        self.pg_proxy.restore()

    def terminate_worker_sessions(self) -> int:
        """``pg_terminate_backend`` on the workers' sessions of this lab's database (and nothing else)."""
        name = make_url(self.database_url).database
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name LIKE %s AND pid <> pg_backend_pid()",
                (name, f"{WORKER_APP}-%"),
            ).fetchall()
        return sum(1 for (done,) in rows if done)

    def answer(self, name: str, answer: Answer) -> None:
        """How subscriber ``name`` answers from now on (``Answer(delay_s=…)``: a slow subscriber)."""
        receiver = self.receivers[name]
        with receiver.lock:
            receiver.default = answer

    def subscriber_down(self, name: str, status: int = 503) -> None:
        self.answer(name, Answer(status))

    def subscriber_up(self, name: str) -> None:
        self.answer(name, Answer())

    # -- observing ------------------------------------------------------------------------------

    def expected(self, until: float | None = None, since: float | None = None) -> dict[str, set[Key]]:
        return {name: self.ledger.expected(SUBSCRIPTIONS[name], until, since) for name in self.receivers}

    def missing(self, expected: dict[str, set[Key]]) -> int:
        return sum(len(keys - delivered_keys(self.receivers[name])) for name, keys in expected.items())

    def wait_delivered(self, expected: dict[str, set[Key]] | None = None, timeout: float = 60.0) -> float | None:
        """Seconds until every subscriber has received ``expected`` (default: everything published so
        far) in effect; None if it has not after ``timeout``."""
        expected = expected if expected is not None else self.expected()
        started = time.monotonic()
        while self.missing(expected):
            if time.monotonic() - started > timeout:
                return None
            time.sleep(0.1)
        return time.monotonic() - started

    def wait_quiet(self, expected: dict[str, set[Key]], timeout: float, quiet_s: float = 3.0) -> None:
        """Wait until ``expected`` is delivered, or nothing more of it arrives for ``quiet_s``, or
        ``timeout``: a version that is lost for good must not hold up what comes next."""
        started = last_change = time.monotonic()
        missing = self.missing(expected)
        while missing and time.monotonic() - started < timeout and time.monotonic() - last_change < quiet_s:
            time.sleep(0.1)
            now_missing = self.missing(expected)
            if now_missing != missing:
                missing, last_change = now_missing, time.monotonic()

    def recovery_s(self, restored_at: float, since: float | None = None) -> tuple[float, int]:
        """From a fault's restore to the last first delivery of a version published before it (and
        after ``since``, e.g. the previous fault's restore, so one fault's stragglers are not charged to
        the next): the time its backlog took to drain; 0 when nothing was outstanding. Also how many of
        those versions never arrived (lost: they do not count towards the time). Times are
        ``time.monotonic()`` values."""
        expected = self.expected(until=restored_at, since=since)
        latest = 0.0
        never = 0
        for name, keys in expected.items():
            arrivals = first_arrivals(self.receivers[name])
            for key in keys:
                if key not in arrivals:
                    never += 1
                elif arrivals[key] > restored_at:
                    latest = max(latest, arrivals[key] - restored_at)
        return latest, never

    def unrelayed(self) -> int:
        with self.hub.session_factory() as session:
            return int(session.scalar(select(func.count()).select_from(OutboxRow)
                                      .where(OutboxRow.published_at.is_(None))) or 0)

    def deliveries(self, *where: Any) -> int:
        with self.hub.session_factory() as session:
            return int(session.scalar(select(func.count()).select_from(DeliveryRow).where(*where)) or 0)

    def most_attempts(self) -> int:
        with self.hub.session_factory() as session:
            return int(session.scalar(select(func.max(DeliveryRow.attempts))) or 0)

    def changes(self) -> list[dict[str, Any]]:
        """The whole changes feed, page by page, as a client reads it."""
        changes: list[dict[str, Any]] = []
        after = 0
        while True:
            response = self.client.get(f"{API}/feeds/changes", params={"after": after, "limit": 200})
            response.raise_for_status()
            page = response.json()
            if not page["changes"]:
                return changes
            changes += page["changes"]
            after = page["next_after"]

    def verdict(self) -> Verdict:
        published = self.ledger.snapshot()
        expected = self.expected()
        with self.hub.session_factory() as session:
            dead_letters = int(session.scalar(select(func.count()).select_from(DeadLetterRow)) or 0)
        return Verdict(
            published=len(published),
            tallies=[tally(name, self.receivers[name], expected[name]) for name in self.receivers],
            dead_letters=dead_letters,
            dead_deliveries=self.deliveries(DeliveryRow.status == "dead"),
            open_deliveries=self.deliveries(DeliveryRow.status.in_(["pending", "failed"])),
            feed=check_feed(self.changes(), published),
            publish_errors=list(self.publish_errors),
            entries=published,
        )

    def logs(self) -> str:
        return "\n".join(f"--- {w.name} (started {w.starts}x) ---\n{w.log_tail()}" for w in self.workers)


class Stream:
    """Publishes at ``rate`` writes a second on a thread until stopped (or ``writes`` are done): new
    notices, and amendments and cancellations of recent ones, so a notice's versions follow each
    other closely, as they do when an institution corrects a notice minutes after publishing it."""

    def __init__(self, lab: Lab, rate: float, writes: int | None = None, open_notices: int = 8) -> None:
        self.lab = lab
        self.interval = 1.0 / rate
        self.writes = writes
        self.open_notices = open_notices
        self.open: list[tuple[str, str, int]] = []  # (notice_id, region, latest version)
        self.done = threading.Event()
        self.stopping = threading.Event()
        self.count = 0
        self.thread = threading.Thread(target=self._run, name="publisher", daemon=True)

    def __enter__(self) -> Stream:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(30)

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    def _run(self) -> None:
        rng = self.lab.rng
        next_at = time.monotonic()
        try:
            while not self.stopping.is_set() and (self.writes is None or self.count < self.writes):
                try:
                    self._one(rng)
                except Exception as exc:  # recorded: the verdict fails on any
                    self.lab.publish_errors.append(repr(exc))
                self.count += 1
                next_at += self.interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    self.stopping.wait(delay)
                else:
                    next_at = time.monotonic()
        finally:
            self.done.set()

    def _one(self, rng: random.Random) -> None:
        if len(self.open) < self.open_notices:
            entry = self.lab.publish()
            self.open.append((entry.notice_id, entry.region, entry.version))
            return
        index = rng.randrange(len(self.open))
        notice_id, region, version = self.open[index]
        if version >= 3 or rng.random() < 0.3:
            self.open.pop(index)
            self.lab.cancel(notice_id, region)
        else:
            entry = self.lab.amend(notice_id, region)
            self.open[index] = (notice_id, region, entry.version)


def assert_promise_kept(lab: Lab, drain_timeout_s: float = 45.0, settle_s: float = 1.0) -> Verdict:
    """Wait for every published version to reach its subscribers (up to ``drain_timeout_s``), give late
    duplicates ``settle_s`` to show, then fail with the counts and the workers' logs unless every
    version arrived exactly once in effect, in order, with no dead letter and a complete changes feed."""
    lab.wait_delivered(timeout=drain_timeout_s)
    time.sleep(settle_s)
    verdict = lab.verdict()
    assert verdict.ok, f"delivery promise broken:\n{verdict.report()}\n{lab.logs()}"
    return verdict
