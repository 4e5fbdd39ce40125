"""``g2bhub sandbox``: serve the sandbox twins of every upstream system (VIES, NTS, GLEIF, Companies
House, IAF CertSearch, the national certificates registry) on one port, as the shipped
``config/connectors.yaml`` expects (127.0.0.1:8900); ``g2bhub sandbox receiver``: a webhook endpoint
that verifies and prints each delivery of a subscription (docs/subscriptions.md#trying-webhooks-in-the-demo)."""

from __future__ import annotations

import signal
from types import FrameType

import typer

app = typer.Typer(help="Run the sandbox twins of the tax, registry and certification systems.",
                  no_args_is_help=False, invoke_without_command=True)

RECEIVER_SECRET_ENV = "G2BHUB_RECEIVER_SECRET"  # noqa: S105 - the variable's name, not a secret


@app.callback(invoke_without_command=True)
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
