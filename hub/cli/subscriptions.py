"""``g2bhub subscriptions``: bulk work on subscriptions an API call at a time would not finish.

``load`` puts very many subscriptions on a registered webhook endpoint (an alert service for
thousands of suppliers) from JSON lines, in one transaction, and makes every worker's matching index
reload once (docs/subscriptions.md#batched-webhooks)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

from hub.cli._common import echo_json, fail, load_settings, open_hub, service_errors

app = typer.Typer(help="Subscriptions in bulk.", no_args_is_help=True)


@app.command()
def load(
    file: Path = typer.Argument(..., help="JSON lines: a filter object each, or {\"id\", \"name\", \"filter\"} "
                                          "('-' reads standard input)."),
    endpoint: str = typer.Option(..., "--endpoint", help="The webhook endpoint the subscriptions go on."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a line of text."),
) -> None:
    """Load subscriptions onto a webhook endpoint (its organisation owns them). All or nothing: a bad
    line fails the load, naming the line and field; an id already taken fails it too."""
    from sqlalchemy.exc import IntegrityError

    from hub.subscriptions.bulk_load import load_subscriptions

    settings = load_settings()
    started = time.monotonic()
    with open_hub(settings) as hub, service_errors(), hub.uow() as uow:
        target = uow.subscriptions.get(endpoint)
        if target is None or not target.batch or target.org_id is None:
            fail(f"no webhook endpoint {endpoint!r}")
        stream = sys.stdin if str(file) == "-" else file.open(encoding="utf-8")
        try:
            count = load_subscriptions(uow, endpoint, target.org_id, stream)
            uow.commit()
        except IntegrityError as exc:
            fail(f"a subscription id in the file is taken already: {str(exc.orig).splitlines()[0]}")
        finally:
            if stream is not sys.stdin:
                stream.close()
    seconds = time.monotonic() - started
    if as_json:
        echo_json({"endpoint": endpoint, "loaded": count, "seconds": round(seconds, 3)})
        return
    typer.echo(f"loaded {count} subscriptions onto endpoint {endpoint} in {seconds:.1f} s")
