"""``g2bhub demo``: the whole hub on one machine, with nothing installed but Python.

SQLite under the data directory and the in-process broker, migrated and seeded, API and worker in one
process. Re-running on the same data directory keeps everything and prints fresh demo keys."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from hub.cli._common import config_errors, configure_logging_for, load_settings
from hub.cli.demo_components import DEMO_COMPONENTS, DemoComponent, DemoContext
from hub.cli.demo_recipe import WebhookRecipe
from hub.cli.runtime import serve_app
from hub.config import Settings

log = logging.getLogger("hub.cli.demo")


def demo_settings(base: Settings, data_dir: Path, host: str, port: int) -> Settings:
    """Embedded backends and this host/port, whatever the environment says about the rest."""
    shown_host = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host  # noqa: S104 - only for display
    return base.model_copy(
        update={
            "database": base.database.model_copy(update={"url": f"sqlite:///{data_dir / 'hub.db'}"}),
            "broker": base.broker.model_copy(update={"kind": "inprocess"}),
            "api": base.api.model_copy(
                update={"host": host, "port": port, "public_base_url": f"http://{shown_host}:{port}"}
            ),
            # the demo is read by a person at a terminal: plain log lines, not JSON
            "logging": base.logging.model_copy(update={"json_format": False}),
        }
    )


def banner(ctx: DemoContext) -> str:
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
    return "\n".join(lines)


def demo(
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address."),
    port: int = typer.Option(8000, "--port", help="Port."),
    data_dir: Path = typer.Option(Path("var/demo"), "--data-dir", help="Where the demo keeps its SQLite file."),
) -> None:
    """Run the whole hub on this machine: migrate, seed demo organisations, serve API + worker."""
    from hub.api.app import create_app
    from hub.bootstrap import bootstrap

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = demo_settings(load_settings(configure=False), data_dir, host, port)
    components: list[DemoComponent] = [make() for make in DEMO_COMPONENTS]
    components.append(WebhookRecipe(components))  # loopback webhook targets, and the banner's recipe
    try:
        for component in components:
            settings = component.configure(settings, data_dir)
        configure_logging_for(settings)
        # A configured endpoint the demo keeps is checked like any deployment's (its key, its mapping).
        with config_errors():
            hub = bootstrap(settings, migrate=True)
    except BaseException:
        _stop(components)  # configured, never started: the sandbox twins may already be listening
        raise
    ctx = DemoContext(hub=hub, settings=settings, data_dir=data_dir, base_url=settings.api.public_base_url)
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
    log.info("demo stopped")


def _stop(components: list[DemoComponent]) -> None:
    for component in reversed(components):
        try:
            component.stop()
        except Exception:
            log.exception("demo component %s did not stop cleanly", component.name)
