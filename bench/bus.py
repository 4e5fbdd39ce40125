"""End-to-end throughput of the message bus, beside what raw pika does on the same broker.

    python bench/bus.py [--events N] [--rounds R] [--amqp-url URL] [--database-url URL]

The backends come from the flags, else from G2BHUB_TEST_DATABASE_URL / G2BHUB_TEST_AMQP_URL.

End to end means: ``bus.handle`` commits a command and its event (outbox) → relay (woken by the
commit) → broker → consumer applies the events (effect rows + inbox rows, in batches of up to the
prefetch, one transaction each) → the effect is visible in the database. Commits happen while the
worker runs, so the figure is the sustained rate of the whole pipeline.

Baselines, on the same broker, message size and number of messages, in the same run:
  raw pika   — BlockingChannel with publisher confirms (pika waits for each confirm) and a consumer
               on its own connection acking each message; what a straightforward pika program gets.
  hub publisher — the adapter's pipelined-confirm publisher (batches of the relay's size) + the same
               consumer: the broker-side ceiling of the RabbitMQ path.
Every figure is measured ``--rounds`` times, rounds interleaved (raw pika, then the hub, then raw pika
again …) so load on the machine hits both alike; the mean and the median of the rounds are printed, and
the ratios are taken of the medians. Prints figures only; no assertions. Creates (and drops) throw-away
PostgreSQL databases. The last line of stdout is the figures as one JSON line,
{"bench": "bus", "figures": {...}}."""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pika
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import Figure, emit
from hub.bootstrap import Hub, bootstrap
from hub.config import BrokerSettings, Settings
from hub.spine.audit import record_audit_entry
from hub.spine.brokers.rabbitmq import delete_topology
from hub.spine.brokers.rabbitmq.publisher import ConfirmingPublisher, Outgoing
from hub.spine.brokers.rabbitmq.topology import connection_parameters
from hub.spine.messages import Command, Envelope, Event
from hub.spine.tables import InboxRow
from hub.spine.unit_of_work import AbstractUnitOfWork
from tests.support.db import throwaway_database

PADDING = "x" * 200  # a notice-sized payload rather than an empty one


class PingBench(Command):
    seq: int


class BenchPinged(Event):
    seq: int
    note: str


def ping(cmd: PingBench, uow: AbstractUnitOfWork) -> None:
    uow.publish(BenchPinged(seq=cmd.seq, note=PADDING))


def bench_effect(event: BenchPinged, uow: AbstractUnitOfWork, envelope: Envelope) -> None:
    record_audit_entry(event, uow, envelope)  # a real row, like any consumer's effect




def body_size() -> int:
    return len(Envelope.wrap(BenchPinged(seq=0, note=PADDING)).body())


def end_to_end(settings: Settings, events: int, concurrency: int = 1) -> float:
    """Events per second from the first commit to the last effect observed in the database, with
    ``concurrency`` consumer threads for the group (``g2bhub worker --concurrency``)."""
    hub: Hub = bootstrap(settings, migrate=True, command_handlers={PingBench: ping},
                         event_handlers={BenchPinged: [bench_effect]}, group_names={bench_effect: "bench"})
    try:
        hub.make_worker(concurrency=concurrency).start()
        hub.bus.handle(PingBench(seq=-1))  # warm-up: connections, topology, first queries
        wait_for_inbox(hub, 1)
        started = time.perf_counter()
        for seq in range(events):
            hub.bus.handle(PingBench(seq=seq))
        wait_for_inbox(hub, events + 1)
        return events / (time.perf_counter() - started)
    finally:
        hub.close()


def consume_ceiling(settings: Settings, events: int, batch: int = 1) -> float:
    """``bus.consume`` (``batch`` 1) or ``bus.consume_batch`` called directly (no broker, no relay):
    what one consumer thread's database transactions allow, i.e. the ceiling of the end-to-end
    figure with one consumer per group."""
    hub: Hub = bootstrap(settings, migrate=True, command_handlers={PingBench: ping},
                         event_handlers={BenchPinged: [bench_effect]}, group_names={bench_effect: "bench"})
    try:
        envelopes = [Envelope.wrap(BenchPinged(seq=seq, note=PADDING)) for seq in range(events + 1)]
        hub.bus.consume("bench", envelopes[0])
        started = time.perf_counter()
        if batch == 1:
            for envelope in envelopes[1:]:
                hub.bus.consume("bench", envelope)
        else:
            for offset in range(1, events + 1, batch):
                hub.bus.consume_batch("bench", envelopes[offset:offset + batch])
        return events / (time.perf_counter() - started)
    finally:
        hub.close()


