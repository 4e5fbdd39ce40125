"""End-to-end throughput of the message bus, beside what raw pika does on the same broker.

    python bench/bus.py [--events N] [--amqp-url URL] [--database-url URL]

End to end means: ``bus.handle`` commits a command and its event (outbox) → relay → broker → consumer
applies the event (effect row + inbox row, one transaction) → the effect is visible in the database.
Commits happen while the worker runs, so the figure is the sustained rate of the whole pipeline.

Baselines, on the same broker and message size, no database:
  raw pika   — BlockingChannel with publisher confirms (pika waits for each confirm) and a consumer
               on its own connection acking each message; what a straightforward pika program gets.
  hub publisher — the adapter's pipelined-confirm publisher (batches of the relay's size) + the same
               consumer: the broker-side ceiling of the RabbitMQ path.
Prints figures only; no assertions. Creates (and drops) a throw-away PostgreSQL database.
The last line of stdout is the figures as one JSON line,
{"bench": "bus", "figures": {...}}."""

from __future__ import annotations

import argparse
import logging
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


def consume_ceiling(settings: Settings, events: int) -> float:
    """``bus.consume`` called directly (no broker, no relay): what one consumer thread's database
    transactions allow, i.e. the ceiling of the end-to-end figure with one consumer per group."""
    hub: Hub = bootstrap(settings, migrate=True, command_handlers={PingBench: ping},
                         event_handlers={BenchPinged: [bench_effect]}, group_names={bench_effect: "bench"})
    try:
        envelopes = [Envelope.wrap(BenchPinged(seq=seq, note=PADDING)) for seq in range(events + 1)]
        hub.bus.consume("bench", envelopes[0])
        started = time.perf_counter()
        for envelope in envelopes[1:]:
            hub.bus.consume("bench", envelope)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="a PostgreSQL server URL; a throw-away database is created on it")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    n, size = args.events, body_size()
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    broker = BrokerSettings(kind="rabbitmq", url=args.amqp_url, namespace=namespace)
    relay_batch = Settings().relay.batch_size

    print(f"events: {n}, message body: {size} bytes, quorum queues, persistent, confirms, manual acks")
    raw = raw_pika(broker, n, size, pipelined_batch=None)
    print(f"raw pika, per-message confirms + consume     : {raw:9.0f} msg/s   (baseline)")
    piped = raw_pika(broker, n, size, pipelined_batch=relay_batch)
    print(f"hub publisher, pipelined confirms ({relay_batch}) + consume: {piped:9.0f} msg/s   "
          f"({piped / raw:.2f} x baseline)")

    with throwaway_database(args.database_url, prefix="g2bhub_bench") as db_url:
        settings = Settings(database={"url": db_url}, broker=broker)
        try:
            pg_rabbit = end_to_end(settings, n)
        finally:
            delete_topology(broker, groups=["bench"])
        broker4 = broker.model_copy(update={"namespace": namespace + "c4"})
        try:
            pg_rabbit4 = end_to_end(Settings(database={"url": db_url}, broker=broker4), n, concurrency=4)
        finally:
            delete_topology(broker4, groups=["bench"])
        ceiling = consume_ceiling(settings, n)
    print(f"end to end, PostgreSQL + RabbitMQ             : {pg_rabbit:9.0f} events/s "
          f"({pg_rabbit / raw:.2f} x raw pika baseline)")
    print(f"  the same with 4 consumer threads per group   : {pg_rabbit4:9.0f} events/s "
          f"({pg_rabbit4 / raw:.2f} x raw pika baseline)")
    print(f"  bus.consume alone on PostgreSQL (no broker)  : {ceiling:9.0f} events/s "
          f"(end to end reaches {pg_rabbit / ceiling:.2f} of it)")

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database={"url": f"sqlite:///{tmp}/bench.db"},
                            broker={"kind": "inprocess", "namespace": namespace})
        embedded = end_to_end(settings, n)
    print(f"end to end, SQLite + in-process broker        : {embedded:9.0f} events/s "
          f"({embedded / raw:.2f} x raw pika baseline)")
    figures: dict[str, Figure] = {
        "events": n, "message_body_bytes": size, "relay_batch_size": relay_batch,
        "raw_pika_msg_per_s": raw,
        "hub_publisher_pipelined_msg_per_s": piped, "hub_publisher_pipelined_vs_raw": piped / raw,
        "end_to_end_pg_rabbit_events_per_s": pg_rabbit, "end_to_end_pg_rabbit_vs_raw": pg_rabbit / raw,
        "end_to_end_pg_rabbit_4_consumers_events_per_s": pg_rabbit4,
        "end_to_end_pg_rabbit_4_consumers_vs_raw": pg_rabbit4 / raw,
        "consume_alone_pg_events_per_s": ceiling, "end_to_end_pg_rabbit_vs_consume_alone": pg_rabbit / ceiling,
        "end_to_end_sqlite_inprocess_events_per_s": embedded, "end_to_end_sqlite_inprocess_vs_raw": embedded / raw,
    }
    emit("bus", figures)


if __name__ == "__main__":
    main()
