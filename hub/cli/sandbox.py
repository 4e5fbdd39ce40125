"""``g2bhub sandbox``: serve the sandbox twins of every upstream system (VIES, NTS, GLEIF, Companies
House, IAF CertSearch, the national certificates registry, PPS) on one port, as the shipped
``config/connectors.yaml`` expects (127.0.0.1:8900); ``g2bhub sandbox suppliers`` lists the dataset's
suppliers by scenario, to pick the case to try (a closed business, a lapsed LEI, a withdrawn certificate);
``g2bhub sandbox receiver``: a webhook endpoint that verifies and prints each delivery of a subscription
(docs/subscriptions.md#trying-webhooks-in-the-demo)."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

import typer

from hub.cli._common import echo_json, print_table

__all__ = ["app", "matches_scenario"]

app = typer.Typer(
    help="Run the sandbox twins of the tax, registry and certification systems (and list their suppliers).",
    invoke_without_command=True,
)

RECEIVER_SECRET_ENV = "G2BHUB_RECEIVER_SECRET"  # noqa: S105 - the variable's name, not a secret


@app.callback()
def sandbox(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Bind address (default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Port (default 8900)."),
    seed: int | None = typer.Option(None, "--seed", help="Dataset and fault seed."),
    suppliers: int | None = typer.Option(None, "--suppliers", help="Population size."),
) -> None:
    """Run the sandbox twins until Ctrl+C; fault injection via G2BHUB_SANDBOX__<SYSTEM>__* or /_control."""
    if ctx.invoked_subcommand is not None:
        return
    from connectors.sandbox.server import main

    argv: list[str] = []
    for flag, value in (("--host", host), ("--port", port), ("--seed", seed), ("--suppliers", suppliers)):
        if value is not None:
            argv += [flag, str(value)]
    main(argv)


@app.command("receiver")
def receiver(
    secret: str = typer.Option(..., "--secret", envvar=RECEIVER_SECRET_ENV, show_envvar=True,
                               help="The subscription's signing secret (whsec_…), from its creation answer."),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address."),
    port: int = typer.Option(8901, "--port", help="Port."),
) -> None:
    """A webhook receiver: verify each delivery's Standard Webhooks signature and print one line per
    delivery (event type, notice id, version, webhook-id) until Ctrl+C."""
    from hub.cli.webhook_receiver import WebhookReceiver

    def say(line: str) -> None:
        typer.echo(line)

    try:
        server = WebhookReceiver(secret.strip(), host=host, port=port, out=say)
    except OSError as exc:
        typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
    except ValueError:
        typer.echo(f"error: --secret / {RECEIVER_SECRET_ENV} is not a webhook signing secret (whsec_ + base64)",
                   err=True)
        raise typer.Exit(2) from None

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    typer.echo(f"webhook receiver on {server.url} (verifying Standard Webhooks signatures; Ctrl+C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server.server_close()
    typer.echo("webhook receiver stopped")


def matches_scenario(tags: list[str], wanted: str) -> bool:
    """``nts:closed`` matches that tag; ``nts`` every NTS state; ``iaf:ISO 9001:2015`` every state of it."""
    wanted = wanted.strip().lower()
    return any(tag.lower() == wanted or tag.lower().startswith(wanted + ":") for tag in tags)


@app.command("suppliers")
def list_suppliers(
    scenario: list[str] = typer.Option(
        [], "--scenario", "-s", help="Only suppliers with this scenario tag or prefix (repeatable: all must match)."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Dataset seed (default: the sandbox's)."),
    size: int | None = typer.Option(None, "--suppliers", help="Population size (default: the sandbox's)."),
    limit: int = typer.Option(0, "--limit", min=0, help="At most this many (0: all)."),
    tags: bool = typer.Option(False, "--tags", help="List the scenario tags with their supplier counts instead."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """The sandbox dataset's suppliers (the same data a `g2bhub sandbox` or `g2bhub demo` with the same
    seed serves), with their identifiers and scenario tags."""
    from connectors.sandbox.config import SandboxConfig
    from connectors.sandbox.dataset import SandboxDataset

    overrides: dict[str, Any] = {k: v for k, v in (("seed", seed), ("suppliers", size)) if v is not None}
    config = SandboxConfig(**overrides)
    dataset = SandboxDataset(config.seed, config.suppliers, config.as_of)
    if tags:
        counts: dict[str, int] = {}
        for supplier in dataset.suppliers:
            for tag in supplier.scenario:
                counts[tag] = counts.get(tag, 0) + 1
        if as_json:
            echo_json(dict(sorted(counts.items())))
        else:
            print_table(["scenario", "suppliers"], sorted(counts.items()))
        return
    found = [s for s in dataset.suppliers if all(matches_scenario(s.scenario, wanted) for wanted in scenario)]
    if limit:
        found = found[:limit]
    rows: list[dict[str, Any]] = [
        {
            "supplier_id": s.supplier_id,
            "name": s.name,
            "country": s.country,
            "identifiers": dict(s.identifiers),
            "scenario": list(s.scenario),
        }
        for s in found
    ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        typer.echo("no supplier has " + " and ".join(scenario) + " (see `g2bhub sandbox suppliers --tags`)")
        return
    print_table(
        ["supplier", "country", "identifiers", "scenario", "name"],
        [
            [
                r["supplier_id"],
                r["country"],
                " ".join(f"{k}={v}" for k, v in r["identifiers"].items()),
                ", ".join(r["scenario"]),
                r["name"],
            ]
            for r in rows
        ],
    )