def wait_for_inbox(hub: Hub, expected: int) -> None:
    while True:
        with hub.session_factory() as session:
            if (session.scalar(select(func.count()).select_from(InboxRow)) or 0) >= expected:
                return
        time.sleep(0.01)


def _drain(params: pika.ConnectionParameters, queue: str, expected: int, prefetch: int,
           ready: threading.Event, done: threading.Event) -> None:
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    channel.basic_qos(prefetch_count=prefetch)
    seen = 0

    def on_message(ch: pika.adapters.blocking_connection.BlockingChannel, method: pika.spec.Basic.Deliver,
                   _props: pika.BasicProperties, _body: bytes) -> None:
        nonlocal seen
        ch.basic_ack(method.delivery_tag)
        seen += 1
        if seen >= expected:
            done.set()

    channel.basic_consume(queue, on_message)
    ready.set()
    while not done.is_set():
        connection.process_data_events(time_limit=0.2)
    connection.close()


def raw_pika(settings: BrokerSettings, events: int, size: int, pipelined_batch: int | None) -> float:
    """Publish ``events`` persistent messages with confirms into a quorum queue while a consumer
    acks them; events per second until the last one is consumed."""
    params = connection_parameters(settings)
    queue = f"{settings.namespace}.raw.{uuid.uuid4().hex[:6]}"
    setup = pika.BlockingConnection(params)
    setup.channel().queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    body = b"x" * size
    props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
    ready, done = threading.Event(), threading.Event()
    consumer = threading.Thread(target=_drain, args=(params, queue, events, settings.prefetch, ready, done))
    consumer.start()
    ready.wait()
    started = time.perf_counter()
    if pipelined_batch is None:
        connection = pika.BlockingConnection(params)
        channel = connection.channel()
        channel.confirm_delivery()
        for _ in range(events):
            channel.basic_publish("", queue, body, props, mandatory=True)
        connection.close()
    else:
        publisher = ConfirmingPublisher(params, confirm_timeout_s=30.0)
        batch = [Outgoing("", queue, body, props)] * pipelined_batch
        for offset in range(0, events, pipelined_batch):
            publisher.publish(batch[: min(pipelined_batch, events - offset)])
        publisher.close()
    done.wait()
    elapsed = time.perf_counter() - started
    consumer.join()
    setup.channel().queue_delete(queue)
    setup.close()
    return events / elapsed


