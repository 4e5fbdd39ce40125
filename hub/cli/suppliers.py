"""``g2bhub suppliers``: the operator's way back for credential fetch slots the hub gave up on.

A slot the source refused (``failed_permanently``) is never fetched again by the scheduler; once the
cause is fixed (a mapping updated, an identifier corrected at the source, a hostile gateway gone) the
operator puts it back to ``pending`` here. The change goes through the message bus and lands in the
audit trail with who asked and why."""

from __future__ import annotations

import getpass

import typer

from hub.cli._common import echo_json, load_settings, open_hub, print_table, service_errors

app = typer.Typer(help="Suppliers' credential fetch slots.", no_args_is_help=True)


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "unknown"


@app.command()
def retry(
    supplier_id: str = typer.Argument(..., help="The supplier whose slots to put back to pending."),
    system: str | None = typer.Option(None, "--system", help="Only this upstream system's slot (e.g. nts)."),
    reason: str = typer.Option(..., "--reason", help="Why (what was fixed); kept in the audit trail."),
    by: str | None = typer.Option(None, "--by", help="Who asks (default: the login name)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Put failed (or not-found, or pending) fetch slots back to pending, due now.

    Without --system every such slot of the supplier is retried; a verified slot is refused (use the
    API's refresh). The scheduler fetches them on its next run."""
    from hub.suppliers.commands import RetryCredentialFetches

    settings = load_settings()
    with open_hub(settings) as hub, service_errors():
        slots = hub.bus.handle(RetryCredentialFetches(
            supplier_id=supplier_id, system=system, reason=reason, requested_by=f"cli:{by or _operator()}",
        ))
        rows = [{"fetch_id": s.id, "system": s.system, "state": s.state,
                 "next_attempt_at": s.next_attempt_at.isoformat(timespec="seconds") if s.next_attempt_at else None}
                for s in slots]
    if as_json:
        echo_json(rows)
        return
    print_table(["fetch id", "system", "state", "due"],
                [[r["fetch_id"], r["system"], r["state"], r["next_attempt_at"]] for r in rows])
