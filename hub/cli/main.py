"""The ``g2bhub`` command. Each command group lives in its own module; this one only assembles them.

Heavy imports (SQLAlchemy models, FastAPI, uvicorn) happen inside the commands, so ``--help`` and
``--version`` stay fast."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import typer

from hub.cli import config_cmd, db, dlq, identifiers, orgs, pps, sandbox, subscriptions, suppliers
from hub.cli._common import DATA_DIR_ENV, choose_data_dir
from hub.cli.demo import demo
from hub.cli.runtime import serve, worker

__all__ = ["app", "hub_version"]


def hub_version() -> str:
    try:
        return version("g2b-hub")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"g2bhub {hub_version()}")
        raise typer.Exit()


app = typer.Typer(
    name="g2bhub",
    help="g2b-hub: publish bid notices once, register suppliers once, syndicate to every system.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    _version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
    ),
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        envvar=DATA_DIR_ENV,
        help="Work on the demo database in this data directory (default: the configured database; with none "
        "configured, the demo's in var/demo when there is one).",
    ),
) -> None:
    """Settings come from config/*.yaml < the file in G2BHUB_CONFIG < G2BHUB_* environment."""
    choose_data_dir(data_dir)


app.command(help="Run the HTTP API (with the in-process broker, also the embedded worker).")(serve)
app.command(help="Run the outbox relay and the consumer groups until SIGINT/SIGTERM.")(worker)
app.command(help="Run the whole hub on this machine (SQLite + in-process broker) with demo data.")(demo)
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(db.app, name="db")
app.add_typer(orgs.app, name="orgs")
app.add_typer(dlq.app, name="dlq")
app.add_typer(suppliers.app, name="suppliers")
app.add_typer(subscriptions.app, name="subscriptions")
app.add_typer(config_cmd.app, name="config")
app.add_typer(identifiers.app, name="identifiers")
app.add_typer(pps.app, name="pps")


if __name__ == "__main__":
    app()