class Rounds:
    """One figure measured several times: its mean, its median."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.values: list[float] = []

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def line(self, unit: str, baseline: Rounds | None = None) -> str:
        text = (f"{self.label:<52}: median {self.median:7.0f} {unit}, mean {self.mean:7.0f} "
                f"(rounds: {', '.join(f'{v:.0f}' for v in self.values)})")
        if baseline is not None:
            text += f"  {self.median / baseline.median:.2f} x {baseline.label.split(',')[0]} (medians)"
        return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--amqp-url", default=os.environ.get("G2BHUB_TEST_AMQP_URL",
                                                             "amqp://guest:guest@127.0.0.1:5672/"))
    parser.add_argument("--database-url", default=os.environ.get("G2BHUB_TEST_DATABASE_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="a PostgreSQL server URL; throw-away databases are created on it")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    n, size = args.events, body_size()
    base_namespace = f"bench{uuid.uuid4().hex[:8]}"
    broker = BrokerSettings(kind="rabbitmq", url=args.amqp_url, namespace=base_namespace)
    relay_batch = Settings().relay.batch_size

    print(f"events: {n} per round, {args.rounds} rounds, message body: {size} bytes, prefetch {broker.prefetch}, "
          "quorum queues, persistent, confirms, manual acks")
    raw = Rounds("raw pika, per-message confirms + consume")
    piped = Rounds(f"hub publisher, pipelined confirms ({relay_batch}) + consume")
    e2e = Rounds("end to end, PostgreSQL + RabbitMQ")
    e2e4 = Rounds("  the same, 4 consumer threads per group")
    alone = Rounds("  bus.consume alone on PostgreSQL, one at a time")
    alone_batched = Rounds(f"  bus.consume_batch alone on PostgreSQL, batches of {broker.prefetch}")
    embedded = Rounds("end to end, SQLite + in-process broker")
    for round_no in range(args.rounds):
        namespace = f"{base_namespace}r{round_no}"
        round_broker = broker.model_copy(update={"namespace": namespace})
        raw.values.append(raw_pika(round_broker, n, size, pipelined_batch=None))
        piped.values.append(raw_pika(round_broker, n, size, pipelined_batch=relay_batch))
        with throwaway_database(args.database_url, prefix="g2bhub_bench") as db_url:
            try:
                e2e.values.append(end_to_end(Settings(database={"url": db_url}, broker=round_broker), n))
            finally:
                delete_topology(round_broker, groups=["bench"])
        with throwaway_database(args.database_url, prefix="g2bhub_bench") as db_url:
            broker4 = broker.model_copy(update={"namespace": namespace + "c4"})
            try:
                e2e4.values.append(end_to_end(Settings(database={"url": db_url}, broker=broker4), n, concurrency=4))
            finally:
                delete_topology(broker4, groups=["bench"])
        with throwaway_database(args.database_url, prefix="g2bhub_bench") as db_url:
            alone.values.append(consume_ceiling(Settings(database={"url": db_url}, broker=round_broker), n))
        with throwaway_database(args.database_url, prefix="g2bhub_bench") as db_url:
            alone_batched.values.append(consume_ceiling(Settings(database={"url": db_url}, broker=round_broker), n,
                                                        batch=broker.prefetch))
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(database={"url": f"sqlite:///{tmp}/bench.db"},
                                broker={"kind": "inprocess", "namespace": namespace})
            embedded.values.append(end_to_end(settings, n))

    print(raw.line("msg/s"))
    print(piped.line("msg/s", raw))
    print(e2e.line("events/s", raw))
    print(e2e4.line("events/s", raw))
    print(alone.line("events/s"))
    print(alone_batched.line("events/s", alone))
    print(embedded.line("events/s", raw))
    figures: dict[str, Figure] = {
        "events": n, "rounds": args.rounds, "message_body_bytes": size, "relay_batch_size": relay_batch,
        "prefetch": broker.prefetch,
        "raw_pika_msg_per_s_median": raw.median, "raw_pika_msg_per_s_mean": raw.mean,
        "hub_publisher_pipelined_msg_per_s_median": piped.median,
        "hub_publisher_pipelined_msg_per_s_mean": piped.mean,
        "hub_publisher_pipelined_vs_raw": piped.median / raw.median,
        "end_to_end_pg_rabbit_events_per_s_median": e2e.median, "end_to_end_pg_rabbit_events_per_s_mean": e2e.mean,
        "end_to_end_pg_rabbit_vs_raw": e2e.median / raw.median,
        "end_to_end_pg_rabbit_vs_raw_means": e2e.mean / raw.mean,
        "end_to_end_pg_rabbit_4_consumers_events_per_s_median": e2e4.median,
        "end_to_end_pg_rabbit_4_consumers_events_per_s_mean": e2e4.mean,
        "end_to_end_pg_rabbit_4_consumers_vs_raw": e2e4.median / raw.median,
        "consume_alone_pg_events_per_s_median": alone.median, "consume_alone_pg_events_per_s_mean": alone.mean,
        "consume_batch_alone_pg_events_per_s_median": alone_batched.median,
        "consume_batch_alone_pg_events_per_s_mean": alone_batched.mean,
        "end_to_end_pg_rabbit_vs_consume_batch_alone": e2e.median / alone_batched.median,
        "end_to_end_sqlite_inprocess_events_per_s_median": embedded.median,
        "end_to_end_sqlite_inprocess_events_per_s_mean": embedded.mean,
        "end_to_end_sqlite_inprocess_vs_raw": embedded.median / raw.median,
    }
    emit("bus", figures)


if __name__ == "__main__":
    main()
