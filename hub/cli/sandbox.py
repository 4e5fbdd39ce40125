"""``g2bhub sandbox``: serve the sandbox twins of every upstream system (VIES, NTS, GLEIF, Companies
House, IAF CertSearch, the national certificates registry) on one port, as the shipped
``config/connectors.yaml`` expects (127.0.0.1:8900)."""

from __future__ import annotations

import typer


def sandbox(
    host: str | None = typer.Option(None, "--host", help="Bind address (default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Port (default 8900)."),
    seed: int | None = typer.Option(None, "--seed", help="Dataset and fault seed."),
    suppliers: int | None = typer.Option(None, "--suppliers", help="Population size."),
) -> None:
    """Run the sandbox twins until Ctrl+C; fault injection via G2BHUB_SANDBOX__<SYSTEM>__* or /_control."""
    from connectors.sandbox.server import main

    argv: list[str] = []
    for flag, value in (("--host", host), ("--port", port), ("--seed", seed), ("--suppliers", suppliers)):
        if value is not None:
            argv += [flag, str(value)]
    main(argv)
