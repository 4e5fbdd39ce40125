"""``g2bhub demo``: the whole hub on one machine, with nothing installed but Python.

SQLite under the data directory and the in-process broker, migrated and seeded, API and worker in one
process. Re-running on the same data directory keeps everything, the demo keys included (they are in
``demo-keys.json`` there); a second demo on a directory whose demo is still running stops before it
touches anything (``demo.lock``)."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from hub.cli._common import (
    DATA_DIR_ENV,
    DEMO_DATA_DIR,
    chosen_data_dir,
    config_errors,
    configure_logging_for,
    demo_database_fallback,
    fail,
    load_settings,
)
from hub.cli.demo_components import DEMO_COMPONENTS, DemoComponent, DemoContext
from hub.cli.demo_lock import DemoAlreadyRunning, DemoLock
from hub.cli.demo_recipe import WebhookRecipe
from hub.cli.runtime import follow_listen_address, serve_app
from hub.config import Settings

log = logging.getLogger("hub.cli.demo")


def demo_settings(base: Settings, data_dir: Path, host: str, port: int) -> Settings:
    """Embedded backends and this host/port, whatever the environment says about the rest (the public
    base URL follows the port unless one is configured)."""
    settings = follow_listen_address(base, host, port)
    return settings.model_copy(
        update={
            "database": base.database.model_copy(update={"url": f"sqlite:///{data_dir / 'hub.db'}"}),
            "broker": base.broker.model_copy(update={"kind": "inprocess"}),
            # the demo is read by a person at a terminal: plain log lines, not JSON
            "logging": base.logging.model_copy(update={"json_format": False}),
        }
    )


def banner_lines(ctx: DemoContext) -> list[str]:
    """What the demo prints once it listens: where things are, then each component's section."""
    base = ctx.base_url
    lines = [
        "",
        "g2b-hub demo is running",
        f"  data       {ctx.data_dir} (SQLite + in-process broker)",
        f"  API        {base}/api/v1",
        f"  API docs   {base}/docs",
        f"  readiness  {base}/readyz",
        f"  metrics    {base}/metrics",
    ]
    for title, body in ctx.sections:
        lines += ["", title + ":"] + [f"  {line}" for line in body]
    lines += ["", "Press Ctrl+C to stop.", ""]
    return lines


def banner(ctx: DemoContext) -> str:
    return "\n".join(banner_lines(ctx))


def demo(
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address."),
    port: int = typer.Option(8000, "--port", help="Port."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help=f"Where the demo keeps its SQLite file and keys (default: {DEMO_DATA_DIR})."
    ),
) -> None:
    """Run the whole hub on this machine: migrate, seed demo organisations, serve API + worker."""
    data_dir = (data_dir or chosen_data_dir() or DEMO_DATA_DIR).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    configured = load_settings(configure=False, find_demo=False)
    settings = demo_settings(configured, data_dir, host, port)
    lock = DemoLock(data_dir, settings.api.public_base_url)
    try:
        lock.acquire()  # before anything is touched: no migration, no key, no port
    except DemoAlreadyRunning as exc:
        fail(str(exc))
    try:
        # whether a plain `g2bhub orgs list` here would find this demo's database (the banner says how)
        found = _cli_finds(data_dir)
        _run(settings, data_dir, host, port, found)
    finally:
        lock.release()
    log.info("demo stopped")


def _cli_finds(data_dir: Path) -> bool:
    """Whether a plain ``g2bhub orgs list`` here would work on this demo's database (once it exists)."""
    import os

    from hub.config import load_settings as load

    named = os.environ.get(DATA_DIR_ENV)
    if named:
        return Path(named).expanduser().resolve() == data_dir
    if data_dir != DEMO_DATA_DIR.resolve():
        return False
    return demo_database_fallback(load(), demo_must_exist=False) is not None


def _run(settings: Settings, data_dir: Path, host: str, port: int, cli_finds_it: bool) -> None:
    from hub.api.app import create_app
    from hub.bootstrap import bootstrap

    components: list[DemoComponent] = [make() for make in DEMO_COMPONENTS]
    components.append(WebhookRecipe(components))  # loopback webhook targets, and the banner's recipe
    try:
        # A configured endpoint the demo keeps is checked like any deployment's (its key, its mapping).
        with config_errors():
            for component in components:
                settings = component.configure(settings, data_dir)
            configure_logging_for(settings)
            hub = bootstrap(settings, migrate=True)
    except BaseException:
        _stop(components)  # configured, never started: the sandbox twins may already be listening
        raise
    ctx = DemoContext(
        hub=hub,
        settings=settings,
        data_dir=data_dir,
        base_url=settings.api.public_base_url,
        default_data_dir=cli_finds_it,
    )
    started: list[DemoComponent] = []
    try:
        for component in components:
            log.info("starting demo component %s", component.name)
            component.start(ctx)
            started.append(component)
        app = create_app(hub=hub, settings=settings)
        serve_app(app, host, port, on_started=lambda: typer.echo(banner(ctx)))
    finally:
        _stop(started)
        hub.close()


def _stop(components: list[DemoComponent]) -> None:
    for component in reversed(components):
        try:
            component.stop()
        except Exception:
            log.exception("demo component %s did not stop cleanly", component.name)
