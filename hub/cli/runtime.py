"""``g2bhub serve`` and ``g2bhub worker``: the two long-running processes.

API processes are stateless and can be multiplied behind a load balancer; workers (outbox relay plus
consumer groups) compete for messages on RabbitMQ. The in-process broker exists only inside one
process, so with it ``serve`` embeds the worker by default and there must be exactly one such process."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import typer

from hub.cli._common import config_errors, fail, load_settings
from hub.config import Settings, redact_url

log = logging.getLogger("hub.cli")


def should_migrate(settings: Settings, migrate: bool | None) -> bool:
    """``--migrate/--no-migrate`` when given, else ``database.migrate_on_start`` (which, left unset,
    means SQLite only: one process owns the file, while N processes on PostgreSQL must not race)."""
    return bool(settings.database.migrate_on_start) if migrate is None else migrate


def follow_listen_address(settings: Settings, host: str, port: int) -> Settings:
    """The settings for an API listening on ``host:port``: ``api.public_base_url`` follows them unless it
    was configured (anything other than the shipped default), so ``serve --port 8003`` links to 8003."""
    from hub.config import shipped_defaults

    shipped = str((shipped_defaults().get("api") or {}).get("public_base_url", "")).rstrip("/")
    update: dict[str, Any] = {"host": host, "port": port}
    if settings.api.public_base_url.rstrip("/") == shipped:
        shown = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host  # noqa: S104 - only for display
        shown = f"[{shown}]" if ":" in shown else shown
        update["public_base_url"] = f"http://{shown}:{port}"
    return settings.model_copy(update={"api": settings.api.model_copy(update=update)})


def uvicorn_options() -> dict[str, Any]:
    """What every uvicorn the hub starts is told: keep the hub's logging (``log_config=None``, our own
    access log) and send no ``Server: uvicorn`` banner (it only helps an attacker pick exploits)."""
    return {"log_config": None, "access_log": False, "server_header": False}


def serve_app(app: Any, host: str, port: int, on_started: Callable[[], None] | None = None) -> None:
    """Run one uvicorn server in this process until SIGINT/SIGTERM, then return normally.

    uvicorn re-raises the signal that stopped it once it has shut down; with the default handlers that
    would kill the process before our own cleanup (stopping the embedded worker, closing the hub) runs.
    Handlers that merely take note make a signalled stop an ordinary, successful return."""
    import uvicorn

    from hub.spine.observability.logging import adopt_loggers

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **uvicorn_options()))
    # An in-process uvicorn started earlier with its default config (the demo's sandbox twins) gave the
    # uvicorn loggers handlers of their own; take them back so every line passes the redacting filter.
    adopt_loggers()
    done = threading.Event()
    if on_started is not None:
        callback = on_started

        def announce() -> None:
            while not server.started:
                if done.wait(0.05):
                    return
            callback()

        threading.Thread(target=announce, name="announce-started", daemon=True).start()
    previous = {sig: signal.signal(sig, _take_note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        done.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        fail(f"the API could not start on {host}:{port} (see the log above)")


def _take_note(signum: int, _frame: FrameType | None) -> None:
    log.info("stopping on %s", signal.Signals(signum).name)


def serve(
    host: str | None = typer.Option(None, "--host", help="Bind address (default: api.host)."),
    port: int | None = typer.Option(None, "--port", help="Port (default: api.port)."),
    workers: int = typer.Option(1, "--workers", min=1, help="API processes (needs broker.kind=rabbitmq if > 1)."),
    worker: bool | None = typer.Option(
        None,
        "--worker/--no-worker",
        help="Run the relay and consumers in this process too (default: yes with the in-process broker).",
    ),
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="Consumer threads per group (embedded)."),
    migrate: bool | None = typer.Option(
        None,
        "--migrate/--no-migrate",
        help="Upgrade the schema at start (default: database.migrate_on_start, unset: yes on SQLite only; "
        "on PostgreSQL run `g2bhub db upgrade`).",
    ),
) -> None:
    """Run the HTTP API (and, with the in-process broker, the embedded worker)."""
    settings = load_settings(find_demo=False)
    host = host or settings.api.host
    port = port or settings.api.port
    settings = follow_listen_address(settings, host, port)
    inprocess = settings.broker.kind == "inprocess"
    embed = inprocess if worker is None else worker
    do_migrate = should_migrate(settings, migrate)

    if workers > 1:
        if inprocess:
            fail("--workers > 1 needs broker.kind=rabbitmq: the in-process broker lives in one process")
        if embed:
            fail("--workers > 1 cannot embed a worker; run `g2bhub worker` separately (--no-worker)")
    if inprocess and not embed:
        log.warning("in-process broker without an embedded worker: run exactly one `g2bhub worker` process")

    if workers > 1:
        from hub.bootstrap import check_configuration

        with config_errors():
            check_configuration(settings)
        if do_migrate:
            _migrate(settings)
        log.info("starting %d API processes on %s:%d", workers, host, port)
        # Each process builds its own hub from the same layered settings, with what this command decided
        # on top (the database of --data-dir, the public URL following --port).
        os.environ["G2BHUB_DATABASE__URL"] = settings.database.url
        os.environ["G2BHUB_API__PUBLIC_BASE_URL"] = settings.api.public_base_url
        import uvicorn

        uvicorn.run("hub.api.app:create_app", host=host, port=port, factory=True, workers=workers,
                    **uvicorn_options())
        return

    from hub.api.app import create_app
    from hub.bootstrap import bootstrap

    with config_errors():
        hub = bootstrap(settings, migrate=do_migrate)
    try:
        if embed:
            hub.make_worker(concurrency=concurrency).start()
            log.info("embedded worker started", extra={"broker": settings.broker.kind})
        log.info(
            "API starting on http://%s:%d",
            host,
            port,
            extra={"url": f"http://{host}:{port}", "database": redact_url(settings.database.url)},
        )
        serve_app(create_app(hub=hub, settings=settings), host, port)
    finally:
        hub.close()


def _migrate(settings: Settings) -> None:
    from hub.spine.db import make_engine
    from hub.spine.migrations import upgrade

    engine = make_engine(settings.database)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def wait_for_signal() -> str:
    """Block until SIGINT or SIGTERM; return the signal's name. Handlers are installed only here, on
    the main thread, so the consumer threads keep running until we stop them in order."""
    stop = threading.Event()
    received: list[str] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(1.0):
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    return received[0]


def worker(
    concurrency: int = typer.Option(1, "--concurrency", "-c", min=1, help="Consumer threads per group."),
    relay: bool = typer.Option(True, "--relay/--no-relay", help="Also relay the outbox to the broker."),
    metrics_port: int | None = typer.Option(
        None, "--metrics-port", help="Serve this process's Prometheus metrics at http://HOST:PORT/metrics."
    ),
    metrics_host: str = typer.Option("127.0.0.1", "--metrics-host", help="Bind address for --metrics-port."),
) -> None:
    """Run the outbox relay and every consumer group until SIGINT/SIGTERM."""
    from hub.bootstrap import bootstrap

    settings = load_settings(find_demo=False)
    with config_errors():
        hub = bootstrap(settings)
    try:
        if metrics_port is not None:
            # Metrics live per process: a separate worker's counters reach no API's /metrics.
            from prometheus_client import start_http_server

            from hub.spine.observability.metrics import REGISTRY

            start_http_server(metrics_port, addr=metrics_host, registry=REGISTRY)
            log.info("worker metrics at http://%s:%d/metrics", metrics_host, metrics_port)
        w = hub.make_worker(concurrency=concurrency, with_relay=relay)
        w.start()
        groups = sorted(hub.bus.groups)
        log.info(
            "worker started: broker %s, consumer groups %s, concurrency %d, relay %s",
            settings.broker.kind,
            ", ".join(groups),
            concurrency,
            "on" if relay else "off",
            extra={
                "broker": settings.broker.kind,
                "broker_url": redact_url(settings.broker.url) if settings.broker.kind == "rabbitmq" else None,
                "database": redact_url(settings.database.url),
                "consumer_groups": groups,
                "concurrency": concurrency,
                "relay": relay,
            },
        )
        name = wait_for_signal()
        log.info("worker stopping on %s", name, extra={"signal": name})
        w.stop()
    finally:
        hub.close()
    log.info("worker stopped")
